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

/// The per-centroid constants of the ranking, stored in one array of
/// tuning::gemm_terms_size(k) doubles: [bias (gemm_products_ld(k)) | slope | base | cnorm |
/// header], k each but the bias row (padded so it loads as aligned 4-vectors) and the header.
struct GemmTermsView {
  const double* bias = nullptr;   ///< |c'|^2 / 2 + m.c'
  const double* slope = nullptr;  ///< error bound per unit of ||x||: gamma |c'|
  const double* base = nullptr;   ///< error bound of the bias: gamma_bias (|m| |c'| + |c'|^2)
  const double* cnorm = nullptr;  ///< |c'|
  const double* header = nullptr; ///< GemmBoundHeader: the maxima of slope, base and cnorm
};

/// Offsets of the sections of the terms array (see GemmTermsView).
KMEANS_HD inline std::int64_t gemm_slope_offset(std::int64_t k) { return tuning::gemm_products_ld(k); }
KMEANS_HD inline std::int64_t gemm_base_offset(std::int64_t k) { return gemm_slope_offset(k) + k; }
KMEANS_HD inline std::int64_t gemm_cnorm_offset(std::int64_t k) { return gemm_base_offset(k) + k; }
KMEANS_HD inline std::int64_t gemm_header_offset(std::int64_t k) { return gemm_cnorm_offset(k) + k; }

KMEANS_HD inline GemmTermsView gemm_terms_view(const double* t, std::int64_t k) {
  GemmTermsView v;
  v.bias = t;
  v.slope = t + gemm_slope_offset(k);
  v.base = t + gemm_base_offset(k);
  v.cnorm = t + gemm_cnorm_offset(k);
  v.header = t + gemm_header_offset(k);
  return v;
}

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
    norm = fused_mul_add(v, v, norm);  // explicit FMAs: the host tests get the device's bits
    mc = fused_mul_add(mean[q], v, mc);
  }
}

/// Ranking constants of one centroid from |c'|^2 (norm), m.c' (mc) and |m|. Here and below
/// every multiply-add that could be fused is written as fused_mul_add, so that nvcc's
/// contraction cannot give the device other bits than the host tests compute. gamma_t bounds the
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
  base = gamma_bias * fused_mul_add(mean_norm, cn, norm);
}

// ---- GEMM path: the one-pass argmin -------------------------------------------------------------
// The per-centroid bound e_c = slope_c ||x|| + base_c (|score_c - computed score_c| <= e_c, the
// bound above) is folded into one per-row scalar E = slope_max ||x|| + base_max >= e_c for every
// c (floating-point multiplication and addition are monotone, so the computed E is >= every
// computed e_c: a widening, never a loss). The scan then reads per (row, centroid) only the
// 4-byte product and the centroid's bias (a double shared by kGemmRowsPerWarp rows: 2 bytes per
// pair), and keeps a running minimum m of the computed scores s_c = bias_c - g_c and a list of
// the centroids whose s_c is within the threshold W(m) of it.
//
// Which centroids must be rechecked (proof). Let S_c = (D_c - q) / 2 be the exact score, D_c the
// exact squared distance of x to the float centroid c, q = ||x - m||^2; |s_c - S_c| <= E plus
// the double rounding of s_c. The label the direct formula gives is f = argmin fl(D_c) (ties to
// the lowest index), with |fl(D) - D| <= gamma D (tuning::gemm_distance_gamma's gamma_(d+2)).
// Let r be the exact argmin of D. fl(D_f) <= fl(D_r) gives (1 - gamma) D_f <= (1 + gamma) D_r,
// so S_f - S_r = (D_f - D_r) / 2 <= gamma D_r / (1 - gamma). With m = min_c s_c:
// S_r <= S_argmin(s) <= m + E, so s_f <= S_f + E <= m + 2E + gamma D_r / (1 - gamma), and
// D_r = 2 S_r + q <= 2 (m + E) + q. Hence every centroid c with fl(D_c) <= fl(D_f) (f itself
// and every tie) satisfies
//     s_c <= m + W(m),  W(m) = 2E + gamma / (1 - gamma) max(0, 2 (m + E) + q),
// and the smallest fl(D_c) over those centroids, ties to the lowest index, is f. W increases
// with m, and the running minimum only falls, so a centroid that fails the test against the
// running minimum when it is read fails it against the final one: dropping it then is safe, and
// the products are read once. Rounding: the computed s_c, m and m + W(m) each carry at most
// 2^-53 (|s_c| + |m| + W) of double rounding, |s_c| <= Lambda = 2 (||x|| |c'|max (1 + gamma_t) +
// |c'|max (|c'|max / 2 + |m|)); the threshold adds 2^-48 Lambda and 2^-50 W for them (and for
// the rounding of 2 (m + E) + q, whose part relative to it the factor 2 in gemm_distance_gamma
// covers; q itself is rounded up by its own bound in gemm_row_bound).

