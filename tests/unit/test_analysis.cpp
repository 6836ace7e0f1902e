// Analysis: uses, argument constraints and verdicts on small hand-made pickles.
#include <doctest/doctest.h>

#include "helpers.hpp"

using namespace brine;
using analysis::Verdict;

namespace {
// A torch-style tensor: _rebuild_tensor_v2(persistent storage, 0, (2,), (1,), False, OrderedDict())
std::string tensor_pickle(std::string_view hooks = "ccollections\nOrderedDict\n)R") {
  std::string p = "\x80\x02" "ctorch._utils\n_rebuild_tensor_v2\n(";
  p += test::lit("(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x00" "0X\x03\x00\x00\x00" "cpuK\x02tQ");
  p += test::lit("K\x00K\x02\x85K\x01\x85\x89");
  p += hooks;
  p += "tR.";
  return p;
}
}  // namespace

TEST_CASE("a denylisted call is malicious and reconstructed") {
  auto r = test::scan("cos\nsystem\n(S'echo hi'\ntR.");
  CHECK(r.verdict == Verdict::kMalicious);
  const auto* f = test::finding(r, "deny:os");
  REQUIRE(f);
  CHECK(f->global == "os.system");
  CHECK(f->use == "call");  // called only: no plain reference
  CHECK(f->call == "os.system('echo hi')");
  CHECK(f->offset == 24);
  CHECK(f->opcode == "REDUCE");
  CHECK(f->severity == rules::Severity::kCritical);
}

TEST_CASE("an unlisted global is unapproved, not malicious: the allowlist decides") {
  auto r = test::scan("cevil_pkg.backdoor\nrun\n(tR.");
  CHECK(r.verdict == Verdict::kUnapproved);
  const auto* f = test::finding(r, "unapproved-global");
  REQUIRE(f);
  CHECK(f->global == "evil_pkg.backdoor.run");
}

TEST_CASE("a plain torch tensor pickle is clean") {
  auto r = test::scan(tensor_pickle());
  CHECK(r.verdict == Verdict::kClean);
  CHECK(r.findings.empty());
}

TEST_CASE("approved callables with the wrong arguments are unapproved") {
  // backward_hooks holding a callable instead of an empty OrderedDict()
  auto r = test::scan(tensor_pickle("ccollections\nOrderedDict\n)R(K\x01" "cnumpy\ndtype\nu"));
  CHECK(r.verdict == Verdict::kUnapproved);
  CHECK(test::has_rule(r, "unapproved-arguments"));
  // bytes(10**9) would allocate a gigabyte: bytes() is approved with no arguments only
  auto b = test::scan("c__builtin__\nbytes\n(J\x00\xca\x9a\x3btR.");
  CHECK(b.verdict == Verdict::kUnapproved);
  CHECK(test::finding(b, "unapproved-arguments")->global == "builtins.bytes");
}

TEST_CASE("use matters: a class approved to be named is not approved to be called") {
  auto r = test::scan("\x80\x02" "ctorch\nFloatStorage\n)R.");
  CHECK(r.verdict == Verdict::kUnapproved);
  CHECK(test::finding(r, "unapproved-global")->use == "call");
}

TEST_CASE("factory calls: numpy _reconstruct instantiates its first argument") {
  // _reconstruct(ndarray, (0,), b'b') then BUILD: ndarray must be approved to instantiate and build.
  std::string p(test::lit("\x80\x03" "cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85" "C\x01" "b\x87R"));
  p += test::lit("(K\x01K\x00\x85" "cnumpy\ndtype\nX\x02\x00\x00\x00" "f4\x89\x88\x87R(K\x03X\x01\x00\x00\x00<NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89" "C\x00tb.");
  auto r = test::scan(p);
  CHECK(r.verdict == Verdict::kClean);
  // The same with a class that is not ndarray: unapproved arguments.
  std::string q = p;
  q.replace(q.find("cnumpy\nndarray"), 14, "cnumpy\nmatrix");
  CHECK(test::scan(q).verdict == Verdict::kUnapproved);
}

