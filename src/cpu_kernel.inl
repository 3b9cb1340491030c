// SPDX-License-Identifier: Apache-2.0
// Body of the CPU distance + argmin kernel, included by cpu_kernel_{generic,avx2,avx512}.cpp,
// each compiled with its own instruction-set flags and defining:
//   KMEANS_VBYTES   vector width in bytes (16, 32, 64)
//   KMEANS_POINTS   points per register block
//   KMEANS_TABLE    name of the function returning this ISA's KernelTable
//   KMEANS_ISA_NAME the table's name
// Everything here sits in an anonymous namespace and uses no standard-library templates, so no
// ISA-specific code can leak into other translation units through inline functions.
//
// Register blocking: a tile of V vectors of centroids ([d][tile] layout, so one broadcast of a
// point coordinate feeds a whole vector of centroids) against P points at once; P*V running
// distances live in registers, and the lane-wise running minimum and its index are kept across
// tiles with compare + blend (strictly smaller wins, so ties keep the lower index).
#include <cstdint>

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

template <class T, bool kCentred>
void assign_chunk(const T* x, const T* mean, std::int64_t r0, std::int64_t r1, std::int64_t d,
                  const T* tiles, int t0, int t1, std::int32_t* labels, T* dist,
                  const typename Simd<T>::I* lane);

template <class T>
void assign_rows(const T* x, std::int64_t rows, std::int64_t d, const T* centroids,
                 const T* mean, const T* tiles, int n_tiles, std::int32_t* labels, T* dist) {
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

  // Cache blocking: a sub-block of rows and a chunk of centroid tiles, each about half of a
  // typical per-core L2, are paired so that neither streams from memory when k * d is large.
  // Small problems are one sub-block and one chunk. Labels and distances hold the running best
  // between chunks (a later chunk wins only when strictly closer: ties keep the lower index).
  const std::int64_t row_bytes = d * static_cast<std::int64_t>(sizeof(T));
  const std::int64_t tile_bytes = (row_bytes + static_cast<std::int64_t>(sizeof(T))) * KT;
  std::int64_t sub_rows = kCacheBlockBytes / row_bytes / P * P;
  if (sub_rows < P) sub_rows = P;
  std::int64_t chunk_tiles = kCacheBlockBytes / tile_bytes;
  if (chunk_tiles < 1) chunk_tiles = 1;

  for (std::int64_t r0 = 0; r0 < rows; r0 += sub_rows) {
    const std::int64_t r1 = r0 + sub_rows < rows ? r0 + sub_rows : rows;
    for (std::int64_t t0 = 0; t0 < n_tiles; t0 += chunk_tiles) {
      const int t1 = static_cast<int>(t0 + chunk_tiles < n_tiles ? t0 + chunk_tiles : n_tiles);
      if (d <= kMaxCentredD)
        assign_chunk<T, true>(x, mean, r0, r1, d, tiles, static_cast<int>(t0), t1, labels, dist, lane);
      else
        assign_chunk<T, false>(x, mean, r0, r1, d, tiles, static_cast<int>(t0), t1, labels, dist, lane);
    }
    // The argmin used |c'|^2/2 - x'.c'; the distance itself is recomputed directly, so it has
    // no cancellation error.
    for (std::int64_t i = r0; i < r1; ++i) {
      const T* xi = x + i * d;
      const T* ci = centroids + static_cast<std::int64_t>(labels[i]) * d;
      T s = 0;
      for (std::int64_t j = 0; j < d; ++j) {
        const T diff = xi[j] - ci[j];
        s += diff * diff;
      }
      dist[i] = s;
    }
  }
}

