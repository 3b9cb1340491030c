// SPDX-License-Identifier: Apache-2.0
// Double-precision products, sums and differences rounded one at a time on host and device alike:
// on the device the explicitly rounded intrinsics, which nvcc never contracts into an FMA (it
// fuses a * b + c by default); on the host plain operators, in files built with -ffp-contract=off.
#pragma once

#include <cmath>

#include "kernels/tuning.cuh"  // KMEANS_HD

namespace kmeans::detail::rounded {

KMEANS_HD inline double mul(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dmul_rn(a, b);
#else
  return a * b;
#endif
}
KMEANS_HD inline double add(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dadd_rn(a, b);
#else
  return a + b;
#endif
}
KMEANS_HD inline double sub(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dsub_rn(a, b);
#else
  return a - b;
#endif
}

}  // namespace kmeans::detail::rounded
