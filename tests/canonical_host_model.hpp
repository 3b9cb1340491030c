// SPDX-License-Identifier: Apache-2.0
// The host model of the canonical GPU sum order for the host tests (test_canonical_*host.cu): a
// plain dense oracle (sub-tile, leaf, tree_sum.hpp's NodeStack over every leaf) and the CUDA
// kernels' steps (kernels/canonical.cuh, the tile kernel's leaf fold) run on the host in the
// kernels' own loop structure. nvcc-compiled host code with -ffp-contract=off; no CUDA call.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "canonical_oracle.hpp"
#include "kernels/assign.cuh"
#include "kernels/canonical.cuh"
#include "kernels/layout.cuh"
#include "kernels/tuning.cuh"
#include "tree_sum.hpp"

namespace kmeans::detail::canon_test {

namespace tn = tuning;
using canon::kLeafPoints;
using canon::kSubtilePoints;

inline bool same_bits(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }

/// One shard's pass data: n points (the shard's rows), labels, distances, optional weights.
template <class T>
struct Pass {
  std::int64_t n = 0, d = 0;
  int k = 0;
  std::int64_t first_block = 0;
  std::vector<T> x, w, dist;
  std::vector<std::int32_t> labels;
  bool weighted = false;
  const T* wp() const { return weighted ? w.data() : nullptr; }
  std::int64_t leaves() const { return (n + kLeafPoints - 1) / kLeafPoints; }
  std::int64_t width() const { return k * d + k + 1; }
};

/// Values of very different magnitudes, so that any change of summation order changes bits.
template <class T>
Pass<T> make_pass(std::int64_t n, std::int64_t d, int k, bool weighted, std::uint32_t seed,
                  int used_clusters = 0, bool duplicates = false) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<double> u(-1, 1);
  std::uniform_int_distribution<int> mag(-12, 12);
  Pass<T> p;
  p.n = n;
  p.d = d;
  p.k = k;
  p.weighted = weighted;
  p.x.resize(static_cast<std::size_t>(n * d));
  for (auto& v : p.x) v = static_cast<T>(std::ldexp(u(gen), mag(gen)));
  if (duplicates)
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t j = 0; j < d; ++j) p.x[i * d + j] = p.x[(i % 5) * d + j];
  p.w.resize(static_cast<std::size_t>(n));
  for (auto& v : p.w) v = static_cast<T>(std::ldexp(1 + u(gen), mag(gen) / 3));
  p.dist.resize(static_cast<std::size_t>(n));
  for (auto& v : p.dist) v = static_cast<T>(std::ldexp(1 + u(gen), mag(gen)));
  const int used = used_clusters > 0 ? used_clusters : k;
  std::uniform_int_distribution<int> lab(0, used - 1);
  p.labels.resize(static_cast<std::size_t>(n));
  for (auto& l : p.labels) l = lab(gen);
  return p;
}

/// The rows [r0, r1) of a pass as a shard starting at global block first_block.
template <class T>
Pass<T> slice(const Pass<T>& p, std::int64_t r0, std::int64_t r1) {
  Pass<T> s;
  s.n = r1 - r0;
  s.d = p.d;
  s.k = p.k;
  s.weighted = p.weighted;
  s.first_block = p.first_block + r0 / kLeafPoints;
  s.x.assign(p.x.begin() + r0 * p.d, p.x.begin() + r1 * p.d);
  s.w.assign(p.w.begin() + r0, p.w.begin() + r1);
  s.dist.assign(p.dist.begin() + r0, p.dist.begin() + r1);
  s.labels.assign(p.labels.begin() + r0, p.labels.begin() + r1);
  return s;
}

// ---- the oracle: plain loops, dense over every sub-tile and leaf ---------------------------

/// Leaf rows (width entries: k x d sums, k weights, SSE) of the canonical definition.
template <class T>
std::vector<double> oracle_leaf_rows(const Pass<T>& p) {
  return kmeans_test::canonical_leaf_rows(p.x.data(), p.wp(), p.labels.data(), p.dist.data(), p.n,
                                          p.d, p.k);
}

/// The dense tree: every leaf pushed onto tree_sum.hpp's NodeStack.
template <class T>
tree::NodeStack oracle_nodes(const Pass<T>& p) {
  const std::vector<double> rows = oracle_leaf_rows(p);
  tree::NodeStack stack(p.width());
  for (std::int64_t l = 0; l < p.leaves(); ++l)
    stack.push({p.first_block + l, 1}, rows.data() + l * p.width());
  return stack;
}

