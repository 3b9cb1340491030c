// SPDX-License-Identifier: Apache-2.0
// The per-ISA half of the bound-pruned pass (cpu_bounds.hpp), included at the end of
// cpu_kernel.inl inside kmeans::detail::cpu, so that it uses this table's direct formula
// (direct_step, direct_step_v) and vectors: its distances are the bits of Lloyd's kernel.

namespace {

/// BoundsTestFn: the distance to the previous label and the test on every row.
template <class T>
std::int64_t bounds_test(const T* x, std::int64_t rows, std::int64_t d, const T* centroids,
                         int k, const std::int32_t* prev, double* lower, const double* drop,
                         const BoundConsts& bc, std::int32_t* lab, T* dist, std::int64_t* search) {
  // Unknown labels: centroid 0's distance, then searched anyway.
  for (std::int64_t r = 0; r < rows; ++r) lab[r] = prev[r] >= 0 && prev[r] < k ? prev[r] : 0;
  std::int64_t r = 0;
  for (; r + 4 <= rows; r += 4) direct_distance_x4(x + r * d, d, centroids, lab + r, dist + r);
  for (; r < rows; ++r)
    dist[r] = direct_distance(x + r * d, centroids + static_cast<std::int64_t>(lab[r]) * d, d);

  std::int64_t ns = 0;
  for (r = 0; r < rows; ++r) {
    const std::int32_t a = prev[r];
    if (bc.usable && a >= 0 && a < k) {
      // l <= lower - drop[a] whatever the rounding (cpu_bounds_kernel.hpp).
      const double l = lower[r] * (1 - 0x1p-50) - drop[a] * (1 + 0x1p-50);
      if (l > 0 && bc.lo_fac * l * l > static_cast<double>(dist[r]) * bc.hi_fac + bc.tiny) {
        lower[r] = l;
        continue;
      }
    }
    search[ns++] = r;
  }
  return ns;
}

/// BoundsSearchFn: the rows search[0, ns) against every centroid.
template <class T>
void bounds_search(const T* x, std::int64_t d, const T* ct, int n_groups,
                   const std::int64_t* search, std::int64_t ns, const BoundConsts& bc,
                   std::int32_t* lab, T* dist, double* lower) {
  using VT = typename Simd<T>::V;
  using VI = typename Simd<T>::I;
  using LI = typename LaneInt<T>::type;
  constexpr int W = Simd<T>::W;
  constexpr int G = group_of<T>();
  constexpr int V = G / W;
  constexpr int P = V >= 8 ? 1 : 8 / V;

  // Full search, P rows at a time: every direct distance, lane-wise best (strictly smaller
  // wins, centroids in ascending order per lane: ties keep the lowest index) and second best.
  const T inf = __builtin_inf();
  for (std::int64_t q0 = 0; q0 < ns; q0 += P) {
    const int np = ns - q0 < P ? static_cast<int>(ns - q0) : P;
    const T* xp[P];
    for (int p = 0; p < P; ++p) xp[p] = x + search[q0 + (p < np ? p : np - 1)] * d;
    VT best[P][V], sec[P][V];
    VI bidx[P][V];
    VI lane;
    for (int l = 0; l < W; ++l) lane[l] = static_cast<LI>(l);
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
        const VI cv = lane + static_cast<LI>(g * G + v * W);
        for (int p = 0; p < P; ++p) {
          const VT a = acc[p][v];
          const auto less = a < best[p][v];
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

}  // namespace

#define KMEANS_BOUNDS_CAT2(a, b) a##b
#define KMEANS_BOUNDS_CAT(a, b) KMEANS_BOUNDS_CAT2(a, b)
const BoundsTable& KMEANS_BOUNDS_CAT(bounds_, KMEANS_TABLE)() {
  static const BoundsTable table{&bounds_test<float>, &bounds_test<double>,
                                 &bounds_search<float>, &bounds_search<double>};
  return table;
}
#undef KMEANS_BOUNDS_CAT
#undef KMEANS_BOUNDS_CAT2
