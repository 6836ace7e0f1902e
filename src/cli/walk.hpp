// The files a command line names: directories are walked the way a loader's user would expect
// them to be read. A Hugging Face cache snapshot is a folder of symbolic links into a blob store,
// so a link to a regular file is scanned as that file (under the link's path, once per path).
// Links to directories are followed only when asked, with loop detection by device and inode as
// `find -L` does. Nothing is skipped silently: every entry the walk does not scan is listed with
// its reason.
#pragma once

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

WalkResult walk(const std::vector<std::string>& paths, const WalkOptions& options);

}  // namespace brine::cli
