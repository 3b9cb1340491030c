// SPDX-License-Identifier: Apache-2.0
// `kmeans fit --stream` on a file four times its --memory-limit: the child's peak resident
// memory (the kernel's ru_maxrss, from wait4) stays inside the limit and the outputs equal the
// in-memory fit's byte for byte.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#ifndef KMEANS_CLI_EXE
#error "KMEANS_CLI_EXE: the kmeans CLI's path"
#endif

namespace {

#if defined(KMEANS_TEST_SANITIZED)
// Sanitizers' shadow memory is resident before the fit starts: a 24M budget cannot hold it.
// There only the equality is checked, under a budget that is not binding.
constexpr std::size_t kLimit = std::size_t{1} << 30;
const char* const kLimitArg = "1G";
#else
constexpr std::size_t kLimit = std::size_t{24} << 20;  // --memory-limit 24M
const char* const kLimitArg = "24M";
#endif
#if defined(KMEANS_TEST_SANITIZED)
constexpr std::int64_t kRows = 196608;  // 48 blocks: the equality only, in less time
#else
constexpr std::int64_t kRows = 786432;  // 192 blocks of 4096
#endif
constexpr std::int64_t kCols = 32;      // 96 MiB of float32 (24 MiB sanitized)

std::string dir() {
  static const std::string d = ::testing::TempDir() + "kmeans_stream_cli_" + std::to_string(::getpid());
  return d;
}

/// 16 clusters in 32-D, float32, as a .npy file (written once).
const std::string& big_file() {
  static const std::string path = [] {
    ::mkdir(dir().c_str(), 0700);
    const std::string p = dir() + "/big.npy";
    std::mt19937_64 g(7);
    std::normal_distribution<float> noise(0.0f, 1.0f);
    std::uniform_real_distribution<float> spread(-10.0f, 10.0f);
    std::vector<float> c(16 * kCols);
    for (float& v : c) v = spread(g);
    std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (" +
                       std::to_string(kRows) + ", " + std::to_string(kCols) + "), }";
    while ((10 + dict.size() + 1) % 64 != 0) dict += ' ';
    dict += '\n';
    std::ofstream f(p, std::ios::binary);
    f.write("\x93NUMPY\x01\x00", 8);
    const char len[2] = {static_cast<char>(dict.size() & 0xff), static_cast<char>(dict.size() >> 8)};
    f.write(len, 2);
    f << dict;
    std::vector<float> row(kCols);
    for (std::int64_t i = 0; i < kRows; ++i) {
      const float* ci = c.data() + (g() % 16) * kCols;
      for (std::int64_t j = 0; j < kCols; ++j) row[j] = ci[j] + noise(g);
      f.write(reinterpret_cast<const char*>(row.data()), sizeof(float) * kCols);
    }
    return p;
  }();
  return path;
}

struct CliRun {
  int rc = -1;
  std::size_t max_rss = 0;  // bytes
  std::string out, err;
};

/// Runs the CLI with `args`, stdout to a file; the peak RSS from wait4's rusage.
CliRun run_cli(const std::vector<std::string>& args, const std::string& stdout_path,
            const char* auto_bytes = nullptr) {
  std::vector<char*> argv;
  std::string exe = KMEANS_CLI_EXE;
  argv.push_back(exe.data());
  std::vector<std::string> copy = args;
  for (std::string& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  CliRun r;
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int fd = ::open(stdout_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    const int efd = ::open((stdout_path + ".err").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || efd < 0) ::_exit(126);
    ::dup2(fd, 1);
    ::dup2(efd, 2);
    if (auto_bytes) ::setenv("KMEANS_STREAM_AUTO_BYTES", auto_bytes, 1);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  int status = 0;
  struct rusage ru {};
  if (pid > 0 && ::wait4(pid, &status, 0, &ru) == pid) {
    r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.max_rss = static_cast<std::size_t>(ru.ru_maxrss) * 1024;  // Linux: kilobytes
  }
  std::ifstream f(stdout_path);
  r.out.assign(std::istreambuf_iterator<char>(f), {});
  std::ifstream e(stdout_path + ".err");
  r.err.assign(std::istreambuf_iterator<char>(e), {});
  std::remove((stdout_path + ".err").c_str());
  return r;
}

std::string file_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

/// The text of a top-level JSON field's value (up to the next ", \"" or "}").
std::string json_value(const std::string& json, const std::string& key) {
  const std::size_t k = json.find("\"" + key + "\": ");
  if (k == std::string::npos) return "<missing " + key + ">";
  const std::size_t v = k + key.size() + 4;
  std::size_t e = json[v] == '[' ? json.find(']', v) + 1 : json.find_first_of(",}", v);
  return json.substr(v, e - v);
}

void check(const std::string& init, int k) {
  SCOPED_TRACE("--init " + init + " --k " + std::to_string(k));
  const std::string& data = big_file();
  std::ifstream probe(data, std::ios::binary | std::ios::ate);
  const auto file_size = static_cast<std::size_t>(probe.tellg());
#if !defined(KMEANS_TEST_SANITIZED)
  ASSERT_GE(file_size, 4 * kLimit) << "the file must be several times the budget";
#endif
  const std::string d = dir() + "/";
  const std::vector<std::string> common = {"fit", data, "--k", std::to_string(k), "--init", init,
                                           "--backend", "cpu", "--max-iter", "30", "--json"};
  std::vector<std::string> streamed = common;
  for (const char* a : {"--stream", "--memory-limit", kLimitArg, "--centroids-out"}) streamed.push_back(a);
  streamed.push_back(d + "sc.npy");
  streamed.push_back("--labels-out");
  streamed.push_back(d + "sl.npy");
  std::vector<std::string> in_memory = common;
  in_memory.push_back("--centroids-out");
  in_memory.push_back(d + "mc.npy");
  in_memory.push_back("--labels-out");
  in_memory.push_back(d + "ml.npy");

  const CliRun s = run_cli(streamed, d + "s.json");
  ASSERT_EQ(s.rc, 0) << s.out << s.err;
#if defined(KMEANS_TEST_SANITIZED)
  // Sanitizers' shadow memory and quarantine are not the fit's: the bound is not checked there.
  std::printf("built with sanitizers: peak RSS %zu bytes not checked against the budget\n", s.max_rss);
#else
  EXPECT_LE(s.max_rss, kLimit) << "peak RSS " << s.max_rss << " bytes over the 24 MiB budget";
#endif
  EXPECT_GT(s.max_rss, 0u);
  EXPECT_EQ(json_value(s.out, "memory_limit"), std::to_string(kLimit));
  const CliRun m = run_cli(in_memory, d + "m.json");
  ASSERT_EQ(m.rc, 0) << m.out << m.err;
  EXPECT_GT(m.max_rss, file_size) << "the in-memory fit holds the data (the budget is binding)";
  std::printf("peak RSS: streamed %zu bytes (limit %zu), in memory %zu bytes, file %zu bytes\n",
              s.max_rss, kLimit, m.max_rss, file_size);
  EXPECT_EQ(file_bytes(d + "sc.npy"), file_bytes(d + "mc.npy")) << "centroids differ";
  const std::string labels = file_bytes(d + "sl.npy");
  EXPECT_GE(labels.size(), 64 + 4 * static_cast<std::size_t>(kRows));
  EXPECT_TRUE(labels == file_bytes(d + "ml.npy")) << "labels differ";
  for (const char* key : {"inertia", "n_iter", "sse_history", "cluster_sizes", "n_empty_relocated"})
    EXPECT_EQ(json_value(s.out, key), json_value(m.out, key)) << key;
  for (const char* f : {"sc.npy", "sl.npy", "mc.npy", "ml.npy", "s.json", "m.json"})
    std::remove((d + f).c_str());
}

TEST(StreamCli, AutomaticAboveTheThreshold) {
  // Without --stream, a .npy above the threshold (half the RAM; here 1 MB through the test
  // variable) streams, says so on stderr and keeps the limit.
  const std::string d = dir() + "/";
  const CliRun s = run_cli({"fit", big_file(), "--k", "4", "--init", "random", "--max-iter", "5",
                         "--memory-limit", kLimitArg, "--json", "--centroids-out", d + "ac.npy"},
                        d + "a.json", "1000000");
  ASSERT_EQ(s.rc, 0) << s.err;
  EXPECT_NE(s.err.find(" MiB of data, more than KMEANS_STREAM_AUTO_BYTES = 1000000: "
                       "streaming it (as --stream) with --memory-limit "),
            std::string::npos)
      << s.err;
  EXPECT_NE(s.out.find("\"automatic\": true"), std::string::npos) << s.out;
#if !defined(KMEANS_TEST_SANITIZED)
  EXPECT_LE(s.max_rss, kLimit);
#endif
  const CliRun m = run_cli({"fit", big_file(), "--k", "4", "--init", "random", "--max-iter", "5",
                         "--json", "--centroids-out", d + "bc.npy"},
                        d + "b.json", "1e12");
  ASSERT_EQ(m.rc, 0) << m.err;
  EXPECT_EQ(m.err, "");
  EXPECT_EQ(m.out.find("\"stream\""), std::string::npos) << "below the threshold: in memory";
  EXPECT_EQ(file_bytes(d + "ac.npy"), file_bytes(d + "bc.npy"));
  for (const char* f : {"ac.npy", "bc.npy", "a.json", "b.json"}) std::remove((d + f).c_str());
}

/// Removes the data file and the folder when the tests end.
class Cleanup : public ::testing::Environment {
 public:
  void TearDown() override {
    std::remove((dir() + "/big.npy").c_str());
    ::rmdir(dir().c_str());
  }
};
const auto* const kCleanup = ::testing::AddGlobalTestEnvironment(new Cleanup);

TEST(StreamCli, RandomInitFourTimesTheBudget) { check("random", 16); }
TEST(StreamCli, KMeansParallelFourTimesTheBudget) { check("k-means||", 4); }
TEST(StreamCli, KMeansPlusPlusFourTimesTheBudget) { check("k-means++", 8); }

}  // namespace
