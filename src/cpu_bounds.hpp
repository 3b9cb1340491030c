// SPDX-License-Identifier: Apache-2.0
// Bound-pruned Lloyd passes of the CPU engine (Algorithm::Elkan): Hamerly-style per-point lower
// bounds that prove a point's label unchanged, so only the unproven points search all centroids.
#pragma once

#include <cstdint>
#include <vector>

#include "cpu_bounds_kernel.hpp"
#include "kmeans/kmeans.hpp"

namespace kmeans::detail::cpu {

/// Bytes of state the pruned passes keep for n points, k centroids of d features of T: the
/// lower bounds (8 n), the previous and the transposed centroids, the drops.
std::int64_t bound_bytes(std::int64_t n, std::int64_t d, int k, std::size_t elem_size);

/// Most bytes of bound state a fit may hold; beyond, the pruned algorithm falls back to Lloyd.
constexpr std::int64_t kMaxBoundBytes = std::int64_t{1} << 30;

/// Whether a pass with these parameters uses the pruned algorithm: Lloyd never; Elkan whenever
/// the bounds are usable and fit kMaxBoundBytes; Auto only where it was measured faster
/// (README, bench/NOTES.md): k >= kAutoMinK and d <= kAutoMaxD.
bool use_bounds(Algorithm a, std::int64_t n, std::int64_t d, int k, std::size_t elem_size,
                bool usable);
constexpr int kAutoMinK = 64;
constexpr std::int64_t kAutoMaxD = 256;

/// The engine's bound state between passes.
template <class T>
class Bounds {
 public:
  /// Prepares a pass against `centroids` (k x d): the movement drops since the last pruned pass
  /// (all bounds are dropped to nothing when `valid` is false: first pass, new k, rebind, or a
  /// Lloyd pass in between), the transposed centroids. n: the points.
  void prepare(const T* centroids, int k, std::int64_t n, std::int64_t d, bool valid);
  const T* transposed() const { return ct_.data(); }
  int groups() const { return n_groups_; }
  double* lower() { return lower_.data(); }
  const double* drop() const { return drop_.data(); }
  const BoundConsts& consts() const { return bc_; }

 private:
  std::vector<double> lower_;
  std::vector<T> prev_;
  std::vector<T> ct_;
  std::vector<double> drop_;
  BoundConsts bc_;
  int n_groups_ = 0;
};

}  // namespace kmeans::detail::cpu
