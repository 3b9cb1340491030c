// SPDX-License-Identifier: Apache-2.0
// GPU tests of the TF32 tensor-core assignment (ctest label gpu, in the test_cuda binary): the
// path forced by KMEANS_CUDA_ASSIGN gives the direct float formula's labels (ties to the lowest
// index) and the tile and GEMM paths' labels and distances bit for bit, on the shapes its rules
// take and on edge shapes it is forced onto. Each test skips without a usable device.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "cuda/mma_pass.hpp"
#include "engine.hpp"
#include "kernels/tuning.cuh"
#include "kmeans/kmeans.hpp"
#include "cuda_skip.hpp"
#include "direct_formula.hpp"
#include "test_helpers.hpp"

namespace kmeans {
namespace {

using detail::DataView;
using detail::FarPoint;
using detail::StepStats;

/// KMEANS_CUDA_ASSIGN set for a scope (the plan reads it when an engine configures a k).
class ScopedAssignPath : public kmeans_test::EnvScope {
 public:
  explicit ScopedAssignPath(const char* path) : EnvScope("KMEANS_CUDA_ASSIGN", path) {}
};

enum class Kind { Uniform, FarBlobs, NearTies, Duplicates };

struct Data {
  std::vector<float> x, c, w;
};

Data make(Kind kind, std::int64_t n, std::int64_t d, int k, std::uint32_t seed) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<double> u(-1, 1);
  std::normal_distribution<double> g(0, 1);
  Data out;
  out.x.resize(static_cast<std::size_t>(n * d));
  out.c.resize(static_cast<std::size_t>(k) * d);
  out.w.resize(static_cast<std::size_t>(n));
  for (auto& v : out.w) v = static_cast<float>(0.5 + u(gen));
  switch (kind) {
    case Kind::Uniform:
      for (auto& v : out.x) v = static_cast<float>(u(gen));
      for (auto& v : out.c) v = static_cast<float>(u(gen));
      break;
    case Kind::FarBlobs: {
      const int blobs = k / 4 + 1;
      std::vector<double> ctr(static_cast<std::size_t>(blobs * d));
      for (auto& v : ctr) v = 1e4 + 3 * u(gen);
      for (std::int64_t i = 0; i < n; ++i)
        for (std::int64_t j = 0; j < d; ++j)
          out.x[i * d + j] = static_cast<float>(ctr[(i % blobs) * d + j] + 0.3 * g(gen));
      for (int q = 0; q < k; ++q)
        for (std::int64_t j = 0; j < d; ++j)
          out.c[q * d + j] = static_cast<float>(ctr[(q % blobs) * d + j] + 0.1 * g(gen));
      break;
    }
    case Kind::NearTies:  // points on the bisector of two centroids, far from the origin
      for (auto& v : out.c) v = static_cast<float>(1e3 + u(gen));
      for (std::int64_t i = 0; i < n; ++i) {
        const int a = static_cast<int>(i % k), b = static_cast<int>((i * 7 + 1) % k);
        for (std::int64_t j = 0; j < d; ++j)
          out.x[i * d + j] = static_cast<float>(
              0.5 * (static_cast<double>(out.c[a * d + j]) + out.c[b * d + j]) + 1e-4 * u(gen));
      }
      break;
    case Kind::Duplicates: {  // 2 of 3 centroids identical: ties, candidate lists that flush
      std::vector<float> one(static_cast<std::size_t>(d));
      for (auto& v : one) v = static_cast<float>(u(gen));
      for (int q = 0; q < k; ++q)
        for (std::int64_t j = 0; j < d; ++j)
          out.c[q * d + j] = q % 3 == 2 ? static_cast<float>(u(gen) + 5) : one[j];
      for (std::int64_t i = 0; i < n; ++i)
        for (std::int64_t j = 0; j < d; ++j)
          out.x[i * d + j] = one[j] + static_cast<float>(0.01 * u(gen));
      break;
    }
  }
  return out;
}

struct PassResult {
  std::vector<std::int32_t> labels;
  std::vector<FarPoint> far;  // every point by decreasing distance, ties lowest: the distances' order
  StepStats stats, repeat;
  std::vector<double> sums, weights;
  bool mma = false;
};

PassResult run_pass(const Data& data, std::int64_t n, std::int64_t d, int k, bool weighted,
                    const char* path) {
  ScopedAssignPath scope(path);
  const DataView<float> view{data.x.data(), weighted ? data.w.data() : nullptr, n, d, 0};
  auto engine = detail::make_cuda_engine(view);
  PassResult r;
  r.sums.resize(static_cast<std::size_t>(k * d));
  r.weights.resize(static_cast<std::size_t>(k));
  r.stats = engine->assign(data.c.data(), k, r.sums.data(), r.weights.data());
  r.mma = detail::cuda::plan_uses_mma(*engine);
  r.labels.resize(static_cast<std::size_t>(n));
  engine->labels(r.labels.data());
  r.far = engine->farthest(n);
  r.repeat = engine->assign(data.c.data(), k, nullptr, nullptr);  // a replayed graph
  return r;
}

/// The TF32 path against the direct formula, and the tile and GEMM paths against it.
void check_paths(Kind kind, std::int64_t n, std::int64_t d, int k, bool weighted,
                 std::uint32_t seed) {
  SCOPED_TRACE("kind=" + std::to_string(static_cast<int>(kind)) + " n=" + std::to_string(n) +
               " d=" + std::to_string(d) + " k=" + std::to_string(k) +
               (weighted ? " weighted" : ""));
  int device = 0;
  ASSERT_EQ(cudaGetDevice(&device), cudaSuccess);
  if (!detail::cuda::mma_supported(device, d)) {  // an A100 lacks the shared memory for d > 232
    std::printf("skipped d = %lld: the device lacks the TF32 path's shared memory\n",
                static_cast<long long>(d));
    return;
  }
  const Data data = make(kind, n, d, k, seed);
  const PassResult mma = run_pass(data, n, d, k, weighted, "mma");
  ASSERT_TRUE(mma.mma) << "the TF32 path was not chosen";
  // The direct formula, ties to the lowest index; the SSE over its distances.
  double sse = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    float best = 0;
    int want = 0;
    kmeans_test::direct_argmin(data.x.data() + i * d, data.c.data(), d, k, best, want);
    ASSERT_EQ(mma.labels[i], want) << "point " << i;
    sse += (weighted ? static_cast<double>(data.w[i]) : 1.0) * static_cast<double>(best);
  }
  EXPECT_NEAR(mma.stats.sse, sse, 1e-12 * sse);  // the distances themselves (orders differ)
  EXPECT_EQ(mma.stats.n_changed, n);
  EXPECT_EQ(mma.repeat.n_changed, 0);
  EXPECT_EQ(mma.repeat.sse, mma.stats.sse);
  for (const char* other : {"tile", "gemm"}) {
    SCOPED_TRACE(other);
    const PassResult o = run_pass(data, n, d, k, weighted, other);
    EXPECT_FALSE(o.mma);
    EXPECT_EQ(o.labels, mma.labels);
    ASSERT_EQ(o.far.size(), mma.far.size());
    for (std::size_t q = 0; q < o.far.size(); ++q) {  // same distance bits: same order
      ASSERT_EQ(o.far[q].index, mma.far[q].index) << "rank " << q;
      ASSERT_EQ(o.far[q].label, mma.far[q].label) << "rank " << q;
    }
    EXPECT_NEAR(o.stats.sse, mma.stats.sse, 1e-12 * sse);
    for (std::size_t q = 0; q < o.weights.size(); ++q)
      EXPECT_NEAR(o.weights[q], mma.weights[q], 1e-12 * (1 + mma.weights[q]));
  }
}

