// SPDX-License-Identifier: Apache-2.0
// Host-side tests of the CUDA GEMM path's ranking (kernels/gemm_rank.cuh): the centring terms,
// the folded per-row bound and the one-pass argmin with its candidate list, run on the host
// through the kernel's own __host__ __device__ steps (tests/gemm_emulation.cuh) on products that
// carry up to the claimed cuBLAS error, chosen adversarially; every label must be the direct
// formula's. No CUDA runtime call: these run on machines without a GPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <bitset>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "gemm_emulation.cuh"
#include "kernels/assign.cuh"
#include "kernels/gemm_rank.cuh"
#include "kernels/tuning.cuh"

namespace kmeans::detail {
namespace {

namespace tn = tuning;
using namespace gemm_emulation;  // NOLINT: the emulation is this file's vocabulary
constexpr double kRelTolF64 = 1e-13;

template <class T>
std::vector<T> random_values(std::size_t count, std::uint32_t seed, double lo, double hi) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<double> u(lo, hi);
  std::vector<T> v(count);
  for (auto& x : v) x = static_cast<T>(u(gen));
  return v;
}

/// Runs every row of x through the emulated kernel with each kind of products and checks the
/// label and distance against the direct formula, and the folded bound against the exact
/// score. *per_row receives the rechecked candidates per row.
template <class T>
void check_rows(const std::vector<T>& x, const std::vector<T>& c, std::int64_t n, std::int64_t d,
                int k, const std::vector<double>& mean, std::uint32_t seed, double* per_row) {
  const GemmSetup<T> g = gemm_setup(c, mean, d, k);
  std::mt19937_64 gen(seed);
  std::int64_t rechecked = 0, rows = 0;
  for (const Products mode :
       {Products::Sequential, Products::Blocked, Products::Adversarial, Products::Random}) {
    for (std::int64_t i = 0; i < n; ++i) {
      const T* xi = x.data() + i * d;
      double x_norm = 0;
      const GemmRowBound b = row_bound(g, xi, &x_norm);
      T want_best;
      const int want = direct_label(xi, c, d, k, &want_best);
      const std::vector<T> prod = emulate_products(g, xi, x_norm, want, mode, gen);
      const RowResult<T> r = emulate_row(g, prod.data(), b, xi, c);
      ASSERT_EQ(r.label, want) << "row " << i << " mode " << static_cast<int>(mode);
      ASSERT_EQ(r.best, want_best) << "row " << i;
      rechecked += r.rechecked;
      ++rows;
      if (mode != Products::Adversarial || i % 7 != 0) continue;
      // The folded bound holds: |s_c - S_c| <= E (+ the double rounding allowance), S_c the
      // exact score (D_c - ||x - m||^2) / 2 from the float values.
      long double q = 0;
      for (std::int64_t j = 0; j < d; ++j) {
        const long double e = static_cast<long double>(xi[j]) - mean[j];
        q += e * e;
      }
      const GemmTermsView t = g.view();
      for (int cc = 0; cc < k; ++cc) {
        long double dc = 0;
        for (std::int64_t j = 0; j < d; ++j) {
          const long double e = static_cast<long double>(xi[j]) - c[cc * d + j];
          dc += e * e;
        }
        const long double exact = (dc - q) / 2;
        const long double got = gemm_score(t.bias[cc], prod[cc]);
        ASSERT_LE(std::fabs(static_cast<double>(got - exact)), b.e + b.fixed)
            << "row " << i << " centroid " << cc;
      }
    }
  }
  *per_row = static_cast<double>(rechecked) / static_cast<double>(rows);
}

template <class T>
std::vector<double> column_mean(const std::vector<T>& x, std::int64_t n, std::int64_t d) {
  std::vector<double> mean(static_cast<std::size_t>(d), 0.0);
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < d; ++j) mean[j] += static_cast<double>(x[i * d + j]);
  for (auto& m : mean) m /= static_cast<double>(n);
  return mean;
}

