// .npy headers read as numpy 1.24 reads them (ast.literal_eval + descr_to_dtype), and joblib
// array data located where joblib 1.2's read_array reads it. Issue "clean must mean exact",
// classes 1 and 2.
#include <doctest/doctest.h>

#include <cstring>

#include "analysis/finding.hpp"
#include "container/npy.hpp"
#include "container/numpy_dtype.hpp"
#include "container/py_literal.hpp"
#include "helpers.hpp"
#include "sanitize/sanitize.hpp"
#include "tensor/dtype.hpp"

using brine::analysis::Verdict;
namespace test = brine::test;
namespace pylit = brine::container::pylit;
using brine::container::numpy_dtype_from_descr;
using brine::container::numpy_dtype_from_string;
using Status = brine::container::DtypeResolution::Status;
using PS = pylit::ParseOutcome::Status;

namespace {

pylit::Value lit_ok(std::string_view text, bool v2 = false) {
  pylit::ParseOptions o;
  o.drop_long_suffix = v2;
  auto r = pylit::parse(text, o);
  INFO(text, " -> ", r.why);
  REQUIRE(r.status == PS::kOk);
  return r.value;
}

/// A .npy file: the header literal as given (padded as numpy pads), then `body`.
std::string npy_file(std::string_view header, std::string_view body, int version = 1) {
  std::string h(header);
  const std::size_t pre = version == 1 ? 10 : 12;
  while ((pre + h.size() + 1) % 64 != 0) h += ' ';
  h += '\n';
  std::string out = "\x93NUMPY";
  out += static_cast<char>(version);
  out += '\0';
  const std::size_t n = h.size();
  for (std::size_t k = 0; k < (version == 1 ? 2u : 4u); ++k) out += static_cast<char>((n >> (8 * k)) & 0xFF);
  return out + h + std::string(body);
}

std::string header(std::string_view descr) { return "{'descr': " + std::string(descr) + ", 'fortran_order': False, 'shape': (1,), }"; }

constexpr std::string_view kPayload = "cos\nsystem\n(S'echo brine-test'\ntR.";

}  // namespace

TEST_CASE("py_literal: strings as literal_eval reads them") {
  CHECK(lit_ok("'O'").text == "O");
  CHECK(lit_ok("\"O\"").text == "O");
  CHECK(lit_ok("'\\x4f'").text == "O");
  CHECK(lit_ok("'\\117'").text == "O");
  CHECK(lit_ok("'\\u004f'").text == "O");
  CHECK(lit_ok("'\\U0000004f'").text == "O");
  CHECK(lit_ok("'''O'''").text == "O");
  CHECK(lit_ok("'|' \"O\"").text == "|O");       // adjacent literals concatenate
  CHECK(lit_ok("r'\\x4f'").text == "\\x4f");     // raw: no escapes
  CHECK(lit_ok("'\\q'").text == "\\q");          // unknown escape keeps the backslash
  CHECK(lit_ok("u'\\u00e9'").text == "\xc3\xa9");
  CHECK(lit_ok("b'\\u0041'").kind == pylit::Kind::kBytes);
  CHECK(lit_ok("b'\\u0041'").text == "\\u0041");  // no \u escapes in bytes
  CHECK(pylit::parse("'\\N{LATIN CAPITAL LETTER O}'").status == PS::kUnsupported);
  CHECK(pylit::parse("f'O'").status == PS::kUnsupported);
  CHECK(pylit::parse("'a' b'b'").status == PS::kInvalid);
  CHECK(pylit::parse("'\\x4'").status == PS::kInvalid);
  CHECK(pylit::parse("'a\nb'").status == PS::kInvalid);
}

