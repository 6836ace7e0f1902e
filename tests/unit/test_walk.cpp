// The directory walk of `brine scan`, and the walk that scan threads share while scanning
// (cli/walk.hpp, cli/parallel_walk.hpp). The tree below has sibling names where one is a prefix of
// another ("a", "a-c", "a.b", "a b"): there the order of the paths ("a-c/..." < "a/...") differs
// from walking directories in name order, the order skips and errors have always been listed in.
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>
#include <string>
#include <vector>

#include "cli/ordered_output.hpp"
#include "cli/parallel_walk.hpp"
#include "cli/walk.hpp"

using namespace brine;
namespace fs = std::filesystem;

namespace {

struct TempTree {
  std::string root;
  TempTree() {
    root = (fs::temp_directory_path() / ("brine-walk-" + std::to_string(::getpid()))).string();
    fs::remove_all(root);
    for (const char* f : {"a/m.pkl", "a/x/y/deep.pkl", "a-c/x/n.pkl", "a-c/x/y/deep.pkl", "a-c/x-y.pkl", "a-c.pkl", "a.b/o.pkl",
                          "a b/p.pkl", "a0.pkl", "e/g.pkl", "e/f/h.pkl", "README.md"}) {
      file(f, "x");
    }
    fs::create_directory_symlink("..", root + "/e/f/up");     // a loop when followed
    fs::create_symlink("a/m.pkl", root + "/link.pkl");        // scanned as a file
    fs::create_symlink("nowhere", root + "/dangling.pkl");    // skipped
    REQUIRE(::mkfifo((root + "/fifo.pkl").c_str(), 0600) == 0);  // skipped: not a regular file
  }
  ~TempTree() { fs::remove_all(root); }
  void file(const std::string& rel, const std::string& bytes) const {
    const fs::path p = fs::path(root) / rel;
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << bytes;
  }
  std::vector<std::string> paths(std::initializer_list<const char*> rels) const {
    std::vector<std::string> out;
    for (const char* r : rels) out.push_back(root + "/" + r);
    return out;
  }
};

std::vector<std::string> target_paths(const std::vector<cli::WalkTarget>& targets) {
  std::vector<std::string> out;
  for (const auto& t : targets) out.push_back(t.path);
  return out;
}

std::vector<std::string> skip_list(const std::vector<cli::WalkSkip>& skipped) {
  std::vector<std::string> out;
  for (const auto& s : skipped) out.push_back(s.path + ": " + s.reason);
  return out;
}

cli::WalkOptions depth_two() {
  cli::WalkOptions o;
  o.max_depth = 3;  // the root and two levels below it: a/x/y and a-c/x/y are errors
  return o;
}

}  // namespace

// These expectations are the walk as it was before it was made incremental (checked against
// that code): files sorted by path, skips and errors in the order of a depth-first walk by name.
TEST_CASE("walk lists files in path order, skips and errors in depth-first name order") {
  const TempTree t;
  const auto w = cli::walk({t.root, t.root + "/missing.pkl"}, depth_two());
  const auto expected = t.paths({"README.md", "a b/p.pkl", "a-c.pkl", "a-c/x-y.pkl", "a-c/x/n.pkl", "a.b/o.pkl", "a/m.pkl", "a0.pkl",
                                 "e/f/h.pkl", "e/g.pkl", "link.pkl", "missing.pkl"});
  CHECK(target_paths(w.targets) == expected);
  REQUIRE(w.targets.size() == expected.size());
  CHECK(w.targets.back().explicit_file);
  CHECK(std::none_of(w.targets.begin(), w.targets.end() - 1, [](const auto& x) { return x.explicit_file; }));
  // Directory "a" is walked before "a-c" (name order), though "a-c/..." paths sort first.
  CHECK(w.errors == std::vector<std::string>{t.root + "/a/x/y: directories nested more than 3 deep",
                                             t.root + "/a-c/x/y: directories nested more than 3 deep"});
  CHECK(skip_list(w.skipped) == std::vector<std::string>{
                                    t.root + "/dangling.pkl: symbolic link to nothing readable: No such file or directory",
                                    t.root + "/fifo.pkl: a FIFO",
                                    t.root + "/e/f/up: symbolic link to a directory (not followed without --follow-symlinks)"});

  cli::WalkOptions follow;
  follow.follow_directory_links = true;
  follow.filter.exclude = {"a.b"};
  const auto f = cli::walk({t.root}, follow);
  CHECK(skip_list(f.skipped) == std::vector<std::string>{
                                    t.root + "/a.b: directory excluded by --exclude",
                                    t.root + "/dangling.pkl: symbolic link to nothing readable: No such file or directory",
                                    t.root + "/fifo.pkl: a FIFO",
                                    t.root + "/e/f/up: directory loop: it leads back to a directory above it"});
  CHECK(f.errors.empty());
}

