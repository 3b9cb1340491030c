// SPDX-License-Identifier: Apache-2.0
// The small-k CPU kernel (included by cpu_kernel.inl inside its anonymous namespace, after
// direct_step_v): points in SIMD lanes, every centroid's direct distance sum((x - c)^2).
//
// A group of G vectors of points is transposed, a chunk of features at a time, into a stack
// buffer; centroids are broadcast, C at a time, so G * C independent accumulation chains hide the
// latency of the fused multiply-add. Each lane adds its features in order 0..d-1 with the table's
// direct_step: the distance is the direct formula itself, so the argmin is exact with no bound
// and no re-check. A wide row (d > one chunk) is read once per group: its running distances to
// all k centroids wait in a small stack array between chunks. Small d is a template parameter,
// so the feature loops unroll completely.

/// Centroids per pass over a chunk of features: as many accumulation chains as the registers hold.
constexpr int kSmallKC = KMEANS_VBYTES == 64 ? 4 : 2;
/// Wide rows: how many chunks ahead of the one being ranked the rows are fetched into L2.
constexpr int kSmallKPrefetchChunks = 2;

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12, inside the unpack and gather intrinsics
#endif
#if KMEANS_VBYTES == 64 && defined(__AVX512F__)
#define KMEANS_HAVE_TRANSPOSE 1
/// transpose_block(r, j, out, stride): W rows r[0..W) of features [j, j + W) into
/// out[f * stride + i] = r[i][j + f] (out and stride aligned to the vector), in registers.
inline void transpose_block(const float* const* r, std::int64_t j, float* out, std::int64_t stride) {
  __m512 a[16], t[16];
  for (int i = 0; i < 16; ++i) a[i] = _mm512_loadu_ps(r[i] + j);
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(a[i], a[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(a[i], a[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    a[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));
    a[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));
    a[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));
    a[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));
  }
  for (int i = 0; i < 4; ++i) {
    t[i] = _mm512_shuffle_f32x4(a[i], a[i + 4], 0x88);
    t[i + 4] = _mm512_shuffle_f32x4(a[i], a[i + 4], 0xdd);
    t[i + 8] = _mm512_shuffle_f32x4(a[i + 8], a[i + 12], 0x88);
    t[i + 12] = _mm512_shuffle_f32x4(a[i + 8], a[i + 12], 0xdd);
  }
  for (int i = 0; i < 8; ++i) {
    a[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
    a[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xdd);
  }
  for (int f = 0; f < 16; ++f) _mm512_store_ps(out + f * stride, a[f]);
}
inline void transpose_block(const double* const* r, std::int64_t j, double* out, std::int64_t stride) {
  __m512d a[8], t[8];
  for (int i = 0; i < 8; ++i) a[i] = _mm512_loadu_pd(r[i] + j);
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm512_unpacklo_pd(a[i], a[i + 1]);
    t[i + 1] = _mm512_unpackhi_pd(a[i], a[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    a[i] = _mm512_shuffle_f64x2(t[i], t[i + 2], 0x88);
    a[i + 1] = _mm512_shuffle_f64x2(t[i + 1], t[i + 3], 0x88);
    a[i + 2] = _mm512_shuffle_f64x2(t[i], t[i + 2], 0xdd);
    a[i + 3] = _mm512_shuffle_f64x2(t[i + 1], t[i + 3], 0xdd);
  }
  for (int i = 0; i < 4; ++i) {
    t[i] = _mm512_shuffle_f64x2(a[i], a[i + 4], 0x88);
    t[i + 4] = _mm512_shuffle_f64x2(a[i], a[i + 4], 0xdd);
  }
  for (int f = 0; f < 8; ++f) _mm512_store_pd(out + f * stride, t[f]);
}
#elif KMEANS_VBYTES == 32 && defined(__AVX__)
#define KMEANS_HAVE_TRANSPOSE 1
inline void transpose_block(const float* const* r, std::int64_t j, float* out, std::int64_t stride) {
  __m256 a[8], t[8];
  for (int i = 0; i < 8; ++i) a[i] = _mm256_loadu_ps(r[i] + j);
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(a[i], a[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(a[i], a[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    a[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
    a[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xee);
    a[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    a[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xee);
  }
  for (int i = 0; i < 4; ++i) {
    t[i] = _mm256_permute2f128_ps(a[i], a[i + 4], 0x20);
    t[i + 4] = _mm256_permute2f128_ps(a[i], a[i + 4], 0x31);
  }
  for (int f = 0; f < 8; ++f) _mm256_store_ps(out + f * stride, t[f]);
}
inline void transpose_block(const double* const* r, std::int64_t j, double* out, std::int64_t stride) {
  __m256d a[4], t[4];
  for (int i = 0; i < 4; ++i) a[i] = _mm256_loadu_pd(r[i] + j);
  t[0] = _mm256_unpacklo_pd(a[0], a[1]);
  t[1] = _mm256_unpackhi_pd(a[0], a[1]);
  t[2] = _mm256_unpacklo_pd(a[2], a[3]);
  t[3] = _mm256_unpackhi_pd(a[2], a[3]);
  _mm256_store_pd(out, _mm256_permute2f128_pd(t[0], t[2], 0x20));
  _mm256_store_pd(out + stride, _mm256_permute2f128_pd(t[1], t[3], 0x20));
  _mm256_store_pd(out + 2 * stride, _mm256_permute2f128_pd(t[0], t[2], 0x31));
  _mm256_store_pd(out + 3 * stride, _mm256_permute2f128_pd(t[1], t[3], 0x31));
}
#endif
#if defined(KMEANS_HAVE_TRANSPOSE)
/// Whether rows of d values of T are a multiple of 4 KiB apart: then one feature block of the
/// W rows of a group falls in a single L1 set, and transpose_block's W loads evict each other
/// and the prefetched next blocks. On AMD Zen 4 the transpose of 16 float rows 8 KiB apart
/// (d = 2048) took 2.7x as long as with rows 8320 bytes apart; rows 2 KiB or 6 KiB apart (two
/// sets) cost nothing extra (bench/NOTES.md, "rows a multiple of 4 KiB apart").
constexpr std::int64_t kAliasBytes = 4096;
inline bool rows_alias(std::int64_t d, std::size_t bytes) {
  return d * static_cast<std::int64_t>(bytes) % kAliasBytes == 0;
}

/// Width of a row of transpose_staged's stage: kSmallKChunkD values and one more vector, so that
/// its rows are not a multiple of 4 KiB apart.
template <class T>
constexpr int kStageWidth = static_cast<int>(kSmallKChunkD) + KMEANS_VBYTES / static_cast<int>(sizeof(T));

/// transpose_block over features [j0, j0 + n) (n a multiple of W, at most kSmallKChunkD) of the W
/// rows r[0..W), into out[f * stride + i] = r[i][j0 + f], through `stage` (W rows of
/// kStageWidth<T>, aligned): row i's vectors are copied starting from its (i mod n/W)-th, so that
/// the loads of one moment fall in different L1 sets, then transposed from the stage.
template <class T>
inline void transpose_staged(const T* const* r, std::int64_t j0, int n, T* stage, T* out,
                             std::int64_t stride) {
  constexpr int W = KMEANS_VBYTES / static_cast<int>(sizeof(T));
  const int nv = n / W;
  const T* rows[W];
  for (int i = 0; i < W; ++i) {
    T* const dst = stage + i * kStageWidth<T>;
    rows[i] = dst;
    int v = i % nv;
    for (int u = 0; u < nv; ++u) {
      __builtin_memcpy(dst + v * W, r[i] + j0 + v * W, KMEANS_VBYTES);
      if (++v == nv) v = 0;
    }
  }
  for (int v = 0; v < nv; ++v) transpose_block(rows, v * W, out + v * W * stride, stride);
}
#endif
#if (KMEANS_VBYTES == 64 && defined(__AVX512F__)) || (KMEANS_VBYTES == 32 && defined(__AVX2__))
#define KMEANS_HAVE_GATHER 1
/// Narrow rows (D features), 2 W contiguous rows from x: out[j * stride + l] = x[l * D + j], one
/// gather per feature and vector (scalar stores then vector loads would stall on store
/// forwarding: measured on 2M x 2, k = 8).
template <class T, int D, int W>
inline void gather_features(const T* x, T* out, std::int64_t stride) {
  for (int g = 0; g < 2; ++g) {
    const T* base = x + g * W * D;
    for (int j = 0; j < D; ++j) {
#if KMEANS_VBYTES == 64
      if constexpr (sizeof(T) == 4) {
        const __m512i idx = _mm512_mullo_epi32(
            _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), _mm512_set1_epi32(D));
        _mm512_store_ps(out + j * stride + g * W, _mm512_i32gather_ps(idx, base + j, 4));
      } else {
        const __m256i idx = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(D));
        _mm512_store_pd(out + j * stride + g * W, _mm512_i32gather_pd(idx, base + j, 8));
      }
#else
      if constexpr (sizeof(T) == 4) {
        const __m256i idx = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(D));
        _mm256_store_ps(out + j * stride + g * W, _mm256_i32gather_ps(base + j, idx, 4));
      } else {
        const __m128i idx = _mm_mullo_epi32(_mm_setr_epi32(0, 1, 2, 3), _mm_set1_epi32(D));
        _mm256_store_pd(out + j * stride + g * W, _mm256_i32gather_pd(base + j, idx, 8));
      }
#endif
    }
  }
}
#endif
#if KMEANS_VBYTES == 64 && defined(__AVX512F__)
#define KMEANS_HAVE_DEINTERLEAVE 1
/// As gather_features for D <= 4, without gathers: each W-row half is D contiguous vector loads,
/// and feature j's W values come out of them by D - 1 two-source permutes (lane l takes flat
/// element l D + j). Gathers of 8 or 16 lanes cost about a load per lane: at D = 3 (the classic
/// study) they were about a third of the small-k pass (perf).
/// The AVX-512 vector type holding T, and its two-source lane permute.
template <class T>
struct Vec512;
template <>
struct Vec512<float> {
  typedef __m512 type;
};
template <>
struct Vec512<double> {
  typedef __m512d type;
};
inline __m512 permute2(__m512 a, __m512i idx, __m512 b) { return _mm512_permutex2var_ps(a, idx, b); }
inline __m512d permute2(__m512d a, __m512i idx, __m512d b) { return _mm512_permutex2var_pd(a, idx, b); }

template <class T, int D, int W>
inline void deinterleave_features(const T* x, T* out, std::int64_t stride) {
  static_assert(D >= 2 && D <= 4, "D - 1 permutes per feature");
  using LI = typename LaneInt<T>::type;
  using M = typename Vec512<T>::type;
  static_assert(sizeof(M) == W * sizeof(T), "one 64-byte vector of W lanes");
  for (int g = 0; g < 2; ++g) {
    const T* base = x + g * W * D;
    M v[D];
    KMEANS_UNROLL
    for (int s = 0; s < D; ++s) __builtin_memcpy(&v[s], base + s * W, sizeof(M));
    KMEANS_UNROLL
    for (int j = 0; j < D; ++j) {
      M acc = v[0];
      KMEANS_UNROLL
      for (int s = 1; s < D; ++s) {
        alignas(64) LI idx[W];
        for (int l = 0; l < W; ++l) {
          const int f = l * D + j;
          idx[l] = static_cast<LI>(s == 1 ? (f < 2 * W ? f : 0)
                                          : (f >= s * W && f < (s + 1) * W ? W + f - s * W : l));
        }
        acc = permute2(acc, _mm512_load_si512(idx), v[s]);
      }
      __builtin_memcpy(out + j * stride + g * W, &acc, sizeof(M));
    }
  }
}
#endif
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

/// Accumulates features [0, jn) of the transposed chunk xt against NC centroids starting at
/// centroid `cbase` (rows of `cd` features, already offset to the chunk's first feature). With a
/// run-time length (JN == 0) each step also prefetches the next line of *pf into L2 while *pf
/// is below pf_end.
template <class T, int NC, int JN>
inline void small_k_accumulate(const T (*xt)[2 * Simd<T>::W], int jn, const T* cbase,
                               std::int64_t cd, typename Simd<T>::V (&acc)[NC][2],
                               const char* const** pf, const char* const* pf_end) {
  using VT = typename Simd<T>::V;
  constexpr int W = Simd<T>::W;
  auto step = [&](int j) {
    if constexpr (JN == 0)
      if (*pf < pf_end) __builtin_prefetch(*(*pf)++, 0, 2);
    const VT x0 = *reinterpret_cast<const VT*>(&xt[j][0]);
    const VT x1 = *reinterpret_cast<const VT*>(&xt[j][W]);
    KMEANS_UNROLL
    for (int q = 0; q < NC; ++q) {
      const T* cj = cbase + q * cd + j;
      acc[q][0] = direct_step_m<T>(x0, cj, acc[q][0]);
      acc[q][1] = direct_step_m<T>(x1, cj, acc[q][1]);
    }
  };
  if constexpr (JN > 0) {  // compile-time length: unrolled completely
    KMEANS_UNROLL
    for (int j = 0; j < JN; ++j) step(j);
  } else {
    for (int j = 0; j < jn; ++j) step(j);
  }
}

/// D > 0: d == D (at most kSmallKChunkD, one chunk). D == 0: any d; then, when d exceeds one
/// chunk, k must not exceed kSmallKChunkedMaxK (the running distances' stack array).
template <class T, int D>
void assign_rows_small_k_d(const T* x, std::int64_t rows, std::int64_t d_rt, const T* centroids,
                           int k, std::int32_t* labels, T* dist) {
  using VT = typename Simd<T>::V;
  using VI = typename Simd<T>::I;
  constexpr int W = Simd<T>::W;
  constexpr int G = 2;
  constexpr int L = G * W;
  constexpr int C = kSmallKC;
  using LI = typename LaneInt<T>::type;
  const std::int64_t d = D > 0 ? D : d_rt;
  constexpr std::int64_t JC = D > 0 ? D : kSmallKChunkD;
  alignas(64) T xt[JC][L];
#if defined(KMEANS_HAVE_TRANSPOSE)
  alignas(64) T stage[D > 0 ? 1 : W][kStageWidth<T>];  // wide rows a multiple of 4 KiB apart
  const bool staged = D == 0 && rows_alias(d, sizeof(T));
#endif
  alignas(64) VT running[D > 0 ? 1 : kSmallKChunkedMaxK][G];
  alignas(64) T out_best[L];
  alignas(64) LI out_idx[L];
  const T inf = __builtin_inf();
  const char* pf_list[L * JC * sizeof(T) / 64];  // lines to prefetch during this chunk
  int pf_n = 0;

  for (std::int64_t i0 = 0; i0 < rows; i0 += L) {
    const T* xr[L];
    for (int l = 0; l < L; ++l) xr[l] = x + (i0 + l < rows ? i0 + l : rows - 1) * d;  // tail: repeat
    VT best[G];
    VI bidx[G];
    KMEANS_UNROLL
    for (int g = 0; g < G; ++g) {
      best[g] = VT{} + inf;
      bidx[g] = VI{};
    }
    // Lane-wise strict compare in ascending centroid order: ties keep the lowest index.
    auto take = [&](const VT (&a)[G], int c) {
      const VI cv = VI{} + static_cast<LI>(c);
      KMEANS_UNROLL
      for (int g = 0; g < G; ++g) {
        const auto less = a[g] < best[g];
        best[g] = less ? a[g] : best[g];
        bidx[g] = less ? cv : bidx[g];
      }
    };
    for (std::int64_t j0 = 0; j0 < d; j0 += JC) {
      const int jn = static_cast<int>(d - j0 < JC ? d - j0 : JC);
      if constexpr (D > 0) {
        bool done = false;
#if defined(KMEANS_HAVE_DEINTERLEAVE)
        if constexpr (D >= 2 && D <= 4)
          if (i0 + L <= rows) {  // a full group: its rows are contiguous, permuted apart
            deinterleave_features<T, D, W>(x + i0 * D, &xt[0][0], L);
            done = true;
          }
#endif
#if defined(KMEANS_HAVE_GATHER)
        if (!done && i0 + L <= rows) {  // a full group: its rows are contiguous, gather each feature
          gather_features<T, D, W>(x + i0 * D, &xt[0][0], L);
          done = true;
        }
#endif
        if (!done)
          for (int l = 0; l < L; ++l)
            KMEANS_UNROLL
            for (int j = 0; j < D; ++j) xt[j][l] = xr[l][j];
      } else {
        for (int g = 0; g < G; ++g) {
          int j = 0;
#if defined(KMEANS_HAVE_TRANSPOSE)
          if (staged && jn >= W) {
            j = jn / W * W;
            transpose_staged(xr + g * W, j0, j, &stage[0][0], &xt[0][g * W], L);
          }
          for (; j + W <= jn; j += W) transpose_block(xr + g * W, j0 + j, &xt[j][g * W], L);
#endif
          for (; j < jn; ++j)
            for (int l = g * W; l < (g + 1) * W; ++l) xt[j][l] = xr[l][j0 + j];
        }
      }
      // Wide rows: L rows read a chunk at a time are more streams than the hardware prefetcher
      // follows. The chunk kSmallKPrefetchChunks ahead (of this group, or the next group's) is
      // fetched into L2 meanwhile, one line per step of the centroid passes below (pf_list), so
      // that the fetches never wait on each other in a burst. 60k x 784 float, k = 10: 1.2x
      // faster than a burst of the next chunk's lines (bench/NOTES.md), which was 8% faster
      // than none.
      pf_n = 0;
      if (d <= JC) {  // one chunk: the rows of the group after next, contiguous
        const std::int64_t ahead = i0 + 2 * L;
        if (ahead < rows) {
          const std::int64_t n_rows = rows - ahead < L ? rows - ahead : L;
          const char* p = reinterpret_cast<const char*>(x + ahead * d);
          const std::int64_t bytes = n_rows * d * static_cast<std::int64_t>(sizeof(T));
          for (std::int64_t b = 0; b < bytes; b += 64) __builtin_prefetch(p + b, 0, 3);
        }
      } else {
        std::int64_t nj0 = j0, ni0 = i0;
        for (int a = 0; a < kSmallKPrefetchChunks; ++a) {
          nj0 += JC;
          if (nj0 >= d) {
            nj0 = 0;
            ni0 += L;
          }
        }
        const std::int64_t nbytes = (d - nj0 < JC ? d - nj0 : JC) * static_cast<std::int64_t>(sizeof(T));
        const int n_rows = ni0 >= rows ? 0 : rows - ni0 < L ? static_cast<int>(rows - ni0) : L;
        for (int l = 0; l < n_rows; ++l) {
          const char* p = reinterpret_cast<const char*>(x + (ni0 + l) * d + nj0);
          for (std::int64_t b = 0; b < nbytes; b += 64) pf_list[pf_n++] = p + b;
        }
      }
      const char* const* pf_cur = pf_list;
      const char* const* const pf_end = pf_list + pf_n;
      // D > 0: one chunk (D <= kSmallKChunkD), so `running` is never read or written.
      const bool first = D > 0 || j0 == 0, last = D > 0 || j0 + jn >= d;
      // Centroids [c, c + NC) over this chunk: NC * G chains from `running` (or 0), then
      // taken (last chunk) or kept.
      auto centroid_pass = [&](auto nc_tag, int c) {
        constexpr int NC = decltype(nc_tag)::value;
        VT acc[NC][G];
        KMEANS_UNROLL
        for (int q = 0; q < NC; ++q)
          KMEANS_UNROLL
          for (int g = 0; g < G; ++g) acc[q][g] = first ? VT{} : running[c + q][g];
        small_k_accumulate<T, NC, D>(xt, jn, centroids + static_cast<std::int64_t>(c) * d + j0, d, acc, &pf_cur, pf_end);
        KMEANS_UNROLL
        for (int q = 0; q < NC; ++q) {
          if (last) {
            take(acc[q], c + q);
          } else {
            KMEANS_UNROLL
            for (int g = 0; g < G; ++g) running[c + q][g] = acc[q][g];
          }
        }
      };
      if constexpr (D == 0) if (k % C != 0) {
        // Wide rows: floor(k / C) passes (one if k < C) of nearly equal sizes, each in [C, 2C):
        // no pass of fewer than C centroids, whose chains would wait on the FMA latency
        // (k = 10: 5 + 5 instead of 4 + 4 + 1 + 1). Each centroid's chain is unchanged. (k a
        // multiple of C keeps the loop below: passes of C, measured 1-2% faster at k = 32.)
        const int passes = k / C > 0 ? k / C : 1;
        int c = 0;
        for (int p = 0; p < passes; ++p) {
          const int nc = (k - c) / (passes - p);
          switch (nc) {
            case 1: centroid_pass(std::integral_constant<int, 1>{}, c); break;
            case 2: centroid_pass(std::integral_constant<int, 2>{}, c); break;
            case 3: centroid_pass(std::integral_constant<int, 3>{}, c); break;
#if KMEANS_VBYTES == 64
            case 4: centroid_pass(std::integral_constant<int, 4>{}, c); break;
            case 5: centroid_pass(std::integral_constant<int, 5>{}, c); break;
            case 6: centroid_pass(std::integral_constant<int, 6>{}, c); break;
            case 7: centroid_pass(std::integral_constant<int, 7>{}, c); break;
#endif
            default:  // not reached (nc < 2C); one centroid at a time stays correct
              for (int q = 0; q < nc; ++q) centroid_pass(std::integral_constant<int, 1>{}, c + q);
              break;
          }
          c += nc;
        }
        while (pf_cur < pf_end) __builtin_prefetch(*pf_cur++, 0, 2);
        continue;
      }
      int c = 0;
      for (; c + C <= k; c += C) {
        VT acc[C][G];
        KMEANS_UNROLL
        for (int q = 0; q < C; ++q)
          KMEANS_UNROLL
          for (int g = 0; g < G; ++g) acc[q][g] = first ? VT{} : running[c + q][g];
        small_k_accumulate<T, C, D>(xt, jn, centroids + static_cast<std::int64_t>(c) * d + j0, d, acc, &pf_cur, pf_end);
        KMEANS_UNROLL
        for (int q = 0; q < C; ++q) {
          if (last) {
            take(acc[q], c + q);
          } else {
            KMEANS_UNROLL
            for (int g = 0; g < G; ++g) running[c + q][g] = acc[q][g];
          }
        }
      }
      for (; c < k; ++c) {
        VT acc[1][G];
        KMEANS_UNROLL
        for (int g = 0; g < G; ++g) acc[0][g] = first ? VT{} : running[c][g];
        small_k_accumulate<T, 1, D>(xt, jn, centroids + static_cast<std::int64_t>(c) * d + j0, d, acc, &pf_cur, pf_end);
        if (last)
          take(acc[0], c);
        else
          KMEANS_UNROLL
          for (int g = 0; g < G; ++g) running[c][g] = acc[0][g];
      }
      while (pf_cur < pf_end) __builtin_prefetch(*pf_cur++, 0, 2);
    }
    const int valid = rows - i0 < L ? static_cast<int>(rows - i0) : L;
    if (valid == L) {  // a whole group: vector stores (a scalar copy per row was ~10% at d = 3)
      typedef std::int32_t I32 __attribute__((vector_size(W * 4)));
      KMEANS_UNROLL
      for (int g = 0; g < G; ++g) {
        __builtin_memcpy(dist + i0 + g * W, &best[g], sizeof(VT));
        const I32 li = __builtin_convertvector(bidx[g], I32);
        __builtin_memcpy(labels + i0 + g * W, &li, sizeof li);
      }
      continue;
    }
    KMEANS_UNROLL
    for (int g = 0; g < G; ++g) {
      *reinterpret_cast<VT*>(&out_best[g * W]) = best[g];
      *reinterpret_cast<VI*>(&out_idx[g * W]) = bidx[g];
    }
    for (int l = 0; l < valid; ++l) {
      labels[i0 + l] = static_cast<std::int32_t>(out_idx[l]);
      dist[i0 + l] = out_best[l];
    }
  }
}

/// The table's small-k entry: compile-time d up to 8, then any d.
template <class T>
void assign_rows_small_k(const T* x, std::int64_t rows, std::int64_t d, const T* centroids,
                         int k, std::int32_t* labels, T* dist) {
  switch (d) {
    case 1: return assign_rows_small_k_d<T, 1>(x, rows, d, centroids, k, labels, dist);
    case 2: return assign_rows_small_k_d<T, 2>(x, rows, d, centroids, k, labels, dist);
    case 3: return assign_rows_small_k_d<T, 3>(x, rows, d, centroids, k, labels, dist);
    case 4: return assign_rows_small_k_d<T, 4>(x, rows, d, centroids, k, labels, dist);
    case 5: return assign_rows_small_k_d<T, 5>(x, rows, d, centroids, k, labels, dist);
    case 6: return assign_rows_small_k_d<T, 6>(x, rows, d, centroids, k, labels, dist);
    case 7: return assign_rows_small_k_d<T, 7>(x, rows, d, centroids, k, labels, dist);
    case 8: return assign_rows_small_k_d<T, 8>(x, rows, d, centroids, k, labels, dist);
    default: return assign_rows_small_k_d<T, 0>(x, rows, d, centroids, k, labels, dist);
  }
}
