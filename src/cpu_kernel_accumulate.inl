// SPDX-License-Identifier: Apache-2.0
// The sums kernels of a CPU kernel table (included by cpu_kernel.inl inside its anonymous
// namespace, once per instruction set): the small shapes' four-sub-tile leaf sums, the unit-weight
// row adds into a sub-tile scratch, its fold (add_doubles), and whole sub-tiles summed by cluster
// in registers (subtile_sums). Every sum follows cpu_accumulate.hpp's canonical order; pure
// adds, so the ISA's contraction setting changes no bit.

/// AccumulateLeafFn for one D: the leaf's sub-tiles four at a time (acc[q] holds sub-tile q of
/// the group, from +0.0; row r of each in turn, so that rows of one cluster do not wait on each
/// other's adds), each group then added into the leaf value in sub-tile order.
template <class T, int D>
void accumulate_leaf_small(const T* x, std::int64_t rows, int k, const std::int32_t* lab,
                           double* __restrict__ sums, double* __restrict__ counts) {
  constexpr int S = D + 1;
  constexpr std::int64_t kSub = 256, kGroup = 4 * kSub;
  double acc[4][kAccumulateSmallMax];
  for (std::int64_t g0 = 0; g0 < rows; g0 += kGroup) {
    for (int q = 0; q < 4; ++q)
      for (int e = 0; e < k * S; ++e) acc[q][e] = 0;
    if (rows - g0 >= kGroup) {
      for (std::int64_t r = g0; r < g0 + kSub; ++r) {
        KMEANS_UNROLL
        for (int q = 0; q < 4; ++q) {
          const std::int64_t i = r + q * kSub;
          double* a = acc[q] + lab[i] * S;
          KMEANS_UNROLL
          for (int j = 0; j < D; ++j) a[j] += static_cast<double>(x[i * D + j]);
          a[D] += 1.0;
        }
      }
    } else {  // the data's last, partial group: each sub-tile on its own
      for (int q = 0; q < 4; ++q)
        for (std::int64_t i = g0 + q * kSub; i < rows && i < g0 + (q + 1) * kSub; ++i) {
          double* a = acc[q] + lab[i] * S;
          KMEANS_UNROLL
          for (int j = 0; j < D; ++j) a[j] += static_cast<double>(x[i * D + j]);
          a[D] += 1.0;
        }
    }
    for (int c = 0; c < k; ++c) {
      KMEANS_UNROLL
      for (int j = 0; j <= D; ++j) {
        const int e = c * S + j;
        double& v = j < D ? sums[c * D + j] : counts[c];
        v = (((v + acc[0][e]) + acc[1][e]) + acc[2][e]) + acc[3][e];
      }
    }
  }
}

/// AccumulateLeafFn: dispatches on d (accumulate_interleaved's shapes).
template <class T>
void accumulate_leaf(const T* x, std::int64_t rows, std::int64_t d, int k, const std::int32_t* lab,
                     double* __restrict__ sums, double* __restrict__ counts) {
  switch (d) {
    case 1: return accumulate_leaf_small<T, 1>(x, rows, k, lab, sums, counts);
    case 2: return accumulate_leaf_small<T, 2>(x, rows, k, lab, sums, counts);
    case 3: return accumulate_leaf_small<T, 3>(x, rows, k, lab, sums, counts);
    case 4: return accumulate_leaf_small<T, 4>(x, rows, k, lab, sums, counts);
    default: return accumulate_leaf_small<T, 8>(x, rows, k, lab, sums, counts);
  }
}

