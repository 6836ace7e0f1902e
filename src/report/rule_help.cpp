#include "report/rule_help.hpp"

#include <array>
#include <utility>

namespace brine::report {

namespace {

struct Entry {
  std::string_view id;
  std::string_view short_description;
  std::string_view full_description;
};

// Rule ids with a meaning of their own (docs/json-report.md, "Rule ids").
constexpr std::array kRules{
    Entry{"evasion:unresolvable-global", "Global computed at load time",
          "STACK_GLOBAL's module or name operands are computed while loading, so no scanner can tell statically which global the loader imports."},
    Entry{"evasion:extension-code", "Global from the copyreg extension registry",
          "EXT1/EXT2/EXT4 import a global by a number registered in copyreg at run time: what it names depends on the loading process."},
    Entry{"evasion:attribute-traversal", "Attribute traversal in a global name",
          "A dotted qualname reaches a dunder attribute (__globals__, __builtins__, ...): a way to get from an approved object to arbitrary code."},
    Entry{"evasion:build-on-global", "BUILD sets state on a module, class or function",
          "BUILD applies state to an imported module, class or function object, rewriting code or attributes the process shares."},
    Entry{"evasion:pickle-after-stop", "Another pickle follows STOP",
          "A second pickle stream follows the first STOP: loaders that read further (or tools that read less) see different programs."},
    Entry{"evasion:frame-violation", "Opcode crosses a FRAME end",
          "An opcode runs past the end of its FRAME: the C and the pure-Python unpicklers read the stream differently."},
    Entry{"evasion:proto-switch", "PROTO changes mid-stream",
          "A PROTO opcode after the start changes the protocol, which changes how names are resolved (Python 2 name mapping)."},
    Entry{"evasion:polyglot", "File reads as two formats",
          "The file is valid as two formats (pickle and zip, tar and pickle, ...): different loaders run different content."},
    Entry{"evasion:zip-header-mismatch", "Zip local header and central record disagree",
          "A zip entry's local header and its central directory record disagree (name, method, sizes, flags or CRC): readers pick different data."},
    Entry{"evasion:zip-duplicate-name", "Two zip entries share a name",
          "Two entries share a name (or a name up to case, which torch's lookup ignores): which one a reader loads depends on the reader."},
    Entry{"evasion:zip-entry-count", "Zip end record hides entries",
          "The end-of-central-directory record counts fewer entries than the directory holds: torch sees fewer members than other readers."},
    Entry{"evasion:zip-readers-disagree", "Zip readers see different members",
          "torch's zip reader and Python's zipfile list different members (two central directories)."},
    Entry{"evasion:joblib-array-data", "joblib array data is a pickle",
          "Bytes joblib reads as raw array data are opcodes pickle.load would run."},
    Entry{"evasion:state-dunder-key", "Object state sets a dunder attribute",
          "BUILD state sets a dunder attribute (__class__, __dict__, __reduce__, ...) on an object."},
    Entry{"unapproved-global", "Global not approved for this use",
          "No allow entry in the rules grants this global the way the pickle uses it (reference, call, instantiate, build, setitem, append)."},
    Entry{"unapproved-arguments", "Approved global called with unapproved arguments",
          "The global is approved, but its arguments fail the allow entry's constraints."},
    Entry{"unapproved-state", "Object state not approved",
          "BUILD gives an approved class state that its allow entry does not permit."},
    Entry{"unapproved:call-of-computed-object", "Call of a computed object",
          "The pickle calls something that is not a global (the result of another call or an attribute): the rules cannot establish what runs."},
    Entry{"unapproved:call-of-persistent-object", "Call of a persistent object",
          "The pickle calls an object returned by persistent_load: what runs depends on the loader's persistent_load."},
    Entry{"unapproved:mutates-global", "State change on a global",
          "SETITEM/APPEND/BUILD applied to an imported global: it changes an object shared by the process."},
    Entry{"unapproved:persistent-id", "Unknown persistent id",
          "A persistent id that is not a torch storage reference: what the loader returns for it depends on its persistent_load."},
    Entry{"unapproved:out-of-band-buffer", "Out-of-band buffer",
          "NEXT_BUFFER takes data that is not in the file (pickle protocol 5 buffers)."},
    Entry{"unapproved:trailing-data", "Bytes after the last STOP",
          "Bytes follow the last STOP that are not a pickle: a loader ignores them, another tool might not."},
    Entry{"unapproved:outside-prefix", "Zip entries outside torch's prefix",
          "Zip entries lie outside the archive prefix torch.load uses: content other readers see and torch does not."},
    Entry{"unapproved:unscanned-member", "Archive member not scanned",
          "An archive member brine cannot read (an unsupported compression method): its content was not judged."},
    Entry{"unapproved:torchscript-code", "TorchScript code",
          "The archive holds TorchScript code that torch.jit.load compiles and runs."},
    Entry{"unapproved:zip-structure", "Unusual zip structure", "A zip structural oddity that readers treat differently."},
    Entry{"unapproved:zip-gap", "Unaccounted bytes in a zip", "Bytes between zip entries that no entry accounts for: room for hidden content."},
    Entry{"unapproved:zip-hidden-entry", "Hidden zip entry", "A zip entry no central directory record lists: some readers find it, others do not."},
    Entry{"unapproved:zip-encrypted", "Encrypted zip entry", "An encrypted zip entry: its content cannot be judged."},
    Entry{"unapproved:zip-flags", "Unusual zip flags", "Zip general-purpose flags that readers interpret differently."},
    Entry{"unapproved:extension-mismatch", "Data-format name on a pickle",
          "The file name promises a data format (.json, .safetensors, ...) but a loader would unpickle the content."},
    Entry{"unapproved:nested-bytes-not-computable", "Nested payload not computable",
          "A value a loader deserializes again (bytes passed to a loading function) is computed at load time, so it cannot be scanned."},
    Entry{"unapproved:tar-reader-disagreement", "tar readers disagree",
          "Python's tarfile and brine's model of torch's tar reading see different members."},
    Entry{"unapproved:tar-read-error", "tar member unreadable", "A tar member could not be read as the loader would read it."},
    Entry{"unresolved:npy-header", "npy header not established",
          "The .npy header could not be read exactly as numpy reads it, so the file cannot be called clean."},
    Entry{"malformed:leftover-stack", "STOP left items on the stack",
          "STOP left items on the unpickler's stack: a hand-made stream, not a pickler's output."},
    Entry{"io:unreadable", "File unreadable", "The file could not be read: nothing was analysed."},
    Entry{"torchscript:file-write", "TorchScript writes files", "TorchScript code writes files (malicious when it runs in __setstate__, at load)."},
    Entry{"torchscript:file-read", "TorchScript reads files", "TorchScript code reads files (malicious when it runs in __setstate__, at load)."},
    Entry{"torchscript:network", "TorchScript uses the network", "TorchScript code opens network connections (malicious when it runs in __setstate__, at load)."},
    Entry{"torchscript:native-op", "TorchScript calls a native operator", "TorchScript code calls a native custom operator brine cannot judge."},
    Entry{"torchscript:native-class", "TorchScript uses a native class", "TorchScript code uses a native custom class brine cannot judge."},
    Entry{"torchscript:unreadable", "TorchScript code not understood", "TorchScript code brine could not read completely: its effects are not established."},
};

struct ClassHelp {
  std::string_view prefix;
  std::string_view short_description;
  std::string_view full_description;
  std::string_view help;
};

constexpr std::array kClasses{
    ClassHelp{"deny:", "Denylisted global", "The pickle imports or uses a global on the denylist (rules/denylist.json).",
              "Do not load this file with pickle, torch.load, numpy.load or joblib.load: loading it gives the file's author the "
              "capability named above. Get the model from a trusted source, or convert its tensors with `brine sanitize`."},
    ClassHelp{"evasion:", "Evasion indicator", "The file is built so that tools and loaders read it differently, or so that scanners cannot tell what it imports.",
              "Treat the file as hostile: no legitimate writer (torch.save, numpy.save, joblib.dump, pickle.dump) produces this. Do not load it."},
    ClassHelp{"unapproved", "Not approved by the rules", "Something the rules do not approve: not known to be dangerous, but not shown to be safe.",
              "Review the global or structure named in the message. If it is legitimate for your models, approve it with an allow "
              "entry in a rules pack (docs/rules.md, `--rules`); otherwise do not load the file."},
    ClassHelp{"unresolved:", "Loader reading not established", "brine could not establish that its reading is the loader's own, so the file is not clean.",
              "Review the file by hand or convert it with `brine sanitize`; do not treat it as clean."},
    ClassHelp{"torchscript:", "TorchScript behaviour", "TorchScript code in the archive that touches files, the network or native code.",
              "TorchScript archives run code when loaded with torch.jit.load. Load only from trusted sources."},
    ClassHelp{"malformed:", "Malformed input", "The loader would fail here, or read the input differently: the analysis is incomplete.",
              "The file is corrupt, truncated or hand-made. A loader fails on it or reads it in a way brine does not model; it is never clean."},
    ClassHelp{"limit:", "Resource limit reached", "A resource limit was hit (the flag named after 'limit:'): the analysis is incomplete.",
              "Rescan with a higher limit (`brine scan --help` lists the limit flags) if the file is expected to be that large."},
    ClassHelp{"io:", "Input error", "The file could not be read.", "Check that the path exists and is readable."},
    ClassHelp{"anomaly:", "Anomaly (informational)", "Hand-made but harmless structure.", "No action needed."},
    ClassHelp{"info:", "Information", "Informational note about the file.", "No action needed."},
};

const ClassHelp& class_of(std::string_view rule) {
  for (const auto& c : kClasses) {
    if (rule.starts_with(c.prefix)) return c;
  }
  return kClasses[2];  // unknown classes are at least "not approved": never presented as harmless
}

}  // namespace

RuleHelp rule_help(std::string_view rule, const rules::RuleSet* rules) {
  const ClassHelp& cls = class_of(rule);
  RuleHelp out{std::string(cls.short_description), std::string(cls.full_description), std::string(cls.help), {}};
  if (rules != nullptr && rule.starts_with("deny:")) {
    for (const auto& d : rules->deny_entries()) {
      if (d.id != rule) continue;
      out.short_description = "Denylisted: " + d.target;
      out.full_description = d.message + " (denylist entry " + d.id + (d.source.empty() ? "" : ", " + d.source) + ")";
      out.help_uri = d.advisory;
      return out;
    }
  }
  for (const auto& e : kRules) {
    if (e.id == rule) {
      out.short_description = e.short_description;
      out.full_description = e.full_description;
      return out;
    }
  }
  if (rule.starts_with("unapproved:") && rule.ends_with("-on-unknown-object")) {
    out.short_description = "State change on an object of unknown type";
    out.full_description = "BUILD/SETITEM/APPEND on an object whose type the rules cannot establish: what code runs is not known.";
  } else if (rule.starts_with("limit:")) {
    out.full_description = "The resource limit " + std::string(rule.substr(6)) + " was hit: the analysis is incomplete.";
  } else if (rule.starts_with("malformed:")) {
    out.full_description = "The input is malformed (" + std::string(rule.substr(10)) + "): the loader would fail or read it differently, so the analysis is incomplete.";
  }
  return out;
}

}  // namespace brine::report
