// SPDX-License-Identifier: Apache-2.0
// The GEMM-shaped ranking pass of the tiled CPU kernel (included by cpu_kernel.inl inside its
// anonymous namespace, after cpu_kernel_exact.inl): the same centroid tiles and the same exact
// labels as assign_chunk / recheck_rows, with a larger register block and a shorter rounding chain.
//
// Register block: MR points x one tile (V vectors of W centroids), MR * V accumulators (26 of the
// 32 AVX-512 registers, 12 of AVX2's 16); per feature, V vector loads of the tile and MR scalar
// broadcasts feed MR * V fused multiply-adds. The points of a group are centred once, into a
// packed buffer laid out [chunk][MR][kGemmKC] (a constant offset per point: one index register
// for every broadcast), and reused for every tile; while the first tile runs, the next group's
// rows are prefetched. The running minimum, its tile and the second smallest value live in small
// per-group arrays (L1) and are updated once per tile, after the feature loop of the tile's last
// chunk, straight from the accumulators (the loop's other registers are free by then).
//
// Rounding chain: with d > kGemmKC the features go in chunks of kGemmKC; each chunk's dot product
// starts from 0 in registers and is then added to the running total (which starts at |c'|^2/2).
// A term of the ranking then passes through at most kGemmKC roundings in its chunk and one per
// chunk added after it: at most L = kGemmKC + ceil(d / kGemmKC) in all (the first term of the
// total, |c'|^2/2, through ceil(d / kGemmKC)). The error analysis before BoundTerms holds for any
// summation order with gamma_(d+1) replaced by gamma_(m+1), m the largest number of roundings any
// term undergoes (Higham, Accuracy and Stability of Numerical Algorithms, 2nd ed., (3.4)-(3.5)
// and the remark after Lemma 3.1: the bound depends only on the depth of each term in the
// summation tree; without FMA each product adds one rounding, which the +1 covers);
// bound_terms(d, gemm_rank_length(d)) uses m = L. For d = 2048, L = 96: g carries gamma_101
// instead of gamma_2053. The re-check evaluates its candidates' rankings with the
// very same code, so they obey the same bound (the proof needs it of every r_c it compares).

#if defined(KMEANS_GEMM_MR)
constexpr int kGemmMR = KMEANS_GEMM_MR;
#elif KMEANS_VBYTES == 64
constexpr int kGemmMR = 13;  // see "register block rows" in bench/NOTES.md
#elif KMEANS_VBYTES == 32
constexpr int kGemmMR = 6;
#else
constexpr int kGemmMR = 4;
#endif

/// Length of the GEMM ranking's rounding chain for d features (see above).
inline std::int64_t gemm_rank_length(std::int64_t d) {
  return d <= kGemmKC ? d : kGemmKC + (d + kGemmKC - 1) / kGemmKC;
}

/// Centres the MR rows xp[p] into xc, laid out [chunk][MR][kGemmKC] (the last chunk's tail is
/// not read).
template <class T>
inline void gemm_pack(const T* const* xp, const T* mean, std::int64_t d, T* xc) {
  for (std::int64_t q0 = 0; q0 < d; q0 += kGemmKC) {
    const std::int64_t len = d - q0 < kGemmKC ? d - q0 : kGemmKC;
    for (int p = 0; p < kGemmMR; ++p) {
      T* __restrict__ o = xc + (q0 / kGemmKC * kGemmMR + p) * kGemmKC;
      const T* __restrict__ r = xp[p] + q0;
      const T* __restrict__ m = mean + q0;
      for (std::int64_t j = 0; j < len; ++j) o[j] = r[j] - m[j];
    }
  }
}

/// A group's running minimum over tiles, per lane (gemm_chunk's state, in memory): the smallest
/// ranking, the tile that holds it and the second smallest; `tile` is the tile being ranked.
template <class T>
struct GemmBest {
  typename Simd<T>::V (*best)[kVecsPerTile];
  typename Simd<T>::V (*sec)[kVecsPerTile];
  typename Simd<T>::I (*btile)[kVecsPerTile];
  int tile;
};

