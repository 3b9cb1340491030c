// SPDX-License-Identifier: Apache-2.0
// GPU tests of host data streamed through the CUDA backend (src/stream/cuda_stream_engine.cpp;
// ctest label gpu): the streamed CUDA fit equals the in-memory CUDA fit bit for bit whatever
// the chunking, and in-memory fits that do not fit the GPU stream through it. Each test skips
// without a usable device.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "engine.hpp"
#include "kernels/tuning.cuh"
#include "kmeans/kmeans.hpp"
#include "kmeans/stream.hpp"
#include "stream/chunks.hpp"
#include "cuda_skip.hpp"
#include "stream_test_support.hpp"
#include "test_helpers.hpp"

namespace {

using kmeans::Backend;
using kmeans::Init;

using kmeans_test::same_bits;

/// n x d clustered points with every 97th a copy of the one before (duplicates), seeded.
template <class T>
std::vector<T> clustered(std::int64_t n, std::int64_t d, int centres, std::uint64_t seed) {
  return kmeans_test::clustered<T>(n, d, centres, seed, 97);
}

/// Every result field but timings and warnings, bit for bit, and both on the CUDA backend.
template <class T>
void expect_same_bits(const kmeans::Result<T>& mem, const kmeans::Result<T>& st) {
  kmeans_test::expect_same_result(mem, st);
  EXPECT_EQ(mem.backend, Backend::Cuda);
  EXPECT_EQ(st.backend, Backend::Cuda);
}

/// A source over x with or without views (a view source is copied to staging in parallel; a
/// callback source is read straight into it).
template <class T>
class Source final : public kmeans::RowSource<T> {
 public:
  Source(const std::vector<T>& x, std::size_t d, bool views) : x_(x), d_(d), views_(views) {}
  std::size_t rows() const override { return x_.size() / d_; }
  std::size_t cols() const override { return d_; }
  void read(std::size_t first, std::size_t count, T* out) override {
    std::memcpy(out, x_.data() + first * d_, count * d_ * sizeof(T));
  }
  const T* view(std::size_t first, std::size_t) override {
    return views_ ? x_.data() + first * d_ : nullptr;
  }

