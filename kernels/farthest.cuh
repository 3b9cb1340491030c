// SPDX-License-Identifier: Apache-2.0
// The m points farthest from their centroid on the device (empty-cluster repair): the top m by
// (distance descending, index ascending) in two stages, without downloading the n distances.
//
// Each stage selects m times: pick s is the first point in rank order among those ranked after
// pick s - 1, so no point needs marking. Stage one: every block its chunk's top m (candidate
// indices, -1 where the chunk has fewer points); stage two: one block the top m of all the
// candidates. A chunk's top m holds every point of the global top m that lies in the chunk, so
// the result is the global top m whatever the chunking. The device loop's step kernel
// (kernels/device_loop.cuh) runs the same selection in one block over all points.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/tuning.cuh"

namespace kmeans::detail::farthest {

/// True when point (da, ia) ranks before (db, ib): farther, or as far with a lower index (the
/// host's ranking: dist[a] != dist[b] ? dist[a] > dist[b] : a < b).
template <class T>
KMEANS_HD inline bool ranks_before(T da, std::int64_t ia, T db, std::int64_t ib) {
  return da != db ? da > db : ia < ib;
}

/// Offers point (di, i) to a selection whose previous pick is (pd, pi) (pi < 0: none yet) and
/// whose best so far is (bd, bi) (bi < 0: none yet): it is taken when ranked after the previous
/// pick and before the best.
template <class T>
KMEANS_HD inline void offer(T di, std::int64_t i, T pd, std::int64_t pi, T& bd, std::int64_t& bi) {
  if (pi >= 0 && !ranks_before(pd, pi, di, i)) return;
  if (bi < 0 || ranks_before(di, i, bd, bi)) {
    bd = di;
    bi = i;
  }
}

/// The number of empty clusters (weight exactly 0) among k.
KMEANS_HD inline int count_empty(const double* weights, int k) {
  int m = 0;
  for (int c = 0; c < k; ++c) m += weights[c] == 0 ? 1 : 0;
  return m;
}

/// Points per stage-one block (the last may hold fewer).
KMEANS_HD constexpr std::int64_t chunk_points(std::int64_t n, int blocks) {
  return (n + blocks - 1) / blocks;
}

struct Args {
  std::int64_t n = 0;
  int m = 0;                        ///< picks wanted, at most tuning::kFarthestMaxM
  int blocks = 1;                   ///< stage-one blocks
  std::int64_t* candidates = nullptr;  ///< [blocks][kFarthestMaxM] point indices or -1
  std::int64_t* out = nullptr;      ///< [0, kFarthestMaxM) indices (-1: none), then their labels
};

#if defined(__CUDACC__)
/// The block's best of the values each thread offered; every thread returns it.
template <class T>
__device__ inline void block_best(T& bd, std::int64_t& bi) {
  __shared__ T sd[tuning::kFarthestThreads];
  __shared__ std::int64_t si[tuning::kFarthestThreads];
  const int t = static_cast<int>(threadIdx.x);
  sd[t] = bd;
  si[t] = bi;
  __syncthreads();
  for (int stride = tuning::kFarthestThreads / 2; stride > 0; stride /= 2) {
    if (t < stride && si[t + stride] >= 0 &&
        (si[t] < 0 || ranks_before(sd[t + stride], si[t + stride], sd[t], si[t]))) {
      sd[t] = sd[t + stride];
      si[t] = si[t + stride];
    }
    __syncthreads();
  }
  bd = sd[0];
  bi = si[0];
  __syncthreads();  // the arrays are reused by the next pick
}

/// Stage one: block b's top m of the points [b * chunk, (b + 1) * chunk).
template <class T>
__global__ void __launch_bounds__(tuning::kFarthestThreads)
    top_m_block_kernel(const T* __restrict__ dist, Args a) {
  const int m = a.m;
  if (m <= 0) return;
  const std::int64_t chunk = chunk_points(a.n, a.blocks);
  const std::int64_t lo = blockIdx.x * chunk;
  const std::int64_t hi = lo + chunk < a.n ? lo + chunk : a.n;
  T pd = 0;
  std::int64_t pi = -1;
  for (int s = 0; s < m; ++s) {
    T bd = 0;
    std::int64_t bi = -1;
    for (std::int64_t i = lo + threadIdx.x; i < hi; i += tuning::kFarthestThreads)
      offer(dist[i], i, pd, pi, bd, bi);
    block_best(bd, bi);
    if (threadIdx.x == 0) a.candidates[blockIdx.x * tuning::kFarthestMaxM + s] = bi;
    if (bi < 0) {  // the chunk is exhausted: the remaining picks are none
      for (int r = s + 1 + static_cast<int>(threadIdx.x); r < m; r += tuning::kFarthestThreads)
        a.candidates[blockIdx.x * tuning::kFarthestMaxM + r] = -1;
      return;
    }
    pd = bd;
    pi = bi;
  }
}

/// Stage two (one block): the top m of the candidates, indices and labels into a.out.
template <class T>
__global__ void __launch_bounds__(tuning::kFarthestThreads)
    top_m_merge_kernel(const T* __restrict__ dist, const std::int32_t* __restrict__ labels,
                       Args a) {
  const int m = a.m;
  if (m <= 0) return;
  const std::int64_t entries = std::int64_t{a.blocks} * tuning::kFarthestMaxM;
  T pd = 0;
  std::int64_t pi = -1;
  for (int s = 0; s < m; ++s) {
    T bd = 0;
    std::int64_t bi = -1;
    for (std::int64_t e = threadIdx.x; e < entries; e += tuning::kFarthestThreads) {
      if (e % tuning::kFarthestMaxM >= m) continue;
      const std::int64_t i = a.candidates[e];
      if (i >= 0) offer(dist[i], i, pd, pi, bd, bi);
    }
    block_best(bd, bi);
    if (threadIdx.x == 0) {
      a.out[s] = bi;
      a.out[tuning::kFarthestMaxM + s] = bi >= 0 ? labels[bi] : -1;
    }
    pd = bd;
    pi = bi;
  }
}
#endif  // __CUDACC__

/// The two stages on the host, in the kernels' selection (tests): the indices of the top m.
template <class T>
std::int64_t top_m_model(const T* dist, std::int64_t n, int m, int blocks, std::int64_t* out) {
  const std::int64_t chunk = chunk_points(n, blocks);
  std::vector<std::int64_t> cand(static_cast<std::size_t>(blocks) * (m > 0 ? m : 0));
  std::size_t entries = 0;
  for (int b = 0; b < blocks; ++b) {
    const std::int64_t lo = b * chunk, hi = lo + chunk < n ? lo + chunk : n;
    T pd = 0;
    std::int64_t pi = -1;
    for (int s = 0; s < m; ++s) {
      T bd = 0;
      std::int64_t bi = -1;
      for (std::int64_t i = lo; i < hi; ++i) offer(dist[i], i, pd, pi, bd, bi);
      if (bi < 0) break;
      cand[entries++] = bi;
      pd = bd;
      pi = bi;
    }
  }
  T pd = 0;
  std::int64_t pi = -1, found = 0;
  for (int s = 0; s < m; ++s) {
    T bd = 0;
    std::int64_t bi = -1;
    for (std::size_t e = 0; e < entries; ++e) offer(dist[cand[e]], cand[e], pd, pi, bd, bi);
    if (bi < 0) break;
    out[found++] = bi;
    pd = bd;
    pi = bi;
  }
  return found;
}

}  // namespace kmeans::detail::farthest
