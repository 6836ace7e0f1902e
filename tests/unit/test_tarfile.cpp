// Tar as Python's tarfile reads it (torch.load's legacy tar attempt), and the scan that follows
// that reading. Every layout here is one where libarchive, GNU tar or brine's former ustar-only
// sniff read something else than tarfile.
#include <doctest/doctest.h>

#include <string>

#include "container/sniff.hpp"
#include "container/tarfile_model.hpp"
#include "helpers.hpp"

using namespace brine;
using analysis::Verdict;
using container::TarContent;

namespace {

const std::string kPayload(test::lit("cos\nsystem\n(S'echo brine-test'\ntR."));
// torch 0.1.x tar members with no storages and no tensors: a count of 0, and (storages) an
// empty list of views.
const std::string kStorages(test::lit("\x80\x02K\x00.\x80\x02]q\x00."));
const std::string kTensors(test::lit("\x80\x02K\x00."));
const std::string kState(test::lit("\x80\x02}q\x00."));

struct Header {
  std::string name;
  std::uint64_t size = 0;
  char type = '0';
  std::string linkname;
  bool ustar = false;
  std::string size_field;  ///< raw 12-byte field, overriding `size`
  std::string prefix;
  bool signed_sum = false;
};

std::string header(const Header& h) {
  std::string b(512, '\0');
  b.replace(0, std::min<std::size_t>(h.name.size(), 100), h.name.substr(0, 100));
  b.replace(100, 8, std::string("0000644\0", 8));
  b.replace(108, 8, std::string("0000000\0", 8));
  b.replace(116, 8, std::string("0000000\0", 8));
  std::string size = h.size_field;
  if (size.empty()) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%011llo", static_cast<unsigned long long>(h.size));
    size = std::string(buf, 11) + '\0';
  }
  b.replace(124, 12, size);
  b.replace(136, 12, std::string("00000000000\0", 12));
  b[156] = h.type;
  b.replace(157, h.linkname.size(), h.linkname);
  if (h.ustar) b.replace(257, 8, std::string("ustar\0" "00", 8));
  b.replace(345, h.prefix.size(), h.prefix);
  b.replace(148, 8, "        ");
  long sum = 0;
  for (unsigned char c : b) sum += h.signed_sum ? static_cast<signed char>(c) : c;
  char buf[16];
  std::snprintf(buf, sizeof buf, "%06lo", static_cast<unsigned long>(sum));
  b.replace(148, 8, std::string(buf, 6) + std::string("\0 ", 2));
  return b;
}

std::string padded(std::string d) {
  d.resize((d.size() + 511) / 512 * 512, '\0');
  return d;
}

std::string member(const std::string& name, const std::string& data, bool ustar = false) {
  Header h;
  h.name = name;
  h.size = data.size();
  h.ustar = ustar;
  return header(h) + padded(data);
}

std::string torch_tar(const std::string& pickle_member, bool ustar = false) {
  return member("storages", kStorages, ustar) + member("tensors", kTensors, ustar) + member("pickle", pickle_member, ustar) +
         std::string(1024, '\0');
}

core::Bytes bytes(const std::string& s) { return core::as_bytes(s); }

}  // namespace

TEST_CASE("Python int() as tarfile's nti and joblib's ZF header use it") {
  using container::python_int;
  CHECK(python_int("17", 8) == 15);
  CHECK(python_int("0o17", 8) == 15);
  CHECK(python_int("0O_17", 8) == 15);
  CHECK(python_int("+17", 8) == 15);
  CHECK(python_int(" 1_7\t", 8) == 15);
  CHECK(python_int("-17", 8) == -15);
  CHECK_FALSE(python_int("1__7", 8));
  CHECK_FALSE(python_int("_17", 8));
  CHECK_FALSE(python_int("17_", 8));
  CHECK_FALSE(python_int("8", 8));
  CHECK_FALSE(python_int("", 8));
  CHECK_FALSE(python_int("+ 1", 8));
  CHECK(python_int("1a", 16) == 26);
  CHECK(python_int("0x1a", 16) == 26);
  CHECK(container::posix_normpath("a/./b//../c") == "a/c");
  CHECK(container::posix_normpath("../x") == "../x");
  CHECK(container::posix_normpath("/../x") == "/x");
  CHECK(container::posix_normpath("//x") == "//x");
  CHECK(container::posix_normpath("") == ".");
}

