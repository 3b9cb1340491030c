// SPDX-License-Identifier: Apache-2.0
// The per-iteration arithmetic of Lloyd's loop that the host driver (driver.cpp) and the CUDA
// engine's device loop (src/cuda/device_loop.cu) share bit for bit: the imbalance factor, the
// empty-cluster relocation's sums/weights adjustment, the update of the centroids from sums and
// weights (the inverse-or-divide rule, the cast to T, the shift in the host's order) and the
// convergence rule. Plain C++ for the host compiler and nvcc (KMEANS_HD).
//
// Bits: every product and sum is rounded on its own. On the device the helpers below use the
// explicitly rounded intrinsics (nvcc would otherwise fuse a * b + c); the host files that call
// them are compiled with -ffp-contract=off (CMakeLists.txt), so both give the same bits.
#pragma once

#include <cmath>
#include <cstdint>

#include "kernels/rounded.cuh"
#include "kernels/tuning.cuh"  // KMEANS_HD

namespace kmeans::detail::lloyd_step {

using rounded::add;
using rounded::mul;
using rounded::sub;

KMEANS_HD inline bool finite(double v) {
#if defined(__CUDA_ARCH__)
  return isfinite(v);
#else
  return std::isfinite(v);
#endif
}

/// FAISS's imbalance factor of cluster sizes: k * sum size^2 / (sum size)^2 (1 when balanced).
KMEANS_HD inline double imbalance_factor(const double* sizes, int k) {
  double total = 0, squares = 0;
  for (int c = 0; c < k; ++c) {
    total = add(total, sizes[c]);
    squares = add(squares, mul(sizes[c], sizes[c]));
  }
  return total > 0 ? mul(k, squares) / mul(total, total) : 0.0;
}

/// One step of scikit-learn's empty-cluster repair: the point x (weight w, labelled `from`)
/// moves from its cluster's sums (k x d) and weights to the empty cluster `to`.
template <class T>
KMEANS_HD void relocate_point(double* sums, double* weights, std::int64_t d, int to, int from,
                              double w, const T* x) {
  for (std::int64_t j = 0; j < d; ++j) {
    const double v = mul(w, static_cast<double>(x[j]));
    sums[from * d + j] = sub(sums[from * d + j], v);
    sums[to * d + j] = v;
  }
  weights[from] = sub(weights[from], w);
  weights[to] = w;
}

/// Multiplying by the inverse is scikit-learn's arithmetic (the same bits); a subnormal weight
/// has no finite inverse, so such a cluster divides instead (0 * inf would be NaN).
struct MeanRule {
  double weight, inv;
  bool divide;
  KMEANS_HD explicit MeanRule(double w) : weight(w), inv(1.0 / w), divide(!finite(inv)) {}
  KMEANS_HD double mean(double sum) const { return divide ? sum / weight : mul(sum, inv); }
};

/// New Euclidean centroids (k x d, in place) from sums (k x d) and weights (k); a cluster with
/// no weight keeps its old centroid (possible only with zero sample weights). Returns the total
/// squared shift, summed over clusters then features in order.
template <class T>
KMEANS_HD double update_centroids(const double* sums, const double* weights, int k,
                                  std::int64_t d, T* c) {
  double shift = 0;
  for (int j = 0; j < k; ++j) {
    if (!(weights[j] > 0)) continue;
    const MeanRule rule(weights[j]);
    for (std::int64_t f = 0; f < d; ++f) {
      const T next = static_cast<T>(rule.mean(sums[j * d + f]));
      const double diff = sub(static_cast<double>(next), static_cast<double>(c[j * d + f]));
      shift = add(shift, mul(diff, diff));
      c[j * d + f] = next;
    }
  }
  return shift;
}

/// scikit-learn: labels identical to the previous iteration's is strict convergence; otherwise a
/// total squared shift <= tol (absolute, already scaled by the data variance) converges too.
KMEANS_HD inline bool converged(int it, std::int64_t n_changed, double shift, double tol) {
  return (it > 0 && n_changed == 0) || shift <= tol;
}

}  // namespace kmeans::detail::lloyd_step
