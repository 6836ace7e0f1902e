// Bytes an approved loader deserializes (torch.storage._load_from_bytes): computed as CPython
// computes them, or the file is not clean.
#include <doctest/doctest.h>

#include <string>

#include "analysis/nested_bytes.hpp"
#include "helpers.hpp"

using brine::analysis::Codec;
using brine::analysis::encode_text;
using brine::analysis::lookup_codec;
using brine::analysis::Verdict;

namespace {

std::string le32(std::size_t n) {
  std::string s;
  for (int k = 0; k < 4; ++k) s += static_cast<char>((n >> (8 * k)) & 0xFF);
  return s;
}

std::string binunicode(std::string_view utf8) { return "X" + le32(utf8.size()) + std::string(utf8); }

/// torch.storage._load_from_bytes(_codecs.encode(text[, encoding])) as protocol 2 writes it.
std::string load_from_encoded(std::string_view text_utf8, const char* encoding) {
  std::string p(brine::test::lit("\x80\x02" "ctorch.storage\n_load_from_bytes\n" "c_codecs\nencode\n"));
  p += binunicode(text_utf8);
  if (encoding != nullptr) p += binunicode(encoding);
  p += encoding != nullptr ? "\x86" : "\x85";
  p += "R\x85R.";
  return p;
}

/// A str whose UTF-8 encoding is a pickle calling os.system and whose latin-1 encoding is a
/// harmless one: SHORT_BINBYTES takes its length from the second byte, U+00FF, which is 0xFF in
/// latin-1 but 0xC3 0xBF in UTF-8, so the two readings resume at different places.
std::string two_faced_text() {
  const std::string payload = "0cos\nsystem\n(S'echo brine-test'\ntR.";
  std::string s = "C\xc3\xbf";                  // 'C', U+00FF
  s += std::string(194, 'A');                   // characters 2..195
  s += payload;                                 // UTF-8 reading resumes at character 196
  s += std::string(257 - 196 - payload.size(), 'A');
  s += "0N.";                                   // latin-1 reading resumes at character 257
  return s;
}

}  // namespace

TEST_CASE("_codecs.encode with one argument encodes UTF-8, not latin-1") {
  const auto r = brine::test::scan(load_from_encoded(two_faced_text(), nullptr));
  CHECK(r.verdict == Verdict::kMalicious);
  CHECK(brine::test::has_rule(r, "deny:os"));
  // The same text encoded latin-1 is the harmless reading: no payload runs, but the bytes are a
  // plain pickle, which the nested torch.load fails on after unpickling it.
  const auto harmless = brine::test::scan(load_from_encoded(two_faced_text(), "latin1"));
  CHECK_FALSE(brine::test::has_rule(harmless, "deny:os"));
  CHECK(harmless.verdict == Verdict::kError);
  CHECK(brine::test::has_rule(harmless, "malformed:nested-not-torch"));
}

TEST_CASE("bytes brine cannot compute make the file not clean") {
  // U+0100 has no latin-1 byte: the loader raises instead of loading.
  const auto r = brine::test::scan(load_from_encoded("N.\xc4\x80", "latin1"));
  CHECK(r.verdict != Verdict::kClean);
  CHECK(brine::test::has_rule(r, "unapproved:nested-bytes-not-computable"));
  // A protocol-2 BINSTRING is a str only after the unpickler decodes it with its own encoding
  // (ASCII for pickle.load, UTF-8 for torch.load): non-ASCII bytes have no one reading.
  std::string p(brine::test::lit("\x80\x02" "ctorch.storage\n_load_from_bytes\n" "c_codecs\nencode\n" "T\x04\x00\x00\x00N.\xc3\xa9"));
  p += binunicode("latin1");
  p += "\x86R\x85R.";
  const auto m = brine::test::scan(p);
  CHECK(m.verdict != Verdict::kClean);
  CHECK(brine::test::has_rule(m, "unapproved:nested-bytes-not-computable"));
}

TEST_CASE("encoding names are looked up as codecs.lookup does") {
  // Expected values from CPython 3.11: codecs.lookup(name).name
  CHECK(lookup_codec("utf-8") == Codec::kUtf8);
  CHECK(lookup_codec("UTF-8") == Codec::kUtf8);
  CHECK(lookup_codec("utf8") == Codec::kUtf8);
  CHECK(lookup_codec(" Utf--8 ") == Codec::kUtf8);
  CHECK(lookup_codec("u8") == Codec::kUtf8);
  CHECK(lookup_codec("cp65001") == Codec::kUtf8);
  CHECK(lookup_codec("latin1") == Codec::kLatin1);
  CHECK(lookup_codec("latin_1") == Codec::kLatin1);
  CHECK(lookup_codec("Latin-1") == Codec::kLatin1);
  CHECK(lookup_codec("ISO_8859-1:1987") == Codec::kLatin1);
  CHECK(lookup_codec("iso-8859-1") == Codec::kLatin1);
  CHECK(lookup_codec("l1") == Codec::kLatin1);
  CHECK(lookup_codec("us-ascii") == Codec::kAscii);
  CHECK(lookup_codec("646") == Codec::kAscii);
  CHECK(lookup_codec("ANSI_X3.4-1968") == Codec::kAscii);
  // Not one of the three, or no codec at all.
  CHECK_FALSE(lookup_codec("U.T.F-8"));
  CHECK_FALSE(lookup_codec("utf.8"));
  CHECK_FALSE(lookup_codec("UTF8."));
  CHECK_FALSE(lookup_codec("utf_8_sig"));
  CHECK_FALSE(lookup_codec("utf-16"));
  CHECK_FALSE(lookup_codec("cp1252"));
  CHECK_FALSE(lookup_codec("latin9"));
  CHECK_FALSE(lookup_codec("utf\xc3\xa9" "8"));
}

TEST_CASE("encoding follows CPython's error handlers") {
  std::string why;
  // 'a', U+DC80 (a lone surrogate), 'b', U+00E9, U+20AC, as WTF-8.
  const std::string text = "a\xed\xb2\x80" "b\xc3\xa9\xe2\x82\xac";
  CHECK_FALSE(encode_text(text, Codec::kUtf8, "strict", why));
  CHECK(why.find("UnicodeEncodeError") != std::string::npos);
  CHECK(encode_text(text, Codec::kUtf8, "replace", why) == std::string("a?b\xc3\xa9\xe2\x82\xac"));
  CHECK(encode_text(text, Codec::kUtf8, "ignore", why) == std::string("ab\xc3\xa9\xe2\x82\xac"));
  CHECK(encode_text(text, Codec::kLatin1, "replace", why) == std::string("a?b\xe9?"));
  CHECK(encode_text(text, Codec::kAscii, "ignore", why) == std::string("ab"));
  CHECK_FALSE(encode_text(text, Codec::kLatin1, "surrogateescape", why));
  // A handler is consulted only when a character fails.
  CHECK(encode_text("plain", Codec::kAscii, "no-such-handler", why) == std::string("plain"));
  // One '?' per code point, not per UTF-16 unit.
  CHECK(encode_text("\xf0\x9f\x98\x80", Codec::kAscii, "replace", why) == std::string("?"));
}