/// Blobs of spread 0.3 around 8 centres in [-3, 3]^d shifted by `offset`, and k centroids near
/// data points (noise 0.05): offset 1e4 is the case where ||x||^2 - 2 x.c + ||c||^2 in float
/// loses everything and the bound is wide.
template <class T>
void make_blobs(std::int64_t n, std::int64_t d, int k, double offset, std::uint32_t seed,
                std::vector<T>& x, std::vector<T>& c) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<double> u(-1, 1);
  std::normal_distribution<double> gs(0, 0.3);
  const int blobs = 8;
  std::vector<double> ctr(static_cast<std::size_t>(blobs * d));
  for (auto& v : ctr) v = 3 * u(gen);
  x.resize(static_cast<std::size_t>(n * d));
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < d; ++j)
      x[i * d + j] = static_cast<T>(offset + ctr[(i % blobs) * d + j] + gs(gen));
  c.resize(static_cast<std::size_t>(k) * d);
  for (int j = 0; j < k; ++j)
    for (std::int64_t q = 0; q < d; ++q)
      c[j * d + q] = static_cast<T>(static_cast<double>(x[(j * 37 % n) * d + q]) + 0.05 * gs(gen));
}

TEST(CudaHostGemmArgmin, CentringTermsMatchTheirDefinitions) {
  const std::int64_t d = 37;
  const auto c = random_values<double>(static_cast<std::size_t>(d), 61, -5, 5);
  const auto mean_t = random_values<double>(static_cast<std::size_t>(d), 62, 100, 200);
  const std::vector<double> mean(mean_t.begin(), mean_t.end());
  // Lane-split centring (3 lanes, partial sums added) writes the same c' as one lane.
  std::vector<double> one(static_cast<std::size_t>(d)), split(static_cast<std::size_t>(d));
  double norm1 = 0, mc1 = 0;
  centre_centroid_part(c.data(), mean.data(), d, 0, 1, one.data(), norm1, mc1);
  double norm3 = 0, mc3 = 0;
  for (int lane = 0; lane < 3; ++lane) {
    double nl = 0, ml = 0;
    centre_centroid_part(c.data(), mean.data(), d, lane, 3, split.data(), nl, ml);
    norm3 += nl;
    mc3 += ml;
  }
  EXPECT_EQ(one, split);
  double norm = 0, mc = 0, mean_norm = 0;
  for (std::int64_t j = 0; j < d; ++j) {
    EXPECT_EQ(one[j], c[j] - mean[j]);
    norm += one[j] * one[j];
    mc += mean[j] * one[j];
    mean_norm += mean[j] * mean[j];
  }
  mean_norm = std::sqrt(mean_norm);
  EXPECT_NEAR(norm1, norm, kRelTolF64 * norm);
  EXPECT_NEAR(norm3, norm, kRelTolF64 * norm);
  EXPECT_NEAR(mc3, mc, kRelTolF64 * (1 + std::abs(mc)));
  // score(x) = bias - x.c' ranks like the distance: score = (|x - c|^2 - |x - m|^2) / 2.
  const double gamma = tn::gemm_error_gamma(d, sizeof(double));
  double bias, slope, base;
  gemm_terms(norm, mc, mean_norm, gamma, gamma, bias, slope, base);
  const auto x = random_values<double>(static_cast<std::size_t>(d), 63, 100, 200);
  double xc = 0, dxc = 0, dxm = 0;
  for (std::int64_t j = 0; j < d; ++j) {
    xc += x[j] * one[j];
    dxc += (x[j] - c[j]) * (x[j] - c[j]);
    dxm += (x[j] - mean[j]) * (x[j] - mean[j]);
  }
  EXPECT_NEAR(bias - xc, 0.5 * (dxc - dxm), 1e-9 * (dxc + dxm));
  EXPECT_EQ(slope, gamma * std::sqrt(norm));
  EXPECT_EQ(base, gamma * std::fma(mean_norm, std::sqrt(norm), norm));
  // A d so large that the bound says nothing: every centroid becomes a candidate.
  EXPECT_LT(tn::gemm_error_gamma(std::int64_t{1} << 23, sizeof(float)), 0);
  EXPECT_GT(tn::gemm_error_gamma(std::int64_t{1} << 23, sizeof(double)), 0);
  gemm_terms(norm, mc, mean_norm, -1.0, gamma, bias, slope, base);
  EXPECT_EQ(slope, 0.0);
  EXPECT_TRUE(std::isinf(base) && base > 0);
  // gamma grows with d and is about 2 d u; the bias's adds 4 u of T to double's.
  EXPECT_GT(tn::gemm_bias_gamma(30, sizeof(float)), 4 * 0x1p-24);
  EXPECT_LT(tn::gemm_bias_gamma(30, sizeof(float)), 5 * 0x1p-24);
  EXPECT_LT(tn::gemm_bias_gamma(std::int64_t{1} << 52, sizeof(double)), 0);
  EXPECT_NEAR(tn::gemm_error_gamma(30, sizeof(float)), 2 * 32 * 0x1p-24, 1e-5 * 2 * 32 * 0x1p-24);
  EXPECT_LT(tn::gemm_error_gamma(30, sizeof(float)), tn::gemm_error_gamma(31, sizeof(float)));
}

