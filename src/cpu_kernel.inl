// SPDX-License-Identifier: Apache-2.0
// Body of the CPU distance + argmin kernel, included by cpu_kernel_{generic,avx2,avx512}.cpp,
// each compiled with its own instruction-set flags and defining:
//   KMEANS_VBYTES      vector width in bytes (16, 32, 64)
//   KMEANS_POINTS      points per register block
//   KMEANS_TABLE       name of the function returning this ISA's KernelTable
//   KMEANS_ISA_NAME    the table's name
//   KMEANS_DIRECT_FMA  1: the direct formula uses fused multiply-adds (x86 FMA intrinsics);
//                      0: it rounds each square (that file is compiled without contraction)
// Everything here sits in an anonymous namespace and uses no standard-library templates, so no
// ISA-specific code can leak into other translation units through inline functions.
//
// Register blocking: a tile of V vectors of centroids ([d][tile] layout, so one broadcast of a
// point coordinate feeds a whole vector of centroids) against P points at once; P*V running
// rankings live in registers, and the lane-wise running minimum, its tile and the lane-wise
// second smallest value are kept across tiles (strictly smaller wins, so ties keep the lower
// index). The second smallest tells whether any other centroid came within the rounding bound
// of the best (see the derivation before BoundTerms); only then are candidates re-checked.
#include <cstdint>
#include <type_traits>
#include <cstdlib>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include "cpu_bounds_kernel.hpp"
#include "cpu_kernel.hpp"

// Full unrolling of the small point / vector loops lets the compiler keep the P x V running
// values in registers instead of stack arrays.
#if defined(__clang__)
#define KMEANS_UNROLL _Pragma("unroll")
#elif defined(__GNUC__)
#define KMEANS_UNROLL _Pragma("GCC unroll 16")
#else
#define KMEANS_UNROLL
#endif

