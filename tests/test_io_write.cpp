// SPDX-License-Identifier: Apache-2.0
// Tests of the .npy/.csv writers (src/io/write.cpp, temp_files.cpp): errors, atomic and staged
// writes, file identity (same_file), and the removal of staged temporaries on SIGINT/SIGTERM/SIGHUP.
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#if !defined(_WIN32)
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <thread>
#endif

#include "io_test_support.hpp"

namespace {

using namespace kmeans_io_test;

TEST_F(IoTest, SameFileSeesThroughSpellingsAndLinks) {
  write_bytes("a.npy", "x");
  write_bytes("b.npy", "x");
  fs::create_directories(path("sub"));
  using kmeans::io::same_file;
  EXPECT_TRUE(same_file(path("a.npy"), path("a.npy")));
  EXPECT_TRUE(same_file(path("a.npy"), path("./a.npy")));
  EXPECT_TRUE(same_file(path("a.npy"), path("sub/../a.npy")));
  EXPECT_FALSE(same_file(path("a.npy"), path("b.npy")));  // same content, other file
  fs::create_symlink(path("a.npy"), path("link.npy"));
  EXPECT_TRUE(same_file(path("link.npy"), path("a.npy")));
  fs::create_hard_link(path("a.npy"), path("hard.npy"));
  EXPECT_TRUE(same_file(path("hard.npy"), path("a.npy")));
  // Outputs that do not exist yet: the same path under two spellings, or not.
  EXPECT_TRUE(same_file(path("new.npy"), path("sub/../new.npy")));
  EXPECT_TRUE(same_file(path("new.npy"), path("./new.npy")));
  EXPECT_FALSE(same_file(path("new.npy"), path("new.csv")));
  EXPECT_FALSE(same_file(path("new.npy"), path("a.npy")));
  fs::create_directory_symlink(path("sub"), path("sublink"));
  EXPECT_TRUE(same_file(path("sub/new.npy"), path("sublink/new.npy")));
}

// --- writing: errors and atomicity ---------------------------------------------------------------

TEST_F(IoTest, UnwritablePathsAreErrors) {
  write_bytes("file", "x");
  const std::vector<std::string> bad = {path("no_dir/a.npy"), path("file/a.npy"), path("no_dir/a.csv")};
  for (const std::string& p : bad) {
    SCOPED_TRACE(p);
    try {
      kmeans::io::write_matrix(p, kSix.data(), 3, 2);
      ADD_FAILURE() << "no error";
    } catch (const kmeans::Error& e) {
      EXPECT_NE(std::string(e.what()).find(p + ": cannot write"), std::string::npos) << e.what();
    }
    EXPECT_THROW(kmeans::io::check_writable(p), kmeans::Error);
  }
  // A directory in the way: the temporary is written, the rename fails, nothing is left over.
  fs::create_directories(path("taken.npy"));
  EXPECT_THROW(kmeans::io::write_npy(path("taken.npy"), kSix.data(), 3, 2), kmeans::Error);
  EXPECT_THROW(kmeans::io::check_writable(path("taken.npy")), kmeans::Error);
  EXPECT_EQ(entries().size(), 2u) << "only 'file' and 'taken.npy' may exist";
  EXPECT_NO_THROW(kmeans::io::check_writable(path("fresh.npy")));
  EXPECT_FALSE(fs::exists(path("fresh.npy")));
}

TEST_F(IoTest, RewritingReplacesTheWholeFile) {
  const std::vector<double> big = random_values(100 * 4, 4);
  kmeans::io::write_npy(path("a.npy"), big.data(), 100, 4);
  kmeans::io::write_npy(path("a.npy"), kSix.data(), 3, 2);
  const Matrix m = kmeans::io::read_matrix(path("a.npy"));
  EXPECT_EQ(m.rows, 3);
  EXPECT_EQ(m.f64, kSix);
  EXPECT_EQ(entries(), std::vector<std::string>{"a.npy"});
}

TEST_F(IoTest, StagedWritesAreAllOrNothing) {
  const std::vector<std::int32_t> labels = {1, 0, 1};
  {
    kmeans::io::StagedWrites out;
    out.add(path("c.npy"), kSix.data(), 3, 2);
    out.add(path("l.csv"), labels.data(), 3, 0);
    EXPECT_FALSE(fs::exists(path("c.npy")));  // not before commit
    EXPECT_EQ(entries().size(), 2u);          // the two temporaries
  }  // destroyed without commit: the temporaries go away
  EXPECT_TRUE(entries().empty());
  {
    kmeans::io::StagedWrites out;
    out.add(path("c.npy"), kSix.data(), 3, 2);
    EXPECT_THROW(out.add(path("missing/l.npy"), labels.data(), 3, 0), kmeans::Error);
  }
  EXPECT_TRUE(entries().empty()) << "a failed second file must not leave the first one";
  {
    kmeans::io::StagedWrites out;
    out.add(path("c.npy"), kSix.data(), 3, 2);
    out.add(path("l.csv"), labels.data(), 3, 0);
    out.commit();
  }
  EXPECT_EQ(kmeans::io::read_matrix(path("c.npy")).f64, kSix);
  const Matrix l = kmeans::io::read_matrix(path("l.csv"));
  EXPECT_EQ(l.f64, (std::vector<double>{1, 0, 1}));
  EXPECT_EQ(entries().size(), 2u);
}

TEST_F(IoTest, StagedTextIsWrittenAsIsWithTheOthers) {
  {
    kmeans::io::StagedWrites out;
    out.add(path("c.npy"), kSix.data(), 3, 2);
    out.add_text(path("m.kmeans"), "{\"a\": 1}\n");
    EXPECT_FALSE(fs::exists(path("m.kmeans")));  // not before commit
    EXPECT_EQ(entries().size(), 2u);
  }
  EXPECT_TRUE(entries().empty());  // no commit: nothing left
  {
    kmeans::io::StagedWrites out;
    out.add_text(path("m.kmeans"), "{\"a\": 1}\n");
    EXPECT_THROW(out.add_text(path("missing/m2.kmeans"), "x"), kmeans::Error);
  }
  EXPECT_TRUE(entries().empty()) << "a failed second file must not leave the first one";
  {
    kmeans::io::StagedWrites out;
    out.add_text(path("m.kmeans"), std::string("{\"a\": 1}\n\0z", 11));
    out.commit();
  }
  std::ifstream in(path("m.kmeans"), std::ios::binary);
  const std::string back((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(back, std::string("{\"a\": 1}\n\0z", 11));
}

#if !defined(_WIN32)
/// Temporaries left in the directory (names with ".tmp-").
std::size_t temporaries(const fs::path& dir) {
  std::size_t n = 0;
  for (const auto& e : fs::directory_iterator(dir))
    n += e.path().filename().string().find(".tmp-") != std::string::npos;
  return n;
}

/// Waits for the child and returns the signal that ended it (0: it exited).
int ending_signal(pid_t pid) {
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid) return -1;
  return WIFSIGNALED(status) ? WTERMSIG(status) : 0;
}

TEST_F(IoTest, SignalsRemoveStagedTemporariesAndEndTheProcess) {
  const std::vector<std::int32_t> labels = {1, 0, 1};
  for (int sig : {SIGTERM, SIGINT, SIGHUP}) {
    SCOPED_TRACE(sig);
    int ready[2];
    ASSERT_EQ(::pipe(ready), 0);
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {  // the child stages two outputs, says so, and waits for the signal
      ::close(ready[0]);
      try {
        kmeans::io::StagedWrites out;
        out.add(path("c.npy"), kSix.data(), 3, 2);
        out.add(path("l.csv"), labels.data(), 3, 0);
        const char ok = 1;
        if (::write(ready[1], &ok, 1) != 1) ::_exit(3);
        for (;;) ::pause();
      } catch (...) {
        ::_exit(4);
      }
    }
    ::close(ready[1]);
    char ok = 0;
    const bool staged = ::read(ready[0], &ok, 1) == 1;
    ::close(ready[0]);
    if (!staged) {
      ADD_FAILURE() << "the child failed to stage its files";
      ::kill(pid, SIGKILL);
      ending_signal(pid);
      continue;
    }
    EXPECT_EQ(temporaries(dir_), 2u);
    ASSERT_EQ(::kill(pid, sig), 0);
    EXPECT_EQ(ending_signal(pid), sig) << "the process must end by the signal, as without the handler";
    EXPECT_TRUE(entries().empty()) << "the temporaries must be removed";
  }
}

TEST_F(IoTest, SignalDuringAWriteLeavesNoTemporary) {
  // The child rewrites a large .csv over and over; the signal comes while a temporary exists
  // (or just after a rename): either way no temporary may remain, and the target is whole.
  const std::int64_t rows = 100000, cols = 8;
  const std::vector<double> big = random_values(static_cast<std::size_t>(rows * cols), 11);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    try {
      for (;;) kmeans::io::write_csv(path("big.csv"), big.data(), rows, cols);
    } catch (...) {
      ::_exit(4);
    }
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (temporaries(dir_) == 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  const bool seen = temporaries(dir_) > 0;
  ::kill(pid, SIGTERM);
  EXPECT_EQ(ending_signal(pid), SIGTERM);
  ASSERT_TRUE(seen) << "no temporary appeared within 30 s";
  EXPECT_EQ(temporaries(dir_), 0u);
  if (fs::exists(path("big.csv"))) {
    const Matrix m = kmeans::io::read_matrix(path("big.csv"));
    EXPECT_EQ(m.rows, rows);
    EXPECT_EQ(m.f64, big);
  }
}
#endif

}  // namespace
