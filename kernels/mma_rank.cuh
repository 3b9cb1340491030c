// SPDX-License-Identifier: Apache-2.0
// The TF32 tensor-core assignment (float only): centred TF32 products x'.c' by mma.sync, their
// proven error bound, a running bound and candidate lists per point, and the exact distances
// of the candidates (mma_assign_kernel, mma_centre_kernel). Device code and the
// __host__ __device__ arithmetic the host emulation (tests/test_mma_host.cu) shares; the
// launches live in src/cuda/mma_pass.cu.
#pragma once

#include <climits>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels/assign.cuh"
#include "kernels/layout.cuh"
#include "kernels/tuning.cuh"

namespace kmeans::detail {

// ---- The ranking and its bound ----------------------------------------------------------------
//
// Centre: mu = float(m), m the data mean (CudaEngine::compute_mean). Centred points and
// centroids are x' = fl(x - mu), c' = fl(c - mu) (float subtraction, per coordinate). The
// tensor cores multiply their TF32 roundings x~ = tf32(x'), c~ = tf32(c') (round to nearest,
// ties away: tf32_round) and accumulate in fp32: g = x~.c~ as computed. With b = fl(|c'|^2 / 2)
// (|c'|^2 summed in double) the kernel ranks by the float score s_c = fl(b_c - g_c), which
// estimates t_c = D_c / 2 - |x'|^2 / 2, where D_c = squared_distance(x, c, d) is the direct
// float formula whose labels the path must give. Real numbers below; u = 2^-24 (fp32),
// u' = u / (1 - u), gamma_m(v) = m v / (1 - m v), X = |x'|, C = |c'|.
//
// (1) Direct formula. diff_j = fl(x_j - c_j) = (x_j - c_j)(1 + d_j), |d_j| <= u, and d FMAs:
//     |D_c - ||x - c||^2| <= gamma_(d+2)(u) ||x - c||^2 (Higham, any summation order). With
//     a = x - mu, e = c - mu exactly, |a| <= (1 + u') X and |e| <= (1 + u') C (each coordinate
//     of x' is a rounded to float), ||x - c||^2 = |a - e|^2 <= 2 (1 + u')^2 (X^2 + C^2).
// (2) Centring. r = (a - e) - (x' - c') has |r| <= u' (X + C), so
//     | |a - e|^2 - |x' - c'|^2 | <= |r| (|a - e| + |x' - c'|) <= u' (2 + u') (X + C)^2, and
//     |x' - c'|^2 / 2 - |x'|^2 / 2 = C^2 / 2 - x'.c' exactly. With (1):
//     |t_c - (C^2 / 2 - x'.c')| <= kappa (X^2 + C^2),
//     kappa = gamma_(d+2)(u) (1 + u')^2 + 2 u' (1 + u')                       (mma_kappa).
// (3) The TF32 product. |x~_j - x'_j| <= 2^-11 |x'_j| (likewise c~), the products x~_j c~_j are
//     exact in fp32 (11 x 11 significant bits), and the mma's fp32 accumulation order and
//     rounding are unspecified (NVIDIA documents neither; tensor cores are reported to align
//     and truncate): each of its dp <= d + 7 additions (dp = d rounded up to 8; the padding
//     adds zeros) is taken to err by up to 2^-22 of the magnitudes it adds (two fp32 ulps, so
//     truncation is covered too), for any order:
//     |g - x'.c'| <= gamma_t X C + A,
//     gamma_t = ((1 + 2^-11)^2 - 1) + (1 + 2^-11)^2 gamma_(d+9)(2^-22)   (mma_product_gamma),
//     A = 2^-125 (sqrt(d) (X + C) + 2 d) for subnormal operands, products and sums flushed to
//     zero (each flush loses at most 2^-126 times what it multiplies, or 2^-126).
// (4) Bias and score. b = (|c'|^2 (1 + eps_d)) / 2 rounded to float, |eps_d| <= gamma_d(2^-53):
//     |b - C^2 / 2| <= (u + 2^-40) C^2 / 2. s = fl(b - g): |s - (b - g)| <= u (|b| + |g|).
//     Collecting (2)-(4): |s - t_c| <= gamma_t X C + (kappa + 2^-23) C^2 + kappa X^2 + A
//     + 2u (|b| + |g|), and 2u (|b| + |g|) <= 2^-22 X C + 2^-24 C^2 (1 + 2^-20) + 2u A.
// (5) The float epilogue. Per centroid slope = up(sigma (1 + 2^-16)), base = up(beta (1 + 2^-16))
//     with sigma = (gamma_t + 2^-21) C and beta = (kappa + 2^-22) C^2 + 2^-125 (sqrt(d) C + 2 d)
//     + 2^-120 (up: rounded up to float; C taken >= |c'| from the double sum, mma_centroid_terms);
//     per point X_up >= X and rho2 = up(2 rho (1 + 2^-16)) with rho = kappa X^2 +
//     2^-125 sqrt(d) X + 2^-120 (mma_row_terms). The kernel computes e = fl(fma(slope, X_up,
//     base)), up_c = fl(s + e), lo_c = fl(s - e). Since e >= (sigma X + beta)(1 + 2^-16)(1 - u)
//     and fl(s - e) <= s - e + u (|s| + e), the margins give, for every centroid c,
//         lo_c <= t_c + rho  and  up_c >= t_c - rho.
// (6) Candidates. Let c* be the direct formula's label (smallest D, ties to the lowest index).
//     For every c: lo_(c*) <= t_(c*) + rho <= t_c + rho <= up_c + 2 rho, so
//     lo_(c*) <= fl(min_c up_c + rho2) =: thr (rho2 >= 2 rho; lo is a float and rounding to
//     nearest is monotone). Every centroid with lo_c <= thr is a candidate; the smallest
//     direct distance among them, ties to the lowest index, is c*: the labels and distances of
//     the direct formula, for any accumulation order of the tensor cores. The running
//     threshold only decreases as centroid tiles stream past, so the centroids admitted (and
//     kept when a full list is pruned) against earlier thresholds include the final set; the
//     kernel evaluates exactly those it flushes from full lists and those left at the end that
//     pass the final threshold: a subset of all centroids holding every final candidate.
//
// The bound is loose by design only where it must be: for d = 128 gamma_t ~ 1.0e-3, kappa ~ 8e-6,
// so the window 2 e ~ 2e-3 |x'| |c'| around the best score (centred data: far-from-origin data
// costs nothing). Points nearly equidistant from several centroids at that scale get all of
// them as candidates; lists that fill up are flushed into an exact running argmin (mma_push).

/// The TF32 rounding of the mma operands: round to nearest, ties away from zero, to 10
/// fraction bits (PTX cvt.rna.tf32.f32), as integer operations, so host and device give the
/// same bits and the low 13 bits the tensor cores ignore are zero. Finite input only.
KMEANS_HD inline float tf32_round(float v) {
  std::uint32_t bits;
#if defined(__CUDA_ARCH__)
  bits = __float_as_uint(v);
#else
  std::memcpy(&bits, &v, sizeof bits);
#endif
  bits = (bits + 0x1000u) & 0xFFFFE000u;  // magnitude + half an ulp, truncated: ties away
#if defined(__CUDA_ARCH__)
  return __uint_as_float(bits);
#else
  float out;
  std::memcpy(&out, &bits, sizeof out);
  return out;
#endif
}

/// gamma_m(v) = m v / (1 - m v) (Higham's bound on m roundings of unit v).
KMEANS_HD inline double mma_gamma(double m, double v) { return m * v / (1 - m * v); }

/// gamma_t of (3): the TF32 product's error per unit of |x'| |c'|.
KMEANS_HD inline double mma_product_gamma(std::int64_t d) {
  const double a = (1 + 0x1p-11) * (1 + 0x1p-11);
  return (a - 1) + a * mma_gamma(static_cast<double>(d + 9), 0x1p-22);
}

/// kappa of (2): the direct formula's and the centring's error per unit of |x'|^2 + |c'|^2.
KMEANS_HD inline double mma_kappa(std::int64_t d) {
  const double u = 0x1p-24, up = u / (1 - u);
  return mma_gamma(static_cast<double>(d + 2), u) * (1 + up) * (1 + up) + 2 * up * (1 + up);
}

/// v rounded up to float (v >= 0, finite or +inf).
KMEANS_HD inline float mma_round_up(double v) {
  float f = static_cast<float>(v);
  if (static_cast<double>(f) < v) f = nextafterf(f, HUGE_VALF);
  return f;
}

/// The per-centroid constants of the ranking, as the kernel reads them (one float4 each).
struct MmaTerms {
  float bias = 0;   ///< fl(|c'|^2 / 2)
  float slope = 0;  ///< error bound per unit of |x'|
  float base = 0;   ///< error bound's x-free part
  float pad = 0;
};

/// (4)-(5): the terms of a centroid whose centred coordinates have squared norm c2 (summed in
/// double from the float c', so every square is exact).
KMEANS_HD inline MmaTerms mma_centroid_terms(double c2, std::int64_t d) {
  MmaTerms t;
  t.bias = static_cast<float>(0.5 * c2);
  const double rd = sqrt(static_cast<double>(d));
  const double c = sqrt(c2 / (1 - mma_gamma(static_cast<double>(d), 0x1p-53))) * (1 + 0x1p-50);
  const double sigma = (mma_product_gamma(d) + 0x1p-21) * c;
  const double beta = (mma_kappa(d) + 0x1p-22) * c * c * (1 + 0x1p-50) +
                      0x1p-125 * (rd * c + 2.0 * static_cast<double>(d)) + 0x1p-120;
  t.slope = mma_round_up(sigma * (1 + 0x1p-16));
  t.base = mma_round_up(beta * (1 + 0x1p-16));
  return t;
}

/// (5): a point's bound terms from s2, its |x'|^2 summed in float in any order.
struct MmaRowTerms {
  float x_norm = 0;  ///< >= |x'|
  float rho2 = 0;    ///< >= 2 rho
};

KMEANS_HD inline MmaRowTerms mma_row_terms(float s2, std::int64_t d) {
  const double x = sqrt(static_cast<double>(s2) /
                        (1 - mma_gamma(static_cast<double>(d + 2), 0x1p-24))) *
                   (1 + 0x1p-50);
  const double rho = mma_kappa(d) * x * x * (1 + 0x1p-50) +
                     0x1p-125 * sqrt(static_cast<double>(d)) * x + 0x1p-120;
  MmaRowTerms r;
  r.x_norm = mma_round_up(x);
  r.rho2 = mma_round_up(2 * rho * (1 + 0x1p-16));
  return r;
}

/// The float epilogue of (5) for one (point, centroid): g the tensor-core product.
struct MmaBounds {
  float lo = 0, up = 0;
};

KMEANS_HD inline MmaBounds mma_bounds(const MmaTerms& t, float g, float x_norm) {
  const float s = t.bias - g;
  const float e = fmaf(t.slope, x_norm, t.base);
  MmaBounds b;
  b.up = s + e;
  b.lo = s - e;
  return b;
}

/// The candidate threshold of (6) from the running minimum of the upper bounds.
KMEANS_HD inline float mma_threshold(float min_up, float rho2) { return min_up + rho2; }

/// A running exact argmin: the smallest direct distance seen and its index (INT_MAX: none).
struct MmaBest {
  float dist = HUGE_VALF;
  int index = INT_MAX;
};

#if defined(__CUDACC__)
#define KMEANS_MMA_NOINLINE __noinline__
#else
#define KMEANS_MMA_NOINLINE
#endif

/// The exact distances (squared_distance against the uncentred centroids c, k x d) of the
/// listed candidates whose lower bound passes `thr`, merged into `best` (ties lowest). Not
/// inlined: the kernel calls it from every unrolled slot of its epilogue, rarely.
KMEANS_HD KMEANS_MMA_NOINLINE inline MmaBest mma_pick(const float* lo_list, const int* idx_list,
                                                      int stride, int count, float thr,
                                                      const float* x, const float* c,
                                                      std::int64_t d, MmaBest best) {
  for (int q = 0; q < count; ++q) {
    if (lo_list[q * stride] <= thr) {
      const int j = idx_list[q * stride];
      argmin_merge(squared_distance(x, c + static_cast<std::int64_t>(j) * d, d), j, best.dist,
                   best.index);
    }
  }
  return best;
}

/// Appends candidate (lo, index) to a list of kMmaCandidates slots (lo_list, idx_list, stride
/// `stride` between slots) holding `count`. A full list first drops the entries the current
/// threshold excludes (they cannot pass the final one); one still full is flushed: its
/// entries' exact distances go into `best` (mma_pick) and it empties. So every candidate that
/// passes the final threshold is evaluated exactly, now or at the end, whatever the list size.
KMEANS_HD inline void mma_push(float* lo_list, int* idx_list, int stride, int& count, float lo,
                               int index, float thr, const float* x, const float* c,
                               std::int64_t d, MmaBest& best, int& flushes) {
  constexpr int kCap = tuning::kMmaCandidates;
  if (count == kCap) {
    int kept = 0;
    for (int q = 0; q < kCap; ++q) {
      const float v = lo_list[q * stride];
      if (v <= thr) {
        lo_list[kept * stride] = v;
        idx_list[kept * stride] = idx_list[q * stride];
        ++kept;
      }
    }
    count = kept;
    if (count == kCap) {
      best = mma_pick(lo_list, idx_list, stride, count, thr, x, c, d, best);
      count = 0;
      ++flushes;
    }
  }
  lo_list[count * stride] = lo;
  idx_list[count * stride] = index;
  ++count;
}

/// Centring, the part owned by lane `lane` of `lanes`: writes out[q] = tf32(c'_q) for
/// q = lane, lane + lanes, ... < dp (zero past d) and adds c'_q^2 in double to c2; c' =
/// fl(c - float(mean)). With x the point and float accumulation it gives the point tile.
KMEANS_HD inline void mma_centre_part(const float* c, const double* mean, std::int64_t d,
                                      std::int64_t dp, int lane, int lanes, float* out,
                                      double& c2) {
  for (std::int64_t q = lane; q < dp; q += lanes) {
    float v = 0;
    if (q < d) {
      v = c[q] - static_cast<float>(mean[q]);
      c2 += static_cast<double>(v) * static_cast<double>(v);
    }
    out[q] = tf32_round(v);
  }
}

/// The point tile's centring: out[q] = tf32(x'_q) for q = lane, lane + lanes, ... < dp, and
/// x'_q^2 added to s2 with float FMAs (the order of the bound's |x'|^2: any order is proven).
KMEANS_HD inline void mma_point_part(const float* x, const double* mean, std::int64_t d,
                                     std::int64_t dp, int lane, int lanes, float* out, float& s2) {
  for (std::int64_t q = lane; q < dp; q += lanes) {
    float v = 0;
    if (q < d) {
      v = x[q] - static_cast<float>(mean[q]);
      s2 = fmaf(v, v, s2);
    }
    out[q] = tf32_round(v);
  }
}

#if defined(__CUDACC__)

/// Arguments of mma_centre_kernel.
struct MmaCentreArgs {
  const float* c = nullptr;       ///< k x d centroids
  const double* mean = nullptr;   ///< d data means
  int k = 0, d = 0;
  int k_pad = 0, dp = 0;          ///< tuning::mma_k_pad(k), tuning::mma_dim_pad(d)
  float* centred = nullptr;       ///< out: k_pad x dp, tf32(c'), zero padding
  MmaTerms* terms = nullptr;      ///< out: k_pad (zero past k)
};

/// A warp per (padded) centroid: tf32(c') and |c'|^2 (lane-strided in double, then a butterfly:
/// fixed order), then its terms. T is float (a template only so the header defines it once).
template <class T>
__global__ void __launch_bounds__(tuning::kMmaThreads) mma_centre_kernel(MmaCentreArgs a) {
  static_assert(sizeof(T) == sizeof(float), "the TF32 path is float only");
  const int lane = threadIdx.x % 32;
  const std::int64_t j =
      static_cast<std::int64_t>(blockIdx.x) * (tuning::kMmaThreads / 32) + threadIdx.x / 32;
  if (j >= a.k_pad) return;  // whole warps
  const std::int64_t dp = a.dp;
  float* out = a.centred + j * dp;
  double c2 = 0;
  if (j < a.k) {
    mma_centre_part(a.c + j * a.d, a.mean, a.d, dp, lane, 32, out, c2);
  } else {
    for (std::int64_t q = lane; q < dp; q += 32) out[q] = 0.f;
  }
  for (int off = 16; off > 0; off /= 2) c2 += __shfl_xor_sync(0xffffffffu, c2, off);
  if (lane == 0) a.terms[j] = j < a.k ? mma_centroid_terms(c2, a.d) : MmaTerms{};
}

/// Arguments of mma_assign_kernel.
struct MmaAssignArgs {
  const float* x = nullptr;        ///< n x d points
  const float* w = nullptr;        ///< n weights or null
  const float* c = nullptr;        ///< k x d centroids (uncentred: the exact distances)
  const double* mean = nullptr;    ///< d data means (the centre)
  const float* centred = nullptr;  ///< k_pad x dp, from mma_centre_kernel
  const MmaTerms* terms = nullptr; ///< k_pad
  int n = 0, d = 0, k = 0;
  int dp = 0, k_pad = 0;
  int n_blocks = 0;                ///< gridDim.x: ceil(n / kMmaRows), the partial stride
  std::int32_t* labels = nullptr;
  float* dist = nullptr;
  double* partials = nullptr;
};

namespace mma_detail {

__device__ inline void cp_async16(void* dst, const void* src) {
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(dst));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(s), "l"(src));
}
__device__ inline void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ inline void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

