// SPDX-License-Identifier: Apache-2.0
// The plain-pointer interface of the bound-pruned pass's kernel (cpu_bounds_kernel.inl, compiled
// once per instruction set with the distance kernel), and the proof that its labels are Lloyd's.
#pragma once

#include <cstdint>
#include <type_traits>

namespace kmeans::detail::cpu {

// ---- Why a skipped point has exactly Lloyd's label ----------------------------------------------
// Lloyd's label of x is the argmin over c of D_c, the direct formula sum_j (x_j - c_j)^2 in T
// (cpu_kernel.hpp), ties to the lowest index. With E_c the exact squared distance,
// |D_c - E_c| <= gamma_D E_c + tiny (gamma_D = gamma_(d+2) in T's unit roundoff; tiny: the
// gradual-underflow allowance), the same bound the kernel's re-check rests on.
// The centroids are cut into t bound groups (GroupPass). Each point i keeps, for every group g,
// lower_ig <= min over c in g, c != a_i, of |x_i - c| (exact Euclidean distances, a_i its label
// of the previous pass). When the centroids move, the engine computes an upper bound
// delta_c >= |c_new - c_old| for each, and lower_ig - max over c in g, c != a_i, of delta_c bounds
// the new distances from below (triangle inequality). If (1 - gamma_D) l^2 - tiny > D_(a_i) for
// every group, every other centroid has D_c >= (1 - gamma_D) E_c - tiny > D_(a_i): a_i is the
// unique argmin, Lloyd's label, strictly (so a tie never needs breaking). Its distance D_(a_i)
// is computed by the same direct formula as Lloyd's pass, so the pass's distances, sums and SSE
// are Lloyd's bits. Otherwise only the groups whose bound fails are searched, every D_c in them
// by the direct formula, and the label is the argmin over a_i and the searched centroids, ties
// to the lowest index: exactly Lloyd's, since every unsearched centroid is farther than a_i.
// A searched group's bound becomes sqrt((D_min - tiny) / (1 + gamma_D)) rounded down, D_min its
// smallest D_c other than the new label (E_c >= (D_c - tiny) / (1 + gamma_D)); an old label that
// lost its place joins its group's bound the same way. Rows labelled by Lloyd's kernel instead
// (crowded sub-blocks) keep what their bounds still prove or take s_b - U_b, s_b <= min over
// c != b of |c - b| (the centroids' separation) and U_b >= |x - b| from D_b, since
// |x - c| >= |c - b| - |x - b|. Every double operation is covered by factors 1 -/+ 2^-48 or
// 1 -/+ 2^-50, and every bound stored as float is rounded down.

/// An underflow allowance raised to at least the smallest normal double. For float64 data the
/// allowances (a multiple of 2^-1074) are subnormal, and every operation with a subnormal operand
/// takes a microcode assist (~27x an add on x86; it was a per-row cost of the float64 passes,
/// bench/NOTES.md 2026-12-02 03:25); a larger allowance only widens a valid bound.
inline double normal_allowance(double v) { return v < 0x1p-1022 ? 0x1p-1022 : v; }

/// The per-pass constants of the test (they depend on d and T only).
struct BoundConsts {
  double lo_fac = 0;   ///< (1 - gamma_D) (1 - 2^-48): multiplies l^2
  double hi_fac = 0;   ///< 1 + 2^-48: multiplies D_a
  double tiny = 0;     ///< underflow allowance, added to D_a
  double inv_hi = 0;   ///< (1 - 2^-48) / (1 + gamma_D): the new lower bound's factor
  double inv_lo = 0;   ///< (1 + 2^-48) / (1 - gamma_D): E_a <= (D_a + tiny) inv_lo
  double thr_fac = 0;  ///< >= 1 / lo_fac (rounded up): the proving threshold's factor
  bool usable = false; ///< false when gamma_D is too large to prove anything (d near 1 / u)
};

template <class T>
BoundConsts bound_consts(std::int64_t d);

/// The centroid index of a lane, as the vector lanes of T hold it.
template <class T>
using LaneIdx = std::conditional_t<sizeof(T) == 4, std::int32_t, std::int64_t>;

/// What the group-bound kernels of one pass share. The centroids, in the spatial order `perm`
/// (spatial_order, cpu_bounds.hpp), are cut into t bound groups of `per_bound` transposed lane
/// groups each (bound group q: positions [q per_bound L, (q + 1) per_bound L), L =
/// group_of<T>()); each point keeps t lower bounds (float, rounded down), bound q's on min over
/// c in q, c != its label, of |x - c|. Every tie between equal distances goes to the lowest
/// centroid index (Lloyd's rule), not the lowest position: each bound group lists its centroids
/// in ascending index, and the kernels compare indices, never positions.
template <class T>
struct GroupPass {
  const T* centroids;   ///< k x d row-major
  int k;
  std::int64_t d;
  const T* ct;          ///< transposed lane groups in position order ([group][d][L], +inf in padding)
  const LaneIdx<T>* perm;      ///< position -> centroid index (padding: k + position)
  const std::int32_t* group;   ///< centroid index -> its bound group
  int per_bound;        ///< lane groups per bound group
  int t;                ///< bound groups (at most kMaxBoundGroups)
  const double* drop1;  ///< per bound group: the largest movement bound delta_c in it
  const double* drop2;  ///< the second largest
  const std::int32_t* drop_arg;  ///< the centroid with the largest
  const float* drop_f;    ///< drop1 rounded up to float: the group test's subtrahend
  BoundConsts bc;
};

constexpr int kMaxBoundGroups = 32;
/// Rows of phase 2 whose units are measured together.
constexpr std::int64_t kSearchRows = 128;

/// Phase 1 on rows x[0, rows): lab[r] = the previous label (0 when unknown), dist[r] = its
/// direct distance (Lloyd's bits), every bound lowered by its group's movement (lower: rows x
/// t); rows whose t bounds do not all prove the label go to search[0, ns), ns returned, and
/// about as many lane groups as they fail are added to *units (a cost estimate).
template <class T>
using GroupsTestFn = std::int64_t (*)(const GroupPass<T>& gp, const T* x, std::int64_t rows,
                                      const std::int32_t* prev, float* lower, std::int32_t* lab,
                                      T* dist, std::int64_t* search, std::int64_t* units);

/// Phase 2: the rows search[0, ns) search the lane groups of their failing bound groups and get
/// Lloyd's label and distance and their new bounds. Scratch: kSearchRows rows' units of all
/// lane groups, 3 int32 (unit_idx) and 2 T (unit_val) each.
template <class T>
using GroupsSearchFn = void (*)(const GroupPass<T>& gp, const T* x, const std::int64_t* search,
                                std::int64_t ns, const std::int32_t* prev, float* lower,
                                std::int32_t* lab, T* dist, std::int32_t* unit_idx, T* unit_val);

/// The full search of rows search[0, ns) of x against the centroids transposed in groups of
/// group_of<T>() lanes ([group][d][lanes], +inf in padding lanes; perm: each lane's centroid
/// index): Lloyd's lab and dist, and lower = the bound from the second smallest direct distance.
template <class T>
using BoundsSearchFn = void (*)(const T* x, std::int64_t d, const T* ct, const LaneIdx<T>* perm,
                                int n_groups,
                                const std::int64_t* search, std::int64_t ns, const BoundConsts& bc,
                                std::int32_t* lab, T* dist, double* lower);

/// Centroids per transposed group: one 64-byte vector of T.
template <class T>
constexpr int group_of() {
  return static_cast<int>(64 / sizeof(T));
}

struct BoundsTable {
  GroupsTestFn<float> test_f;
  GroupsTestFn<double> test_d;
  GroupsSearchFn<float> groups_f;
  GroupsSearchFn<double> groups_d;
  GroupsSearchFn<float> full_f;    ///< the same for rows that search every group, blocked
  GroupsSearchFn<double> full_d;
  BoundsSearchFn<float> search_f;
  BoundsSearchFn<double> search_d;
};

/// The bounds kernel compiled with the same instruction set (and the same direct formula) as
/// the kernel table called `isa_name` ("generic", "avx2", "avx512").
const BoundsTable& bounds_table_for(const char* isa_name);
const BoundsTable& bounds_kernels_generic();
#if defined(KMEANS_X86_KERNELS)
const BoundsTable& bounds_kernels_avx2();
const BoundsTable& bounds_kernels_avx512();
#endif

}  // namespace kmeans::detail::cpu