 private:
  const std::vector<T>& x_;
  std::size_t d_;
  bool views_;
};

struct Case {
  std::int64_t n, d;
  int k;
  Init init;
  bool weighted;
  kmeans::Metric metric;
};

/// The in-memory CUDA fit, then the streamed CUDA fit with chunks of 1 block, 4 blocks and one
/// chunk covering n (and the view and the read paths): the same bits.
template <class T>
void check_case(const Case& c, std::uint64_t seed) {
  SCOPED_TRACE("n = " + std::to_string(c.n) + ", d = " + std::to_string(c.d) + ", k = " +
               std::to_string(c.k) + ", init " + std::to_string(static_cast<int>(c.init)) +
               (c.weighted ? ", weighted" : "") +
               (c.metric == kmeans::Metric::Cosine ? ", cosine" : "") +
               (sizeof(T) == 4 ? ", float" : ", double"));
  const std::vector<T> x = clustered<T>(c.n, c.d, std::max(2, c.k / 2), seed);
  std::vector<T> w;
  if (c.weighted) {
    std::mt19937_64 g(seed + 1);
    for (std::int64_t i = 0; i < c.n; ++i) w.push_back(static_cast<T>((g() % 5) * 0.75));
    w[0] = 1;
  }
  kmeans::Params<T> p;
  p.k = c.k;
  p.init = c.init;
  p.max_iter = 12;
  p.tol = 0;
  p.seed = seed;
  p.metric = c.metric;
  p.backend = Backend::Cuda;
  std::vector<T> init;
  if (c.init == Init::Array) {
    // Rows of x, the first two equal: cluster 1 starts empty (empty-cluster repair, farthest).
    for (int j = 0; j < c.k; ++j)
      for (std::int64_t f = 0; f < c.d; ++f)
        init.push_back(x[static_cast<std::size_t>((j == 1 ? 0 : j * 37) * c.d + f)]);
    p.init_centroids = init;
  }
  if (c.weighted) p.sample_weight = w;
  const kmeans::Result<T> mem = kmeans::fit(x.data(), static_cast<std::size_t>(c.n),
                                            static_cast<std::size_t>(c.d), p);
  const std::int64_t blocks = (c.n + 4095) / 4096;
  std::int64_t all = 1;
  while (all < blocks) all *= 2;
  for (std::int64_t chunk : {std::int64_t{1}, std::int64_t{4}, all}) {
    for (bool views : {true, false}) {
      SCOPED_TRACE("chunk blocks " + std::to_string(chunk) + (views ? ", views" : ", reads"));
      Source<T> src(x, static_cast<std::size_t>(c.d), views);
      kmeans::StreamOptions so;
      so.chunk_rows = static_cast<std::size_t>(chunk * 4096);
      const kmeans::Result<T> st = kmeans::fit(src, p, so);
      expect_same_bits(mem, st);
      if (::testing::Test::HasFailure()) return;
    }
  }
}

TEST(CudaGpuStream, StreamedFitEqualsInMemoryFloat) {
  KMEANS_SKIP_WITHOUT_GPU();
  const Case cases[] = {
      {9 * 4096 + 123, 5, 8, Init::Array, false, kmeans::Metric::Euclidean},  // short last
      {8 * 4096, 1, 3, Init::Random, true, kmeans::Metric::Euclidean},        // d = 1, whole
      {5 * 4096 + 1, 40, 160, Init::Array, true, kmeans::Metric::Euclidean},  // GEMM path
      {3 * 4096 + 7, 7, 1, Init::Random, false, kmeans::Metric::Euclidean},   // k = 1
      {6 * 4096 + 99, 6, 12, Init::KMeansPlusPlus, false, kmeans::Metric::Euclidean},
      {4 * 4096 + 5, 9, 6, Init::Array, false, kmeans::Metric::Cosine},
      {700, 3, 5, Init::Random, true, kmeans::Metric::Euclidean},  // less than one block
  };
  std::uint64_t seed = 11;
  for (const Case& c : cases) check_case<float>(c, seed++);
}

TEST(CudaGpuStream, StreamedFitEqualsInMemoryDouble) {
  KMEANS_SKIP_WITHOUT_GPU();
  const Case cases[] = {
      {9 * 4096 + 123, 5, 8, Init::Array, true, kmeans::Metric::Euclidean},
      {5 * 4096 + 1, 40, 160, Init::Random, false, kmeans::Metric::Euclidean},
      {7 * 4096 + 3, 2, 4, Init::KMeansParallel, true, kmeans::Metric::Euclidean},
  };
  std::uint64_t seed = 31;
  for (const Case& c : cases) check_case<double>(c, seed++);
}

TEST(CudaGpuStream, StreamedAutoRunsOnTheGpu) {
  KMEANS_SKIP_WITHOUT_GPU();
  const std::vector<float> x = clustered<float>(3 * 4096 + 11, 4, 5, 5);
  Source<float> src(x, 4, true);
  kmeans::Params<float> p;
  p.k = 5;
  p.init = Init::Random;
  p.seed = 2;
  const kmeans::Result<float> st = kmeans::fit(src, p);
  EXPECT_EQ(st.backend, Backend::Cuda);
  p.backend = Backend::Cuda;
  const kmeans::Result<float> mem = kmeans::fit(x.data(), x.size() / 4, 4, p);
  expect_same_bits(mem, st);
}

/// Small and quick (the GPU kit's sanitizer subset): six chunks of one block, the last short,
/// weighted, through the double-buffered pipeline; the in-memory fit's bits.
TEST(CudaGpuStream, SixSmallChunksWeighted) {
  KMEANS_SKIP_WITHOUT_GPU();
  const std::int64_t n = 5 * 4096 + 17, d = 3;
  const std::vector<float> x = clustered<float>(n, d, 4, 8);
  std::vector<float> w;
  for (std::int64_t i = 0; i < n; ++i) w.push_back(static_cast<float>(1 + i % 4));
  kmeans::Params<float> p;
  p.k = 4;
  p.init = Init::Random;
  p.seed = 6;
  p.max_iter = 5;
  p.backend = Backend::Cuda;
  p.sample_weight = w;
  const kmeans::Result<float> mem = kmeans::fit(x.data(), n, d, p);
  Source<float> src(x, d, true);
  kmeans::StreamOptions so;
  so.chunk_rows = 4096;
  expect_same_bits(mem, kmeans::fit(src, p, so));
}

/// Caps the free device memory the rules see for a scope.
struct MemoryCap {
  explicit MemoryCap(std::size_t bytes) { kmeans::detail::set_cuda_free_memory_cap(bytes); }
  ~MemoryCap() { kmeans::detail::set_cuda_free_memory_cap(0); }
};

bool has_warning(const std::vector<std::string>& w, const std::string& needle) {
  for (const std::string& s : w)
    if (s.find(needle) != std::string::npos) return true;
  return false;
}

/// An in-memory fit whose working set does not fit (the cap: the margin plus 8 MiB, data of
/// 12.8 MB) streams through the GPU, for Auto and for Cuda, with the uncapped fit's bits.
template <class T>
void in_memory_fit_streams(bool weighted) {
  const std::int64_t n = 200000, d = 16;
  const std::vector<T> x = clustered<T>(n, d, 6, 9);
  std::vector<T> w;
  if (weighted)
    for (std::int64_t i = 0; i < n; ++i) w.push_back(static_cast<T>(1 + i % 3));
  kmeans::Params<T> p;
  p.k = 8;
  p.init = Init::Random;
  p.seed = 4;
  p.max_iter = 15;
  p.backend = Backend::Cuda;
  if (weighted) p.sample_weight = w;
  const kmeans::Result<T> want = kmeans::fit(x.data(), n, d, p);
  ASSERT_TRUE(want.warnings.empty() || !has_warning(want.warnings, "streams through the GPU"));
  const MemoryCap cap(kmeans::detail::tuning::kWorkingSetMarginBytes + (std::size_t{8} << 20));
  std::string why;
  ASSERT_FALSE(kmeans::detail::cuda_working_set_fits(n, d, p.k, sizeof(T), false, &why))
      << "the cap does not make the working set too large";
  for (Backend b : {Backend::Auto, Backend::Cuda}) {
    SCOPED_TRACE(kmeans::to_string(b));
    p.backend = b;
    const kmeans::Result<T> got = kmeans::fit(x.data(), n, d, p);
    expect_same_bits(want, got);
    EXPECT_TRUE(has_warning(got.warnings, "does not fit in the GPU's free memory"))
        << (got.warnings.empty() ? "no warning" : got.warnings[0]);
    EXPECT_TRUE(has_warning(got.warnings, "the data streams through the GPU in chunks of"));
    // Several chunks (not one that holds all 49 blocks).
    EXPECT_FALSE(has_warning(got.warnings, "chunks of 262144 rows"));
    // A KMeans object streams too (its kept engine, if any, goes first).
    kmeans::KMeans<T> km(p);
    km.fit(x.data(), n, d);
    EXPECT_TRUE(same_bits(km.result().centroids, want.centroids));
    EXPECT_EQ(km.result().labels, want.labels);
  }
}

TEST(CudaGpuStream, InMemoryFitThatDoesNotFitStreamsFloat) {
  KMEANS_SKIP_WITHOUT_GPU();
  in_memory_fit_streams<float>(false);
  in_memory_fit_streams<float>(true);
}

TEST(CudaGpuStream, InMemoryFitThatDoesNotFitStreamsDouble) {
  KMEANS_SKIP_WITHOUT_GPU();
  in_memory_fit_streams<double>(true);
}

TEST(CudaGpuStream, NothingFitsAutoUsesTheCpuCudaSaysWhy) {
  KMEANS_SKIP_WITHOUT_GPU();
  const std::vector<float> x = clustered<float>(3 * 4096, 4, 3, 3);
  Source<float> src(x, 4, true);
  kmeans::Params<float> p;
  p.k = 3;
  p.init = Init::Random;
  const MemoryCap cap(std::size_t{1} << 20);  // below the margin: no chunk fits
  const kmeans::Result<float> r = kmeans::fit(src, p);
  EXPECT_EQ(r.backend, Backend::Cpu);
  EXPECT_TRUE(has_warning(r.warnings, "not even one 4096-row chunk"));
  p.backend = Backend::Cuda;
  kmeans_test::expect_error([&] { kmeans::fit(src, p); },
                            "backend = cuda requested for a streamed fit, but not even one");
}

}  // namespace