/// AddFn with this table's vectors.
void add_doubles(double* __restrict__ dst, const double* __restrict__ src, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) dst[i] = dst[i] + src[i];
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12, inside _mm512_cvtps_pd
#endif
/// W values of x (float or double) as one vector of W doubles.
template <class T>
inline typename Simd<double>::V load_as_double(const T* p) {
  using DV = typename Simd<double>::V;
  if constexpr (sizeof(T) == 8) {
    DV v;
    __builtin_memcpy(&v, p, sizeof v);
    return v;
  } else {
#if defined(__AVX512F__) && KMEANS_VBYTES == 64
    return reinterpret_cast<DV>(_mm512_cvtps_pd(_mm256_loadu_ps(p)));  // one conversion
#elif defined(__AVX__) && KMEANS_VBYTES == 32
    return reinterpret_cast<DV>(_mm256_cvtps_pd(_mm_loadu_ps(p)));
#else
    typedef float FH __attribute__((vector_size(Simd<double>::W * 4)));
    FH f;
    __builtin_memcpy(&f, p, sizeof f);
    return __builtin_convertvector(f, DV);
#endif
  }
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

/// Features [j0, j0 + V W) of the rows run[0, m), summed in that order in V vectors of W doubles
/// held in registers. kOnto false: the sum from +0.0, then added to s[j0, j0 + V W) (a whole
/// sub-tile onto its leaf). kOnto true: the chain starts from s itself, s = ((s + x_0) + x_1)...
/// (each row added to the sums in turn, as AccumulateFn's row loop does).
template <int V, bool kOnto, class T>
inline void run_sum(const T* x, std::int64_t d, const std::int32_t* run, std::int64_t m,
                    std::int64_t j0, double* s) {
  using DV = typename Simd<double>::V;
  constexpr int W = Simd<double>::W;
  DV acc[V];
  KMEANS_UNROLL
  for (int v = 0; v < V; ++v) {
    if constexpr (kOnto)
      __builtin_memcpy(&acc[v], s + j0 + v * W, sizeof acc[v]);
    else
      acc[v] = DV{};
  }
  for (std::int64_t q = 0; q < m; ++q) {
    const T* xr = x + static_cast<std::int64_t>(run[q]) * d + j0;
    KMEANS_UNROLL
    for (int v = 0; v < V; ++v) acc[v] = acc[v] + load_as_double(xr + v * W);
  }
  KMEANS_UNROLL
  for (int v = 0; v < V; ++v) {
    DV l = acc[v];
    if constexpr (!kOnto) {
      __builtin_memcpy(&l, s + j0 + v * W, sizeof l);
      l = l + acc[v];
    }
    __builtin_memcpy(s + j0 + v * W, &l, sizeof l);
  }
}

/// Rows [0, rows) ordered by label, stably: order[] lists cluster 0's rows, then cluster 1's...;
/// on return end[c] is where cluster c's rows end in order[] (end has k + 1 entries).
inline void order_by_label(const std::int32_t* lab, std::int64_t rows, int k, std::int32_t* end,
                           std::int32_t* order) {
  for (int c = 0; c <= k; ++c) end[c] = 0;
  for (std::int64_t r = 0; r < rows; ++r) ++end[lab[r] + 1];
  for (int c = 0; c < k; ++c) end[c + 1] += end[c];  // end[c]: where cluster c starts
  for (std::int64_t r = 0; r < rows; ++r) order[end[lab[r]]++] = static_cast<std::int32_t>(r);
}

/// Each cluster's rows of run (m of them) over all d features, by run_sum<.., kOnto> (8, 4, 2, 1
/// vectors at a time, then the last features one by one in the same order).
template <bool kOnto, class T>
inline void cluster_sums(const T* x, std::int64_t d, const std::int32_t* run, std::int64_t m,
                         double* s) {
  constexpr int W = Simd<double>::W;
  std::int64_t j0 = 0;
  for (; j0 + 8 * W <= d; j0 += 8 * W) run_sum<8, kOnto>(x, d, run, m, j0, s);
  if (j0 + 4 * W <= d) {
    run_sum<4, kOnto>(x, d, run, m, j0, s);
    j0 += 4 * W;
  }
  if (j0 + 2 * W <= d) {
    run_sum<2, kOnto>(x, d, run, m, j0, s);
    j0 += 2 * W;
  }
  if (j0 + W <= d) {
    run_sum<1, kOnto>(x, d, run, m, j0, s);
    j0 += W;
  }
  for (; j0 < d; ++j0) {
    double a = kOnto ? s[j0] : 0.0;
    for (std::int64_t q = 0; q < m; ++q) a = a + static_cast<double>(x[run[q] * d + j0]);
    s[j0] = kOnto ? a : s[j0] + a;
  }
}

/// Rows [0, rows) summed cluster by cluster: ordered by label (order_by_label into end, k + 1
/// entries, and order, rows entries), each cluster's rows through cluster_sums<kOnto>, and its
/// row count added to counts (the same value as that many adds of 1.0: integers are exact).
template <bool kOnto, class T>
inline void sums_by_label(const T* x, std::int64_t rows, std::int64_t d, int k,
                          const std::int32_t* lab, double* sums, double* counts,
                          std::int32_t* end, std::int32_t* order) {
  order_by_label(lab, rows, k, end, order);
  std::int32_t pos = 0;
  for (int c = 0; c < k; ++c) {
    const std::int32_t e = end[c];
    if (e == pos) continue;
    cluster_sums<kOnto>(x, d, order + pos, e - pos, sums + static_cast<std::int64_t>(c) * d);
    counts[c] = counts[c] + static_cast<double>(e - pos);
    pos = e;
  }
}

/// Features per pass of AccumulateFn over wide rows.
constexpr std::int64_t kAccumulateChunk = 128;
/// Wide rows are summed cluster by cluster (order_by_label, cluster_sums) for calls of up to
/// this many rows (one sub-tile) and clusters (its stack arrays).
constexpr std::int64_t kSortedRows = 256;
constexpr int kSortedMaxK = 1024;

/// AccumulateFn: vectorised here with this table's instruction set (pure adds: no contraction).
/// Wide rows go cluster by cluster (sums_by_label, the sums in registers), or, for calls beyond
/// its stack arrays, a chunk of features at a time over all the rows, so that the sums the chunk
/// touches stay in L1; either way each sum adds its rows in row order: the same bits.
template <class T>
void accumulate_rows(const T* x, std::int64_t rows, std::int64_t d, int k,
                     const std::int32_t* lab, double* __restrict__ sums,
                     double* __restrict__ counts) {
  if (d >= 2 * kAccumulateChunk && rows <= kSortedRows && k <= kSortedMaxK) {
    // Each cluster's rows in turn, in row order, a few vectors of sums held in registers
    // across them: the same adds as the row loop below, without a load and a store of the
    // sums per row (60k x 784 float, k = 10: 1.6x faster).
    std::int32_t end[kSortedMaxK + 1], order[kSortedRows];
    sums_by_label<true>(x, rows, d, k, lab, sums, counts, end, order);
    return;
  }
  if (d >= 2 * kAccumulateChunk) {
    for (std::int64_t j0 = 0; j0 < d; j0 += kAccumulateChunk) {
      const std::int64_t n = d - j0 < kAccumulateChunk ? d - j0 : kAccumulateChunk;
      for (std::int64_t r = 0; r < rows; ++r) {
        double* __restrict__ s = sums + static_cast<std::int64_t>(lab[r]) * d + j0;
        const T* __restrict__ xr = x + r * d + j0;
        for (std::int64_t j = 0; j < n; ++j) s[j] += static_cast<double>(xr[j]);
      }
    }
    for (std::int64_t r = 0; r < rows; ++r) counts[lab[r]] += 1.0;
    return;
  }
  for (std::int64_t r = 0; r < rows; ++r) {
    double* __restrict__ s = sums + static_cast<std::int64_t>(lab[r]) * d;
    const T* __restrict__ xr = x + r * d;
    for (std::int64_t j = 0; j < d; ++j) s[j] += static_cast<double>(xr[j]);
    counts[lab[r]] += 1.0;
  }
}

/// SubtileSumsFn (pure adds: no contraction).
template <class T>
void subtile_sums(const T* x, std::int64_t rows, std::int64_t d, int k, const std::int32_t* lab,
                  double* __restrict__ sums, double* __restrict__ counts, std::int32_t* scratch) {
  sums_by_label<false>(x, rows, d, k, lab, sums, counts, scratch, scratch + k + 1);
}
