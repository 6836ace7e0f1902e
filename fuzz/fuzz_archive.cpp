// Structure-aware archive fuzzing: the input is a recipe for a zip or tar with up to 3,000
// entries, and the scan of the archive built from it is checked against an oracle.
//
// Byte mutation of a real archive almost never reaches thousands of entries, consistent central
// directories with one entry missing, or an entry count that lies by a chosen amount. A recipe
// reaches them in a few bytes. The recipe controls:
// - the entry count and each entry's name and contents;
// - where data.pkl goes, and whether it holds a payload;
// - a duplicate data.pkl, in either order;
// - a central-directory entry left out, and an end record whose count lies;
// - junk in front of the archive.
//
// Oracle: when any data.pkl holds the payload (os.system), the verdict must never be `clean`.
// It may be malicious, unapproved (a hidden or duplicate entry) or error (a limit), but never clean.
#include <zlib.h>

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <fstream>
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_common.hpp"

namespace {

/// Reads the recipe; past its end every read is zero, so any input is a valid recipe.
class Recipe {
 public:
  Recipe(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  std::uint8_t u8() { return pos_ < size_ ? data_[pos_++] : 0; }
  std::uint16_t u16() { return static_cast<std::uint16_t>(u8() | (u8() << 8)); }
  std::string bytes(std::size_t n) {
    std::string s;
    while (n-- > 0 && pos_ < size_) s += static_cast<char>(data_[pos_++]);
    return s;
  }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

struct Entry {
  std::string name, data;
};

void put16(std::string& o, std::uint32_t v) {
  o += static_cast<char>(v & 0xFF);
  o += static_cast<char>((v >> 8) & 0xFF);
}
void put32(std::string& o, std::uint32_t v) {
  put16(o, v & 0xFFFF);
  put16(o, v >> 16);
}

std::uint32_t crc(const std::string& s) {
  return static_cast<std::uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(s.data()), static_cast<uInt>(s.size())));
}

/// A stored (method 0) zip. `hidden`: an entry index left out of the central directory;
/// `count_lie`: XORed into the end record's entry counts.
std::string build_zip(const std::vector<Entry>& entries, std::size_t hidden, std::uint16_t count_lie) {
  std::string out, central;
  std::uint32_t listed = 0;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const Entry& e = entries[i];
    const auto offset = static_cast<std::uint32_t>(out.size());
    const std::uint32_t c = crc(e.data);
    put32(out, 0x04034b50);
    put16(out, 20);
    put16(out, 0);
    put16(out, 0);
    put32(out, 0);
    put32(out, c);
    put32(out, static_cast<std::uint32_t>(e.data.size()));
    put32(out, static_cast<std::uint32_t>(e.data.size()));
    put16(out, static_cast<std::uint32_t>(e.name.size()));
    put16(out, 0);
    out += e.name;
    out += e.data;
    if (i == hidden) continue;
    ++listed;
    put32(central, 0x02014b50);
    put16(central, 20);
    put16(central, 20);
    put16(central, 0);
    put16(central, 0);
    put32(central, 0);
    put32(central, c);
    put32(central, static_cast<std::uint32_t>(e.data.size()));
    put32(central, static_cast<std::uint32_t>(e.data.size()));
    put16(central, static_cast<std::uint32_t>(e.name.size()));
    put16(central, 0);
    put16(central, 0);
    put16(central, 0);
    put16(central, 0);
    put32(central, 0);
    put32(central, offset);
    central += e.name;
  }
  const auto cd_offset = static_cast<std::uint32_t>(out.size());
  out += central;
  put32(out, 0x06054b50);
  put16(out, 0);
  put16(out, 0);
  put16(out, (listed ^ count_lie) & 0xFFFF);
  put16(out, (listed ^ count_lie) & 0xFFFF);
  put32(out, static_cast<std::uint32_t>(central.size()));
  put32(out, cd_offset);
  put16(out, 0);
  return out;
}

