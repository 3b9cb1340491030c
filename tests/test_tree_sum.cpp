// SPDX-License-Identifier: Apache-2.0
// The canonical tree order of the per-pass sums (src/tree_sum.hpp) and the CPU engine's use of
// it: any partition of the blocks (shards, paths) gives the single-process bits.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "shard_engine.hpp"
#include "tree_sum.hpp"

namespace {

using kmeans::detail::tree::decompose;
using kmeans::detail::tree::Node;
using kmeans::detail::tree::NodeStack;

/// Values whose sums depend on the order: wide magnitudes and signs.
std::vector<double> awkward_values(std::int64_t n, std::uint64_t seed) {
  std::uint64_t s = seed * 0x9E3779B97F4A7C15ull + 7;
  std::vector<double> v(static_cast<std::size_t>(n));
  for (auto& x : v) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    const double u = static_cast<double>(s >> 11) * 0x1.0p-53;
    x = std::ldexp(u - 0.3, static_cast<int>((s >> 3) % 60) - 30);
  }
  return v;
}

/// The definition, written independently: the tree over [lo, lo + size) of leaves [0, B), an
/// absent right child leaving the left value; null when the interval holds no leaf.
bool tree_value(const std::vector<double>& leaf, std::int64_t lo, std::int64_t size, double* out) {
  const auto B = static_cast<std::int64_t>(leaf.size());
  if (lo >= B) return false;
  if (size == 1) {
    *out = leaf[static_cast<std::size_t>(lo)];
    return true;
  }
  double l = 0, r = 0;
  tree_value(leaf, lo, size / 2, &l);
  if (!tree_value(leaf, lo + size / 2, size / 2, &r)) {
    *out = l;
    return true;
  }
  *out = l + r;
  return true;
}

double definition_total(const std::vector<double>& leaf) {
  std::int64_t size = 1;
  while (size < static_cast<std::int64_t>(leaf.size())) size *= 2;
  double v = 0;
  tree_value(leaf, 0, size, &v);
  return v;
}

bool same_bits(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }

/// The stack of shard [a, b): its nodes with their values by reduce_node.
NodeStack shard_stack(const std::vector<double>& leaf, std::int64_t a, std::int64_t b) {
  NodeStack st(1);
  for (const Node& n : decompose(a, b)) {
    std::vector<double> rows(leaf.begin() + n.start, leaf.begin() + n.start + n.size);
    kmeans::detail::tree::reduce_node(rows.data(), n.size, 1, 0, 1);
    st.push(n, rows.data());
  }
  return st;
}

TEST(TreeSum, DecompositionCoversWithMaximalAlignedNodes) {
  for (std::int64_t a = 0; a < 70; ++a)
    for (std::int64_t b = a; b < 140; ++b) {
      const auto nodes = decompose(a, b);
      std::int64_t at = a;
      for (std::size_t j = 0; j < nodes.size(); ++j) {
        const Node& n = nodes[j];
        ASSERT_EQ(n.start, at) << a << " " << b;
        ASSERT_GT(n.size, 0);
        ASSERT_EQ(n.size & (n.size - 1), 0) << "a power of two";
        ASSERT_EQ(n.start % n.size, 0) << "aligned";
        // Maximal: its parent interval does not fit in [a, b).
        const std::int64_t ps = n.start / (2 * n.size) * (2 * n.size);
        ASSERT_TRUE(ps < a || ps + 2 * n.size > b) << a << " " << b << " node " << j;
        at += n.size;
      }
      ASSERT_EQ(at, b);
      int log2 = 0;
      while ((std::int64_t{1} << log2) < b - a + 1) ++log2;
      ASSERT_LE(static_cast<int>(nodes.size()), 2 * log2 + 2);
    }
  EXPECT_EQ(decompose(0, 5), (std::vector<Node>{{0, 4}, {4, 1}}));
  EXPECT_EQ(decompose(3, 12), (std::vector<Node>{{3, 1}, {4, 4}, {8, 4}}));
}

TEST(TreeSum, RightFoldOfTheDecompositionIsTheTree) {
  for (std::int64_t B : {1, 2, 3, 5, 7, 8, 9, 31, 64, 100, 1000}) {
    const auto leaf = awkward_values(B, static_cast<std::uint64_t>(B));
    const double want = definition_total(leaf);
    // Dense in place, node by node, then the right fold.
    std::vector<double> rows = leaf;
    std::vector<double> node_values;
    for (const Node& n : decompose(0, B)) {
      kmeans::detail::tree::reduce_node(rows.data() + n.start, n.size, 1, 0, 1);
      node_values.push_back(rows[static_cast<std::size_t>(n.start)]);
    }
    double got = 0;
    kmeans::detail::tree::right_fold(node_values.data(),
                                     static_cast<std::int64_t>(node_values.size()), 1, 0, 1, &got);
    EXPECT_TRUE(same_bits(got, want)) << "B = " << B << ": " << got << " vs " << want;
    // And the left fold (the old order) differs somewhere: the test can see the order.
    if (B == 1000) {
      double left = 0;
      for (double v : leaf) left += v;
      EXPECT_FALSE(same_bits(left, want)) << "values too tame to tell orders apart";
    }
  }
}

