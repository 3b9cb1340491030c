// SPDX-License-Identifier: Apache-2.0
// Host-side tests of the canonical order's building blocks (kernels/canonical.cuh): the sparse
// node stack against tree_sum.hpp's NodeStack, the grouped node trees against reduce_node, the
// tile kernel's grid rule, the node lists and the entry maps.
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

/// CanonStack with sparse pushes (zero leaves skipped) gives NodeStack's dense values and node
/// list over [a, b), within kStackDepth entries, for ranges up to kMaxPoints' leaves.
TEST(CanonicalHost, SparseStackEqualsTheDenseNodeStack) {
  std::mt19937_64 gen(3);
  std::uniform_real_distribution<double> u(-1, 1);
  const std::int64_t ranges[][2] = {{0, 1},     {0, 5},       {3, 4},          {5, 77},
                                    {1, 1025},  {1000, 5000}, {7, 7 + 40000},  {1, (1 << 19) + 1},
                                    {(std::int64_t{1} << 40) + 3, (std::int64_t{1} << 40) + 70001}};
  for (const auto& r : ranges) {
    for (const double density : {1.0, 0.3, 0.01, 0.0}) {
      const std::int64_t a = r[0], b = r[1];
      std::vector<double> val(canon::kStackDepth), leafv(static_cast<std::size_t>(b - a));
      std::vector<unsigned char> lvl(canon::kStackDepth);
      canon::CanonStack st;
      st.val = val.data();
      st.lvl = lvl.data();
      st.stride = 1;
      st.reset(a);
      tree::NodeStack dense(1);
      std::bernoulli_distribution keep(density);
      int depth = 0;
      for (std::int64_t l = a; l < b; ++l) {
        const double v = keep(gen) ? std::ldexp(u(gen), static_cast<int>(gen() % 40) - 20) : 0.0;
        dense.push({l, 1}, &v);
        if (v != 0.0) st.push_leaf(l, v);
        depth = std::max(depth, st.count);
      }
      st.skip_to(b);
      ASSERT_LE(depth, canon::kStackDepth);
      const auto nodes = tree::decompose(a, b);
      ASSERT_EQ(dense.nodes(), nodes);
      ASSERT_EQ(st.count, static_cast<int>(nodes.size())) << a << " " << b;
      for (int j = 0; j < st.count; ++j) {
        EXPECT_EQ(std::int64_t{1} << st.lvl[j], nodes[j].size);
        EXPECT_TRUE(same_bits(st.val[j], dense.values(j)[0])) << "[" << a << ", " << b << ") node " << j;
      }
    }
  }
}

/// tree_group_kernel's grouped levels equal tree::reduce_node on nodes of every size.
TEST(CanonicalHost, GroupedTreeLevelsEqualReduceNode) {
  std::mt19937_64 gen(4);
  std::uniform_real_distribution<double> u(-1, 1);
  for (int level = 0; level <= 13; ++level) {
    const std::int64_t size = std::int64_t{1} << level, W = 3;
    std::vector<double> v(static_cast<std::size_t>((size + 5) * W));
    for (auto& x : v) x = std::ldexp(u(gen), static_cast<int>(gen() % 60) - 30);
    std::vector<double> ref(v.begin() + 5 * W, v.end());
    tree::reduce_node(ref.data(), size, W, 0, W);
    canon::NodeList list;
    list.m = 1;
    list.local[0] = 5;
    list.level[0] = level;
    list.max_level = level;
    emulate_trees(v, W, 1, W, list);
    for (std::int64_t e = 1; e < W; ++e) EXPECT_TRUE(same_bits(v[5 * W + e], ref[e])) << level;
  }
}