TEST(CudaHostGemmArgmin, FarFromTheOriginExactLabels) {
  for (const std::int64_t d : {4, 32, 64, 256}) {
    for (const int k : {128, 1000}) {
      SCOPED_TRACE("d=" + std::to_string(d) + " k=" + std::to_string(k));
      std::vector<float> x, c;
      const std::int64_t n = 96;
      make_blobs(n, d, k, 1e4, 5 + static_cast<std::uint32_t>(d + k), x, c);
      double per_row = 0;
      check_rows(x, c, n, d, k, column_mean(x, n, d), 11, &per_row);
      if (HasFatalFailure()) return;
      // The bound is wide here (the product's error at the scale |x| |c'|) but still leaves far
      // fewer candidates than k: about the centroids of the point's own blob.
      EXPECT_LT(per_row, k / 4.0);
      std::printf("far d=%lld k=%d: %.2f rechecked per row\n", static_cast<long long>(d), k,
                  per_row);
    }
  }
}

TEST(CudaHostGemmArgmin, NearTheOriginExactLabelsFloatAndDouble) {
  for (const std::int64_t d : {1, 3, 32, 100}) {
    for (const int k : {1, 7, 129, 300, 777}) {
      SCOPED_TRACE("d=" + std::to_string(d) + " k=" + std::to_string(k));
      std::vector<float> x, c;
      const std::int64_t n = 64;
      make_blobs(n, d, k, 0.0, 17 + static_cast<std::uint32_t>(d * k), x, c);
      double per_row = 0;
      check_rows(x, c, n, d, k, column_mean(x, n, d), 12, &per_row);
      if (HasFatalFailure()) return;
      EXPECT_LT(per_row, std::max(4.0, k / 8.0));
      std::vector<double> xd, cd;
      make_blobs(n, d, k, 0.0, 23 + static_cast<std::uint32_t>(d * k), xd, cd);
      double per_row_d = 0;
      check_rows(xd, cd, n, d, k, column_mean(xd, n, d), 13, &per_row_d);
      if (HasFatalFailure()) return;
      EXPECT_LT(per_row_d, std::max(4.0, k / 8.0));
    }
  }
}

