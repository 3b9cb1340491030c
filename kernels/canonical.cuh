// SPDX-License-Identifier: Apache-2.0
// The canonical order of the CUDA engine's per-pass sums (src/cuda/shard.hpp): its building
// blocks as __host__ __device__ functions (the host tests run them) and the kernels built on them.
//
//   sub-tile = 256 points (kAssignThreads), leaf = 4096 points (kReduceBlock) = 16 sub-tiles;
//   sub-tile value = sum in point order from +0.0 of w_p * x_p[j] (or w_p, or w_p * dist_p);
//   leaf value = ((0 + S_0) + S_1) + ... + S_15; node value = the dyadic tree of tree_sum.hpp.
// Every product and sum is rounded on its own (never fused into an FMA), so host and device, and
// any two kernels that form the same value, give the same bits. No accumulation ever yields -0.0
// (a sum that starts at +0.0 cannot), so adding +0.0 is exact: empty sub-tiles, leaves and
// subtrees may be skipped, which is what lets the sort path walk only the non-empty leaves.
//
// Two ways to the node values: the partials path (small k * d) writes one row per leaf (the tile
// kernel's s_acc folded over the leaf's 16 sub-tiles; at small n, where blocks own fewer than 16
// sub-tiles, one row per sub-tile, folded by subtile_fold_kernel) and reduces the rows in place, a group of
// 4 tree levels per launch (tree_group_kernel), then gathers the node rows or
// their right fold (finish_leaves_kernel); the sort path (large k * d) walks each cluster's points, sorted by label
// (stable: index order within a cluster) in windows of 256 positions split into leaves, and
// pushes the non-empty leaves onto a sparse node stack (CanonStack), a bounded O(log B) state
// per (cluster, column): no leaves x k x d buffer. The SSE has its own leaf kernel (leaf_sse_kernel) on every path.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/layout.cuh"
#include "kernels/rounded.cuh"
#include "kernels/tuning.cuh"

// Unrolling hint for device code; host compilers (the host-side tests) do not know the pragma.
#if defined(__CUDA_ARCH__)
#define KMEANS_CANON_UNROLL _Pragma("unroll")
#else
#define KMEANS_CANON_UNROLL
#endif

