// Containers: raw streams, torch zips (storage records are never read), the legacy torch stream.
#include <doctest/doctest.h>

#include "helpers.hpp"
#include "zip_builder.hpp"

using namespace brine;
using analysis::Verdict;

namespace {
// data.pkl of torch.save({'w': tensor of 2 floats}) (protocol 2), storage key '0'.
std::string state_dict_pickle(std::string_view key = "0", int numel = 2) {
  std::string p(test::lit("\x80\x02}X\x01\x00\x00\x00wctorch._utils\n_rebuild_tensor_v2\n("));
  p += test::lit("(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX");
  p += static_cast<char>(key.size());
  p += std::string("\x00\x00\x00", 3);
  p += key;
  p += test::lit("X\x03\x00\x00\x00" "cpuK");
  p += static_cast<char>(numel);
  p += test::lit("tQK\x00K\x02\x85K\x01\x85\x89" "ccollections\nOrderedDict\n)RtRs.");
  return p;
}

std::string torch_zip(const std::string& data_pkl, std::string storage = std::string(8, '\0')) {
  test::ZipBuilder z;
  z.add("archive/data.pkl", data_pkl);
  z.add("archive/data/0", std::move(storage));
  z.add("archive/version", "3\n");
  return z.build();
}
}  // namespace

TEST_CASE("a torch zip state dict is clean and its storages are not read") {
  auto r = test::scan(torch_zip(state_dict_pickle()));
  CHECK(r.verdict == Verdict::kClean);
  CHECK(r.container == "torch-zip");
  CHECK(r.pickles == 1);
  bool saw_storage = false;
  for (const auto& m : r.members) {
    if (m.name == "archive/data/0") {
      saw_storage = true;
      CHECK(m.format == "storage");
      CHECK_FALSE(m.scanned);
    }
  }
  CHECK(saw_storage);
}

TEST_CASE("storage records must exist and be large enough") {
  auto missing = test::scan(torch_zip(state_dict_pickle("7")));
  CHECK(missing.verdict == Verdict::kError);
  CHECK(test::has_rule(missing, "malformed:missing-storage"));
  auto small = test::scan(torch_zip(state_dict_pickle("0", 100)));
  CHECK(test::has_rule(small, "malformed:storage-size"));
}

TEST_CASE("a payload in any .pkl member is found, with the member named") {
  test::ZipBuilder z;
  z.add("archive/data.pkl", state_dict_pickle());
  z.add("archive/data/0", std::string(8, '\0'));
  z.add("archive/extra.pkl", "cos\nsystem\n(S'id'\ntR.");
  auto r = test::scan(z.build());
  CHECK(r.verdict == Verdict::kMalicious);
  const auto* f = test::finding(r, "deny:os");
  REQUIRE(f);
  CHECK(f->member == "archive/extra.pkl");
}

TEST_CASE("a member that starts with PROTO is scanned whatever its name") {
  test::ZipBuilder z;
  z.add("archive/data.pkl", state_dict_pickle());
  z.add("archive/data/0", std::string(8, '\0'));
  z.add("archive/notes.txt", "\x80\x02" "cos\nsystem\n(X\x02\x00\x00\x00idtR.");
  CHECK(test::scan(z.build()).verdict == Verdict::kMalicious);
}

TEST_CASE("entries outside the archive prefix are flagged") {
  test::ZipBuilder z;
  z.add("archive/data.pkl", state_dict_pickle());
  z.add("archive/data/0", std::string(8, '\0'));
  z.add("archive/version", "3\n");  // torch's zip reader requires it (else an error, not this finding)
  z.add("other/readme", "x");
  auto r = test::scan(z.build());
  CHECK(r.verdict == Verdict::kUnapproved);
  CHECK(test::has_rule(r, "unapproved:outside-prefix"));
}

TEST_CASE("a zip without pickles is clean; a broken zip is an error") {
  test::ZipBuilder z;
  z.add("readme.txt", "hello");
  auto r = test::scan(z.build());
  CHECK(r.container == "zip");
  CHECK(r.verdict == Verdict::kClean);
  std::string broken = torch_zip(state_dict_pickle());
  broken.resize(broken.size() - 10);
  CHECK(test::scan(broken).verdict == Verdict::kError);
}

