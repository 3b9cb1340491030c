// SPDX-License-Identifier: Apache-2.0
// The fused tile kernel (distances + argmin + per-leaf partial sums in one read of the data)
// and the arithmetic every assignment path shares (the direct distance, the argmin steps).
// Device code and the __host__ __device__ helpers the host-side tests share; the GEMM path is in
// kernels/gemm_rank.cuh, the launches in src/cuda/.
#pragma once

#include <cub/block/block_radix_sort.cuh>
#include <cub/block/block_reduce.cuh>

#include <climits>
#include <cmath>
#include <cstdint>

#include "kernels/canonical.cuh"
#include "kernels/layout.cuh"
#include "kernels/tuning.cuh"

// Unrolling hint for device code; host compilers (the host-side tests) do not know the pragma.
#if defined(__CUDA_ARCH__)
#define KMEANS_UNROLL _Pragma("unroll")
#else
#define KMEANS_UNROLL
#endif

namespace kmeans::detail {

KMEANS_HD inline float fused_mul_add(float a, float b, float c) { return fmaf(a, b, c); }
KMEANS_HD inline double fused_mul_add(double a, double b, double c) { return fma(a, b, c); }

template <class T>
KMEANS_HD inline T positive_infinity() {
  return static_cast<T>(HUGE_VALF);
}

/// The argmin step: a strictly smaller distance replaces the best, so with candidates visited
/// in ascending index order a tie keeps the lowest index.
template <class T>
KMEANS_HD inline void argmin_update(T value, int index, T& best, int& best_index) {
  if (value < best) {
    best = value;
    best_index = index;
  }
}

/// Merging two argmin candidates that came from arbitrary index sets (warp lanes): the smaller
/// distance, ties to the lower index.
template <class T>
KMEANS_HD inline void argmin_merge(T value, int index, T& best, int& best_index) {
  if (value < best || (value == best && index < best_index)) {
    best = value;
    best_index = index;
  }
}

/// sum_j (a_j - b_j)^2 in T with fused multiply-adds, coordinate order 0..d-1: the direct
/// formula. Every assignment path writes this distance of the label it picks (the rankings of
/// kernels/tile_rank.cuh and kernels/gemm_rank.cuh recheck their candidates with it).
template <class T>
KMEANS_HD inline T squared_distance(const T* a, const T* b, std::int64_t d) {
  T s = 0;
  for (std::int64_t j = 0; j < d; ++j) {
    const T diff = a[j] - b[j];
    s = fused_mul_add(diff, diff, s);
  }
  return s;
}

/// One sub-tile's contribution to partial column `column` (layout::total_of_column): the
/// points of the column's cluster are the run of that label in the stably sorted keys, found
/// by binary search, and summed in point order in double from +0.0 (the weight itself for
/// col == d): the canonical sub-tile value (kernels/canonical.cuh, unfused arithmetic).
template <class T>
KMEANS_HD inline double column_partial(const int* sorted_keys, const int* sorted_points, int count,
                                       std::int64_t base, const T* x, const T* w, std::int64_t d,
                                       std::int64_t column) {
  const int c = static_cast<int>(column / (d + 1));
  const std::int64_t col = column - static_cast<std::int64_t>(c) * (d + 1);
  const int lo = layout::lower_bound(sorted_keys, count, c);
  const int hi = lo + layout::lower_bound(sorted_keys + lo, count - lo, c + 1);
  double acc = 0;
  for (int q = lo; q < hi; ++q) acc = canon::add(acc, canon::term(x, w, base + sorted_points[q], d, col));
  return acc;
}

}  // namespace kmeans::detail

#include "kernels/tile_rank.cuh"  // the tile kernel's ranking (uses the arithmetic above)

