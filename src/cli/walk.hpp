// The files a command line names: directories are walked the way a loader's user would expect
// them to be read. A Hugging Face cache snapshot is a folder of symbolic links into a blob store,
// so a link to a regular file is scanned as that file (under the link's path, once per path).
// Links to directories are followed only when asked, with loop detection by device and inode as
// `find -L` does. Nothing is skipped silently: every entry the walk does not scan is listed with
// its reason.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

namespace brine::cli {

struct WalkTarget {
  std::string path;
  bool explicit_file = false;  ///< named on the command line (reported even if not a pickle)
};

struct WalkSkip {
  std::string path;
  std::string reason;
};

struct WalkFilter {
  std::vector<std::string> include, exclude;
  /// A pattern with a '/' matches the path below the walked directory, one without matches the
  /// file name; '*' also crosses '/' in path patterns.
  [[nodiscard]] bool excluded(const std::string& rel) const;
  [[nodiscard]] bool wanted(const std::string& rel) const;
};

struct WalkOptions {
  bool follow_directory_links = false;
  WalkFilter filter;
  std::size_t max_depth = 4096;  ///< directory nesting (bounds the explicit stack)
};

struct WalkResult {
  std::vector<WalkTarget> targets;  ///< in command-line order; each directory's files sorted by path
  std::vector<WalkSkip> skipped;    ///< entries not scanned, with why
  std::vector<std::string> errors;  ///< directories that could not be read (the exit status is 2)
};

/// The whole walk at once: the targets, then what was skipped and the errors.
WalkResult walk(const std::vector<std::string>& paths, const WalkOptions& options);

/// The same walk, handed out a few targets at a time so that scanning can start while it goes on
/// (a walk of 10,000 files done before any scan thread started capped `-j 2` well below 2x). The
/// targets come in exactly walk()'s order: each directory's entries are visited in the order of
/// their paths (a directory's files after those of a sibling directory whose path sorts first),
/// so no walk needs to be collected and sorted before the first file is scanned. Memory is one
/// listing per directory on the current path, not the tree. Not thread-safe: one caller at a time.
class Walk {
 public:
  Walk(std::vector<std::string> paths, WalkOptions options);
  ~Walk();
  Walk(const Walk&) = delete;
  Walk& operator=(const Walk&) = delete;

  /// Appends the next targets to `out`, at most `max` of them; false when the walk is over
  /// (nothing was appended). A call lists only the directories it needs to find them.
  bool next(std::vector<WalkTarget>& out, std::size_t max);
  /// After next() returned false: what was skipped and the errors, in walk()'s order (targets empty).
  WalkResult finish();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace brine::cli