TEST_CASE("the legacy torch stream: five pickles, then raw storages skipped by size") {
  // magic, protocol version, sys_info, object, keys, then numel (int64) + 2 floats for key '0'.
  std::string f = "\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19\x2e";
  f += "\x80\x02M\xe9\x03.";
  f += "\x80\x02}.";
  std::string obj = state_dict_pickle();
  // legacy persistent ids have a sixth item (view metadata, None)
  obj.replace(obj.find(test::lit("K\x02tQ")), 4, test::lit("K\x02NtQ"));
  f += obj;
  f += test::lit("\x80\x02]X\x01\x00\x00\x00" "0a.");
  f += std::string("\x02\x00\x00\x00\x00\x00\x00\x00", 8) + std::string(8, '\0');
  auto r = test::scan(f);
  CHECK(r.container == "torch-legacy");
  CHECK(r.pickles == 5);
  CHECK(r.verdict == Verdict::kClean);
  // One more byte after the storages: trailing data.
  CHECK(test::scan(f + "x").verdict == Verdict::kUnapproved);
  // A storage claiming more than the file holds: an error, not an allocation.
  std::string lying = f;
  lying[lying.size() - 16] = '\x7f';
  CHECK(test::scan(lying).verdict == Verdict::kError);
}

TEST_CASE("content, not the name, decides the format") {
  CHECK(test::scan("").verdict == Verdict::kError);
  auto unknown = test::scan("# just text\n");
  CHECK_FALSE(unknown.recognized);
  CHECK(unknown.verdict == Verdict::kError);
  auto text = test::scan("Introduction to the model\n");  // 'I' is INT but the line is no number
  CHECK_FALSE(text.recognized);
  auto p0 = test::scan("(lp0\nI1\na.");  // protocol 0 starts with no PROTO
  CHECK(p0.recognized);
  CHECK(p0.verdict == Verdict::kClean);
}

namespace {
std::string npy(std::string_view descr, std::string_view body) {
  std::string header = "{'descr': " + std::string(descr) + ", 'fortran_order': False, 'shape': (1,), }";
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string out = "\x93NUMPY\x01";
  out += '\0';
  out += static_cast<char>(header.size() & 0xFF);
  out += static_cast<char>(header.size() >> 8);
  return out + header + std::string(body);
}
}  // namespace

TEST_CASE(".npy: object arrays carry a pickle, other dtypes carry none") {
  auto plain = test::scan(npy("'<f4'", std::string(4, '\0')));
  CHECK(plain.container == "npy");
  CHECK(plain.verdict == Verdict::kClean);
  CHECK(plain.pickles == 0);
  auto payload = test::scan(npy("'|O'", "cos\nsystem\n(S'id'\ntR."));
  CHECK(payload.verdict == Verdict::kMalicious);
  CHECK(test::finding(payload, "deny:os")->offset == 128 + 19);  // offsets count from the file start
  auto structured = test::scan(npy("[('a', '<i4'), ('b', '|O')]", "cos\nsystem\n(S'id'\ntR."));
  CHECK(structured.verdict == Verdict::kMalicious);
  auto field_named_o = test::scan(npy("[('O', '<f8')]", std::string(8, '\0')));
  CHECK(field_named_o.verdict == Verdict::kClean);  // a field *named* 'O' is float64 data, not an object
  std::string truncated = npy("'<f4'", "");
  truncated.resize(20);
  CHECK(test::scan(truncated).verdict == Verdict::kError);
}

TEST_CASE("npz members are read only when their dtype holds objects") {
  test::ZipBuilder z;
  z.add("a.npy", npy("'<f4'", std::string(4, '\0')));
  z.add("b.npy", npy("'|O'", "cos\nsystem\n(S'id'\ntR."));
  auto r = test::scan(z.build());
  CHECK(r.verdict == Verdict::kMalicious);
  CHECK(test::finding(r, "deny:os")->member == "b.npy");
}

