// SPDX-License-Identifier: Apache-2.0
// Launches of the TF32 tensor-core assignment (kernels/mma_rank.cuh): the path hook
// KMEANS_CUDA_ASSIGN, the device/build check, the shared-memory opt-in and one pass.
#include "cuda/mma_pass.hpp"

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <string>

#include "cuda/engine.cuh"
#include "cuda/runtime.hpp"
#include "kernels/cuda_check.hpp"
#include "kernels/mma_rank.cuh"
#include "kernels/tuning.cuh"
#include "kmeans/kmeans.hpp"

namespace kmeans::detail::cuda {

namespace tn = tuning;

AssignPath forced_assign_path() {
  const char* f = std::getenv("KMEANS_CUDA_ASSIGN");
  if (f == nullptr || *f == '\0') return AssignPath::Rules;
  if (std::strcmp(f, "tile") == 0) return AssignPath::Tile;
  if (std::strcmp(f, "gemm") == 0) return AssignPath::Gemm;
  if (std::strcmp(f, "mma") == 0) return AssignPath::Mma;
  throw Error(std::string("KMEANS_CUDA_ASSIGN = ") + f + " is unknown (valid: tile, gemm, mma)");
}

bool mma_supported(int device, std::int64_t d) {
  if (d < 1 || d > tn::kMmaMaxD) return false;
  int major = 0, optin = 0;
  KMEANS_CUDA_TRY(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  if (major < 8) return false;
  KMEANS_CUDA_TRY(
      cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  if (tn::mma_smem_bytes(d) > static_cast<std::size_t>(optin)) return false;
  // The build's code for this device: sm_80+ SASS, or PTX of sm_80+ that the driver compiles.
  cudaFuncAttributes fa{};
  KMEANS_CUDA_TRY(cudaFuncGetAttributes(&fa, mma_assign_kernel<float>));
  return fa.ptxVersion >= 80 && fa.binaryVersion >= 80;
}

void mma_prepare(int d) {
  const auto bytes = static_cast<int>(tn::mma_smem_bytes(d));
  KMEANS_CUDA_TRY(cudaFuncSetAttribute(mma_assign_kernel<float>,
                                       cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
}

void enqueue_mma_assign(const MmaPassArgs& a, cudaStream_t s) {
  const int k_pad = static_cast<int>(tn::mma_k_pad(a.k));
  const int dp = static_cast<int>(tn::mma_dim_pad(a.d));
  MmaCentreArgs ca;
  ca.c = a.c;
  ca.mean = a.mean;
  ca.k = a.k;
  ca.d = a.d;
  ca.k_pad = k_pad;
  ca.dp = dp;
  ca.centred = a.centred;
  ca.terms = reinterpret_cast<MmaTerms*>(a.terms);
  constexpr int kCentroidsPerBlock = tn::kMmaThreads / 32;  // a warp per centroid
  mma_centre_kernel<float><<<static_cast<unsigned>(ceil_div(k_pad, kCentroidsPerBlock)), tn::kMmaThreads,
                      0, s>>>(ca);
  KMEANS_CUDA_CHECK_LAUNCH(s);
  MmaAssignArgs ma;
  ma.x = a.x;
  ma.w = a.w;
  ma.c = a.c;
  ma.mean = a.mean;
  ma.centred = a.centred;
  ma.terms = ca.terms;
  ma.n = static_cast<int>(a.n);
  ma.d = a.d;
  ma.k = a.k;
  ma.dp = dp;
  ma.k_pad = k_pad;
  ma.n_blocks = static_cast<int>(ceil_div(a.n, tn::kMmaRows));
  ma.labels = a.labels;
  ma.dist = a.dist;
  ma.partials = a.partials;
  mma_assign_kernel<float><<<static_cast<unsigned>(ma.n_blocks), tn::kMmaThreads, tn::mma_smem_bytes(a.d),
                      s>>>(ma);
  KMEANS_CUDA_CHECK_LAUNCH(s);
}

bool plan_uses_mma(const Engine<float>& e) {
  const auto* cuda = dynamic_cast<const CudaEngine<float>*>(&e);
  return cuda != nullptr && cuda->plan().mma;
}

}  // namespace kmeans::detail::cuda
