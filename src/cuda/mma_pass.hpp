// SPDX-License-Identifier: Apache-2.0
// The TF32 tensor-core assignment's host side: which assignment path a plan may be forced to
// (KMEANS_CUDA_ASSIGN), whether the device and build can run the path, and its launches
// (mma_pass.cu; the kernels are in kernels/mma_rank.cuh).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace kmeans::detail {
template <class T>
class Engine;
}  // namespace kmeans::detail

namespace kmeans::detail::cuda {

/// The internal hook KMEANS_CUDA_ASSIGN (tests and benchmarks): "tile", "gemm" or "mma" runs
/// that assignment path wherever it can run the shape (mma: float data with d <= kMmaMaxD on an
/// sm_80+ device; gemm: cuBLAS loadable; tile: kRegTile centroids fit in shared memory), the
/// size rules elsewhere; unset or empty, the size rules decide. All paths give the same labels
/// and distances. An unknown value is a kmeans::Error naming it.
enum class AssignPath { Rules, Tile, Gemm, Mma };
AssignPath forced_assign_path();

/// The device `device` (sm_80 or newer, with the shared memory mma_smem_bytes(d) asks of a
/// block: d <= 232 on an A100, every d <= kMmaMaxD on an H100/H200) and this build (sm_80+ code
/// in mma_assign_kernel) can run the TF32 path for d features.
bool mma_supported(int device, std::int64_t d);

/// Device buffers and shape of one TF32 assignment pass.
struct MmaPassArgs {
  const float* x = nullptr;
  const float* w = nullptr;
  const float* c = nullptr;        ///< k x d centroids
  const double* mean = nullptr;    ///< d data means
  float* centred = nullptr;        ///< mma_k_pad(k) x mma_dim_pad(d)
  float* terms = nullptr;          ///< 4 * mma_k_pad(k)
  std::int64_t n = 0;
  int d = 0, k = 0;
  std::int32_t* labels = nullptr;
  float* dist = nullptr;
  double* partials = nullptr;      ///< 2 records x ceil(n / kMmaRows) blocks
};

/// Lets mma_assign_kernel use the dynamic shared memory a d needs (before any capture).
void mma_prepare(int d);

/// Enqueues the centring kernel and the fused assignment on `s`.
void enqueue_mma_assign(const MmaPassArgs& a, cudaStream_t s);

/// For tests: whether `e` is a CUDA engine whose current plan runs the TF32 path.
bool plan_uses_mma(const Engine<float>& e);

}  // namespace kmeans::detail::cuda
