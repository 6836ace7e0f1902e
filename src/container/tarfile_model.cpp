#include "container/tarfile_model.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <map>

namespace brine::container {

namespace {

constexpr std::uint64_t kBlock = 512;
/// Headers that only prefix the next one (GNU longname/longlink, pax): tarfile recurses once per
/// level; past this many brine stops and says so.
constexpr int kMaxChain = 32;
/// Link chains followed by extractfile/extract before brine stops and says so.
constexpr int kMaxLinkHops = 32;

bool py_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f' || (c >= 0x1c && c <= 0x1f);
}

std::string_view py_strip(std::string_view s) {
  while (!s.empty() && py_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && py_space(s.back())) s.remove_suffix(1);
  return s;
}

/// tarfile.nts: up to the first NUL.
std::string nts(core::Bytes b) {
  std::string s(reinterpret_cast<const char*>(b.data()), b.size());
  const auto nul = s.find('\0');
  if (nul != std::string::npos) s.resize(nul);
  return s;
}

std::uint64_t block(std::uint64_t n) { return (n + kBlock - 1) / kBlock * kBlock; }

/// What went wrong while reading one header: the HeaderError subclasses of tarfile, plus brine's
/// own "cannot model this".
enum class HeaderFault : std::uint8_t { kNone, kEmpty, kTruncated, kEof, kInvalid, kSubsequent, kUnmodelled, kFatal };

struct HeaderResult {
  HeaderFault fault = HeaderFault::kNone;
  std::string why;
  TarMember member;
  std::uint64_t next_offset = 0;  ///< tarfile.offset after this member
  std::uint64_t file_pos = 0;     ///< fileobj.tell() after this member
};

/// tarfile.nti. nullopt: InvalidHeaderError; `unmodelled` set when the value is out of range.
std::optional<std::int64_t> nti(core::Bytes s, bool& unmodelled) {
  if (s[0] == 0x80 || s[0] == 0xff) {
    // base-256; a value beyond 63 bits is not one brine can follow
    std::uint64_t n = 0;
    for (std::size_t i = 1; i < s.size(); ++i) {
      if (n >> 55) {
        unmodelled = true;
        return 0;
      }
      n = (n << 8) | s[i];
    }
    if (n >> 63) {
      unmodelled = true;
      return 0;
    }
    if (s[0] == 0xff) {
      // -(256 ** (len - 1) - n)
      if (s.size() - 1 >= 8) {
        unmodelled = true;
        return 0;
      }
      return static_cast<std::int64_t>(n) - (static_cast<std::int64_t>(1) << (8 * (s.size() - 1)));
    }
    return static_cast<std::int64_t>(n);
  }
  const std::string text = nts(s);
  for (unsigned char c : text) {
    if (c >= 0x80) return std::nullopt;  // ascii decode fails: ValueError
  }
  std::string_view t = py_strip(text);
  if (t.empty()) return 0;
  bool overflow = false;
  auto v = python_int(t, 8, &overflow);
  if (overflow) unmodelled = true;
  return v;
}

struct Walker {
  core::Bytes data;
  std::map<std::string, std::string> global_pax;  // tarfile.pax_headers
  std::vector<std::string>* notes;

