// `brine disasm`: pickletools-style listings of exactly the pickles the scan executes, as text or
// as JSON with exact argument values (used by the pickletools differential test).
//
// There is no container code here: a Scanner finds and runs the pickles (one reader per format),
// and its observer hands every run over with its member path and bytes. Each run is re-decoded
// with the shared pickle::Decoder from run.start to run.end, following run.jumps (raw array data
// joblib's loader reads itself), so the listing shows what the scan read, and nothing else.
#pragma once

#include <memory>
#include <ostream>
#include <string>

#include "core/byte_reader.hpp"
#include "core/limits.hpp"
#include "rules/rule_set.hpp"

namespace brine::report {

struct DisasmOptions {
  bool json = false;
  core::Limits limits;
};

/// Scans `data` (named `path`) with `rules`, lists every pickle run the scan executes, and (text)
/// ends with the scan's verdict and findings. Returns false if some run stopped before its STOP,
/// or the data is empty or no format a loader reads (the listing says why).
///
/// JSON: an array of elements, in the order the scan ran them:
///   {"member", "start", "end", "instructions": [{"offset","op","arg"}], "jumps": [{"from","to"}],
///    "error"?, "error_kind"?}  one per run; `jumps` are the byte ranges [from, to) joblib's loader
///    read itself (decoding resumed at `to`); `error_kind` is "decode" when the opcode at `end`
///    cannot be decoded, "execute" when it decodes but the VM stopped there (a semantic error, a limit).
///   {"member", "start", "end", "note"}  bytes of a member no run read as opcodes: between two
///    runs, or after the member's last STOP.
bool write_disassembly(std::ostream& out, core::Bytes data, const std::string& path,
                       std::shared_ptr<const rules::RuleSet> rules, const DisasmOptions& options);

}  // namespace brine::report
