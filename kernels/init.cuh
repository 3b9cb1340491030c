// SPDX-License-Identifier: Apache-2.0
// Initialisation on the GPU (DataOps in src/engine.hpp): greedy k-means++ kept on the device
// from the first draw to the last, and the distance loops of k-means||.
//
// Every value is the host's (src/init.cpp) bit for bit: distances are exact_squared_distance
// (kernels/distances.cuh); products and sums use explicitly rounded operations in the host's
// order: per block of kReduceBlock points in point order (one thread per block), then across
// blocks in block order (one thread). Those sequential sums are latency-bound, but they touch
// each value once and run over n / 4096 threads; the distances, d times more work, run over
// every point in parallel. The sequential loops are unrolled so that their loads issue ahead of
// the add chain; the additions stay in order (unrolling reorders no arithmetic).
#pragma once

#include <math_constants.h>

#include <cstdint>

#include "kernels/distances.cuh"

namespace kmeans::detail {

#if defined(__CUDACC__)

/// The host's weight_of: w[i], or 1 when there are no weights.
template <class T>
__device__ inline double weight_at(const T* w, std::int64_t i) {
  return w ? static_cast<double>(w[i]) : 1.0;
}

/// Prefix sums, step 1 (a thread per block of `block` points): cumsum[i] = the sum over the
/// block's points up to i of w_j * v_j (v null: 1), and block_total[b] = the block's sum.
template <class T>
__global__ void block_prefix_kernel(const double* __restrict__ v, const T* __restrict__ w,
                                    std::int64_t n, std::int64_t block, std::int64_t n_blocks,
                                    double* __restrict__ cumsum, double* __restrict__ block_total) {
  const std::int64_t b = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (b >= n_blocks) return;
  const std::int64_t end = min(n, (b + 1) * block);
  double s = 0;
#pragma unroll 8
  for (std::int64_t i = b * block; i < end; ++i) {
    s = __dadd_rn(s, __dmul_rn(weight_at(w, i), v ? v[i] : 1.0));
    cumsum[i] = s;
  }
  block_total[b] = s;
}

/// Prefix sums, step 2 (one thread): offsets[b] = the block totals before b summed in block
/// order; *total = the last prefix sum, formed as the host forms it.
static __global__ void block_offsets_kernel(const double* __restrict__ block_total,
                                            std::int64_t n_blocks, double* __restrict__ offsets,
                                            double* __restrict__ total) {
  if (blockIdx.x != 0 || threadIdx.x != 0) return;
  double offset = 0;
#pragma unroll 8
  for (std::int64_t b = 0; b < n_blocks; ++b) {
    offsets[b] = offset;
    offset = __dadd_rn(offset, block_total[b]);
  }
  *total = n_blocks == 1 ? block_total[0]
                         : __dadd_rn(block_total[n_blocks - 1], offsets[n_blocks - 1]);
}

/// Prefix sums, step 3: every point after the first block gets its block's offset.
static __global__ void add_offsets_kernel(double* __restrict__ cumsum, std::int64_t n,
                                          std::int64_t block, const double* __restrict__ offsets) {
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = block + static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
       i < n; i += stride)
    cumsum[i] = __dadd_rn(cumsum[i], offsets[i / block]);
}

/// Draws: out[t] = the first index whose prefix sum is >= u[t] * (*total), clipped to n - 1
/// (std::lower_bound; numpy's searchsorted, side="left").
static __global__ void search_kernel(const double* __restrict__ cumsum, std::int64_t n,
                                     const double* __restrict__ u, int count,
                                     const double* __restrict__ total,
                                     std::int64_t* __restrict__ out) {
  const int t = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (t >= count) return;
  const double r = __dmul_rn(u[t], *total);
  std::int64_t lo = 0, hi = n;
  while (lo < hi) {
    const std::int64_t mid = lo + (hi - lo) / 2;
    if (cumsum[mid] < r)
      lo = mid + 1;
    else
      hi = mid;
  }
  out[t] = lo < n - 1 ? lo : n - 1;
}

/// closest[i] = |x_i - x_first|^2 with first = *first_index.
template <class T>
__global__ void first_closest_kernel(const T* __restrict__ x, std::int64_t n, int d,
                                     const std::int64_t* __restrict__ first_index,
                                     double* __restrict__ closest) {
  const T* c = x + *first_index * d;
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride)
    closest[i] = exact_squared_distance(x + i * d, c, d);
}

/// out[t * n + i] = min(closest[i], |x_i - x_cand[t]|^2) for every point i and trial t.
template <class T>
__global__ void trial_distances_kernel(const T* __restrict__ x, std::int64_t n, int d,
                                       const std::int64_t* __restrict__ cand, int trials,
                                       const double* __restrict__ closest,
                                       double* __restrict__ out) {
  const std::int64_t total = n * trials;
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t e = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
       e < total; e += stride) {
    const std::int64_t t = e / n;
    const std::int64_t i = e - t * n;
    const double s = exact_squared_distance(x + i * d, x + cand[t] * d, d);
    const double c = closest[i];
    out[e] = s < c ? s : c;  // std::min(c, s)
  }
}

