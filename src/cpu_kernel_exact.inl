// SPDX-License-Identifier: Apache-2.0
// The exactness half of the CPU kernel (included by cpu_kernel.inl inside its anonymous
// namespace, after Simd and hmin): the direct formula in this table's form, and the proven
// rounding bound of the ranking that decides which centroids get their direct distance.

/// The direct formula's step s + (a - b)^2 in the one form this table promises
/// (KernelTable::direct_fma), for scalars and for vectors.
template <class T>
inline T direct_step(T a, T b, T s) {
  const T diff = a - b;
#if KMEANS_DIRECT_FMA
  if constexpr (sizeof(T) == 4)
    return __builtin_fmaf(diff, diff, s);
  else
    return __builtin_fma(diff, diff, s);
#else
  return s + diff * diff;
#endif
}

/// s + diff^2 in the table's form (KernelTable::direct_fma), for vectors: the end of every
/// vector step of the direct formula.
template <class T>
inline typename Simd<T>::V square_add_v(typename Simd<T>::V diff, typename Simd<T>::V s) {
#if KMEANS_DIRECT_FMA
  using VT = typename Simd<T>::V;
  if constexpr (sizeof(T) == 4) {
#if KMEANS_VBYTES == 64
    return reinterpret_cast<VT>(_mm512_fmadd_ps(reinterpret_cast<__m512>(diff),
                                                reinterpret_cast<__m512>(diff), reinterpret_cast<__m512>(s)));
#else
    return reinterpret_cast<VT>(_mm256_fmadd_ps(reinterpret_cast<__m256>(diff),
                                                reinterpret_cast<__m256>(diff), reinterpret_cast<__m256>(s)));
#endif
  } else {
#if KMEANS_VBYTES == 64
    return reinterpret_cast<VT>(_mm512_fmadd_pd(reinterpret_cast<__m512d>(diff),
                                                reinterpret_cast<__m512d>(diff), reinterpret_cast<__m512d>(s)));
#else
    return reinterpret_cast<VT>(_mm256_fmadd_pd(reinterpret_cast<__m256d>(diff),
                                                reinterpret_cast<__m256d>(diff), reinterpret_cast<__m256d>(s)));
#endif
  }
#else
  return s + diff * diff;
#endif
}

template <class T>
inline typename Simd<T>::V direct_step_v(typename Simd<T>::V a, T b, typename Simd<T>::V s) {
  return square_add_v<T>(a - b, s);
}

/// direct_step_v with b read from memory. On AVX-512 the broadcast of b rides in the subtract
/// (vsubps m32{1to16}: a load, no shuffle): left to itself GCC loads one broadcast register per
/// centroid and feature for the two subtracts that use it, and on AMD Zen 4 that broadcast takes
/// a floating-point pipe: the small-k kernel's step (8 subtracts, 8 FMAs) ran at 12.4 cycles
/// instead of 8.2, the FMA rate (bench/NOTES.md, "the broadcast in the subtract"). Same bits.
template <class T>
inline typename Simd<T>::V direct_step_m(typename Simd<T>::V a, const T* b, typename Simd<T>::V s) {
#if KMEANS_VBYTES == 64 && defined(__AVX512F__)
  typename Simd<T>::V diff;
  if constexpr (sizeof(T) == 4)
    asm("vsubps %1%{1to16%}, %2, %0" : "=v"(diff) : "m"(*b), "v"(a));
  else
    asm("vsubpd %1%{1to8%}, %2, %0" : "=v"(diff) : "m"(*b), "v"(a));
  return square_add_v<T>(diff, s);
#else
  return direct_step_v<T>(a, *b, s);
#endif
}

/// The direct formula sum_j (a_j - b_j)^2 in T, coordinate order 0..d-1.
template <class T>
inline T direct_distance(const T* a, const T* b, std::int64_t d) {
  T s = 0;
  for (std::int64_t j = 0; j < d; ++j) s = direct_step(a[j], b[j], s);
  return s;
}

