// SPDX-License-Identifier: Apache-2.0
// The direct formula on the host, the oracle of the GPU paths' exact labels: kernels/assign.cuh's
// squared_distance ((a_j - b_j)^2 summed in T with fused multiply-adds, feature order) and its
// argmin from (+inf, 0), a strictly smaller distance winning (ties to the lowest index).
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>

namespace kmeans_test {

template <class T>
T direct_distance(const T* a, const T* b, std::int64_t d) {
  T s = 0;
  for (std::int64_t j = 0; j < d; ++j) {
    const T diff = a[j] - b[j];
    s = std::fma(diff, diff, s);
  }
  return s;
}

template <class T>
void direct_argmin(const T* x, const T* c, std::int64_t d, int k, T& best, int& label) {
  best = std::numeric_limits<T>::infinity();
  label = 0;
  for (int j = 0; j < k; ++j) {
    const T v = direct_distance(x, c + static_cast<std::int64_t>(j) * d, d);
    if (v < best) {
      best = v;
      label = j;
    }
  }
}

}  // namespace kmeans_test