namespace kmeans::detail::cpu {
namespace {

template <class T>
struct LaneInt;
template <>
struct LaneInt<float> {
  using type = std::int32_t;
};
template <>
struct LaneInt<double> {
  using type = std::int64_t;
};

template <class T>
struct Simd {
  typedef T V __attribute__((vector_size(KMEANS_VBYTES)));
  typedef typename LaneInt<T>::type I __attribute__((vector_size(KMEANS_VBYTES)));
  static constexpr int W = KMEANS_VBYTES / static_cast<int>(sizeof(T));
};

#ifndef KMEANS_VECS
#define KMEANS_VECS 2
#endif
constexpr int kVecsPerTile = KMEANS_VECS;

/// Horizontal minimum of a vector of B bytes: halve the width until one lane is left.
template <class T, int B>
T hmin(const T* lanes) {
  if constexpr (B == 2 * static_cast<int>(sizeof(T))) {
    return lanes[1] < lanes[0] ? lanes[1] : lanes[0];
  } else {
    typedef T H __attribute__((vector_size(B / 2)));
    H lo, hi;
    __builtin_memcpy(&lo, lanes, B / 2);
    __builtin_memcpy(&hi, lanes + B / 2 / sizeof(T), B / 2);
    const H m = hi < lo ? hi : lo;
    return hmin<T, B / 2>(reinterpret_cast<const T*>(&m));
  }
}

/// Bytes of one cache block (rows of points, or tiles of centroids): half of a 512 KiB L2.
constexpr std::int64_t kCacheBlockBytes = 128 * 1024;

/// Up to this many features a group of points is centred once into a stack buffer, so the
/// inner loop broadcasts straight from memory; wider rows are centred on the fly.
constexpr std::int64_t kMaxCentredD = 512;

/// From this many features the ranking's choice gets its direct distance W points at a time
/// (direct_distance_lanes: two transposes per W features, which narrow rows do not repay).
constexpr std::int64_t kDirectLanesMinD = 32;

#include "cpu_kernel_exact.inl"
#include "cpu_kernel_small_k.inl"
#include "cpu_kernel_centroid_lanes.inl"
#include "cpu_kernel_direct_lanes.inl"
#include "cpu_kernel_gemm.inl"

template <class T, bool kCentred>
void assign_chunk(const T* x, const T* mean, std::int64_t r0, std::int64_t r1, std::int64_t d,
                  const T* tiles, int t0, int t1, std::int32_t* labels, T* rank, T* second,
                  const typename Simd<T>::I* lane);

/// The re-check of the rows idx[0, m) whose ranking had a rival within the bound (thr[q] is
/// row idx[q]'s r_b + B): every centroid c with r_c <= thr gets its direct distance, and the
/// smallest wins, ties to the lowest index. labels/dist come in as the ranking's choice and its
/// direct distance. The rows go P at a time through the same register blocking and the same
/// chunks of tiles as the main pass, and candidates are measured four at a time, since on
/// adversarial data (k = n tight clusters) nearly every row comes here.
template <class T, bool kCentred>
void recheck_rows(const T* x, std::int64_t d, const T* centroids, int k, const T* mean,
                  const T* tiles, int n_tiles, std::int64_t chunk_tiles, const std::int64_t* idx,
                  const double* thr, std::int64_t m, std::int32_t* labels, T* dist) {
  using VT = typename Simd<T>::V;
  constexpr int W = Simd<T>::W;
  constexpr int V = kVecsPerTile;
  constexpr int P = KMEANS_POINTS;
  constexpr int KT = V * W;
  T centred[P][kCentred ? kMaxCentredD : 1];
  for (std::int64_t t0 = 0; t0 < n_tiles; t0 += chunk_tiles) {
    const int t1 = static_cast<int>(t0 + chunk_tiles < n_tiles ? t0 + chunk_tiles : n_tiles);
    for (std::int64_t q0 = 0; q0 < m; q0 += P) {
      const int valid = m - q0 < P ? static_cast<int>(m - q0) : P;
      const T* xp[P];
      T thr_t[P];
      int pending[P][4];
      int n_pending[P];
      KMEANS_UNROLL
      for (int p = 0; p < P; ++p) {
        const std::int64_t i = idx[q0 + (p < valid ? p : valid - 1)];  // tail: repeat the last
        xp[p] = x + i * d;
        if constexpr (kCentred) {
          for (std::int64_t j = 0; j < d; ++j) centred[p][j] = xp[p][j] - mean[j];
          xp[p] = centred[p];
        }
        // thr rounded up to T: a value a of T is <= thr_t exactly when a <= thr or a = thr_t.
        const double th = thr[q0 + (p < valid ? p : valid - 1)];
        thr_t[p] = static_cast<T>(th);
        if (static_cast<double>(thr_t[p]) < th) thr_t[p] = __builtin_nextafter(thr_t[p], __builtin_inf());
        n_pending[p] = 0;
      }
      auto measure = [&](int p, int count) {
        const std::int64_t i = idx[q0 + p];
        for (int r = count; r < 4; ++r) pending[p][r] = pending[p][0];  // pad with a repeat
        T dq[4];
        direct_distance_4c(x + i * d, d, centroids, pending[p], dq);
        for (int r = 0; r < count; ++r)
          if (dq[r] < dist[i] || (dq[r] == dist[i] && pending[p][r] < labels[i])) {
            dist[i] = dq[r];
            labels[i] = pending[p][r];
          }
        n_pending[p] = 0;
      };
      for (int t = t0; t < t1; ++t) {
        const T* ct = tiles + static_cast<std::int64_t>(t) * (d + 1) * KT;
        VT acc[P][V];
        KMEANS_UNROLL
        for (int p = 0; p < P; ++p)
          KMEANS_UNROLL
          for (int v = 0; v < V; ++v) acc[p][v] = *reinterpret_cast<const VT*>(ct + v * W);
        for (std::int64_t j = 0; j < d; ++j) {
          const T* cj = ct + (j + 1) * KT;
          KMEANS_UNROLL
          for (int p = 0; p < P; ++p) {
            const T xs = kCentred ? xp[p][j] : xp[p][j] - mean[j];
            KMEANS_UNROLL
            for (int v = 0; v < V; ++v) acc[p][v] -= *reinterpret_cast<const VT*>(cj + v * W) * xs;
          }
        }
        for (int p = 0; p < valid; ++p)
          for (int v = 0; v < V; ++v) {
            std::uint64_t bits = lanes_at_most(acc[p][v], thr_t[p]);
            while (bits) {
              const int c = t * KT + v * W + __builtin_ctzll(bits);
              bits &= bits - 1;
              if (c >= k) continue;
              pending[p][n_pending[p]++] = c;
              if (n_pending[p] == 4) measure(p, 4);
            }
          }
      }
      for (int p = 0; p < valid; ++p)
        if (n_pending[p] > 0) measure(p, n_pending[p]);
    }
  }
}

/// AssignFn, ranking with assign_chunk / recheck_rows (kGemm false) or with the GEMM-shaped
/// gemm_chunk / gemm_recheck (kGemm true: scratch holds rows + gemm_scratch(d) values).
template <class T, bool kGemm>
void assign_rows(const T* x, std::int64_t rows, std::int64_t d, const T* centroids, int k,
                 const T* mean, const T* tiles, int n_tiles, std::int32_t* labels, T* dist,
                 T* second) {
  using VI = typename Simd<T>::I;
  constexpr int W = Simd<T>::W;
  constexpr int V = kVecsPerTile;
  constexpr int P = KMEANS_POINTS;
  constexpr int KT = V * W;
  using LI = typename LaneInt<T>::type;

  VI lane[V];  // index of each lane within a tile
  KMEANS_UNROLL
  for (int v = 0; v < V; ++v)
    for (int l = 0; l < W; ++l) lane[v][l] = static_cast<LI>(v * W + l);
  const BoundTerms bt = bound_terms<T>(d, kGemm ? gemm_rank_length(d) : d);
  const GemmScratch<T> gs(second + rows);  // the GEMM ranking's state (kGemm only)

  // Cache blocking: a sub-block of rows and a chunk of centroid tiles, each about half of a
  // typical per-core L2, are paired so that neither streams from memory when k * d is large.
  // Small problems are one sub-block and one chunk. Between chunks, labels, dist and second
  // hold the running best ranking, its centroid and the second smallest ranking (a later chunk
  // wins only when strictly smaller: ties keep the lower index).
  const std::int64_t row_bytes = d * static_cast<std::int64_t>(sizeof(T));
  const std::int64_t tile_bytes = (row_bytes + static_cast<std::int64_t>(sizeof(T))) * KT;
  // The GEMM kernel's sub-blocks are whole register blocks and whole groups of W (the direct
  // distances, W at a time), at least one.
  constexpr int PB = kGemm ? (kGemmMR % 4 == 0 ? kGemmMR * 4 : kGemmMR * 16) : P;
  std::int64_t sub_rows = kCacheBlockBytes / row_bytes / PB * PB;
  if (sub_rows < PB) sub_rows = PB;
  std::int64_t chunk_tiles = kCacheBlockBytes / tile_bytes;
  if (chunk_tiles < 1) chunk_tiles = 1;

  // Rows waiting for the re-check, done in batches.
  constexpr int kMaxFlagged = 256;
  std::int64_t flagged[kMaxFlagged];
  double flagged_thr[kMaxFlagged];
  int n_flagged = 0;
  auto recheck = [&]() {
    if (n_flagged == 0) return;
    if constexpr (kGemm)
      gemm_recheck<T>(x, d, centroids, k, mean, tiles, n_tiles, flagged, flagged_thr, n_flagged,
                      labels, dist, gs);
    else if (d <= kMaxCentredD)
      recheck_rows<T, true>(x, d, centroids, k, mean, tiles, n_tiles, chunk_tiles, flagged,
                            flagged_thr, n_flagged, labels, dist);
    else
      recheck_rows<T, false>(x, d, centroids, k, mean, tiles, n_tiles, chunk_tiles, flagged,
                             flagged_thr, n_flagged, labels, dist);
    n_flagged = 0;
  };

  for (std::int64_t r0 = 0; r0 < rows; r0 += sub_rows) {
    const std::int64_t r1 = r0 + sub_rows < rows ? r0 + sub_rows : rows;
    for (std::int64_t t0 = 0; t0 < n_tiles; t0 += chunk_tiles) {
      const int t1 = static_cast<int>(t0 + chunk_tiles < n_tiles ? t0 + chunk_tiles : n_tiles);
      if constexpr (kGemm)
        gemm_chunk<T>(x, mean, r0, r1, d, tiles, static_cast<int>(t0), t1, labels, dist, second,
                      lane, gs);
      else if (d <= kMaxCentredD)
        assign_chunk<T, true>(x, mean, r0, r1, d, tiles, static_cast<int>(t0), t1, labels, dist,
                              second, lane);
      else
        assign_chunk<T, false>(x, mean, r0, r1, d, tiles, static_cast<int>(t0), t1, labels, dist,
                               second, lane);
    }
    // The direct distance of the ranking's choice (four points at a time, for independent
    // dependency chains); a rival ranking within the bound sends the point to the re-check,
    // which makes the label the exact argmin of the direct formula.
    // Wide rows: W points at once, one per lane (the same bits, see cpu_kernel_direct_lanes.inl).
    constexpr int DW = kHaveDirectLanes ? Simd<T>::W : 4;
    const bool lanes = kHaveDirectLanes && d >= kDirectLanesMinD;
    const int step = lanes ? DW : 4;
    for (std::int64_t i0 = r0; i0 < r1; i0 += step) {
      const int q_n = r1 - i0 < step ? static_cast<int>(r1 - i0) : step;
      T dq[DW > 4 ? DW : 4];
      if (lanes && q_n == DW) {
        direct_distance_lanes(x + i0 * d, d, centroids, labels + i0, dq);
      } else {
        int q = 0;
        for (; q + 4 <= q_n; q += 4)
          direct_distance_x4(x + (i0 + q) * d, d, centroids, labels + i0 + q, dq + q);
        for (; q < q_n; ++q)
          dq[q] = direct_distance(x + (i0 + q) * d,
                                  centroids + static_cast<std::int64_t>(labels[i0 + q]) * d, d);
      }
      for (int q = 0; q < q_n; ++q) {
        const std::int64_t i = i0 + q;
        double thr;
        const double rb = static_cast<double>(dist[i]);
        dist[i] = dq[q];
        if (has_rival(bt, rb, static_cast<double>(dq[q]), static_cast<double>(second[i]), thr)) {
          if (thr < __builtin_inf()) {
            flagged[n_flagged] = i;
            flagged_thr[n_flagged++] = thr;
            if (n_flagged == kMaxFlagged) recheck();
          } else {  // the bound says nothing: every centroid, directly
            for (int c = 0; c < k; ++c) {
              const T dc = direct_distance(x + i * d, centroids + static_cast<std::int64_t>(c) * d, d);
              if (dc < dist[i] || (dc == dist[i] && c < labels[i])) {
                dist[i] = dc;
                labels[i] = c;
              }
            }
          }
        }
      }
    }
    recheck();
  }
}

/// Points [r0, r1) against tiles [t0, t1): the register-blocked core. Writes (t0 == 0) or
/// merges into each point's best ranking (rank), its centroid (labels) and the second smallest
/// ranking (second).
template <class T, bool kCentred>
void assign_chunk(const T* x, const T* mean, std::int64_t r0, std::int64_t r1, std::int64_t d,
                  const T* tiles, int t0, int t1, std::int32_t* labels, T* rank, T* second,
                  const typename Simd<T>::I* lane) {
  using VT = typename Simd<T>::V;
  using VI = typename Simd<T>::I;
  constexpr int W = Simd<T>::W;
  constexpr int V = kVecsPerTile;
  constexpr int P = KMEANS_POINTS;
  constexpr int KT = V * W;
  using LI = typename LaneInt<T>::type;
  const T inf = __builtin_inf();
  T centred[P][kCentred ? kMaxCentredD : 1];

  for (std::int64_t i0 = r0; i0 < r1; i0 += P) {
    const T* xp[P];
    KMEANS_UNROLL
    for (int p = 0; p < P; ++p) {
      const std::int64_t r = (i0 + p < r1) ? i0 + p : r1 - 1;  // tail: repeat the last row
      xp[p] = x + r * d;
      if constexpr (kCentred) {
        for (std::int64_t j = 0; j < d; ++j) centred[p][j] = xp[p][j] - mean[j];
        xp[p] = centred[p];
      }
    }
    // Lane-wise running minimum, the tile it came from (the lane gives the rest of the index)
    // and the lane-wise second smallest value.
    VT best[P][V], sec[P][V];
    VI btile[P][V];
    KMEANS_UNROLL
    for (int p = 0; p < P; ++p)
      KMEANS_UNROLL
      for (int v = 0; v < V; ++v) {
        best[p][v] = VT{} + inf;
        sec[p][v] = VT{} + inf;
        btile[p][v] = VI{};
      }
    for (int t = t0; t < t1; ++t) {
      // Row 0 of the tile holds |c'|^2 / 2, rows 1..d the centred coordinates c'.
      const T* ct = tiles + static_cast<std::int64_t>(t) * (d + 1) * KT;
      VT acc[P][V];
      KMEANS_UNROLL
      for (int p = 0; p < P; ++p)
        KMEANS_UNROLL
        for (int v = 0; v < V; ++v) acc[p][v] = *reinterpret_cast<const VT*>(ct + v * W);
      for (std::int64_t j = 0; j < d; ++j) {
        const T* cj = ct + (j + 1) * KT;
        KMEANS_UNROLL
        for (int p = 0; p < P; ++p) {
          const T xs = kCentred ? xp[p][j] : xp[p][j] - mean[j];
          KMEANS_UNROLL
          for (int v = 0; v < V; ++v) acc[p][v] -= *reinterpret_cast<const VT*>(cj + v * W) * xs;
        }
      }
      const VI tv = VI{} + static_cast<LI>(t);
      KMEANS_UNROLL
      for (int p = 0; p < P; ++p)
        KMEANS_UNROLL
        for (int v = 0; v < V; ++v) {
          const VT a = acc[p][v], b = best[p][v];
          const VT hi = a < b ? b : a;  // the larger of the two joins the runner-up
          sec[p][v] = hi < sec[p][v] ? hi : sec[p][v];
          const auto less = a < b;  // strict: an equal later tile loses
          best[p][v] = less ? a : b;
          btile[p][v] = less ? tv : btile[p][v];
        }
    }
    for (int p = 0; p < P && i0 + p < r1; ++p) {
      // Minimum over all lanes, then the lowest centroid index among the lanes that hold it.
      VT m = best[p][0];
      KMEANS_UNROLL
      for (int v = 1; v < V; ++v) m = best[p][v] < m ? best[p][v] : m;
      const T bv = hmin<T, KMEANS_VBYTES>(reinterpret_cast<const T*>(&m));
      const VI none = VI{} + static_cast<LI>(0x7fffffff);
      VI cand = none;
      KMEANS_UNROLL
      for (int v = 0; v < V; ++v) {
        const VI idx = btile[p][v] * static_cast<LI>(KT) + lane[v];
        const VI pick = best[p][v] == bv ? idx : none;
        cand = pick < cand ? pick : cand;
      }
      const LI bi = hmin<LI, KMEANS_VBYTES>(reinterpret_cast<const LI*>(&cand));
      // Second smallest overall: the lanes' runners-up and every other lane's best.
      VT s = sec[p][0];
      KMEANS_UNROLL
      for (int v = 0; v < V; ++v) {
        const VI idx = btile[p][v] * static_cast<LI>(KT) + lane[v];
        const VT other = idx == bi ? VT{} + inf : best[p][v];
        s = sec[p][v] < s ? sec[p][v] : s;
        s = other < s ? other : s;
      }
      const T sv = hmin<T, KMEANS_VBYTES>(reinterpret_cast<const T*>(&s));
      const std::int64_t i = i0 + p;
      if (t0 == 0) {
        labels[i] = static_cast<std::int32_t>(bi);
        rank[i] = bv;
        second[i] = sv;
      } else if (bv < rank[i]) {
        second[i] = rank[i] < sv ? rank[i] : sv;
        labels[i] = static_cast<std::int32_t>(bi);
        rank[i] = bv;
      } else {
        second[i] = bv < second[i] ? bv : second[i];
      }
    }
  }
}

#include "cpu_kernel_accumulate.inl"

}  // namespace

const KernelTable& KMEANS_TABLE() {
  static const KernelTable table{KMEANS_ISA_NAME,
                                 kVecsPerTile * Simd<float>::W,
                                 kVecsPerTile * Simd<double>::W,
                                 Simd<float>::W,
                                 Simd<double>::W,
                                 KMEANS_DIRECT_FMA != 0,
                                 &assign_rows<float, false>,
                                 &assign_rows<double, false>,
                                 &assign_rows<float, true>,
                                 &assign_rows<double, true>,
                                 &assign_rows_small_k<float>,
                                 &assign_rows_small_k<double>,
                                 &assign_centroid_lanes<float>,
                                 &assign_centroid_lanes<double>,
                                 &accumulate_rows<float>,
                                 &accumulate_rows<double>,
                                 &accumulate_leaf<float>,
                                 &accumulate_leaf<double>,
                                 &add_doubles,
                                 &subtile_sums<float>,
                                 &subtile_sums<double>};
  return table;
}

#include "cpu_bounds_kernel.inl"

}  // namespace kmeans::detail::cpu