// ---- the kernels' steps, on the host ---------------------------------------------------------

/// The engine's NodeList (make_node_list over tree::decompose, as passes.cu forms it).
inline canon::NodeList node_list(std::int64_t first_block, std::int64_t leaves) {
  const auto nodes = tree::decompose(first_block, first_block + leaves);
  std::vector<std::int64_t> start, size;
  for (const auto& node : nodes) {
    start.push_back(node.start);
    size.push_back(node.size);
  }
  canon::NodeList list;
  EXPECT_TRUE(canon::make_node_list(start.data(), size.data(), nodes.size(), first_block, list));
  for (int j = 0; j < list.m; ++j) {
    EXPECT_EQ(list.local[j] + first_block, nodes[j].start);
    EXPECT_EQ(std::int64_t{1} << list.level[j], nodes[j].size);
    EXPECT_LE(list.level[j], list.max_level);
  }
  return list;
}

/// tree_group_kernel's launches over the leaf rows, columns [e0, e1).
inline void emulate_trees(std::vector<double>& v, std::int64_t W, std::int64_t e0, std::int64_t e1,
                   const canon::NodeList& nodes) {
  for (int t0 = 0; t0 < nodes.max_level; t0 += canon::kTreeGroupLevels)
    for (int j = 0; j < nodes.m; ++j) {
      const int l = nodes.level[j];
      if (l <= t0) continue;
      const int span = std::min(l - t0, canon::kTreeGroupLevels);
      const std::int64_t count = std::int64_t{1} << span, groups = std::int64_t{1} << (l - t0 - span);
      const std::int64_t step = std::int64_t{1} << t0;
      for (std::int64_t g = 0; g < groups; ++g)
        for (std::int64_t e = e0; e < e1; ++e) {
          double* base = v.data() + (nodes.local[j] + g * count * step) * W + e;
          *base = canon::tree_group_value(base, step * W, static_cast<int>(count));
        }
    }
}

/// leaf_sse_kernel: a thread per sub-tile, then the fold of 16.
template <class T>
void emulate_leaf_sse(const Pass<T>& p, std::vector<double>& leaf, std::int64_t W) {
  const std::int64_t subtiles = (p.n + kSubtilePoints - 1) / kSubtilePoints;
  const std::int64_t blocks = (subtiles + 255) / 256;
  for (std::int64_t b = 0; b < blocks; ++b) {
    double s_sub[256];
    for (int t = 0; t < 256; ++t) {
      const std::int64_t p0 = (b * 256 + t) * kSubtilePoints;
      double sub = 0;
      for (std::int64_t i = p0; i < std::min(p.n, p0 + kSubtilePoints); ++i)
        sub = canon::add(sub, canon::sse_term(p.dist.data(), p.wp(), i));
      s_sub[t] = sub;
    }
    for (int t = 0; t < 256; t += canon::kSubtilesPerLeaf) {
      const std::int64_t l = (b * 256 + t) / canon::kSubtilesPerLeaf;
      if (l >= p.leaves()) continue;
      double acc = 0;
      for (int s = 0; s < canon::kSubtilesPerLeaf; ++s) acc = canon::add(acc, s_sub[t + s]);
      leaf[l * W + W - 1] = acc;
      EXPECT_TRUE(same_bits(acc, canon::leaf_sse(p.dist.data(), p.wp(), p.n, l)));
    }
  }
}

