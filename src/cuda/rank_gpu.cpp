// SPDX-License-Identifier: Apache-2.0
// The GPU of one kmeans::mpi rank (rank_gpu.hpp): device choice, fit, identity.
#include "cuda/rank_gpu.hpp"

#include <cuda_runtime.h>

#include <cstring>

#include "cuda/runtime.hpp"
#include "engine.hpp"
#include "kmeans/kmeans.hpp"

namespace kmeans::detail::cuda {

int rank_device(int local_rank, std::string* why) {
  if (!cuda_available(why)) return -1;
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count < 1) {
    (void)cudaGetLastError();
    if (why) *why = "no CUDA device found";
    return -1;
  }
  return (local_rank < 0 ? 0 : local_rank) % count;
}

bool rank_device_fits(int device, std::int64_t n, std::int64_t d, int k, std::size_t elem_size,
                      std::string* why) {
  DeviceGuard guard(device);
  std::string reason;
  if (cuda_working_set_fits(n, d, k, elem_size, false, &reason)) return true;
  if (why) *why = device_name(device) + ": " + reason;
  return false;
}

std::array<unsigned char, 16> device_uuid(int device) {
  cudaDeviceProp prop{};
  KMEANS_CUDA_TRY(cudaGetDeviceProperties(&prop, device));
  std::array<unsigned char, 16> out{};
  std::memcpy(out.data(), &prop.uuid, out.size());
  return out;
}

std::string device_name(int device) {
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, device) != cudaSuccess) {
    (void)cudaGetLastError();
    return "GPU " + std::to_string(device);
  }
  return "GPU " + std::to_string(device) + " (" + prop.name + ")";
}

DeviceScope::DeviceScope(int device) {
  KMEANS_CUDA_TRY(cudaGetDevice(&previous_));
  if (previous_ == device)
    previous_ = -1;
  else
    KMEANS_CUDA_TRY(cudaSetDevice(device));
}

DeviceScope::~DeviceScope() {
  if (previous_ >= 0) KMEANS_CUDA_TRY_NOTHROW(cudaSetDevice(previous_));
}

}  // namespace kmeans::detail::cuda
