// Scanning a directory tree on several threads while it is still being walked. The walk used to
// run alone before any scan thread started: on 10,000 small files that serial part capped `-j 2`
// far below 2x. Here the threads share one Walk: a thread that finds the queue of walked targets
// running low walks the next few itself (one thread at a time), and otherwise takes the next
// target. No extra walker thread competes for the CPUs, `-j 1` interleaves walking and scanning
// on one thread, and the queue holds a few targets per thread, not the tree.
#pragma once

#include <cstddef>
#include <functional>

#include "cli/walk.hpp"

namespace brine::cli {

/// Calls `visit(worker, index, target)` once for every target of `walk`, on up to `jobs` threads
/// (the caller's is worker 0; the others are started only when there are targets for them).
/// `index` is the target's position in the walk's order; `worker` < `jobs` tells the threads
/// apart, for results kept per thread. Returns the number of targets. `visit` must be safe to
/// call concurrently.
std::size_t visit_while_walking(Walk& walk, unsigned jobs,
                                const std::function<void(unsigned worker, std::size_t index, WalkTarget&& target)>& visit);

}  // namespace brine::cli