TEST_CASE("BUILD on a global object is monkey-patching: malicious") {
  auto r = test::scan("\x80\x02" "ctorch._utils\n_rebuild_tensor_v2\n}X\x01\x00\x00\x00xK\x01sb.");
  CHECK(r.verdict == Verdict::kMalicious);
  CHECK(test::has_rule(r, "evasion:build-on-global"));
}

TEST_CASE("evasion indicators") {
  CHECK(test::has_rule(test::scan("\x80\x04\x8c\x01m\x8c\x01" "f\x93)R\x8c\x01x\x93."), "evasion:unresolvable-global"));
  CHECK(test::scan("\x80\x02\x82\x01.").verdict == Verdict::kMalicious);  // EXT1
  CHECK(test::has_rule(test::scan("\x80\x02\x82\x01."), "evasion:extension-code"));
  auto frame = test::scan(std::string(test::lit("\x80\x04\x95\x02\x00\x00\x00\x00\x00\x00\x00NM\x01\x00")) + "0.");
  CHECK(test::has_rule(frame, "evasion:frame-violation"));
  auto dotted = test::scan("\x80\x04\x8c\x0b" "collections\x8c\x20" "OrderedDict.__init__.__globals__\x93.");
  CHECK(test::has_rule(dotted, "evasion:attribute-traversal"));
  CHECK(dotted.verdict == Verdict::kMalicious);
}

TEST_CASE("another pickle after STOP is malicious and is scanned too") {
  auto r = test::scan("N.cos\nsystem\n(S'id'\ntR.");
  CHECK(r.verdict == Verdict::kMalicious);
  CHECK(test::has_rule(r, "evasion:pickle-after-stop"));
  CHECK(test::has_rule(r, "deny:os"));
  CHECK(r.pickles == 2);
  // a benign second pickle is still an evasion indicator
  CHECK(test::scan("N.N.").verdict == Verdict::kMalicious);
  // bytes that are no pickle after STOP: trailing data, unapproved
  auto t = test::scan("N.\xff\xfe");
  CHECK(t.verdict == Verdict::kUnapproved);
  CHECK(test::finding(t, "unapproved:trailing-data")->offset == 2);
}

TEST_CASE("malformed input is an error naming offset and opcode, never clean") {
  auto r = test::scan("\x80\x02]q\x00(K\x01");
  CHECK(r.verdict == Verdict::kError);
  const auto* f = test::finding(r, "malformed:*");
  REQUIRE(f);
  CHECK(f->rule == "malformed:no-stop");
  auto u = test::scan("\x80\x02R.");
  CHECK(u.verdict == Verdict::kError);
  CHECK(test::finding(u, "malformed:stack-underflow")->opcode == "REDUCE");
  CHECK(test::finding(u, "malformed:stack-underflow")->offset == 2);
}

TEST_CASE("a limit hit is an error with the limit's name") {
  core::Limits l;
  l.max_opcodes = 3;
  auto r = test::scan("NNNNN.", {}, l);
  CHECK(r.verdict == Verdict::kError);
  CHECK(test::has_rule(r, "limit:max-opcodes"));
}

TEST_CASE("a payload before the malformation still makes the file malicious (nullifAI)") {
  auto r = test::scan("cos\nsystem\n(S'id'\ntR\x00garbage");
  CHECK(r.verdict == Verdict::kMalicious);
  CHECK(test::has_rule(r, "deny:os"));
  CHECK(test::has_rule(r, "malformed:*"));
}

TEST_CASE("packs approve what they name and nothing else") {
  std::string ns(test::lit("\x80\x02" "cargparse\nNamespace\n)\x81}X\x02\x00\x00\x00lrG?\x84z\xe1G\xae\x14{sb."));
  CHECK(test::scan(ns).verdict == Verdict::kUnapproved);
  CHECK(test::scan(ns, {"training-checkpoint"}).verdict == Verdict::kClean);
  CHECK(test::scan(ns, {"sklearn"}).verdict == Verdict::kUnapproved);
}

TEST_CASE("the denylist wins over an allow entry") {
  rules::RuleOptions o;
  o.allow = {"os.system"};
  auto rules = rules::load_rules(o);
  REQUIRE(rules);
  scan::Scanner scanner(*rules, scan::ScanOptions{});
  auto r = scanner.scan_bytes(test::bytes("cos\nsystem\n(S'id'\ntR."), "x");
  CHECK(r.verdict == Verdict::kMalicious);
}

