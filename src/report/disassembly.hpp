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
/// or the scan found an error (empty data, no format a loader reads, an unreadable container, a
/// limit): the listing and the summary say why.
///
/// JSON: an array of elements, in the order the scan ran them:
///   {"member", "instance", "start", "end", "instructions": [{"offset","op","arg"}], "jumps": [{"from","to"}],
///    "error"?, "error_kind"?}  one per run; `end` is where the run ended (just past STOP, or the
///    offset of the opcode it failed on); `jumps` are the byte ranges [from, to) joblib's loader
///    read itself (decoding resumed at `to`); `error_kind` says how the run failed at `end`:
///    "decode" (the opcode there cannot be decoded), "execute" (it decodes, is the last listed
///    instruction, and the VM refused to execute it: a semantic error or a per-opcode limit) or
///    "limit" (the VM stopped before reading it: max-opcodes, the time budget).
///   {"member", "instance", "start", "end", "note"}  bytes of a member no run read as opcodes:
///    between two runs, or after the member's last STOP (all notes follow the last run). A run
///    that starts inside another run's jump (an object array joblib loads with pickle.load from
///    its array data) is not one of the member's sequence of pickles and makes no note.
///   `instance` numbers byte sequences the scan read under the same member name (a zip with two
///   entries of one name): 0 for the first.
bool write_disassembly(std::ostream& out, core::Bytes data, const std::string& path,
                       std::shared_ptr<const rules::RuleSet> rules, const DisasmOptions& options);

}  // namespace brine::report
