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
  void add(std::string name, std::string data) { entries_.push_back({std::move(name), std::move(data)}); }

  [[nodiscard]] std::string build() const {
    std::string out, central;
    for (const auto& e : entries_) {
      const auto offset = static_cast<std::uint32_t>(out.size());
      const auto crc = static_cast<std::uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(e.data.data()), static_cast<uInt>(e.data.size())));
      const auto size = static_cast<std::uint32_t>(e.data.size());
      const auto name_len = static_cast<std::uint16_t>(e.name.size());
      // local file header
      u32(out, 0x04034b50); u16(out, 20); u16(out, 0); u16(out, 0); u16(out, 0); u16(out, 0);
      u32(out, crc); u32(out, size); u32(out, size); u16(out, name_len); u16(out, 0);
      out += e.name;
      out += e.data;
      // central directory entry
      u32(central, 0x02014b50); u16(central, 20); u16(central, 20); u16(central, 0); u16(central, 0);
      u16(central, 0); u16(central, 0); u32(central, crc); u32(central, size); u32(central, size);
      u16(central, name_len); u16(central, 0); u16(central, 0); u16(central, 0); u16(central, 0);
      u32(central, 0); u32(central, offset);
      central += e.name;
    }
    const auto cd_offset = static_cast<std::uint32_t>(out.size());
    out += central;
    u32(out, 0x06054b50); u16(out, 0); u16(out, 0);
    u16(out, static_cast<std::uint16_t>(entries_.size())); u16(out, static_cast<std::uint16_t>(entries_.size()));
    u32(out, static_cast<std::uint32_t>(central.size())); u32(out, cd_offset); u16(out, 0);
    return out;
  }

 private:
  struct Entry {
    std::string name, data;
  };
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