class CudaMma : public ::testing::Test {
 protected:
  void SetUp() override {
    KMEANS_SKIP_WITHOUT_GPU();
    int device = 0;
    ASSERT_EQ(cudaGetDevice(&device), cudaSuccess);
    if (!detail::cuda::mma_supported(device, 16)) GTEST_SKIP() << "the TF32 path needs sm_80+";
  }
};

TEST_F(CudaMma, RuleShapesGiveTheDirectFormulasLabels) {
  check_paths(Kind::Uniform, 5003, 16, 64, false, 1);     // the smallest rule shape, n % 128 != 0
  check_paths(Kind::Uniform, 4000, 32, 128, true, 2);
  check_paths(Kind::FarBlobs, 3001, 100, 130, false, 3);  // k % 64 != 0, far from the origin
  check_paths(Kind::Uniform, 2048, 128, 1024, false, 4);  // bench_fma's d and k
  check_paths(Kind::FarBlobs, 1500, 256, 300, true, 5);   // kMmaMaxD
}

TEST_F(CudaMma, ForcedEdgeShapesGiveTheDirectFormulasLabels) {
  check_paths(Kind::Uniform, 1000, 1, 70, false, 6);   // d = 1
  check_paths(Kind::Uniform, 777, 7, 3, false, 7);     // d % 8 != 0, k < one tile
  check_paths(Kind::Uniform, 100, 20, 1, false, 8);    // k = 1
  check_paths(Kind::Uniform, 64, 33, 64, false, 9);    // n < one block
  check_paths(Kind::NearTies, 3000, 64, 200, false, 10);
  check_paths(Kind::NearTies, 2000, 3, 2, true, 11);
  check_paths(Kind::Duplicates, 3001, 40, 200, false, 12);  // lists that fill and flush
}