TEST_CASE("py_literal: numbers, names, containers and duplicate keys") {
  CHECK(lit_ok("1_000").integer == 1000);
  CHECK(lit_ok("0x_1f").integer == 31);
  CHECK(lit_ok("0o17").integer == 15);
  CHECK(lit_ok("0b101").integer == 5);
  CHECK(lit_ok("-3").integer == -3);
  CHECK(lit_ok("99999999999999999999").big);
  CHECK(lit_ok("1.5e-3").kind == pylit::Kind::kFloat);
  CHECK(pylit::parse("007").status == PS::kInvalid);
  CHECK(pylit::parse("1j").status == PS::kUnsupported);
  CHECK(lit_ok("True").kind == pylit::Kind::kBool);
  CHECK(pylit::parse("float").status == PS::kInvalid);
  CHECK(lit_ok("(1)").kind == pylit::Kind::kInt);   // parentheses alone make no tuple
  CHECK(lit_ok("(1,)").kind == pylit::Kind::kTuple);
  CHECK(lit_ok("()").kind == pylit::Kind::kTuple);
  CHECK(lit_ok("{1, 2}").kind == pylit::Kind::kSet);
  auto d = lit_ok("{'a': 1, 'b': 2, 'a': 3}");
  REQUIRE(d.items.size() == 4);  // two keys: the repeated one keeps its place and takes the last value
  CHECK(d.items[0].is_str("a"));
  CHECK(d.items[1].integer == 3);
  // Python 2 'L' suffixes: numpy's tokenize filter (versions 1.0 and 2.0 only).
  CHECK(lit_ok("(3L, 4 L)", true).items[1].integer == 4);
  CHECK(pylit::parse("(3L,)").status != PS::kOk);
  CHECK(pylit::parse("(3Lx,)", {true}).status != PS::kOk);
  // Line breaks inside brackets and trailing comments are fine; a continuation is not modelled.
  CHECK(lit_ok("{'a':\n 1}  # c\n").kind == pylit::Kind::kDict);
  CHECK(pylit::parse("{'a': 1} \\\n").status == PS::kUnsupported);
  // Depth is bounded.
  CHECK(pylit::parse(std::string(100, '[') + std::string(100, ']')).status == PS::kUnsupported);
}

TEST_CASE("numpy dtype strings: every spelling numpy 1.24 makes an object dtype is one") {
  for (std::string_view s : {"O", "|O", "<O", ">O", "=O", "O8", "O4", "<O8", "object", "object_", "object0", "1O", "|1O"}) {
    auto r = numpy_dtype_from_string(s);
    INFO(s);
    CHECK(r.ok());
    CHECK(r.dtype.has_object);
  }
  auto f = numpy_dtype_from_string("float64");
  CHECK((f.ok() && !f.dtype.has_object && f.dtype.itemsize == 8 && f.dtype.str == "<f8"));
  auto u = numpy_dtype_from_string(">U100000");
  CHECK((u.ok() && u.dtype.itemsize == 400000 && u.dtype.str == ">U100000"));
  CHECK(numpy_dtype_from_string("?").dtype.str == "|b1");
  // Spellings brine does not resolve are unresolved, never "not object".
  for (std::string_view s : {"i4,O", "(2,)O", "O,", " O", "O16", "M8[25ns]"}) {
    INFO(s);
    CHECK(numpy_dtype_from_string(s).status == Status::kUnresolved);
  }
}

TEST_CASE("descr_to_dtype: objects anywhere in the tree, padding dropped, names are not types") {
  auto obj = [](std::string_view descr) {
    auto r = numpy_dtype_from_descr(lit_ok(descr));
    INFO(descr, " -> ", r.why);
    REQUIRE(r.ok());
    return r.dtype.has_object;
  };
  CHECK(obj("[('a', '<i4'), ('b', '|O')]"));
  CHECK(obj("[('a', [('b', '<f8'), ('c', 'O')])]"));
  CHECK(obj("[(('title', 'n'), 'O')]"));
  CHECK(obj("[('a', 'O', (2,))]"));
  CHECK(obj("('O', (2, 3))"));
  CHECK(obj("('O', 0)"));
  CHECK(obj("['aO']"));        // a 2-character str unpacks as (name, format)
  CHECK(obj("{'xO': 1}"));     // a dict iterates its keys
  CHECK_FALSE(obj("[('O', '<f8')]"));
  CHECK_FALSE(obj("[('object', '<i4'), ('|O', '<f4')]"));
  CHECK_FALSE(obj("[('', '|O', (2,)), ('b', '<f8')]"));  // a '' void sub-array is padding, objects or not
  CHECK_FALSE(obj("['ab']"));
  auto pad = numpy_dtype_from_descr(lit_ok("[('', '|O', (2,)), ('b', '<f8')]"));
  CHECK(pad.dtype.itemsize == 24);
  CHECK(numpy_dtype_from_descr(lit_ok("{'O'}")).status == Status::kUnresolved);
  CHECK(numpy_dtype_from_descr(lit_ok("('O',)")).status == Status::kInvalid);
  CHECK(numpy_dtype_from_descr(lit_ok("[('a', '<f8'), ('a', 'O')]")).status == Status::kInvalid);
  CHECK(numpy_dtype_from_descr(lit_ok("('S', 5)")).status == Status::kUnresolved);
}