/// direct_distance of four consecutive rows x (d features each) to their labelled centroids,
/// interleaved: four independent chains in flight, each in the same order as direct_distance.
template <class T>
inline void direct_distance_x4(const T* x, std::int64_t d, const T* centroids,
                               const std::int32_t* labels, T* out) {
  const T* c0 = centroids + static_cast<std::int64_t>(labels[0]) * d;
  const T* c1 = centroids + static_cast<std::int64_t>(labels[1]) * d;
  const T* c2 = centroids + static_cast<std::int64_t>(labels[2]) * d;
  const T* c3 = centroids + static_cast<std::int64_t>(labels[3]) * d;
  T s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  for (std::int64_t j = 0; j < d; ++j) {
    s0 = direct_step(x[j], c0[j], s0);
    s1 = direct_step(x[d + j], c1[j], s1);
    s2 = direct_step(x[2 * d + j], c2[j], s2);
    s3 = direct_step(x[3 * d + j], c3[j], s3);
  }
  out[0] = s0;
  out[1] = s1;
  out[2] = s2;
  out[3] = s3;
}

/// Bit l set when lane l of the comparison result m (a vector of T's lane integers, all ones
/// or zero) is set.
template <class T, class M>
inline std::uint64_t lanes_set(M m) {
#if defined(__AVX512F__) && KMEANS_VBYTES == 64
  if constexpr (sizeof(T) == 4)
    return _mm512_movepi32_mask(reinterpret_cast<__m512i>(m));
  else
    return _mm512_movepi64_mask(reinterpret_cast<__m512i>(m));
#elif defined(__AVX__) && KMEANS_VBYTES == 32
  if constexpr (sizeof(T) == 4)
    return static_cast<std::uint32_t>(_mm256_movemask_ps(reinterpret_cast<__m256>(m)));
  else
    return static_cast<std::uint32_t>(_mm256_movemask_pd(reinterpret_cast<__m256d>(m)));
#elif defined(__SSE2__) && KMEANS_VBYTES == 16
  if constexpr (sizeof(T) == 4)
    return static_cast<std::uint32_t>(_mm_movemask_ps(reinterpret_cast<__m128>(m)));
  else
    return static_cast<std::uint32_t>(_mm_movemask_pd(reinterpret_cast<__m128d>(m)));
#else
  std::uint64_t bits = 0;
  for (int l = 0; l < Simd<T>::W; ++l)
    if (m[l]) bits |= std::uint64_t{1} << l;
  return bits;
#endif
}

/// Bit l set when lane l of a is <= b (ranking lanes that are re-check candidates).
template <class T>
inline std::uint64_t lanes_at_most(typename Simd<T>::V a, T b) {
  using VT = typename Simd<T>::V;
  return lanes_set<T>(a <= (VT{} + b));
}

/// Bit l set when lane l of a is > b (false for NaN).
template <class T>
inline std::uint64_t lanes_above(typename Simd<T>::V a, T b) {
  using VT = typename Simd<T>::V;
  return lanes_set<T>(a > (VT{} + b));
}

/// direct_distance of one row x to four centroids (indices c[0..3]), interleaved.
template <class T>
inline void direct_distance_4c(const T* x, std::int64_t d, const T* centroids, const int* c,
                               T* out) {
  const T* c0 = centroids + static_cast<std::int64_t>(c[0]) * d;
  const T* c1 = centroids + static_cast<std::int64_t>(c[1]) * d;
  const T* c2 = centroids + static_cast<std::int64_t>(c[2]) * d;
  const T* c3 = centroids + static_cast<std::int64_t>(c[3]) * d;
  T s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  for (std::int64_t j = 0; j < d; ++j) {
    s0 = direct_step(x[j], c0[j], s0);
    s1 = direct_step(x[j], c1[j], s1);
    s2 = direct_step(x[j], c2[j], s2);
    s3 = direct_step(x[j], c3[j], s3);
  }
  out[0] = s0;
  out[1] = s1;
  out[2] = s2;
  out[3] = s3;
}