/// The maxima over the centroids that fold the bound into per-row scalars (max is exact and
/// order-free, so any split of the centroids gives the same bits).
struct GemmBoundHeader {
  double slope_max = 0;
  double base_max = 0;
  double cnorm_max = 0;
};

/// Folds centroids c = lane, lane + lanes, ... into h.
KMEANS_HD inline void gemm_header_part(const GemmTermsView& t, std::int64_t k, int lane, int lanes,
                                       GemmBoundHeader& h) {
  for (std::int64_t c = lane; c < k; c += lanes) {
    if (t.slope[c] > h.slope_max) h.slope_max = t.slope[c];
    if (t.base[c] > h.base_max) h.base_max = t.base[c];
    if (t.cnorm[c] > h.cnorm_max) h.cnorm_max = t.cnorm[c];
  }
}

KMEANS_HD inline void gemm_header_merge(const GemmBoundHeader& o, GemmBoundHeader& h) {
  if (o.slope_max > h.slope_max) h.slope_max = o.slope_max;
  if (o.base_max > h.base_max) h.base_max = o.base_max;
  if (o.cnorm_max > h.cnorm_max) h.cnorm_max = o.cnorm_max;
}

/// Lane `lane` of `lanes`'s part of ||x||^2 and q = ||x - m||^2, in double.
template <class T>
KMEANS_HD inline void gemm_row_norms_part(const T* x, const double* mean, std::int64_t d, int lane,
                                          int lanes, double& xx, double& q) {
  for (std::int64_t j = lane; j < d; j += lanes) {
    const double v = static_cast<double>(x[j]);
    xx = fused_mul_add(v, v, xx);
    const double e = v - mean[j];
    q = fused_mul_add(e, e, q);
  }
}

/// A row's bound: E, the distance margin's gamma and q, and the rounding allowance (see above).
struct GemmRowBound {
  double e = 0;           ///< E = slope_max ||x|| + base_max
  double gamma_dist = 0;  ///< tuning::gemm_distance_gamma; negative: every centroid a candidate
  double q = 0;           ///< ||x - m||^2
  double fixed = 0;       ///< 2^-48 Lambda
};

/// x_norm = ||x|| and q = ||x - m||^2 as computed (gemm_row_norms_part); gamma_q =
/// tuning::gemm_error_gamma(d, sizeof(double)) bounds the relative rounding of q, which is
/// rounded up by it (D_r <= 2 (m + E) + q needs q no smaller than the exact ||x - m||^2).
KMEANS_HD inline GemmRowBound gemm_row_bound(double x_norm, double q, double mean_norm,
                                             const GemmBoundHeader& h, double gamma_dist,
                                             double gamma_q) {
  GemmRowBound b;
  b.e = fused_mul_add(h.slope_max, x_norm, h.base_max);
  b.gamma_dist = gamma_q < 0 ? -1.0 : gamma_dist;
  b.q = fused_mul_add(q, gamma_q + 0x1p-50, q);
  const double cm = h.cnorm_max;
  // slope_max = gamma_t |c'|max <= |c'|max, so x_norm (cm + slope_max) >= ||x|| |c'|max (1 + gamma_t).
  const double lambda = 2 * fused_mul_add(x_norm, cm + h.slope_max, cm * (0.5 * cm + mean_norm));
  b.fixed = 0x1p-48 * lambda;
  return b;
}

