// SPDX-License-Identifier: Apache-2.0
// Update-phase helpers of the sort path (point indices, cluster ranges once the points are sorted
// by label) and the data mean of the GEMM path's centring. The sums themselves, on every path,
// are formed in the canonical order by kernels/canonical.cuh. No floating-point atomics.
#pragma once

#include <cmath>
#include <cstdint>

#include "kernels/layout.cuh"
#include "kernels/tuning.cuh"

namespace kmeans::detail {

/// Column mapping of the column-tiled kernels (sorted_walk_kernel, column_sums_kernel): thread t
/// of a block covers column col_tile_index * col_tile + t % col_tile and lane t / col_tile of
/// kSortThreads / col_tile.
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