// ---- The rounding bound of the ranking ---------------------------------------------------------
// Notation: u is T's unit roundoff (2^-24 float, 2^-53 double), u_d = 2^-53, gamma_n = n u /
// (1 - n u) (Higham, Accuracy and Stability of Numerical Algorithms, ch. 3), gamma_n^d the same
// with u_d. m is the centring vector (the data mean rounded to T; its value does not matter).
// Exact reals carry no hat: x' = x - m, c' = c - m, X = |x'|, N_c = |c'|, E_c = |x - c|^2, and
//   R_c = |c'|^2/2 - x'.c' = E_c/2 - X^2/2          (the offset X^2/2 is the same for every c).
// Computed values: c^_j = fl_T(fl_d(c_j - m_j)), |c^_j - c'_j| <= 2u |c'_j|; x^_j = fl_T(x_j - m_j),
// |x^_j - x'_j| <= u |x'_j|; h^ = fl_T(0.5 fl_d(sum_j c^_j^2)) = (1 + t) |c^|^2/2 with
// |t| <= u_h = u + (1 + u) gamma_d^d (a sum of d non-negative terms in double, then one
// rounding); the ranking r_c = fl(h^ - sum_j c^_j x^_j), d steps with or without FMA in any
// order, errs by at most gamma_(d+1) (h^ + sum_j |c^_j x^_j|) (Higham (3.5), length d + 1).
// With sum|c^_j x^_j| <= (1 + gamma_3) N_c X (Cauchy-Schwarz), h^ <= (1 + u_h)(1 + gamma_4) N_c^2/2,
// |h^ - N_c^2/2| <= (u_h + gamma_4 + u_h gamma_4) N_c^2/2 and |c^.x^ - c'.x'| <= gamma_3 N_c X,
// and gamma_a + gamma_b + gamma_a gamma_b <= gamma_(a+b):
//   e_c = |r_c - R_c| <= g (N_c^2/2 + N_c X),   g = (1 + u_h) gamma_(d+5) + u_h.
// By the triangle inequality N_c <= X + sqrt(E_c), so e_c <= g F(X, E_c) with
//   F(X, E) = (X + sqrt E)^2 / 2 + X (X + sqrt E) <= 2.5 X^2 + 1.5 E   (increasing in E).
// The direct formula D_c = fl(sum_j (fl(x_j - c_j))^2) obeys |D_c - E_c| <= gamma_D E_c with
// gamma_D = gamma_(d+2) (each square carries (1 + u)^2 and d roundings at most).
//
// Let b be the ranking's argmin and B = 2 g F(X, E^) + gamma_D E_b / (1 - gamma_D) with
// E^ = E_b (1 + gamma_D) / (1 - gamma_D). Claim: every c with D_c <= D_b has r_c <= r_b + B.
// Proof: D_c <= D_b gives E_c (1 - gamma_D) <= E_b (1 + gamma_D), so E_c <= E^, e_c <= g F(X, E^)
// and e_b <= g F(X, E^); then r_c <= R_c + e_c = R_b + (E_c - E_b)/2 + e_c
// <= r_b + e_b + e_c + gamma_D E_b / (1 - gamma_D) <= r_b + B. So the exact argmin of D (ties to
// the lowest index) is the argmin of D over {c : r_c <= r_b + B}, and when the second smallest
// ranking exceeds r_b + B it is b itself. Any evaluation of r_c with the error bound above may
// be used for the candidates (the re-check recomputes them).
// What the bound needs is known after the pass: E_b <= E^_b = D_b / (1 - gamma_D), and from
// X^2 = E_b - 2 R_b >= 0 with R_b >= r_b - e_b: X^2 <= (E^_b (1 + 3 g) - 2 r_b) / (1 - 5 g).
// Gradual underflow adds an absolute error of at most one half of T's smallest subnormal per
// operation: 8 (d + 4) of them are added to B. The bound is evaluated in double: the bound on
// X^2 may cancel, so its rounding is added to it before the square root; every other step is a
// sum of non-negative terms whose rounding lies far below the 2^-40 that B is inflated by; and
// thr = r_b + B + 2 u_d (|r_b| + B) covers the rounding of that last sum. A non-finite value
// anywhere makes every centroid a candidate (every centroid's direct distance is computed).

/// The per-call constants of the bound (they depend only on d and T), with its divisions
/// folded into factors of D_b and r_b.
struct BoundTerms {
  double g = 0;       ///< g above
  double x_db = 0;    ///< X^2 <= x_db D_b - x_rb r_b
  double x_rb = 0;
  double e_db = 0;    ///< E^ <= e_db D_b
  double last = 0;    ///< gamma_D E_b / (1 - gamma_D) <= last D_b
  double tiny = 0;    ///< the underflow allowance
  double fast_db = 0, fast_rb = 0, fast_db0 = 0, fast_tiny = 0;  ///< the cheap test's bound
  bool usable = false;
};