TEST_CASE(".npy header: numpy's keys, types, version and data offset") {
  using brine::container::parse_npy_header;
  auto bytes = [](const std::string& s) { return brine::core::as_bytes(s); };
  std::string f = npy_file("{'descr':'<i4','fortran_order':True,'shape':(2,3)}", std::string(24, '\0'));
  auto h = parse_npy_header(bytes(f));
  REQUIRE(h);
  CHECK(h->fortran_order);
  CHECK(h->shape == std::vector<std::int64_t>{2, 3});
  CHECK(h->dtype.str == "<i4");
  CHECK(h->data_offset == 64);
  auto dup = parse_npy_header(bytes(npy_file("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), 'descr': '|O'}", "")));
  REQUIRE(dup);
  CHECK(dup->has_object);
  CHECK_FALSE(parse_npy_header(bytes(npy_file("{'descr': '<f8', 'fortran_order': 0, 'shape': (1,)}", ""))));
  CHECK_FALSE(parse_npy_header(bytes(npy_file("{'descr': '<f8', 'fortran_order': False, 'shape': [1]}", ""))));
  CHECK_FALSE(parse_npy_header(bytes(npy_file("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), 'x': 0}", ""))));
  CHECK(parse_npy_header(bytes(npy_file("{'descr': '<f8', 'fortran_order': False, 'shape': (True,)}", ""))));
  std::string minor = npy_file(header("'<f8'"), "");
  minor[7] = '\x01';  // version 1.1: numpy accepts only x.0
  CHECK_FALSE(parse_npy_header(bytes(minor)));
  // Version 3.0 headers are UTF-8 (strict); 1.0 and 2.0 are latin1.
  CHECK_FALSE(parse_npy_header(bytes(npy_file("{'descr': '<f8', 'fortran_order': False, 'shape': (), 'x\xff': 1}", "", 3))));
  // A header longer than --max-npy-header is a limit error.
  auto big = parse_npy_header(bytes(npy_file(header("'<f8'"), "")), 32);
  REQUIRE_FALSE(big);
  CHECK(big.error().code == brine::core::ErrorCode::kLimitExceeded);
  auto unresolved = parse_npy_header(bytes(npy_file(header("'i4,O'"), "")));
  REQUIRE(unresolved);
  CHECK_FALSE(unresolved->unresolved.empty());
  CHECK(unresolved->has_object);
}

TEST_CASE(".npy scan: other spellings of an object dtype carry a pickle; names are not types") {
  for (std::string_view descr : {"'object'", "'1O'", "'\\x4f'", "'\\u004f'", "['aO']", "{'xO': 1}", "'\\x7cO'"}) {
    INFO(descr);
    CHECK(test::scan(npy_file(header(descr), kPayload)).verdict == Verdict::kMalicious);
  }
  CHECK(test::scan(npy_file("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), 'descr': '|O'}", kPayload)).verdict ==
        Verdict::kMalicious);
  // Unresolved spellings are never clean: a finding says so and the data is read as a pickle.
  auto comma = test::scan(npy_file(header("'i4,O'"), std::string(8, '\0')));
  CHECK(comma.verdict != Verdict::kClean);
  CHECK(test::has_rule(comma, "unresolved:npy-header"));
  // Benign look-alikes stay clean.
  CHECK(test::scan(npy_file(header("[('O', '<f8')]"), std::string(8, '\0'))).verdict == Verdict::kClean);
  CHECK(test::scan(npy_file(header("[('', '|O', (2,)), ('b', '<f8')]"), std::string(24, '\0'))).verdict == Verdict::kClean);
  CHECK(test::scan(npy_file("{'descr': '|O', 'fortran_order': False, 'shape': (1,), 'descr': '<f8'}", std::string(8, '\0')))
            .verdict == Verdict::kClean);
  CHECK(test::scan(npy_file("{\"descr\":\"<f8\",\"fortran_order\":False,\"shape\":(1,)}", std::string(8, '\0'))).verdict ==
        Verdict::kClean);
}