namespace {
/// torch.storage._load_from_bytes(<inner>) as protocol 4 writes it.
std::string load_from_bytes(std::string_view inner) {
  std::string p(test::lit("\x80\x04" "ctorch.storage\n_load_from_bytes\nB"));
  const auto n = static_cast<std::uint32_t>(inner.size());
  for (int k = 0; k < 4; ++k) p += static_cast<char>((n >> (8 * k)) & 0xFF);
  p += inner;
  p += "\x85R.";
  return p;
}
}  // namespace

TEST_CASE("bytes an approved loader deserializes are scanned as a file in place") {
  // A minimal legacy torch stream (magic number, protocol, sys_info, object None, no storages).
  auto clean = test::scan(load_from_bytes(test::lit("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19."
                                                    "\x80\x02M\xe9\x03.\x80\x02}.N.\x80\x02].")));
  CHECK(clean.verdict == Verdict::kClean);
  CHECK(clean.pickles == 6);
  // A plain pickle is no torch file: torch.load unpickles it, then fails on the magic number.
  auto plain = test::scan(load_from_bytes("N."));
  CHECK(plain.verdict == Verdict::kError);
  CHECK(test::has_rule(plain, "malformed:nested-not-torch"));
  auto evil = test::scan(load_from_bytes("cos\nsystem\n(S'id'\ntR."));
  CHECK(evil.verdict == Verdict::kMalicious);
  const auto* f = test::finding(evil, "deny:os");
  REQUIRE(f);
  CHECK(f->member == "torch.storage._load_from_bytes@61");  // the REDUCE that calls it
  CHECK(f->offset == 19);
}

TEST_CASE("nesting is bounded") {
  std::string p = "N.";
  for (int depth = 0; depth < 4; ++depth) p = load_from_bytes(p);
  CHECK_FALSE(test::has_rule(test::scan(p), "limit:max-nested-depth"));
  p = load_from_bytes(p);
  auto deep = test::scan(p);
  CHECK(deep.verdict == Verdict::kError);
  CHECK(test::has_rule(deep, "limit:max-nested-depth"));
}

TEST_CASE("a zip stored inside a pickle's bytes value is data, not a polyglot") {
  test::ZipBuilder z;
  z.add("readme.txt", "a zip the model carries as data");
  const std::string zip = z.build();
  auto le32 = [](std::size_t v) { return std::string{static_cast<char>(v & 0xFF), static_cast<char>((v >> 8) & 0xFF), static_cast<char>((v >> 16) & 0xFF), static_cast<char>(v >> 24)}; };
  // {'attachment': <zip bytes>} at protocol 3: BINBYTES holds the whole archive, STOP follows.
  const std::string inside = std::string("\x80\x03}X\x0a\x00\x00\x00" "attachmentB", 19) + le32(zip.size()) + zip + "s.";
  auto r = test::scan(inside);
  CHECK(r.verdict == analysis::Verdict::kClean);
  // The same archive after STOP is a polyglot: zipfile-based tools read it, pickle.load does not.
  auto after = test::scan(std::string("\x80\x03}.", 4) + zip);
  CHECK(after.verdict == analysis::Verdict::kMalicious);
}

TEST_CASE("a raw pickle is read whole only when no bulk data may follow its stream") {
  using scan::Scanner;
  const std::string p4(test::lit("\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00K\x01K\x02\x86."));
  CHECK(Scanner::reads_whole(test::bytes(p4)));
  CHECK_FALSE(Scanner::reads_whole(test::bytes(std::string("(lp0\nI1\na."))));  // no PROTO: not known to be a pickle
  // legacy torch.save: tensors follow the pickles
  const std::string legacy = std::string(test::lit("\x80\x02\x8a\x0al\xfc\x9c" "F\xf9 j\xa8P\x19.")) + p4;
  CHECK_FALSE(Scanner::reads_whole(test::bytes(legacy)));
  // joblib: arrays inside the stream, which its loader reads itself
  const std::string joblib(test::lit("\x80\x04\x95\x40\x00\x00\x00\x00\x00\x00\x00\x8c\x13joblib.numpy_pickle\x94\x8c\x11NumpyArrayWrapper\x94\x93."));
  CHECK_FALSE(Scanner::reads_whole(test::bytes(joblib)));
  CHECK_FALSE(Scanner::reads_whole(test::bytes(torch_zip(state_dict_pickle()))));  // a zip: only some members are read
}
