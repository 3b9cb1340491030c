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

/// The smallest lane of an index vector, taken as a value (as hmin_value).
template <class T>
inline int hmin_index(typename Simd<T>::I m) {
#if KMEANS_VBYTES == 64 && defined(__AVX512F__)
  if constexpr (sizeof(T) == 4)
    return _mm512_reduce_min_epi32(reinterpret_cast<__m512i>(m));
  else
    return static_cast<int>(_mm512_reduce_min_epi64(reinterpret_cast<__m512i>(m)));
#else
  typename LaneInt<T>::type lanes[Simd<T>::W];
  __builtin_memcpy(lanes, &m, sizeof m);
  typename LaneInt<T>::type best = lanes[0];
  for (int l = 1; l < Simd<T>::W; ++l) best = lanes[l] < best ? lanes[l] : best;
  return static_cast<int>(best);
#endif
}

/// One pass of V vectors of centroids (lanes c0 .. c0 + V W) for P points, folded into each
/// point's lane-wise running best: bv[p] lane l the smallest distance seen in lane l, bi[p] its
/// centroid. Strictly smaller wins and the centroids come in ascending order, so each lane keeps
/// the lowest index among its equal values.
template <class T, int V, int P>
inline void centroid_lanes_fold(const T* const* xr, const T* const* next, std::int64_t d,
                                const T* ct, std::int64_t kp, int c0, typename Simd<T>::V (&bv)[P],
                                typename Simd<T>::I (&bi)[P]) {
  using VT = typename Simd<T>::V;
  using VI = typename Simd<T>::I;
  using LI = typename LaneInt<T>::type;
  constexpr int W = Simd<T>::W;
  VT acc[P][V];
  centroid_lanes_block<T, V, P>(xr, next, d, ct + c0, kp, acc);
  VI iota;
  for (int l = 0; l < W; ++l) iota[l] = static_cast<LI>(l);
  KMEANS_UNROLL
  for (int p = 0; p < P; ++p)
    KMEANS_UNROLL
    for (int v = 0; v < V; ++v) {
      const auto less = acc[p][v] < bv[p];
      bv[p] = less ? acc[p][v] : bv[p];
      bi[p] = less ? iota + static_cast<LI>(c0 + v * W) : bi[p];
    }
}

/// P points at a time (the last group repeats its last row) against the nv vectors of
/// centroids in ceil(nv / VHi) passes of nearly equal sizes, VLo or VHi vectors each (VLo =
/// VHi - 1, or VLo = VHi when every pass is full); lanes beyond k hold +inf distances
/// (the layout's padding) and never win. After the passes each point takes the smallest lane
/// value and, among the lanes holding it, the lowest centroid: the first centroid of the
/// smallest distance, as the small-k kernel's strict ascending compare gives.
template <class T, int P, int VLo, int VHi>
void assign_centroid_lanes_p(const T* x, std::int64_t rows, std::int64_t d, const T* ct,
                             std::int64_t kp, int nv, std::int32_t* labels, T* dist) {
  using VT = typename Simd<T>::V;
  using VI = typename Simd<T>::I;
  using LI = typename LaneInt<T>::type;
  constexpr int W = Simd<T>::W;
  const int passes = (nv + VHi - 1) / VHi;
  const T inf = __builtin_inf();
  for (std::int64_t i0 = 0; i0 < rows; i0 += P) {
    const T* xr[P];
    KMEANS_UNROLL
    for (int p = 0; p < P; ++p) xr[p] = x + (i0 + p < rows ? i0 + p : rows - 1) * d;
    const T* nr[P];
    const bool ahead = i0 + 2 * P <= rows;
    KMEANS_UNROLL
    for (int p = 0; p < P; ++p) nr[p] = xr[p] + P * d;
    VT bv[P];
    VI bi[P];
    KMEANS_UNROLL
    for (int p = 0; p < P; ++p) {
      bv[p] = VT{} + inf;
      bi[p] = VI{};
    }
    int v0 = 0;
    for (int q = 0; q < passes; ++q) {
      const int nvp = (nv - v0) / (passes - q);
      const T* const* next = q == 0 && ahead ? nr : nullptr;  // the rows come in on the first pass
      if (VLo == VHi || nvp == VLo)  // a pass holds VLo or VHi vectors (the caller's nv)
        centroid_lanes_fold<T, VLo, P>(xr, next, d, ct, kp, v0 * W, bv, bi);
      else
        centroid_lanes_fold<T, VHi, P>(xr, next, d, ct, kp, v0 * W, bv, bi);
      v0 += nvp;
    }
    const int valid = rows - i0 < P ? static_cast<int>(rows - i0) : P;
    KMEANS_UNROLL
    for (int p = 0; p < P; ++p) {
      if (p >= valid) break;
      const T best = hmin_value<T>(bv[p]);
      const VI cand = bv[p] == best ? bi[p] : VI{} + static_cast<LI>(0x7fffffff);
      labels[i0 + p] = hmin_index<T>(cand);
      dist[i0 + p] = best;
    }
  }
}

/// The table's centroid-lanes entry (AssignCentroidLanesFn): as many points at once as leave
/// registers for the chains of a pass. AVX-512: one or two vectors of centroids in one pass of 8
/// or 6 points; three in one pass of 4 points; more in passes of two vectors (and one of one
/// when nv is odd) of 6 points. Kernel alone, Zen 4, cycles per row-feature (bench/NOTES.md):
/// passes of 2 with 6 points against passes of 3 with 4, float64 d = 32 k = 128 18.8 / 24.0,
/// float d = 16 k = 256 19.7 / 21.6, d = 2048 k = 64 5.0 / 5.7-6.2; four vectors in one pass
/// (3 points) 7.0 at d = 2048, k = 64; one vector per pass (8 points) 1.3-1.6x slower.
template <class T>
void assign_centroid_lanes(const T* x, std::int64_t rows, std::int64_t d, const T* ct, int k,
                           std::int32_t* labels, T* dist) {
  constexpr int W = Simd<T>::W;
  constexpr bool wide = KMEANS_VBYTES == 64;  // 32 vector registers
  const std::int64_t kp = centroid_lanes_kp(k);
  const int nv = (k + W - 1) / W;
  if (nv == 1) return assign_centroid_lanes_p<T, wide ? 8 : 6, 1, 1>(x, rows, d, ct, kp, nv, labels, dist);
  if (nv == 2) return assign_centroid_lanes_p<T, wide ? 6 : 3, 2, 2>(x, rows, d, ct, kp, nv, labels, dist);
  if (nv == 3) return assign_centroid_lanes_p<T, wide ? 4 : 2, 3, 3>(x, rows, d, ct, kp, nv, labels, dist);
  return assign_centroid_lanes_p<T, wide ? 6 : 3, 1, 2>(x, rows, d, ct, kp, nv, labels, dist);
}
