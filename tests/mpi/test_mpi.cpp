// SPDX-License-Identifier: Apache-2.0
// kmeans::mpi under mpirun -np 1..4: every distributed fit equals the single-process kmeans::fit
// of the concatenated data bit for bit, for several shapes, inits and partitions; an error on
// one rank reaches every rank as one kmeans::Error.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "io/io.hpp"
#include "kmeans/kmeans.hpp"
#include "kmeans/mpi.hpp"

namespace {

using kmeans::Init;
using kmeans::Params;
using kmeans::Result;
constexpr std::size_t kB = kmeans::mpi::kBlockRows;

int rank() {
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}
int size() {
  int s = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &s);
  return s;
}

/// Points around `clusters` centres (the same on every rank), values spread so that sums in
/// another order would show.
template <class T>
std::vector<T> make_data(std::size_t n, std::size_t d, int clusters, std::uint64_t seed) {
  std::uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
  auto u = [&]() {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<double>(s >> 11) * 0x1.0p-53;
  };
  std::vector<double> centres(static_cast<std::size_t>(clusters) * d);
  for (auto& c : centres) c = 20 * u() - 10;
  std::vector<T> x(n * d);
  for (std::size_t i = 0; i < n; ++i) {
    const auto c = static_cast<std::size_t>(u() * clusters);
    for (std::size_t j = 0; j < d; ++j)
      x[i * d + j] = static_cast<T>(centres[c * d + j] + (u() + u() + u() - 1.5) * 1.3);
  }
  return x;
}

/// How the rows are split: the default (shard_rows), or everything but the last block on rank 0.
enum class Split { Even, Front };

kmeans::mpi::Shard shard_of(std::size_t n, Split split) {
  if (split == Split::Even) return kmeans::mpi::shard_rows(n, rank(), size());
  const std::size_t blocks = (n + kB - 1) / kB;
  const std::size_t front = size() == 1 ? n : std::min(n, (blocks - 1) * kB);
  if (rank() == 0) return {0, front};
  if (rank() == size() - 1) return {front, n - front};
  return {front, 0};
}

template <class F>
void expect_error_everywhere(F&& f, const std::vector<std::string>& needles);

template <class T>
void expect_same_bits(const Result<T>& one, const Result<T>& dist, const kmeans::mpi::Shard& sh,
                      bool compare_warnings) {
  EXPECT_EQ(dist.centroids, one.centroids);
  EXPECT_EQ(std::memcmp(&dist.inertia, &one.inertia, sizeof(double)), 0)
      << dist.inertia << " vs " << one.inertia;
  EXPECT_EQ(dist.sse_history, one.sse_history);
  EXPECT_EQ(dist.imbalance_history, one.imbalance_history);
  EXPECT_EQ(dist.n_iter, one.n_iter);
  EXPECT_EQ(dist.converged, one.converged);
  EXPECT_EQ(dist.n_empty_relocated, one.n_empty_relocated);
  EXPECT_EQ(dist.cluster_sizes, one.cluster_sizes);
  EXPECT_EQ(dist.backend, one.backend);
  ASSERT_EQ(dist.labels.size(), sh.rows);
  const std::vector<std::int32_t> slice(one.labels.begin() + static_cast<std::ptrdiff_t>(sh.offset),
                                        one.labels.begin() + static_cast<std::ptrdiff_t>(sh.offset + sh.rows));
  EXPECT_EQ(dist.labels, slice);
  if (compare_warnings) EXPECT_EQ(dist.warnings, one.warnings);
}

struct Case {
  std::size_t n, d;
  int k;
  Init init;
  bool weighted;
  double scale = 1;  ///< multiplies the data (tiny values exercise the units rescaling)
  int n_init = 1;
  bool warnings = true;
  kmeans::Metric metric = kmeans::Metric::Euclidean;
  kmeans::Backend backend = kmeans::Backend::Cpu;  ///< of both fits
  kmeans::mpi::Combine combine = kmeans::mpi::Combine::Auto;
};

