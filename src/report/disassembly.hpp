// `brine disasm`: pickletools-style listings of every pickle in a file (one per zip member),
// as text or as JSON with exact argument values (used by the pickletools differential test).
#pragma once

#include <ostream>
#include <string>

#include "core/byte_reader.hpp"
#include "core/limits.hpp"
#include "core/result.hpp"

namespace brine::report {

struct DisasmOptions {
  bool json = false;
  core::Limits limits;
};

/// Lists the pickles in `data` (a raw stream, a legacy torch file or a zip). Returns false if
/// some pickle could not be decoded to its STOP (the listing shows where and why).
bool write_disassembly(std::ostream& out, core::Bytes data, const std::string& path, const DisasmOptions& options);

}  // namespace brine::report