std::string build_tar(const std::vector<Entry>& entries) {
  std::string out;
  for (const Entry& e : entries) {
    std::string h(512, '\0');
    h.replace(0, std::min<std::size_t>(e.name.size(), 99), e.name.substr(0, 99));
    h.replace(100, 8, "0000644", 8);
    h.replace(108, 8, "0000000", 8);
    h.replace(116, 8, "0000000", 8);
    char size[12];
    std::snprintf(size, sizeof size, "%011o", static_cast<unsigned>(e.data.size()));
    h.replace(124, 12, size, 12);
    h.replace(136, 12, "00000000000", 12);
    h[156] = '0';
    h.replace(257, 6, "ustar", 6);
    h.replace(263, 2, "00", 2);
    h.replace(148, 8, "        ", 8);
    unsigned sum = 0;
    for (unsigned char ch : h) sum += ch;
    char chk[8];
    std::snprintf(chk, sizeof chk, "%06o", sum);
    h.replace(148, 7, chk, 7);
    out += h;
    out += e.data;
    out.append((512 - e.data.size() % 512) % 512, '\0');
  }
  out.append(1024, '\0');
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace brine;
  static const std::string kBenign("\x80\x02}q\x00.", 6);
  static const std::string kPayload("cos\nsystem\n(S'echo brine-fuzz'\ntR.");
  Recipe r(data, size);
  const std::size_t n = r.u16() % 3001;
  const std::uint8_t flags = r.u8();
  const bool tar = flags & 0x01, lie = flags & 0x02, hide = flags & 0x04, payload = flags & 0x08;
  const bool duplicate = flags & 0x10, payload_first = flags & 0x20, junk = flags & 0x40;
  const std::size_t pkl_at = n == 0 ? 0 : r.u16() % (n + 1);
  const std::uint16_t count_lie = lie ? static_cast<std::uint16_t>(r.u16() | 1) : 0;
  const std::size_t hidden = hide ? r.u16() % (n + 2) : SIZE_MAX;
  const std::string junk_bytes = junk ? r.bytes(r.u8()) : std::string();

  std::vector<Entry> entries;
  entries.reserve(n + 3);
  bool payload_placed = false;
  auto place_pickles = [&] {
    const std::string& first = payload && payload_first ? kPayload : kBenign;
    entries.push_back({"archive/data.pkl", payload && !duplicate ? kPayload : first});
    payload_placed = payload_placed || entries.back().data == kPayload;
    if (duplicate) {
      entries.push_back({"archive/data.pkl", payload && !payload_first ? kPayload : kBenign});
      payload_placed = payload_placed || entries.back().data == kPayload;
    }
  };
  for (std::size_t i = 0; i < n; ++i) {
    if (i == pkl_at) place_pickles();
    const std::uint8_t kind = r.u8();
    if (kind < 200) {
      entries.push_back({"archive/data/" + std::to_string(i), r.bytes(kind % 32)});
    } else if (kind < 240) {
      entries.push_back({r.bytes(r.u8() % 40), r.bytes(r.u8() % 64)});
    } else {
      entries.push_back({"archive/version", "3\n"});
    }
  }
  if (pkl_at >= n) place_pickles();

  std::string archive = junk_bytes + (tar ? build_tar(entries) : build_zip(entries, hidden, count_lie));
  // To look at what a recipe builds (or a reproducer): BRINE_FUZZ_ARCHIVE_DUMP=out.pt replay it.
  if (const char* dump = std::getenv("BRINE_FUZZ_ARCHIVE_DUMP")) std::ofstream(dump, std::ios::binary) << archive;
  const auto report = fuzz::scanner().scan_bytes(core::as_bytes(archive), "fuzz.pt");
  // The oracle: an archive that carries the payload as data.pkl is never clean, however its
  // directory lies, and whichever reader's view the payload is in.
  if (payload_placed && report.verdict == analysis::Verdict::kClean) __builtin_trap();
  return 0;
}