template <class T>
void check(const Case& c, Split split = Split::Even, const std::vector<T>* init_c = nullptr,
           const std::vector<T>* weights = nullptr) {
  SCOPED_TRACE("n=" + std::to_string(c.n) + " d=" + std::to_string(c.d) + " k=" +
               std::to_string(c.k) + (c.weighted ? " weighted" : "") +
               (sizeof(T) == 4 ? " float" : " double") + " ranks=" + std::to_string(size()) +
               (split == Split::Front ? " front split" : "") + " backend " +
               kmeans::to_string(c.backend) + " combine " + kmeans::mpi::to_string(c.combine));
  std::vector<T> x = make_data<T>(c.n, c.d, std::max(1, c.k / 2), c.n + c.d);
  for (T& v : x) v = static_cast<T>(v * c.scale);
  std::vector<T> w;
  if (weights) w = *weights;
  else if (c.weighted)
    for (std::size_t i = 0; i < c.n; ++i) w.push_back(static_cast<T>(0.3 + (i * 11 % 17) * 0.29));
  Params<T> p;
  p.k = c.k;
  p.init = c.init;
  p.seed = 7;
  p.n_init = c.n_init;
  p.max_iter = 40;
  p.backend = c.backend;
  p.metric = c.metric;
  if (init_c) p.init_centroids = *init_c;
  if (!w.empty()) p.sample_weight = w;
  const Result<T> one = kmeans::fit(x.data(), c.n, c.d, p);
  if (init_c && c.metric == kmeans::Metric::Euclidean)
    EXPECT_GT(one.n_empty_relocated, 0) << "the far centroids were meant to go empty";

  const auto sh = shard_of(c.n, split);
  Params<T> pl = p;
  pl.n_threads = 1 + rank() % 2;  // ranks with different thread counts: the same bits
  if (!w.empty()) pl.sample_weight = kmeans::ArrayView<T>(w.data() + sh.offset, sh.rows);
  kmeans::mpi::CommStats st;
  st.combine = c.combine;
  const Result<T> dist =
      kmeans::mpi::fit(MPI_COMM_WORLD, x.data() + sh.offset * c.d, sh.rows, c.d, pl, &st);
  expect_same_bits(one, dist, sh, c.warnings);
  if (c.combine != kmeans::mpi::Combine::Auto) EXPECT_EQ(st.combine_used, c.combine);
  EXPECT_EQ(st.device >= 0, c.backend == kmeans::Backend::Cuda);
  if (c.n_init == 1) EXPECT_EQ(st.passes, one.n_iter + 1) << "iterations + the final assignment";
  EXPECT_GT(st.compute_seconds, 0);
  if (size() > 1) EXPECT_GT(st.bytes_sent + st.bytes_received, 0);
}

TEST(Mpi, SameBitsAsOneProcessFloat) {
  check<float>({10 * kB + 777, 3, 5, Init::Random, false});
  check<float>({10 * kB + 777, 3, 5, Init::Random, false}, Split::Front);
  check<float>({5 * kB + 100, 24, 40, Init::KMeansParallel, true});
  check<float>({7 * kB, 8, 6, Init::KMeansPlusPlus, false, 1, 2});  // n a multiple of 4096
}

TEST(Mpi, SameBitsAsOneProcessDouble) {
  check<double>({6 * kB + 1, 1, 4, Init::KMeansPlusPlus, true});  // d = 1
  check<double>({6 * kB + 1, 1, 4, Init::KMeansPlusPlus, true}, Split::Front);
  check<double>({9 * kB + 3, 130, 12, Init::Random, true});       // wide rows
  check<double>({3000, 5, 7, Init::Random, false});               // one block: ranks without rows
}

TEST(Mpi, SameBitsWithEmptyClustersAndDuplicates) {
  // Three centroids far from the data: empty clusters, repaired with the farthest points.
  const std::size_t d = 2;
  std::vector<float> c{0, 0, 5, 5, -5, 3, 1e4f, 1e4f, -1e4f, 1e4f, 1e4f, -1e4f};
  check<float>({4 * kB + 5, d, 6, Init::Array, false, 1, 1, false}, Split::Even, &c);
  check<float>({4 * kB + 5, d, 6, Init::Array, true, 1, 1, false}, Split::Front, &c);
  // k = n (every point its own cluster) and n < one block.
  check<double>({40, 2, 40, Init::Random, false, 1, 1, false});
}

TEST(Mpi, SameBitsForRandomInitWithSeveralRunsAndZeroWeights) {
  check<float>({8 * kB + 321, 4, 9, Init::Random, true, 1, 3});  // n_init = 3: the best run
  // A third of the weights 0: those rows are never drawn.
  const std::size_t n = 6 * kB + 50;
  std::vector<double> w;
  for (std::size_t i = 0; i < n; ++i) w.push_back(i % 3 == 0 ? 0.0 : 1.0 + (i % 4));
  check<double>({n, 2, 5, Init::Random, true, 1, 2}, Split::Front, nullptr, &w);
}

