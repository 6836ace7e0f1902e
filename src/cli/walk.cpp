#include "cli/walk.hpp"

#include <dirent.h>
#include <fnmatch.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <memory>
#include <utility>

namespace brine::cli {

namespace {

bool match(const std::string& pattern, const std::string& rel) {
  const auto slash = rel.rfind('/');
  const std::string subject = pattern.find('/') != std::string::npos || slash == std::string::npos ? rel : rel.substr(slash + 1);
  return ::fnmatch(pattern.c_str(), subject.c_str(), 0) == 0;
}

std::string join(const std::string& dir, const std::string& name) {
  return dir.empty() || dir.back() == '/' ? dir + name : dir + "/" + name;
}

std::string kind_of(mode_t m) {
  if (S_ISFIFO(m)) return "a FIFO";
  if (S_ISSOCK(m)) return "a socket";
  if (S_ISCHR(m)) return "a character device";
  if (S_ISBLK(m)) return "a block device";
  return "not a regular file";
}

using DevIno = std::pair<dev_t, ino_t>;

struct DirEntry {
  std::string name;
  unsigned char type = DT_UNKNOWN;  ///< readdir's d_type: DT_REG and DT_DIR need no lstat
  bool operator<(const DirEntry& o) const { return name < o.name; }
};

/// Lists one directory's entries, sorted by name; false (with errno's message) if it cannot be read.
bool list_dir(const std::string& path, std::vector<DirEntry>& entries, std::string& why) {
  std::unique_ptr<DIR, int (*)(DIR*)> dir(::opendir(path.c_str()), ::closedir);
  if (!dir) {
    why = std::strerror(errno);
    return false;
  }
  errno = 0;
  while (const dirent* e = ::readdir(dir.get())) {
    std::string name = e->d_name;
    if (name != "." && name != "..") entries.push_back({std::move(name), e->d_type});
  }
  if (errno != 0) {
    why = std::strerror(errno);
    return false;
  }
  std::sort(entries.begin(), entries.end());
  return true;
}

/// Where an error or a skip was met in the walk the lists have always been in: the command-line
/// path, then the directories depth first with each directory's entries in name order. The
/// targets now come in path order instead (see Level), which visits sibling directories in
/// another order when one name is a prefix of the other ("a/" after "a-c/"), so skips and
/// errors are sorted back by this key: the same lists, in the same order, as before.
struct EventKey {
  std::size_t root = 0;
  std::string dir;        ///< the directory's path below the root, '/' as '\0': compares by component
  std::size_t entry = 0;  ///< 0: the directory itself; i + 1: its i-th entry in name order
  bool operator<(const EventKey& o) const {
    if (root != o.root) return root < o.root;
    if (const int c = dir.compare(o.dir); c != 0) return c < 0;
    return entry < o.entry;
  }
};

/// One entry of a listed directory, still to be handed out (a file) or walked (a directory).
struct Item {
  std::string order;  ///< the name, with a '/' after a directory's: the order of the paths below
  std::string path;   ///< as it will be reported
  std::string rel;    ///< below the walked directory (directories only)
  bool dir = false;
  DevIno id{};        ///< directories only, for loop detection
};

/// A directory on the current path of the walk: its entries sorted so that handing out files and
/// descending into directories in this order yields every path below it in sorted order. Within
/// a directory, a file's path is <dir>/<name> and a subdirectory's paths all start with
/// <dir>/<name>/; as a name holds no '/', comparing "<name>/" with another entry's key orders
/// all of that subdirectory's paths the same way.
struct Level {
  DevIno id;
  std::string rel;
  std::string key;  ///< rel for EventKey
  std::vector<Item> items;
  std::size_t next = 0;
};

}  // namespace

struct Walk::State {
  std::vector<std::string> paths;
  WalkOptions options;
  std::size_t next_root = 0;
  std::size_t root = 0;       ///< index of the path being walked
  std::vector<Level> levels;  ///< the directories from the root down to the one being handed out
  std::vector<std::pair<EventKey, std::string>> errors;
  std::vector<std::pair<EventKey, WalkSkip>> skipped;

  void error(const Level& at, std::size_t entry, std::string what) {
    errors.push_back({{root, at.key, entry}, std::move(what)});
  }
  void skip(const Level& at, std::size_t entry, std::string path, std::string reason) {
    skipped.push_back({{root, at.key, entry}, {std::move(path), std::move(reason)}});
  }