/// m + W(m): a centroid whose score exceeds it cannot be the direct formula's label (m is the
/// running minimum of the scores, +infinity before the first).
KMEANS_HD inline double gemm_threshold(const GemmRowBound& b, double m) {
  if (b.gamma_dist < 0) return positive_infinity<double>();
  const double dr = 2 * (m + b.e) + b.q;  // >= D_r
  const double w = fused_mul_add(b.gamma_dist, dr > 0 ? dr : 0.0, 2 * b.e);
  return m + (w + 0x1p-50 * w + b.fixed);
}

/// The computed score of one centroid: bias_c - x.c', in double.
template <class T>
KMEANS_HD inline double gemm_score(double bias, T g) {
  return bias - static_cast<double>(g);
}

/// Column of the j-th of lane's kGemmLaneCols columns in the step starting at c0: two aligned
/// 4-vectors, at c0 + 4 lane and c0 + 128 + 4 lane (a warp reads 2 x 512 contiguous bytes).
KMEANS_HD inline int gemm_lane_col(int c0, int lane, int j) {
  return c0 + (j / 4) * 128 + 4 * lane + j % 4;
}

/// Four consecutive elements from p (16-byte aligned for float, 32 for double): vector loads on
/// the device, the same values on the host.
template <class U>
KMEANS_HD inline void gemm_load4(const U* p, U out[4]) {
#if defined(__CUDA_ARCH__)
  if constexpr (sizeof(U) == 4) {
    const float4 v = *reinterpret_cast<const float4*>(p);
    out[0] = v.x;
    out[1] = v.y;
    out[2] = v.z;
    out[3] = v.w;
  } else {
    const double2 a = reinterpret_cast<const double2*>(p)[0];
    const double2 b = reinterpret_cast<const double2*>(p)[1];
    out[0] = a.x;
    out[1] = a.y;
    out[2] = b.x;
    out[3] = b.y;
  }
#else
  for (int q = 0; q < 4; ++q) out[q] = p[q];
#endif
}

/// Lane's kGemmLaneCols values of a row (products, or the bias row) for the step at c0; a
/// 4-vector starting at or beyond k is not read (its values are left as they are). Rows are
/// tuning::gemm_products_ld(k) long, so a vector starting below k lies inside the row.
template <class U>
KMEANS_HD inline void gemm_lane_load(const U* row, int c0, int lane, int k,
                                     U out[tuning::kGemmLaneCols]) {
  for (int h = 0; h < tuning::kGemmLaneCols / 4; ++h) {
    const int c = gemm_lane_col(c0, lane, 4 * h);
    if (c < k) gemm_load4(row + c, out + 4 * h);
  }
}

/// Lane's scores for the step at c0 (+infinity for columns >= k) and their minimum.
template <class T>
KMEANS_HD inline double gemm_lane_scores(const double b[tuning::kGemmLaneCols],
                                         const T g[tuning::kGemmLaneCols], int c0, int lane, int k,
                                         double s[tuning::kGemmLaneCols]) {
  double lo = positive_infinity<double>();
  for (int j = 0; j < tuning::kGemmLaneCols; ++j) {
    s[j] = gemm_lane_col(c0, lane, j) < k ? gemm_score(b[j], g[j]) : positive_infinity<double>();
    if (s[j] < lo) lo = s[j];
  }
  return lo;
}

