// SPDX-License-Identifier: Apache-2.0
// Exact point-to-centre distances: each one formed in double, feature by feature, with
// explicitly rounded operations (no fused multiply-add), which is the host's formula
// (host_distances in src/driver.cpp), so the CUDA backend gives the host's bits.
#pragma once

#include <cstdint>

namespace kmeans::detail {

#if defined(__CUDACC__)

/// sum_j (x_j - c_j)^2 in double, in feature order, each operation rounded on its own.
template <class T>
__device__ inline double exact_squared_distance(const T* __restrict__ x, const T* __restrict__ c,
                                                int d) {
  double s = 0;
  for (int j = 0; j < d; ++j) {
    const double t = __dsub_rn(static_cast<double>(x[j]), static_cast<double>(c[j]));
    s = __dadd_rn(s, __dmul_rn(t, t));
  }
  return s;
}

/// out[r * k + c] = sqrt(exact squared distance of row r of x to centre c), for `rows` rows of
/// x (rows x d) and k centres (k x d). One thread per (row, centre) entry, grid-stride: the
/// threads of a warp mostly share a row (broadcast loads) and read consecutive centres.
template <class T>
__global__ void __launch_bounds__(256)
    distances_kernel(const T* __restrict__ x, std::int64_t rows, int d,
                     const T* __restrict__ c, int k, T* __restrict__ out) {
  const std::int64_t total = rows * k;
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t e = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
       e < total; e += stride) {
    const std::int64_t r = e / k;
    const std::int64_t j = e - r * k;
    const double s = exact_squared_distance(x + r * d, c + j * d, d);
    out[e] = static_cast<T>(sqrt(s));
  }
}

#endif  // __CUDACC__

}  // namespace kmeans::detail
