// Containers added for hostile archives: every codec, zip readings that disagree, tar, npy,
// polyglots, bombs.
#include <bzlib.h>
#include <doctest/doctest.h>
#include <lz4frame.h>
#include <lzma.h>
#include <zlib.h>
#include <zstd.h>

#include "container/decompress.hpp"
#include "container/zip_layout.hpp"
#include "helpers.hpp"
#include "zip_builder.hpp"

using namespace brine;
using analysis::Verdict;
using container::Codec;

namespace {
const std::string kPayload(test::lit("cos\nsystem\n(S'echo brine-test'\ntR."));
const std::string kBenign(test::lit("\x80\x02}q\x00X\x01\x00\x00\x00" "aK\x01s."));

std::string deflate(std::string_view in, int window) {
  z_stream zs{};
  REQUIRE(deflateInit2(&zs, 9, Z_DEFLATED, window, 8, Z_DEFAULT_STRATEGY) == Z_OK);
  std::string out(deflateBound(&zs, in.size()) + 64, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  REQUIRE(deflate(&zs, Z_FINISH) == Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

std::string compress(Codec c, std::string_view in) {
  switch (c) {
    case Codec::kDeflateRaw: return deflate(in, -15);
    case Codec::kZlib: return deflate(in, 15);
    case Codec::kGzip: return deflate(in, 31);
    case Codec::kBzip2: {
      std::string out(in.size() * 2 + 600, '\0');
      unsigned len = static_cast<unsigned>(out.size());
      REQUIRE(BZ2_bzBuffToBuffCompress(out.data(), &len, const_cast<char*>(in.data()), static_cast<unsigned>(in.size()), 9, 0, 0) == BZ_OK);
      out.resize(len);
      return out;
    }
    case Codec::kXz: {
      std::string out(in.size() + 1024, '\0');
      std::size_t pos = 0;
      REQUIRE(lzma_easy_buffer_encode(6, LZMA_CHECK_CRC64, nullptr, reinterpret_cast<const uint8_t*>(in.data()), in.size(),
                                      reinterpret_cast<uint8_t*>(out.data()), &pos, out.size()) == LZMA_OK);
      out.resize(pos);
      return out;
    }
    case Codec::kLzmaAlone: {
      lzma_options_lzma opt;
      lzma_lzma_preset(&opt, 6);
      lzma_stream s = LZMA_STREAM_INIT;
      REQUIRE(lzma_alone_encoder(&s, &opt) == LZMA_OK);
      std::string out(in.size() + 1024, '\0');
      s.next_in = reinterpret_cast<const uint8_t*>(in.data());
      s.avail_in = in.size();
      s.next_out = reinterpret_cast<uint8_t*>(out.data());
      s.avail_out = out.size();
      REQUIRE(lzma_code(&s, LZMA_FINISH) == LZMA_STREAM_END);
      out.resize(s.total_out);
      lzma_end(&s);
      return out;
    }
    case Codec::kZstd: {
      std::string out(ZSTD_compressBound(in.size()), '\0');
      out.resize(ZSTD_compress(out.data(), out.size(), in.data(), in.size(), 3));
      return out;
    }
    case Codec::kLz4Frame: {
      std::string out(LZ4F_compressFrameBound(in.size(), nullptr), '\0');
      out.resize(LZ4F_compressFrame(out.data(), out.size(), in.data(), in.size(), nullptr));
      return out;
    }
    case Codec::kZipLzma:
    case Codec::kJoblibZF: break;
  }
  FAIL("no compressor");
  return {};
}
}  // namespace

TEST_CASE("every codec round-trips, is sniffed, and a payload inside it is found") {
  for (Codec c : {Codec::kZlib, Codec::kGzip, Codec::kBzip2, Codec::kXz, Codec::kLzmaAlone, Codec::kZstd, Codec::kLz4Frame}) {
    CAPTURE(container::codec_name(c));
    const std::string packed = compress(c, kPayload);
    CHECK(container::sniff_codec(core::as_bytes(packed)) == c);
    auto out = container::decompress(c, core::as_bytes(packed), 1 << 20);
    REQUIRE(out);
    CHECK(std::string(out->data.begin(), out->data.end()) == kPayload);
    CHECK(out->consumed == packed.size());
    auto r = test::scan(packed);
    CHECK(r.verdict == Verdict::kMalicious);
    const auto* f = test::finding(r, "deny:os");
    REQUIRE(f);
    CHECK(f->member == "[" + std::string(container::codec_name(c)) + "]");
    CHECK(test::scan(compress(c, kBenign)).verdict == Verdict::kClean);
  }
}

TEST_CASE("decompression is bounded by what arrives, and corrupt or cut streams are errors") {
  const std::string zeros(4 << 20, '\0');
  const std::string packed = compress(Codec::kGzip, zeros);
  auto capped = container::decompress(Codec::kGzip, core::as_bytes(packed), 1 << 20);
  REQUIRE_FALSE(capped);
  CHECK(capped.error().code == core::ErrorCode::kLimitExceeded);
  auto cut = container::decompress(Codec::kGzip, core::as_bytes(std::string_view(packed).substr(0, packed.size() / 2)), 1 << 30);
  CHECK_FALSE(cut);
  std::string corrupt = compress(Codec::kXz, kPayload);
  corrupt[corrupt.size() / 2] ^= 0x55;
  CHECK_FALSE(container::decompress(Codec::kXz, core::as_bytes(corrupt), 1 << 20));
}

TEST_CASE("a decompression bomb is a limit finding, not an outage") {
  // gzip of gzip: 256 MiB of zeros deflate to ~256 KiB, which deflate again to a few hundred
  // bytes. The inner layer's input was itself decompressed: past the 64 MiB floor the ratio applies.
  const std::string packed = compress(Codec::kGzip, compress(Codec::kGzip, std::string(256u << 20, '\0')));
  core::Limits l;
  l.max_compression_ratio = 100;
  auto r = test::scan(packed, {}, l);
  CHECK(r.verdict == Verdict::kError);
  CHECK(test::has_rule(r, "limit:max-compression-ratio"));
  // With the default ratio (1000) the middle layer (~128 KiB) would allow ~128 MB; the ratio is
  // taken against the file's own few hundred bytes instead, so the scan stops at the 64 MiB floor.
  const std::string bomb = compress(Codec::kGzip, compress(Codec::kGzip, std::string(128u << 20, '\0')));
  auto d = test::scan(bomb, {}, {});
  REQUIRE(test::has_rule(d, "limit:max-compression-ratio"));
  bool at_floor = false;
  for (const auto& f : d.findings) at_floor = at_floor || f.message.find("more than 67108864 ") != std::string::npos;
  CHECK(at_floor);
  core::Limits total;
  total.max_total_decompressed = 1 << 20;
  CHECK(test::has_rule(test::scan(compress(Codec::kGzip, std::string(2 << 20, 'x')), {}, total), "limit:*"));
  core::Limits member;
  member.max_member_bytes = 1 << 20;
  CHECK(test::has_rule(test::scan(compress(Codec::kXz, std::string(2 << 20, '\0')), {}, member), "limit:max-member-bytes"));
}

TEST_CASE("big compressible data in one layer is not a bomb: 100 MB of zeros in xz and bzip2 scan clean") {
  // pickle.dumps(bytes(100_000_000), protocol=3): BINBYTES of zeros. xz packs it ~7,000:1 and
  // bzip2 ~1,000,000:1, as a bomb would; only the absolute budgets bound one layer.
  constexpr std::uint32_t kSize = 100'000'000;
  std::string p = "\x80\x03B";
  for (int i = 0; i < 4; ++i) p += static_cast<char>((kSize >> (8 * i)) & 0xff);
  p.append(kSize, '\0');
  p += "q\x00.";
  for (Codec c : {Codec::kXz, Codec::kBzip2}) {
    CAPTURE(container::codec_name(c));
    const std::string packed = compress(c, p);
    CHECK(packed.size() * 1000 < p.size());  // a ratio the old limit called a bomb
    auto r = test::scan(packed);
    CHECK(r.verdict == Verdict::kClean);
    CHECK_FALSE(test::has_rule(r, "limit:*"));
  }
}

TEST_CASE("nesting of containers is bounded") {
  std::string p = kPayload;
  for (int i = 0; i < 12; ++i) p = compress(Codec::kGzip, p);
  auto r = test::scan(p);
  CHECK(r.verdict == Verdict::kError);
  CHECK(test::has_rule(r, "limit:max-container-depth"));
}

TEST_CASE("zip: local and central names that disagree are an evasion, and both are read") {
  test::ZipBuilder z;
  test::ZipBuilder::Entry e("archive/data.pkl", kPayload);
  e.local_name = "archive/notes.txt";
  z.add(e);
  auto r = test::scan(z.build());
  CHECK(r.verdict == Verdict::kMalicious);
  CHECK(test::has_rule(r, "evasion:zip-header-mismatch"));
  CHECK(test::has_rule(r, "deny:os"));
}

TEST_CASE("zip: duplicate names, bad CRCs, odd flags, hidden local entries") {
  {
    test::ZipBuilder z;
    z.add("archive/data.pkl", kBenign);
    z.add("archive/data.pkl", kPayload);
    auto r = test::scan(z.build());
    CHECK(test::has_rule(r, "evasion:zip-duplicate-name"));
    CHECK(test::has_rule(r, "deny:os"));  // both copies are scanned
  }
  {
    test::ZipBuilder z;
    z.add("archive/data.pkl", kBenign);
    z.add("archive/DATA.PKL", kBenign);
    CHECK(test::has_rule(test::scan(z.build()), "evasion:zip-duplicate-name"));  // torch looks names up case-insensitively
  }
  {
    test::ZipBuilder z;
    test::ZipBuilder::Entry e("archive/data.pkl", kPayload);
    e.bad_crc = true;
    z.add(e);
    auto r = test::scan(z.build());
    CHECK(test::has_rule(r, "malformed:zip-bad-crc"));
    CHECK(r.verdict == Verdict::kMalicious);  // still scanned: torch does not refuse it
  }
  {
    test::ZipBuilder z;
    test::ZipBuilder::Entry e("archive/data.pkl", kBenign);
    e.flags = 0x0001;
    z.add(e);
    CHECK(test::has_rule(test::scan(z.build()), "unapproved:zip-encrypted"));
  }
  {
    test::ZipBuilder z;
    z.add("archive/data.pkl", kBenign);
    test::ZipBuilder::Entry hidden("archive/extra.pkl", kPayload);
    hidden.hidden = true;
    z.add(hidden);
    auto r = test::scan(z.build());
    CHECK(test::has_rule(r, "unapproved:zip-hidden-entry"));
    CHECK(test::has_rule(r, "deny:os"));
  }
}

TEST_CASE("zip: a deflated member is read; data after the archive is scanned too") {
  test::ZipBuilder z;
  test::ZipBuilder::Entry e("archive/data.pkl", deflate(kPayload, -15));
  e.method = 8;
  e.uncompressed = static_cast<std::uint32_t>(kPayload.size());
  z.crc_ = static_cast<std::uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(kPayload.data()), static_cast<uInt>(kPayload.size())));
  z.add(e);
  auto r = test::scan(z.build());
  CHECK(test::has_rule(r, "deny:os"));
  CHECK_FALSE(test::has_rule(r, "malformed:zip-bad-crc"));
  test::ZipBuilder t;
  t.add("archive/data.pkl", kBenign);
  t.append = kPayload;
  auto tr = test::scan(t.build());
  CHECK(test::has_rule(tr, "unapproved:trailing-data"));
  CHECK(test::has_rule(tr, "deny:os"));
}

TEST_CASE("polyglots: a pickle with a zip behind it, a zip with data in front of it") {
  test::ZipBuilder z;
  z.add("archive/data.pkl", kPayload);
  z.prepend = kBenign;  // torch.load sees the benign pickle, zipfile sees the archive
  auto r = test::scan(z.build());
  CHECK(r.verdict == Verdict::kMalicious);
  CHECK(test::has_rule(r, "evasion:polyglot"));
  CHECK(test::has_rule(r, "deny:os"));
}

TEST_CASE("a zip directory behind a prefix that exceeds the entry limit is a limit error, never clean") {
  // Found by fuzz/fuzz_archive.cpp: the polyglot check skipped a directory it could not read.
  test::ZipBuilder z;
  for (int i = 0; i < 12; ++i) z.add("archive/data/" + std::to_string(i), "x");
  z.add("archive/data.pkl", kPayload);
  z.prepend = std::string(".oon", 4);  // STOP first: no pickle, no zip at offset 0
  core::Limits limits;
  limits.max_archive_entries = 10;
  auto r = test::scan(z.build(), {}, limits);
  CHECK(r.verdict == Verdict::kError);
  CHECK(test::has_rule(r, "limit:max-archive-entries"));
  limits.max_archive_entries = 100;
  CHECK(test::scan(z.build(), {}, limits).verdict == Verdict::kMalicious);
}

TEST_CASE("tar archives: members are scanned by content") {
  // A minimal ustar archive with one member.
  auto tar_member = [](const std::string& name, const std::string& data) {
    std::string h(512, '\0');
    h.replace(0, name.size(), name);
    h.replace(100, 7, "0000644");
    h.replace(108, 7, "0000000");
    h.replace(116, 7, "0000000");
    char size[12];
    std::snprintf(size, sizeof size, "%011o", static_cast<unsigned>(data.size()));
    h.replace(124, 11, size);
    h.replace(136, 11, "00000000000");
    h[156] = '0';
    h.replace(257, 6, std::string("ustar\0", 6));
    h.replace(263, 2, "00");
    h.replace(148, 8, "        ");
    unsigned sum = 0;
    for (unsigned char c : h) sum += c;
    char chk[8];
    std::snprintf(chk, sizeof chk, "%06o", sum);
    h.replace(148, 7, std::string(chk, 6) + '\0');
    std::string body = data;
    body.resize((data.size() + 511) / 512 * 512, '\0');
    return h + body;
  };
  const std::string tar = tar_member("models/model.bin", kPayload) + std::string(1024, '\0');
  auto r = test::scan(tar);
  CHECK(r.container == "tar");
  CHECK(r.verdict == Verdict::kMalicious);
  CHECK(test::finding(r, "deny:os")->member == "models/model.bin");
  auto gz = test::scan(compress(Codec::kGzip, tar));
  CHECK(test::finding(gz, "deny:os")->member == "[gzip]!models/model.bin");
}

TEST_CASE("a name that promises a data format on a pickle is flagged") {
  scan::ScanOptions o;
  scan::Scanner s(test::builtin_rules(), o);
  auto r = s.scan_bytes(core::as_bytes(kBenign), "config.json");
  CHECK(r.verdict == Verdict::kUnapproved);
  CHECK(test::has_rule(r, "unapproved:extension-mismatch"));
  CHECK(s.scan_bytes(core::as_bytes(kBenign), "model.bin").verdict == Verdict::kClean);
}

TEST_CASE("joblib: raw array bytes after a NumpyArrayWrapper BUILD are skipped as joblib reads them") {
  std::string raw = std::string(1, '\x03') + std::string(3, '\xff') + std::string(16, '\x07');  // pad 3, 2 x f8
  auto r = test::scan(test::joblib_stream(2, raw));
  CHECK(r.verdict == Verdict::kClean);
  // The declared array runs past the end: an error, not an allocation.
  CHECK(test::scan(test::joblib_stream(100, raw)).verdict == Verdict::kError);
}

TEST_CASE("joblib: array bytes that pickle.load would run as opcodes are found") {
  // The alignment byte is '(' (MARK, and 40 to joblib): joblib skips 40 bytes of "padding" and
  // 24 bytes of array data; pickle.load runs them: MARK, os.system imported, POP_MARK, NONE/POPs.
  std::string padding(test::lit("cos\nsystem\n1"));
  while (padding.size() < 40) padding += "N0";
  std::string data;
  while (data.size() < 24) data += "N0";
  auto r = test::scan(test::joblib_stream(3, "(" + padding + data));
  CHECK(r.verdict == Verdict::kMalicious);
  CHECK(test::has_rule(r, "evasion:joblib-array-data"));
  CHECK(test::has_rule(r, "deny:os"));
}

namespace {
/// A .lzma (lzma-alone) stream with the given lc/lp/pb and dictionary size in its header.
std::string lzma_alone_with(std::string_view in, unsigned lc, unsigned lp, unsigned pb, std::uint32_t dict) {
  lzma_options_lzma opt;
  lzma_lzma_preset(&opt, 0);
  opt.lc = lc;
  opt.lp = lp;
  opt.pb = pb;
  opt.dict_size = std::max<std::uint32_t>(dict, LZMA_DICT_SIZE_MIN);
  lzma_stream s = LZMA_STREAM_INIT;
  REQUIRE(lzma_alone_encoder(&s, &opt) == LZMA_OK);
  std::string out(in.size() + 1024, '\0');
  s.next_in = reinterpret_cast<const uint8_t*>(in.data());
  s.avail_in = in.size();
  s.next_out = reinterpret_cast<uint8_t*>(out.data());
  s.avail_out = out.size();
  REQUIRE(lzma_code(&s, LZMA_FINISH) == LZMA_STREAM_END);
  out.resize(s.total_out);
  lzma_end(&s);
  for (int i = 0; i < 4; ++i) out[1 + i] = static_cast<char>((dict >> (8 * i)) & 0xff);  // the header as written
  return out;
}
}  // namespace

TEST_CASE("recognisers take their acceptance from the loaders: .lzma headers Python's lzma accepts") {
  // lc=0 lp=0 pb=0 (properties byte 0x00): lzma.open reads it; brine knew only 0x5d.
  auto r = test::scan(lzma_alone_with(kPayload, 0, 0, 0, 1 << 16));
  CHECK(r.verdict == Verdict::kMalicious);
  CHECK(r.container == "lzma");
  // 0x5d with a 2 KiB dictionary: joblib's b"\x5d\x00" prefix, and liblzma's .lzma check accepts 2^n.
  CHECK(test::scan(lzma_alone_with(kPayload, 3, 0, 2, 1 << 11)).verdict == Verdict::kMalicious);
  CHECK(container::lzma_alone_header(core::as_bytes(lzma_alone_with(kPayload, 3, 0, 2, 3 << 20))));
  // A dictionary size liblzma's .lzma check refuses (not 2^n or 2^n + 2^(n-1)) is not .lzma to it.
  CHECK_FALSE(container::lzma_alone_header(core::as_bytes(lzma_alone_with(kPayload, 3, 0, 2, (1 << 20) + 1))));
  CHECK(test::scan(lzma_alone_with(kBenign, 0, 0, 0, 1 << 16)).verdict == Verdict::kClean);
}

TEST_CASE("recognisers: joblib's ZF header as read_zfile parses it") {
  const std::string z = compress(Codec::kZlib, kPayload);
  auto zf = [&](std::string hex, bool space) {
    hex.resize(19, ' ');
    return "ZF" + hex + (space ? " " : "") + z;
  };
  CHECK(test::scan(zf("0x23", false)).verdict == Verdict::kMalicious);  // what joblib wrote
  CHECK(test::scan(zf("23", true)).verdict == Verdict::kMalicious);     // int(x, 16) needs no 0x; a space is skipped
  CHECK(test::scan(zf("  +23", false)).verdict == Verdict::kMalicious);
  CHECK_FALSE(container::joblib_zf_header(core::as_bytes(zf("0xzz", false))));  // joblib raises ValueError
  CHECK(test::scan("ZF" + std::string("0x23").append(15, ' ') + " " + compress(Codec::kZlib, kBenign)).verdict == Verdict::kClean);
}

TEST_CASE("recognisers: gzip members with NUL padding between them, as Python's gzip reads them") {
  const std::string a = kPayload.substr(0, 12), b = kPayload.substr(12);
  const std::string padded = compress(Codec::kGzip, a) + std::string(100, '\0') + compress(Codec::kGzip, b);
  auto out = container::decompress(Codec::kGzip, core::as_bytes(padded), 1 << 20);
  REQUIRE(out);
  CHECK(std::string(out->data.begin(), out->data.end()) == kPayload);
  CHECK(test::scan(padded).verdict == Verdict::kMalicious);
  // Trailing NUL padding is read as nothing by gzip: no trailing-data finding.
  auto r = test::scan(compress(Codec::kGzip, kBenign) + std::string(64, '\0'));
  CHECK(r.verdict == Verdict::kClean);
}

TEST_CASE("recognisers: an npz that is only an end-of-central-directory record (numpy.savez() of nothing)") {
  std::string eocd("PK\x05\x06", 4);
  eocd.append(18, '\0');
  auto r = test::scan(eocd);
  CHECK(r.verdict == Verdict::kClean);
  CHECK(r.recognized);
}

TEST_CASE("find_eocd returns the last record signature in the comment window, as a test of every position does") {
  // The reference: every position from the last one a 22-byte record fits at, down to the
  // lowest a 65,535-byte comment allows.
  auto reference = [](std::string_view d) -> std::optional<std::uint64_t> {
    if (d.size() < 22) return std::nullopt;
    const std::uint64_t lowest = d.size() > 22 + 65535 ? d.size() - (22 + 65535) : 0;
    for (std::uint64_t pos = d.size() - 22 + 1; pos-- > lowest;) {
      if (d.substr(pos, 4) == std::string_view("PK\x05\x06", 4)) return pos;
    }
    return std::nullopt;
  };
  auto find = [](std::string_view d) { return container::find_eocd(core::as_bytes(d)); };
  const std::string sig("PK\x05\x06", 4);
  std::vector<std::string> inputs = {"", std::string(21, 'P'), std::string(22, 'P'), sig + std::string(18, 'P'),
                                     sig + std::string(17, 'P'), std::string(200, 'P'), std::string(1000, '\0')};
  // Near misses around the real one: 'P' runs, "PK" without the rest, a record past the last
  // position it fits at, one below the comment window.
  std::string s = std::string(100, 'P') + sig + "PKPK\x05" + std::string(30, 'P') + "PK\x05\x06" + std::string(10, 'x');
  inputs.push_back(s);
  std::string far = sig + std::string(22 + 65535, 'P');
  inputs.push_back(far);                     // one byte below the window: not found
  inputs.push_back(far.substr(1));           // the signature's tail only
  inputs.push_back(std::string("x") + sig + std::string(22 + 65535 - 4, 'P'));  // exactly at the lowest position
  std::uint32_t seed = 7;
  for (int n = 0; n < 200; ++n) {
    std::string r(static_cast<std::size_t>(seed % 300), '\0');
    for (auto& c : r) {
      seed = seed * 1103515245u + 12345u;
      c = "PK\x05\x06x"[(seed >> 16) % 5];
    }
    inputs.push_back(r);
  }
  for (const auto& in : inputs) {
    CAPTURE(in.size());
    CHECK(find(in) == reference(in));
  }
  CHECK(find(s) == 100);  // the later one starts past the last position a record fits at
  CHECK_FALSE(find(far));
  CHECK(find(inputs[inputs.size() - 201]) == 1);
}
