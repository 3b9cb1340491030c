// SPDX-License-Identifier: Apache-2.0
// The GEMM path's assignment: centroids centred on the data mean, the ranking of cuBLAS products
// x.c' with its proven error bound, and the exact distances of the candidates it leaves
// (gemm_argmin_kernel). Device code and the __host__ __device__ helpers the host-side tests
// share; the launches live in src/cuda/passes.cu.
#pragma once

#include <climits>
#include <cmath>
#include <cstdint>

#include "kernels/assign.cuh"
#include "kernels/layout.cuh"
#include "kernels/tuning.cuh"

namespace kmeans::detail {

// ---- GEMM path: centred ranking ---------------------------------------------------------------
// With m the data mean and c' = c - m (rounded to T), ||x - c||^2 = ||x - m||^2 - 2 x'.c' +
// |c'|^2 up to the rounding of c', and x'.c' = x.c' - m.c'. Ranking by
// score_c = |c'|^2 / 2 + m.c' - x.c' therefore needs only the GEMM x.c' of the uncentred data
// (no copy of it); unlike ||x||^2 - 2 x.c + ||c||^2 it does not cancel catastrophically when
// the data sit far from the origin. The GEMM still rounds x.c' at the scale |x| |c'|, so each
// score carries an error bound e_c = slope_c ||x|| + base_c; every centroid whose score might
// be the smallest (score_c - e_c <= min over c of score_c + e_c) gets its exact distance
// (squared_distance), and the smallest exact distance wins, ties to the lowest index.

/// The per-centroid constants of the ranking, stored [bias | slope | base], k each.
struct GemmTermsView {
  const double* bias = nullptr;   ///< |c'|^2 / 2 + m.c'
  const double* slope = nullptr;  ///< error bound per unit of ||x||: gamma |c'|
  const double* base = nullptr;   ///< error bound of the bias: gamma_bias (|m| |c'| + |c'|^2)
};

/// Centroid centring, the part owned by lane `lane` of `lanes`: writes out[q] = c[q] - mean[q]
/// (rounded to T) for q = lane, lane + lanes, ... and adds the |c'|^2 and m.c' of those
/// coordinates, in double from the rounded values, to norm and mc.
template <class T>
KMEANS_HD inline void centre_centroid_part(const T* c, const double* mean, std::int64_t d, int lane,
                                           int lanes, T* out, double& norm, double& mc) {
  for (std::int64_t q = lane; q < d; q += lanes) {
    const T cq = static_cast<T>(static_cast<double>(c[q]) - mean[q]);
    out[q] = cq;
    const double v = static_cast<double>(cq);
    norm += v * v;
    mc += mean[q] * v;
  }
}

/// Ranking constants of one centroid from |c'|^2 (norm), m.c' (mc) and |m|. gamma_t bounds the
/// GEMM's rounding of x.c' (tuning::gemm_error_gamma), gamma_bias that of the bias and of c'
/// itself (tuning::gemm_bias_gamma); a negative gamma makes every centroid a candidate.
KMEANS_HD inline void gemm_terms(double norm, double mc, double mean_norm, double gamma_t,
                                 double gamma_bias, double& bias, double& slope, double& base) {
  bias = 0.5 * norm + mc;
  if (gamma_t < 0 || gamma_bias < 0) {
    slope = 0;
    base = positive_infinity<double>();
    return;
  }
  const double cn = sqrt(norm);
  slope = gamma_t * cn;
  base = gamma_bias * (mean_norm * cn + norm);
}

/// One row of GEMM products g[c] = x.c'_c (c in [0, k)) and what its bound needs.
template <class T>
struct GemmRow {
  const T* g = nullptr;
  int k = 0;
  double x_norm = 0;  ///< ||x||
};

/// The smallest upper bound score_c + e_c over the centroids c = lane, lane + lanes, ...
template <class T>
KMEANS_HD inline double gemm_row_bound(const GemmRow<T>& row, const GemmTermsView& t, int lane,
                                       int lanes) {
  double bound = positive_infinity<double>();
  for (int c = lane; c < row.k; c += lanes) {
    const double upper =
        t.bias[c] - static_cast<double>(row.g[c]) + (t.slope[c] * row.x_norm + t.base[c]);
    if (upper < bound) bound = upper;
  }
  return bound;
}

/// Among the centroids c = lane, lane + lanes, ... whose lower bound score_c - e_c is at most
/// `bound`, the smallest exact distance (squared_distance against the uncentred centroids
/// c, k x d), ties to the lowest index; updates (best, best_index).
template <class T>
KMEANS_HD inline void gemm_row_pick(const GemmRow<T>& row, const GemmTermsView& t, double bound,
                                    const T* x, const T* c, std::int64_t d, int lane, int lanes,
                                    T& best, int& best_index) {
  for (int cc = lane; cc < row.k; cc += lanes) {
    const double lower =
        t.bias[cc] - static_cast<double>(row.g[cc]) - (t.slope[cc] * row.x_norm + t.base[cc]);
    if (lower <= bound)
      argmin_update(squared_distance(x, c + static_cast<std::int64_t>(cc) * d, d), cc, best,
                    best_index);
  }
}

#if defined(__CUDACC__)

/// Arguments of gemm_argmin_kernel: one chunk of rows [row0, row0 + rows) whose products with
/// every centred centroid, g[r * k + c] = x_(row0+r) . c'_c, cuBLAS has just written.
template <class T>
struct GemmArgminArgs {
  const T* x = nullptr;
  const T* w = nullptr;
  const T* c = nullptr;       ///< k x d centroids (uncentred: the exact distances)
  GemmTermsView terms;        ///< from centre_centroids_kernel
  const T* g = nullptr;       ///< rows x k, x.c'
  int n = 0;
  int d = 0;
  int k = 0;
  int row0 = 0;               ///< a multiple of kGemmRowsPerBlock
  int rows = 0;
  int n_blocks = 0;           ///< stride of the partial buffer: ceil(n / kGemmRowsPerBlock)
  std::int32_t* labels = nullptr;
  T* dist = nullptr;
  double* partials = nullptr;
};

/// The centred ranking (see GemmTermsView), a warp per row: the bound over all centroids
/// (warp minimum), then the exact distances of the candidates and their argmin (warp merge by
/// value then index: ties to the lowest index). Writes the label, the exact distance and the
/// block's SSE and changed count to its column of the partial buffer.
template <class T>
__global__ void __launch_bounds__(tuning::kGemmThreads) gemm_argmin_kernel(GemmArgminArgs<T> a) {
  constexpr int kWarps = tuning::kGemmThreads / 32;
  __shared__ double s_sse[kWarps];
  __shared__ double s_changed[kWarps];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const std::int64_t d = a.d;
  double sse = 0, changed = 0;
  for (int r = warp; r < tuning::kGemmRowsPerBlock; r += kWarps) {
    const int local = blockIdx.x * tuning::kGemmRowsPerBlock + r;
    if (local >= a.rows) break;  // uniform in the warp
    const std::int64_t i = static_cast<std::int64_t>(a.row0) + local;
    const T* xi = a.x + i * d;
    double xx = 0;
    for (std::int64_t j = lane; j < d; j += 32) {
      const double v = static_cast<double>(xi[j]);
      xx += v * v;
    }
    for (int off = 16; off > 0; off /= 2) xx += __shfl_xor_sync(0xffffffffu, xx, off);
    GemmRow<T> row;
    row.g = a.g + static_cast<std::int64_t>(local) * a.k;
    row.k = a.k;
    row.x_norm = sqrt(xx);
    double bound = gemm_row_bound(row, a.terms, lane, 32);
    for (int off = 16; off > 0; off /= 2) {
      const double other = __shfl_xor_sync(0xffffffffu, bound, off);
      if (other < bound) bound = other;
    }
    T best = positive_infinity<T>();
    int label = INT_MAX;
    gemm_row_pick(row, a.terms, bound, xi, a.c, d, lane, 32, best, label);
    for (int off = 16; off > 0; off /= 2) {
      const T other = __shfl_xor_sync(0xffffffffu, best, off);
      const int other_label = __shfl_xor_sync(0xffffffffu, label, off);
      argmin_merge(other, other_label, best, label);
    }
    if (lane == 0) {
      if (label == INT_MAX) {  // every candidate's distance overflowed: like the tile kernel
        label = 0;
        best = squared_distance(xi, a.c, d);
      }
      record_assignment(a.labels, a.dist, a.w, i, label, best, sse, changed);
    }
  }
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
    const std::int64_t b = a.row0 / tuning::kGemmRowsPerBlock + blockIdx.x;
    a.partials[layout::partial_slot(layout::kTotalSse, b, a.n_blocks)] = bs;
    a.partials[layout::partial_slot(layout::kTotalChanged, b, a.n_blocks)] = bc;
  }
}

