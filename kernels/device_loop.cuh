// SPDX-License-Identifier: Apache-2.0
// One iteration's step of the CUDA engine's device Lloyd loop after its pass (src/cuda/
// device_loop.cu): the history, the empty-cluster repair, the update, the shift and the
// convergence rule of the host driver (driver.cpp's lloyd(), through lloyd_step.hpp: the same
// bits), then the done flag that makes the following steps of the batch no-ops. A __host__
// __device__ function run by one device thread, and by the host tests that emulate the loop.
#pragma once

#include <cstdint>
#include <cstring>

#include "kernels/farthest.cuh"
#include "kernels/layout.cuh"
#include "kernels/tuning.cuh"
#include "lloyd_step.hpp"

namespace kmeans::detail::device_loop {

/// The loop's state on the device (int64 slots): set by the host before the first batch, read
/// back after each.
enum Slot : int {
  kIter = 0,       ///< iterations run
  kDone = 1,       ///< nonzero: converged or max_iter reached; later steps do nothing
  kConverged = 2,  ///< the last iteration's convergence test
  kRelocated = 3,  ///< empty clusters repaired so far
  kMaxIter = 4,
  kTolBits = 5,    ///< tol's bits (a double)
  kFailed = 6,     ///< nonzero: a farthest point was missing (an internal error; done is set)
  kSlots = 7
};

template <class T>
struct StepView {
  const T* x = nullptr;      ///< n x d
  const T* w = nullptr;      ///< n weights or null (all 1)
  T* c = nullptr;            ///< k x d centroids, updated in place
  double* totals = nullptr;  ///< the pass's totals record (layout.cuh), repaired in place
  /// The farthest points of the pass (set by step_kernel; kernels/farthest.cuh's order):
  /// kFarthestMaxM indices, then their labels, valid for the first count_empty(weights).
  const std::int64_t* far = nullptr;
  int k = 0;
  std::int64_t d = 0;
  double* sse = nullptr;        ///< [max_iter] the passes' SSEs
  double* imbalance = nullptr;  ///< [max_iter] imbalance factors of their weights
  std::int64_t* state = nullptr;  ///< kSlots
};

KMEANS_HD inline double tol_of(const std::int64_t* state) {
#if defined(__CUDA_ARCH__)
  return __longlong_as_double(static_cast<long long>(state[kTolBits]));
#else
  double tol;
  std::memcpy(&tol, &state[kTolBits], sizeof tol);
  return tol;
#endif
}

/// The step after one pass: exactly the host loop's body (driver.cpp's lloyd()) from the SSE
/// on. Returns false when the loop was already done (nothing changed).
template <class T>
KMEANS_HD bool step(const StepView<T>& v) {
  std::int64_t* st = v.state;
  if (st[kDone]) return false;
  const int k = v.k;
  const std::int64_t d = v.d;
  const int it = static_cast<int>(st[kIter]);
  double* weights = v.totals + layout::total_weight(0);
  double* sums = v.totals + layout::total_sum(0, 0, k, d);
  v.sse[it] = v.totals[layout::kTotalSse];
  v.imbalance[it] = lloyd_step::imbalance_factor(weights, k);
  const auto n_changed = static_cast<std::int64_t>(v.totals[layout::kTotalChanged]);
  // relocate_empty_clusters: the empty clusters in ascending order first, then the moves.
  int empty[tuning::kFarthestMaxM];
  int m = 0;
  for (int c = 0; c < k && m < tuning::kFarthestMaxM; ++c)
    if (weights[c] == 0) empty[m++] = c;
  for (int i = 0; i < m; ++i) {
    if (v.far[i] < 0) {  // cannot happen (m <= k <= n): stop rather than read out of bounds
      st[kFailed] = 1;
      st[kDone] = 1;
      return true;
    }
  }
  for (int i = 0; i < m; ++i) {
    const std::int64_t idx = v.far[i];
    const int from = static_cast<int>(v.far[tuning::kFarthestMaxM + i]);
    const double wi = v.w ? static_cast<double>(v.w[idx]) : 1.0;
    lloyd_step::relocate_point(sums, weights, d, empty[i], from, wi, v.x + idx * d);
  }
  st[kRelocated] += m;
  const double shift = lloyd_step::update_centroids(sums, weights, k, d, v.c);
  const bool conv = lloyd_step::converged(it, n_changed, shift, tol_of(st));
  st[kIter] = it + 1;
  st[kConverged] = conv ? 1 : 0;
  if (conv || it + 1 >= st[kMaxIter]) st[kDone] = 1;
  return true;
}

#if defined(__CUDACC__)
/// One block: when clusters are empty, their farthest points over the pass's n distances
/// (kernels/farthest.cuh's selection, one block over all points: the rare path), then the step
/// on one thread. One graph node per iteration besides the pass.
template <class T>
__global__ void __launch_bounds__(tuning::kFarthestThreads)
    step_kernel(StepView<T> v, const T* __restrict__ dist,
                const std::int32_t* __restrict__ labels, std::int64_t n) {
  __shared__ std::int64_t far[2 * tuning::kFarthestMaxM];
  if (v.state[kDone]) return;  // written by the previous launch: the same for every thread
  const int m = farthest::count_empty(v.totals + layout::total_weight(0), v.k);
  T pd = 0;
  std::int64_t pi = -1;
  for (int s = 0; s < m && s < tuning::kFarthestMaxM; ++s) {
    T bd = 0;
    std::int64_t bi = -1;
    for (std::int64_t i = threadIdx.x; i < n; i += tuning::kFarthestThreads)
      farthest::offer(dist[i], i, pd, pi, bd, bi);
    farthest::block_best(bd, bi);
    if (threadIdx.x == 0) {
      far[s] = bi;
      far[tuning::kFarthestMaxM + s] = bi >= 0 ? labels[bi] : -1;
    }
    pd = bd;
    pi = bi;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    StepView<T> w = v;
    w.far = far;
    (void)step(w);
  }
}
#endif

}  // namespace kmeans::detail::device_loop