TEST(TreeSum, MergingAdjacentRangesGivesTheBitsOfTheWhole) {
  std::uint64_t s = 12345;
  auto next = [&](std::int64_t m) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<std::int64_t>((s >> 33) % static_cast<std::uint64_t>(m));
  };
  for (int trial = 0; trial < 300; ++trial) {
    const std::int64_t B = 1 + next(300);
    const auto leaf = awkward_values(B, 99 + trial);
    const double want = definition_total(leaf);
    // Random cut points: up to 6 shards, some empty.
    std::vector<std::int64_t> cuts{0, B};
    for (int c = next(6); c > 0; --c) cuts.push_back(next(B + 1));
    std::sort(cuts.begin(), cuts.end());
    std::vector<NodeStack> shards;
    for (std::size_t i = 0; i + 1 < cuts.size(); ++i)
      shards.push_back(shard_stack(leaf, cuts[i], cuts[i + 1]));
    // Merged left to right.
    NodeStack all(1);
    for (const auto& sh : shards) all.push_all(sh);
    EXPECT_EQ(all.nodes(), decompose(0, B)) << "the merged nodes are the whole's decomposition";
    double got = 0;
    all.total(&got);
    ASSERT_TRUE(same_bits(got, want)) << "trial " << trial << " B = " << B;
    // Merged pairwise (a binomial tree over the shards, as MPI ranks do).
    std::vector<NodeStack> level = shards;
    while (level.size() > 1) {
      std::vector<NodeStack> up;
      for (std::size_t i = 0; i < level.size(); i += 2) {
        NodeStack m = level[i];
        if (i + 1 < level.size()) m.push_all(level[i + 1]);
        up.push_back(std::move(m));
      }
      level = std::move(up);
    }
    double pairwise = 0;
    level[0].total(&pairwise);
    ASSERT_TRUE(same_bits(pairwise, want)) << "trial " << trial << " B = " << B;
  }
}

// --- The CPU engine: every path and every partition of the blocks gives the same bits. ---

constexpr std::int64_t kBlock = 4096;

template <class T>
std::vector<T> data(std::int64_t n, std::int64_t d, std::uint64_t seed) {
  std::uint64_t s = seed * 0x9E3779B97F4A7C15ull + 3;
  std::vector<T> x(static_cast<std::size_t>(n * d));
  for (std::int64_t i = 0; i < n; ++i) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    const double centre = static_cast<double>((s >> 40) % 8) * 3.0;
    for (std::int64_t j = 0; j < d; ++j) {
      s = s * 6364136223846793005ull + 1442695040888963407ull;
      x[static_cast<std::size_t>(i * d + j)] =
          static_cast<T>(centre + static_cast<double>(s >> 11) * 0x1.0p-53 * 1.7);
    }
  }
  return x;
}

struct Pass {
  std::vector<double> sums, weights;
  double sse = 0;
  std::int64_t changed = 0;
};

template <class T>
Pass one_engine(const std::vector<T>& x, const std::vector<T>& w, std::int64_t n, std::int64_t d,
                const std::vector<T>& c, int k, std::int64_t max_partials, int threads) {
  kmeans::detail::DataView<T> v{x.data(), w.empty() ? nullptr : w.data(), n, d, threads};
  auto e = kmeans::detail::make_cpu_engine(v, max_partials);
  Pass p;
  p.sums.assign(static_cast<std::size_t>(k * d), -1);
  p.weights.assign(static_cast<std::size_t>(k), -1);
  const auto st = e->assign(c.data(), k, p.sums.data(), p.weights.data());
  p.sse = st.sse;
  p.changed = st.n_changed;
  return p;
}