/// Arguments of centre_centroids_kernel.
template <class T>
struct CentreArgs {
  const T* c = nullptr;         ///< k x d centroids
  const double* mean = nullptr; ///< d data means
  int k = 0;
  int d = 0;
  const double* mean_norm = nullptr;  ///< |m| (device scalar: data-dependent, not baked into graphs)
  double gamma_t = 0;           ///< tuning::gemm_error_gamma(d, sizeof(T))
  double gamma_bias = 0;        ///< tuning::gemm_bias_gamma(d, sizeof(T))
  T* centred = nullptr;         ///< out: k x d, c' = c - m (the GEMM's operand)
  double* terms = nullptr;      ///< out: [bias | slope | base], k each (GemmTermsView)
};

/// A warp per centroid: c' = c - m in T, |c'|^2 and m.c' in double (lane-strided, then a
/// butterfly sum: fixed order), and the ranking terms.
template <class T>
__global__ void __launch_bounds__(tuning::kGemmThreads) centre_centroids_kernel(CentreArgs<T> a) {
  const int lane = threadIdx.x % 32;
  const std::int64_t j =
      static_cast<std::int64_t>(blockIdx.x) * (tuning::kGemmThreads / 32) + threadIdx.x / 32;
  if (j >= a.k) return;  // whole warps
  const std::int64_t d = a.d;
  double norm = 0, mc = 0;
  centre_centroid_part(a.c + j * d, a.mean, d, lane, 32, a.centred + j * d, norm, mc);
  for (int off = 16; off > 0; off /= 2) {
    norm += __shfl_xor_sync(0xffffffffu, norm, off);
    mc += __shfl_xor_sync(0xffffffffu, mc, off);
  }
  if (lane == 0)
    gemm_terms(norm, mc, *a.mean_norm, a.gamma_t, a.gamma_bias, a.terms[j], a.terms[a.k + j],
               a.terms[2 * a.k + j]);
}

#endif  // __CUDACC__

}  // namespace kmeans::detail
