// SPDX-License-Identifier: Apache-2.0
// Device-side input checks for data that arrives in device memory (src/cuda/engine.cu): the
// first NaN/Inf or out-of-range value and the largest magnitude, found without copying the
// data (device weights are checked on a host copy).
#pragma once

#include <cmath>
#include <cstdint>

namespace kmeans::detail {

#if defined(__CUDACC__)

/// Smallest flat index of a value outside [-bound, bound] in x[0, total) (total when none);
/// NaN fails the test too, so this is the data's whole range check (internal.hpp's
/// validate_points on the host).
template <class T>
__global__ void first_out_of_range_kernel(const T* x, std::int64_t total, T bound,
                                          unsigned long long* first) {
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
       i < total; i += stride) {
    if (!(fabs(x[i]) <= bound)) {
      atomicMin(first, static_cast<unsigned long long>(i));
      return;  // later elements of this thread have larger indices
    }
  }
}

/// The largest |x| of x[0, total) (already checked finite), as the bits of a non-negative T
/// (their order is the values' order), combined by an integer atomicMax into *max_bits.
template <class T, class Bits>
__global__ void max_abs_kernel(const T* x, std::int64_t total, Bits* max_bits) {
  static_assert(sizeof(T) == sizeof(Bits), "bits of T");
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  T m = 0;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
       i < total; i += stride)
    m = fmax(m, fabs(x[i]));
  for (int offset = 16; offset > 0; offset /= 2) m = fmax(m, __shfl_down_sync(0xffffffffu, m, offset));
  if ((threadIdx.x & 31) == 0) {
    Bits b;
    memcpy(&b, &m, sizeof b);
    atomicMax(max_bits, b);
  }
}

#endif  // __CUDACC__

}  // namespace kmeans::detail