/// The tile kernel's grid with partials: whole leaves per block, or sub-tile rows within their
/// memory cap; every sub-tile covered, no idle block.
TEST(CanonicalHost, TileShareKeepsLeavesWholeOrWritesSubtileRows) {
  for (const std::int64_t n : {1, 255, 256, 4095, 4096, 4097, 100000, 3000000, 100000000})
    for (const std::int64_t cols : {2, 80, 2048})
      for (const bool partials : {false, true})
        for (const std::int64_t spb : {0, 1, 3, 15, 16, 17, 100, 1 << 20}) {
          const tn::TileShare t = tn::tile_share(n, cols, partials, spb);
          const std::int64_t subtiles = (n + kSubtilePoints - 1) / kSubtilePoints;
          const std::int64_t blocks = (subtiles + t.subtiles_per_block - 1) / t.subtiles_per_block;
          const std::string what = "n=" + std::to_string(n) + " cols=" + std::to_string(cols) +
                                   " spb=" + std::to_string(spb) + (partials ? " partials" : "");
          ASSERT_GE(t.subtiles_per_block, 1) << what;
          EXPECT_GE(blocks * t.subtiles_per_block, subtiles) << what;
          EXPECT_LT((blocks - 1) * t.subtiles_per_block, subtiles) << what;
          if (!partials) {
            EXPECT_FALSE(t.subtile_rows) << what;
          } else if (t.subtile_rows) {
            EXPECT_LT(spb, 16) << what;
            EXPECT_LE(static_cast<std::size_t>(subtiles * (cols + 1)) * sizeof(double),
                      tn::kMaxSubtileRowBytes)
                << what;
          } else {
            EXPECT_EQ(t.subtiles_per_block % canon::kSubtilesPerLeaf, 0) << what;
            EXPECT_GE(t.subtiles_per_block, std::min<std::int64_t>(std::max<std::int64_t>(spb, 1),
                                                                   tn::round_up(subtiles, 16)))
                << what;
          }
        }
  // Small n takes sub-tile rows (SMs kept busy); a large n whole leaves.
  EXPECT_TRUE(tn::tile_share(100000, 80, true, 1).subtile_rows);
  EXPECT_FALSE(tn::tile_share(100000000, 80, true, 150).subtile_rows);
  EXPECT_EQ(tn::tile_share(100000000, 80, true, 150).subtiles_per_block, 160);
}

/// Every shard of the CUDA backend's size range fits a NodeList.
TEST(CanonicalHost, NodeListsFitEveryShard) {
  const std::int64_t max_leaves = (tn::kMaxPoints + kLeafPoints - 1) / kLeafPoints;
  for (const std::int64_t fb : {std::int64_t{0}, std::int64_t{1}, std::int64_t{12345},
                                (std::int64_t{1} << 40) - 1})
    for (const std::int64_t leaves : {std::int64_t{1}, max_leaves - 1, max_leaves}) {
      const canon::NodeList list = node_list(fb, leaves);
      EXPECT_EQ(list.m, static_cast<int>(tree::decompose(fb, fb + leaves).size()));
    }
}

TEST(CanonicalHost, NodeLevelIsTheGreedyDecomposition) {
  for (std::int64_t a = 0; a < 70; ++a)
    for (std::int64_t b = a + 1; b < 140; ++b)
      EXPECT_EQ(std::int64_t{1} << canon::node_level(a, b), tree::decompose(a, b)[0].size);
}

TEST(CanonicalHost, EntryMapsCoverEveryEntryOnce) {
  for (const std::int64_t k : {1, 3, 8})
    for (const std::int64_t d : {1, 2, 5}) {
      const std::int64_t width = k * d + k + 1, W = tn::partial_columns(k, d) + 1;
      std::vector<int> hit(static_cast<std::size_t>(width), 0), total_hit(
          static_cast<std::size_t>(layout::total_entries(k, d)), 0);
      for (std::int64_t e = 0; e < W; ++e) ++hit[canon::node_entry_of_leaf_column(e, W, k, d, width)];
      for (std::int64_t e = 0; e < width; ++e) ++total_hit[canon::total_of_node_entry(e, k, d, width)];
      for (int h : hit) EXPECT_EQ(h, 1);
      for (std::size_t t = 0; t < total_hit.size(); ++t)
        EXPECT_EQ(total_hit[t], t == layout::kTotalChanged ? 0 : 1) << t;
      // Leaf column e is the tile kernel's partial column: the same totals entry.
      for (std::int64_t e = 0; e + 1 < W; ++e)
        EXPECT_EQ(canon::total_of_node_entry(canon::node_entry_of_leaf_column(e, W, k, d, width), k,
                                             d, width),
                  layout::total_of_column(e, k, d));
      EXPECT_EQ(canon::total_of_node_entry(0, k, d, 1), layout::kTotalSse);
    }
}

}  // namespace
}  // namespace kmeans::detail::canon_test
