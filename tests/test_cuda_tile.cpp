// SPDX-License-Identifier: Apache-2.0
// GPU tests of the tile kernel's ranking (kernels/tile_rank.cuh; ctest label gpu): labels bit
// for bit those of the direct formula's argmin (ties to the lowest index) and distances of the
// same bits, on the tile path's shapes, with near-tie data where the ranking's rounding matters.
// Each test skips without a usable device.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "engine.hpp"
#include "kernels/tuning.cuh"
#include "direct_formula.hpp"
#include "kmeans/kmeans.hpp"
#include "near_ties.hpp"

namespace kmeans {
namespace {

using detail::DataView;
using detail::StepStats;
using kmeans_test::direct_distance;
using kmeans_test::direct_argmin;

/// One pass of the CUDA engine on the tile path: every label equals the direct argmin's, the
/// SSE is the sum of the direct distances (each exact: only the order of the double sum
/// differs), the distances rank the points exactly as the direct ones do (farthest(n): by
/// decreasing distance, ties to the lowest index), and a replayed pass gives the same bits.
template <class T>
void check_tile_exact(const std::vector<T>& x, const std::vector<T>& c, std::int64_t d, int k,
                      const std::string& what) {
  const std::int64_t n = static_cast<std::int64_t>(x.size()) / d;
  SCOPED_TRACE(what + " n=" + std::to_string(n) + " d=" + std::to_string(d) + " k=" +
               std::to_string(k) + " elem=" + std::to_string(sizeof(T)));
  ASSERT_FALSE(detail::tuning::use_gemm(k, d, sizeof(T)));  // the path under test
  const DataView<T> view{x.data(), nullptr, n, d, 0};
  auto cuda = detail::make_cuda_engine(view);
  std::vector<double> sums(static_cast<std::size_t>(k * d)), weights(static_cast<std::size_t>(k));
  const StepStats s = cuda->assign(c.data(), k, sums.data(), weights.data());
  std::vector<std::int32_t> labels(static_cast<std::size_t>(n));
  cuda->labels(labels.data());
  std::vector<T> dist(static_cast<std::size_t>(n));
  double sse = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    int want;
    direct_argmin(x.data() + i * d, c.data(), d, k, dist[i], want);
    ASSERT_EQ(labels[i], want) << "point " << i;
    sse += static_cast<double>(dist[i]);
  }
  EXPECT_NEAR(s.sse, sse, 1e-12 * sse + 1e-300);
  const auto far = cuda->farthest(n);
  ASSERT_EQ(static_cast<std::int64_t>(far.size()), n);
  std::vector<std::int64_t> order(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](std::int64_t a, std::int64_t b) {
    return dist[a] != dist[b] ? dist[a] > dist[b] : a < b;
  });
  for (std::int64_t r = 0; r < n; ++r) {
    ASSERT_EQ(far[r].index, order[r]) << "rank " << r << ": distances unlike the direct ones";
    ASSERT_EQ(far[r].label, labels[order[r]]);
  }
  const StepStats s2 = cuda->assign(c.data(), k, sums.data(), weights.data());
  EXPECT_EQ(s2.n_changed, 0);
  EXPECT_EQ(s2.sse, s.sse);
  const StepStats s3 = cuda->assign(c.data(), k, nullptr, nullptr);  // assign-only variant
  EXPECT_EQ(s3.sse, s.sse);
}

class CudaTileRank : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (!cuda_available(&why)) GTEST_SKIP() << why;
  }
};

const int kDims[] = {1, 2, 3, 4, 5, 16, 17, 64, 100, 200};
const int kKs[] = {1, 15, 16, 17, 100, 1000};

/// Uniform data and centroids on every tile-path shape of the issue (n = 3001: not a multiple of
/// the 256-point sub-tile; k = 1000 at d = 16 spans several shared-memory tiles).
template <class T>
void check_random_shapes() {
  for (const int d : kDims) {
    for (const int k : kKs) {
      if (detail::tuning::use_gemm(k, d, sizeof(T))) continue;
      std::mt19937 gen(static_cast<std::uint32_t>(31 * d + k));
      std::uniform_real_distribution<double> u(-1, 1);
      const std::int64_t n = 3001;
      std::vector<T> x(static_cast<std::size_t>(n * d)), c(static_cast<std::size_t>(k * d));
      for (auto& v : x) v = static_cast<T>(u(gen));
      for (auto& v : c) v = static_cast<T>(u(gen));
      check_tile_exact(x, c, d, k, "uniform");
    }
  }
}

TEST_F(CudaTileRank, RandomShapesFloat) { check_random_shapes<float>(); }
TEST_F(CudaTileRank, RandomShapesDouble) { check_random_shapes<double>(); }

/// Near ties (tests/near_ties.hpp: exact ties and one-ulp nudges), near the origin and far from
/// it with a small spread.
template <class T>
void check_near_ties(double offset, double spread) {
  for (const int d : kDims) {
    for (const int k : kKs) {
      if (k < 2 || detail::tuning::use_gemm(k, d, sizeof(T))) continue;
      std::vector<T> x, c;
      kmeans_test::make_near_ties(d, k, 2051, offset, spread,
                                  static_cast<std::uint32_t>(53 * d + k), x, c);
      check_tile_exact(x, c, d, k, "near ties");
    }
  }
}

TEST_F(CudaTileRank, NearTiesFloat) { check_near_ties<float>(0, 1); }
TEST_F(CudaTileRank, NearTiesDouble) { check_near_ties<double>(0, 1); }
TEST_F(CudaTileRank, NearTiesFarFromOriginFloat) { check_near_ties<float>(1000, 1e-1); }
TEST_F(CudaTileRank, NearTiesFarFromOriginDouble) { check_near_ties<double>(1e8, 1e-3); }

/// Duplicated centroids (exact ties across shared-memory tiles: the lowest index wins), and
/// k = n with the points as centroids.
TEST_F(CudaTileRank, DuplicateCentroidsAndKEqualsN) {
  for (const int d : {1, 3, 16, 17, 64}) {
    const int k = d >= 32 ? 100 : 1000;  // the tile path (no GEMM)
    std::mt19937 gen(static_cast<std::uint32_t>(d));
    std::uniform_real_distribution<double> u(-1, 1);
    const std::int64_t n = 1500;
    std::vector<float> x(static_cast<std::size_t>(n * d)), c(static_cast<std::size_t>(k * d));
    for (auto& v : x) v = static_cast<float>(u(gen));
    for (auto& v : c) v = static_cast<float>(u(gen));
    for (int j = 0; j < k; j += 7)  // centroid j + 3 (often in a later tile) copies centroid j
      if (j + 3 < k) std::copy(c.begin() + j * d, c.begin() + (j + 1) * d, c.begin() + (j + 3) * d);
    std::copy(c.begin(), c.begin() + d, c.end() - d);  // the last centroid copies the first
    check_tile_exact(x, c, d, k, "duplicate centroids");
    const std::int64_t m = d >= 32 ? 100 : 700;
    std::vector<float> pts(x.begin(), x.begin() + m * d);
    check_tile_exact(pts, pts, d, static_cast<int>(m), "k = n");
  }
}

}  // namespace
}  // namespace kmeans
