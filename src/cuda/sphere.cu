// SPDX-License-Identifier: Apache-2.0
// Spherical k-means on GPU data: normalise_rows (sphere.hpp) on the device, with the host's bits.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <memory>

#include "cuda/runtime.hpp"
#include "kernels/cuda_check.hpp"
#include "kernels/device_buffer.hpp"
#include "sphere.hpp"

namespace kmeans::detail {
namespace {

/// One thread per row, each row in feature order with explicitly rounded double operations
/// (no fused multiply-adds): the arithmetic of sphere.cpp's normalise_row, the same bits.
/// The first row of zeros goes to first[0], the first non-finite row to first[1] (atomicMin;
/// they start at all ones).
template <class T>
__global__ void normalise_rows_kernel(const T* __restrict__ x, std::int64_t n, std::int64_t d,
                                      T* __restrict__ out, double tolerance,
                                      unsigned long long* first) {
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride) {
    const T* r = x + i * d;
    T* o = out + i * d;
    double m = 0;
    bool finite = true;
    for (std::int64_t j = 0; j < d; ++j) {
      const double a = fabs(static_cast<double>(r[j]));
      finite = finite && isfinite(a);
      m = a > m ? a : m;
    }
    bool copy = !finite;  // left for the engine's validation to name
    if (!finite) atomicMin(first + 1, static_cast<unsigned long long>(i));
    double norm = 1;
    int e = 0;
    if (finite) {
      if (m == 0) {  // refused (unless a NaN row comes first); zeros keep the copy defined
        atomicMin(first, static_cast<unsigned long long>(i));
        for (std::int64_t j = 0; j < d; ++j) o[j] = T(0);
        continue;
      }
      e = ilogb(m);
      double s = 0;
      for (std::int64_t j = 0; j < d; ++j) {
        const double v = ldexp(static_cast<double>(r[j]), -e);
        s = __dadd_rn(s, __dmul_rn(v, v));
      }
      copy = fabs(__dadd_rn(ldexp(s, 2 * e), -1.0)) <= tolerance;
      norm = __dsqrt_rn(s);
    }
    for (std::int64_t j = 0; j < d; ++j)
      o[j] = copy ? r[j]
                  : static_cast<T>(__ddiv_rn(ldexp(static_cast<double>(r[j]), -e), norm));
  }
}

}  // namespace

template <class T>
std::shared_ptr<void> normalise_rows_device(const T* x, std::int64_t n, std::int64_t d,
                                            const char* what) {
  cuda::DeviceGuard guard(cuda::device_for(x, true));
  auto rows = std::make_shared<DeviceBuffer<T>>(static_cast<std::size_t>(n * d),
                                                "metric = cosine unit rows");
  DeviceBuffer<unsigned long long> first(2, "metric = cosine row flags");
  // The legacy default stream: after the caller's work on it, before the engine's (which
  // waits for it, cuda/engine.cu).
  KMEANS_CUDA_TRY(cudaMemsetAsync(first.get(), 0xFF, first.bytes(), 0));
  int device = 0, sms = 0;
  KMEANS_CUDA_TRY(cudaGetDevice(&device));
  KMEANS_CUDA_TRY(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  const auto grid = static_cast<unsigned>(std::max<std::int64_t>(
      1, std::min<std::int64_t>(cuda::ceil_div(n, 128), std::int64_t{sms} * 16)));
  normalise_rows_kernel<T><<<grid, 128, 0, 0>>>(x, n, d, rows->get(), unit_tolerance<T>(d),
                                                first.get());
  KMEANS_CUDA_TRY(cudaGetLastError());
  unsigned long long bad[2] = {0, 0};
  KMEANS_CUDA_TRY(cudaMemcpyAsync(bad, first.get(), sizeof bad, cudaMemcpyDeviceToHost, 0));
  KMEANS_CUDA_TRY(cudaStreamSynchronize(0));
  // As on the host: a NaN or infinity before the first zero row is left to the validation.
  if (bad[0] < bad[1]) throw Error(zero_row_error(what, static_cast<std::int64_t>(bad[0])));
  return std::shared_ptr<void>(rows, rows->get());
}

template std::shared_ptr<void> normalise_rows_device(const float*, std::int64_t, std::int64_t,
                                                     const char*);
template std::shared_ptr<void> normalise_rows_device(const double*, std::int64_t, std::int64_t,
                                                     const char*);

}  // namespace kmeans::detail
