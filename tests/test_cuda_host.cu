// SPDX-License-Identifier: Apache-2.0
// Host-side tests of the CUDA backend's __host__ __device__ logic (tile distances and argmin,
// tie-breaking, partial-sum layout and index math, path-selection rules) against plain loops;
// the GEMM path's ranking is tested in test_cuda_gemm_host.cu.
// No CUDA runtime call: these run on machines without a GPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdint>
#include <numeric>
#include <random>
#include <set>
#include <vector>

#include "kernels/assign.cuh"
#include "kernels/gemm_rank.cuh"
#include "kernels/layout.cuh"
#include "kernels/tuning.cuh"
#include "kernels/update.cuh"
#include "tile_emulation.cuh"

namespace kmeans::detail {
namespace {

namespace tn = tuning;

/// A float distance may differ from the double one by a few ulps per coordinate.
constexpr double kRelTolF32 = 1e-5;
constexpr double kRelTolF64 = 1e-13;

template <class T>
std::vector<T> random_values(std::size_t count, std::uint32_t seed, double lo = -1, double hi = 1) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<double> u(lo, hi);
  std::vector<T> v(count);
  for (auto& x : v) x = static_cast<T>(u(gen));
  return v;
}

/// The kernel's nearest-centroid search (ranking tiles of k_tile centroids, the bound and the
/// direct recheck: tests/tile_emulation.cuh) run on the host.
template <class T>
void nearest_tiled(const T* x, const std::vector<T>& c, std::int64_t d, int k, int k_tile, T& best,
                   int& label) {
  const auto r = test::tile_kernel_point(x, c.data(), static_cast<int>(d), k, k_tile);
  best = r.dist;
  label = r.label;
}

template <class T>
void check_nearest_matches_plain_loop(double rel_tol) {
  for (const std::int64_t d : {1, 3, 17, 40}) {
    for (const int k : {1, 5, 16, 33, 100}) {
      for (const int k_tile : {16, 32, 112}) {
        const int n = 64;
        const auto x = random_values<T>(static_cast<std::size_t>(n * d), 1 + d + k);
        const auto c = random_values<T>(static_cast<std::size_t>(k * d), 7 + d * k);
        for (int i = 0; i < n; ++i) {
          const T* xi = x.data() + i * d;
          T best;
          int label;
          nearest_tiled(xi, c, d, k, k_tile, best, label);
          // Plain loop, same arithmetic (fused multiply-adds in coordinate order): identical.
          T plain_best = positive_infinity<T>();
          int plain_label = 0;
          double exact_min = INFINITY;
          for (int cc = 0; cc < k; ++cc) {
            T acc = 0;
            double exact = 0;
            for (std::int64_t j = 0; j < d; ++j) {
              const T diff = xi[j] - c[cc * d + j];
              acc = fused_mul_add(diff, diff, acc);
              const double de = static_cast<double>(xi[j]) - static_cast<double>(c[cc * d + j]);
              exact += de * de;
            }
            if (acc < plain_best) {
              plain_best = acc;
              plain_label = cc;
            }
            exact_min = std::min(exact_min, exact);
          }
          ASSERT_EQ(label, plain_label) << "d=" << d << " k=" << k << " tile=" << k_tile;
          ASSERT_EQ(best, plain_best);
          // The GEMM path recomputes distances with squared_distance: the same bits.
          ASSERT_EQ(best, squared_distance(xi, c.data() + label * d, d));
          EXPECT_NEAR(static_cast<double>(best), exact_min, rel_tol * (1 + exact_min));
        }
      }
    }
  }
}

TEST(CudaHostTile, NearestMatchesPlainLoopFloat) { check_nearest_matches_plain_loop<float>(kRelTolF32); }
TEST(CudaHostTile, NearestMatchesPlainLoopDouble) {
  check_nearest_matches_plain_loop<double>(kRelTolF64);
}

TEST(CudaHostTile, TiesGoToLowestIndexWithinAndAcrossTiles) {
  const std::int64_t d = 3;
  const int k = 40;
  auto c = random_values<float>(static_cast<std::size_t>(k * d), 3, 50, 60);  // all far away
  const std::vector<float> x = {0.5f, -0.25f, 1.0f};
  // Three identical nearest centroids: 5 and 9 in the first tile, 37 in the third.
  for (int dup : {5, 9, 37})
    for (std::int64_t j = 0; j < d; ++j) c[dup * d + j] = x[j] + 0.125f;
  for (int k_tile : {16, 48}) {
    float best;
    int label;
    nearest_tiled(x.data(), c, d, k, k_tile, best, label);
    EXPECT_EQ(label, 5) << "k_tile=" << k_tile;
    EXPECT_EQ(best, 3 * 0.125f * 0.125f);
  }
  // Identical points and centroids: distance 0 everywhere among the duplicates.
  std::vector<double> same(static_cast<std::size_t>(k * d), 2.0);
  const std::vector<double> p = {2.0, 2.0, 2.0};
  double best;
  int label;
  nearest_tiled(p.data(), same, d, k, 16, best, label);
  EXPECT_EQ(label, 0);
  EXPECT_EQ(best, 0.0);
}

TEST(CudaHostTile, ArgminMergeIsOrderIndependent) {
  // The warp reduction merges candidates in butterfly order; any order must give
  // (smallest value, lowest index among equals).
  const std::vector<std::pair<float, int>> cands = {
      {3.f, 7}, {1.f, 12}, {1.f, 4}, {2.f, 0}, {1.f, 9}, {INFINITY, 1}};
  std::vector<int> order(cands.size());
  std::iota(order.begin(), order.end(), 0);
  do {
    float best = positive_infinity<float>();
    int label = INT_MAX;
    for (int o : order) argmin_merge(cands[o].first, cands[o].second, best, label);
    ASSERT_EQ(best, 1.f);
    ASSERT_EQ(label, 4);
  } while (std::next_permutation(order.begin(), order.end()));
  // argmin_update with ascending indices keeps the first of equal values.
  float best = positive_infinity<float>();
  int label = 0;
  for (int c = 0; c < 6; ++c) argmin_update(c % 2 == 0 ? 1.f : 2.f, c, best, label);
  EXPECT_EQ(label, 0);
}

TEST(CudaHostLayout, SmemCentroidIndexIsABijectionWithContiguousRegisterTiles) {
  for (const std::int64_t d : {1, 2, 7, 64}) {
    for (const int k_tile : {16, 32, 80}) {
      std::vector<int> hits(static_cast<std::size_t>(k_tile * d), 0);
      for (int c = 0; c < k_tile; ++c)
        for (std::int64_t j = 0; j < d; ++j) {
          const std::int64_t idx = layout::smem_centroid_index(c, j, d);
          ASSERT_GE(idx, 0);
          ASSERT_LT(idx, k_tile * d);
          ++hits[static_cast<std::size_t>(idx)];
          // Coordinate j of a register tile's centroids is kRegTile consecutive values.
          const int first = c / tn::kRegTile * tn::kRegTile;
          EXPECT_EQ(idx, layout::smem_centroid_index(first, j, d) + c % tn::kRegTile);
        }
      for (int h : hits) ASSERT_EQ(h, 1);
    }
  }
}

TEST(CudaHostLayout, TotalsAndPartialColumnsMapOneToOne) {
  for (const std::int64_t k : {1, 3, 16}) {
    for (const std::int64_t d : {1, 4, 9}) {
      const std::int64_t entries = layout::total_entries(k, d);
      EXPECT_EQ(entries, 2 + k + k * d);
      std::set<std::int64_t> seen;
      for (std::int64_t col = 0; col < tn::partial_columns(k, d); ++col) {
        const std::int64_t t = layout::total_of_column(col, k, d);
        ASSERT_GE(t, layout::kTotalHeader);
        ASSERT_LT(t, entries);
        ASSERT_TRUE(seen.insert(t).second) << "column " << col << " collides";
      }
      EXPECT_EQ(static_cast<std::int64_t>(seen.size()), entries - layout::kTotalHeader);
      // The sums are the driver's k x d row-major array, right after the weights.
      for (std::int64_t c = 0; c < k; ++c) {
        EXPECT_EQ(layout::total_weight(c), 2 + c);
        for (std::int64_t j = 0; j < d; ++j)
          EXPECT_EQ(layout::total_sum(c, j, k, d), 2 + k + c * d + j);
        EXPECT_EQ(layout::total_of_column(c * (d + 1) + d, k, d), layout::total_weight(c));
      }
      // Entry-major partials: entry e over blocks [0, nb) is the segment [e * nb, (e + 1) * nb).
      const std::int64_t nb = 13;
      for (std::int64_t e = 0; e < entries; ++e) {
        EXPECT_EQ(layout::partial_slot(e, 0, nb), e * nb);
        EXPECT_EQ(layout::partial_slot(e, nb - 1, nb) + 1, layout::partial_slot(e + 1, 0, nb));
      }
    }
  }
}

TEST(CudaHostLayout, LowerBoundFindsRuns) {
  const std::vector<int> keys = {0, 0, 2, 2, 2, 5, 7, 7};
  const int n = static_cast<int>(keys.size());
  for (int v = -1; v <= 9; ++v)
    EXPECT_EQ(layout::lower_bound(keys.data(), n, v),
              std::lower_bound(keys.begin(), keys.end(), v) - keys.begin())
        << "value " << v;
  EXPECT_EQ(layout::lower_bound(keys.data(), 0, 3), 0);
}

/// The fused kernel's partial step on the host: stable sort of the sub-tile's labels (invalid
/// points carry key k), then column_partial per column, against plain per-cluster sums.
template <class T>
void check_subtile_partials(bool weighted) {
  const int count = tn::kAssignThreads;
  const int k = 6;
  const std::int64_t d = 5;
  const std::int64_t base = 3 * count;
  const int valid = count - 37;  // the last sub-tile of a block is partial
  const std::int64_t n = base + valid;
  const auto x = random_values<T>(static_cast<std::size_t>(n * d), 11, -3, 3);
  const auto w = random_values<T>(static_cast<std::size_t>(n), 12, 0, 2);
  std::mt19937 gen(13);
  std::vector<int> labels(count);
  for (int t = 0; t < count; ++t) labels[t] = t < valid ? static_cast<int>(gen() % (k - 1)) : k;
  // Cluster k - 1 stays empty on purpose.
  std::vector<int> keys(labels), points(count);
  std::iota(points.begin(), points.end(), 0);
  std::stable_sort(points.begin(), points.end(), [&](int a, int b) { return labels[a] < labels[b]; });
  for (int q = 0; q < count; ++q) keys[q] = labels[points[q]];
  const T* wp = weighted ? w.data() : nullptr;
  std::vector<double> got(static_cast<std::size_t>(layout::total_entries(k, d)), 0.0);
  for (std::int64_t col = 0; col < tn::partial_columns(k, d); ++col)
    got[layout::total_of_column(col, k, d)] =
        column_partial(keys.data(), points.data(), count, base, x.data(), wp, d, col);
  std::vector<double> want(got.size(), 0.0);
  for (int t = 0; t < valid; ++t) {
    const std::int64_t p = base + t;
    const double wt = weighted ? static_cast<double>(w[p]) : 1.0;
    want[layout::total_weight(labels[t])] += wt;
    for (std::int64_t j = 0; j < d; ++j)
      want[layout::total_sum(labels[t], j, k, d)] += wt * static_cast<double>(x[p * d + j]);
  }
  for (std::size_t e = layout::kTotalHeader; e < got.size(); ++e)
    EXPECT_NEAR(got[e], want[e], kRelTolF64 * (1 + std::abs(want[e]))) << "entry " << e;
  EXPECT_EQ(got[layout::total_weight(k - 1)], 0.0);
}

TEST(CudaHostLayout, SubtilePartialsMatchPlainSums) {
  check_subtile_partials<float>(false);
  check_subtile_partials<double>(true);
}

TEST(CudaHostRules, KnownShapesTakeTheIntendedPaths) {
  // The performance targets of the issue.
  EXPECT_TRUE(tn::use_partials(4, 3, 4));       // 4000 x 3, k = 4
  EXPECT_TRUE(tn::use_partials(16, 16, 4));     // 10M x 16, k = 16
  EXPECT_TRUE(tn::use_gemm(1024, 128, 4));      // 1M x 128, k = 1024
  EXPECT_TRUE(tn::use_gemm(20000, 256, 4));     // 1M x 256, k = 20000
  // The switches the GPU tests straddle.
  EXPECT_TRUE(tn::use_partials(128, 15, 4));    // 128 * 16 = 2048 columns
  EXPECT_FALSE(tn::use_partials(129, 15, 4));
  EXPECT_FALSE(tn::use_gemm(129, 15, 4));
  EXPECT_FALSE(tn::use_gemm(127, 32, 4));
  EXPECT_TRUE(tn::use_gemm(128, 32, 4));
  EXPECT_TRUE(tn::use_gemm(3, 1000, 4));        // not even kRegTile centroids fit
  EXPECT_LT(tn::assign_centroid_tile(1000, 16, 4, tn::kAssignSmemBytes), 1000);  // tiled
}

TEST(CudaHostRules, RulesAreConsistent) {
  for (std::int64_t k : {1, 2, 15, 16, 17, 100, 127, 128, 129, 1000, 5000}) {
    for (std::int64_t d : {1, 2, 3, 15, 31, 32, 64, 300, 1000, 5000}) {
      for (std::size_t elem : {std::size_t{4}, std::size_t{8}}) {
        const bool gemm = tn::use_gemm(k, d, elem), partials = tn::use_partials(k, d, elem);
        EXPECT_FALSE(gemm && partials) << k << " " << d;
        const int tile = tn::assign_centroid_tile(k, d, elem, tn::kAssignSmemBytes);
        if (!gemm) {
          ASSERT_GE(tile, tn::kRegTile);
          EXPECT_EQ(tile % tn::kRegTile, 0);
          EXPECT_LE(tile, tn::round_up(k, tn::kRegTile));
          EXPECT_LE(tn::assign_smem_bytes(tile, d, elem, 0), tn::kAssignSmemBytes);
        }
        if (partials) {
          EXPECT_EQ(tile, tn::round_up(k, tn::kRegTile));
          EXPECT_LE(tn::partial_columns(k, d), tn::kMaxPartialColumns);
          EXPECT_LE(tn::assign_smem_bytes(tile, d, elem, tn::partial_columns(k, d)),
                    tn::kAssignSmemBytes);
        }
        const int col_tile = tn::sort_col_tile(d);
        EXPECT_EQ(col_tile & (col_tile - 1), 0);
        EXPECT_GE(col_tile, std::min<std::int64_t>(d + 1, tn::kSortMaxColTile));
        EXPECT_EQ(sort_lanes(col_tile) * col_tile, tn::kSortThreads);
        EXPECT_GT(std::int64_t{1} << tn::key_bits(k), k);
      }
    }
  }
}

TEST(CudaHostRules, LaunchShapesCoverEveryPoint) {
  for (std::int64_t n : {1, 255, 256, 257, 4000, 1000003}) {
    for (std::int64_t max_blocks : {1, 7, 132, 528}) {
      const std::int64_t spb = tn::assign_subtiles_per_block(n, max_blocks);
      const std::int64_t subtiles = (n + tn::kAssignThreads - 1) / tn::kAssignThreads;
      const std::int64_t blocks = (subtiles + spb - 1) / spb;
      EXPECT_LE(blocks, max_blocks);
      EXPECT_GE(blocks * spb * tn::kAssignThreads, n);
      EXPECT_LT((blocks - 1) * spb * tn::kAssignThreads, n);  // no idle block
    }
    for (std::int64_t k : {1, 128, 20000, 3000000}) {
      for (std::size_t elem : {std::size_t{4}, std::size_t{8}}) {
        for (int sms : {1, 132}) {
          const std::int64_t rows = tn::gemm_chunk_rows(n, k, elem, sms);
          const std::int64_t need = tn::round_up(n, tn::kGemmRowsPerBlock);
          const std::int64_t by_sms =
              std::int64_t{sms} * tn::kGemmMinBlocksPerSm * tn::kGemmRowsPerBlock;
          EXPECT_EQ(rows % tn::kGemmRowsPerBlock, 0);
          EXPECT_GE(rows, tn::kGemmRowsPerBlock);
          EXPECT_LE(rows, need);
          if (rows < need) EXPECT_GE(rows, by_sms) << "a chunk with fewer blocks than SMs";
          if (rows > by_sms)
            EXPECT_LE(static_cast<std::size_t>(rows * tn::gemm_products_ld(k)) * elem,
                      tn::kGemmTileBytes);
        }
      }
    }
  }
}

TEST(CudaHostRules, ColumnTilesAndMeanChunksCoverEverything) {
  for (std::int64_t cols : {1, 2, 3, 17, 32, 33, 1000}) {
    const int t = tn::col_tile_for(cols);
    EXPECT_EQ(t & (t - 1), 0);
    EXPECT_GE(t, std::min<std::int64_t>(cols, tn::kSortMaxColTile));
    EXPECT_LE(t, tn::kSortMaxColTile);
    EXPECT_EQ(sort_lanes(t) * t, tn::kSortThreads);
  }
  // sorted_walk_kernel: blocks y < grid_y visit tiles y, y + grid_y, ...: every tile once,
  // and the grid stays launchable however large d is.
  for (const std::int64_t d : std::vector<std::int64_t>{1, 31, 32, 1000, 3 << 20, 0x7fffffff}) {
    const int t = tn::sort_col_tile(d);
    const std::int64_t tiles = (d + 1 + t - 1) / t;
    const std::int64_t gy = tn::sort_grid_y(d, t);
    EXPECT_GE(gy, 1);
    EXPECT_LE(gy, tn::kMaxGridY);
    EXPECT_EQ(gy, std::min(tiles, tn::kMaxGridY));
    EXPECT_GE(tiles * t, d + 1);  // the weight column included
  }
  // Data mean: chunks of rows cover [0, n) exactly, gridDim.y and the partial buffer bounded.
  for (const std::int64_t n : std::vector<std::int64_t>{1, 4095, 4096, 4097, 1000003, 0x7fffffff}) {
    for (const std::int64_t d : std::vector<std::int64_t>{1, 64, 100000, 40 << 20}) {
      const std::int64_t chunks = tn::mean_chunks(n, d), rows = tn::mean_rows_per_chunk(n, d);
      ASSERT_GE(chunks, 1);
      EXPECT_LE(chunks, tn::kMeanMaxChunks);
      EXPECT_LE(chunks * d, std::max(d, tn::kMeanMaxPartialDoubles)) << n << " " << d;
      EXPECT_GE(chunks * rows, n);
      EXPECT_LT((chunks - 1) * rows, n) << "an empty chunk, n=" << n << " d=" << d;
    }
  }
}

TEST(CudaHostRules, WorkingSetGrowsWithTheProblem) {
  const std::size_t small = tn::working_set_bytes(1000, 8, 4, 4, false, 132);
  const std::size_t big = tn::working_set_bytes(1000000, 8, 4, 4, false, 132);
  EXPECT_GT(big, small);
  EXPECT_GE(big, std::size_t{1000000} * 8 * 4);  // at least the data
  const std::size_t on_device = tn::working_set_bytes(1000000, 8, 4, 4, true, 132);
  EXPECT_EQ(big - on_device, std::size_t{1000000} * 8 * 4 + std::size_t{1000000} * 4);
  // The GEMM path's product is bounded by kGemmTileBytes, not n * k (d = 300: float data with
  // d <= 256 takes the TF32 path, which holds no products at all).
  ASSERT_FALSE(tn::use_mma(20000, 300, 4));
  ASSERT_TRUE(tn::use_mma(20000, 256, 4));
  EXPECT_LT(tn::working_set_bytes(1000000, 256, 20000, 4, true, 132), std::size_t{1} << 30);
  const std::size_t gemm = tn::working_set_bytes(1000000, 300, 20000, 4, true, 132);
  EXPECT_LT(gemm, std::size_t{1000000} * 20000 * 4 / 10);
  // FAISS's workload on an H200: two buffers of 4224 rows (two argmin blocks per SM each).
  EXPECT_EQ(tn::gemm_chunk_rows(1000000, 20000, 4, 132), 4224);
  EXPECT_EQ(4224, 132 * tn::kGemmMinBlocksPerSm * tn::kGemmRowsPerBlock);
  EXPECT_GE(gemm, 2 * std::size_t{4224} * 20000 * 4);
  EXPECT_EQ(tn::gemm_products_ld(20001), 20004);
  EXPECT_EQ(tn::gemm_products_ld(20000), 20000);
}

}  // namespace
}  // namespace kmeans::detail
