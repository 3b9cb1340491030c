// SPDX-License-Identifier: Apache-2.0
// The per-ISA half of the bound-pruned pass (cpu_bounds.hpp), included at the end of
// cpu_kernel.inl inside kmeans::detail::cpu, so that it uses this table's direct formula
// (direct_step, direct_step_v) and vectors: its distances are the bits of Lloyd's kernel.

namespace {

/// A bound rounded down to float (0 below 1e-30 or for NaN; 1e38 for anything larger).
inline float floor_to_float(double v) {
  if (!(v > 1e-30)) return 0.0f;
  if (v > 1e38) return 1e38f;
  return static_cast<float>(v * (1 - 0x1p-22));
}

/// A lower bound on the exact distance from a direct distance D (cpu_bounds_kernel.hpp).
inline double lower_of(double dd, const BoundConsts& bc) {
  const double s = dd - bc.tiny;
  return bc.usable && s > 0 ? __builtin_sqrt(s * bc.inv_hi) * (1 - 0x1p-50) : 0.0;
}

/// A float >= v, for 0 <= v < 3e38, at most about an ulp above the nearest: rounding to the
/// nearest float moves y = v (1 + 2^-23) + 2^-149 down by at most half an ulp of y, which is
/// under v 2^-23 for normal floats and 2^-150 below. Pure arithmetic: a compare-and-step
/// version compiled to a branch taken half the time (~10% of an all-proven pass, perf).
inline float float_at_least(double v) {
  return static_cast<float>(v * (1 + 0x1p-23) + 0x1p-149);
}

/// Bit l set when group l of a vector of float bounds fails to prove (f > thr does not hold, so
/// NaN fails too), lanes beyond the vector clear.
inline std::uint64_t failing_lanes(typename Simd<float>::V f, float thr) {
  constexpr int W = Simd<float>::W;
  return ~lanes_above<float>(f, thr) & ((std::uint64_t{1} << W) - 1);
}

/// The smallest float a group's lower bound must exceed to prove every direct distance in it
/// larger than da: l > thr >= sqrt((da hi_fac + tiny) / lo_fac) (thr_fac >= 1 / lo_fac, each
/// rounding covered by the factor 1 + 2^-48, the float rounded up) gives lo_fac l^2 > da hi_fac
/// + tiny: with lo_fac's (1 - gamma_D), every direct distance of the group exceeds da
/// (cpu_bounds_kernel.hpp). +inf when nothing can be proven (unusable constants, NaN).
inline float prove_threshold(double da, const BoundConsts& bc) {
  const double th = __builtin_sqrt((da * bc.hi_fac + bc.tiny) * bc.thr_fac) * (1 + 0x1p-48);
  const bool ok = bc.usable && th < 3e38;  // false for NaN
  const float f = float_at_least(ok ? th : 0.0);
  return ok ? f : __builtin_inff();
}

/// out[i] for i < 8 = P V: the direct formula's sums over features [0, d) of row xs[i / V]
/// against the lanes of vector i % V of its transposed lane group (cs[i / V], or cs[0] for every
/// row when kShared: [d][V W] values), eight independent chains in feature order. Eight named
/// sums, not an array: GCC keeps a 512-byte array of vectors on the stack (it is above its
/// scalarisation limit), a store and a reload on every step's dependency chain (perf: the full
/// search ran at ~4x its FMA bound).
template <int P, int V, bool kShared, class T>
__attribute__((noinline)) void direct_sums(const T* const* xs, const T* const* cs, std::int64_t d,
                        typename Simd<T>::V* out) {
  static_assert(P * V == 8, "eight chains");
  using VT = typename Simd<T>::V;
  constexpr int W = Simd<T>::W;
  constexpr int G = V * W;
  auto col = [&](int i, std::int64_t j) {
    VT cv;
    __builtin_memcpy(&cv, cs[kShared ? 0 : i / V] + j * G + (i % V) * W, sizeof(VT));
    return cv;
  };
  VT a0{}, a1{}, a2{}, a3{}, a4{}, a5{}, a6{}, a7{};
  for (std::int64_t j = 0; j < d; ++j) {
    // fl(c - x) = -fl(x - c): the square, hence the distance, is the direct formula's.
#define KMEANS_DIRECT_CHAIN(i) a##i = direct_step_v<T>(col(i, j), xs[(i) / V][j], a##i)
    KMEANS_DIRECT_CHAIN(0);
    KMEANS_DIRECT_CHAIN(1);
    KMEANS_DIRECT_CHAIN(2);
    KMEANS_DIRECT_CHAIN(3);
    KMEANS_DIRECT_CHAIN(4);
    KMEANS_DIRECT_CHAIN(5);
    KMEANS_DIRECT_CHAIN(6);
    KMEANS_DIRECT_CHAIN(7);
#undef KMEANS_DIRECT_CHAIN
  }
  out[0] = a0;
  out[1] = a1;
  out[2] = a2;
  out[3] = a3;
  out[4] = a4;
  out[5] = a5;
  out[6] = a6;
  out[7] = a7;
}

/// The group test of rows [r0, r1) of a GroupsTestFn call (their thresholds thr[0, r1 - r0),
/// labels prev): each row's t bounds lowered by their groups' drops and stored, the rows whose
/// bounds do not all prove the label appended to search (ns), about as many lane groups as they
/// fail added to nu. NV > 0: t = NV W exactly, the bounds as NV float vectors and the failing
/// groups as a bit mask (no per-group loop: that loop was ~0.7 ms of a 3.2 ms all-proven pass at
/// 100k x 32 k = 256, one thread); NV = 0: any t.
template <int NV, class T>
inline void test_rows(const GroupPass<T>& gp, std::int64_t r0, std::int64_t r1, const float* thr_of,
                      const std::int32_t* prev, float* lower, std::int64_t* search,
                      std::int64_t& ns, std::int64_t& nu) {
  using VF = typename Simd<float>::V;
  constexpr int W = Simd<float>::W;
  constexpr int G = group_of<T>();
  const int k = gp.k, t = gp.t, n_lg = (k + G - 1) / G;
  const float* __restrict__ dropf = gp.drop_f;
  VF dv[NV > 0 ? NV : 1];
  if constexpr (NV > 0)
    for (int v = 0; v < NV; ++v) __builtin_memcpy(&dv[v], dropf + v * W, sizeof(VF));
  for (std::int64_t r = r0; r < r1; ++r) {
    const std::int32_t a = prev[r];
    float* __restrict__ lr = lower + r * t;
    if (!gp.bc.usable || a < 0 || a >= k) {
      for (int g = 0; g < t; ++g) lr[g] = 0.0f;
      search[ns++] = r;
      nu += n_lg;
      continue;
    }
    const int ga = gp.group[a];
    const float thr = thr_of[r - r0];
    // The own group first, with its drop excluding the label (the lowering below must not see
    // it); a select, not a branch (the label is its group's largest mover about 1 time in 16).
    const double own_drop = (gp.drop_arg[ga] == a ? gp.drop2 : gp.drop1)[ga];
    const float own = floor_to_float(static_cast<double>(lr[ga]) * (1 - 0x1p-50) - own_drop * (1 + 0x1p-50));
    // Branch-free over the groups in float: dropf >= drop1, and for a - b > 0
    // fl(fl(a - b) (1 - 2^-22)) <= a - b, so f <= lower - drop (below 1e-30: 0); a group fails
    // unless f > thr.
    std::int64_t fails;
    if constexpr (NV > 0) {
      std::uint64_t bits = 0;  // the groups that fail
      KMEANS_UNROLL
      for (int v = 0; v < NV; ++v) {
        VF l;
        __builtin_memcpy(&l, lr + v * W, sizeof l);
        VF f = (l - dv[v]) * (1 - 0x1p-22f);
        f = f > 1e-30f ? f : VF{};
        __builtin_memcpy(lr + v * W, &f, sizeof f);
        bits |= failing_lanes(f, thr) << (v * W);
      }
      const std::uint64_t own_bit = std::uint64_t{1} << ga;
      bits = (bits & ~own_bit) | (own > thr ? 0 : own_bit);
      fails = __builtin_popcountll(bits);
    } else {
      int fl = 0;
      for (int g = 0; g < t; ++g) {
        float f = (lr[g] - dropf[g]) * (1 - 0x1p-22f);
        f = f > 1e-30f ? f : 0.0f;
        lr[g] = f;
        fl += f > thr ? 0 : 1;
      }
      fails = fl + (own > thr ? 0 : 1) - (lr[ga] > thr ? 0 : 1);
    }
    lr[ga] = own;
    if (fails) {
      search[ns++] = r;
      nu += fails * gp.per_bound;
    }
  }
}

/// Prefetches rows [first, first + count) of x (d values each) into L2. Plain address arithmetic:
/// rows past the end of the data are never dereferenced (a prefetch does not fault).
template <class T>
inline void prefetch_rows(const T* x, std::int64_t first, std::int64_t count, std::int64_t d) {
  const std::int64_t row_bytes = d * static_cast<std::int64_t>(sizeof(T));
  const std::uintptr_t a =
      reinterpret_cast<std::uintptr_t>(x) + static_cast<std::uintptr_t>(first * row_bytes);
  for (std::int64_t b = 0; b < count * row_bytes; b += 64)
    __builtin_prefetch(reinterpret_cast<const void*>(a + static_cast<std::uintptr_t>(b)), 0, 2);
}

/// Rows groups_test's direct distances prefetch ahead of the W they measure, in groups of W.
constexpr std::int64_t kTestPrefetchGroups = 4;

/// GroupsTestFn.
template <class T>
std::int64_t groups_test(const GroupPass<T>& gp, const T* x, std::int64_t rows,
                         const std::int32_t* prev, float* lower, std::int32_t* lab, T* dist,
                         std::int64_t* search, std::int64_t* units) {
  const int k = gp.k;
  const std::int64_t d = gp.d;
  for (std::int64_t r = 0; r < rows; ++r) lab[r] = prev[r] >= 0 && prev[r] < k ? prev[r] : 0;
  std::int64_t r = 0;
  // Wide enough rows: W rows at once, one per lane, as Lloyd's kernel does (the same bits; the
  // scalar form is four latency-bound chains: 40% of an all-proven pass at d = 32, perf). This is
  // the pass's first read of each row: the rows kTestPrefetchGroups groups ahead are prefetched
  // (an all-proven pass waited on them; bench/NOTES.md, "Elkan's test reads").
  constexpr int DW = Simd<T>::W;
  if (kHaveDirectLanes && d >= kDirectLanesMinD)
    for (; r + DW <= rows; r += DW) {
      prefetch_rows(x, r + kTestPrefetchGroups * DW, DW, d);
      direct_distance_lanes(x + r * d, d, gp.centroids, lab + r, dist + r);
    }
  for (; r + 4 <= rows; r += 4) direct_distance_x4(x + r * d, d, gp.centroids, lab + r, dist + r);
  for (; r < rows; ++r)
    dist[r] = direct_distance(x + r * d, gp.centroids + static_cast<std::int64_t>(lab[r]) * d, d);
  std::int64_t ns = 0, nu = 0;
  // The rows' thresholds first, a chunk at a time (independent, branch-free: their divide-free
  // square roots overlap), then each row's test.
  constexpr std::int64_t kChunk = 64;
  constexpr int FW = Simd<float>::W;
  float thr_of[kChunk];
  const int nv = gp.t % FW == 0 ? gp.t / FW : 0;
  for (r = 0; r < rows; r += kChunk) {
    const std::int64_t r1 = rows - r < kChunk ? rows : r + kChunk;
    for (std::int64_t i = r; i < r1; ++i)
      thr_of[i - r] = prove_threshold(static_cast<double>(dist[i]), gp.bc);
    switch (nv) {
      case 1: test_rows<1>(gp, r, r1, thr_of, prev, lower, search, ns, nu); break;
      case 2: test_rows<2>(gp, r, r1, thr_of, prev, lower, search, ns, nu); break;
      case 4: test_rows<4>(gp, r, r1, thr_of, prev, lower, search, ns, nu); break;
      case 8: test_rows<8>(gp, r, r1, thr_of, prev, lower, search, ns, nu); break;
      default: test_rows<0>(gp, r, r1, thr_of, prev, lower, search, ns, nu); break;
    }
  }
  *units += nu;
  return ns;
}

/// GroupsSearchFn, kSearchRows rows at a time: list the (row, lane group) units, measure them
/// C at a time (C * V independent chains), then merge each row's units in centroid order.
template <class T>
void groups_search(const GroupPass<T>& gp, const T* x, const std::int64_t* search,
                   std::int64_t ns, const std::int32_t* prev, float* lower, std::int32_t* lab,
                   T* dist, std::int32_t* unit_idx, T* unit_val) {
  using VT = typename Simd<T>::V;
  constexpr int W = Simd<T>::W;
  constexpr int G = group_of<T>();
  constexpr int V = G / W;
  constexpr int C = V >= 8 ? 1 : 8 / V;
  using VI = typename Simd<T>::I;
  using LI = typename LaneInt<T>::type;
  const int k = gp.k, t = gp.t, pb = gp.per_bound, n_lg = (k + G - 1) / G;
  const std::int64_t d = gp.d;
  const BoundConsts& bc = gp.bc;
  const T inf = __builtin_inf();
  using VF = typename Simd<float>::V;
  constexpr int FW = Simd<float>::W;
  VI lane_id[V];  // each lane's place in the lane group
  for (int v = 0; v < V; ++v)
    for (int l = 0; l < W; ++l) lane_id[v][l] = static_cast<LI>(v * W + l);
  for (std::int64_t q0 = 0; q0 < ns; q0 += kSearchRows) {
    const std::int64_t q1 = q0 + kSearchRows < ns ? q0 + kSearchRows : ns;
    std::int64_t nu = 0;
    for (std::int64_t q = q0; q < q1; ++q) {
      const std::int64_t r = search[q];
      const std::int32_t a = prev[r];
      const bool valid = bc.usable && a >= 0 && a < k;
      const float thr = valid ? prove_threshold(static_cast<double>(dist[r]), bc) : __builtin_inff();
      const float* lr = lower + r * t;
      // The failing groups as a bit mask (vector compares, or a branch-free loop), then its set
      // bits: a branch per group on whether it fails was mispredicted about as often as not.
      std::uint64_t bits = 0;
      if (t % FW == 0) {
        for (int v = 0; v < t / FW; ++v) {
          VF l;
          __builtin_memcpy(&l, lr + v * FW, sizeof l);
          bits |= failing_lanes(l, thr) << (v * FW);
        }
      } else {
        for (int g = 0; g < t; ++g) bits |= static_cast<std::uint64_t>(!(lr[g] > thr)) << g;
      }
      while (bits) {
        const int g = __builtin_ctzll(bits);
        bits &= bits - 1;
        const int lg1 = (g + 1) * pb < n_lg ? (g + 1) * pb : n_lg;
        for (int lg = g * pb; lg < lg1; ++lg) {
          unit_idx[3 * nu] = static_cast<std::int32_t>(q - q0);
          unit_idx[3 * nu + 1] = lg;
          ++nu;
        }
      }
    }
    for (std::int64_t u0 = 0; u0 < nu; u0 += C) {
      const int nc = nu - u0 < C ? static_cast<int>(nu - u0) : C;
      const T* xp[C];
      const T* cg[C];
      for (int c = 0; c < C; ++c) {
        const std::int64_t u = u0 + (c < nc ? c : nc - 1);
        xp[c] = x + search[q0 + unit_idx[3 * u]] * d;
        cg[c] = gp.ct + static_cast<std::int64_t>(unit_idx[3 * u + 1]) * d * G;
      }
      VT acc_flat[C * V];
      direct_sums<C, V, false>(xp, cg, d, acc_flat);
      auto acc = [&](int c, int v) -> const VT& { return acc_flat[c * V + v]; };
      for (int c = 0; c < nc; ++c) {
        // Branch-free: the smallest value, its first lane (ascending index: ties keep the
        // lowest), then the smallest of the others.
        VT mv = acc(c, 0);
        for (int v = 1; v < V; ++v) mv = acc(c, v) < mv ? acc(c, v) : mv;
        const T m1 = hmin<T, KMEANS_VBYTES>(reinterpret_cast<const T*>(&mv));
        int i1 = G;
        for (int v = V - 1; v >= 0; --v) {
          const std::uint64_t bits = lanes_at_most<T>(acc(c, v), m1);
          if (bits) i1 = v * W + __builtin_ctzll(bits);
        }
        // The others: lane i1 masked to +inf in registers (no store and reload).
        const VI pick = VI{} + static_cast<LI>(i1);
        VT m2v = VT{} + inf;
        for (int v = 0; v < V; ++v) {
          const VT rest = lane_id[v] == pick ? VT{} + inf : acc(c, v);
          m2v = rest < m2v ? rest : m2v;
        }
        const T m2 = hmin<T, KMEANS_VBYTES>(reinterpret_cast<const T*>(&m2v));
        const std::int64_t u = u0 + c;
        // A lane group lists ascending indices: its first lowest lane is the lowest index.
        unit_idx[3 * u + 2] = static_cast<std::int32_t>(gp.perm[unit_idx[3 * u + 1] * G + i1]);
        unit_val[2 * u] = m1;
        unit_val[2 * u + 1] = m2;
      }
    }
    // Merge each row's units (contiguous, ascending lane group) per bound group, then the
    // bound groups in order against the previous label.
    std::int64_t u = 0;
    for (std::int64_t q = q0; q < q1; ++q) {
      const std::int64_t r = search[q];
      const std::int32_t a = prev[r];
      const bool valid = bc.usable && a >= 0 && a < k;
      const T da = dist[r];
      std::int32_t best = valid ? a : -1;
      T best_d = valid ? da : inf;
      // The row's searched bound groups, ascending (its units come in lane-group order).
      int gl[kMaxBoundGroups];
      T gm1[kMaxBoundGroups], gm2[kMaxBoundGroups];
      std::int32_t gi[kMaxBoundGroups];
      int ng = 0;
      while (u < nu && unit_idx[3 * u] == q - q0) {
        const int g = unit_idx[3 * u + 1] / pb;
        const T m1 = unit_val[2 * u], m2 = unit_val[2 * u + 1];
        const std::int32_t i1 = unit_idx[3 * u + 2];
        if (ng == 0 || gl[ng - 1] != g) {
          gl[ng] = g;
          gm1[ng] = m1;
          gm2[ng] = m2;
          gi[ng] = i1;
          ++ng;
        } else {
          const int s = ng - 1;
          if (m1 < gm1[s] || (m1 == gm1[s] && i1 < gi[s])) {
            gm2[s] = gm1[s] < m2 ? gm1[s] : m2;
            gm1[s] = m1;
            gi[s] = i1;
          } else if (m1 < gm2[s]) {
            gm2[s] = m1;
          }
        }
        ++u;
      }
      for (int s = 0; s < ng; ++s)
        if (gm1[s] < best_d || (gm1[s] == best_d && gi[s] < best)) {
          best = gi[s];
          best_d = gm1[s];
        }
      float* lr = lower + r * t;
      bool own_searched = false;
      const int ga = valid ? gp.group[a] : -1;
      for (int s = 0; s < ng; ++s) {  // the label's own group: its min is the label, so the second
        lr[gl[s]] = floor_to_float(lower_of(static_cast<double>(gi[s] == best ? gm2[s] : gm1[s]), bc));
        own_searched = own_searched || gl[s] == ga;
      }
      if (valid && best != a && !own_searched) {  // the old label joins its group's bound
        const float la = floor_to_float(lower_of(static_cast<double>(da), bc));
        if (la < lr[ga]) lr[ga] = la;
      }
      lab[r] = best;
      dist[r] = best_d;
    }
  }
}

/// BoundsSearchFn: the rows search[0, ns) against every centroid.
template <class T>
void bounds_search(const T* x, std::int64_t d, const T* ct, const LaneIdx<T>* perm, int n_groups,
                   const std::int64_t* search, std::int64_t ns, const BoundConsts& bc,
                   std::int32_t* lab, T* dist, double* lower) {
  using VT = typename Simd<T>::V;
  using VI = typename Simd<T>::I;
  using LI = typename LaneInt<T>::type;
  constexpr int W = Simd<T>::W;
  constexpr int G = group_of<T>();
  constexpr int V = G / W;
  constexpr int P = V >= 8 ? 1 : 8 / V;

  // Full search, P rows at a time: every direct distance, lane-wise best (smaller wins, or
  // equal with a lower centroid index) and second best.
  const T inf = __builtin_inf();
  for (std::int64_t q0 = 0; q0 < ns; q0 += P) {
    const int np = ns - q0 < P ? static_cast<int>(ns - q0) : P;
    const T* xp[P];
    for (int p = 0; p < P; ++p) xp[p] = x + search[q0 + (p < np ? p : np - 1)] * d;
    VT best[P][V], sec[P][V];
    VI bidx[P][V];
    for (int p = 0; p < P; ++p)
      for (int v = 0; v < V; ++v) {
        best[p][v] = VT{} + inf;
        sec[p][v] = VT{} + inf;
        bidx[p][v] = VI{};
      }
    for (int g = 0; g < n_groups; ++g) {
      const T* cg = ct + static_cast<std::int64_t>(g) * d * G;
      VT acc[P][V];
      KMEANS_UNROLL
      for (int p = 0; p < P; ++p)
        KMEANS_UNROLL
        for (int v = 0; v < V; ++v) acc[p][v] = VT{};
      for (std::int64_t j = 0; j < d; ++j) {
        VT c[V];
        KMEANS_UNROLL
        for (int v = 0; v < V; ++v) __builtin_memcpy(&c[v], cg + j * G + v * W, sizeof(VT));
        KMEANS_UNROLL
        for (int p = 0; p < P; ++p) {
          const T xj = xp[p][j];
          // fl(c - x) = -fl(x - c): the square, hence the distance, is the direct formula's.
          KMEANS_UNROLL
          for (int v = 0; v < V; ++v) acc[p][v] = direct_step_v<T>(c[v], xj, acc[p][v]);
        }
      }
      for (int v = 0; v < V; ++v) {
        VI cv;  // the lanes' centroid indices: ties go to the lowest index, not position
        __builtin_memcpy(&cv, perm + g * G + v * W, sizeof(VI));
        for (int p = 0; p < P; ++p) {
          const VT a = acc[p][v];
          const auto less = (a < best[p][v]) | ((a == best[p][v]) & (cv < bidx[p][v]));
          const VT hi = less ? best[p][v] : a;  // max(a, best)
          sec[p][v] = hi < sec[p][v] ? hi : sec[p][v];
          best[p][v] = less ? a : best[p][v];
          bidx[p][v] = less ? cv : bidx[p][v];
        }
      }
    }
    for (int p = 0; p < np; ++p) {
      T bv[G], sv[G];
      LI bi[G];
      for (int v = 0; v < V; ++v) {
        __builtin_memcpy(bv + v * W, &best[p][v], sizeof(VT));
        __builtin_memcpy(sv + v * W, &sec[p][v], sizeof(VT));
        __builtin_memcpy(bi + v * W, &bidx[p][v], sizeof(VI));
      }
      int w = 0;
      for (int q = 1; q < G; ++q)
        if (bv[q] < bv[w] || (bv[q] == bv[w] && bi[q] < bi[w])) w = q;
      T second = sv[w];
      for (int q = 0; q < G; ++q)
        if (q != w && bv[q] < second) second = bv[q];
      const std::int64_t row = search[q0 + p];
      lab[row] = static_cast<std::int32_t>(bi[w]);
      dist[row] = bv[w];
      const double s = static_cast<double>(second) - bc.tiny;
      lower[row] = bc.usable && s > 0 ? __builtin_sqrt(s * bc.inv_hi) * (1 - 0x1p-50) : 0.0;
    }
  }
}

/// GroupsSearchFn for rows that search every group: P rows share each centroid load (the full
/// search's blocking) and keep each bound group's smallest distance; the label's own group
/// takes the second smallest distance overall (a valid, slightly weaker bound).
template <class T>
void groups_full(const GroupPass<T>& gp, const T* x, const std::int64_t* search, std::int64_t ns,
                 const std::int32_t*, float* lower, std::int32_t* lab, T* dist, std::int32_t*, T*) {
  using VT = typename Simd<T>::V;
  using VI = typename Simd<T>::I;
  using LI = typename LaneInt<T>::type;
  constexpr int W = Simd<T>::W;
  constexpr int G = group_of<T>();
  constexpr int V = G / W;
  constexpr int P = V >= 8 ? 1 : 8 / V;
  const std::int64_t d = gp.d;
  const int t = gp.t, pb = gp.per_bound, n_lg = (gp.k + G - 1) / G;
  const T inf = __builtin_inf();
  for (std::int64_t q0 = 0; q0 < ns; q0 += P) {
    const int np = ns - q0 < P ? static_cast<int>(ns - q0) : P;
    const T* xp[P];
    for (int p = 0; p < P; ++p) xp[p] = x + search[q0 + (p < np ? p : np - 1)] * d;
    VT best[P][V], sec[P][V];
    VI bidx[P][V];
    T gmin[P][kMaxBoundGroups];
    for (int p = 0; p < P; ++p) {
      for (int v = 0; v < V; ++v) {
        best[p][v] = VT{} + inf;
        sec[p][v] = VT{} + inf;
        bidx[p][v] = VI{};
      }
      for (int g = 0; g < t; ++g) gmin[p][g] = inf;
    }
    for (int lg = 0; lg < n_lg; ++lg) {
      const T* cg = gp.ct + static_cast<std::int64_t>(lg) * d * G;
      VT acc_flat[P * V];
      direct_sums<P, V, true>(xp, &cg, d, acc_flat);
      auto acc = [&](int p, int v) -> const VT& { return acc_flat[p * V + v]; };
      const int g = lg / pb;
      for (int p = 0; p < P; ++p) {
        VT mv = acc(p, 0);
        for (int v = 0; v < V; ++v) {
          VI cv;  // the lanes' centroid indices: ties go to the lowest index, not position
          __builtin_memcpy(&cv, gp.perm + lg * G + v * W, sizeof(VI));
          const VT a = acc(p, v);
          const auto less = (a < best[p][v]) | ((a == best[p][v]) & (cv < bidx[p][v]));
          const VT hi = less ? best[p][v] : a;
          sec[p][v] = hi < sec[p][v] ? hi : sec[p][v];
          best[p][v] = less ? a : best[p][v];
          bidx[p][v] = less ? cv : bidx[p][v];
          mv = a < mv ? a : mv;
        }
        const T m = hmin<T, KMEANS_VBYTES>(reinterpret_cast<const T*>(&mv));
        gmin[p][g] = m < gmin[p][g] ? m : gmin[p][g];
      }
    }
    for (int p = 0; p < np; ++p) {
      T bv[G], sv[G];
      LI bi[G];
      for (int v = 0; v < V; ++v) {
        __builtin_memcpy(bv + v * W, &best[p][v], sizeof(VT));
        __builtin_memcpy(sv + v * W, &sec[p][v], sizeof(VT));
        __builtin_memcpy(bi + v * W, &bidx[p][v], sizeof(VI));
      }
      int w = 0;
      for (int q = 1; q < G; ++q)
        if (bv[q] < bv[w] || (bv[q] == bv[w] && bi[q] < bi[w])) w = q;
      T second = sv[w];
      for (int q = 0; q < G; ++q)
        if (q != w && bv[q] < second) second = bv[q];
      const std::int64_t row = search[q0 + p];
      const auto b = static_cast<std::int32_t>(bi[w]);
      lab[row] = b;
      dist[row] = bv[w];
      float* lr = lower + row * t;
      for (int g = 0; g < t; ++g) lr[g] = floor_to_float(lower_of(static_cast<double>(gmin[p][g]), gp.bc));
      lr[gp.group[b]] = floor_to_float(lower_of(static_cast<double>(second), gp.bc));
    }
  }
}

}  // namespace

#define KMEANS_BOUNDS_CAT2(a, b) a##b
#define KMEANS_BOUNDS_CAT(a, b) KMEANS_BOUNDS_CAT2(a, b)
const BoundsTable& KMEANS_BOUNDS_CAT(bounds_, KMEANS_TABLE)() {
  static const BoundsTable table{&groups_test<float>,   &groups_test<double>,
                                 &groups_search<float>, &groups_search<double>,
                                 &groups_full<float>,   &groups_full<double>,
                                 &bounds_search<float>, &bounds_search<double>};
  return table;
}
#undef KMEANS_BOUNDS_CAT
#undef KMEANS_BOUNDS_CAT2