namespace kmeans::detail {

#if defined(__CUDACC__)

/// Stores point i's label and distance and adds its (weighted) distance and whether its label
/// changed to the thread's running SSE and changed count: the last step of both assign kernels.
template <class T, class Index>
__device__ inline void record_assignment(std::int32_t* labels, T* dist, const T* w, Index i,
                                         int label, T best, double& sse, double& changed) {
  const std::int32_t old = labels[i];
  labels[i] = label;
  dist[i] = best;
  const double wi = w ? static_cast<double>(w[i]) : 1.0;
  sse += wi * static_cast<double>(best);
  changed += old != label ? 1.0 : 0.0;
}

/// The end of a warp-per-row assign kernel (GEMM and TF32 paths): lane 0 of each warp holds its
/// warp's SSE and changed count; thread 0 adds the warps in order and writes the block's totals
/// to column `blk` of the partial buffer (n_blocks columns). s_sse and s_changed are the block's
/// shared arrays of kWarps entries. Contains a __syncthreads: every thread must call it.
template <int kWarps>
__device__ inline void write_block_totals(double* s_sse, double* s_changed, int warp, int lane,
                                          double sse, double changed, double* partials,
                                          std::int64_t blk, std::int64_t n_blocks) {
  if (lane == 0) {
    s_sse[warp] = sse;
    s_changed[warp] = changed;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    double bs = 0, bc = 0;
    for (int q = 0; q < kWarps; ++q) {  // warp order: deterministic
      bs += s_sse[q];
      bc += s_changed[q];
    }
    partials[layout::partial_slot(layout::kTotalSse, blk, n_blocks)] = bs;
    partials[layout::partial_slot(layout::kTotalChanged, blk, n_blocks)] = bc;
  }
}

/// Arguments of assign_tile_kernel (by value: one struct, one launch signature).
template <class T>
struct AssignArgs {
  const T* x = nullptr;        ///< n x d data (device).
  const T* w = nullptr;        ///< n weights or null.
  const T* c = nullptr;        ///< k x d centroids (device).
  int n = 0;
  int d = 0;
  int k = 0;
  int k_tile = 0;              ///< centroids per shared-memory tile (multiple of kRegTile)
  int subtiles_per_block = 0;  ///< sub-tiles of kAssignThreads points per block
  int n_blocks = 0;            ///< grid size = stride of the partial buffer
  int sort_bits = 0;           ///< radix bits of a label in [0, k]
  bool with_partials = false;  ///< also write per-leaf weights and sums
  std::int32_t* labels = nullptr;  ///< in: previous labels (-1 = none), out: new labels
  T* dist = nullptr;               ///< out: squared distance to the chosen centroid
  double* partials = nullptr;      ///< out: [entry][block] per-block SSE and changed count
  double* leaf_sums = nullptr;     ///< out (with_partials): leaf l's column e at l * leaf_width + e
  std::int64_t leaf_width = 0;
  bool subtile_rows = false;       ///< leaf_sums holds one row per sub-tile instead (small n)
  TileBound bound;                 ///< tile_bound_terms<T>(d): the ranking's rounding bound
};

/// The fused assignment pass. Block b owns sub-tiles [b * spb, (b + 1) * spb) of 256 points; each
/// thread labels one point per sub-tile: it ranks all centroids (kernels/tile_rank.cuh: ranking
/// tiles in shared memory read by 16-byte broadcast loads, TileRank::kLanes running rankings and
/// for d <= kRowRegs the centred row in registers), computes the direct distance of the choice,
/// and where the bound leaves a rival its warp computes the point's direct argmin over all k
/// centroids; labels and distances are those of the direct formula.
/// With partials (spb a multiple of 16: whole leaves; or, with
/// subtile_rows, any spb and one row per sub-tile, folded into leaves by subtile_fold_kernel), the
/// sub-tile's labels are radix-sorted (stable) so each (cluster, column) accumulator - owned by
/// one thread for the whole block - adds its cluster's sub-tile sum (in point order, in double
/// from +0.0) to the leaf's value, ((0 + S_0) + S_1) + ...: the canonical leaf value
/// (kernels/canonical.cuh), written to leaf_sums as each leaf ends. At the end the block writes
/// its SSE and changed count to column b of the partial buffer (the engine takes only the
/// changed count, exact in any order, from there). No atomics; the leaf values do not depend on
/// the grid.
template <class T>
__global__ void __launch_bounds__(tuning::kAssignThreads, tuning::assign_min_blocks(sizeof(T)))
    assign_tile_kernel(AssignArgs<T> a) {
  constexpr int kThreads = tuning::kAssignThreads;
  using BlockSort = cub::BlockRadixSort<int, kThreads, 1, int>;
  using BlockSum = cub::BlockReduce<double, kThreads>;
  __shared__ union {
    typename BlockSort::TempStorage sort;
    typename BlockSum::TempStorage sum;
  } s_tmp;
  __shared__ int s_key[kThreads];
  __shared__ int s_point[kThreads];
  extern __shared__ __align__(16) unsigned char s_dyn[];

  const int tid = threadIdx.x;
  const std::int64_t d = a.d;
  const std::int64_t columns = a.with_partials ? tuning::partial_columns(a.k, d) : 0;
  double* s_acc = reinterpret_cast<double*>(s_dyn);
  T* s_tile = reinterpret_cast<T*>(s_dyn + tuning::round_up(columns * 8, 16));

  for (std::int64_t e = tid; e < columns; e += kThreads) s_acc[e] = 0;
  const bool one_tile = a.k_tile >= a.k;
  if (one_tile) build_rank_tile(s_tile, a.c, 0, a.k, a.d, a.k_tile, tid, kThreads);
  __syncthreads();
  const bool in_regs = a.d <= TileRank<T>::kRowRegs;
  const int lane = tid % 32;

  const std::int64_t first = static_cast<std::int64_t>(blockIdx.x) * a.subtiles_per_block;
  const std::int64_t n_subtiles = (static_cast<std::int64_t>(a.n) + kThreads - 1) / kThreads;
  const std::int64_t last = first + a.subtiles_per_block < n_subtiles
                                ? first + a.subtiles_per_block
                                : n_subtiles;
  double sse = 0;
  double changed = 0;
  for (std::int64_t st = first; st < last; ++st) {
    const std::int64_t base = st * kThreads;
    const std::int64_t i = base + tid;
    const bool valid = i < a.n;
    const T* xi = a.x + (valid ? i : 0) * d;
    T nx[TileRank<T>::kRowRegs];
    if (valid && in_regs) load_centred_row(xi, a.c, 0, a.d, nx);
    RankState<T> rank;
    for (int c0 = 0; c0 < a.k; c0 += a.k_tile) {
      const int count = a.k - c0 < a.k_tile ? a.k - c0 : a.k_tile;
      if (!one_tile) {
        __syncthreads();
        build_rank_tile(s_tile, a.c, c0, count, a.d, a.k_tile, tid, kThreads);
        __syncthreads();
      }
      if (valid) rank_tile(nx, in_regs, xi, a.c, s_tile, a.d, c0, count, rank);
    }
    // The direct distance of the ranking's choice; a rival within the bound (or a value that is
    // not finite) sends the point to its warp, which computes its direct argmin over all k.
    int label = rank.index;
    T best = valid ? squared_distance(xi, a.c + static_cast<std::int64_t>(label) * d, d) : T(0);
    const bool rival = valid && tile_has_rival(a.bound, static_cast<double>(rank.best),
                                               static_cast<double>(best),
                                               static_cast<double>(rank.second));
    unsigned pending = __ballot_sync(0xffffffffu, rival);  // whole warps: 256 threads, no exits
    while (pending != 0) {
      const int src = __ffs(pending) - 1;
      pending &= pending - 1;
      const std::int64_t ip = base + (tid - lane) + src;
      T v = positive_infinity<T>();
      int vi = INT_MAX;
      direct_argmin_part(a.x + ip * d, a.c, a.k, d, lane, 32, v, vi);
      for (int off = 16; off > 0; off /= 2) {
        const T ov = __shfl_xor_sync(0xffffffffu, v, off);
        const int oi = __shfl_xor_sync(0xffffffffu, vi, off);
        argmin_merge(ov, oi, v, vi);
      }
      if (lane == src) {
        label = vi == INT_MAX ? 0 : vi;  // no distance below +inf: the direct loop's (0, +inf)
        best = vi == INT_MAX ? positive_infinity<T>() : v;
      }
    }
    if (valid) {
      record_assignment(a.labels, a.dist, a.w, i, label, best, sse, changed);
    }
    if (a.with_partials) {
      int key[1] = {valid ? label : a.k};  // k sorts after every real cluster
      int point[1] = {tid};
      BlockSort(s_tmp.sort).Sort(key, point, 0, a.sort_bits);
      s_key[tid] = key[0];
      s_point[tid] = point[0];
      __syncthreads();
      // Each thread owns its columns e for the whole block: no barrier around s_acc.
      const bool leaf_ends =
          a.subtile_rows || (st + 1) % canon::kSubtilesPerLeaf == 0 || st + 1 == last;
      double* leaf_row =
          a.leaf_sums + (a.subtile_rows ? st : st / canon::kSubtilesPerLeaf) * a.leaf_width;
      for (std::int64_t e = tid; e < columns; e += kThreads) {
        const double v =
            canon::add(s_acc[e], column_partial(s_key, s_point, kThreads, base, a.x, a.w, d, e));
        if (leaf_ends) {
          leaf_row[e] = v;
          s_acc[e] = 0;
        } else {
          s_acc[e] = v;
        }
      }
      __syncthreads();  // s_key, s_point and the sort scratch are reused by the next sub-tile
    }
  }

  const std::int64_t nb = a.n_blocks;
  const double block_sse = BlockSum(s_tmp.sum).Sum(sse);
  __syncthreads();
  const double block_changed = BlockSum(s_tmp.sum).Sum(changed);
  if (tid == 0) {
    a.partials[layout::partial_slot(layout::kTotalSse, blockIdx.x, nb)] = block_sse;
    a.partials[layout::partial_slot(layout::kTotalChanged, blockIdx.x, nb)] = block_changed;
  }
}

#endif  // __CUDACC__

}  // namespace kmeans::detail