TEST_F(CudaMma, SmallPassUnderSanitizers) {
  // The GPU kit's compute-sanitizer subset: both kernels, weights, a partial last block and
  // tile, lists that flush (duplicates), a replayed graph.
  check_paths(Kind::Uniform, 300, 40, 70, true, 17);
  check_paths(Kind::Duplicates, 200, 24, 100, false, 18);
}

TEST_F(CudaMma, KEqualsN) {
  Data data = make(Kind::Uniform, 300, 24, 300, 13);
  data.c = data.x;
  ScopedAssignPath scope("mma");
  const DataView<float> view{data.x.data(), nullptr, 300, 24, 0};
  auto engine = detail::make_cuda_engine(view);
  const StepStats s = engine->assign(data.c.data(), 300, nullptr, nullptr);
  ASSERT_TRUE(detail::cuda::plan_uses_mma(*engine));
  std::vector<std::int32_t> labels(300);
  engine->labels(labels.data());
  for (int i = 0; i < 300; ++i) EXPECT_EQ(labels[i], i);
  EXPECT_EQ(s.sse, 0.0);
}

TEST_F(CudaMma, TheRulesChooseItForTheComputeBoundCase) {
  // bench_fma's shape (1M x 128, k = 1024) scaled down in n: the rules alone pick the path.
  const Data data = make(Kind::Uniform, 1000, 128, 1024, 14);
  const DataView<float> view{data.x.data(), nullptr, 1000, 128, 0};
  auto engine = detail::make_cuda_engine(view);
  (void)engine->assign(data.c.data(), 1024, nullptr, nullptr);
  EXPECT_TRUE(detail::cuda::plan_uses_mma(*engine));
  // ...and not for the memory-bound one (k = 16).
  (void)engine->assign(data.c.data(), 16, nullptr, nullptr);
  EXPECT_FALSE(detail::cuda::plan_uses_mma(*engine));
}

TEST_F(CudaMma, FitsAreDeterministicAndMatchTheTilePath) {
  // A whole fit on the TF32 path twice: the same bits; its labels are the tile path's (sums
  // on both go through the sort path here: k * (d + 1) > kMaxPartialColumns).
  const std::int64_t n = 6000, d = 48;
  const int k = 96;
  const Data data = make(Kind::FarBlobs, n, d, k, 15);
  Params<float> p;
  p.k = k;
  p.seed = 3;
  p.max_iter = 10;
  p.backend = Backend::Cuda;
  Result<float> a, b, t;
  {
    ScopedAssignPath scope("mma");
    a = fit(data.x.data(), n, d, p);
    b = fit(data.x.data(), n, d, p);
  }
  {
    ScopedAssignPath scope("tile");
    t = fit(data.x.data(), n, d, p);
  }
  EXPECT_EQ(a.labels, b.labels);
  EXPECT_EQ(a.centroids, b.centroids);
  EXPECT_EQ(a.inertia, b.inertia);
  EXPECT_EQ(a.labels, t.labels);
  EXPECT_EQ(a.n_iter, t.n_iter);
  EXPECT_NEAR(a.inertia, t.inertia, 1e-12 * t.inertia);
}

TEST_F(CudaMma, AnUnknownPathIsAClearError) {
  ScopedAssignPath scope("tensor");
  const Data data = make(Kind::Uniform, 100, 16, 64, 16);
  const DataView<float> view{data.x.data(), nullptr, 100, 16, 0};
  auto engine = detail::make_cuda_engine(view);
  try {
    (void)engine->assign(data.c.data(), 64, nullptr, nullptr);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("KMEANS_CUDA_ASSIGN = tensor"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace kmeans
