// SPDX-License-Identifier: Apache-2.0
// The CUDA GEMM path's argmin emulated on the host for the tests: the per-pass set-up
// (centring, terms, header), a row's bound, products standing in for cuBLAS's (plain, or moved
// adversarially within the claimed error), and gemm_argmin_kernel's work on one row, a warp
// emulated lane by lane with the kernel's own __host__ __device__ steps. nvcc-compiled host code.
#pragma once

#include <algorithm>
#include <bitset>
#include <climits>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "kernels/assign.cuh"
#include "kernels/gemm_rank.cuh"
#include "kernels/tuning.cuh"

namespace kmeans::detail::gemm_emulation {

constexpr int kLanes = 32;

/// Lane 0's value after the kernel's xor butterfly sum (v[l] += v[l ^ off], off = 16 .. 1):
/// gemm_warp_sum broadcasts it.
inline double butterfly_sum(std::vector<double> v) {
  for (int off = 16; off > 0; off /= 2) {
    std::vector<double> next(v);
    for (int l = 0; l < kLanes; ++l) next[l] = v[l] + v[l ^ off];
    v = next;
  }
  return v[0];
}

/// What the device computes once per pass: c' (centre_centroids_kernel, 32 lanes), the terms
/// array (tuning::gemm_terms_size(k) doubles) and its header (gemm_bound_kernel).
template <class T>
struct GemmSetup {
  std::int64_t d = 0;
  int k = 0;
  std::vector<double> mean;
  double mean_norm = 0;
  std::vector<T> centred;
  std::vector<double> terms;
  GemmTermsView view() const { return gemm_terms_view(terms.data(), k); }
  GemmBoundHeader header() const {
    const double* h = terms.data() + gemm_header_offset(k);
    GemmBoundHeader out;
    out.slope_max = h[0];
    out.base_max = h[1];
    out.cnorm_max = h[2];
    return out;
  }
};

template <class T>
GemmSetup<T> gemm_setup(const std::vector<T>& c, const std::vector<double>& mean, std::int64_t d,
                        int k) {
  GemmSetup<T> g;
  g.d = d;
  g.k = k;
  g.mean = mean;
  for (double m : mean) g.mean_norm += m * m;
  g.mean_norm = std::sqrt(g.mean_norm);
  g.centred.resize(c.size());
  g.terms.assign(static_cast<std::size_t>(tuning::gemm_terms_size(k)), std::nan(""));
  const double gamma_t = tuning::gemm_error_gamma(d, sizeof(T));
  const double gamma_b = tuning::gemm_bias_gamma(d, sizeof(T));
  for (int j = 0; j < k; ++j) {
    std::vector<double> norm(kLanes, 0.0), mc(kLanes, 0.0);
    for (int lane = 0; lane < kLanes; ++lane)
      centre_centroid_part(c.data() + j * d, mean.data(), d, lane, kLanes,
                           g.centred.data() + j * d, norm[lane], mc[lane]);
    const double n2 = butterfly_sum(norm), m2 = butterfly_sum(mc);
    double* t = g.terms.data();
    gemm_terms(n2, m2, g.mean_norm, gamma_t, gamma_b, t[j], t[gemm_slope_offset(k) + j],
               t[gemm_base_offset(k) + j]);
    t[gemm_cnorm_offset(k) + j] = std::sqrt(n2);
  }
  // gemm_bound_kernel: 256 strided parts merged in order (the maxima do not depend on it).
  const GemmTermsView v = g.view();
  GemmBoundHeader h;
  for (int part = 0; part < tuning::kGemmThreads; ++part) {
    GemmBoundHeader p;
    gemm_header_part(v, k, part, tuning::kGemmThreads, p);
    gemm_header_merge(p, h);
  }
  double* out = g.terms.data() + gemm_header_offset(k);
  out[0] = h.slope_max;
  out[1] = h.base_max;
  out[2] = h.cnorm_max;
  out[3] = 0;
  for (std::int64_t col = k; col < tuning::gemm_products_ld(k); ++col) g.terms[col] = INFINITY;
  return g;
}

/// The row's bound as gemm_argmin_kernel computes it (32 lanes, butterfly sums).
template <class T>
GemmRowBound row_bound(const GemmSetup<T>& g, const T* x, double* x_norm = nullptr) {
  std::vector<double> xx(kLanes, 0.0), q(kLanes, 0.0);
  for (int lane = 0; lane < kLanes; ++lane)
    gemm_row_norms_part(x, g.mean.data(), g.d, lane, kLanes, xx[lane], q[lane]);
  const double xn = std::sqrt(butterfly_sum(xx));
  if (x_norm) *x_norm = xn;
  return gemm_row_bound(xn, butterfly_sum(q), g.mean_norm, g.header(),
                        tuning::gemm_distance_gamma(g.d, sizeof(T)),
                        tuning::gemm_error_gamma(g.d, sizeof(double)));
}

/// The direct formula: squared_distance for c = 0 .. k-1, strict argmin from label 0.
template <class T>
int direct_label(const T* x, const std::vector<T>& c, std::int64_t d, int k, T* best_out = nullptr) {
  T best = positive_infinity<T>();
  int label = 0;
  for (int j = 0; j < k; ++j) argmin_update(squared_distance(x, c.data() + j * d, d), j, best, label);
  if (best_out) *best_out = best;
  return label;
}

/// How the products stand in for cuBLAS's: a float (or double) dot product in T, sequential or
/// 4-way blocked; or the exact product moved by 3/4 of the claimed bound (slope_c ||x||) and then
/// rounded to T (so within the claim), against the direct formula's label (its score raised,
/// every other lowered: the worst case for the recheck) or with random signs.
enum class Products { Sequential, Blocked, Adversarial, Random };

template <class T>
std::vector<T> emulate_products(const GemmSetup<T>& g, const T* x, double x_norm, int target,
                                Products mode, std::mt19937_64& gen) {
  const std::int64_t d = g.d, ld = tuning::gemm_products_ld(g.k);
  std::vector<T> out(static_cast<std::size_t>(ld), std::numeric_limits<T>::quiet_NaN());
  std::uniform_int_distribution<int> coin(0, 1);
  const GemmTermsView t = g.view();
  for (int c = 0; c < g.k; ++c) {
    const T* cc = g.centred.data() + c * d;
    if (mode == Products::Sequential || mode == Products::Blocked) {
      T p[4] = {0, 0, 0, 0};
      for (std::int64_t j = 0; j < d; ++j) {
        T& acc = mode == Products::Sequential ? p[0] : p[j % 4];
        acc = fused_mul_add(x[j], cc[j], acc);
      }
      out[c] = (p[0] + p[1]) + (p[2] + p[3]);
      continue;
    }
    long double exact = 0;
    for (std::int64_t j = 0; j < d; ++j)
      exact += static_cast<long double>(x[j]) * static_cast<long double>(cc[j]);
    const long double claim = 0.75L * static_cast<long double>(t.slope[c]) * x_norm;
    const bool up = mode == Products::Adversarial ? c != target : coin(gen) == 1;
    out[c] = static_cast<T>(up ? exact + claim : exact - claim);  // g up: score down
  }
  return out;
}

/// What the one-pass argmin did for one row.
template <class T>
struct RowResult {
  int label = 0;
  T best = 0;
  bool overflow = false;
  int compactions = 0;
  int listed = 0;      ///< entries in the final list (-1 after an overflow)
  int rechecked = 0;   ///< exact distances computed
};

/// gemm_argmin_kernel's work on one row, step by step and lane by lane with the kernel's own
/// __host__ __device__ pieces: per step the lanes' scores, the (exact, order-free) warp
/// minimum, the threshold, the accepted columns appended in lane order (gemm_warp_insert:
/// compaction, then overflow), and at the end the recheck lane-strided over the list (or over
/// every product after an overflow) merged by the xor butterfly.
template <class T>
RowResult<T> emulate_row(const GemmSetup<T>& g, const T* g_row, const GemmRowBound& b, const T* x,
                         const std::vector<T>& c) {
  constexpr int kL = tuning::kGemmLaneCols;
  const int k = g.k;
  const std::int64_t d = g.d;
  const GemmTermsView t = g.view();
  RowResult<T> res;
  std::vector<int> list;
  double m = positive_infinity<double>();
  for (int c0 = 0; c0 < k; c0 += tuning::kGemmStepCols) {
    double s[kLanes][kL];
    double lo = positive_infinity<double>();
    for (int lane = 0; lane < kLanes; ++lane) {
      double bb[kL] = {};
      T gg[kL] = {};
      gemm_lane_load(t.bias, c0, lane, k, bb);
      gemm_lane_load(g_row, c0, lane, k, gg);
      lo = std::min(lo, gemm_lane_scores(bb, gg, c0, lane, k, s[lane]));
    }
    if (lo < m) m = lo;
    if (res.overflow) continue;
    const double thr = gemm_threshold(b, m);
    unsigned mask[kLanes];
    int total = 0;
    for (int lane = 0; lane < kLanes; ++lane) {
      mask[lane] = gemm_lane_accept(s[lane], thr);
      total += static_cast<int>(std::bitset<32>(mask[lane]).count());
    }
    if (total == 0) continue;
    if (static_cast<int>(list.size()) + total > tuning::kGemmCandidates) {
      ++res.compactions;
      std::vector<int> kept;
      for (int cc : list)
        if (gemm_keep(t.bias, g_row, cc, thr)) kept.push_back(cc);
      list = kept;
      if (static_cast<int>(list.size()) + total > tuning::kGemmCandidates) {
        res.overflow = true;
        list.clear();
        continue;
      }
    }
    for (int lane = 0; lane < kLanes; ++lane)
      for (int j = 0; j < kL; ++j)
        if (mask[lane] & (1u << j)) list.push_back(gemm_lane_col(c0, lane, j));
  }
  res.listed = res.overflow ? -1 : static_cast<int>(list.size());
  const double thr = gemm_threshold(b, m);
  std::vector<T> best(kLanes, positive_infinity<T>());
  std::vector<int> label(kLanes, INT_MAX);
  auto recheck = [&](int lane, int cc) {
    if (!gemm_keep(t.bias, g_row, cc, thr)) return;
    ++res.rechecked;
    gemm_candidate_merge(squared_distance(x, c.data() + cc * d, d), cc, best[lane], label[lane]);
  };
  if (!res.overflow) {
    for (std::size_t e = 0; e < list.size(); ++e) recheck(static_cast<int>(e % kLanes), list[e]);
  } else {
    for (int cc = 0; cc < k; ++cc) recheck(cc % kLanes, cc);
  }
  for (int off = 16; off > 0; off /= 2) {
    std::vector<T> nb(best);
    std::vector<int> nl(label);
    for (int l = 0; l < kLanes; ++l) argmin_merge(best[l ^ off], label[l ^ off], nb[l], nl[l]);
    best = nb;
    label = nl;
  }
  res.label = label[0];
  res.best = best[0];
  if (res.label == INT_MAX) {
    res.label = 0;
    res.best = squared_distance(x, c.data(), d);
  }
  return res;
}

}  // namespace kmeans::detail::gemm_emulation
