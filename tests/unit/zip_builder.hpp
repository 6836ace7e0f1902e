// Builds small zip archives in memory for tests (stored entries, optional torch-style layout).
// Deliberately independent of libzip, so tests can also produce archives libzip would not write.
#pragma once

#include <zlib.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace brine::test {

class ZipBuilder {
 public:
  /// Knobs for building archives that readers disagree about.
  struct Entry {
    Entry(std::string n, std::string d) : name(std::move(n)), data(std::move(d)) {}
    std::string name, data;
    std::string local_name;          ///< if set, the local header says this instead of `name`
    std::uint16_t flags = 0;
    std::uint16_t method = 0;        ///< 0 stored, 8: `data` is already raw-deflated
    std::uint32_t uncompressed = 0;  ///< for method 8
    bool bad_crc = false;
    bool hidden = false;             ///< local header written, no central record
  };
  void add(std::string name, std::string data) { add(Entry(std::move(name), std::move(data))); }
  void add(Entry e) { entries_.push_back(std::move(e)); }
  std::string prepend;   ///< bytes before the archive
  std::string append;    ///< bytes after the EOCD

  [[nodiscard]] std::string build() const {
    std::string out, central;
    std::uint16_t count = 0;
    for (const auto& e : entries_) {
      const auto offset = static_cast<std::uint32_t>(out.size());
      const std::uint32_t usize = e.method == 0 ? static_cast<std::uint32_t>(e.data.size()) : e.uncompressed;
      std::uint32_t crc = e.method == 0 ? static_cast<std::uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(e.data.data()), static_cast<uInt>(e.data.size()))) : crc_;
      if (e.bad_crc) crc ^= 0xdeadbeef;
      const auto csize = static_cast<std::uint32_t>(e.data.size());
      const std::string& lname = e.local_name.empty() ? e.name : e.local_name;
      // local file header
      u32(out, 0x04034b50); u16(out, 20); u16(out, e.flags); u16(out, e.method); u16(out, 0); u16(out, 0);
      u32(out, crc); u32(out, csize); u32(out, usize); u16(out, static_cast<std::uint16_t>(lname.size())); u16(out, 0);
      out += lname;
      out += e.data;
      if (e.hidden) continue;
      ++count;
      // central directory entry
      u32(central, 0x02014b50); u16(central, 20); u16(central, 20); u16(central, e.flags); u16(central, e.method);
      u16(central, 0); u16(central, 0); u32(central, crc); u32(central, csize); u32(central, usize);
      u16(central, static_cast<std::uint16_t>(e.name.size())); u16(central, 0); u16(central, 0); u16(central, 0); u16(central, 0);
      u32(central, 0); u32(central, offset);
      central += e.name;
    }
    const auto cd_offset = static_cast<std::uint32_t>(out.size());
    out += central;
    u32(out, 0x06054b50); u16(out, 0); u16(out, 0);
    u16(out, count); u16(out, count);
    u32(out, static_cast<std::uint32_t>(central.size())); u32(out, cd_offset); u16(out, 0);
    return prepend + out + append;
  }
  /// CRC to record for deflated entries (tests set it from the uncompressed data).
  std::uint32_t crc_ = 0;

 private:
  static void u16(std::string& s, std::uint16_t v) {
    s += static_cast<char>(v & 0xFF);
    s += static_cast<char>(v >> 8);
  }
  static void u32(std::string& s, std::uint32_t v) {
    u16(s, static_cast<std::uint16_t>(v & 0xFFFF));
    u16(s, static_cast<std::uint16_t>(v >> 16));
  }
  std::vector<Entry> entries_;
};

}  // namespace brine::test
