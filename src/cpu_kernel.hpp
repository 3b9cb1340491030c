// SPDX-License-Identifier: Apache-2.0
// The CPU distance + argmin kernel, compiled once per instruction set (generic, AVX2, AVX-512)
// and chosen at run time. The interface is plain pointers so the per-ISA translation units
// share no inline code with the rest of the library.
#pragma once

#include <cstdint>

namespace kmeans::detail::cpu {

/// Labels `rows` points (row-major, d features) with their nearest centroid by the direct
/// formula sum((x - c)^2) evaluated in T (KernelTable::direct_fma says whether with fused
/// multiply-adds), ties to the lowest index, and writes that distance. The search ranks the
/// centroids by |c'|^2/2 - x'.c' with x' = x - mean, c' = c - mean (one FMA per point, centroid
/// and feature); every centroid whose ranking lies within the proven rounding bound of the best
/// one (cpu_kernel.inl derives it) has its direct distance computed, and the smallest wins.
/// Centroids come as `centroids` (k x d) and in tiles of `tile` (see KernelTable) laid out
/// [n_tiles][d + 1][tile]: row 0 is |c'|^2/2 (+inf in padding lanes), rows 1..d are c' (0 in
/// padding). `scratch` holds `rows` values of T.
template <class T>
using AssignFn = void (*)(const T* x, std::int64_t rows, std::int64_t d, const T* centroids,
                          int k, const T* mean, const T* tiles, int n_tiles,
                          std::int32_t* labels, T* dist, T* scratch);

/// The small-k kernel: points in SIMD lanes, centroids (k x d) broadcast; the ranking is the
/// direct formula itself (same arithmetic as AssignFn's), so its argmin is exact. Ties go to the
/// lowest centroid index. Any d; for d > kSmallKChunkD, k must be at most kSmallKChunkedMaxK.
template <class T>
using AssignSmallKFn = void (*)(const T* x, std::int64_t rows, std::int64_t d, const T* centroids,
                                int k, std::int32_t* labels, T* dist);

/// The centroid-lanes kernel: the same labels and distances as AssignSmallKFn (bit for bit), with
/// the centroids in SIMD lanes and each point's coordinates broadcast, so the rows are read with
/// no transpose. `ct` holds the centroids transposed and padded: ct[j * kp + c] = centroid c's
/// feature j for c < k, +inf for k <= c < kp, kp = k rounded up to kCentroidLanesPad; 64-byte
/// aligned. Any d and k.
template <class T>
using AssignCentroidLanesFn = void (*)(const T* x, std::int64_t rows, std::int64_t d, const T* ct,
                                       int k, std::int32_t* labels, T* dist);

/// The centroid-lanes layout's padding: kp is k rounded up to this (a multiple of every table's
/// vector width).
constexpr int kCentroidLanesPad = 16;
inline std::int64_t centroid_lanes_kp(int k) {
  return (k + kCentroidLanesPad - 1) / kCentroidLanesPad * std::int64_t{kCentroidLanesPad};
}

/// Adds each row to its cluster's sums, unit weights, in row order: sums[lab[r] * d + j] +=
/// x[r * d + j] and counts[lab[r]] += 1, in double (k clusters). The caller (cpu_accumulate.hpp)
/// points it at one sub-tile's sums, so that the order is the canonical one shared with the CUDA
/// engine (src/cuda/shard.hpp).
template <class T>
using AccumulateFn = void (*)(const T* x, std::int64_t rows, std::int64_t d, int k,
                              const std::int32_t* lab, double* sums, double* counts);

/// Up to this many sums (k x (d + 1)) the small-shape accumulation keeps four sub-tiles' sums on
/// the stack.
constexpr int kAccumulateSmallMax = 288;

/// Whether the small-shape accumulation (AccumulateLeafFn) serves this shape (d in 1..4 or 8,
/// small k): there rows of one cluster would wait on each other's adds, so four sub-tiles are
/// summed at once, interleaved.
inline bool accumulate_interleaved(std::int64_t d, int k) {
  return (d <= 4 || d == 8) && k * (d + 1) <= kAccumulateSmallMax;
}

/// Adds the rows [0, rows) of one leaf (rows <= kReduceBlock, from the leaf's first row; unit
/// weights) into the leaf's values sums (k x d) and counts (k), which start at +0.0, in the
/// canonical order: each 256-row sub-tile summed in row order from +0.0, then added to the leaf
/// value in sub-tile order. Four sub-tiles are summed at once (row r of each in turn), which
/// changes no bits. Only for shapes where accumulate_interleaved holds.
template <class T>
using AccumulateLeafFn = void (*)(const T* x, std::int64_t rows, std::int64_t d, int k,
                                  const std::int32_t* lab, double* sums, double* counts);

/// Features per chunk of the small-k kernel's transposed points (a stack buffer). A wider row is
/// read once per group of points, its running distances to every centroid kept on the stack
/// between chunks: for at most kSmallKChunkedMaxK centroids.
constexpr std::int64_t kSmallKChunkD = 64;
constexpr int kSmallKChunkedMaxK = 64;

/// Features per chunk of the GEMM-shaped ranking (cpu_kernel_gemm.inl): its rounding chain.
constexpr std::int64_t kGemmKC = 64;

/// Scratch values the GEMM-shaped AssignFn needs beyond its `rows` (the packed points of one
/// register block, at most 16 of them, and its running state: 4096 values).
inline std::int64_t gemm_scratch(std::int64_t d) {
  return 16 * ((d + kGemmKC - 1) / kGemmKC * kGemmKC) + 4096;
}

/// dst[i] = dst[i] + src[i] for i < n (the sub-tile scratch's fold into its leaf).
using AddFn = void (*)(double* dst, const double* src, std::int64_t n);

/// Adds one whole sub-tile's canonical value to its leaf without a scratch (unit weights): the
/// rows [0, rows) (rows <= 256, labels lab) are ordered by cluster (a stable counting sort in
/// `scratch`, k + 1 + rows ints), each cluster's rows summed in row order from +0.0 in registers
/// (a chunk of features at a time, in double), then sums[c * d + j] += that sum and counts[c] +=
/// the cluster's row count. The same bits as summing the rows into a zeroed scratch and adding
/// it to the leaf (cpu_accumulate.hpp's order), without zeroing, writing or folding k (d + 1)
/// scratch values per 256 rows.
template <class T>
using SubtileSumsFn = void (*)(const T* x, std::int64_t rows, std::int64_t d, int k,
                               const std::int32_t* lab, double* sums, double* counts,
                               std::int32_t* scratch);

struct KernelTable {
  const char* name;        ///< "generic", "avx2" or "avx512".
  int tile_f;              ///< Centroids per tile for float.
  int tile_d;              ///< Centroids per tile for double.
  int width_f;             ///< Values per vector register: float.
  int width_d;             ///< Values per vector register: double.
  bool direct_fma;         ///< The direct formula accumulates with fused multiply-adds:
                           ///< s = fma(x_j - c_j, x_j - c_j, s); otherwise s + round((x_j - c_j)^2).
  AssignFn<float> assign_f;
  AssignFn<double> assign_d;
  /// The same labels and distances (bit for bit) with the GEMM-shaped ranking pass: `scratch`
  /// holds rows + gemm_scratch(d) values.
  AssignFn<float> assign_gemm_f;
  AssignFn<double> assign_gemm_d;
  AssignSmallKFn<float> assign_small_k_f;
  AssignSmallKFn<double> assign_small_k_d;
  AssignCentroidLanesFn<float> assign_centroid_lanes_f;
  AssignCentroidLanesFn<double> assign_centroid_lanes_d;
  AccumulateFn<float> accumulate_f;
  AccumulateFn<double> accumulate_d;
  AccumulateLeafFn<float> accumulate_leaf_f;
  AccumulateLeafFn<double> accumulate_leaf_d;
  AddFn add;
  SubtileSumsFn<float> subtile_sums_f;
  SubtileSumsFn<double> subtile_sums_d;
};

const KernelTable& kernels_generic();
#if defined(KMEANS_X86_KERNELS)
const KernelTable& kernels_avx2();
const KernelTable& kernels_avx512();
#endif

/// The best table this CPU supports. The environment variable KMEANS_CPU_ISA (generic, avx2,
/// avx512) forces a choice; asking for one the CPU lacks, or for an unknown name, throws
/// kmeans::Error saying which (and listing the valid and the supported names).
const KernelTable& select_kernels();

/// select_kernels' choice among `supported` (n tables, best last) for the value `forced` of
/// KMEANS_CPU_ISA (null or empty: the best).
const KernelTable& select_kernels_from(const char* forced, const KernelTable* const* supported,
                                       int n);

/// Every table this CPU can run, best last (for tests).
int supported_kernels(const KernelTable** out, int max);

}  // namespace kmeans::detail::cpu
