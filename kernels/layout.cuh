// SPDX-License-Identifier: Apache-2.0
// Index math shared by the kernels and the host: the totals record, the [entry][block] partial
// layout that DeviceSegmentedReduce reduces, and the shared-memory centroid tile.
#pragma once

#include <cstdint>

#include "kernels/tuning.cuh"

namespace kmeans::detail::layout {

// The totals record the engine downloads after every pass (doubles):
//   [0] SSE, [1] changed-label count, [2, 2 + k) cluster weights, [2 + k, 2 + k + k*d) sums
// (k x d row-major, the driver's layout, so the host copies it as is).
constexpr int kTotalSse = 0;
constexpr int kTotalChanged = 1;
constexpr int kTotalHeader = 2;

KMEANS_HD constexpr std::int64_t total_entries(std::int64_t k, std::int64_t d) {
  return kTotalHeader + k * (d + 1);
}
KMEANS_HD constexpr std::int64_t total_weight(std::int64_t c) { return kTotalHeader + c; }
KMEANS_HD constexpr std::int64_t total_sum(std::int64_t c, std::int64_t j, std::int64_t k,
                                           std::int64_t d) {
  return kTotalHeader + k + c * d + j;
}

/// A partial "column" (c, col) with col in [0, d]: col < d is coordinate col of cluster c's
/// weighted sum, col == d its weight. Consecutive columns of one cluster are consecutive
/// coordinates, so the threads that own them read a point's row coalesced.
KMEANS_HD constexpr std::int64_t total_of_column(std::int64_t column, std::int64_t k,
                                                 std::int64_t d) {
  const std::int64_t c = column / (d + 1), col = column - c * (d + 1);
  return col < d ? total_sum(c, col, k, d) : total_weight(c);
}

/// Where block b's value of total entry e lives in the partial buffer: entry-major, so each
/// entry's values over the blocks are one contiguous segment for DeviceSegmentedReduce.
KMEANS_HD constexpr std::int64_t partial_slot(std::int64_t entry, std::int64_t block,
                                              std::int64_t n_blocks) {
  return entry * n_blocks + block;
}

/// Position of coordinate j of tile-local centroid c in the shared-memory tile: groups of
/// kRegTile centroids stored [group][j][kRegTile], so one coordinate of a register tile is
/// kRegTile contiguous values (a broadcast vector load).
KMEANS_HD constexpr std::int64_t smem_centroid_index(int c, std::int64_t j, std::int64_t d) {
  return ((c / tuning::kRegTile) * d + j) * tuning::kRegTile + c % tuning::kRegTile;
}

/// First position in sorted keys[0, count) whose key is >= value.
KMEANS_HD inline int lower_bound(const int* keys, int count, int value) {
  int lo = 0, hi = count;
  while (lo < hi) {
    const int mid = lo + (hi - lo) / 2;
    if (keys[mid] < value)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

}  // namespace kmeans::detail::layout