TEST_CASE("tarfile accepts a first block by its checksum alone (no ustar magic), signed or unsigned") {
  const std::string v7 = torch_tar(kState);
  CHECK(container::tarfile_opens(bytes(v7)));
  CHECK(container::sniff_archive(bytes(v7)) == std::optional<std::string_view>("tar"));
  Header h;
  h.name = "\xe9\xe9";  // bytes >= 0x80: the signed and unsigned sums differ
  h.signed_sum = true;
  CHECK(container::tarfile_opens(bytes(header(h) + std::string(1024, '\0'))));
  std::string bad = v7;
  bad[0] ^= 1;  // checksum no longer matches
  CHECK_FALSE(container::tarfile_opens(bytes(bad)));
  CHECK_FALSE(container::read_tarfile(bytes(bad), 100).opens);
  // An all-zero first block is an empty archive that opens.
  auto empty = container::read_tarfile(bytes(std::string(1024, '\0')), 100);
  CHECK(empty.opens);
  CHECK(empty.members.empty());
}

TEST_CASE("tarfile's member walk: numbers, prefix, link data, unknown types, pax, silent end") {
  SUBCASE("Python int syntax in the size field") {
    Header h;
    h.name = "pickle";
    h.size_field = std::string("0o42       \0", 12);  // 34 bytes to tarfile, 0 to a C octal parser
    const std::string tar = header(h) + padded(kPayload) + std::string(1024, '\0');
    auto t = container::read_tarfile(bytes(tar), 100);
    REQUIRE(t.members.size() == 1);
    CHECK(t.members[0].size == 34);
  }
  SUBCASE("the ustar prefix field is applied to a v7 header too") {
    Header h;
    h.name = "pickle";
    h.prefix = "dir";
    auto t = container::read_tarfile(bytes(header(h) + std::string(1024, '\0')), 100);
    REQUIRE(t.members.size() == 1);
    CHECK(t.members[0].name == "dir/pickle");
  }
  SUBCASE("a link entry's size is ignored: its data is read as the next header") {
    Header link;
    link.name = "link";
    link.type = '1';
    link.linkname = "storages";
    link.size = 512 + 512;
    const std::string hidden = member("pickle", kPayload);
    const std::string tar = member("storages", kStorages) + header(link) + hidden + std::string(1024, '\0');
    auto t = container::read_tarfile(bytes(tar), 100);
    REQUIRE(t.members.size() == 3);
    CHECK(t.members[2].name == "pickle");
    auto c = container::tarfile_extractfile(t, bytes(tar), "pickle");
    REQUIRE(c.kind == TarContent::Kind::kBytes);
    CHECK(core::as_chars(c.bytes) == kPayload);
  }
  SUBCASE("an unknown type flag is a regular file; the last member of a name wins") {
    Header z;
    z.name = "pickle";
    z.type = 'Z';
    z.size = kPayload.size();
    const std::string tar = member("pickle", kState) + header(z) + padded(kPayload) + std::string(1024, '\0');
    auto t = container::read_tarfile(bytes(tar), 100);
    auto c = container::tarfile_extractfile(t, bytes(tar), "pickle");
    REQUIRE(c.kind == TarContent::Kind::kBytes);
    CHECK(core::as_chars(c.bytes) == kPayload);
  }
  SUBCASE("a pax global header renames every later member") {
    const std::string rec = "12 path=abc\n";
    Header g;
    g.name = "g";
    g.type = 'g';
    g.size = rec.size();
    const std::string tar = header(g) + padded(rec) + member("x", "1") + member("y", "2") + std::string(1024, '\0');
    auto t = container::read_tarfile(bytes(tar), 100);
    REQUIRE(t.members.size() == 2);
    CHECK(t.members[0].name == "abc");
    CHECK(t.members[1].name == "abc");
  }
  SUBCASE("a bad header after the first ends the archive without an error") {
    std::string junk(512, 'j');
    const std::string tar = member("a", "1") + junk + member("b", "2");
    auto t = container::read_tarfile(bytes(tar), 100);
    CHECK(t.end == container::TarEnd::kClean);
    CHECK(t.members.size() == 1);
  }
  SUBCASE("data running past the end is a ReadError (torch.load falls back to the pickle stream)") {
    Header h;
    h.name = "a";
    h.size = 5000;
    auto t = container::read_tarfile(bytes(header(h) + std::string(600, 'x')), 100);
    CHECK(t.end == container::TarEnd::kTarError);
  }
  SUBCASE("a symbolic link that leaves the archive cannot be modelled") {
    Header s;
    s.name = "storages";
    s.type = '2';
    s.linkname = "/etc/passwd";
    const std::string tar = header(s) + std::string(1024, '\0');
    auto t = container::read_tarfile(bytes(tar), 100);
    CHECK(container::tarfile_extract(t, bytes(tar), "storages", {}).kind == TarContent::Kind::kUnmodelled);
  }
}