/// D += A B for one m16n8k8 TF32 tile (A row-major 16 x 8, B column-major 8 x 8).
__device__ inline void mma_tf32(float (&acc)[4], const std::uint32_t (&a)[4], std::uint32_t b0,
                                std::uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(acc[0]), "+f"(acc[1]), "+f"(acc[2]), "+f"(acc[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

/// Merges an argmin across the 4 lanes of a quad (value, then index: ties lowest).
__device__ inline void quad_argmin(float& best, int& label) {
  for (int off = 1; off <= 2; off *= 2) {
    const float ob = __shfl_xor_sync(0xffffffffu, best, off);
    const int ol = __shfl_xor_sync(0xffffffffu, label, off);
    argmin_merge(ob, ol, best, label);
  }
}

constexpr int kLdb = tuning::kMmaKChunk + 4;  // centroid chunk row stride (floats)
constexpr int kWarps = tuning::kMmaThreads / 32;
constexpr int kNTiles = tuning::kMmaCols / 8;  // n8 tiles per centroid tile
constexpr int kCap = tuning::kMmaCandidates;

}  // namespace mma_detail

/// The fused TF32 assignment. A block holds kMmaRows centred, TF32-rounded points in shared
/// memory; centroid tiles of kMmaCols stream through a kMmaStages-deep cp.async ring in chunks
/// of kMmaKChunk features; warp w multiplies its 32 points by every centroid of the tile
/// (mma.sync m16n8k8, fp32 accumulators in registers). After each tile, every thread turns its
/// accumulators into bounds (mma_bounds), the quad of lanes sharing a point merges the running
/// minimum upper bound, and centroids whose lower bound passes the threshold join the lane's
/// candidate list (shared memory); a second pass over the accumulators runs only when one of
/// the thread's lower bounds passes. A full list is pruned against the current threshold, or
/// flushed: its candidates' exact distances (squared_distance, uncentred) go into the lane's
/// running exact argmin. At the end the remaining candidates get theirs too, merged over the
/// quad (ties lowest). Writes labels, distances and the block's SSE and changed count
/// (partial slot blockIdx.x). Needs sm_80 (cp.async, TF32 mma): launched only where the build
/// carries sm_80+ code and the device has it (mma_supported). T is float (see mma_centre_kernel).
template <class T>
__global__ void __launch_bounds__(tuning::kMmaThreads) mma_assign_kernel(MmaAssignArgs a) {
  static_assert(sizeof(T) == sizeof(float), "the TF32 path is float only");
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  using namespace mma_detail;
  namespace tn = tuning;
  extern __shared__ __align__(16) unsigned char mma_smem[];
  __shared__ double s_sse[kWarps], s_changed[kWarps];
  const int dp = a.dp, lda = dp + 4;
  float* s_a = reinterpret_cast<float*>(mma_smem);                 // kMmaRows x lda
  float* s_b = s_a + tn::kMmaRows * lda;                           // stages x kMmaCols x kLdb
  float* s_lo = s_b + tn::kMmaStages * tn::kMmaCols * kLdb;        // [slot][row * 4 + lane]
  int* s_idx = reinterpret_cast<int*>(s_lo + tn::kMmaRows * 4 * kCap);
  float* s_xn = reinterpret_cast<float*>(s_idx + tn::kMmaRows * 4 * kCap);  // kMmaRows
  float* s_rho = s_xn + tn::kMmaRows;                                        // kMmaRows
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int g = lane / 4, tq = lane % 4;
  const std::int64_t row0 = static_cast<std::int64_t>(blockIdx.x) * tn::kMmaRows;
  const std::int64_t d = a.d;

  // The point tile: warp w centres rows [32 w, 32 w + 32), lane-strided, and sums |x'|^2.
  for (int r = warp * 32; r < warp * 32 + 32; ++r) {
    const std::int64_t i = row0 + r;
    float s2 = 0;
    if (i < a.n) {
      mma_point_part(a.x + i * d, a.mean, d, dp, lane, 32, s_a + r * lda, s2);
    } else {
      for (int q = lane; q < dp; q += 32) s_a[r * lda + q] = 0.f;
    }
    for (int off = 16; off > 0; off /= 2) s2 += __shfl_xor_sync(0xffffffffu, s2, off);
    if (lane == 0) {
      const MmaRowTerms rt = mma_row_terms(s2, d);
      s_xn[r] = rt.x_norm;
      s_rho[r] = rt.rho2;
    }
  }

  const int chunks = (dp + tn::kMmaKChunk - 1) / tn::kMmaKChunk;  // per centroid tile
  const int total = (a.k_pad / tn::kMmaCols) * chunks;
  auto load_chunk = [&](int q) {
    const int tile = q / chunks, kc = q % chunks;
    const int cols = min(tn::kMmaKChunk, dp - kc * tn::kMmaKChunk);  // a multiple of 8
    const int per_row = cols / 4;
    float* dst = s_b + (q % tn::kMmaStages) * tn::kMmaCols * kLdb;
    const float* src = a.centred + static_cast<std::int64_t>(tile) * tn::kMmaCols * dp +
                       kc * tn::kMmaKChunk;
    for (int p = threadIdx.x; p < tn::kMmaCols * per_row; p += tn::kMmaThreads) {
      const int rr = p / per_row, q4 = p % per_row;
      cp_async16(dst + rr * kLdb + q4 * 4, src + static_cast<std::int64_t>(rr) * dp + q4 * 4);
    }
  };
  for (int q = 0; q < tn::kMmaStages - 1; ++q) {
    if (q < total) load_chunk(q);
    cp_async_commit();
  }

  float acc[2][kNTiles][4];
  for (int mi = 0; mi < 2; ++mi)
    for (int nt = 0; nt < kNTiles; ++nt)
      for (int e = 0; e < 4; ++e) acc[mi][nt][e] = 0.f;
  // Rows of this thread: ri = 2 mi + h is row 32 w + 16 mi + 8 h + g.
  float xn[4], rho2[4], min_up[4], thr[4];
  int count[4];
  MmaBest best[4];  // candidates flushed from full lists, exactly
  const float* xrow[4];
  bool valid[4];
  bool read_rows = false;

  for (int q = 0; q < total; ++q) {
    cp_async_wait<tn::kMmaStages - 2>();
    __syncthreads();  // chunk q landed for all; everyone is done with the slot refilled next
    if (q + tn::kMmaStages - 1 < total) load_chunk(q + tn::kMmaStages - 1);
    cp_async_commit();
    if (!read_rows) {  // after the first barrier: the point tile and its terms are written
      read_rows = true;
#pragma unroll
      for (int ri = 0; ri < 4; ++ri) {
        const int r = warp * 32 + (ri / 2) * 16 + (ri % 2) * 8 + g;
        xn[ri] = s_xn[r];
        rho2[ri] = s_rho[r];
        min_up[ri] = positive_infinity<float>();
        thr[ri] = positive_infinity<float>();
        count[ri] = 0;
        const std::int64_t i = row0 + r;
        valid[ri] = i < a.n;
        xrow[ri] = a.x + (valid[ri] ? i : 0) * d;
      }
    }
    const int tile = q / chunks, kc = q % chunks;
    const int k0 = kc * tn::kMmaKChunk;
    const int ksteps = min(tn::kMmaKChunk, dp - k0) / 8;
    const float* sb = s_b + (q % tn::kMmaStages) * tn::kMmaCols * kLdb;
#pragma unroll
    for (int ks = 0; ks < tn::kMmaKChunk / 8; ++ks) {
      if (ks < ksteps) {
        std::uint32_t af[2][4];
#pragma unroll
        for (int mi = 0; mi < 2; ++mi) {
          const float* pa = s_a + (warp * 32 + mi * 16 + g) * lda + k0 + ks * 8 + tq;
          af[mi][0] = __float_as_uint(pa[0]);
          af[mi][1] = __float_as_uint(pa[8 * lda]);
          af[mi][2] = __float_as_uint(pa[4]);
          af[mi][3] = __float_as_uint(pa[8 * lda + 4]);
        }
#pragma unroll
        for (int nt = 0; nt < kNTiles; ++nt) {
          const float* pb = sb + (nt * 8 + g) * kLdb + ks * 8 + tq;
          const std::uint32_t b0 = __float_as_uint(pb[0]), b1 = __float_as_uint(pb[4]);
          mma_tf32(acc[0][nt], af[0], b0, b1);
          mma_tf32(acc[1][nt], af[1], b0, b1);
        }
      }
    }
    if (kc != chunks - 1) continue;

    // Epilogue of centroid tile `tile`: (1) the running minimum upper bound per row, merged
    // over the quad, and this thread's smallest lower bound; (2) candidates against the
    // threshold, skipped when no lower bound of the thread's can pass (most tiles).
    const int c0 = tile * tn::kMmaCols;
    float min_lo[4];
#pragma unroll
    for (int ri = 0; ri < 4; ++ri) min_lo[ri] = positive_infinity<float>();
#pragma unroll
    for (int nt = 0; nt < kNTiles; ++nt) {
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int col = c0 + nt * 8 + 2 * tq + e;
        const MmaTerms t = a.terms[col];
#pragma unroll
        for (int ri = 0; ri < 4; ++ri) {
          const MmaBounds b = mma_bounds(t, acc[ri / 2][nt][(ri % 2) * 2 + e], xn[ri]);
          if (col < a.k && valid[ri]) {
            min_up[ri] = fminf(min_up[ri], b.up);
            min_lo[ri] = fminf(min_lo[ri], b.lo);
          }
        }
      }
    }
    bool scan = false;  // some lo <= thr iff the row's smallest lo is (fminf is exact)
#pragma unroll
    for (int ri = 0; ri < 4; ++ri) {
      min_up[ri] = fminf(min_up[ri], __shfl_xor_sync(0xffffffffu, min_up[ri], 1));
      min_up[ri] = fminf(min_up[ri], __shfl_xor_sync(0xffffffffu, min_up[ri], 2));
      thr[ri] = mma_threshold(min_up[ri], rho2[ri]);
      scan = scan || min_lo[ri] <= thr[ri];
    }
    if (scan) {
#pragma unroll
      for (int nt = 0; nt < kNTiles; ++nt) {
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const int col = c0 + nt * 8 + 2 * tq + e;
          const MmaTerms t = a.terms[col];
#pragma unroll
          for (int ri = 0; ri < 4; ++ri) {
            const MmaBounds b = mma_bounds(t, acc[ri / 2][nt][(ri % 2) * 2 + e], xn[ri]);
            if (col < a.k && valid[ri] && b.lo <= thr[ri]) {
              const int r = warp * 32 + (ri / 2) * 16 + (ri % 2) * 8 + g;
              const int slot = r * 4 + tq;
              int flushes = 0;
              mma_push(s_lo + slot, s_idx + slot, tn::kMmaRows * 4, count[ri], b.lo, col,
                       thr[ri], xrow[ri], a.c, d, best[ri], flushes);
            }
          }
        }
      }
    }
#pragma unroll
    for (int mi = 0; mi < 2; ++mi)
#pragma unroll
      for (int nt = 0; nt < kNTiles; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e) acc[mi][nt][e] = 0.f;
  }
  cp_async_wait<0>();

  // The exact recheck, then the record of each row (lane tq == 0 of its quad).
  double sse = 0, changed = 0;
#pragma unroll
  for (int ri = 0; ri < 4; ++ri) {
    const int r = warp * 32 + (ri / 2) * 16 + (ri % 2) * 8 + g;
    const std::int64_t i = row0 + r;
    const int slot = r * 4 + tq;
    MmaBest b = best[ri];
    if (valid[ri])
      b = mma_pick(s_lo + slot, s_idx + slot, tn::kMmaRows * 4, count[ri], thr[ri], xrow[ri],
                   a.c, d, b);
    quad_argmin(b.dist, b.index);
    if (valid[ri] && b.index == INT_MAX) {  // no candidate at all (NaN): every centroid, exactly
      b = MmaBest{};
      for (int j = tq; j < a.k; j += 4)
        argmin_update(squared_distance(xrow[ri], a.c + static_cast<std::int64_t>(j) * d, d), j,
                      b.dist, b.index);
    }
    quad_argmin(b.dist, b.index);
    if (valid[ri] && tq == 0) {
      if (b.index == INT_MAX) {  // every distance overflowed: like the tile kernel
        b.index = 0;
        b.dist = squared_distance(xrow[ri], a.c, d);
      }
      record_assignment(a.labels, a.dist, a.w, i, b.index, b.dist, sse, changed);
    }
  }
  for (int off = 16; off > 0; off /= 2) {
    sse += __shfl_xor_sync(0xffffffffu, sse, off);
    changed += __shfl_xor_sync(0xffffffffu, changed, off);
  }
  write_block_totals<kWarps>(s_sse, s_changed, warp, lane, sse, changed, a.partials, blockIdx.x,
                             a.n_blocks);
#else
  __trap();  // never launched: mma_supported() is false without sm_80 code
#endif
}

#endif  // __CUDACC__

}  // namespace kmeans::detail