/// Bit j set when lane's j-th score is within the threshold (column j joins the candidates).
KMEANS_HD inline unsigned gemm_lane_accept(const double s[tuning::kGemmLaneCols], double thr) {
  unsigned mask = 0;
  for (int j = 0; j < tuning::kGemmLaneCols; ++j)
    if (s[j] <= thr) mask |= 1u << j;
  return mask;
}

/// Whether listed centroid c still passes the threshold (compaction and the final recheck).
template <class T>
KMEANS_HD inline bool gemm_keep(const double* bias, const T* g_row, int c, double thr) {
  return gemm_score(bias[c], g_row[c]) <= thr;
}

/// Merges a candidate's exact distance visited in any order: the smallest, ties to the lowest
/// index; a distance that is not below +infinity never wins, as in the direct formula (whose
/// strict argmin_update starting from +infinity keeps label 0 when every distance overflows).
template <class T>
KMEANS_HD inline void gemm_candidate_merge(T value, int index, T& best, int& best_index) {
  if (value < positive_infinity<T>()) argmin_merge(value, index, best, best_index);
}

#if defined(__CUDACC__)

/// Arguments of gemm_argmin_kernel: one chunk of rows [row0, row0 + rows) whose products with
/// every centred centroid, g[r * ld + c] = x_(row0+r) . c'_c, cuBLAS has just written.
template <class T>
struct GemmArgminArgs {
  const T* x = nullptr;
  const T* w = nullptr;
  const T* c = nullptr;        ///< k x d centroids (uncentred: the exact distances)
  GemmTermsView terms;         ///< from centre_centroids_kernel and gemm_bound_kernel
  const double* mean = nullptr;       ///< d data means
  const double* mean_norm = nullptr;  ///< |m| (device scalar)
  double gamma_dist = 0;       ///< tuning::gemm_distance_gamma(d, sizeof(T))
  double gamma_q = 0;          ///< tuning::gemm_error_gamma(d, sizeof(double))
  const T* g = nullptr;        ///< rows x ld, x.c'
  int ld = 0;                  ///< tuning::gemm_products_ld(k)
  int n = 0;
  int d = 0;
  int k = 0;
  int row0 = 0;                ///< a multiple of kGemmRowsPerBlock
  int rows = 0;
  int n_blocks = 0;            ///< stride of the partial buffer: ceil(n / kGemmRowsPerBlock)
  std::int32_t* labels = nullptr;
  T* dist = nullptr;
  double* partials = nullptr;
};

/// Sum over the warp by an xor butterfly, then lane 0's value everywhere (the lanes' butterfly
/// sums may differ in their last bit; every lane must use the same bound).
__device__ inline double gemm_warp_sum(double v) {
  for (int off = 16; off > 0; off /= 2) v += __shfl_xor_sync(0xffffffffu, v, off);
  return __shfl_sync(0xffffffffu, v, 0);
}

__device__ inline double gemm_warp_min(double v) {
  for (int off = 16; off > 0; off /= 2) {
    const double o = __shfl_xor_sync(0xffffffffu, v, off);
    if (o < v) v = o;
  }
  return v;
}