/// The register block: the rankings of kGemmMR points against one tile, the running value
/// acc[p][v] minus the sum over `len` features of xc[p * kGemmKC + j] * cj[j * KT + v * W].
/// kChunk: the sum starts from 0 in registers and is then added to mem (one rounding per chunk);
/// otherwise the running value starts from init (the tile's |c'|^2 / 2 row). kBest: the result
/// updates gb's running minimum straight from the registers (the tile's last chunk in
/// gemm_chunk); otherwise it goes to mem. Not inlined, so that only the accumulators, V centroid
/// vectors and a broadcast are live in the loop (inlined into the tile loop, GCC 12 kept the
/// caller's state in registers and spilled accumulators).
template <class T, bool kChunk, bool kBest>
__attribute__((noinline)) void gemm_block(const T* __restrict__ xc, const T* __restrict__ cj,
                                          std::int64_t len,
                                          typename Simd<T>::V (*__restrict__ mem)[kVecsPerTile],
                                          const T* __restrict__ init, std::uintptr_t pf,
                                          std::int64_t pf_stride, const GemmBest<T>& gb) {
  using VT = typename Simd<T>::V;
  using VI = typename Simd<T>::I;
  using LI = typename LaneInt<T>::type;
  constexpr int W = Simd<T>::W;
  constexpr int V = kVecsPerTile;
  constexpr int KT = V * W;
  // The prefetch of the next group's rows: kSegLines lines of each of its kGemmMR rows (this
  // chunk's features), kPfPerStep per feature step.
  constexpr int kSegLines = static_cast<int>(kGemmKC * sizeof(T) / 64);
  constexpr int kPfPerStep = static_cast<int>((kGemmMR * kSegLines + kGemmKC - 1) / kGemmKC);
  VT acc[kGemmMR][V];
  KMEANS_UNROLL
  for (int p = 0; p < kGemmMR; ++p)
    KMEANS_UNROLL
    for (int v = 0; v < V; ++v)
      acc[p][v] = kChunk ? VT{} : *reinterpret_cast<const VT*>(init + v * W);
  for (std::int64_t j = 0; j < len; ++j) {
    if (kChunk && pf != 0) {
      KMEANS_UNROLL
      for (int u = 0; u < kPfPerStep; ++u) {
        const std::int64_t line = j * kPfPerStep + u;  // row line / kSegLines, line % kSegLines
        if (line < kGemmMR * kSegLines)
          __builtin_prefetch(reinterpret_cast<const void*>(
                                 pf + static_cast<std::uintptr_t>(line / kSegLines * pf_stride +
                                                                  line % kSegLines * 64)),
                             0, 2);
      }
    }
    VT c[V];
    KMEANS_UNROLL
    for (int v = 0; v < V; ++v) c[v] = *reinterpret_cast<const VT*>(cj + j * KT + v * W);
    KMEANS_UNROLL
    for (int p = 0; p < kGemmMR; ++p) {
      const T xs = xc[p * kGemmKC + j];
      KMEANS_UNROLL
      for (int v = 0; v < V; ++v) acc[p][v] -= c[v] * xs;
    }
  }
  if constexpr (kChunk) {
    KMEANS_UNROLL
    for (int p = 0; p < kGemmMR; ++p)
      KMEANS_UNROLL
      for (int v = 0; v < V; ++v) acc[p][v] = mem[p][v] + acc[p][v];
  }
  if constexpr (kBest) {
    const VI tv = VI{} + static_cast<LI>(gb.tile);
    KMEANS_UNROLL
    for (int p = 0; p < kGemmMR; ++p)
      KMEANS_UNROLL
      for (int v = 0; v < V; ++v) {
        const VT a = acc[p][v], b = gb.best[p][v];
        const VT hi = a < b ? b : a;  // the larger of the two joins the runner-up
        gb.sec[p][v] = hi < gb.sec[p][v] ? hi : gb.sec[p][v];
        const auto less = a < b;  // strict: an equal later tile loses
        gb.best[p][v] = less ? a : b;
        gb.btile[p][v] = less ? tv : gb.btile[p][v];
      }
  } else {
    KMEANS_UNROLL
    for (int p = 0; p < kGemmMR; ++p)
      KMEANS_UNROLL
      for (int v = 0; v < V; ++v) mem[p][v] = acc[p][v];
  }
}