namespace kmeans::detail::canon {

constexpr int kSubtileShift = 8;
constexpr int kLeafShift = 12;
constexpr std::int64_t kSubtilePoints = std::int64_t{1} << kSubtileShift;  ///< 256
constexpr std::int64_t kLeafPoints = std::int64_t{1} << kLeafShift;        ///< 4096
constexpr int kSubtilesPerLeaf = 1 << (kLeafShift - kSubtileShift);       ///< 16
static_assert(kSubtilePoints == tuning::kAssignThreads, "a sub-tile is one assign block's step");
/// Entries of a CanonStack: the canonical decomposition of [a, c) has at most 2 log2(c - a) + 2
/// nodes (40 for the 2^19 leaves of kMaxPoints), one more while a push merges.
constexpr int kStackDepth = 48;
/// Nodes of one shard's decomposition passed by value to the kernels (at most 40, as above).
constexpr int kMaxNodes = 48;
/// Values a tree_group_kernel thread reduces at once: 4 tree levels per launch.
constexpr int kTreeGroup = 16;
constexpr int kTreeGroupLevels = 4;

/// Rounded products and sums that the compiler may not fuse (kernels/rounded.cuh).
using rounded::add;
using rounded::mul;

/// Point p's term of column col (of d + 1: coordinates, then the weight): w_p * x_p[col], or
/// w_p; w_p = 1 without weights (the product is then exact and skipped).
template <class T>
KMEANS_HD inline double term(const T* x, const T* w, std::int64_t p, std::int64_t d,
                             std::int64_t col) {
  if (col < d) {
    const double xv = static_cast<double>(x[p * d + col]);
    return w ? mul(static_cast<double>(w[p]), xv) : xv;
  }
  return w ? static_cast<double>(w[p]) : 1.0;
}

/// Point p's SSE term: w_p * dist_p (dist_p in T, exact in double).
template <class T>
KMEANS_HD inline double sse_term(const T* dist, const T* w, std::int64_t p) {
  const double v = static_cast<double>(dist[p]);
  return w ? mul(static_cast<double>(w[p]), v) : v;
}

/// The canonical leaf value of the points at positions [lo, hi) of a list of point indices in
/// increasing order, all in one leaf (a cluster's run in the stably sorted order): sub-tile sums
/// from +0.0, added to the leaf from +0.0 as each sub-tile ends.
template <class T>
KMEANS_HD inline double sorted_leaf_value(const T* x, const T* w, const std::int32_t* order,
                                          std::int64_t lo, std::int64_t hi, std::int64_t d,
                                          std::int64_t col) {
  double leaf = 0, sub = 0;
  std::int64_t cur = -1;
  for (std::int64_t q = lo; q < hi; ++q) {
    const std::int64_t p = order[q];
    const std::int64_t st = p >> kSubtileShift;
    if (st != cur) {
      if (cur >= 0) leaf = add(leaf, sub);
      sub = 0;
      cur = st;
    }
    sub = add(sub, term(x, w, p, d, col));
  }
  return cur >= 0 ? add(leaf, sub) : leaf;
}

/// The canonical SSE of leaf `leaf` of n points (the last leaf may be partial).
template <class T>
KMEANS_HD inline double leaf_sse(const T* dist, const T* w, std::int64_t n, std::int64_t leaf) {
  double acc = 0;
  for (int s = 0; s < kSubtilesPerLeaf; ++s) {
    const std::int64_t p0 = leaf * kLeafPoints + s * kSubtilePoints;
    const std::int64_t p1 = p0 + kSubtilePoints < n ? p0 + kSubtilePoints : n;
    double sub = 0;
    for (std::int64_t p = p0; p < p1; ++p) sub = add(sub, sse_term(dist, w, p));
    acc = add(acc, sub);
  }
  return acc;
}

/// A leaf's value from its sub-tiles' values sub[st * stride] (st = 16 leaf + s, those below
/// n_subtiles): ((0 + S_0) + S_1) + ... + S_15.
KMEANS_HD inline double fold_subtiles(const double* sub, std::int64_t leaf,
                                      std::int64_t n_subtiles, std::int64_t stride) {
  double acc = 0;
  for (int s = 0; s < kSubtilesPerLeaf; ++s) {
    const std::int64_t st = leaf * kSubtilesPerLeaf + s;
    if (st < n_subtiles) acc = add(acc, sub[st * stride]);
  }
  return acc;
}

/// The level (log2 size) of the node the canonical decomposition of [a, b) starts at a with
/// (tree::decompose's greedy step); a < b.
KMEANS_HD inline int node_level(std::int64_t a, std::int64_t b) {
  int l = 0;
  while ((a & ((std::int64_t{2} << l) - 1)) == 0 && a + (std::int64_t{2} << l) <= b) ++l;
  return l;
}

/// The dyadic tree value of `count` (a power of two, <= kTreeGroup) values v[i * stride]:
/// left half + right half, recursively (tree::reduce_node's order).
KMEANS_HD inline double tree_group_value(const double* v, std::int64_t stride, int count) {
  double a[kTreeGroup];
  KMEANS_CANON_UNROLL
  for (int i = 0; i < kTreeGroup; ++i) a[i] = i < count ? v[i * stride] : 0.0;
  KMEANS_CANON_UNROLL
  for (int h = 1; h < kTreeGroup; h *= 2) {
    KMEANS_CANON_UNROLL
    for (int i = 0; i < kTreeGroup; i += 2 * h)
      if (i + h < count) a[i] = add(a[i], a[i + h]);
  }
  return a[0];
}

/// tree::NodeStack for one value per node over caller storage (val[i * stride], lvl[i * stride]:
/// a thread's column of a shared-memory array), holding the canonical decomposition of [begin,
/// end) with the canonical values. Leaves may be pushed sparsely: a gap is pushed as the +0.0
/// nodes of its canonical decomposition, which merge exactly as the dense tree's empty leaves.
struct CanonStack {
  double* val = nullptr;
  unsigned char* lvl = nullptr;
  int stride = 1;
  int count = 0;
  std::int64_t end = 0;

