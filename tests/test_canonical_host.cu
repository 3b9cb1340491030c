// SPDX-License-Identifier: Apache-2.0
// Host-side tests of the canonical GPU sum order (kernels/canonical.cuh, src/cuda/shard.hpp):
// the partials path (tile kernel's leaf fold or sub-tile rows, leaf SSE, in-place node trees)
// and the sort path (sorted walk, both window kinds), run on the host by canonical_host_model.hpp,
// give bit for bit the dense oracle's node values, for shards at any first block, n not a
// multiple of 256 or 4096, empty clusters, duplicates, weights, float and double.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "canonical_host_model.hpp"
#include "kernels/canonical.cuh"
#include "kernels/tuning.cuh"
#include "tree_sum.hpp"

namespace kmeans::detail::canon_test {
namespace {

struct Shape {
  std::int64_t n, d;
  int k, used;
};

const Shape kShapes[] = {
    {1, 1, 1, 1},          {255, 3, 4, 4},           {256, 1, 1, 1},
    {4095, 2, 3, 2},       {4096, 5, 6, 6},          {4097, 3, 5, 3},
    {3 * 4096 + 300, 4, 7, 5}, {9 * 4096 + 1, 1, 3, 3}, {5 * 4096 - 1, 17, 2, 2},
    {12 * 4096 + 9, 2, 40, 40}, {6 * 4096 + 1, 1, 200, 150},
};

template <class T>
void check_paths_match_oracle(bool weighted, std::int64_t first_block) {
  std::uint32_t seed = 100;
  for (const Shape& s : kShapes) {
    for (const bool dup : {false, true}) {
      Pass<T> p = make_pass<T>(s.n, s.d, s.k, weighted, ++seed, s.used, dup);
      p.first_block = first_block;
      const std::string what = "n=" + std::to_string(s.n) + " d=" + std::to_string(s.d) +
                               " k=" + std::to_string(s.k) + " first_block=" +
                               std::to_string(first_block) + (weighted ? " weighted" : "") +
                               (dup ? " duplicates" : "");
      const tree::NodeStack want = oracle_nodes(p);
      const auto nodes = tree::decompose(first_block, first_block + p.leaves());
      ASSERT_EQ(want.nodes(), nodes) << what;
      for (const std::int64_t lpb : {1, 2, 3})
        expect_rows_equal<T>(partials_path(p, 16 * lpb), want,
                             what + " partials, leaves/block " + std::to_string(lpb));
      for (const std::int64_t spb : {1, 3, 8, 40})
        expect_rows_equal<T>(partials_path(p, spb, true), want,
                             what + " partials, sub-tile rows, sub-tiles/block " +
                                 std::to_string(spb));
      for (const int col_tile : {1, 2, 8, 32})
        expect_rows_equal<T>(sort_path(p, col_tile), want,
                             what + " sort, column tile " + std::to_string(col_tile));
    }
  }
}

TEST(CanonicalHost, PartialsAndSortPathsGiveTheDenseTreesBitsFloat) {
  check_paths_match_oracle<float>(false, 0);
  check_paths_match_oracle<float>(true, 0);
}

TEST(CanonicalHost, PartialsAndSortPathsGiveTheDenseTreesBitsDouble) {
  check_paths_match_oracle<double>(false, 0);
  check_paths_match_oracle<double>(true, 0);
}

TEST(CanonicalHost, ShardsAtAnyFirstBlockGiveTheDenseTreesBits) {
  for (const std::int64_t fb : {1, 6, 4095}) {
    check_paths_match_oracle<float>(true, fb);
    check_paths_match_oracle<double>(false, fb);
  }
}

/// Shards of non-power-of-two block counts (the last one partial), each run with its own first
/// block, pushed through one NodeStack in order: the whole pass's nodes and totals, bit for bit.
template <class T>
void check_sharded_total(bool weighted, std::uint32_t seed) {
  const std::int64_t n = 23 * kLeafPoints + 1234, d = 3;
  const int k = 6;
  const Pass<T> all = make_pass<T>(n, d, k, weighted, seed, 5);
  const tree::NodeStack want = oracle_nodes(all);
  std::vector<double> want_total(static_cast<std::size_t>(all.width()));
  want.total(want_total.data());
  const std::vector<std::vector<std::int64_t>> splits = {
      {0, n}, {0, 5, n}, {0, 3, 10, 17, n}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, n},
      {0, 7, 8, 22, n}, {0, 23, n}};
  for (const auto& cut : splits) {
    for (const bool sort : {false, true}) {
      tree::NodeStack stack(all.width());
      for (std::size_t s = 0; s + 1 < cut.size(); ++s) {
        const std::int64_t r0 = cut[s] == n ? n : cut[s] * kLeafPoints;
        const std::int64_t r1 = cut[s + 1] == n ? n : cut[s + 1] * kLeafPoints;
        const Pass<T> shard = slice(all, r0, r1);
        const std::vector<double> rows = sort ? sort_path(shard, 32)
                                                 : partials_path(shard, s % 2 ? 5 : 32, s % 2);
        const auto nodes = tree::decompose(shard.first_block, shard.first_block + shard.leaves());
        ASSERT_EQ(rows.size(), nodes.size() * static_cast<std::size_t>(all.width()));
        for (std::size_t j = 0; j < nodes.size(); ++j)
          stack.push(nodes[j], rows.data() + j * all.width());
      }
      ASSERT_EQ(stack.nodes(), want.nodes());
      std::vector<double> total(static_cast<std::size_t>(all.width()));
      stack.total(total.data());
      for (std::int64_t e = 0; e < all.width(); ++e)
        ASSERT_TRUE(same_bits(total[e], want_total[e]))
            << "split of " << cut.size() - 1 << " shards, " << (sort ? "sort" : "partials")
            << " path, entry " << e << ": " << total[e] << " vs " << want_total[e];
      // finish_leaves_kernel / fold_totals_kernel's right fold gives NodeStack::total's bits.
      std::vector<double> flat(stack.data(), stack.data() + stack.size() * all.width());
      for (std::int64_t e = 0; e < all.width(); ++e)
        ASSERT_TRUE(same_bits(canon::right_fold(flat.data() + e, all.width(),
                                                static_cast<int>(stack.size())),
                              want_total[e]));
    }
  }
}

TEST(CanonicalHost, ShardsPushedThroughNodeStackGiveTheWholeTotals) {
  check_sharded_total<float>(false, 7);
  check_sharded_total<float>(true, 8);
  check_sharded_total<double>(true, 9);
}

/// The test can fail: a sequential sum over the points (what a different grid could give) is
/// not the canonical value on this data.
TEST(CanonicalHost, TheDataIsOrderSensitive) {
  const Pass<double> p = make_pass<double>(13 * kLeafPoints + 77, 2, 3, true, 5);
  const tree::NodeStack want = oracle_nodes(p);
  std::vector<double> total(static_cast<std::size_t>(p.width()));
  want.total(total.data());
  int differs = 0;
  for (int c = 0; c < p.k; ++c)
    for (std::int64_t j = 0; j < p.d; ++j) {
      double seq = 0;
      for (std::int64_t i = 0; i < p.n; ++i)
        if (p.labels[i] == c) seq += p.w[i] * p.x[i * p.d + j];
      differs += !same_bits(seq, total[c * p.d + j]);
    }
  EXPECT_GT(differs, 0);
}

/// Skewed labels (one cluster holds most points, the others few per leaf): the sorted walk takes
/// both kinds of window (complete leaves from a chunk; binary-searched leaves running past it),
/// and gives the dense tree's bits with every column tile.
TEST(CanonicalHost, SortWalkWindowsOfBothKindsGiveTheDenseTreesBits) {
  for (const std::int64_t fb : {0, 5}) {
    Pass<float> p = make_pass<float>(17 * kLeafPoints + 333, 3, 50, true, 21);
    p.first_block = fb;
    std::mt19937 gen(22);
    for (auto& l : p.labels)
      if (gen() % 10 < 7) l = 3;
    const tree::NodeStack want = oracle_nodes(p);
    for (const int col_tile : {1, 4, 32}) {
      std::int64_t windows[2] = {0, 0};
      int depth = 0;
      expect_rows_equal<float>(sort_path(p, col_tile, &depth, windows), want,
                               "skewed, column tile " + std::to_string(col_tile));
      EXPECT_GT(windows[0], 0) << "no window of complete leaves";
      EXPECT_GT(windows[1], 0) << "no binary-searched window";
      EXPECT_LE(depth, canon::kStackDepth);
    }
  }
}

}  // namespace
}  // namespace kmeans::detail::canon_test