  HeaderResult fromtarfile(std::uint64_t at, int depth);
  void apply_pax(TarMember& m, const std::map<std::string, std::string>& pax, HeaderResult& r) {
    for (const auto& [key, value] : pax) {
      if (key == "GNU.sparse.name" || key == "GNU.sparse.size" || key == "GNU.sparse.realsize") {
        r.fault = HeaderFault::kUnmodelled;
        r.why = "a pax GNU sparse member";
      } else if (key == "path") {
        std::string v = value;
        while (!v.empty() && v.back() == '/') v.pop_back();
        m.name = v;
      } else if (key == "linkpath") {
        m.linkname = value;
      } else if (key == "size") {
        bool overflow = false;
        bool ascii = std::all_of(value.begin(), value.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
        auto v = ascii ? python_int(py_strip(value), 10, &overflow) : std::nullopt;
        if (!ascii || overflow || (v && *v < 0)) {
          r.fault = HeaderFault::kUnmodelled;
          r.why = "a pax size brine cannot follow (negative, huge or non-ASCII digits)";
        } else {
          m.size = v ? static_cast<std::uint64_t>(*v) : 0;  // ValueError -> 0
        }
      }
    }
  }
};

HeaderResult Walker::fromtarfile(std::uint64_t at, int depth) {
  HeaderResult r;
  if (depth > kMaxChain) {
    r.fault = HeaderFault::kUnmodelled;
    r.why = fmt::format("more than {} extension headers in a row", kMaxChain);
    return r;
  }
  if (at >= data.size()) {
    r.fault = HeaderFault::kEmpty;
    return r;
  }
  if (data.size() - at < kBlock) {
    r.fault = HeaderFault::kTruncated;
    return r;
  }
  const core::Bytes buf = data.subspan(at, kBlock);
  if (std::all_of(buf.begin(), buf.end(), [](std::uint8_t b) { return b == 0; })) {
    r.fault = HeaderFault::kEof;
    return r;
  }
  bool unmodelled = false;
  auto chksum = nti(buf.subspan(148, 8), unmodelled);
  if (!chksum || unmodelled) {
    r.fault = HeaderFault::kInvalid;
    return r;
  }
  std::int64_t unsigned_sum = 256;
  std::int64_t signed_sum = 256;
  for (std::size_t i = 0; i < kBlock; ++i) {
    if (i >= 148 && i < 156) continue;
    unsigned_sum += buf[i];
    signed_sum += static_cast<std::int8_t>(buf[i]);
  }
  if (*chksum != unsigned_sum && *chksum != signed_sum) {
    r.fault = HeaderFault::kInvalid;
    return r;
  }
  TarMember m;
  m.header_offset = at;
  m.name = nts(buf.subspan(0, 100));
  m.type = static_cast<char>(buf[156]);
  m.linkname = nts(buf.subspan(157, 100));
  // Every number field is parsed (any of them can make the header invalid); only size matters.
  std::optional<std::int64_t> size;
  for (auto [off, len] : {std::pair{100, 8}, {108, 8}, {116, 8}, {124, 12}, {136, 12}, {329, 8}, {337, 8}}) {
    bool big = false;
    auto v = nti(buf.subspan(off, len), big);
    if (!v) {
      r.fault = HeaderFault::kInvalid;
      return r;
    }
    if (off == 124) {
      if (big) unmodelled = true;
      size = v;
    }
  }
  const std::string prefix = nts(buf.subspan(345, 155));
  if (m.type == '\0' && !m.name.empty() && m.name.back() == '/') m.type = '5';
  if (m.type == 'S') {
    r.fault = HeaderFault::kUnmodelled;
    r.why = "a GNU sparse member (type 'S')";
    return r;
  }
  if (m.directory()) {
    while (!m.name.empty() && m.name.back() == '/') m.name.pop_back();
  }
  const bool gnu = m.type == 'L' || m.type == 'K' || m.type == 'S';
  if (!prefix.empty() && !gnu) m.name = prefix + "/" + m.name;
  if (unmodelled || !size || *size < 0) {
    r.fault = HeaderFault::kUnmodelled;
    r.why = fmt::format("header at {}: a size brine cannot follow (base-256 beyond 63 bits or negative)", at);
    return r;
  }
  m.size = static_cast<std::uint64_t>(*size);
  m.data_offset = at + kBlock;

  if (m.type == 'L' || m.type == 'K') {
    // _proc_gnulong: the name is the data (up to a NUL), then the real header follows.
    const std::uint64_t len = std::min<std::uint64_t>(block(m.size), data.size() - m.data_offset);
    const std::string text = nts(data.subspan(m.data_offset, len));
    HeaderResult next = fromtarfile(m.data_offset + len, depth + 1);
    if (next.fault == HeaderFault::kUnmodelled || next.fault == HeaderFault::kFatal) return next;
    if (next.fault != HeaderFault::kNone) {
      next.fault = HeaderFault::kSubsequent;
      return next;
    }
    next.member.header_offset = at;
    if (m.type == 'L') {
      next.member.name = text;
    } else {
      next.member.linkname = text;
    }
    if (next.member.directory() && !next.member.name.empty() && next.member.name.back() == '/') next.member.name.pop_back();
    notes->push_back(fmt::format("GNU long{} header at {}", m.type == 'L' ? "name" : "link", at));
    return next;
  }
  if (m.type == 'x' || m.type == 'g' || m.type == 'X') {
    // _proc_pax: "%d %s=%s\n" records; a global header changes every later member.
    const std::uint64_t len = std::min<std::uint64_t>(block(m.size), data.size() - m.data_offset);
    const core::Bytes pbuf = data.subspan(m.data_offset, len);
    std::map<std::string, std::string> local = global_pax;
    std::map<std::string, std::string>& pax = m.type == 'g' ? global_pax : local;
    std::uint64_t pos = 0;
    while (pos < pbuf.size() && pbuf[pos] != 0) {
      std::uint64_t digits = 0;
      while (pos + digits < pbuf.size() && digits <= 20 && pbuf[pos + digits] >= '0' && pbuf[pos + digits] <= '9') ++digits;
      if (digits == 0 || digits > 20 || pos + digits >= pbuf.size() || pbuf[pos + digits] != ' ') {
        r.fault = HeaderFault::kInvalid;
        return r;
      }
      std::uint64_t length = 0;
      for (std::uint64_t i = 0; i < digits; ++i) {
        if (length > (UINT64_MAX - 9) / 10) {
          r.fault = HeaderFault::kInvalid;
          return r;
        }
        length = length * 10 + (pbuf[pos + i] - '0');
      }
      if (length < 5 || length > pbuf.size() - pos) {
        r.fault = HeaderFault::kInvalid;
        return r;
      }
      const std::uint64_t end = pos + length - 1;  // the '\n'
      const std::uint64_t kv_begin = pos + digits + 1;
      if (kv_begin > end || pbuf[end] != '\n') {
        r.fault = HeaderFault::kInvalid;
        return r;
      }
      const std::string kv(reinterpret_cast<const char*>(pbuf.data() + kv_begin), end - kv_begin);
      const auto eq = kv.find('=');
      if (eq == std::string::npos || eq == 0) {
        r.fault = HeaderFault::kInvalid;
        return r;
      }
      pax[kv.substr(0, eq)] = kv.substr(eq + 1);
      pos += length;
    }
    if (m.type == 'g') notes->push_back(fmt::format("pax global header at {} (applies to every later member in tarfile)", at));
    HeaderResult next = fromtarfile(m.data_offset + len, depth + 1);
    if (next.fault == HeaderFault::kUnmodelled || next.fault == HeaderFault::kFatal) return next;
    if (next.fault != HeaderFault::kNone) {
      next.fault = HeaderFault::kSubsequent;
      return next;
    }
    if (pax.count("GNU.sparse.map") || pax.count("GNU.sparse.size") || pax.count("GNU.sparse.major")) {
      next.fault = HeaderFault::kUnmodelled;
      next.why = "a pax GNU sparse member";
      return next;
    }
    if (m.type != 'g') {
      apply_pax(next.member, pax, next);
      if (next.fault != HeaderFault::kNone) return next;
      next.member.header_offset = at;
      if (pax.count("size")) {
        next.next_offset = next.member.data_offset + (next.member.regular() ? block(next.member.size) : 0);
      }
    }
    return next;
  }
  // _proc_builtin: data follows only for regular files and unknown types; link entries' sizes
  // are ignored (their "data" is read as the next header).
  r.file_pos = m.data_offset;
  r.next_offset = m.data_offset + (m.regular() ? block(m.size) : 0);
  apply_pax(m, global_pax, r);
  if (r.fault != HeaderFault::kNone) return r;
  if (m.directory()) {
    while (!m.name.empty() && m.name.back() == '/') m.name.pop_back();
  }
  r.member = std::move(m);
  return r;
}

const TarMember* getmember(const TarfileReading& t, std::string_view name, std::size_t limit, bool normalize) {
  const std::string want = normalize ? posix_normpath(name) : std::string(name);
  for (std::size_t i = std::min(limit, t.members.size()); i-- > 0;) {
    const auto& m = t.members[i];
    if ((normalize ? posix_normpath(m.name) : m.name) == want) return &m;
  }
  return nullptr;
}

TarContent data_of(const TarMember& m, core::Bytes data) {
  TarContent c;
  c.kind = TarContent::Kind::kBytes;
  c.member = &m;
  const std::uint64_t begin = std::min<std::uint64_t>(m.data_offset, data.size());
  const std::uint64_t avail = data.size() - begin;
  c.truncated = m.size > avail;
  c.bytes = data.subspan(begin, std::min(m.size, avail));
  return c;
}

TarContent fails(std::string why) {
  TarContent c;
  c.kind = TarContent::Kind::kFails;
  c.why = std::move(why);
  return c;
}
TarContent unmodelled(std::string why) {
  TarContent c;
  c.kind = TarContent::Kind::kUnmodelled;
  c.why = std::move(why);
  return c;
}

std::size_t index_of(const TarfileReading& t, const TarMember* m) { return static_cast<std::size_t>(m - t.members.data()); }

/// The bytes _extract_member writes for `m` (and makelink's in-archive fallback).
TarContent extract_member(const TarfileReading& t, core::Bytes data, const TarMember& m,
                          const std::vector<std::pair<std::string, TarContent>>& extracted, int hops) {
  if (hops > kMaxLinkHops) return unmodelled("a chain of links longer than brine follows");
  if (m.regular()) return data_of(m, data);
  if (m.directory()) return fails(fmt::format("'{}' is a directory", m.name));
  if (m.hardlink() || m.symlink()) {
    const std::string& link = m.linkname;
    if (link.empty() || link.front() == '/' || link.find("..") != std::string::npos) {
      return unmodelled(fmt::format("'{}' links to '{}', outside what brine can resolve in the archive", m.name, link));
    }
    const std::string norm = posix_normpath(link);
    for (const auto& [name, content] : extracted) {
      if (name == norm) return content;  // the link lands on a file extracted before
    }
    if (norm == "." ) return unmodelled(fmt::format("'{}' links to the extraction directory", m.name));
    if (m.symlink()) return fails(fmt::format("'{}' is a dangling symbolic link to '{}'", m.name, link));
    // os.link fails (nothing there yet): tarfile extracts the target member's data instead.
    const TarMember* target = getmember(t, link, index_of(t, &m), /*normalize=*/true);
    if (target == nullptr) return fails(fmt::format("hard link '{}' to a missing member '{}'", m.name, link));
    return extract_member(t, data, *target, extracted, hops + 1);
  }
  return unmodelled(fmt::format("'{}' is a device or FIFO entry (type '{}'): extraction creates a special file", m.name, m.type));
}

TarContent extractfile_member(const TarfileReading& t, core::Bytes data, const TarMember& m, int hops) {
  if (hops > kMaxLinkHops) return unmodelled("a chain of links longer than brine follows");
  if (m.regular()) return data_of(m, data);
  if (m.hardlink() || m.symlink()) {
    const TarMember* target = nullptr;
    if (m.symlink()) {
      const auto slash = m.name.rfind('/');
      std::string dir = slash == std::string::npos ? std::string() : m.name.substr(0, slash);
      const std::string joined = dir.empty() ? m.linkname : m.linkname.empty() ? dir : dir + "/" + m.linkname;
      target = getmember(t, joined, t.members.size(), true);
    } else {
      target = getmember(t, m.linkname, index_of(t, &m), true);
    }
    if (target == nullptr) return fails(fmt::format("link '{}' to a member that is not in the archive", m.name));
    return extractfile_member(t, data, *target, hops + 1);
  }
  return fails(fmt::format("'{}' is not a file (extractfile returns None)", m.name));
}

}  // namespace

bool TarMember::regular() const {
  switch (type) {
    case '0': case '\0': case '7': case 'S': return true;  // REGULAR_TYPES
    case '1': case '2': case '3': case '4': case '5': case '6':
    case 'L': case 'K': case 'x': case 'g': case 'X': return false;  // other SUPPORTED_TYPES
    default: return true;  // unknown types are read as regular files
  }
}

std::optional<std::int64_t> python_int(std::string_view text, int base, bool* overflow) {
  std::string_view s = py_strip(text);
  bool negative = false;
  if (!s.empty() && (s.front() == '+' || s.front() == '-')) {
    negative = s.front() == '-';
    s.remove_prefix(1);
  }
  bool prefixed = false;
  if (s.size() >= 2 && s[0] == '0') {
    const char p = static_cast<char>(s[1] | 0x20);
    if ((base == 8 && p == 'o') || (base == 16 && p == 'x') || (base == 2 && p == 'b')) {
      s.remove_prefix(2);
      prefixed = true;
    }
  }
  if (prefixed && !s.empty() && s.front() == '_') s.remove_prefix(1);
  if (s.empty()) return std::nullopt;
  std::uint64_t v = 0;
  bool last_underscore = true;  // no leading underscore (after the prefix case above)
  for (char c : s) {
    if (c == '_') {
      if (last_underscore) return std::nullopt;
      last_underscore = true;
      continue;
    }
    int d = -1;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (c >= 'a' && c <= 'z') d = c - 'a' + 10;
    else if (c >= 'A' && c <= 'Z') d = c - 'A' + 10;
    if (d < 0 || d >= base) return std::nullopt;
    last_underscore = false;
    if (v > (static_cast<std::uint64_t>(INT64_MAX) - static_cast<std::uint64_t>(d)) / static_cast<std::uint64_t>(base)) {
      if (overflow != nullptr) *overflow = true;
      return std::nullopt;
    }
    v = v * static_cast<std::uint64_t>(base) + static_cast<std::uint64_t>(d);
  }
  if (last_underscore) return std::nullopt;
  const auto value = static_cast<std::int64_t>(v);
  return negative ? -value : value;
}

std::string posix_normpath(std::string_view path) {
  if (path.empty()) return ".";
  int initial = 0;
  if (path.front() == '/') initial = (path.size() >= 2 && path[1] == '/' && (path.size() < 3 || path[2] != '/')) ? 2 : 1;
  std::vector<std::string_view> comps;
  std::size_t i = 0;
  while (i <= path.size()) {
    const std::size_t j = std::min(path.find('/', i), path.size());
    const std::string_view comp = path.substr(i, j - i);
    i = j + 1;
    if (comp.empty() || comp == ".") continue;
    if (comp != ".." || (initial == 0 && comps.empty()) || (!comps.empty() && comps.back() == "..")) {
      comps.push_back(comp);
    } else if (!comps.empty()) {
      comps.pop_back();
    }
  }
  std::string out(static_cast<std::size_t>(initial), '/');
  for (std::size_t k = 0; k < comps.size(); ++k) {
    if (k) out += '/';
    out += comps[k];
  }
  return out.empty() ? "." : out;
}

TarfileReading read_tarfile(core::Bytes data, std::uint64_t max_members) {
  TarfileReading t;
  Walker w{data, {}, &t.notes};
  std::uint64_t offset = 0;   // tarfile.offset
  std::uint64_t file_pos = 0;  // fileobj.tell()
  for (bool first = true;; first = false) {
    if (t.members.size() >= max_members) {
      t.end = TarEnd::kUnmodelled;
      t.why = fmt::format("more than {} tar members", max_members);
      return t;
    }
    if (!first && offset != file_pos) {
      // TarFile.next: seek to offset - 1 and read one byte; nothing there is a ReadError.
      if (offset - 1 >= data.size()) {
        t.end = TarEnd::kTarError;
        t.why = fmt::format("a member's data runs past the end of the file (next header at {})", offset);
        return t;
      }
    }
    HeaderResult h = w.fromtarfile(offset, 0);
    switch (h.fault) {
      case HeaderFault::kNone:
        break;
      case HeaderFault::kEof:
        if (first) t.opens = true;  // an end block first: an empty archive that opens
        return t;
      case HeaderFault::kEmpty:
      case HeaderFault::kTruncated:
      case HeaderFault::kInvalid:
        if (first) {
          t.open_error = h.fault == HeaderFault::kInvalid ? "the first header's checksum or a number field is invalid"
                                                          : "shorter than one header block";
          return t;
        }
        return t;  // tarfile ends the archive here without a word
      case HeaderFault::kSubsequent:
        if (first) {
          t.open_error = "the header after a first extension header is invalid";
          return t;
        }
        t.end = TarEnd::kTarError;
        t.why = fmt::format("the header after the extension header at {} is invalid", offset);
        return t;
      case HeaderFault::kUnmodelled:
      case HeaderFault::kFatal:
        t.opens = t.opens || first;
        t.end = TarEnd::kUnmodelled;
        t.why = h.why;
        return t;
    }
    if (first) t.opens = true;
    offset = h.next_offset;
    file_pos = h.file_pos != 0 ? h.file_pos : h.member.data_offset;
    t.members.push_back(std::move(h.member));
  }
}

bool tarfile_opens(core::Bytes data) {
  if (data.size() < kBlock) return false;
  return read_tarfile(data.first(std::min<std::size_t>(data.size(), 64 * 1024)), 64).opens;
}

TarContent tarfile_extract(const TarfileReading& t, core::Bytes data, std::string_view name,
                           const std::vector<std::pair<std::string, TarContent>>& extracted) {
  const TarMember* m = getmember(t, name, t.members.size(), false);
  if (m == nullptr) return fails(fmt::format("no member named '{}' (KeyError)", name));
  return extract_member(t, data, *m, extracted, 0);
}

TarContent tarfile_extractfile(const TarfileReading& t, core::Bytes data, std::string_view name) {
  const TarMember* m = getmember(t, name, t.members.size(), false);
  if (m == nullptr) return fails(fmt::format("no member named '{}' (KeyError)", name));
  return extractfile_member(t, data, *m, 0);
}

}  // namespace brine::container
