// SPDX-License-Identifier: Apache-2.0
// The centroid-lanes CPU kernel (included by cpu_kernel.inl inside its anonymous namespace, after
// cpu_kernel_exact.inl): for wide rows and k of a few vectors, the centroids sit in the SIMD
// lanes ([d][kp] layout, built once per pass) and each point's coordinate is broadcast, so the
// rows are read straight, with no transpose.
//
// Each (point, centroid) lane runs direct_step over features 0..d-1 in order from +0.0, as the
// small-k kernel's lanes do, but on c - x instead of x - c: negation is exact and
// (-t)^2 = t^2, fma(-t, -t, s) = fma(t, t, s), so every distance is the same bits and the argmin
// (the first centroid of the smallest distance) the same label. The small-k kernel transposes
// every row into points-in-lanes form: on AMD Zen 4 those transposes were ~25% of its time at
// 5000 x 2048, k = 32 (perf), while here the only per-row work beside the arithmetic is one
// horizontal minimum per point (bench/NOTES.md, "centroids in the lanes").

/// The running distances of P points to V vectors of centroids over features [0, d): acc starts
/// at +0.0 and takes one direct step per (point, centroid, feature), in feature order.
template <class T, int V, int P>
inline void centroid_lanes_block(const T* const* xr, const T* const* next, std::int64_t d,
                                 const T* ct, std::int64_t kp, typename Simd<T>::V (&acc)[P][V]) {
  using VT = typename Simd<T>::V;
  constexpr int W = Simd<T>::W;
  VT a[P * V];  // local and flat, so the chains stay in registers (GCC 12 kept a[P][V] with
                // V = 1 in memory; acc's address is taken by the caller)
  KMEANS_UNROLL
  for (int q = 0; q < P * V; ++q) a[q] = VT{};
  // Meanwhile the next group's rows (`next`, P rows) are fetched into L2, a cache line of each
  // as the loop enters that line, so the rows never wait on memory: without it the rows
  // streamed from memory took 1.2x their time from L2 (5000 x 2048, k = 32). (One loop with a
  // test, not a lambda per step: GCC then kept the chains in memory.)
  constexpr std::int64_t kLineMask = 64 / static_cast<std::int64_t>(sizeof(T)) - 1;
  const T* row = ct;
  for (std::int64_t j = 0; j < d; ++j, row += kp) {
    if ((j & kLineMask) == 0 && next != nullptr)
      KMEANS_UNROLL
      for (int p = 0; p < P; ++p) __builtin_prefetch(next[p] + j, 0, 2);
    VT c[V];
    KMEANS_UNROLL
    for (int v = 0; v < V; ++v) c[v] = *reinterpret_cast<const VT*>(row + v * W);
    KMEANS_UNROLL
    for (int p = 0; p < P; ++p)
      KMEANS_UNROLL
      for (int v = 0; v < V; ++v) a[p * V + v] = direct_step_m<T>(c[v], xr[p] + j, a[p * V + v]);
  }
  KMEANS_UNROLL
  for (int p = 0; p < P; ++p)
    KMEANS_UNROLL
    for (int v = 0; v < V; ++v) acc[p][v] = a[p * V + v];
}

/// The smallest lane of m, taken as a value: reading the lanes through memory (hmin) made GCC 12
/// keep the accumulation chains that fed m in memory for the whole feature loop.
template <class T>
inline T hmin_value(typename Simd<T>::V m) {
#if KMEANS_VBYTES == 64 && defined(__AVX512F__)
  if constexpr (sizeof(T) == 4)
    return _mm512_reduce_min_ps(reinterpret_cast<__m512>(m));
  else
    return _mm512_reduce_min_pd(reinterpret_cast<__m512d>(m));
#else
  alignas(KMEANS_VBYTES) T lanes[Simd<T>::W];
  __builtin_memcpy(lanes, &m, sizeof m);
  return hmin<T, KMEANS_VBYTES>(lanes);
#endif
}