// ---- "clean must mean exact": BUILD states (class 4) and exact pack lists (class 7) ----

TEST_CASE("BUILD state on an approved class is judged: OrderedDict state holding a call") {
  // OrderedDict() given the state {'_metadata': _codecs.encode('x', 'latin1')}: the class and the
  // call are each approved, but an OrderedDict's state may only set _metadata to an OrderedDict.
  auto r = test::scan(test::lit("\x80\x02" "ccollections\nOrderedDict\n)R}X\x09\x00\x00\x00_metadata"
                                "c_codecs\nencode\nX\x01\x00\x00\x00xX\x06\x00\x00\x00latin1\x86Rsb."));
  CHECK(r.verdict == Verdict::kUnapproved);
  CHECK(test::has_rule(r, "unapproved-state"));
  // an extra key is not in the rule either
  auto k = test::scan(test::lit("\x80\x02" "ccollections\nOrderedDict\n)R}X\x04\x00\x00\x00hookK\x01sb."));
  CHECK(k.verdict == Verdict::kUnapproved);
  // what torch writes stays clean
  auto ok = test::scan(test::lit("\x80\x02" "ccollections\nOrderedDict\n)R}X\x09\x00\x00\x00_metadata"
                                 "ccollections\nOrderedDict\n)RsbX\x01\x00\x00\x00" "aK\x01s."));
  CHECK(ok.verdict == Verdict::kClean);
}

TEST_CASE("a global or call anywhere inside a BUILD state is a state-value use") {
  // --allow grants every use but the state rule still walks the value: a global nested in a list
  // inside the state needs its own approval for state-value
  rules::RuleOptions o;
  o.allow = {"pkg.Thing:instantiate,build", "pkg.helper:call"};
  auto rules = rules::load_rules(o);
  REQUIRE(rules);
  scan::Scanner scanner(*rules, scan::ScanOptions{});
  auto r = scanner.scan_bytes(test::bytes(test::lit("\x80\x02" "cpkg\nThing\n)\x81}X\x01\x00\x00\x00x]"
                                                     "(K\x01" "cpkg\nhelper\n)Resb.")), "x");
  CHECK(r.verdict == Verdict::kUnapproved);
  const auto* f = test::finding(r, "unapproved-global");
  REQUIRE(f);
  CHECK(f->global == "pkg.helper");
  CHECK(f->use == "state-value");
  // a memo-shared, self-containing state is walked once and terminates
  auto c = scanner.scan_bytes(test::bytes(test::lit("\x80\x02" "cpkg\nThing\n)\x81}q\x00X\x01\x00\x00\x00s]q\x01h\x01" "ah\x00" "a"
                                                     "sX\x01\x00\x00\x00ncpkg\nhelper\n)Rsb.")), "x");
  CHECK(c.verdict == Verdict::kUnapproved);
  CHECK(test::finding(c, "unapproved-global")->use == "state-value");
}

TEST_CASE("a dunder key in a state dict or slots dict is malicious") {
  auto r = test::scan(test::lit("\x80\x02" "ccollections\nOrderedDict\n)R}X\x09\x00\x00\x00__class__K\x01sb."));
  CHECK(r.verdict == Verdict::kMalicious);
  CHECK(test::has_rule(r, "evasion:state-dunder-key"));
  // in the slots half of a (dict, slots) state, on a class approved with no state rule
  rules::RuleOptions o;
  o.allow = {"pkg.Thing:instantiate,build"};
  auto rules = rules::load_rules(o);
  REQUIRE(rules);
  scan::Scanner scanner(*rules, scan::ScanOptions{});
  auto s = scanner.scan_bytes(test::bytes(test::lit("\x80\x02" "cpkg\nThing\n)\x81N}X\x0d\x00\x00\x00__reduce_ex__K\x01s\x86" "b.")), "x");
  CHECK(s.verdict == Verdict::kMalicious);
  CHECK(test::has_rule(s, "evasion:state-dunder-key"));
}