/// Points [r0, r1) against tiles [t0, t1): the register-blocked core. Merges into labels/dist
/// when t0 > 0.
template <class T, bool kCentred>
void assign_chunk(const T* x, const T* mean, std::int64_t r0, std::int64_t r1, std::int64_t d,
                  const T* tiles, int t0, int t1, std::int32_t* labels, T* dist,
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
    // Lane-wise running minimum and the tile it came from (the lane gives the rest of the index).
    VT best[P][V];
    VI btile[P][V];
    KMEANS_UNROLL
    for (int p = 0; p < P; ++p)
      KMEANS_UNROLL
      for (int v = 0; v < V; ++v) {
        best[p][v] = VT{} + inf;
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
          const auto less = acc[p][v] < best[p][v];  // strict: an equal later tile loses
          best[p][v] = less ? acc[p][v] : best[p][v];
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
      const auto bi = static_cast<std::int32_t>(hmin<LI, KMEANS_VBYTES>(reinterpret_cast<const LI*>(&cand)));
      if (t0 == 0 || bv < dist[i0 + p]) {
        labels[i0 + p] = bi;
        dist[i0 + p] = bv;
      }
    }
  }
}

/// Small k: points in the SIMD lanes (a group of 2 vectors of points, transposed into a stack
/// buffer), centroids broadcast one at a time, distances in the direct form sum((x - c)^2).
/// No horizontal argmin and no padding waste, which dominate the tiled kernel when k is a few
/// vectors wide. The lane-wise strict comparison in ascending centroid order keeps ties at the
/// lowest index.
template <class T>
void assign_rows_small_k(const T* x, std::int64_t rows, std::int64_t d, const T* centroids,
                         int k, std::int32_t* labels, T* dist) {
  using VT = typename Simd<T>::V;
  using VI = typename Simd<T>::I;
  constexpr int W = Simd<T>::W;
  constexpr int G = 2;
  using LI = typename LaneInt<T>::type;
  alignas(64) T xt[kSmallKMaxD][G * W];
  const T inf = __builtin_inf();

  for (std::int64_t i0 = 0; i0 < rows; i0 += G * W) {
    for (int l = 0; l < G * W; ++l) {
      const std::int64_t r = i0 + l < rows ? i0 + l : rows - 1;  // tail: repeat the last row
      for (std::int64_t j = 0; j < d; ++j) xt[j][l] = x[r * d + j];
    }
    VT best[G];
    VI bidx[G];
    KMEANS_UNROLL
    for (int g = 0; g < G; ++g) {
      best[g] = VT{} + inf;
      bidx[g] = VI{};
    }
    for (int c = 0; c < k; ++c) {
      const T* cc = centroids + static_cast<std::int64_t>(c) * d;
      VT acc[G];
      KMEANS_UNROLL
      for (int g = 0; g < G; ++g) acc[g] = VT{};
      for (std::int64_t j = 0; j < d; ++j) {
        const T cj = cc[j];
        KMEANS_UNROLL
        for (int g = 0; g < G; ++g) {
          const VT diff = *reinterpret_cast<const VT*>(&xt[j][g * W]) - cj;
          acc[g] += diff * diff;
        }
      }
      const VI cv = VI{} + static_cast<LI>(c);
      KMEANS_UNROLL
      for (int g = 0; g < G; ++g) {
        const auto less = acc[g] < best[g];
        best[g] = less ? acc[g] : best[g];
        bidx[g] = less ? cv : bidx[g];
      }
    }
    for (int l = 0; l < G * W && i0 + l < rows; ++l) {
      labels[i0 + l] = static_cast<std::int32_t>(bidx[l / W][l % W]);
      dist[i0 + l] = best[l / W][l % W];
    }
  }
}

}  // namespace

const KernelTable& KMEANS_TABLE() {
  static const KernelTable table{KMEANS_ISA_NAME,
                                 kVecsPerTile * Simd<float>::W,
                                 kVecsPerTile * Simd<double>::W,
                                 &assign_rows<float>,
                                 &assign_rows<double>,
                                 &assign_rows_small_k<float>,
                                 &assign_rows_small_k<double>};
  return table;
}

}  // namespace kmeans::detail::cpu