TEST_CASE("Walk hands out walk()'s targets in the same order, a few at a time, and the same skips and errors") {
  const TempTree t;
  const std::vector<std::string> roots{t.root + "/a-c", t.root, t.root + "/a0.pkl", t.root + "/e"};
  const auto whole = cli::walk(roots, depth_two());
  for (const std::size_t step : {1, 2, 5, 1000}) {
    CAPTURE(step);
    cli::Walk w(roots, depth_two());
    std::vector<cli::WalkTarget> targets;
    std::size_t calls = 0;
    while (w.next(targets, step)) {
      ++calls;
      CHECK(targets.size() <= calls * step);
    }
    CHECK(!w.next(targets, step));  // stays over
    const auto rest = w.finish();
    CHECK(target_paths(targets) == target_paths(whole.targets));
    CHECK(rest.targets.empty());
    CHECK(rest.errors == whole.errors);
    CHECK(skip_list(rest.skipped) == skip_list(whole.skipped));
  }
  // Each root keeps its own sorted run, in command-line order.
  CHECK(whole.targets.front().path == t.root + "/a-c/x-y.pkl");
  CHECK(whole.errors.size() == 2);  // below the whole tree only: a-c/x/y is not too deep below a-c
}

TEST_CASE("threads visiting a walk while it goes on get every target once, indexed in walk order") {
  const TempTree t;
  for (int i = 0; i < 300; ++i) t.file("many/" + std::to_string(i % 7) + "/f" + std::to_string(i), "x");
  const std::vector<std::string> roots{t.root, t.root + "/nothing-here"};
  const auto whole = cli::walk(roots, depth_two());
  for (const unsigned jobs : {1u, 2u, 4u, 64u}) {
    CAPTURE(jobs);
    cli::Walk w(roots, depth_two());
    std::mutex lock;
    std::vector<std::string> at(whole.targets.size() + 1);
    std::vector<bool> explicit_file(at.size());
    std::vector<unsigned> workers;
    std::size_t visits = 0;
    const std::size_t n = cli::visit_while_walking(w, jobs, [&](unsigned worker, std::size_t index, cli::WalkTarget&& target) {
      const std::lock_guard g(lock);
      ++visits;
      CHECK(worker < jobs);
      workers.push_back(worker);
      if (index >= at.size()) {
        FAIL_CHECK("index out of range");  // not REQUIRE: this is a worker thread
        return;
      }
      CHECK(at[index].empty());
      at[index] = std::move(target.path);
      explicit_file[index] = target.explicit_file;
    });
    CHECK(n == whole.targets.size());
    CHECK(visits == n);
    at.resize(n);
    CHECK(at == target_paths(whole.targets));
    CHECK(explicit_file[n - 1]);
    const auto rest = w.finish();
    CHECK(rest.errors == whole.errors);
    CHECK(skip_list(rest.skipped) == skip_list(whole.skipped));
    if (jobs == 1) CHECK(std::all_of(workers.begin(), workers.end(), [](unsigned x) { return x == 0; }));
  }
}

TEST_CASE("a walk with no targets, and a walk of one file, start no threads and visit nothing more") {
  const TempTree t;
  fs::create_directories(t.root + "/empty");
  cli::Walk none({t.root + "/empty"}, {});
  CHECK(cli::visit_while_walking(none, 8, [](unsigned, std::size_t, cli::WalkTarget&&) { FAIL("no target"); }) == 0);
  cli::Walk one({t.root + "/a0.pkl"}, {});
  std::vector<unsigned> workers;
  CHECK(cli::visit_while_walking(one, 8, [&](unsigned worker, std::size_t, cli::WalkTarget&&) { workers.push_back(worker); }) == 1);
  CHECK(workers == std::vector<unsigned>{0});
}

TEST_CASE("ordered output writes each text in index order, as soon as every earlier index is given") {
  std::ostringstream out;
  brine::cli::OrderedOutput ordered(out);
  ordered.put(2, "c");
  ordered.put(1, "b");
  CHECK(out.str().empty());  // 0 not given yet: nothing may be written
  CHECK(ordered.written() == 0);
  ordered.put(0, "a");
  CHECK(out.str() == "abc");  // 0 releases the two that waited
  ordered.put(3, "");
  ordered.put(5, "f");
  CHECK(out.str() == "abc");
  CHECK(ordered.written() == 4);
  ordered.put(4, "e");
  CHECK(out.str() == "abcef");
  CHECK(ordered.written() == 6);
}

TEST_CASE("ordered output from several threads given shuffled indices is the sequential text") {
  constexpr std::size_t kTexts = 4000;
  std::vector<std::size_t> order(kTexts);
  for (std::size_t i = 0; i < kTexts; ++i) order[i] = i;
  std::shuffle(order.begin(), order.end(), std::mt19937(7));
  std::ostringstream out;
  brine::cli::OrderedOutput ordered(out);
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (std::size_t i = t; i < kTexts; i += 4) ordered.put(order[i], std::to_string(order[i]) + "\n");
    });
  }
  for (auto& t : threads) t.join();
  std::string expected;
  for (std::size_t i = 0; i < kTexts; ++i) expected += std::to_string(i) + "\n";
  CHECK(out.str() == expected);
  CHECK(ordered.written() == kTexts);
}