TEST_CASE("reference is not implied: a global passed around as a value needs it") {
  // _rebuild_tensor_v2 is approved to be called; returning the function object itself is not
  auto r = test::scan("\x80\x02" "ctorch._utils\n_rebuild_tensor_v2\n.");
  CHECK(r.verdict == Verdict::kUnapproved);
  const auto* f = test::finding(r, "unapproved-global");
  REQUIRE(f);
  CHECK(f->use == "reference");
  // nor as an argument no spec consumes: numpy.dtype is approved to be called, not stored
  auto a = test::scan(test::lit("\x80\x02" "c__builtin__\nset\n]cnumpy\ndtype\na\x85R."));
  CHECK(a.verdict == Verdict::kUnapproved);
  // a storage class in a persistent id is approved for reference, and stays clean
  CHECK(test::scan(tensor_pickle()).verdict == Verdict::kClean);
}

TEST_CASE("sklearn pack: re-exports are judged as what they are; exact lists only") {
  // sklearn.utils._joblib re-exports joblib.load: the denylist sees joblib.numpy_pickle.load
  auto r = test::scan("\x80\x02" "csklearn.utils._joblib\nload\n.", {"sklearn"});
  CHECK(r.verdict == Verdict::kMalicious);
  // a class in a private submodule under an approved package is not in the exact list
  auto p = test::scan("\x80\x02" "csklearn.utils._testing\nTempMemmap\n)\x81}b.", {"sklearn"});
  CHECK(p.verdict == Verdict::kUnapproved);
  // torch-full-model: a re-exported os under torch.nn is os
  auto t = test::scan("\x80\x04\x95\x00\x00\x00\x00\x00\x00\x00\x00\x8c\x17torch.nn.modules.module\x8c\x09os.system\x93.",
                      {"torch-full-model"});
  CHECK(t.verdict == Verdict::kMalicious);
}

TEST_CASE("a real estimator class from the exact list stays clean, its state walked") {
  // LogisticRegression() with a data-only state
  auto r = test::scan(test::lit("\x80\x02" "csklearn.linear_model._logistic\nLogisticRegression\n)\x81}"
                                "X\x01\x00\x00\x00" "CG?\xf0\x00\x00\x00\x00\x00\x00sb."), {"sklearn"});
  CHECK(r.verdict == Verdict::kClean);
  // the same class whose state plants a call of an approved-to-call helper: not a state value
  auto bad = test::scan(test::lit("\x80\x02" "csklearn.linear_model._logistic\nLogisticRegression\n)\x81}"
                                  "X\x05\x00\x00\x00_lossc_codecs\nencode\nX\x01\x00\x00\x00xX\x06\x00\x00\x00latin1\x86Rsb."),
                        {"sklearn"});
  CHECK(bad.verdict == Verdict::kUnapproved);
}

TEST_CASE("a tensor's Python state (_rebuild_parameter_with_state arg 3) is judged like a BUILD state") {
  // torch's _set_obj_state setattr()s every key: __class__ there swaps the Parameter's class
  const std::string tensor = tensor_pickle().substr(2, tensor_pickle().size() - 3);  // no PROTO, no STOP
  auto r = test::scan("\x80\x02" "ctorch._utils\n_rebuild_parameter_with_state\n(" + tensor +
                      std::string(test::lit("\x89" "ccollections\nOrderedDict\n)R}X\x09\x00\x00\x00__class__K\x01stR.")));
  CHECK(r.verdict == Verdict::kMalicious);
  CHECK(test::has_rule(r, "evasion:state-dunder-key"));
  // a call inside it is a state value
  auto c = test::scan("\x80\x02" "ctorch._utils\n_rebuild_parameter_with_state\n(" + tensor +
                      std::string(test::lit("\x89" "ccollections\nOrderedDict\n)R}X\x01\x00\x00\x00xc_codecs\nencode\nX\x01\x00\x00\x00xX\x06\x00\x00\x00latin1\x86RstR.")));
  CHECK(c.verdict == Verdict::kUnapproved);
  // plain attributes stay clean
  auto ok = test::scan("\x80\x02" "ctorch._utils\n_rebuild_parameter_with_state\n(" + tensor +
                       std::string(test::lit("\x89" "ccollections\nOrderedDict\n)R}X\x05\x00\x00\x00" "_flagK\x01stR.")));
  CHECK(ok.verdict == Verdict::kClean);
}