/// The first lane (vector-major) of acc[0..V) equal to `best`, which one of them holds.
template <class T, int V>
inline int first_lane_of(const typename Simd<T>::V (&acc)[V], T best) {
  constexpr int W = Simd<T>::W;
#if KMEANS_VBYTES == 64 && defined(__AVX512F__)
  KMEANS_UNROLL
  for (int v = 0; v < V - 1; ++v) {
    unsigned mask;
    if constexpr (sizeof(T) == 4)
      mask = _mm512_cmpeq_ps_mask(reinterpret_cast<__m512>(acc[v]), _mm512_set1_ps(best));
    else
      mask = _mm512_cmpeq_pd_mask(reinterpret_cast<__m512d>(acc[v]), _mm512_set1_pd(best));
    if (mask != 0) return v * W + __builtin_ctz(mask);
  }
  unsigned mask;
  if constexpr (sizeof(T) == 4)
    mask = _mm512_cmpeq_ps_mask(reinterpret_cast<__m512>(acc[V - 1]), _mm512_set1_ps(best));
  else
    mask = _mm512_cmpeq_pd_mask(reinterpret_cast<__m512d>(acc[V - 1]), _mm512_set1_pd(best));
  return (V - 1) * W + __builtin_ctz(mask | (1u << (W - 1)));  // mask != 0: best is there
#else
  for (int v = 0; v < V; ++v) {
    const T* lanes = reinterpret_cast<const T*>(&acc[v]);
    for (int l = 0; l < W; ++l)
      if (lanes[l] == best) return v * W + l;
  }
  return V * W - 1;  // not reached: best is one of the lanes
#endif
}

/// P points at a time (the last group repeats its last row) against the V vectors of centroids
/// starting at lane c0 (a multiple of W): lanes beyond k hold +inf distances (the layout's
/// padding) and never win. `merge`: an earlier call covered the lanes below c0, and a point's
/// label and distance change only where this call's best is strictly smaller (ties keep the
/// lower index).
template <class T, int V, int P>
void assign_centroid_lanes_vp(const T* x, std::int64_t rows, std::int64_t d, const T* ct,
                              std::int64_t kp, int c0, bool merge, std::int32_t* labels, T* dist) {
  using VT = typename Simd<T>::V;
  constexpr int W = Simd<T>::W;
  for (std::int64_t i0 = 0; i0 < rows; i0 += P) {
    const T* xr[P];
    KMEANS_UNROLL
    for (int p = 0; p < P; ++p) xr[p] = x + (i0 + p < rows ? i0 + p : rows - 1) * d;
    const T* nr[P];
    const bool ahead = i0 + 2 * P <= rows;
    KMEANS_UNROLL
    for (int p = 0; p < P; ++p) nr[p] = xr[p] + P * d;
    VT acc[P][V];
    centroid_lanes_block<T, V, P>(xr, ahead ? nr : nullptr, d, ct + c0, kp, acc);
    const int valid = rows - i0 < P ? static_cast<int>(rows - i0) : P;
    for (int p = 0; p < valid; ++p) {
      // The smallest lane value, then the first lane holding it: ties to the lowest index.
      VT m = acc[p][0];
      KMEANS_UNROLL
      for (int v = 1; v < V; ++v) m = acc[p][v] < m ? acc[p][v] : m;
      const T best = hmin_value<T>(m);
      if (merge && !(best < dist[i0 + p])) continue;
      labels[i0 + p] = c0 + first_lane_of<T, V>(acc[p], best);
      dist[i0 + p] = best;
    }
  }
}

/// The table's centroid-lanes entry (AssignCentroidLanesFn): the centroids' nv vectors in
/// ceil(nv / 3) passes of nearly equal sizes (one call of assign_centroid_lanes_vp each, over
/// the whole rows), with as many points at once as leave registers for the chains. Four vectors
/// in one pass (3 points) ran at 7.0 cycles per row-feature at d = 2048, k = 64 (Zen 4), two
/// passes of two (6 points) at ~4.4: the pass's centroid rows, not the FMAs, bound it.
template <class T>
void assign_centroid_lanes(const T* x, std::int64_t rows, std::int64_t d, const T* ct, int k,
                           std::int32_t* labels, T* dist) {
  constexpr int W = Simd<T>::W;
  constexpr bool wide = KMEANS_VBYTES == 64;  // 32 vector registers
  const std::int64_t kp = centroid_lanes_kp(k);
  const int nv = (k + W - 1) / W;
  const int passes = (nv + 2) / 3;
  int v0 = 0;
  for (int p = 0; p < passes; ++p) {
    const int nvp = (nv - v0) / (passes - p);
    const int c0 = v0 * W;
    const bool merge = p > 0;
    switch (nvp) {
      case 1: assign_centroid_lanes_vp<T, 1, wide ? 8 : 6>(x, rows, d, ct, kp, c0, merge, labels, dist); break;
      case 2: assign_centroid_lanes_vp<T, 2, wide ? 6 : 3>(x, rows, d, ct, kp, c0, merge, labels, dist); break;
      default: assign_centroid_lanes_vp<T, 3, wide ? 4 : 2>(x, rows, d, ct, kp, c0, merge, labels, dist); break;
    }
    v0 += nvp;
  }
}