/// Near-ties built so that the ranking error matters: for each point, centroid pairs mirrored
/// through it in one coordinate (equal exact distances, float distances equal or an ulp apart),
/// exact duplicates (ties to the lowest index) and centroids an ulp away from each other; the
/// rest uniform, far off.
template <class T>
void check_near_ties(std::int64_t d, int k, double offset, std::uint32_t seed) {
  SCOPED_TRACE("near ties d=" + std::to_string(d) + " k=" + std::to_string(k) +
               " offset=" + std::to_string(offset) + " elem=" + std::to_string(sizeof(T)));
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<double> u(-1, 1);
  const std::int64_t n = 24;
  std::vector<T> x(static_cast<std::size_t>(n * d));
  for (auto& v : x) v = static_cast<T>(offset + u(gen));
  const auto mean = column_mean(x, n, d);
  for (std::int64_t i = 0; i < n; ++i) {
    const T* xi = x.data() + i * d;
    std::vector<T> c(static_cast<std::size_t>(k) * d);
    for (auto& v : c) v = static_cast<T>(offset + 4 * u(gen));
    // A tight group around the point at a few random slots: mirrored pairs, duplicates, ulps.
    std::uniform_int_distribution<int> slot(0, k - 1);
    const double r = 0.25 * (1 + u(gen));
    std::vector<T> base(static_cast<std::size_t>(d));
    for (std::int64_t j = 0; j < d; ++j) base[j] = static_cast<T>(xi[j] + r * u(gen) / std::sqrt(double(d)));
    for (int rep = 0; rep < std::min(k, 12); ++rep) {
      const int s = slot(gen);
      T* cs = c.data() + static_cast<std::int64_t>(s) * d;
      std::copy(base.begin(), base.end(), cs);
      const std::int64_t j = rep % d;
      if (rep % 3 == 1) cs[j] = static_cast<T>(2.0 * xi[j] - static_cast<double>(base[j]));  // mirror
      if (rep % 3 == 2) cs[j] = std::nextafter(base[j], static_cast<T>(rep % 2 ? 1e30 : -1e30));
    }
    const GemmSetup<T> g = gemm_setup(c, mean, d, k);
    for (const Products mode :
         {Products::Sequential, Products::Blocked, Products::Adversarial, Products::Random}) {
      double x_norm = 0;
      const GemmRowBound b = row_bound(g, xi, &x_norm);
      T want_best;
      const int want = direct_label(xi, c, d, k, &want_best);
      const std::vector<T> prod = emulate_products(g, xi, x_norm, want, mode, gen);
      const RowResult<T> res = emulate_row(g, prod.data(), b, xi, c);
      ASSERT_EQ(res.label, want) << "row " << i << " mode " << static_cast<int>(mode);
      ASSERT_EQ(res.best, want_best);
    }
  }
}

TEST(CudaHostGemmArgmin, NearTiesGiveTheDirectFormulasLabel) {
  for (const double offset : {0.0, 100.0, 1e4}) {
    for (const std::int64_t d : {1, 2, 16, 64}) {
      for (const int k : {2, 13, 300}) {
        check_near_ties<float>(d, k, offset, 31 + static_cast<std::uint32_t>(d * k));
        if (HasFatalFailure()) return;
        check_near_ties<double>(d, k, offset, 37 + static_cast<std::uint32_t>(d * k));
        if (HasFatalFailure()) return;
      }
    }
  }
}

TEST(CudaHostGemmArgmin, FaissShapeK20000D256) {
  // FAISS's workload, a few rows: 20000 centroids, 256 features, blobs near the origin and far.
  // The centroids come from 20000 distinct points (k-means++-like seeds); 6 rows are checked.
  const std::int64_t d = 256, n = 6, pool = 20000;
  const int k = 20000;
  for (const double offset : {0.0, 1e3}) {
    std::vector<float> x, c;
    make_blobs(pool, d, k, offset, 41, x, c);
    double per_row = 0;
    check_rows(x, c, n, d, k, column_mean(x, pool, d), 14, &per_row);
    if (HasFatalFailure()) return;
    std::printf("k=20000 d=256 offset=%g: %.2f rechecked per row\n", offset, per_row);
    EXPECT_LT(per_row, k / 8.0);
  }
}