namespace {

/// protocol 2: NumpyArrayWrapper() + BUILD({shape: (n,), dtype: numpy.dtype(typestr, False, True)
/// + BUILD((version, order, None, None, None, elsize, elsize, flags)), [alignment: align_op]}).
std::string jl_wrapper(int n, std::string_view typestr, int version, char order, int elsize, int flags, std::string_view align_op = {}) {
  auto i32 = [](int v) {
    std::string s = "J";
    for (int k = 0; k < 4; ++k) s += static_cast<char>((static_cast<unsigned>(v) >> (8 * k)) & 0xFF);
    return s;
  };
  std::string p = "cjoblib.numpy_pickle\nNumpyArrayWrapper\n)\x81}(";
  p += std::string(test::lit("X\x08\0\0\0subclasscnumpy\nndarray\n"));
  p += std::string(test::lit("X\x05\0\0\0shape")) + "K" + static_cast<char>(n) + "\x85";
  p += std::string(test::lit("X\x05\0\0\0dtypecnumpy\ndtype\n(X")) + std::string(1, static_cast<char>(typestr.size())) + std::string(3, '\0') +
       std::string(typestr) + "\x89\x88tR(K" + static_cast<char>(version) + std::string(test::lit("X\x01\0\0\0")) + order + "NNN" + i32(elsize) +
       i32(elsize) + "K" + static_cast<char>(flags) + "tb";
  if (!align_op.empty()) p += std::string(test::lit("X\x1b\0\0\0numpy_array_alignment_bytes")) + std::string(align_op);
  p += "ub";
  return p;
}

/// 'B' + a length that makes a BINBYTES swallow `n` more bytes.
std::string binbytes_len(std::size_t n) {
  std::string s = "B";
  for (int k = 0; k < 4; ++k) s += static_cast<char>((n >> (8 * k)) & 0xFF);
  return s;
}

constexpr std::string_view kHidden = "cos\nsystem\n(S'echo brine-test'\ntR";

}  // namespace

TEST_CASE("joblib: dtype.__setstate__ takes elsize only for flexible types") {
  // f8 with state elsize 1: joblib reads 2 x 8 bytes, then runs what follows.
  std::string filler(16 - 2 - 5, '\0');
  std::string data = std::string(test::lit("\x80\x02")) + jl_wrapper(2, "f8", 3, '<', 1, 0) + std::string(2, '\0') +
                     binbytes_len(filler.size() + kHidden.size()) + filler + std::string(kHidden) + "0.";
  auto r = test::scan(data);
  CHECK(r.verdict == Verdict::kMalicious);
  CHECK(test::has_rule(r, "deny:os"));
  // V8 with state elsize 3: a flexible type, 3 bytes are read.
  std::string v = std::string(test::lit("\x80\x02")) + jl_wrapper(1, "V8", 3, '|', 3, 0) + std::string(3, '\0') + ".";
  CHECK(test::scan(v).verdict == Verdict::kClean);
}

TEST_CASE("joblib: the alignment padding is read for any value that is not None") {
  // numpy_array_alignment_bytes=True: pad byte 20, 20 bytes, 8 data bytes, then the call.
  std::string body = std::string(1, '\x14') + std::string(20, '\xff') + std::string(8, '\0');
  const std::string sw = binbytes_len(body.size() - 13 + kHidden.size());
  body.replace(8, 5, sw);
  std::string data = std::string(test::lit("\x80\x02")) + jl_wrapper(1, "f8", 3, '<', -1, 0, "\x88") + body + std::string(kHidden) + "0.";
  auto r = test::scan(data);
  CHECK(r.verdict == Verdict::kMalicious);
  CHECK(test::has_rule(r, "deny:os"));
  // None: no padding byte.
  std::string none = std::string(test::lit("\x80\x02")) + jl_wrapper(1, "f8", 3, '<', -1, 0, "N") + std::string(8, '\0') + ".";
  CHECK(test::scan(none).verdict == Verdict::kClean);
}

