// SPDX-License-Identifier: Apache-2.0
// Results that stay on the GPU (Params::device_labels_out / device_centroids_out): the CUDA
// engine's labels copied device to device with their per-label counts formed on the device,
// the host-to-device copy of host results, and the pointer query that validates the buffers.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "cuda/engine.cuh"
#include "engine.hpp"

namespace kmeans::detail {

int device_of_pointer(const void* p) {
  if (!is_device_pointer(p)) return -1;  // also: no driver, no device, null
  cudaPointerAttributes attr{};
  KMEANS_CUDA_TRY(cudaPointerGetAttributes(&attr, p));
  return attr.device;
}

void copy_host_to_device(void* dst, const void* src, std::size_t bytes, void* stream) {
  if (bytes == 0) return;
  const cudaStream_t s = stream ? static_cast<cudaStream_t>(stream) : cudaStreamLegacy;
  KMEANS_CUDA_TRY(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, s));
  KMEANS_CUDA_TRY(cudaStreamSynchronize(s));
}

}  // namespace kmeans::detail

namespace kmeans::detail::cuda {
namespace {

/// Labels per block kept in shared memory up to this k (32 KiB of counters), else counted in
/// global memory directly.
constexpr int kSharedCountMaxK = 4096;

/// counts[c] = the number of i < n with labels[i] == c. Integer atomics: the counts are exact
/// and do not depend on the order in which the threads add (no floating point). Labels outside
/// [0, k) (none: every pass writes each label) are not counted, so the driver's check that the
/// counts add up to n would catch them.
__global__ void label_count_kernel(const std::int32_t* __restrict__ labels, std::int64_t n, int k,
                                   unsigned long long* __restrict__ counts) {
  extern __shared__ unsigned long long block_counts[];
  const bool shared = k <= kSharedCountMaxK;
  if (shared) {
    for (int c = threadIdx.x; c < k; c += blockDim.x) block_counts[c] = 0;
    __syncthreads();
  }
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride) {
    const std::int32_t c = labels[i];
    if (c < 0 || c >= k) continue;
    atomicAdd(shared ? &block_counts[c] : &counts[c], 1ull);
  }
  if (shared) {
    __syncthreads();
    for (int c = threadIdx.x; c < k; c += blockDim.x)
      if (block_counts[c] != 0) atomicAdd(&counts[c], block_counts[c]);
  }
}

}  // namespace

template <class T>
void CudaEngine<T>::labels_to_device(std::int32_t* out, int k, std::vector<std::int64_t>& counts) {
  ProfileRange range("kmeans::labels_to_device");
  DeviceGuard guard(device_);
  const cudaStream_t s = stream_.get();
  // The copy is ordered as if the fit were queued on the caller's stream (Options::cuda_stream;
  // null: the legacy default stream): after the caller's earlier work there (which may still
  // be using `out`: host data gives the engine no other such wait) and before its later work.
  const cudaStream_t caller = v_.stream ? static_cast<cudaStream_t>(v_.stream) : cudaStreamLegacy;
  Event prior, written;
  KMEANS_CUDA_TRY(cudaEventRecord(prior.get(), caller));
  KMEANS_CUDA_TRY(cudaStreamWaitEvent(s, prior.get(), 0));
  KMEANS_CUDA_TRY(cudaMemcpyAsync(out, d_labels_.get(), d_labels_.bytes(),
                                  cudaMemcpyDeviceToDevice, s));
  KMEANS_CUDA_TRY(cudaEventRecord(written.get(), s));
  KMEANS_CUDA_TRY(cudaStreamWaitEvent(caller, written.get(), 0));
  const auto uk = static_cast<std::size_t>(k);
  grow(d_label_counts_, uk, "label counts");
  KMEANS_CUDA_TRY(cudaMemsetAsync(d_label_counts_.get(), 0, uk * sizeof(unsigned long long), s));
  const std::size_t shared_bytes =
      k <= kSharedCountMaxK ? uk * sizeof(unsigned long long) : 0;
  label_count_kernel<<<grid_for(v_.n), 256, shared_bytes, s>>>(d_labels_.get(), v_.n, k,
                                                               d_label_counts_.get());
  KMEANS_CUDA_CHECK_LAUNCH(s);
  std::vector<unsigned long long> h(uk);
  KMEANS_CUDA_TRY(cudaMemcpyAsync(h.data(), d_label_counts_.get(), uk * sizeof(unsigned long long),
                                  cudaMemcpyDeviceToHost, s));
  KMEANS_CUDA_TRY(cudaStreamSynchronize(s));
  counts.assign(h.begin(), h.end());
}

#define KMEANS_CUDA_DEVICE_OUT_MEMBERS(TYPE)                                              \
  template void CudaEngine<TYPE>::labels_to_device(std::int32_t* out, int k,               \
                                                   std::vector<std::int64_t>& counts);

KMEANS_CUDA_ENGINE_INSTANTIATE(KMEANS_CUDA_DEVICE_OUT_MEMBERS)

}  // namespace kmeans::detail::cuda
