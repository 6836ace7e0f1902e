// Text written in walk order while files are still being scanned. `scan` used to keep every
// file's report until the last file was done, then write them all: on 10,000 small files that
// list was three quarters of the run's page faults (the vector's doubling moves of reports), and
// writing it was work left for one thread after the others had finished.
#pragma once

#include <cstddef>
#include <map>
#include <mutex>
#include <ostream>
#include <string>

namespace brine::cli {

/// Writes the text of target `index` (walk order, 0, 1, 2, ...) as soon as it and every target
/// before it have been given. Safe to call from several threads; each index is given once.
/// Text given ahead of its turn waits here (a slow file holds back the output after it, never
/// the scans).
class OrderedOutput {
 public:
  explicit OrderedOutput(std::ostream& out) : out_(out) {}

  void put(std::size_t index, std::string text);
  /// Targets written so far (all given targets once the scan threads are done).
  std::size_t written() const;

 private:
  std::ostream& out_;
  mutable std::mutex mutex_;
  std::size_t next_ = 0;
  std::map<std::size_t, std::string> waiting_;
};

}  // namespace brine::cli