/// block_sum[t * n_blocks + b] = the sum over block b, in point order, of w_i * dist[t * n + i]
/// (a thread per trial and block).
template <class T>
__global__ void trial_block_sums_kernel(const double* __restrict__ dist, const T* __restrict__ w,
                                        std::int64_t n, std::int64_t block, std::int64_t n_blocks,
                                        int trials, double* __restrict__ block_sum) {
  const std::int64_t e = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e >= n_blocks * trials) return;
  const std::int64_t t = e / n_blocks;
  const std::int64_t b = e - t * n_blocks;
  const double* dt = dist + t * n;
  const std::int64_t end = min(n, (b + 1) * block);
  double s = 0;
#pragma unroll 8
  for (std::int64_t i = b * block; i < end; ++i) s = __dadd_rn(s, __dmul_rn(weight_at(w, i), dt[i]));
  block_sum[e] = s;
}

/// One k-means++ step's choice (one block of 32 threads; trials <= 32): each trial's potential
/// is its block sums added in block order; the smallest wins (ties: the earliest trial).
/// *chosen = cand[best], *best_out = best.
static __global__ void choose_trial_kernel(const double* __restrict__ block_sum,
                                           std::int64_t n_blocks, int trials,
                                           const std::int64_t* __restrict__ cand,
                                           std::int64_t* __restrict__ chosen,
                                           int* __restrict__ best_out) {
  __shared__ double potential[32];
  const int t = static_cast<int>(threadIdx.x);
  if (t < trials) {
    double s = 0;
#pragma unroll 8
    for (std::int64_t b = 0; b < n_blocks; ++b) s = __dadd_rn(s, block_sum[t * n_blocks + b]);
    potential[t] = s;
  }
  __syncthreads();
  if (t == 0) {
    int best = 0;
    for (int u = 1; u < trials; ++u)
      if (potential[u] < potential[best]) best = u;
    *chosen = cand[best];
    *best_out = best;
  }
}

/// closest[i] = dist[*best * n + i]: the winning trial's distances become the current ones.
static __global__ void take_trial_kernel(const double* __restrict__ dist, std::int64_t n,
                                         const int* __restrict__ best,
                                         double* __restrict__ closest) {
  const double* src = dist + static_cast<std::int64_t>(*best) * n;
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride)
    closest[i] = src[i];
}

/// k-means||: closest[i] = min(closest[i], min over c in [0, m) of |x_i - x_idx[c]|^2).
template <class T>
__global__ void lower_closest_kernel(const T* __restrict__ x, std::int64_t n, int d,
                                     const std::int64_t* __restrict__ idx, std::int64_t m,
                                     double* __restrict__ closest) {
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride) {
    double c = closest[i];
    for (std::int64_t j = 0; j < m; ++j) {
      const double s = exact_squared_distance(x + i * d, x + idx[j] * d, d);
      c = s < c ? s : c;
    }
    closest[i] = c;
  }
}

/// k-means||: out[i] = the c minimising |x_i - x_idx[c]|^2, ties to the lowest c.
template <class T>
__global__ void nearest_kernel(const T* __restrict__ x, std::int64_t n, int d,
                               const std::int64_t* __restrict__ idx, std::int64_t m,
                               std::int64_t* __restrict__ out) {
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride) {
    double best = CUDART_INF;
    std::int64_t arg = 0;
    for (std::int64_t j = 0; j < m; ++j) {
      const double s = exact_squared_distance(x + i * d, x + idx[j] * d, d);
      if (s < best) {
        best = s;
        arg = j;
      }
    }
    out[i] = arg;
  }
}

/// The host's mean_feature_variance, one pass (a thread per block of points and feature):
/// part[b * d + j] = the sum over block b, in point order, of x_ij (mean null) or of
/// (x_ij - mean_j)^2.
template <class T>
__global__ void block_column_sums_kernel(const T* __restrict__ x, std::int64_t n, std::int64_t d,
                                         std::int64_t block, std::int64_t n_blocks,
                                         const double* __restrict__ mean,
                                         double* __restrict__ part) {
  const std::int64_t e = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e >= n_blocks * d) return;
  const std::int64_t b = e / d;
  const std::int64_t j = e - b * d;
  const std::int64_t end = min(n, (b + 1) * block);
  double acc = 0;
  if (mean) {
    const double m = mean[j];
    for (std::int64_t i = b * block; i < end; ++i) {
      const double dv = __dsub_rn(static_cast<double>(x[i * d + j]), m);
      acc = __dadd_rn(acc, __dmul_rn(dv, dv));
    }
  } else {
    for (std::int64_t i = b * block; i < end; ++i)
      acc = __dadd_rn(acc, static_cast<double>(x[i * d + j]));
  }
  part[e] = acc;
}

/// out[c * d + j] = x[idx[c] * d + j]: rows gathered for the host.
template <class T>
__global__ void gather_rows_kernel(const T* __restrict__ x, int d,
                                   const std::int64_t* __restrict__ idx, std::int64_t m,
                                   T* __restrict__ out) {
  const std::int64_t total = m * d;
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t e = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
       e < total; e += stride) {
    const std::int64_t c = e / d;
    out[e] = x[idx[c] * d + (e - c * d)];
  }
}

#endif  // __CUDACC__

}  // namespace kmeans::detail