/// rank_len: the most roundings any term of the ranking's evaluation undergoes, less one (d for
/// assign_chunk's sequential chain, gemm_rank_length(d) for the GEMM kernel's chunked one).
template <class T>
BoundTerms bound_terms(std::int64_t d, std::int64_t rank_len) {
  const double u = sizeof(T) == 4 ? 0x1p-24 : 0x1p-53;
  const double denorm = sizeof(T) == 4 ? 0x1p-149 : 0x1p-1074;
  auto gamma = [](double n, double unit) { return n * unit < 0.5 ? n * unit / (1 - n * unit) : -1.0; };
  BoundTerms b;
  const double gd = gamma(static_cast<double>(d), 0x1p-53);
  const double g5 = gamma(static_cast<double>(rank_len) + 5, u);
  const double gamma_d = gamma(static_cast<double>(d) + 2, u);
  if (gd < 0 || g5 < 0 || gamma_d < 0) return b;
  const double uh = u + (1 + u) * gd;
  b.g = (1 + uh) * g5 + uh;
  b.usable = 5 * b.g < 0.5 && gamma_d < 0.5;
  const double inv = 1 / (1 - gamma_d);  // E_b <= D_b inv
  b.x_db = inv * (1 + 3 * b.g) / (1 - 5 * b.g);
  b.x_rb = 2 / (1 - 5 * b.g);
  b.e_db = inv * inv * (1 + gamma_d);
  b.last = gamma_d * inv * inv;
  b.tiny = normal_allowance(8 * (static_cast<double>(d) + 4) * denorm);
  // The cheap test's bound 2 g (2.5 X^2 + 1.5 E^) + last D_b + tiny with X^2 clamped at 0 is
  // max(fast_db D_b - fast_rb r_b, fast_db0 D_b) + fast_tiny; the factors carry the 2^-40
  // inflation and the 2^-52 of the final sum (see finish_threshold), with room to spare.
  const double infl = (1 + 0x1p-39) * (1 + 0x1p-51);
  b.fast_db0 = (3 * b.g * b.e_db + b.last) * infl;
  b.fast_db = (5 * b.g * b.x_db) * infl + b.fast_db0;
  b.fast_rb = 5 * b.g * b.x_rb * infl;
  b.fast_tiny = b.tiny * infl;
  return b;
}

/// r_b + bound, inflated for the rounding of its own evaluation (see above).
inline double finish_threshold(double rb, double bound) {
  bound *= 1 + 0x1p-40;
  const double thr = rb + bound + 0x1p-52 * ((rb < 0 ? -rb : rb) + bound);
  return thr == thr ? thr : __builtin_inf();  // NaN: everything is a candidate
}

/// Whether the second smallest ranking `second` may lie within the bound of the best ranking
/// r_b (direct distance D_b); if so, thr is set to r_b + B (+inf when the bound says nothing).
/// A cheap test with F <= 2.5 X^2 + 1.5 E (no square roots, no divisions) clears most points;
/// a NaN anywhere fails it and then makes thr infinite.
inline bool has_rival(const BoundTerms& t, double rb, double db, double second, double& thr) {
  const double b1 = t.fast_db * db - t.fast_rb * rb, b0 = t.fast_db0 * db;
  const double fast = rb + ((b1 > b0 ? b1 : b0) + t.fast_tiny) + 0x1p-52 * (rb < 0 ? -rb : rb);
  if (t.usable && second > fast) return false;
  if (!t.usable) {
    thr = __builtin_inf();
    return true;
  }
  // x2 may cancel: its own rounding (three operations) is added before the square root.
  double x2 = t.x_db * db - t.x_rb * rb;
  x2 += 0x1p-50 * (t.x_db * db + t.x_rb * (rb < 0 ? -rb : rb));
  if (!(x2 > 0)) x2 = 0;
  const double x = __builtin_sqrt(x2), se = __builtin_sqrt(t.e_db * db);
  const double f = 0.5 * (x + se) * (x + se) + x * (x + se);
  thr = finish_threshold(rb, 2 * t.g * f + t.last * db + t.tiny);
  return !(second > thr);
}