/// Appends each lane's accepted columns (bits of `mask`, columns in lane order then j order) to
/// the row's candidate list; when they do not fit, first drops the listed centroids that fail
/// `thr` (order kept), then, if still too many, marks the row overflowed (count = -1: the final
/// step rescans all its products). Warp-uniform count.
template <class T>
__device__ inline void gemm_warp_insert(int* list, int& count, unsigned mask, int c0, int lane,
                                        const double* bias, const T* g_row, double thr) {
  constexpr int kCap = tuning::kGemmCandidates;
  static_assert(kCap % 32 == 0, "compaction takes kCap / 32 entries per lane");
  const int mine = __popc(mask);
  int incl = mine;  // inclusive prefix over the lanes
  for (int off = 1; off < 32; off *= 2) {
    const int o = __shfl_up_sync(0xffffffffu, incl, off);
    if (lane >= off) incl += o;
  }
  const int total = __shfl_sync(0xffffffffu, incl, 31);
  if (count + total > kCap) {  // compact: keep the listed centroids still within thr
    int keep[kCap / 32], cs[kCap / 32];
    int kept = 0;
    for (int h = 0; h < kCap / 32; ++h) {
      const int e = h * 32 + lane;
      cs[h] = e < count ? list[e] : -1;
      const bool ok = cs[h] >= 0 && gemm_keep(bias, g_row, cs[h], thr);
      const unsigned b = __ballot_sync(0xffffffffu, ok);
      keep[h] = ok ? kept + __popc(b & ((1u << lane) - 1u)) : -1;
      kept += __popc(b);
    }
    __syncwarp();
    for (int h = 0; h < kCap / 32; ++h)
      if (keep[h] >= 0) list[keep[h]] = cs[h];
    __syncwarp();
    count = kept;
    if (count + total > kCap) {
      count = -1;
      return;
    }
  }
  int pos = count + incl - mine;
  for (int j = 0; j < tuning::kGemmLaneCols; ++j)
    if (mask & (1u << j)) list[pos++] = gemm_lane_col(c0, lane, j);
  __syncwarp();
  count += total;
}