  KMEANS_HD void reset(std::int64_t begin) {
    count = 0;
    end = begin;
  }
  /// Appends the node of level l at `end` with value v and merges siblings.
  KMEANS_HD void push_node(int l, double v) {
    val[count * stride] = v;
    lvl[count * stride] = static_cast<unsigned char>(l);
    ++count;
    end += std::int64_t{1} << l;
    while (count >= 2) {
      const int lt = lvl[(count - 1) * stride];
      if (lvl[(count - 2) * stride] != lt) break;
      const std::int64_t left_start = end - (std::int64_t{2} << lt);
      if ((left_start & ((std::int64_t{2} << lt) - 1)) != 0) break;
      val[(count - 2) * stride] = add(val[(count - 2) * stride], val[(count - 1) * stride]);
      lvl[(count - 2) * stride] = static_cast<unsigned char>(lt + 1);
      --count;
    }
  }
  /// Pushes +0.0 nodes up to (not including) leaf `to`.
  KMEANS_HD void skip_to(std::int64_t to) {
    while (end < to) push_node(node_level(end, to), 0.0);
  }
  /// Pushes leaf `leaf` (>= end) with value v.
  KMEANS_HD void push_leaf(std::int64_t leaf, double v) {
    skip_to(leaf);
    push_node(0, v);
  }
};

/// The nodes of one shard's canonical decomposition, by value in kernel arguments: node j covers
/// the shard's local leaves [local[j], local[j] + 2^level[j]).
struct NodeList {
  int m = 0;
  int max_level = 0;
  std::int64_t local[kMaxNodes] = {};
  int level[kMaxNodes] = {};
};

/// The NodeList of a shard's canonical decomposition (tree::decompose of its global leaves,
/// given as starts and power-of-two sizes) at global leaf first_block; false when it has more
/// than kMaxNodes nodes (never for the 2^19 leaves of kMaxPoints).
inline bool make_node_list(const std::int64_t* start, const std::int64_t* size, std::size_t m,
                           std::int64_t first_block, NodeList& list) {
  if (m > static_cast<std::size_t>(kMaxNodes)) return false;
  list = NodeList{};
  list.m = static_cast<int>(m);
  for (int j = 0; j < list.m; ++j) {
    list.local[j] = start[j] - first_block;
    int l = 0;
    while ((std::int64_t{1} << l) < size[j]) ++l;
    list.level[j] = l;
    list.max_level = list.max_level > l ? list.max_level : l;
  }
  return true;
}

/// Entry of a shard node row (k x d sums, k weights, SSE: shard_engine.hpp) that leaf-row
/// column e holds: columns [0, k (d + 1)) are the tile kernel's partial columns
/// (layout::total_of_column's (cluster, column) order), column W - 1 the SSE.
KMEANS_HD inline std::int64_t node_entry_of_leaf_column(std::int64_t e, std::int64_t leaf_width,
                                                        std::int64_t k, std::int64_t d,
                                                        std::int64_t width) {
  if (e == leaf_width - 1) return width - 1;
  const std::int64_t c = e / (d + 1), col = e - c * (d + 1);
  return col < d ? c * d + col : k * d + c;
}

/// Entry of the totals record (layout.cuh) that node-row entry e totals into.
KMEANS_HD inline std::int64_t total_of_node_entry(std::int64_t e, std::int64_t k, std::int64_t d,
                                                  std::int64_t width) {
  if (e == width - 1) return layout::kTotalSse;
  return e < k * d ? layout::kTotalHeader + k + e : layout::total_weight(e - k * d);
}

/// First position q in [0, count) with points[q] >= value (points increasing).
KMEANS_HD inline std::int64_t lower_bound_point(const std::int32_t* points, std::int64_t count,
                                                std::int64_t value) {
  std::int64_t lo = 0, hi = count;
  while (lo < hi) {
    const std::int64_t mid = lo + (hi - lo) / 2;
    if (points[mid] < value)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

/// Positions of a cluster's sorted run that sorted_walk_kernel loads per window (one per thread)
/// and the leaf values a window may hold (its shared s_leaf: leaves x column tile).
constexpr int kWalkChunk = 256;
constexpr int kWalkValues = 2048;

/// Leaves a sorted-walk window takes from a chunk split into n_seg leaf segments: the complete
/// ones (all but the last, unless the chunk reaches the end of the cluster's run), at most
/// kWalkValues / col_tile. 0: the chunk is one leaf that runs past it.
KMEANS_HD inline int walk_window_leaves(int n_seg, bool reaches_end, int col_tile) {
  const int complete = reaches_end ? n_seg : n_seg - 1;
  const int cap = kWalkValues / col_tile;
  return complete < cap ? complete : cap;
}

/// Lane `lane` of `lanes` forms the window's leaves [i0, i1): contiguous shares of nl.
KMEANS_HD inline void walk_lane_range(int lane, int lanes, int nl, int& i0, int& i1) {
  const int g = (nl + lanes - 1) / lanes;
  i0 = lane * g < nl ? lane * g : nl;
  i1 = i0 + g < nl ? i0 + g : nl;
}

#if defined(__CUDACC__)

/// leaf[l * W + W - 1] = the canonical SSE of leaf l: a block of 256 threads covers 16 leaves,
/// a thread one sub-tile (in point order), then one thread per leaf folds its 16 sub-tiles.
template <class T>
__global__ void __launch_bounds__(256)
    leaf_sse_kernel(const T* dist, const T* w, std::int64_t n, std::int64_t n_leaves,
                    std::int64_t leaf_width, double* leaf) {
  __shared__ double s_sub[256];
  const std::int64_t st = static_cast<std::int64_t>(blockIdx.x) * 256 + threadIdx.x;
  const std::int64_t p0 = st * kSubtilePoints;
  const std::int64_t p1 = p0 + kSubtilePoints < n ? p0 + kSubtilePoints : n;
  double sub = 0;
  for (std::int64_t p = p0; p < p1; ++p) sub = add(sub, sse_term(dist, w, p));
  s_sub[threadIdx.x] = sub;
  __syncthreads();
  if (threadIdx.x % kSubtilesPerLeaf == 0) {
    const std::int64_t l = st / kSubtilesPerLeaf;
    if (l < n_leaves) {
      double acc = 0;
      for (int s = 0; s < kSubtilesPerLeaf; ++s) acc = add(acc, s_sub[threadIdx.x + s]);
      leaf[l * leaf_width + leaf_width - 1] = acc;
    }
  }
}

/// Small n (fewer leaves than the GPU holds blocks): the tile kernel's blocks own fewer than 16
/// sub-tiles and write one row per sub-tile; leaf[l][e] = fold_subtiles of column e, for the
/// columns [0, cols) (W-strided rows on both sides).
static __global__ void __launch_bounds__(256)
    subtile_fold_kernel(const double* sub, std::int64_t n_subtiles, std::int64_t leaf_width,
                        std::int64_t cols, std::int64_t n_leaves, double* leaf) {
  const std::int64_t idx = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const std::int64_t l = idx / cols, e = idx % cols;
  if (l >= n_leaves) return;
  leaf[l * leaf_width + e] = fold_subtiles(sub + e, l, n_subtiles, leaf_width);
}

struct TreeArgs {
  double* v = nullptr;          ///< leaf rows, reduced in place
  std::int64_t width = 0;       ///< row width (W)
  std::int64_t e0 = 0, e1 = 0;  ///< columns reduced
  int t0 = 0;                   ///< tree level of the values combined by this launch
  NodeList nodes;
};

/// One step of the in-place node trees: for every node of level > t0, each group of kTreeGroup
/// consecutive level-t0 values (rows 2^t0 apart) becomes its subtree's value, in its first row.
/// Launched for t0 = 0, 4, 8, ... below the largest level; grid.y = node.
static __global__ void __launch_bounds__(256) tree_group_kernel(TreeArgs a) {
  const int j = blockIdx.y;
  const int l = a.nodes.level[j];
  if (l <= a.t0) return;
  const int span = l - a.t0 < kTreeGroupLevels ? l - a.t0 : kTreeGroupLevels;
  const std::int64_t count = std::int64_t{1} << span;
  const std::int64_t groups = std::int64_t{1} << (l - a.t0 - span);
  const std::int64_t cols = a.e1 - a.e0;
  const std::int64_t idx = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const std::int64_t g = idx / cols;
  if (g >= groups) return;
  const std::int64_t e = a.e0 + idx % cols;
  const std::int64_t step = std::int64_t{1} << a.t0;
  const std::int64_t row0 = a.nodes.local[j] + g * count * step;
  double* base = a.v + row0 * a.width + e;
  *base = tree_group_value(base, step * a.width, static_cast<int>(count));
}

/// The right fold n_0 + (n_1 + (... + n_{m-1})) of m values v[j * stride] (tree::right_fold).
KMEANS_HD inline double right_fold(const double* v, std::int64_t stride, int m) {
  double acc = m > 0 ? v[(m - 1) * stride] : 0.0;
  for (int j = m - 2; j >= 0; --j) acc = add(v[j * stride], acc);
  return acc;
}

struct FinishArgs {
  const double* leaf = nullptr;  ///< leaf rows reduced by tree_group_kernel
  std::int64_t leaf_width = 0;
  std::int64_t e0 = 0;           ///< first leaf column used (through leaf_width - 1)
  std::int64_t k = 0, d = 0;
  std::int64_t width = 0;        ///< node row width (k d + k + 1, or 1 without sums)
  NodeList nodes;
  double* out = nullptr;         ///< m node rows, or null: the totals instead
  double* totals = nullptr;      ///< the totals record (layout.cuh) when out is null
};

/// Leaf column e of the reduced node rows: to node row entry node_entry_of_leaf_column(e) of
/// every node (out), or their right fold to its totals entry (out null).
static __global__ void __launch_bounds__(256) finish_leaves_kernel(FinishArgs a) {
  const std::int64_t e = a.e0 + static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e >= a.leaf_width) return;
  const std::int64_t entry = node_entry_of_leaf_column(e, a.leaf_width, a.k, a.d, a.width);
  if (a.out) {
    for (int j = 0; j < a.nodes.m; ++j)
      a.out[j * a.width + entry] = a.leaf[a.nodes.local[j] * a.leaf_width + e];
    return;
  }
  double acc = 0;
  for (int j = a.nodes.m - 1; j >= 0; --j) {
    const double v = a.leaf[a.nodes.local[j] * a.leaf_width + e];
    acc = j == a.nodes.m - 1 ? v : add(v, acc);
  }
  a.totals[total_of_node_entry(entry, a.k, a.d, a.width)] = acc;
}

struct FoldArgs {
  const double* nodes = nullptr;  ///< m node rows
  int m = 0;
  std::int64_t width = 0;
  std::int64_t e0 = 0;            ///< first entry folded (through width - 1)
  std::int64_t k = 0, d = 0;
  double* totals = nullptr;       ///< the totals record (layout.cuh)
};

/// totals[entry] = the right fold of node-row entry e over the m nodes.
static __global__ void __launch_bounds__(256) fold_totals_kernel(FoldArgs a) {
  const std::int64_t e = a.e0 + static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e >= a.width) return;
  a.totals[total_of_node_entry(e, a.k, a.d, a.width)] = right_fold(a.nodes + e, a.width, a.m);
}

template <class T>
struct WalkArgs {
  const T* x = nullptr;
  const T* w = nullptr;
  const std::int32_t* order = nullptr;    ///< point indices sorted by label (stable)
  const std::int32_t* offsets = nullptr;  ///< k + 1 cluster starts in `order`
  int d = 0;
  int k = 0;
  int col_tile = 0;                       ///< tuning::sort_col_tile(d)
  std::int64_t first_block = 0;           ///< the shard's first global leaf
  std::int64_t n_leaves = 0;
  std::int64_t width = 0;                 ///< node row width (k d + k + 1)
  int m = 0;                              ///< nodes of the shard
  double* out = nullptr;                  ///< m node rows (sums and weights entries), or null:
  double* totals = nullptr;               ///< their right folds into the totals record
};

/// Sort path: block (c, y) walks cluster c's points (its run of the stably sorted order) for
/// the column tiles y, y + gridDim.y, ..., one window at a time. A window loads the next
/// kWalkChunk positions and splits them into leaf segments; when it holds complete leaves
/// (walk_window_leaves), lane l forms the values of its share of them (walk_lane_range,
/// sorted_leaf_value over the chunk); when one leaf runs past the chunk (a dense cluster), lane l
/// forms leaf L0 + l, its bounds found by binary search in the order. Lane 0 then pushes the
/// window's leaves in order onto its column's CanonStack (shared memory); at the end the stack
/// holds the shard's canonical nodes, written to out (or their right fold to totals).
template <class T>
__global__ void __launch_bounds__(tuning::kSortThreads) sorted_walk_kernel(WalkArgs<T> a) {
  constexpr int kThreads = tuning::kSortThreads;
  constexpr int kStride = tuning::kSortMaxColTile;
  static_assert(kWalkChunk == kThreads, "a thread loads one position of the chunk");
  __shared__ double s_val[kStackDepth * kStride];
  __shared__ unsigned char s_lvl[kStackDepth * kStride];
  __shared__ double s_leaf[kWalkValues];
  __shared__ std::int32_t s_pt[kWalkChunk];
  __shared__ int s_seg[kWalkChunk + 1];
  __shared__ int s_warp[kThreads / 32 + 1];
  __shared__ std::int64_t s_bound[kThreads + 1];
  const int c = blockIdx.x;
  const int tid = threadIdx.x;
  const int cit = tid % a.col_tile, lane = tid / a.col_tile;
  const int lanes = kThreads / a.col_tile;
  const std::int64_t d = a.d;
  const std::int64_t lo = a.offsets[c], hi = a.offsets[c + 1];
  const std::int64_t tiles = (d + 1 + a.col_tile - 1) / a.col_tile;
  for (std::int64_t tile = blockIdx.y; tile < tiles; tile += gridDim.y) {  // uniform per block
    const std::int64_t col = tile * a.col_tile + cit;
    const bool active = col <= d;
    CanonStack st;
    st.val = s_val + cit;
    st.lvl = s_lvl + cit;
    st.stride = kStride;
    st.reset(a.first_block);
    std::int64_t pos = lo;
    while (pos < hi) {  // uniform: every thread computes pos from the same shared values
      const int cnt = hi - pos < kWalkChunk ? static_cast<int>(hi - pos) : kWalkChunk;
      if (tid < cnt) s_pt[tid] = a.order[pos + tid];
      __syncthreads();
      // Segment starts (a position whose leaf differs from the one before), numbered by a
      // block-wide prefix count of the flags.
      const bool start =
          tid < cnt && (tid == 0 || (s_pt[tid] >> kLeafShift) != (s_pt[tid - 1] >> kLeafShift));
      const unsigned ballot = __ballot_sync(0xffffffffu, start);
      const int warp = tid / 32, wl = tid % 32;
      if (wl == 0) s_warp[warp + 1] = __popc(ballot);
      __syncthreads();
      if (tid == 0) {
        s_warp[0] = 0;
        for (int q = 1; q <= kThreads / 32; ++q) s_warp[q] += s_warp[q - 1];
      }
      __syncthreads();
      if (start) s_seg[s_warp[warp] + __popc(ballot & ((1u << wl) - 1u))] = tid;
      const int n_seg = s_warp[kThreads / 32];
      if (tid == 0) s_seg[n_seg] = cnt;
      __syncthreads();
      const int nl = walk_window_leaves(n_seg, pos + cnt == hi, a.col_tile);
      if (nl > 0) {  // complete leaves inside the chunk
        int i0 = 0, i1 = 0;
        walk_lane_range(lane, lanes, nl, i0, i1);
        for (int i = i0; i < i1; ++i)
          s_leaf[i * a.col_tile + cit] =
              active ? sorted_leaf_value(a.x, a.w, s_pt, s_seg[i], s_seg[i + 1], d, col) : 0.0;
        __syncthreads();
        if (lane == 0 && active)
          for (int i = 0; i < nl; ++i)
            st.push_leaf(a.first_block + (s_pt[s_seg[i]] >> kLeafShift),
                         s_leaf[i * a.col_tile + cit]);
        pos += s_seg[nl];
      } else {  // leaf L0 runs past the chunk: `lanes` leaves from L0, bounds by binary search
        const std::int64_t leaf0 = static_cast<std::int64_t>(s_pt[0]) >> kLeafShift;
        if (tid < lanes) {
          if (tid == 0) s_bound[0] = pos;
          s_bound[tid + 1] =
              pos + lower_bound_point(a.order + pos, hi - pos, (leaf0 + tid + 1) << kLeafShift);
        }
        __syncthreads();
        s_leaf[tid] = active ? sorted_leaf_value(a.x, a.w, a.order, s_bound[lane],
                                                 s_bound[lane + 1], d, col)
                             : 0.0;
        __syncthreads();
        if (lane == 0 && active)
          for (int l = 0; l < lanes; ++l)
            if (s_bound[l + 1] > s_bound[l])
              st.push_leaf(a.first_block + leaf0 + l, s_leaf[l * a.col_tile + cit]);
        pos = s_bound[lanes];
      }
      __syncthreads();  // the shared window state is rewritten by the next window
    }
    if (lane == 0 && active) {
      st.skip_to(a.first_block + a.n_leaves);
      const std::int64_t entry = col < d ? c * d + col : static_cast<std::int64_t>(a.k) * d + c;
      if (a.out)
        for (int j = 0; j < st.count && j < a.m; ++j) a.out[j * a.width + entry] = st.val[j * kStride];
      else
        a.totals[total_of_node_entry(entry, a.k, d, a.width)] = right_fold(st.val, kStride, st.count);
    }
  }
}

#endif  // __CUDACC__

}  // namespace kmeans::detail::canon