TEST(Mpi, TooFewPositiveWeightsIsTheSingleProcessError) {
  const std::size_t n = 2 * kB + 7, d = 2;
  const auto x = make_data<float>(n, d, 2, 5);
  std::vector<float> w(n, 0.0f);
  w[3] = w[n - 2] = 1;  // two positive weights, k = 3
  Params<float> p;
  p.k = 3;
  p.init = Init::Random;
  p.backend = kmeans::Backend::Cpu;
  p.sample_weight = w;
  std::string single;
  try {
    kmeans::fit(x.data(), n, d, p);
  } catch (const kmeans::Error& e) {
    single = e.what();
  }
  ASSERT_FALSE(single.empty());
  const auto sh = kmeans::mpi::shard_rows(n, rank(), size());
  p.sample_weight = kmeans::ArrayView<float>(w.data() + sh.offset, sh.rows);
  expect_error_everywhere(
      [&] { kmeans::mpi::fit(MPI_COMM_WORLD, x.data() + sh.offset * d, sh.rows, d, p); },
      {single});
}

TEST(Mpi, SameBitsForSphericalKMeans) {
  const auto cosine = kmeans::Metric::Cosine;
  check<float>({6 * kB + 17, 16, 7, Init::Random, true, 1, 1, true, cosine});
  check<double>({5 * kB + 3, 3, 4, Init::KMeansPlusPlus, false, 1, 1, true, cosine}, Split::Front);
  std::vector<double> c{1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 1};
  check<double>({5 * kB + 3, 3, 4, Init::Array, false, 1, 1, false, cosine}, Split::Even, &c);
}

TEST(Mpi, SameBitsWhenUnitsAreRescaled) {
  // Tiny points (data_scale_exponent != 0) and weights totalling more than 2^64.
  check<float>({5 * kB + 9, 3, 4, Init::Random, false, 1e-20});
  std::vector<double> w;
  for (std::size_t i = 0; i < 5 * kB + 9; ++i) w.push_back(std::ldexp(1.0 + (i % 5), 60));
  check<double>({5 * kB + 9, 3, 4, Init::KMeansPlusPlus, true}, Split::Even, nullptr, &w);
}