/// The partials path: assign_tile_kernel's per-sub-tile sort and leaf fold (blocks of spb
/// sub-tiles: a multiple of 16, or any with one row per sub-tile and subtile_fold_kernel),
/// leaf_sse_kernel, the trees, finish_leaves_kernel. Returns the m node rows.
template <class T>
std::vector<double> partials_path(const Pass<T>& p, std::int64_t spb, bool subtile_rows = false) {
  const std::int64_t d = p.d, k = p.k, cols = tn::partial_columns(k, d), W = cols + 1;
  const std::int64_t B = p.leaves();
  const std::int64_t n_subtiles = (p.n + kSubtilePoints - 1) / kSubtilePoints;
  std::vector<double> leaf(static_cast<std::size_t>(B * W), std::nan(""));
  std::vector<double> sub_rows(static_cast<std::size_t>(n_subtiles * W), std::nan(""));
  std::vector<double>& rows_out = subtile_rows ? sub_rows : leaf;
  const int bits = tn::key_bits(k);
  for (std::int64_t first = 0; first < n_subtiles; first += spb) {
    const std::int64_t last = std::min(first + spb, n_subtiles);
    std::vector<double> s_acc(static_cast<std::size_t>(cols), 0.0);
    for (std::int64_t st = first; st < last; ++st) {
      const std::int64_t base = st * kSubtilePoints;
      // BlockRadixSort of (label or k, thread) over `bits` bits: stable.
      std::vector<int> key(kSubtilePoints), point(kSubtilePoints);
      for (int t = 0; t < kSubtilePoints; ++t) {
        key[t] = base + t < p.n ? p.labels[base + t] : static_cast<int>(k);
        point[t] = t;
      }
      std::stable_sort(point.begin(), point.end(), [&](int a, int b) {
        return (key[a] & ((1 << bits) - 1)) < (key[b] & ((1 << bits) - 1));
      });
      std::vector<int> skey(kSubtilePoints);
      for (int q = 0; q < kSubtilePoints; ++q) skey[q] = key[point[q]];
      const bool leaf_ends =
          subtile_rows || (st + 1) % canon::kSubtilesPerLeaf == 0 || st + 1 == last;
      double* row = rows_out.data() + (subtile_rows ? st : st / canon::kSubtilesPerLeaf) * W;
      for (std::int64_t e = 0; e < cols; ++e) {
        const double v = canon::add(s_acc[e], column_partial(skey.data(), point.data(),
                                                             kSubtilePoints, base, p.x.data(),
                                                             p.wp(), d, e));
        if (leaf_ends) {
          row[e] = v;
          s_acc[e] = 0;
        } else {
          s_acc[e] = v;
        }
      }
    }
  }
  if (subtile_rows)  // subtile_fold_kernel
    for (std::int64_t l = 0; l < B; ++l)
      for (std::int64_t e = 0; e < cols; ++e)
        leaf[l * W + e] = canon::fold_subtiles(sub_rows.data() + e, l, n_subtiles, W);
  emulate_leaf_sse(p, leaf, W);
  const canon::NodeList nodes = node_list(p.first_block, B);
  emulate_trees(leaf, W, 0, W, nodes);
  std::vector<double> out(static_cast<std::size_t>(nodes.m * p.width()), std::nan(""));
  for (std::int64_t e = 0; e < W; ++e) {
    const std::int64_t entry = canon::node_entry_of_leaf_column(e, W, k, d, p.width());
    for (int j = 0; j < nodes.m; ++j) out[j * p.width() + entry] = leaf[nodes.local[j] * W + e];
  }
  return out;
}

