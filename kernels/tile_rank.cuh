// SPDX-License-Identifier: Apache-2.0
// The tile kernel's ranking: centroids ranked by |c'|^2/2 - x'.c' (one FMA per point, centroid
// and feature, 16-byte broadcast shared loads), its proven rounding bound, and the exact
// recheck that makes the label and distance those of the direct formula. __host__ __device__
// code: the kernel (kernels/assign.cuh) and the host tests (tests/test_cuda_host_rank.cu) run it.
// kernels/assign.cuh includes this file after the arithmetic it shares (squared_distance, the
// argmin steps); include assign.cuh, not this file alone.
#pragma once

#include <climits>
#include <cmath>
#include <cstdint>

#include "kernels/assign.cuh"
#include "kernels/layout.cuh"
#include "kernels/tuning.cuh"

namespace kmeans::detail {

// ---- The ranking -------------------------------------------------------------------------------
// m is the centring vector: centroid 0 of the pass (exact in T, close to the data, no extra pass
// over the data). With x' = x - m and c' = c - m, |x - c|^2 = |x'|^2 - 2 (|c'|^2/2 - x'.c'), so
//   r_c = h_c - sum_j x'_j c'_j,   h_c = |c'|^2 / 2,
// ranks the centroids of one point like the direct distance, up to rounding, and costs one FMA
// per (point, centroid, feature): acc = fma(-x'_j, c'_j, acc) from acc = h_c, j = 0..d-1.
// The computed values are exactly those of the CPU kernel's derivation (src/cpu_kernel_exact.inl,
// "The rounding bound of the ranking"): c^_j = fl_T(fl_d(c_j - m_j)), x^_j = fl_T(x_j - m_j),
// h^ = fl_T(0.5 fl_d(sum_j c^_j^2)), r_c a d-step chain in T. So its bound holds as derived
// there, with rank_len = d:
//   every c with D_c <= D_b (D the direct formula, b the ranking's argmin) has r_c <= r_b + B,
// B computed from D_b, r_b and d alone (TileBound, tile_has_rival). When the second smallest
// ranking exceeds r_b + B, b is the unique argmin of the direct formula; otherwise (a near tie,
// or any non-finite value) the point's label is the direct formula's argmin over all k centroids
// (direct_argmin_part; the kernel spreads it over a warp), ties to the lowest index. Either way
// the label and the distance are bit for bit those of squared_distance's argmin.

/// Shape of the ranking for T: centroids ranked at once by one thread (kLanes running values,
/// a divisor of kRegTile), values per 16-byte shared load, and the register row (features of the
/// centred point kept in registers: the whole row when d <= kRowRegs, else chunks of kRowRegs
/// reloaded per group of kLanes centroids). Sized to the register caps of
/// tuning::assign_min_blocks. One 16-byte load feeds kVec FMAs: 4 FFMA (float), 2 DFMA (double).
template <class T>
struct TileRank;
template <>
struct TileRank<float> {
  using Vec = float4;
  static constexpr int kVec = 4;
  static constexpr int kLanes = 16;
  static constexpr int kRowRegs = 32;
};
template <>
struct TileRank<double> {
  using Vec = double2;
  static constexpr int kVec = 2;
  static constexpr int kLanes = 8;
  static constexpr int kRowRegs = 8;
};
static_assert(tuning::kRegTile % TileRank<float>::kLanes == 0, "lanes must divide kRegTile");
static_assert(tuning::kRegTile % TileRank<double>::kLanes == 0, "lanes must divide kRegTile");

/// Position of row `row` (0: h, 1 + j: coordinate j of c') of tile-local centroid c in the
/// ranking tile: smem_centroid_index with d + 1 rows, so groups of kRegTile centroids are
/// stored [group][d + 1][kRegTile] and one row of a group is kRegTile contiguous values (16-byte
/// aligned when the tile is: a broadcast LDS.128 reads kVec of them).
KMEANS_HD constexpr std::int64_t rank_tile_index(int c, std::int64_t row, std::int64_t d) {
  return layout::smem_centroid_index(c, row, d + 1);
}

/// The centred coordinate fl_T(fl_d(c - m)) of a centroid (the CPU kernel's c^).
template <class T>
KMEANS_HD inline T centred_centroid(T c, T m) {
  return static_cast<T>(static_cast<double>(c) - static_cast<double>(m));
}

/// Builds the ranking tile of centroids [c0, c0 + count) (k x d row-major `c`, m = c's row 0):
/// the c^ rows, and row 0 h^ = fl_T(0.5 fl_d(sum_j c^_j^2)) (the sum by fused multiply-adds in
/// double: fewer roundings than the bound allows for); padding up to k_tile has c^ = 0 and
/// h = +inf. The part of entry index first, first + step, ... (threadIdx.x, blockDim.x on the
/// device; 0, 1 on the host).
template <class T>
KMEANS_HD inline void build_rank_tile(T* tile, const T* c, int c0, int count, int d, int k_tile,
                                      int first, int step) {
  const std::int64_t dd = d;
  const int total = k_tile * d;
  for (int idx = first; idx < total; idx += step) {
    const int cl = idx / d, j = idx - cl * d;
    tile[rank_tile_index(cl, 1 + j, dd)] =
        cl < count ? centred_centroid(c[static_cast<std::int64_t>(c0 + cl) * dd + j], c[j]) : T(0);
  }
  for (int cl = first; cl < k_tile; cl += step) {
    T h = positive_infinity<T>();
    if (cl < count) {
      const T* row = c + static_cast<std::int64_t>(c0 + cl) * dd;
      double s = 0;
      for (int j = 0; j < d; ++j) {
        const double v = static_cast<double>(centred_centroid(row[j], c[j]));
        s = fused_mul_add(v, v, s);  // explicit: the same bits on the device and the host
      }
      h = static_cast<T>(0.5 * s);
    }
    tile[rank_tile_index(cl, 0, dd)] = h;
  }
}

/// Features [j0, j0 + width) of the point's negated centred row, -fl_T(x_j - m_j), right-aligned
/// in the register row: nx[kRowRegs - width + jj] holds feature j0 + jj, and the registers
/// before them hold 0 (width <= kRowRegs). rank_rows enters its unrolled chain at the first one.
template <class T>
KMEANS_HD inline void load_centred_row(const T* x_row, const T* m, int j0, int width,
                                       T (&nx)[TileRank<T>::kRowRegs]) {
  constexpr int kC = TileRank<T>::kRowRegs;
  const int start = kC - width;
KMEANS_UNROLL
  for (int r = 0; r < kC; ++r) {
    const int j = j0 + r - start;
    nx[r] = r >= start ? -(x_row[j] - m[j]) : T(0);
  }
}

/// acc[q] = fma(xv, v[q], acc[q]) for the kVec values of one 16-byte load.
KMEANS_HD inline void fma_vec(float xv, const float4& v, float* acc) {
  acc[0] = fused_mul_add(xv, v.x, acc[0]);
  acc[1] = fused_mul_add(xv, v.y, acc[1]);
  acc[2] = fused_mul_add(xv, v.z, acc[2]);
  acc[3] = fused_mul_add(xv, v.w, acc[3]);
}
KMEANS_HD inline void fma_vec(double xv, const double2& v, double* acc) {
  acc[0] = fused_mul_add(xv, v.x, acc[0]);
  acc[1] = fused_mul_add(xv, v.y, acc[1]);
}

KMEANS_HD inline void unpack_vec(const float4& v, float* out) {
  out[0] = v.x;
  out[1] = v.y;
  out[2] = v.z;
  out[3] = v.w;
}
KMEANS_HD inline void unpack_vec(const double2& v, double* out) {
  out[0] = v.x;
  out[1] = v.y;
}

/// One feature of the ranking: register r of the row against tile row r (rows of kRegTile
/// values from `s`): kLanes / kVec 16-byte loads of the same address in every thread, kLanes FMAs.
template <class T, int r>
KMEANS_HD inline void rank_step(const T (&nx)[TileRank<T>::kRowRegs], const T* s,
                                T (&acc)[TileRank<T>::kLanes]) {
  using R = TileRank<T>;
  if constexpr (r < R::kRowRegs) {
    const auto* v = reinterpret_cast<const typename R::Vec*>(s + r * tuning::kRegTile);
KMEANS_UNROLL
    for (int p = 0; p < R::kLanes / R::kVec; ++p) fma_vec(nx[r], v[p], acc + p * R::kVec);
  }
}

/// acc[q] = fma(nx[r], s[(r - start) * kRegTile + q], acc[q]) for r = start..kRowRegs-1 in
/// order (start = kRowRegs - width: the right-aligned row of load_centred_row): a fall-through
/// switch enters the unrolled chain at `start`, so no step tests the width.
template <class T>
KMEANS_HD inline void rank_rows(const T (&nx)[TileRank<T>::kRowRegs], int width, const T* s,
                                T (&acc)[TileRank<T>::kLanes]) {
  constexpr int kC = TileRank<T>::kRowRegs;
  static_assert(kC <= 32, "rank_rows' switch covers 32 registers");
  const int start = kC - width;
  const T* b = s - static_cast<std::int64_t>(start) * tuning::kRegTile;  // row r at b + r * 16
#define KMEANS_RANK_STEP(r) \
  case r:                   \
    rank_step<T, r>(nx, b, acc); \
    [[fallthrough]];
  switch (start) {
    KMEANS_RANK_STEP(0) KMEANS_RANK_STEP(1) KMEANS_RANK_STEP(2) KMEANS_RANK_STEP(3)
    KMEANS_RANK_STEP(4) KMEANS_RANK_STEP(5) KMEANS_RANK_STEP(6) KMEANS_RANK_STEP(7)
    KMEANS_RANK_STEP(8) KMEANS_RANK_STEP(9) KMEANS_RANK_STEP(10) KMEANS_RANK_STEP(11)
    KMEANS_RANK_STEP(12) KMEANS_RANK_STEP(13) KMEANS_RANK_STEP(14) KMEANS_RANK_STEP(15)
    KMEANS_RANK_STEP(16) KMEANS_RANK_STEP(17) KMEANS_RANK_STEP(18) KMEANS_RANK_STEP(19)
    KMEANS_RANK_STEP(20) KMEANS_RANK_STEP(21) KMEANS_RANK_STEP(22) KMEANS_RANK_STEP(23)
    KMEANS_RANK_STEP(24) KMEANS_RANK_STEP(25) KMEANS_RANK_STEP(26) KMEANS_RANK_STEP(27)
    KMEANS_RANK_STEP(28) KMEANS_RANK_STEP(29) KMEANS_RANK_STEP(30) KMEANS_RANK_STEP(31)
    default:
      break;
  }
#undef KMEANS_RANK_STEP
}

/// The ranking's running state of one point: the smallest ranking, its centroid, and the
/// smallest ranking of every other centroid seen (a later centroid replaces the best only when
/// strictly smaller, so a tie in the ranking leaves best == second: a rival).
template <class T>
struct RankState {
  T best = positive_infinity<T>();
  T second = positive_infinity<T>();
  int index = 0;
};

KMEANS_HD inline float min_num(float a, float b) { return fminf(a, b); }
KMEANS_HD inline double min_num(double a, double b) { return fmin(a, b); }
KMEANS_HD inline float max_num(float a, float b) { return fmaxf(a, b); }
KMEANS_HD inline double max_num(double a, double b) { return fmax(a, b); }

/// A NaN ranking never becomes the best, and makes second = best (a rival: the point is
/// rechecked), which is safe.
template <class T>
KMEANS_HD inline void rank_update(T value, int index, RankState<T>& st) {
  st.second = min_num(st.second, max_num(st.best, value));
  if (value < st.best) {
    st.best = value;
    st.index = index;
  }
}

/// Ranks the `count` centroids of one ranking tile (global indices from c0) for one point.
/// in_regs: d <= kRowRegs and nx holds the whole negated centred row (load_centred_row(x_row, m,
/// 0, d, nx)); otherwise the row is centred chunk by chunk from x_row and m. Same bits either way.
template <class T>
KMEANS_HD inline void rank_tile(const T (&nx)[TileRank<T>::kRowRegs], bool in_regs,
                                const T* x_row, const T* m, const T* tile, int d, int c0,
                                int count, RankState<T>& st) {
  using R = TileRank<T>;
  using Vec = typename R::Vec;
  constexpr int kL = R::kLanes;
  const std::int64_t rows = static_cast<std::int64_t>(d) + 1;
  for (int g0 = 0; g0 < count; g0 += kL) {
    const T* s = tile + (g0 / tuning::kRegTile) * rows * tuning::kRegTile + g0 % tuning::kRegTile;
    T acc[kL];
    const Vec* hv = reinterpret_cast<const Vec*>(s);
KMEANS_UNROLL
    for (int p = 0; p < kL / R::kVec; ++p) unpack_vec(hv[p], acc + p * R::kVec);
    if (in_regs) {
      rank_rows(nx, d, s + tuning::kRegTile, acc);
    } else {
      for (int j0 = 0; j0 < d; j0 += R::kRowRegs) {
        const int width = d - j0 < R::kRowRegs ? d - j0 : R::kRowRegs;
        T cx[R::kRowRegs];
        load_centred_row(x_row, m, j0, width, cx);
        rank_rows(cx, width, s + (1 + static_cast<std::int64_t>(j0)) * tuning::kRegTile, acc);
      }
    }
KMEANS_UNROLL
    for (int q = 0; q < kL; ++q)
      if (g0 + q < count) rank_update(acc[q], c0 + g0 + q, st);
  }
}

// ---- The bound (src/cpu_kernel_exact.inl derives it; the same constants) -----------------------

/// The per-(d, T) constants of the bound, its divisions folded into factors of D_b and r_b.
struct TileBound {
  double g = 0;
  double x_db = 0, x_rb = 0;  ///< X^2 <= x_db D_b - x_rb r_b
  double e_db = 0;            ///< E^ <= e_db D_b
  double last = 0;            ///< gamma_D E_b / (1 - gamma_D) <= last D_b
  double tiny = 0;            ///< gradual underflow: 8 (d + 4) half-subnormals
  double fast_db = 0, fast_rb = 0, fast_db0 = 0, fast_tiny = 0;  ///< the cheap test's bound
  bool usable = false;
};

KMEANS_HD inline double tile_gamma(double n, double unit) {
  return n * unit < 0.5 ? n * unit / (1 - n * unit) : -1.0;
}

/// bound_terms of the CPU kernel for a d-step ranking chain in T (rank_len = d).
template <class T>
KMEANS_HD inline TileBound tile_bound_terms(std::int64_t d) {
  const double u = sizeof(T) == 4 ? 0x1p-24 : 0x1p-53;
  const double denorm = sizeof(T) == 4 ? 0x1p-149 : 0x1p-1074;
  TileBound b;
  const double dd = static_cast<double>(d);
  const double gd = tile_gamma(dd, 0x1p-53);
  const double g5 = tile_gamma(dd + 5, u);
  const double gamma_d = tile_gamma(dd + 2, u);
  if (gd < 0 || g5 < 0 || gamma_d < 0) return b;
  const double uh = u + (1 + u) * gd;
  b.g = (1 + uh) * g5 + uh;
  b.usable = 5 * b.g < 0.5 && gamma_d < 0.5;
  const double inv = 1 / (1 - gamma_d);
  b.x_db = inv * (1 + 3 * b.g) / (1 - 5 * b.g);
  b.x_rb = 2 / (1 - 5 * b.g);
  b.e_db = inv * inv * (1 + gamma_d);
  b.last = gamma_d * inv * inv;
  // The CPU raises this allowance to the smallest normal double (normal_allowance: a subnormal
  // operand costs x86 a microcode assist); the GPU handles subnormals at full rate and keeps it.
  b.tiny = 8 * (dd + 4) * denorm;
  const double infl = (1 + 0x1p-39) * (1 + 0x1p-51);
  b.fast_db0 = (3 * b.g * b.e_db + b.last) * infl;
  b.fast_db = (5 * b.g * b.x_db) * infl + b.fast_db0;
  b.fast_rb = 5 * b.g * b.x_rb * infl;
  b.fast_tiny = b.tiny * infl;
  return b;
}

/// Whether a centroid other than the ranking's choice b may have D_c <= D_b: the second smallest
/// ranking `second` is within r_b + B (the CPU kernel's has_rival: a cheap test without square
/// roots first, then the full bound). True whenever the bound says nothing or a value is not
/// finite (NaN comparisons fail): then the point is rechecked directly.
KMEANS_HD inline bool tile_has_rival(const TileBound& t, double rb, double db, double second) {
  if (!t.usable) return true;
  const double arb = rb < 0 ? -rb : rb;
  const double b1 = t.fast_db * db - t.fast_rb * rb, b0 = t.fast_db0 * db;
  const double fast = rb + ((b1 > b0 ? b1 : b0) + t.fast_tiny) + 0x1p-52 * arb;
  if (second > fast) return false;
  double x2 = t.x_db * db - t.x_rb * rb;
  x2 += 0x1p-50 * (t.x_db * db + t.x_rb * arb);
  if (!(x2 > 0)) x2 = 0;
  const double x = sqrt(x2), se = sqrt(t.e_db * db);
  const double f = 0.5 * (x + se) * (x + se) + x * (x + se);
  const double bound = (2 * t.g * f + t.last * db + t.tiny) * (1 + 0x1p-40);
  const double thr = rb + bound + 0x1p-52 * (arb + bound);
  return !(second > thr);
}

/// The direct formula's argmin over centroids c = lane, lane + lanes, ... < k (k x d `c`),
/// updating (best, best_index) from (+inf, INT_MAX); lanes' results merge with argmin_merge
/// (ties to the lowest index), so any lane split gives the sequential loop's answer. If no
/// distance is below +inf the index stays INT_MAX: the caller takes (0, +inf), as the direct
/// loop from (+inf, 0) does.
template <class T>
KMEANS_HD inline void direct_argmin_part(const T* x_row, const T* c, int k, std::int64_t d,
                                         int lane, int lanes, T& best, int& best_index) {
  for (int cc = lane; cc < k; cc += lanes)
    argmin_update(squared_distance(x_row, c + static_cast<std::int64_t>(cc) * d, d), cc, best,
                  best_index);
}

}  // namespace kmeans::detail
