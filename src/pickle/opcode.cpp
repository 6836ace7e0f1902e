#include "pickle/opcode.hpp"

namespace brine::pickle {

static_assert(kOpCount == 68, "protocols 0-5 define 68 opcodes");

}  // namespace brine::pickle