/// The sort path: a stable sort by label, cluster offsets, sorted_walk_kernel's windows (chunks
/// of complete leaves shared among the lanes, or `lanes` leaves found by binary search when one
/// leaf runs past the chunk) and its CanonStack per column; the SSE by the leaf kernel and the
/// trees. lanes = kSortThreads / col_tile as in the kernel.
template <class T>
std::vector<double> sort_path(const Pass<T>& p, int col_tile, int* max_depth = nullptr,
                              std::int64_t* windows = nullptr) {
  const std::int64_t d = p.d, k = p.k, B = p.leaves();
  const int lanes = tn::kSortThreads / col_tile;
  std::int64_t counts[2] = {0, 0};
  std::int64_t* windows_flags = windows ? windows : counts;
  std::int64_t* windows_search = windows ? windows + 1 : counts + 1;
  std::vector<std::int32_t> order(static_cast<std::size_t>(p.n));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](std::int32_t a, std::int32_t b) { return p.labels[a] < p.labels[b]; });
  std::vector<std::int32_t> sorted(order.size());
  for (std::size_t q = 0; q < order.size(); ++q) sorted[q] = p.labels[order[q]];
  const canon::NodeList nodes = node_list(p.first_block, B);
  std::vector<double> out(static_cast<std::size_t>(nodes.m * p.width()), std::nan(""));
  constexpr int kStride = 3;  // a thread's column of the shared arrays
  std::vector<double> val(canon::kStackDepth * kStride);
  std::vector<unsigned char> lvl(canon::kStackDepth * kStride);
  std::vector<std::int64_t> bound(static_cast<std::size_t>(lanes) + 1);
  std::vector<double> s_leaf(static_cast<std::size_t>(lanes));
  for (int c = 0; c < k; ++c) {
    const std::int64_t lo = layout::lower_bound(sorted.data(), static_cast<int>(p.n), c);
    const std::int64_t hi = layout::lower_bound(sorted.data(), static_cast<int>(p.n), c + 1);
    for (std::int64_t col = 0; col <= d; ++col) {
      canon::CanonStack st;
      st.val = val.data() + 1;
      st.lvl = lvl.data() + 1;
      st.stride = kStride;
      st.reset(p.first_block);
      std::int64_t pos = lo;
      while (pos < hi) {
        const int cnt = static_cast<int>(std::min<std::int64_t>(hi - pos, canon::kWalkChunk));
        std::vector<std::int32_t> s_pt(order.begin() + pos, order.begin() + pos + cnt);
        std::vector<int> seg;  // the block-wide prefix count of the segment-start flags
        for (int t = 0; t < cnt; ++t)
          if (t == 0 || (s_pt[t] >> canon::kLeafShift) != (s_pt[t - 1] >> canon::kLeafShift))
            seg.push_back(t);
        const int n_seg = static_cast<int>(seg.size());
        seg.push_back(cnt);
        const int nl = canon::walk_window_leaves(n_seg, pos + cnt == hi, col_tile);
        if (nl > 0) {
          std::vector<double> vals(static_cast<std::size_t>(nl), std::nan(""));
          std::vector<int> covered(static_cast<std::size_t>(nl), 0);
          for (int lane = 0; lane < lanes; ++lane) {
            int i0 = 0, i1 = 0;
            canon::walk_lane_range(lane, lanes, nl, i0, i1);
            for (int i = i0; i < i1; ++i) {
              vals[i] = canon::sorted_leaf_value(p.x.data(), p.wp(), s_pt.data(), seg[i],
                                                 seg[i + 1], d, col);
              ++covered[i];
            }
          }
          for (int i = 0; i < nl; ++i) {
            EXPECT_EQ(covered[i], 1);
            st.push_leaf(p.first_block + (s_pt[seg[i]] >> canon::kLeafShift), vals[i]);
            if (max_depth) *max_depth = std::max(*max_depth, st.count);
          }
          pos += seg[nl];
          ++*windows_flags;
        } else {
          const std::int64_t leaf0 = static_cast<std::int64_t>(s_pt[0]) >> canon::kLeafShift;
          bound[0] = pos;
          for (int t = 0; t < lanes; ++t)
            bound[t + 1] = pos + canon::lower_bound_point(order.data() + pos, hi - pos,
                                                          (leaf0 + t + 1) << canon::kLeafShift);
          for (int l = 0; l < lanes; ++l)
            s_leaf[l] = canon::sorted_leaf_value(p.x.data(), p.wp(), order.data(), bound[l],
                                                 bound[l + 1], d, col);
          for (int l = 0; l < lanes; ++l)
            if (bound[l + 1] > bound[l]) {
              st.push_leaf(p.first_block + leaf0 + l, s_leaf[l]);
              if (max_depth) *max_depth = std::max(*max_depth, st.count);
            }
          pos = bound[lanes];
          ++*windows_search;
        }
      }
      st.skip_to(p.first_block + B);
      EXPECT_EQ(st.count, nodes.m);
      const std::int64_t entry = col < d ? c * d + col : k * d + c;
      for (int j = 0; j < st.count && j < nodes.m; ++j)
        out[j * p.width() + entry] = st.val[j * kStride];
    }
  }
  std::vector<double> leaf(static_cast<std::size_t>(B), std::nan(""));
  emulate_leaf_sse(p, leaf, 1);
  emulate_trees(leaf, 1, 0, 1, nodes);
  for (int j = 0; j < nodes.m; ++j) out[j * p.width() + p.width() - 1] = leaf[nodes.local[j]];
  return out;
}

template <class T>
void expect_rows_equal(const std::vector<double>& got, const tree::NodeStack& want,
                       const std::string& what) {
  ASSERT_EQ(got.size(), want.size() * static_cast<std::size_t>(want.width())) << what;
  std::int64_t bad = 0;
  for (std::size_t j = 0; j < want.size(); ++j)
    for (std::int64_t e = 0; e < want.width(); ++e) {
      const double g = got[j * want.width() + e], w = want.values(j)[e];
      if (!same_bits(g, w) && bad++ < 5)
        ADD_FAILURE() << what << ": node " << j << " entry " << e << ": " << g << " vs " << w;
    }
  EXPECT_EQ(bad, 0) << what;
}

}  // namespace kmeans::detail::canon_test
