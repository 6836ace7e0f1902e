// Containers: raw streams, torch zips (storage records are never read), the legacy torch stream.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

#include "helpers.hpp"
#include "scan/file_scan.hpp"
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

namespace {
/// Everything a report says but its timing.
std::string describe(const scan::FileReport& r) {
  std::string s = r.container + " " + std::to_string(static_cast<int>(r.verdict)) + " pickles " + std::to_string(r.pickles) +
                  " opcodes " + std::to_string(r.opcodes) + "\n";
  for (const auto& f : r.findings) {
    s += f.rule + "|" + f.global + "|" + f.use + "|" + f.call + "|" + f.member + "|" + std::to_string(f.offset) + "|" + f.opcode +
         "|" + f.message + "|" + std::to_string(f.count) + "\n";
  }
  for (const auto& m : r.members) s += m.name + "|" + m.format + "|" + std::to_string(m.size) + "|" + (m.scanned ? "1" : "0") + "\n";
  return s;
}
}  // namespace

TEST_CASE("a torch zip's data.pkl run while its local headers are read gives the report of one step after another") {
  // Mapped (over 1 MiB) and with many local headers: scan_zip reads the headers on a second
  // thread while it runs data.pkl, and keeps that run for data.pkl's turn. An archive in memory
  // is scanned one step after another: both reports must be the same, findings in the same order.
  const std::string payload(test::lit("\x80\x02\x63os\nsystem\n\x58\x02\x00\x00\x00id\x85R."));
  // A joblib array whose bytes pickle.load would run as opcodes (see test_containers.cpp).
  std::string padding(test::lit("cos\nsystem\n1")), array;
  while (padding.size() < 40) padding += "N0";
  while (array.size() < 24) array += "N0";
  const std::string joblib = test::joblib_stream(3, "(" + padding + array);
  struct Case {
    const char* what;
    std::string data_pkl;
    bool extras;  // a hidden local header and a .pkl member with a payload: layout findings come first
    bool early;   // whether data.pkl's run is made early (and taken)
  };
  const Case cases[] = {
      {"a clean state dict", state_dict_pickle(), false, true},
      {"a payload", payload, false, true},
      {"a joblib array (the early run gives up at its BUILD)", joblib, false, false},
      {"layout findings and another pickle", state_dict_pickle(), true, true},
      {"not a pickle", "not a pickle at all", false, false},
  };
  scan::ScanOptions options;
  options.compute_sha256 = false;
  const scan::Scanner scanner(test::builtin_rules(), options);
  for (const auto& c : cases) {
    CAPTURE(c.what);
    test::ZipBuilder z;
    z.add("archive/data.pkl", c.data_pkl);
    z.add("archive/data/0", std::string(std::size_t{3} << 19, '\x02'));  // 1.5 MiB: the file is mapped
    for (int i = 1; i < 80; ++i) z.add("archive/data/" + std::to_string(i), std::string(64, static_cast<char>(i)));
    z.add("archive/version", "3\n");
    if (c.extras) {
      test::ZipBuilder::Entry hidden("archive/hidden.pkl", payload);
      hidden.hidden = true;
      z.add(std::move(hidden));
      z.add("archive/extra.pkl", payload);
    }
    const std::string bytes = z.build();
    const auto path = (std::filesystem::temp_directory_path() / "brine_unit_early_run.pt").string();
    std::ofstream(path, std::ios::binary | std::ios::trunc).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    const std::uint64_t taken = scan::FileScan::early_runs_taken();
    auto mapped = scanner.scan_path(path);
    CHECK(scan::FileScan::early_runs_taken() - taken == (c.early ? 1 : 0));
    auto in_memory = scanner.scan_bytes(test::bytes(bytes), path);
    std::filesystem::remove(path);
    CHECK(mapped.container == "torch-zip");
    CHECK(describe(mapped) == describe(in_memory));
  }
}
