// SPDX-License-Identifier: Apache-2.0
// What every streamed engine (CPU, CUDA) does around a pass: the labels' set-up; with each chunk's
// shard engine after it, its node values pushed in block order and its labels kept, the changed
// ones counted; the pass totals; the merge of the chunks' farthest points.
#pragma once

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <algorithm>
#include <cstdint>
#include <vector>

#include "engine.hpp"
#include "internal.hpp"
#include "shard_engine.hpp"
#include "stream/chunks.hpp"
#include "tree_sum.hpp"

namespace kmeans::detail::stream {

/// The start of a streamed pass: keeps the centroids (and k) for farthest's pass, and on the
/// first pass of a run allocates the labels (giving initialisation's freed pages back first),
/// every label then counting as changed.
template <class T>
void begin_pass(const T* centroids, int k, std::int64_t n, std::int64_t d, std::vector<T>& last,
                int& last_k, PageArray<std::int32_t>& labels, bool& fresh) {
  last.assign(centroids, centroids + k * d);
  last_k = k;
  if (labels.empty()) {
#if defined(__GLIBC__)
    malloc_trim(0);
#endif
    labels.allocate(n);
    fresh = true;
  }
}

/// After e.assign_nodes(..., values) on the chunk of `rows` rows at global row `first` (a whole
/// number of kReduceBlock blocks from the start): pushes its node values (rows of stack.width())
/// onto `stack`, shifted to the chunk's first block, copies its labels into labels[first, +rows)
/// (through `scratch`) and returns how many changed (all of them when `fresh`).
template <class T>
std::int64_t take_chunk(ShardEngine<T>& e, std::int64_t first, std::int64_t rows,
                        const std::vector<double>& values, tree::NodeStack& stack,
                        std::int32_t* labels, bool fresh, std::vector<std::int32_t>& scratch) {
  const std::int64_t b0 = first / kReduceBlock;
  const std::vector<tree::Node>& nodes = e.nodes();
  for (std::size_t j = 0; j < nodes.size(); ++j)
    stack.push({b0 + nodes[j].start, nodes[j].size},
               values.data() + static_cast<std::int64_t>(j) * stack.width());
  scratch.resize(static_cast<std::size_t>(rows));
  e.labels(scratch.data());
  std::int32_t* out = labels + first;
  std::int64_t changed = 0;
  for (std::int64_t r = 0; r < rows; ++r) {
    changed += fresh || out[r] != scratch[static_cast<std::size_t>(r)];
    out[r] = scratch[static_cast<std::size_t>(r)];
  }
  return changed;
}

/// The pass's totals from the merged nodes: sums (k x d) and weights (k) when `sums` is not null
/// (the stack's rows then hold k d + k + 1 values, else the SSE alone); `total` is scratch.
inline StepStats pass_totals(const tree::NodeStack& stack, std::int64_t k, std::int64_t d,
                             double* sums, double* weights, std::int64_t changed,
                             std::vector<double>& total) {
  const std::int64_t width = stack.width();
  total.resize(static_cast<std::size_t>(width));
  stack.total(total.data());
  if (sums) {
    std::copy(total.begin(), total.begin() + k * d, sums);
    std::copy(total.begin() + k * d, total.begin() + k * d + k, weights);
  }
  StepStats stats;
  stats.sse = total[static_cast<std::size_t>(width - 1)];
  stats.n_changed = changed;
  return stats;
}

/// The m farthest points over chunks, by decreasing distance, ties to the lowest index: add each
/// chunk's own farthest (after a pass with the same centroids), then take the result.
template <class T>
class FarthestMerge {
 public:
  explicit FarthestMerge(std::int64_t m) : m_(m) {}
  /// The chunk at global row `first` whose engine has just run a pass.
  void add(ShardEngine<T>& e, std::int64_t first, std::int64_t rows) {
    const T* dist = e.point_distances();
    for (const FarPoint& f : e.farthest(std::min(m_, rows)))
      best_.push_back({dist[f.index], first + f.index, f.label});
    std::sort(best_.begin(), best_.end(), [](const Cand& a, const Cand& b) {
      return a.dist != b.dist ? a.dist > b.dist : a.index < b.index;
    });
    if (static_cast<std::int64_t>(best_.size()) > m_) best_.resize(static_cast<std::size_t>(m_));
  }
  std::vector<FarPoint> result() const {
    std::vector<FarPoint> out;
    for (const Cand& c : best_) out.push_back({c.index, c.label});
    return out;
  }

 private:
  struct Cand {
    T dist;
    std::int64_t index;
    std::int32_t label;
  };
  std::int64_t m_;
  std::vector<Cand> best_;
};

}  // namespace kmeans::detail::stream