/// The rankings of the packed group xc against tile ct ([d + 1][KT]), in the chunked order
/// above: into acc (memory), or (kBest) into gb's running minimum; acc is scratch then. pf: the
/// next group's first row, prefetched during the chunks (0: none).
template <class T, bool kBest>
inline void gemm_rank_tile(const T* xc, std::int64_t d, const T* ct,
                           typename Simd<T>::V (*acc)[kVecsPerTile], std::uintptr_t pf,
                           const GemmBest<T>& gb) {
  using VT = typename Simd<T>::V;
  constexpr int W = Simd<T>::W;
  constexpr int V = kVecsPerTile;
  constexpr int KT = V * W;
  if (d <= kGemmKC) return gemm_block<T, false, kBest>(xc, ct + KT, d, acc, ct, 0, 0, gb);
  for (int p = 0; p < kGemmMR; ++p)
    for (int v = 0; v < V; ++v) acc[p][v] = *reinterpret_cast<const VT*>(ct + v * W);
  const std::int64_t row_bytes = d * static_cast<std::int64_t>(sizeof(T));
  for (std::int64_t q0 = 0; q0 < d; q0 += kGemmKC) {
    const std::int64_t len = d - q0 < kGemmKC ? d - q0 : kGemmKC;
    const std::uintptr_t pq = pf == 0 ? 0 : pf + static_cast<std::uintptr_t>(q0) * sizeof(T);
    if (q0 + len < d)
      gemm_block<T, true, false>(xc + q0 * kGemmMR, ct + (q0 + 1) * KT, len, acc, ct, pq,
                                 row_bytes, gb);
    else
      gemm_block<T, true, kBest>(xc + q0 * kGemmMR, ct + (q0 + 1) * KT, len, acc, ct, pq,
                                 row_bytes, gb);
  }
}

/// The GEMM kernel's scratch (gemm_scratch(d) values of T): the running state of one register
/// block and its packed points. The state lives in memory on purpose: as local arrays the
/// compiler keeps them in registers across the tile loop and spills accumulators.
template <class T>
struct GemmScratch {
  using VT = typename Simd<T>::V;
  using VI = typename Simd<T>::I;
  VT (*best)[kVecsPerTile];
  VT (*sec)[kVecsPerTile];
  VI (*btile)[kVecsPerTile];
  VT (*tot)[kVecsPerTile];
  T* xc;
  explicit GemmScratch(T* raw) {
    const std::uintptr_t a = (reinterpret_cast<std::uintptr_t>(raw) + 63) & ~std::uintptr_t{63};
    VT* v = reinterpret_cast<VT*>(a);
    constexpr int n = kGemmMR * kVecsPerTile;
    best = reinterpret_cast<VT(*)[kVecsPerTile]>(v);
    sec = reinterpret_cast<VT(*)[kVecsPerTile]>(v + n);
    btile = reinterpret_cast<VI(*)[kVecsPerTile]>(v + 2 * n);
    tot = reinterpret_cast<VT(*)[kVecsPerTile]>(v + 3 * n);
    xc = reinterpret_cast<T*>(v + 4 * n);
  }
};
static_assert(4 * kGemmMR * 128 + 64 <= 4096 * 4, "gemm_scratch's room for the state");