TEST(CudaHostGemmArgmin, RandomShapesAndOffsets) {
  // 40 random (d, k, offset, type) draws, 8 rows each, every kind of products.
  std::mt19937_64 gen(2026);
  std::uniform_int_distribution<int> dd(1, 300), kk(1, 3000), oo(0, 3), tt(0, 1);
  const double offsets[] = {0.0, 10.0, 1e3, 1e4};
  for (int draw = 0; draw < 40; ++draw) {
    const std::int64_t d = dd(gen), n = 8;
    const int k = kk(gen);
    const double offset = offsets[oo(gen)];
    const auto seed = static_cast<std::uint32_t>(gen());
    SCOPED_TRACE("draw " + std::to_string(draw) + ": d=" + std::to_string(d) + " k=" +
                 std::to_string(k) + " offset=" + std::to_string(offset));
    double per_row = 0;
    if (tt(gen) == 0) {
      std::vector<float> x, c;
      make_blobs(std::max<std::int64_t>(n, k), d, k, offset, seed, x, c);
      check_rows(x, c, n, d, k, column_mean(x, std::max<std::int64_t>(n, k), d), seed + 1, &per_row);
    } else {
      std::vector<double> x, c;
      make_blobs(std::max<std::int64_t>(n, k), d, k, offset, seed, x, c);
      check_rows(x, c, n, d, k, column_mean(x, std::max<std::int64_t>(n, k), d), seed + 1, &per_row);
    }
    if (HasFatalFailure()) return;
  }
}

TEST(CudaHostGemmArgmin, ListOverflowFallsBackToARescanOfThatRow) {
  // 100 identical nearest centroids (more than kGemmCandidates) spread over several steps: the
  // row overflows, rescans its products and takes the lowest index.
  const std::int64_t d = 8;
  const int k = 1200;
  std::mt19937_64 gen(3);
  std::uniform_real_distribution<double> u(-1, 1);
  std::vector<float> x(static_cast<std::size_t>(4 * d));
  for (auto& v : x) v = static_cast<float>(u(gen));
  const auto mean = column_mean(x, 4, d);
  std::vector<float> c(static_cast<std::size_t>(k) * d);
  for (auto& v : c) v = static_cast<float>(5 + u(gen));
  const int first_dup = 117;
  for (int rep = 0; rep < 100; ++rep)
    for (std::int64_t j = 0; j < d; ++j)
      c[(first_dup + rep * 9) * d + j] = static_cast<float>(x[j] + 0.01);
  const GemmSetup<float> g = gemm_setup(c, mean, d, k);
  double x_norm = 0;
  const GemmRowBound b = row_bound(g, x.data(), &x_norm);
  for (const Products mode : {Products::Sequential, Products::Adversarial, Products::Random}) {
    std::mt19937_64 pg(5);
    const int want = direct_label(x.data(), c, d, k);
    ASSERT_EQ(want, first_dup);
    const std::vector<float> prod = emulate_products(g, x.data(), x_norm, want, mode, pg);
    const RowResult<float> r = emulate_row(g, prod.data(), b, x.data(), c);
    EXPECT_TRUE(r.overflow);
    EXPECT_EQ(r.listed, -1);
    EXPECT_EQ(r.label, first_dup);
    EXPECT_GE(r.rechecked, 100);  // every duplicate rechecked in the rescan
  }
}

TEST(CudaHostGemmArgmin, StaleCandidatesAreCompactedAway) {
  // Step 0 fills the list with 64 identical centroids at distance ~1; step 1 brings 10 identical
  // ones much nearer: compaction drops the 64 (now beyond the threshold) and keeps the 10.
  const std::int64_t d = 4;
  const int k = 600;
  std::vector<float> x = {0.1f, -0.2f, 0.3f, 0.05f};
  std::vector<float> c(static_cast<std::size_t>(k) * d);
  std::mt19937_64 gen(9);
  std::uniform_real_distribution<double> u(-1, 1);
  for (auto& v : c) v = static_cast<float>(20 + u(gen));
  for (int j = 0; j < tn::kGemmCandidates; ++j)
    for (std::int64_t q = 0; q < d; ++q) c[(3 * j) * d + q] = x[q] + 0.5f;
  for (int j = 0; j < 10; ++j)
    for (std::int64_t q = 0; q < d; ++q) c[(300 + j) * d + q] = x[q] + 0.01f;
  const std::vector<double> mean(static_cast<std::size_t>(d), 0.0);
  const GemmSetup<float> g = gemm_setup(c, mean, d, k);
  double x_norm = 0;
  const GemmRowBound b = row_bound(g, x.data(), &x_norm);
  std::mt19937_64 pg(1);
  const std::vector<float> prod = emulate_products(g, x.data(), x_norm, 300, Products::Sequential, pg);
  const RowResult<float> r = emulate_row(g, prod.data(), b, x.data(), c);
  EXPECT_EQ(r.compactions, 1);
  EXPECT_FALSE(r.overflow);
  EXPECT_EQ(r.listed, 10);
  EXPECT_EQ(r.label, 300);
  EXPECT_EQ(r.label, direct_label(x.data(), c, d, k));
}