  /// Lists `path` and sorts out its entries as a new innermost level (none if it cannot be read).
  void enter(const std::string& path, std::string rel, DevIno id) {
    Level& level = levels.emplace_back();
    level.id = id;
    level.rel = std::move(rel);
    level.key = level.rel;
    std::replace(level.key.begin(), level.key.end(), '/', '\0');
    std::vector<DirEntry> entries;
    std::string why;
    if (!list_dir(path, entries, why)) {
      error(level, 0, path + ": " + why);
      levels.pop_back();
      return;
    }
    level.items.reserve(entries.size());
    for (std::size_t i = 0; i < entries.size(); ++i) {
      const auto& [name, type] = entries[i];
      const std::size_t entry = i + 1;
      std::string item_path = join(path, name);
      std::string item_rel = level.rel.empty() ? name : level.rel + "/" + name;
      struct stat lst {};
      if (type == DT_REG) {
        // The file system said what it is: no lstat per file. Walking 10,000 small files was
        // one third lstat calls.
        lst.st_mode = S_IFREG;
      } else if (::lstat(item_path.c_str(), &lst) != 0) {
        error(level, entry, item_path + ": " + std::strerror(errno));
        continue;
      }
      struct stat st = lst;
      const bool link = S_ISLNK(lst.st_mode);
      if (link && ::stat(item_path.c_str(), &st) != 0) {
        skip(level, entry, std::move(item_path), std::string("symbolic link to nothing readable: ") + std::strerror(errno));
        continue;
      }
      if (S_ISDIR(st.st_mode)) {
        if (options.filter.excluded(item_rel)) {
          skip(level, entry, std::move(item_path), "directory excluded by --exclude");
          continue;
        }
        if (link && !options.follow_directory_links) {
          skip(level, entry, std::move(item_path), "symbolic link to a directory (not followed without --follow-symlinks)");
          continue;
        }
        const DevIno sub{st.st_dev, st.st_ino};
        if (std::any_of(levels.begin(), levels.end(), [&](const Level& l) { return l.id == sub; })) {
          skip(level, entry, std::move(item_path), "directory loop: it leads back to a directory above it");
          continue;
        }
        if (levels.size() >= options.max_depth) {
          error(level, entry, item_path + ": directories nested more than " + std::to_string(options.max_depth) + " deep");
          continue;
        }
        level.items.push_back({name + "/", std::move(item_path), std::move(item_rel), true, sub});
        continue;
      }
      if (!S_ISREG(st.st_mode)) {
        skip(level, entry, std::move(item_path), kind_of(st.st_mode));
        continue;
      }
      if (!options.filter.wanted(item_rel)) {
        skip(level, entry, std::move(item_path), options.filter.excluded(item_rel) ? "excluded by --exclude" : "not matched by --include");
        continue;
      }
      level.items.push_back({name, std::move(item_path), {}, false, {}});
    }
    std::sort(level.items.begin(), level.items.end(), [](const Item& a, const Item& b) { return a.order < b.order; });
  }
};


bool WalkFilter::excluded(const std::string& rel) const {
  return std::any_of(exclude.begin(), exclude.end(), [&](const std::string& p) { return match(p, rel); });
}

bool WalkFilter::wanted(const std::string& rel) const {
  if (excluded(rel)) return false;
  return include.empty() || std::any_of(include.begin(), include.end(), [&](const std::string& p) { return match(p, rel); });
}

Walk::Walk(std::vector<std::string> paths, WalkOptions options) : state_(std::make_unique<State>()) {
  state_->paths = std::move(paths);
  state_->options = std::move(options);
}

Walk::~Walk() = default;

bool Walk::next(std::vector<WalkTarget>& out, std::size_t max) {
  State& s = *state_;
  const std::size_t before = out.size();
  while (out.size() - before < max) {
    if (s.levels.empty()) {
      if (s.next_root == s.paths.size()) break;
      s.root = s.next_root++;
      std::string& p = s.paths[s.root];
      struct stat st {};
      if (p != "-" && ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
        s.enter(p, "", {st.st_dev, st.st_ino});
      } else {
        out.push_back({std::move(p), true});  // the scan reports what it is (missing, a FIFO, ...)
      }
      continue;
    }
    Level& level = s.levels.back();
    if (level.next == level.items.size()) {
      s.levels.pop_back();
      continue;
    }
    Item item = std::move(level.items[level.next++]);
    if (item.dir) {
      s.enter(item.path, std::move(item.rel), item.id);
    } else {
      out.push_back({std::move(item.path), false});
    }
  }
  return out.size() != before;
}

WalkResult Walk::finish() {
  State& s = *state_;
  WalkResult out;
  const auto by_key = [](const auto& a, const auto& b) { return a.first < b.first; };
  std::stable_sort(s.errors.begin(), s.errors.end(), by_key);
  std::stable_sort(s.skipped.begin(), s.skipped.end(), by_key);
  for (auto& [key, e] : s.errors) out.errors.push_back(std::move(e));
  for (auto& [key, k] : s.skipped) out.skipped.push_back(std::move(k));
  s.errors.clear();
  s.skipped.clear();
  return out;
}

WalkResult walk(const std::vector<std::string>& paths, const WalkOptions& options) {
  Walk w(paths, options);
  std::vector<WalkTarget> targets;
  while (w.next(targets, std::numeric_limits<std::size_t>::max())) {
  }
  WalkResult out = w.finish();
  out.targets = std::move(targets);
  return out;
}

}  // namespace brine::cli
