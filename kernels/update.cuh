// SPDX-License-Identifier: Apache-2.0
// Update-phase kernels of the sort path (per-cluster sums once the points are sorted by label)
// and the data mean of the GEMM path's centring. The per-block partials of the fused path are
// reduced by cub::DeviceSegmentedReduce directly (src/cuda/passes.cu). No floating-point atomics.
#pragma once

#include <cmath>
#include <cstdint>

#include "kernels/layout.cuh"
#include "kernels/tuning.cuh"

namespace kmeans::detail {

/// Column mapping of the per-cluster sum kernel: thread t of a block covers column
/// col_tile_index * col_tile + t % col_tile (of the d + 1 columns: coordinates, then the weight)
/// and the rows q = lo + t / col_tile, stepping by kSortThreads / col_tile.
KMEANS_HD constexpr int sort_lanes(int col_tile) { return tuning::kSortThreads / col_tile; }

#if defined(__CUDACC__)

static __global__ void iota_kernel(std::int32_t* out, int n) {
  const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) out[i] = static_cast<std::int32_t>(i);
}

/// offsets[c] = first position of label c in the sorted labels, for c in [0, k] (offsets[k] = n):
/// a binary search per cluster, so empty clusters get empty ranges.
static __global__ void cluster_offsets_kernel(const std::int32_t* sorted, int n, int k,
                                              std::int32_t* offsets) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c <= k) offsets[c] = layout::lower_bound(sorted, n, c);
}

template <class T>
struct ClusterSumArgs {
  const T* x = nullptr;
  const T* w = nullptr;
  const std::int32_t* order = nullptr;    ///< point indices sorted by label (stable)
  const std::int32_t* offsets = nullptr;  ///< k + 1 cluster starts in `order`
  int d = 0;
  int k = 0;
  int col_tile = 0;                       ///< tuning::sort_col_tile(d)
  double* totals = nullptr;               ///< out: weights and sums (layout::total_*)
};

/// Sort path: block (c, y) sums the column tiles y, y + gridDim.y, ... (columns
/// [tile * col_tile, (tile + 1) * col_tile) of the d + 1) of cluster c's points in sorted
/// (= index) order. Each lane takes every lanes-th point of the cluster in double, then lane 0
/// adds the lanes in order: a fixed order for a given d and cluster size.
template <class T>
__global__ void __launch_bounds__(tuning::kSortThreads) cluster_sums_kernel(ClusterSumArgs<T> a) {
  __shared__ double s_part[tuning::kSortThreads];
  const int c = blockIdx.x;
  const int col_in_tile = threadIdx.x % a.col_tile, lane = threadIdx.x / a.col_tile;
  const int lanes = sort_lanes(a.col_tile);
  const std::int64_t d = a.d;
  const std::int64_t lo = a.offsets[c], hi = a.offsets[c + 1];
  const std::int64_t tiles = (d + 1 + a.col_tile - 1) / a.col_tile;
  for (std::int64_t tile = blockIdx.y; tile < tiles; tile += gridDim.y) {  // uniform per block
    const std::int64_t col = tile * a.col_tile + col_in_tile;
    double acc = 0;
    if (col <= d) {
      for (std::int64_t q = lo + lane; q < hi; q += lanes) {
        const std::int64_t p = a.order[q];
        const double w = a.w ? static_cast<double>(a.w[p]) : 1.0;
        acc += col < d ? w * static_cast<double>(a.x[p * d + col]) : w;
      }
    }
    s_part[threadIdx.x] = acc;
    __syncthreads();
    if (lane == 0 && col <= d) {
      double s = 0;
      for (int l = 0; l < lanes; ++l) s += s_part[l * a.col_tile + col_in_tile];
      a.totals[col < d ? layout::total_sum(c, col, a.k, d) : layout::total_weight(c)] = s;
    }
    __syncthreads();  // s_part is rewritten by the next tile
  }
}

/// Data mean, first step: block (x, y) sums columns [x * col_tile, (x + 1) * col_tile) over
/// rows [y * rows_per_chunk, (y + 1) * rows_per_chunk) in double into partial[y * d + col]
/// (lanes strided over the rows, then added in lane order: fixed order).
template <class T>
__global__ void __launch_bounds__(tuning::kSortThreads)
    column_sums_kernel(const T* x, std::int64_t n, std::int64_t d, std::int64_t rows_per_chunk,
                       int col_tile, double* partial) {
  __shared__ double s_part[tuning::kSortThreads];
  const int col_in_tile = threadIdx.x % col_tile, lane = threadIdx.x / col_tile;
  const int lanes = sort_lanes(col_tile);
  const std::int64_t col = static_cast<std::int64_t>(blockIdx.x) * col_tile + col_in_tile;
  const std::int64_t r0 = static_cast<std::int64_t>(blockIdx.y) * rows_per_chunk;
  const std::int64_t r1 = r0 + rows_per_chunk < n ? r0 + rows_per_chunk : n;
  double acc = 0;
  if (col < d)
    for (std::int64_t r = r0 + lane; r < r1; r += lanes) acc += static_cast<double>(x[r * d + col]);
  s_part[threadIdx.x] = acc;
  __syncthreads();
  if (lane == 0 && col < d) {
    double s = 0;
    for (int l = 0; l < lanes; ++l) s += s_part[l * col_tile + col_in_tile];
    partial[static_cast<std::int64_t>(blockIdx.y) * d + col] = s;
  }
}

/// Data mean, second step: mean[j] = (sum over chunks, in chunk order, of partial) / n.
static __global__ void column_means_kernel(const double* partial, std::int64_t chunks,
                                           std::int64_t d, std::int64_t n, double* mean) {
  const std::int64_t j = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= d) return;
  double s = 0;
  for (std::int64_t c = 0; c < chunks; ++c) s += partial[c * d + j];
  mean[j] = s / static_cast<double>(n);
}

#endif  // __CUDACC__

}  // namespace kmeans::detail
