// SPDX-License-Identifier: Apache-2.0
// The CPU engine over one shard of a larger data set: its pass results as canonical tree nodes.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "engine.hpp"
#include "tree_sum.hpp"

namespace kmeans::detail {

/// A CPU engine bound to rows [first_block * kReduceBlock, + n) of a larger data set (every
/// shard but the last a whole number of blocks). Besides Engine's totals it gives a pass's sums,
/// weights and SSE as the values of the canonical nodes (tree_sum.hpp) of its global blocks, so
/// that merging the shards' nodes in block order gives the single-process bits.
template <class T>
class ShardEngine : public Engine<T> {
 public:
  /// The canonical decomposition of this shard's global blocks.
  virtual const std::vector<tree::Node>& nodes() const = 0;
  /// One pass as assign; instead of totals, `out` receives one row per node of nodes(): the
  /// k x d sums, the k weights and the SSE (k * d + k + 1 values) with `with_sums`, else the
  /// SSE alone (1 value). StepStats holds this shard's changed labels and its SSE total.
  virtual StepStats assign_nodes(const T* centroids, int k, bool with_sums,
                                 std::vector<double>& out) = 0;
  /// The squared distance (in T) of every point of the shard to its centroid in the last pass:
  /// the key of farthest().
  virtual const T* point_distances() const = 0;
  /// Later rebinds keep the centring vector of the ranking passes (the mean of the data bound
  /// now) instead of recomputing it from the new rows: one read of the data less per rebind.
  /// The results do not change (labels and distances are exact whatever the centre; only how
  /// tight the ranking's bound is depends on it), so a streamed fit that rebinds every chunk
  /// of every pass keeps its bits.
  virtual void keep_centre() = 0;
};

/// The CPU engine over a shard whose first row is global block `first_block`;
/// max_partial_doubles as make_cpu_engine's (<= 0: the default rule).
template <class T>
std::unique_ptr<ShardEngine<T>> make_cpu_shard_engine(const DataView<T>& v,
                                                      std::int64_t first_block,
                                                      std::int64_t max_partial_doubles = 0);

}  // namespace kmeans::detail