/// The one-pass argmin (see "the one-pass argmin" above). A warp scans kGemmRowsPerWarp rows
/// at once, kGemmStepCols products of each per step: the step's warp minimum updates the running
/// minimum, then the columns within the threshold join the row's candidate list (shared memory).
/// After the scan, the candidates still within the final threshold get their exact distance
/// (squared_distance), lane-strided, merged over the warp (smallest, ties to the lowest index);
/// an overflowed row instead rechecks every one of its products against the final threshold.
/// Writes the label, the exact distance and the block's SSE and changed count to its column of
/// the partial buffer.
template <class T>
__global__ void __launch_bounds__(tuning::kGemmArgminThreads)
    gemm_argmin_kernel(GemmArgminArgs<T> a) {
  constexpr int kWarps = tuning::kGemmArgminThreads / 32;
  constexpr int kR = tuning::kGemmRowsPerWarp;
  constexpr int kL = tuning::kGemmLaneCols;
  __shared__ int s_list[kWarps][kR][tuning::kGemmCandidates];
  __shared__ double s_sse[kWarps];
  __shared__ double s_changed[kWarps];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const std::int64_t d = a.d;
  const int first = blockIdx.x * tuning::kGemmRowsPerBlock + warp * kR;  // chunk-local row
  GemmBoundHeader h;
  h.slope_max = a.terms.header[0];
  h.base_max = a.terms.header[1];
  h.cnorm_max = a.terms.header[2];
  const double mean_norm = *a.mean_norm;

  GemmRowBound bound[kR];
  double m[kR];
  int count[kR];
  const T* g_row[kR];
KMEANS_UNROLL
  for (int r = 0; r < kR; ++r) {
    const int local = first + r < a.rows ? first + r : a.rows - 1;  // a valid row to read
    const std::int64_t i = static_cast<std::int64_t>(a.row0) + local;
    double xx = 0, q = 0;
    gemm_row_norms_part(a.x + i * d, a.mean, d, lane, 32, xx, q);
    xx = gemm_warp_sum(xx);
    q = gemm_warp_sum(q);
    bound[r] = gemm_row_bound(sqrt(xx), q, mean_norm, h, a.gamma_dist, a.gamma_q);
    m[r] = positive_infinity<double>();
    count[r] = 0;
    g_row[r] = a.g + static_cast<std::int64_t>(local) * a.ld;
  }

  for (int c0 = 0; c0 < a.k; c0 += tuning::kGemmStepCols) {
    double b[kL];
    T g[kR][kL];
    gemm_lane_load(a.terms.bias, c0, lane, a.k, b);
KMEANS_UNROLL
    for (int r = 0; r < kR; ++r) gemm_lane_load(g_row[r], c0, lane, a.k, g[r]);
KMEANS_UNROLL
    for (int r = 0; r < kR; ++r) {
      double s[kL];
      const double lo = gemm_warp_min(gemm_lane_scores(b, g[r], c0, lane, a.k, s));
      if (lo < m[r]) m[r] = lo;
      if (count[r] < 0) continue;  // overflowed: the final step rescans the row
      const double thr = gemm_threshold(bound[r], m[r]);
      const unsigned mask = gemm_lane_accept(s, thr);
      if (__any_sync(0xffffffffu, mask != 0))
        gemm_warp_insert(s_list[warp][r], count[r], mask, c0, lane, a.terms.bias, g_row[r], thr);
    }
  }

  double sse = 0, changed = 0;
  for (int r = 0; r < kR; ++r) {
    if (first + r >= a.rows) break;  // uniform in the warp
    const std::int64_t i = static_cast<std::int64_t>(a.row0) + first + r;
    const T* xi = a.x + i * d;
    const double thr = gemm_threshold(bound[r], m[r]);
    T best = positive_infinity<T>();
    int label = INT_MAX;
    if (count[r] >= 0) {
      for (int e = lane; e < count[r]; e += 32) {
        const int c = s_list[warp][r][e];
        if (gemm_keep(a.terms.bias, g_row[r], c, thr))
          gemm_candidate_merge(squared_distance(xi, a.c + static_cast<std::int64_t>(c) * d, d), c,
                               best, label);
      }
    } else {
      for (int c = lane; c < a.k; c += 32)
        if (gemm_keep(a.terms.bias, g_row[r], c, thr))
          gemm_candidate_merge(squared_distance(xi, a.c + static_cast<std::int64_t>(c) * d, d), c,
                               best, label);
    }
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
  write_block_totals<kWarps>(s_sse, s_changed, warp, lane, sse, changed, a.partials,
                             a.row0 / tuning::kGemmRowsPerBlock + blockIdx.x, a.n_blocks);
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
  double* terms = nullptr;      ///< out: tuning::gemm_terms_size(k) doubles (GemmTermsView)
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
  if (lane == 0) {
    double* t = a.terms;
    gemm_terms(norm, mc, *a.mean_norm, a.gamma_t, a.gamma_bias, t[j], t[gemm_slope_offset(a.k) + j],
               t[gemm_base_offset(a.k) + j]);
    t[gemm_cnorm_offset(a.k) + j] = sqrt(norm);
  }
}

/// One block: the header of the terms (GemmBoundHeader: maxima over the k centroids, exact
/// whatever the order) and the bias row's padding (+infinity; never read as a score). Launched
/// with kThreads = kThreads threads (a template: a header may hold it).
template <int kThreads>
__global__ void __launch_bounds__(kThreads) gemm_bound_kernel(double* terms, int k) {
  __shared__ double s_h[3][kThreads];
  const GemmTermsView t = gemm_terms_view(terms, k);
  GemmBoundHeader h;
  gemm_header_part(t, k, threadIdx.x, kThreads, h);
  s_h[0][threadIdx.x] = h.slope_max;
  s_h[1][threadIdx.x] = h.base_max;
  s_h[2][threadIdx.x] = h.cnorm_max;
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int q = 1; q < kThreads; ++q) {
      GemmBoundHeader o;
      o.slope_max = s_h[0][q];
      o.base_max = s_h[1][q];
      o.cnorm_max = s_h[2][q];
      gemm_header_merge(o, h);
    }
    double* out = terms + gemm_header_offset(k);
    out[0] = h.slope_max;
    out[1] = h.base_max;
    out[2] = h.cnorm_max;
    out[3] = 0;
    for (std::int64_t c = k; c < tuning::gemm_products_ld(k); ++c)
      terms[c] = positive_infinity<double>();
  }
}

#endif  // __CUDACC__

}  // namespace kmeans::detail