TEST(CudaHostGemmArgmin, TheDirectDistancesOwnRoundingIsCovered) {
  // x far out (1000, 0, 0, 0), the mean at the origin, two centroids a hair from it: exactly,
  // centroid 1 = (1e-5, 0, 0, 0) is nearer by 2e-2, far beyond the products' bound (|c'| is
  // tiny), but in float 1000 - 1e-5 rounds to 1000 and both direct distances are 1e6: a tie the
  // direct formula gives to centroid 0. Only the threshold's margin for the distance's own
  // rounding (gamma D_r) keeps centroid 0 a candidate.
  const std::int64_t d = 4;
  const int k = 2;
  const std::vector<float> x = {1000.0f, 0.0f, 0.0f, 0.0f};
  const std::vector<float> c = {0.0f, 1e-5f, 0.0f, 0.0f, 1e-5f, 0.0f, 0.0f, 0.0f};
  const std::vector<double> mean(static_cast<std::size_t>(d), 0.0);
  ASSERT_EQ(squared_distance(x.data(), c.data(), d), squared_distance(x.data(), c.data() + d, d));
  ASSERT_EQ(direct_label(x.data(), c, d, k), 0);
  const GemmSetup<float> g = gemm_setup(c, mean, d, k);
  double x_norm = 0;
  const GemmRowBound b = row_bound(g, x.data(), &x_norm);
  EXPECT_LT(2 * b.e, 1e-6);  // the products' bound alone would drop centroid 0
  std::mt19937_64 pg(4);
  for (const Products mode : {Products::Sequential, Products::Adversarial, Products::Random}) {
    const std::vector<float> prod = emulate_products(g, x.data(), x_norm, 0, mode, pg);
    const RowResult<float> r = emulate_row(g, prod.data(), b, x.data(), c);
    EXPECT_EQ(r.label, 0) << "mode " << static_cast<int>(mode);
    EXPECT_EQ(r.rechecked, 2);
  }
}

TEST(CudaHostGemmArgmin, ThresholdGrowsWithTheMinimumAndOpensWhenTheBoundSaysNothing) {
  GemmBoundHeader h;
  h.slope_max = 1e-5;
  h.base_max = 1e-3;
  h.cnorm_max = 3;
  const GemmRowBound b = gemm_row_bound(50.0, 400.0, 10.0, h, tn::gemm_distance_gamma(64, 4),
                                        tn::gemm_error_gamma(64, 8));
  EXPECT_EQ(b.e, 1e-5 * 50.0 + 1e-3);
  EXPECT_GT(b.q, 400.0);  // rounded up by its own bound
  EXPECT_GT(b.fixed, 0.0);
  double prev = -INFINITY;
  for (double m = -300; m <= 300; m += 0.37) {
    const double thr = gemm_threshold(b, m);
    EXPECT_GE(thr - m, 2 * b.e);   // never narrower than the score bound alone
    EXPECT_GT(thr, prev);          // W increases with m: dropping against the running min is safe
    prev = thr;
  }
  EXPECT_EQ(gemm_threshold(b, INFINITY), INFINITY);  // before the first step: no drop
  // gemm_distance_gamma < 0 (d beyond the bound's reach) or an infinite base (gemm_terms with a
  // negative gamma): every centroid stays a candidate.
  const GemmRowBound open =
      gemm_row_bound(50.0, 400.0, 10.0, h, tn::gemm_distance_gamma(std::int64_t{1} << 23, 4), 1e-12);
  EXPECT_LT(tn::gemm_distance_gamma(std::int64_t{1} << 23, 4), 0);
  EXPECT_EQ(gemm_threshold(open, -5.0), INFINITY);
  GemmBoundHeader inf_h = h;
  inf_h.base_max = INFINITY;
  EXPECT_EQ(gemm_threshold(gemm_row_bound(50.0, 400.0, 10.0, inf_h, 1e-5, 1e-12), -5.0), INFINITY);
  // The distance margin covers squared_distance's rounding: 2 gamma_(d+2) >= 1.5 gamma / (1 - gamma).
  for (std::int64_t d : {1, 64, 4096, 1000000}) {
    const double mu = (d + 2) * 0x1p-24, gamma = mu / (1 - mu);
    EXPECT_GE(tn::gemm_distance_gamma(d, 4), 1.5 * gamma / (1 - gamma)) << d;
  }
}