TEST_CASE("joblib: hasobject comes from the state's flags (version 3) or is recomputed (older)") {
  // O8 whose v3 flags are 0 holds no objects: 8 raw bytes are read, then the call runs.
  std::string o8 = std::string(test::lit("\x80\x02")) + jl_wrapper(1, "O8", 3, '|', -1, 0) + std::string(8, '\0') + std::string(kHidden) + "0.";
  CHECK(test::scan(o8).verdict == Verdict::kMalicious);
  // f8 with version 2 and flags 16: numpy recomputes NPY_OBJECT_DTYPE_FLAGS, so a pickle follows.
  std::string f8 = std::string(test::lit("\x80\x02")) + jl_wrapper(1, "f8", 2, '<', -1, 16) + std::string(kPayload) + ".";
  auto r = test::scan(f8);
  CHECK(r.verdict == Verdict::kMalicious);
  CHECK(test::has_rule(r, "deny:os"));
}

TEST_CASE("joblib: a wrapper whose subclass joblib would instantiate is not followed") {
  std::string w = jl_wrapper(1, "f8", 3, '<', -1, 0);
  const std::string ndarray = "cnumpy\nndarray\n";
  const std::string other = "ccollections\nOrderedDict\n";
  w.replace(w.find(ndarray), ndarray.size(), other);
  CHECK(test::scan(std::string(test::lit("\x80\x02")) + w + std::string(8, '\0') + ".").verdict == Verdict::kError);
}

TEST_CASE("joblib: a wrapper BUILD inside a FRAME (array read at the frame's end) is not clean") {
  const std::string w = jl_wrapper(1, "f8", 3, '<', -1, 0);
  std::string tail = "N0N0N0N0";  // 8 more bytes in the same frame
  std::string body = "](" + w + tail;
  std::string f = std::string(test::lit("\x80\x04\x95"));
  for (int k = 0; k < 8; ++k) f += static_cast<char>((body.size() >> (8 * k)) & 0xFF);
  f += body + "N0N0N0N0" + "e.";  // to joblib: the array's 8 bytes; to an opcode-position reading: opcodes
  auto r = test::scan(f);
  CHECK(r.verdict == Verdict::kError);
  // The same wrapper with BUILD as the frame's last byte (how joblib writes) is read after BUILD.
  std::string body2 = "](" + w;
  std::string g = std::string(test::lit("\x80\x04\x95"));
  for (int k = 0; k < 8; ++k) g += static_cast<char>((body2.size() >> (8 * k)) & 0xFF);
  g += body2 + std::string(8, '\0') + "e.";
  CHECK(test::scan(g).verdict == Verdict::kClean);
}

TEST_CASE("sanitize reads .npy shape, order and dtype from the same parse as the scan") {
  brine::scan::ScanOptions options;
  options.compute_sha256 = false;
  brine::scan::Scanner scanner(test::builtin_rules(), options);
  auto extract = [&](const std::string& f) { return brine::sanitize::extract_bytes(brine::core::as_bytes(f), scanner, false); };
  // fortran_order True without the usual spacing: column-major strides.
  const std::string f = npy_file("{'descr':'<i4','fortran_order':True,'shape':(2,3)}", std::string(24, '\0'));
  auto x = extract(f);
  REQUIRE(x.extraction.tensors.size() == 1);
  CHECK(x.extraction.tensors[0].strides == std::vector<std::int64_t>{1, 2});
  CHECK(x.extraction.tensors[0].shape == std::vector<std::int64_t>{2, 3});
  // 'float64' (a type name) is a float64 tensor; a repeated descr takes the last value.
  auto named = extract(npy_file("{'descr': '|O', 'fortran_order': False, 'shape': (1,), 'descr': 'float64'}", std::string(8, '\0')));
  REQUIRE(named.extraction.tensors.size() == 1);
  CHECK(named.extraction.tensors[0].dtype == brine::tensor::DType::kF64);
  // An unresolved header is dropped with the reason, never converted.
  auto comma = extract(npy_file(header("'i4,O'"), std::string(8, '\0')));
  CHECK(comma.extraction.tensors.empty());
  REQUIRE(comma.extraction.dropped.size() == 1);
  CHECK(comma.extraction.dropped[0].reason.find("cannot read exactly") != std::string::npos);
}
