// SPDX-License-Identifier: Apache-2.0
// The CUDA engine's farthest points of the last pass (empty-cluster repair): the two-stage
// top-m selection of kernels/farthest.cuh on the device, m indices and labels downloaded; more
// than tuning::kFarthestMaxM points ranked on the host from a download of all n distances.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <vector>

#include "cuda/engine.cuh"
#include "internal.hpp"
#include "kernels/farthest.cuh"
#include "kernels/tuning.cuh"

namespace kmeans::detail::cuda {

namespace tn = tuning;

template <class T>
void CudaEngine<T>::enqueue_farthest(int m) {
  const cudaStream_t s = stream_.get();
  farthest::Args a;
  a.n = v_.n;
  a.m = m;
  a.blocks = tn::farthest_blocks(v_.n, sm_count_);
  a.candidates = d_far_cand_.get();
  a.out = d_far_out_.get();
  farthest::top_m_block_kernel<T><<<static_cast<unsigned>(a.blocks), tn::kFarthestThreads, 0, s>>>(
      d_dist_.get(), a);
  KMEANS_CUDA_CHECK_LAUNCH(s);
  farthest::top_m_merge_kernel<T><<<1, tn::kFarthestThreads, 0, s>>>(d_dist_.get(),
                                                                     d_labels_.get(), a);
  KMEANS_CUDA_CHECK_LAUNCH(s);
}

template <class T>
std::vector<FarPoint> CudaEngine<T>::farthest(std::int64_t m) {
  ProfileRange range("kmeans::farthest");
  DeviceGuard guard(device_);
  const std::int64_t n = v_.n;
  m = std::min(m, n);
  if (m <= 0) return {};
  const cudaStream_t s = stream_.get();
  std::vector<FarPoint> out;
  out.reserve(static_cast<std::size_t>(m));
  if (m <= tn::kFarthestMaxM) {
    grow(d_far_cand_, static_cast<std::size_t>(tn::kFarthestMaxBlocks) * tn::kFarthestMaxM,
         "farthest candidates");
    grow(d_far_out_, 2 * static_cast<std::size_t>(tn::kFarthestMaxM), "farthest points");
    enqueue_farthest(static_cast<int>(m));
    std::vector<std::int64_t> picked(2 * static_cast<std::size_t>(tn::kFarthestMaxM));
    KMEANS_CUDA_TRY(cudaMemcpyAsync(picked.data(), d_far_out_.get(),
                                    picked.size() * sizeof(std::int64_t),
                                    cudaMemcpyDeviceToHost, s));
    KMEANS_CUDA_TRY(cudaStreamSynchronize(s));
    for (std::int64_t i = 0; i < m; ++i) {
      if (picked[i] < 0 || picked[i] >= n)
        throw Error("internal: the device farthest-point selection returned index " +
                    std::to_string(picked[i]) + " of " + std::to_string(n));
      out.push_back({picked[i], static_cast<std::int32_t>(picked[tn::kFarthestMaxM + i])});
    }
    return out;
  }
  // Many empty clusters: the distances and labels come to the host and are ranked there.
  std::vector<T> dist(static_cast<std::size_t>(n));
  std::vector<std::int32_t> lab(static_cast<std::size_t>(n));
  KMEANS_CUDA_TRY(cudaMemcpyAsync(dist.data(), d_dist_.get(), d_dist_.bytes(),
                                  cudaMemcpyDeviceToHost, s));
  KMEANS_CUDA_TRY(cudaMemcpyAsync(lab.data(), d_labels_.get(), d_labels_.bytes(),
                                  cudaMemcpyDeviceToHost, s));
  KMEANS_CUDA_TRY(cudaStreamSynchronize(s));
  std::vector<std::int64_t> idx(static_cast<std::size_t>(n));
  std::iota(idx.begin(), idx.end(), 0);
  std::partial_sort(idx.begin(), idx.begin() + m, idx.end(), [&](std::int64_t a, std::int64_t b) {
    return farthest::ranks_before(dist[a], a, dist[b], b);
  });
  for (std::int64_t i = 0; i < m; ++i) out.push_back({idx[i], lab[idx[i]]});
  return out;
}

#define KMEANS_CUDA_FARTHEST_MEMBERS(TYPE)                                                    \
  template void CudaEngine<TYPE>::enqueue_farthest(int m);                                    \
  template std::vector<FarPoint> CudaEngine<TYPE>::farthest(std::int64_t m);

KMEANS_CUDA_ENGINE_INSTANTIATE(KMEANS_CUDA_FARTHEST_MEMBERS)

}  // namespace kmeans::detail::cuda