/// Expects kmeans::mpi::fit to throw on every rank one kmeans::Error containing each needle.
template <class F>
void expect_error_everywhere(F&& f, const std::vector<std::string>& needles) {
  std::string what;
  try {
    f();
  } catch (const kmeans::Error& e) {
    what = e.what();
  }
  ASSERT_FALSE(what.empty()) << "no error on rank " << rank();
  for (const auto& s : needles) EXPECT_NE(what.find(s), std::string::npos) << what;
  // Every rank got the same message.
  int len = static_cast<int>(what.size()), min_len = 0, max_len = 0;
  MPI_Allreduce(&len, &min_len, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  MPI_Allreduce(&len, &max_len, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  EXPECT_EQ(min_len, max_len);
}

TEST(Mpi, ErrorOnOneRankReachesEveryRank) {
  const std::size_t n = 3 * kB + 10, d = 2;
  auto x = make_data<float>(n, d, 3, 1);
  const auto sh = kmeans::mpi::shard_rows(n, rank(), size());
  const int bad = size() - 1;  // the last rank holds rows
  if (rank() == bad) x[(sh.offset + 3) * d + 1] = std::numeric_limits<float>::quiet_NaN();
  Params<float> p;
  p.k = 3;
  p.backend = kmeans::Backend::Cpu;
  expect_error_everywhere(
      [&] { kmeans::mpi::fit(MPI_COMM_WORLD, x.data() + sh.offset * d, sh.rows, d, p); },
      {"rank " + std::to_string(bad) + ": ", "NaN"});
  // A negative weight on rank 0 only.
  x = make_data<float>(n, d, 3, 1);
  std::vector<float> w(sh.rows, 1.0f);
  if (rank() == 0 && !w.empty()) w[1] = -2;
  p.sample_weight = w;
  expect_error_everywhere(
      [&] { kmeans::mpi::fit(MPI_COMM_WORLD, x.data() + sh.offset * d, sh.rows, d, p); },
      {"rank 0: ", "negative"});
  // k > n is every rank's error: reported once, from rank 0.
  p.sample_weight = {};
  p.k = static_cast<int>(n) + 1;
  expect_error_everywhere(
      [&] { kmeans::mpi::fit(MPI_COMM_WORLD, x.data() + sh.offset * d, sh.rows, d, p); },
      {"rank 0: ", "exceeds the number of samples"});
}

TEST(Mpi, ShardsThatAreNotWholeBlocksAreRefused) {
  if (size() < 2) GTEST_SKIP() << "needs 2 ranks or more: one rank's shard is the last";
  const std::size_t d = 2, rows = kB + (rank() == 0 ? 1 : 0);
  const auto x = make_data<double>(rows, d, 2, 3);
  Params<double> p;
  p.k = 2;
  expect_error_everywhere([&] { kmeans::mpi::fit(MPI_COMM_WORLD, x.data(), rows, d, p); },
                          {"rank 0: ", "local_n = 4097", "multiple of 4096"});
  p.backend = kmeans::Backend::Reference;
  expect_error_everywhere(
      [&] { kmeans::mpi::fit(MPI_COMM_WORLD, x.data(), kB, d, p); },
      {"rank 0: ", "backend = reference"});
}

TEST(Mpi, ShardRowsPartition) {
  for (std::size_t n : {std::size_t{1}, std::size_t{4095}, kB, 3 * kB + 1, 10 * kB + 5}) {
    std::size_t at = 0;
    for (int r = 0; r < size(); ++r) {
      const auto s = kmeans::mpi::shard_rows(n, r, size());
      EXPECT_EQ(s.offset, at);
      if (r + 1 < size()) EXPECT_EQ(s.rows % kB, 0u);
      at += s.rows;
    }
    EXPECT_EQ(at, n);
  }
}

// ---- Backend::Cuda: one GPU per rank (rank % devices), host or NCCL combine.

using kmeans::mpi::Combine;

TEST(MpiCuda, CudaWithoutAGpuIsOneClearErrorAndAutoRunsTheCpu) {
  std::string why;
  if (kmeans::cuda_available(&why)) GTEST_SKIP() << "a GPU is usable here: the no-GPU paths are not";
  const std::size_t n = 2 * kB + 5, d = 3;
  const auto x = make_data<float>(n, d, 3, 2);
  const auto sh = kmeans::mpi::shard_rows(n, rank(), size());
  Params<float> p;
  p.k = 3;
  p.backend = kmeans::Backend::Cuda;
  expect_error_everywhere(
      [&] { kmeans::mpi::fit(MPI_COMM_WORLD, x.data() + sh.offset * d, sh.rows, d, p); },
      {"rank 0: ", "backend = cuda: ", why});
  p.backend = kmeans::Backend::Auto;
  kmeans::mpi::CommStats st;
  const auto r = kmeans::mpi::fit(MPI_COMM_WORLD, x.data() + sh.offset * d, sh.rows, d, p, &st);
  EXPECT_EQ(r.backend, kmeans::Backend::Cpu);
  EXPECT_EQ(st.combine_used, Combine::Host);
  EXPECT_EQ(st.device, -1);
  // Auto with the NCCL combine asked for: refused, the CPU engine cannot use it.
  st.combine = Combine::Nccl;
  expect_error_everywhere(
      [&] { kmeans::mpi::fit(MPI_COMM_WORLD, x.data() + sh.offset * d, sh.rows, d, p, &st); },
      {"rank 0: ", "combine = nccl needs backend = cuda"});
}

TEST(MpiCuda, NcclCombineNeedsTheCudaEngineAndTheEnvironmentIsChecked) {
  const std::size_t n = 2 * kB + 5, d = 3;
  const auto x = make_data<float>(n, d, 3, 2);
  const auto sh = kmeans::mpi::shard_rows(n, rank(), size());
  Params<float> p;
  p.k = 3;
  p.backend = kmeans::Backend::Cpu;
  kmeans::mpi::CommStats st;
  st.combine = Combine::Nccl;
  expect_error_everywhere(
      [&] { kmeans::mpi::fit(MPI_COMM_WORLD, x.data() + sh.offset * d, sh.rows, d, p, &st); },
      {"rank 0: ", "combine = nccl", "not cpu"});
  // KMEANS_MPI_COMBINE: rank 0's value decides; an unknown one is named.
  st.combine = Combine::Auto;
  setenv("KMEANS_MPI_COMBINE", "fastest", 1);
  expect_error_everywhere(
      [&] { kmeans::mpi::fit(MPI_COMM_WORLD, x.data() + sh.offset * d, sh.rows, d, p, &st); },
      {"rank 0: ", "KMEANS_MPI_COMBINE = 'fastest' is unknown"});
  setenv("KMEANS_MPI_COMBINE", "host", 1);
  const auto r = kmeans::mpi::fit(MPI_COMM_WORLD, x.data() + sh.offset * d, sh.rows, d, p, &st);
  EXPECT_EQ(st.combine_used, Combine::Host);
  EXPECT_EQ(r.backend, kmeans::Backend::Cpu);
  unsetenv("KMEANS_MPI_COMBINE");
}

/// The Backend::Cuda cases for one combine; Nccl skips (on every rank alike) where NCCL refuses
/// the ranks: more ranks than GPUs, or no libnccl.
void cuda_cases(Combine combine) {
  std::string why;
  if (!kmeans::cuda_available(&why)) GTEST_SKIP() << why;
  const auto cuda = kmeans::Backend::Cuda;
  if (combine == Combine::Nccl) {
    // A probe fit: the plan's refusal is every rank's.
    const std::size_t n = kB + 3, d = 2;
    const auto x = make_data<float>(n, d, 2, 4);
    const auto sh = kmeans::mpi::shard_rows(n, rank(), size());
    Params<float> p;
    p.k = 2;
    p.backend = cuda;
    kmeans::mpi::CommStats st;
    st.combine = Combine::Nccl;
    try {
      kmeans::mpi::fit(MPI_COMM_WORLD, x.data() + sh.offset * d, sh.rows, d, p, &st);
    } catch (const kmeans::Error& e) {
      const std::string what = e.what();
      if (what.find("one GPU per rank") != std::string::npos ||
          what.find("combine = nccl: ") != std::string::npos)
        GTEST_SKIP() << what;
      FAIL() << what;
    }
  }
  const kmeans::Metric euclid = kmeans::Metric::Euclidean;
  check<float>({10 * kB + 777, 3, 5, Init::Random, false, 1, 1, true, euclid, cuda, combine});
  check<float>({10 * kB + 777, 3, 5, Init::Random, false, 1, 1, true, euclid, cuda, combine},
               Split::Front);
  check<double>({9 * kB + 3, 130, 12, Init::Random, true, 1, 1, true, euclid, cuda, combine});
  check<double>({6 * kB + 1, 1, 4, Init::KMeansPlusPlus, true, 1, 1, true, euclid, cuda, combine});
  check<double>({3000, 5, 7, Init::Random, false, 1, 1, true, euclid, cuda, combine});  // one block
  std::vector<float> c{0, 0, 5, 5, -5, 3, 1e4f, 1e4f, -1e4f, 1e4f, 1e4f, -1e4f};
  check<float>({4 * kB + 5, 2, 6, Init::Array, true, 1, 1, false, euclid, cuda, combine},
               Split::Front, &c);  // empty clusters
  check<float>({6 * kB + 17, 16, 7, Init::Random, true, 1, 1, true, kmeans::Metric::Cosine, cuda,
                combine});
}

TEST(MpiCuda, SameBitsAsTheInMemoryCudaFitHostCombine) { cuda_cases(Combine::Host); }
TEST(MpiCuda, SameBitsAsTheInMemoryCudaFitNcclCombine) { cuda_cases(Combine::Nccl); }

}  // namespace

/// test_mpi --write-data DIR: the CLI test's files (tests/mpi/cli_mpi.cmake), no MPI.
int write_data(const std::string& dir) {
  const std::size_t n = 3 * kB + 1000, d = 3;
  auto x = make_data<float>(n, d, 5, 42);
  std::vector<float> w;
  for (std::size_t i = 0; i < n; ++i) w.push_back(0.5f + static_cast<float>(i % 7) * 0.25f);
  kmeans::io::write_npy(dir + "/x.npy", x.data(), n, d);
  kmeans::io::write_npy(dir + "/w.npy", w.data(), n, 0);
  x[(n - 10) * d + 1] = std::numeric_limits<float>::quiet_NaN();  // in the last shard
  kmeans::io::write_npy(dir + "/bad.npy", x.data(), n, d);
  return 0;
}

int main(int argc, char** argv) {
  if (argc == 3 && std::string(argv[1]) == "--write-data") return write_data(argv[2]);
  MPI_Init(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  int rc = RUN_ALL_TESTS();
  MPI_Allreduce(MPI_IN_PLACE, &rc, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  MPI_Finalize();
  return rc;
}
