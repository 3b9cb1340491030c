// SPDX-License-Identifier: Apache-2.0
// The GPU of one kmeans::mpi rank: how many devices the process sees, the one it takes, whether
// it can hold the rank's working set, and its UUID (ranks sharing a GPU). Plain C++ interface:
// kmeans::mpi includes it; defined in rank_gpu.cpp (CUDA builds only).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace kmeans::detail::cuda {

/// The device a process with node-local rank `local_rank` takes: local_rank % device count;
/// -1 when the CUDA backend is not usable at all (then `why` says why).
int rank_device(int local_rank, std::string* why);

/// True when `device` is usable by the CUDA backend and a fit's working set over n x d points
/// (elem_size bytes each, on the host) with k clusters fits in its free memory; else `why`.
bool rank_device_fits(int device, std::int64_t n, std::int64_t d, int k, std::size_t elem_size,
                      std::string* why);

/// The device's UUID (cudaDeviceProp::uuid): equal on two ranks exactly when they share a GPU.
std::array<unsigned char, 16> device_uuid(int device);

/// "GPU 0 (NVIDIA H200)".
std::string device_name(int device);

/// Makes `device` current for a scope and restores the caller's device after (DeviceGuard of
/// runtime.hpp behind a plain C++ interface).
class DeviceScope {
 public:
  explicit DeviceScope(int device);
  ~DeviceScope();
  DeviceScope(const DeviceScope&) = delete;
  DeviceScope& operator=(const DeviceScope&) = delete;

 private:
  int previous_ = -1;
};

}  // namespace kmeans::detail::cuda