/// assign_chunk's contract with the GEMM ranking: points [r0, r1) against tiles [t0, t1), writing
/// (t0 == 0) or merging into rank, labels and second.
template <class T>
void gemm_chunk(const T* x, const T* mean, std::int64_t r0, std::int64_t r1, std::int64_t d,
                const T* tiles, int t0, int t1, std::int32_t* labels, T* rank, T* second,
                const typename Simd<T>::I* lane, const GemmScratch<T>& sc) {
  using VT = typename Simd<T>::V;
  using VI = typename Simd<T>::I;
  constexpr int W = Simd<T>::W;
  constexpr int V = kVecsPerTile;
  constexpr int P = kGemmMR;
  constexpr int KT = V * W;
  using LI = typename LaneInt<T>::type;
  const T inf = __builtin_inf();
  T* const xc = sc.xc;
  VT (*const tot)[V] = sc.tot;
  VT (*const best)[V] = sc.best;
  VT (*const sec)[V] = sc.sec;
  VI (*const btile)[V] = sc.btile;

  for (std::int64_t i0 = r0; i0 < r1; i0 += P) {
    const T* xp[P];
    for (int p = 0; p < P; ++p) xp[p] = x + ((i0 + p < r1) ? i0 + p : r1 - 1) * d;  // tail: repeat
    gemm_pack(xp, mean, d, xc);
    for (int p = 0; p < P; ++p)
      for (int v = 0; v < V; ++v) {
        best[p][v] = VT{} + inf;
        sec[p][v] = VT{} + inf;
        btile[p][v] = VI{};
      }
    for (int t = t0; t < t1; ++t)
      gemm_rank_tile<T, true>(xc, d, tiles + static_cast<std::int64_t>(t) * (d + 1) * KT, tot,
                              t == t0 ? reinterpret_cast<std::uintptr_t>(x) +
                                            static_cast<std::uintptr_t>((i0 + P) * d) * sizeof(T)
                                      : 0,
                              GemmBest<T>{best, sec, btile, t});
    for (int p = 0; p < P && i0 + p < r1; ++p) {
      // As in assign_chunk: the minimum over all lanes, the lowest index holding it, the second.
      VT m = best[p][0];
      for (int v = 1; v < V; ++v) m = best[p][v] < m ? best[p][v] : m;
      const T bv = hmin<T, KMEANS_VBYTES>(reinterpret_cast<const T*>(&m));
      const VI none = VI{} + static_cast<LI>(0x7fffffff);
      VI cand = none;
      for (int v = 0; v < V; ++v) {
        const VI idx = btile[p][v] * static_cast<LI>(KT) + lane[v];
        const VI pick = best[p][v] == bv ? idx : none;
        cand = pick < cand ? pick : cand;
      }
      const LI bi = hmin<LI, KMEANS_VBYTES>(reinterpret_cast<const LI*>(&cand));
      VT s = sec[p][0];
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

/// recheck_rows' contract with the GEMM ranking (the candidates' rankings come from
/// gemm_rank_tile, the evaluation the bound was derived for).
template <class T>
void gemm_recheck(const T* x, std::int64_t d, const T* centroids, int k, const T* mean,
                  const T* tiles, int n_tiles, const std::int64_t* idx, const double* thr,
                  std::int64_t m, std::int32_t* labels, T* dist, const GemmScratch<T>& sc) {
  using VT = typename Simd<T>::V;
  constexpr int W = Simd<T>::W;
  constexpr int V = kVecsPerTile;
  constexpr int P = kGemmMR;
  constexpr int KT = V * W;
  T* const xc = sc.xc;
  VT (*const tot)[V] = sc.tot;
  // Candidate pairs (row, centroid) wait here and get their direct distances kPairs at a time:
  // one pair per lane for wide rows, else four interleaved chains. The winner of a row is the
  // smallest (distance, index), whatever the order the pairs come in.
  constexpr int kPairs = W > 4 ? W : 4;
  std::int64_t pair_i[kPairs];
  int pair_c[kPairs];
  int n_pairs = 0;
  auto flush = [&]() {
    if (n_pairs == 0) return;
    const T* xr[kPairs];
    const T* cr[kPairs];
    for (int q = 0; q < kPairs; ++q) {
      const int e = q < n_pairs ? q : 0;  // pad with a repeat of the first pair
      xr[q] = x + pair_i[e] * d;
      cr[q] = centroids + static_cast<std::int64_t>(pair_c[e]) * d;
    }
    T dq[kPairs];
    if (kHaveDirectLanes && kPairs == W && d >= kDirectLanesMinD) {
      direct_distance_pairs(xr, cr, d, dq);
    } else {
      for (int q = 0; q < n_pairs; q += 4) direct_distance_4p(xr + q, cr + q, d, dq + q);
    }
    for (int q = 0; q < n_pairs; ++q) {
      const std::int64_t i = pair_i[q];
      const int c = pair_c[q];
      if (dq[q] < dist[i] || (dq[q] == dist[i] && c < labels[i])) {
        dist[i] = dq[q];
        labels[i] = c;
      }
    }
    n_pairs = 0;
  };
  for (std::int64_t q0 = 0; q0 < m; q0 += P) {
    const int valid = m - q0 < P ? static_cast<int>(m - q0) : P;
    const T* xp[P];
    T thr_t[P];
    for (int p = 0; p < P; ++p) {
      const std::int64_t q = q0 + (p < valid ? p : valid - 1);  // tail: repeat the last
      xp[p] = x + idx[q] * d;
      // thr rounded up to T: a value a of T is <= thr_t exactly when a <= thr or a = thr_t.
      thr_t[p] = static_cast<T>(thr[q]);
      if (static_cast<double>(thr_t[p]) < thr[q]) thr_t[p] = __builtin_nextafter(thr_t[p], __builtin_inf());
    }
    gemm_pack(xp, mean, d, xc);
    for (int t = 0; t < n_tiles; ++t) {
      VT (*const acc)[V] = tot;
      gemm_rank_tile<T, false>(xc, d, tiles + static_cast<std::int64_t>(t) * (d + 1) * KT, acc, 0,
                               GemmBest<T>{});
      for (int p = 0; p < valid; ++p)
        for (int v = 0; v < V; ++v) {
          std::uint64_t bits = lanes_at_most(acc[p][v], thr_t[p]);
          while (bits) {
            const int c = t * KT + v * W + __builtin_ctzll(bits);
            bits &= bits - 1;
            if (c >= k) continue;
            pair_i[n_pairs] = idx[q0 + p];
            pair_c[n_pairs++] = c;
            if (n_pairs == kPairs) flush();
          }
        }
    }
  }
  flush();
}