TEST_CASE("torch legacy tar without the ustar magic: tarfile's reading is scanned") {
  auto bad = test::scan(torch_tar(kPayload));
  CHECK(bad.verdict == Verdict::kMalicious);
  CHECK(test::has_rule(bad, "deny:os"));
  auto good = test::scan(torch_tar(kState));
  CHECK(good.verdict == Verdict::kClean);
  CHECK(good.container == "torch-tar");
}

TEST_CASE("a harmless pickle that is also a tar: torch.load reads the tar first") {
  // "\x80\x02B" + length: the first header's name starts a BINBYTES that swallows the file up to
  // the final STOP. pickle.load sees one bytes object; tarfile sees the members.
  const std::string body = torch_tar(kPayload);
  const std::uint32_t len = static_cast<std::uint32_t>(512 + body.size() + 1 - 8);
  Header first;
  first.name = std::string("\x80\x02" "B", 3) + std::string(reinterpret_cast<const char*>(&len), 4);
  const std::string file = header(first) + body + ".";
  auto r = test::scan(file);
  CHECK(r.verdict == Verdict::kMalicious);
  CHECK(test::has_rule(r, "deny:os"));
}

TEST_CASE("tarfile and libarchive disagreeing is a finding, and what either reads is scanned") {
  Header h;
  h.name = "pickle";
  h.ustar = true;
  h.size_field = std::string("0o42       \0", 12);
  const std::string tar = member("storages", kStorages, true) + member("tensors", kTensors, true) + header(h) +
                          padded(kPayload) + std::string(1024, '\0');
  auto r = test::scan(tar);
  CHECK(r.verdict == Verdict::kMalicious);
  CHECK(test::has_rule(r, "deny:os"));
  CHECK(test::has_rule(r, "unapproved:tar-reader-disagreement"));
}

TEST_CASE("a legacy torch stream whose first block is also a tar header: torch.load opens the tar first") {
  // magic number and protocol pickles, then sys_info = a BINBYTES object whose contents complete
  // a 512-byte tar header (valid checksum) and hold a whole tar; then the object, keys and (no)
  // storages. brine read the five benign pickles and called it clean.
  const std::string magic(test::lit("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19\x2e"));
  const std::string protocol(test::lit("\x80\x02M\xe9\x03."));
  const std::string tar = torch_tar(kPayload);
  const std::string opener(test::lit("\x80\x02" "B"));
  const std::size_t start = magic.size() + protocol.size() + opener.size() + 4;
  const std::uint32_t len = static_cast<std::uint32_t>(512 - start + tar.size());
  std::string block = magic + protocol + opener + std::string(reinterpret_cast<const char*>(&len), 4);
  block.resize(512, '\0');
  block.replace(100, 8, std::string("0000644\0", 8));
  block.replace(108, 16, std::string("0000000\0" "0000000\0", 16));
  block.replace(124, 12, std::string("00000000000\0", 12));
  block.replace(136, 12, std::string("00000000000\0", 12));
  block[156] = '0';
  block.replace(148, 8, "        ");
  long sum = 0;
  for (unsigned char c : block) sum += c;
  char buf[16];
  std::snprintf(buf, sizeof buf, "%06lo", static_cast<unsigned long>(sum));
  block.replace(148, 8, std::string(buf, 6) + std::string("\0 ", 2));
  const std::string file = block + tar + "." + kState + std::string(test::lit("\x80\x02]q\x00."));
  REQUIRE(container::is_torch_legacy_magic(core::as_bytes(file)));
  REQUIRE(container::tarfile_opens(core::as_bytes(file)));
  auto r = test::scan(file);
  CHECK(r.verdict == Verdict::kMalicious);
  CHECK(test::has_rule(r, "deny:os"));
}