TEST(CudaHostGemmArgmin, LaneColumnsCoverEveryCentroidOnce) {
  for (const int k : {1, 3, 4, 5, 255, 256, 257, 1000, 20001}) {
    std::vector<int> seen(static_cast<std::size_t>(k), 0);
    for (int c0 = 0; c0 < k; c0 += tn::kGemmStepCols)
      for (int lane = 0; lane < kLanes; ++lane)
        for (int j = 0; j < tn::kGemmLaneCols; ++j) {
          const int col = gemm_lane_col(c0, lane, j);
          ASSERT_GE(col, c0);
          ASSERT_LT(col, c0 + tn::kGemmStepCols);
          if (col < k) ++seen[col];
          // A vector read starting below k stays inside the padded row.
          if (j % 4 == 0 && col < k) ASSERT_LE(col + 4, tn::gemm_products_ld(k));
        }
    for (int col = 0; col < k; ++col) ASSERT_EQ(seen[col], 1) << "k=" << k << " col " << col;
  }
  // The terms sections do not overlap and the bias row keeps its padding.
  const int k = 1001;
  EXPECT_EQ(gemm_slope_offset(k), tn::gemm_products_ld(k));
  EXPECT_EQ(gemm_header_offset(k) + tn::kGemmHeader, tn::gemm_terms_size(k));
}

TEST(CudaHostGemmArgmin, TiesAndOverflowedDistancesFollowTheDirectFormula) {
  // Identical centroids 2 and 5 nearest: the lowest index wins whatever the lane order.
  const std::int64_t d = 3;
  const int k = 8;
  std::vector<float> c(static_cast<std::size_t>(k * d));
  for (int j = 0; j < k; ++j)
    for (std::int64_t q = 0; q < d; ++q) c[j * d + q] = static_cast<float>(10 + j + q);
  for (std::int64_t q = 0; q < d; ++q) c[2 * d + q] = c[5 * d + q] = 0.5f;
  const std::vector<float> x = {0.25f, 0.5f, 0.75f};
  const std::vector<double> zero(static_cast<std::size_t>(d), 0.0);
  const GemmSetup<float> g = gemm_setup(c, zero, d, k);
  double x_norm = 0;
  const GemmRowBound b = row_bound(g, x.data(), &x_norm);
  std::mt19937_64 pg(2);
  for (const Products mode : {Products::Sequential, Products::Adversarial, Products::Random}) {
    const std::vector<float> prod = emulate_products(g, x.data(), x_norm, 2, mode, pg);
    const RowResult<float> r = emulate_row(g, prod.data(), b, x.data(), c);
    EXPECT_EQ(r.label, 2);
    EXPECT_EQ(r.best, squared_distance(x.data(), c.data() + 2 * d, d));
  }
  // A candidate whose distance overflows never wins (as in argmin_update from +infinity).
  float best = positive_infinity<float>();
  int label = INT_MAX;
  gemm_candidate_merge(positive_infinity<float>(), 3, best, label);
  EXPECT_EQ(label, INT_MAX);
  gemm_candidate_merge(2.0f, 7, best, label);
  gemm_candidate_merge(2.0f, 4, best, label);
  gemm_candidate_merge(3.0f, 1, best, label);
  EXPECT_EQ(label, 4);
}

}  // namespace
}  // namespace kmeans::detail