/// The same pass over shards cut at the given block boundaries, merged through NodeStack.
template <class T>
Pass sharded(const std::vector<T>& x, const std::vector<T>& w, std::int64_t n, std::int64_t d,
             const std::vector<T>& c, int k, const std::vector<std::int64_t>& cut_blocks,
             std::int64_t max_partials) {
  const std::int64_t width = k * d + k + 1;
  NodeStack all(width);
  Pass p;
  for (std::size_t i = 0; i + 1 < cut_blocks.size(); ++i) {
    const std::int64_t r0 = cut_blocks[i] * kBlock, r1 = std::min(n, cut_blocks[i + 1] * kBlock);
    if (r1 <= r0) continue;
    kmeans::detail::DataView<T> v{x.data() + r0 * d, w.empty() ? nullptr : w.data() + r0, r1 - r0,
                                  d, 1};
    auto e = kmeans::detail::make_cpu_shard_engine(v, cut_blocks[i], max_partials);
    std::vector<double> rows;
    p.changed += e->assign_nodes(c.data(), k, true, rows).n_changed;
    for (std::size_t j = 0; j < e->nodes().size(); ++j)
      all.push(e->nodes()[j], rows.data() + j * width);
  }
  std::vector<double> total(static_cast<std::size_t>(width));
  all.total(total.data());
  p.sums.assign(total.begin(), total.begin() + k * d);
  p.weights.assign(total.begin() + k * d, total.begin() + k * d + k);
  p.sse = total.back();
  return p;
}

template <class T>
void expect_same(const Pass& a, const Pass& b, const std::string& what) {
  EXPECT_EQ(a.sums, b.sums) << what;  // vector == compares doubles by value: no -0 in sums
  EXPECT_EQ(a.weights, b.weights) << what;
  EXPECT_TRUE(same_bits(a.sse, b.sse)) << what << ": " << a.sse << " vs " << b.sse;
  EXPECT_EQ(a.changed, b.changed) << what;
}

template <class T>
void check_partitions(std::int64_t n, std::int64_t d, int k, bool weighted) {
  SCOPED_TRACE("n=" + std::to_string(n) + " d=" + std::to_string(d) + " k=" + std::to_string(k) +
               (weighted ? " weighted" : "") + (sizeof(T) == 4 ? " float" : " double"));
  const auto x = data<T>(n, d, static_cast<std::uint64_t>(n + d + k));
  std::vector<T> w;
  for (std::int64_t i = 0; i < (weighted ? n : 0); ++i)
    w.push_back(static_cast<T>(0.25 + static_cast<double>((i * 7) % 13) * 0.37));
  std::vector<T> c(static_cast<std::size_t>(k * d));
  for (int j = 0; j < k; ++j)
    for (std::int64_t f = 0; f < d; ++f)
      c[static_cast<std::size_t>(j * d + f)] = x[static_cast<std::size_t>(((j * 7919) % n) * d + f)];
  const std::int64_t big = std::int64_t{1} << 40;
  const Pass ref = one_engine(x, w, n, d, c, k, big, 1);
  expect_same<T>(one_engine(x, w, n, d, c, k, 1, 1), ref, "bucket path");
  expect_same<T>(one_engine(x, w, n, d, c, k, big, 3), ref, "3 threads");
  expect_same<T>(one_engine(x, w, n, d, c, k, 1, 2), ref, "bucket path, 2 threads");
  const std::int64_t B = (n + kBlock - 1) / kBlock;
  for (const auto& cuts : std::vector<std::vector<std::int64_t>>{
           {0, B}, {0, 1, B}, {0, B / 2, B}, {0, 1, 3, B}, {0, 3, 5, 6, B}, {0, B - 1, B}}) {
    bool ok = true;
    for (std::size_t i = 0; i + 1 < cuts.size(); ++i) ok = ok && cuts[i] <= cuts[i + 1];
    if (!ok || cuts.back() > B) continue;
    std::string what = "shards at blocks";
    for (auto b : cuts) what += " " + std::to_string(b);
    expect_same<T>(sharded(x, w, n, d, c, k, cuts, big), ref, what);
    expect_same<T>(sharded(x, w, n, d, c, k, cuts, 1), ref, what + ", bucket path");
  }
}

TEST(TreeSum, CpuEngineSameBitsForEveryPathAndPartition) {
  for (bool weighted : {false, true}) {
    check_partitions<float>(7 * kBlock + 123, 3, 4, weighted);   // interleaved accumulation
    check_partitions<double>(7 * kBlock + 123, 1, 7, weighted);  // d = 1
    check_partitions<float>(6 * kBlock + 1, 8, 5, weighted);     // d = 8, interleaved
    check_partitions<double>(5 * kBlock + 77, 40, 20, weighted); // sequential accumulation
    check_partitions<float>(3 * kBlock + 5, 130, 12, weighted);  // sub-blocks per block
    check_partitions<float>(100, 2, 3, weighted);                // one partial block
  }
}

}  // namespace
