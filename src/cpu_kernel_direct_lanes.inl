// SPDX-License-Identifier: Apache-2.0
// The direct formula for W points at once, one point per SIMD lane (included by cpu_kernel.inl
// inside its anonymous namespace, after cpu_kernel_small_k.inl's transpose_block): the points'
// rows and their labelled centroids' rows are transposed W features at a time, and each lane runs
// direct_step over features 0..d-1 in order, exactly as direct_distance does: the same bits.
// The scalar form is latency-bound (four chains of dependent steps); for wide rows it took as long
// as the whole ranking pass at k = 32 (5000 x 2048, perf).

/// Whether direct_distance_lanes exists on this table.
#if defined(KMEANS_HAVE_TRANSPOSE)
constexpr bool kHaveDirectLanes = true;

/// The vector step s + (a - b)^2 of the table's direct formula, both operands vectors.
template <class T>
inline typename Simd<T>::V direct_step_vv(typename Simd<T>::V a, typename Simd<T>::V b,
                                          typename Simd<T>::V s) {
  return square_add_v<T>(a - b, s);
}

/// out[l] = direct_distance(xr[l], cr[l], d) for l in [0, W): any W pairs of rows.
template <class T>
inline void direct_distance_pairs(const T* const* xr, const T* const* cr, std::int64_t d, T* out) {
  using VT = typename Simd<T>::V;
  constexpr int W = Simd<T>::W;
  alignas(64) T xt[W * W];
  alignas(64) T ct[W * W];
  VT s = VT{};
  std::int64_t j0 = 0;
  for (; j0 + W <= d; j0 += W) {
    transpose_block(xr, j0, xt, W);
    transpose_block(cr, j0, ct, W);
    KMEANS_UNROLL
    for (int f = 0; f < W; ++f)
      s = direct_step_vv<T>(*reinterpret_cast<const VT*>(xt + f * W),
                            *reinterpret_cast<const VT*>(ct + f * W), s);
  }
  for (int l = 0; l < W; ++l) {
    T sl = s[l];
    for (std::int64_t j = j0; j < d; ++j) sl = direct_step(xr[l][j], cr[l][j], sl);
    out[l] = sl;
  }
}

/// out[l] = direct_distance(x + l * d, centroids + labels[l] * d, d) for l in [0, W).
template <class T>
inline void direct_distance_lanes(const T* x, std::int64_t d, const T* centroids,
                                  const std::int32_t* labels, T* out) {
  constexpr int W = Simd<T>::W;
  const T* xr[W];
  const T* cr[W];
  for (int l = 0; l < W; ++l) {
    xr[l] = x + l * d;
    cr[l] = centroids + static_cast<std::int64_t>(labels[l]) * d;
  }
  direct_distance_pairs(xr, cr, d, out);
}
#else
constexpr bool kHaveDirectLanes = false;
template <class T>
inline void direct_distance_lanes(const T*, std::int64_t, const T*, const std::int32_t*, T*) {}
template <class T>
inline void direct_distance_pairs(const T* const*, const T* const*, std::int64_t, T*) {}
#endif

/// direct_distance of four pairs of rows, interleaved (four independent chains).
template <class T>
inline void direct_distance_4p(const T* const* xr, const T* const* cr, std::int64_t d, T* out) {
  T s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  for (std::int64_t j = 0; j < d; ++j) {
    s0 = direct_step(xr[0][j], cr[0][j], s0);
    s1 = direct_step(xr[1][j], cr[1][j], s1);
    s2 = direct_step(xr[2][j], cr[2][j], s2);
    s3 = direct_step(xr[3][j], cr[3][j], s3);
  }
  out[0] = s0;
  out[1] = s1;
  out[2] = s2;
  out[3] = s3;
}
