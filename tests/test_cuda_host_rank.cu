// SPDX-License-Identifier: Apache-2.0
// Host tests of the tile kernel's ranking (kernels/tile_rank.cuh): the kernel's per-point work
// (tests/tile_emulation.cuh) against the direct formula's argmin on many shapes and on near-tie
// data built so that the ranking's rounding matters; labels and distances bit for bit.
// No CUDA runtime call: these run on machines without a GPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "kernels/assign.cuh"
#include "kernels/tile_rank.cuh"
#include "kernels/tuning.cuh"
#include "near_ties.hpp"
#include "tile_emulation.cuh"

namespace kmeans::detail {
namespace {

namespace tn = tuning;

/// The direct formula's argmin: squared_distance for c = 0..k-1 from (+inf, 0), strictly
/// smaller wins (ties to the lowest index) - the old tile kernel's loop and the reference's rule.
template <class T>
void direct_argmin(const T* x, const T* c, int d, int k, T& best, int& label) {
  best = positive_infinity<T>();
  label = 0;
  for (int cc = 0; cc < k; ++cc)
    argmin_update(squared_distance(x, c + static_cast<std::int64_t>(cc) * d, d), cc, best, label);
}

template <class T>
bool same_bits(T a, T b) {
  return std::memcmp(&a, &b, sizeof(T)) == 0;
}

struct Tally {
  long points = 0;
  long rechecked = 0;
};

/// Every point of x (n x d) through the kernel's path with tiles of k_tile, against the direct
/// argmin: same label, same distance bits.
template <class T>
void expect_exact(const std::vector<T>& x, const std::vector<T>& c, int d, int k, int k_tile,
                  const char* what, Tally& tally) {
  const int n = static_cast<int>(x.size() / static_cast<std::size_t>(d));
  for (int i = 0; i < n; ++i) {
    const T* xi = x.data() + static_cast<std::int64_t>(i) * d;
    T best;
    int label;
    direct_argmin(xi, c.data(), d, k, best, label);
    const auto r = test::tile_kernel_point(xi, c.data(), d, k, k_tile);
    ASSERT_EQ(r.label, label) << what << " d=" << d << " k=" << k << " k_tile=" << k_tile
                              << " point " << i << (r.rechecked ? " (rechecked)" : " (ranked)");
    ASSERT_TRUE(same_bits(r.dist, best)) << what << " d=" << d << " k=" << k << " point " << i
                                         << ": " << r.dist << " vs " << best;
    ++tally.points;
    tally.rechecked += r.rechecked ? 1 : 0;
  }
}

template <class T>
std::vector<T> uniform(std::size_t count, std::mt19937& gen, double lo, double hi) {
  std::uniform_real_distribution<double> u(lo, hi);
  std::vector<T> v(count);
  for (auto& e : v) e = static_cast<T>(u(gen));
  return v;
}

/// The tiles the kernel gets for (k, d) (all k when they fit), and a small one (several tiles).
template <class T>
std::vector<int> tiles_for(int k, int d) {
  const int real = tn::assign_centroid_tile(k, d, sizeof(T), tn::kAssignSmemBytes);
  std::vector<int> out;
  if (real >= tn::kRegTile) out.push_back(real);
  if (k > tn::kRegTile && real != tn::kRegTile) out.push_back(tn::kRegTile);
  if (out.empty()) out.push_back(tn::kRegTile);  // huge d (GEMM path): the kernel still works
  return out;
}

const int kDims[] = {1, 2, 3, 4, 5, 16, 17, 64, 100, 200};
const int kKs[] = {1, 15, 16, 17, 100, 1000};

/// Random data and centroids (the easy case: the ranking decides almost every point).
template <class T>
void check_random_shapes() {
  Tally tally;
  for (const int d : kDims) {
    for (const int k : kKs) {
      std::mt19937 gen(static_cast<std::uint32_t>(1000 * d + k));
      const int n = k * d > 20000 ? 24 : 64;
      const auto x = uniform<T>(static_cast<std::size_t>(n) * d, gen, -1, 1);
      const auto c = uniform<T>(static_cast<std::size_t>(k) * d, gen, -1, 1);
      for (const int kt : tiles_for<T>(k, d)) expect_exact(x, c, d, k, kt, "random", tally);
    }
  }
  // The ranking, not the recheck, decides most points: otherwise it would not be tested.
  EXPECT_LT(tally.rechecked * 10, tally.points) << tally.rechecked << " of " << tally.points;
}

TEST(CudaHostRank, RandomShapesFloat) { check_random_shapes<float>(); }
TEST(CudaHostRank, RandomShapesDouble) { check_random_shapes<double>(); }

template <class T>
void check_near_ties(double offset, double spread) {
  Tally tally;
  for (const int d : kDims) {
    for (const int k : kKs) {
      if (k < 2) continue;
      const int n = k * d > 20000 ? 24 : 48;
      std::vector<T> x, c;
      kmeans_test::make_near_ties(d, k, n, offset, spread,
                                  static_cast<std::uint32_t>(77 * d + k), x, c);
      for (const int kt : tiles_for<T>(k, d)) expect_exact(x, c, d, k, kt, "near tie", tally);
    }
  }
  EXPECT_GT(tally.rechecked, 0) << "near ties must reach the direct recheck";
}

TEST(CudaHostRank, NearTiesFloat) { check_near_ties<float>(0, 1); }
TEST(CudaHostRank, NearTiesDouble) { check_near_ties<double>(0, 1); }
TEST(CudaHostRank, NearTiesFarFromOriginFloat) { check_near_ties<float>(1000, 1e-1); }
TEST(CudaHostRank, NearTiesFarFromOriginDouble) { check_near_ties<double>(1e8, 1e-3); }

/// Points equidistant (exactly, in the direct formula) from centroids in different tiles, and
/// duplicated centroids: the lowest index wins; k = n (every point a centroid); all points equal.
template <class T>
void check_exact_ties() {
  Tally tally;
  for (const int d : {1, 3, 16, 17, 64}) {
    const int k = 40;
    std::mt19937 gen(static_cast<std::uint32_t>(d));
    auto c = uniform<T>(static_cast<std::size_t>(k) * d, gen, 50, 60);  // all far away
    std::vector<T> x(static_cast<std::size_t>(d));
    for (int j = 0; j < d; ++j) x[j] = static_cast<T>(0.5 - 0.25 * (j % 3));
    for (int dup : {37, 9, 5})  // 5 and 9 in the first tile of 16, 37 in the third
      for (int j = 0; j < d; ++j)
        c[static_cast<std::size_t>(dup) * d + j] = x[j] + static_cast<T>(j % 2 ? 0.125 : -0.125);
    for (const int kt : {16, 48}) {
      const auto r = test::tile_kernel_point(x.data(), c.data(), d, k, kt);
      EXPECT_EQ(r.label, 5) << "d=" << d << " k_tile=" << kt;
      EXPECT_TRUE(r.rechecked) << "an exact tie is a rival";
      EXPECT_EQ(r.dist, static_cast<T>(d) * static_cast<T>(0.125 * 0.125));
      expect_exact(x, c, d, k, kt, "cross-tile tie", tally);
    }
    // k = n: the points are the centroids (distance 0 to oneself; duplicates tie).
    const int n = 33;
    auto pts = uniform<T>(static_cast<std::size_t>(n) * d, gen, -3, 3);
    std::copy(pts.begin(), pts.begin() + d, pts.begin() + 7 * d);  // point 7 = point 0
    for (const int kt : tiles_for<T>(n, d)) expect_exact(pts, pts, d, n, kt, "k = n", tally);
    // Every point and centroid the same: all distances 0, label 0.
    std::vector<T> same(static_cast<std::size_t>(n) * d, static_cast<T>(2));
    for (const int kt : tiles_for<T>(n, d)) expect_exact(same, same, d, n, kt, "all equal", tally);
  }
}

TEST(CudaHostRank, ExactTiesFloat) { check_exact_ties<float>(); }
TEST(CudaHostRank, ExactTiesDouble) { check_exact_ties<double>(); }

/// Overflowing distances: every direct distance is +inf, so the direct loop's answer is (0, inf),
/// and the path must give it too (the ranking is not finite either and rechecks).
TEST(CudaHostRank, OverflowGivesTheDirectLoopsAnswer) {
  const int d = 4, k = 20;
  std::vector<float> c(static_cast<std::size_t>(k) * d, 3e38f);
  for (int j = 0; j < d; ++j) c[static_cast<std::size_t>(k - 1) * d + j] = -3e38f;
  std::vector<float> x(d, -3e38f);
  Tally tally;
  // Centroid k-1 equals x (distance 0): found; then a point far from every centroid.
  expect_exact(x, c, d, k, 16, "overflow", tally);
  std::vector<float> far(d, -3e38f);
  std::vector<float> cc(c.begin(), c.end() - d);
  expect_exact(far, cc, d, k - 1, 16, "overflow", tally);
  const auto r = test::tile_kernel_point(far.data(), cc.data(), d, k - 1, 16);
  EXPECT_EQ(r.label, 0);
  EXPECT_TRUE(std::isinf(r.dist));
}

/// The bound is what makes the ranking safe: the ranking's own choice (without the recheck)
/// is wrong for some near-tie points, so the exactness tests above can fail.
template <class T>
void check_ranking_alone_fails(double offset, double spread) {
  long wrong = 0, total = 0;
  for (const int d : {16, 64}) {
    const int k = 100, n = 300;
    std::vector<T> x, c;
    kmeans_test::make_near_ties(d, k, n, offset, spread, static_cast<std::uint32_t>(d + 5), x, c);
    for (int i = 0; i < n; ++i) {
      const T* xi = x.data() + static_cast<std::int64_t>(i) * d;
      T best;
      int label;
      direct_argmin(xi, c.data(), d, k, best, label);
      wrong += test::tile_kernel_point(xi, c.data(), d, k, 112).ranked != label ? 1 : 0;
      ++total;
    }
  }
  EXPECT_GT(wrong, 0) << "of " << total << ": the data never defeat the ranking alone";
}

TEST(CudaHostRank, NearTieDataDefeatTheRankingAlone) {
  check_ranking_alone_fails<float>(1000, 1);
  check_ranking_alone_fails<double>(1e8, 1);
}

/// The bound's constants: usable for every d the tile kernel meets, growing with d, larger for
/// float; unusable (every point rechecked) only when d u approaches 1.
TEST(CudaHostRank, BoundTermsAreSane) {
  for (const std::int64_t d : {1, 2, 16, 100, 10000}) {
    const TileBound f = tile_bound_terms<float>(d), g = tile_bound_terms<double>(d);
    EXPECT_TRUE(f.usable && g.usable) << d;
    EXPECT_GT(f.g, g.g);
    EXPECT_GT(f.g, static_cast<double>(d) * 0x1p-24);
    EXPECT_LT(f.g, (static_cast<double>(d) + 8) * 0x1p-23);
    EXPECT_GT(tile_bound_terms<float>(2 * d).g, f.g);
  }
  EXPECT_FALSE(tile_bound_terms<float>(std::int64_t{1} << 23).usable);
  const TileBound f = tile_bound_terms<float>(8);
  EXPECT_TRUE(tile_has_rival(f, 1.0, 2.0, 1.0));                 // a ranking tie
  EXPECT_FALSE(tile_has_rival(f, 1.0, 2.0, 2.0));                // far apart
  EXPECT_TRUE(tile_has_rival(f, 1.0, 2.0, 1.0 + 1e-6));          // within float rounding
  EXPECT_TRUE(tile_has_rival(f, 1.0, std::nan(""), 5.0));        // NaN: recheck
  EXPECT_TRUE(tile_has_rival(f, 1.0, HUGE_VAL, HUGE_VAL));       // overflow: recheck
  EXPECT_FALSE(tile_has_rival(f, 1.0, 2.0, HUGE_VAL));           // k = 1: no rival
}

/// The ranking tile: row 0 holds h = |c'|^2 / 2 (+inf in padding), rows 1..d the centred
/// coordinates (0 in padding), each row of a group of kRegTile contiguous and 16-byte aligned.
TEST(CudaHostRank, RankTileLayout) {
  const int d = 5, k = 20, k_tile = 32;
  std::mt19937 gen(3);
  const auto c = uniform<float>(static_cast<std::size_t>(k) * d, gen, -2, 2);
  test::HostRankTile<float> tile(k_tile, d);
  std::vector<float> poison(static_cast<std::size_t>(k_tile) * (d + 1), std::nanf(""));
  std::copy(poison.begin(), poison.end(), tile.data());
  build_rank_tile(tile.data(), c.data(), 0, k, d, k_tile, 0, 1);
  for (int cl = 0; cl < k_tile; ++cl) {
    double h = 0;
    for (int j = 0; j < d; ++j) {
      const float v = tile.data()[rank_tile_index(cl, 1 + j, d)];
      const float want = cl < k ? static_cast<float>(static_cast<double>(c[cl * d + j]) -
                                                     static_cast<double>(c[j]))
                                : 0.f;
      ASSERT_TRUE(same_bits(v, want)) << cl << " " << j;
      h = std::fma(static_cast<double>(v), static_cast<double>(v), h);  // as build_rank_tile
    }
    const float hv = tile.data()[rank_tile_index(cl, 0, d)];
    if (cl < k)
      EXPECT_EQ(hv, static_cast<float>(0.5 * h));
    else
      EXPECT_TRUE(std::isinf(hv));
  }
  for (int g = 0; g < k_tile / tn::kRegTile; ++g)
    for (int row = 0; row <= d; ++row)
      EXPECT_EQ(rank_tile_index(g * tn::kRegTile, row, d) % 4, 0);  // 16-byte aligned rows
}

}  // namespace
}  // namespace kmeans::detail
