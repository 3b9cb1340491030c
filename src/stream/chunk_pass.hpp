// SPDX-License-Identifier: Apache-2.0
// The part every streamed engine (CPU, CUDA) shares: a pass over the chunks' shard engines with
// their node values merged in block order, the labels kept and the changed ones counted, the
// farthest points merged over chunks; the derived engine only binds each chunk (for_each_chunk).
#pragma once

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <algorithm>
#include <cstdint>
#include <functional>
#include <vector>

#include "engine.hpp"
#include "internal.hpp"
#include "shard_engine.hpp"
#include "stream/chunks.hpp"
#include "tree_sum.hpp"

namespace kmeans::detail::stream {

template <class T>
class ChunkedEngine : public Engine<T> {
 public:
  /// One pass: every chunk's shard engine gives its node values (pushed onto the canonical
  /// stack, shifted to the chunk's first block) and its labels; the totals are the stack's.
  StepStats assign(const T* centroids, int k, double* sums, double* weights) override {
    const std::int64_t d = c_.d();
    const bool with_sums = sums != nullptr;
    last_centroids_.assign(centroids, centroids + k * d);
    last_k_ = k;
    if (labels_.empty()) {  // the first pass of a run: every label counts as changed
#if defined(__GLIBC__)
      malloc_trim(0);  // initialisation's arrays are gone: give their pages back first
#endif
      labels_.allocate(c_.n());
      fresh_ = true;
    }
    tree::NodeStack stack(with_sums ? k * d + k + 1 : 1);  // sums, weights, then the SSE
    std::int64_t changed = 0;
    for_each_chunk([&](ShardEngine<T>& e, std::int64_t first, std::int64_t rows) {
      e.assign_nodes(centroids, k, with_sums, nodes_out_);
      const std::int64_t b0 = first / kReduceBlock;
      const std::vector<tree::Node>& nodes = e.nodes();
      for (std::size_t j = 0; j < nodes.size(); ++j)
        stack.push({b0 + nodes[j].start, nodes[j].size},
                   nodes_out_.data() + static_cast<std::int64_t>(j) * stack.width());
      chunk_labels_.resize(static_cast<std::size_t>(rows));
      e.labels(chunk_labels_.data());
      std::int32_t* out = labels_.data() + first;
      for (std::int64_t r = 0; r < rows; ++r) {
        changed += fresh_ || out[r] != chunk_labels_[static_cast<std::size_t>(r)];
        out[r] = chunk_labels_[static_cast<std::size_t>(r)];
      }
    });
    fresh_ = false;
    total_.resize(static_cast<std::size_t>(stack.width()));
    stack.total(total_.data());
    if (with_sums) {
      std::copy(total_.begin(), total_.begin() + k * d, sums);
      std::copy(total_.begin() + k * d, total_.begin() + k * d + k, weights);
    }
    StepStats stats;
    stats.sse = total_.back();
    stats.n_changed = changed;
    return stats;
  }

  /// The end of a run: the labels move out and the engine's copy is freed (the next pass
  /// counts every label as changed, as after a rebind).
  void labels(std::int32_t* out) override { labels_.move_out(out); }

  /// A pass with the last centroids: each chunk's m farthest points and their distances (the
  /// key, point_distances), merged by (decreasing distance, index), as the in-memory engines
  /// order them.
  std::vector<FarPoint> farthest(std::int64_t m) override {
    struct Cand {
      T dist;
      std::int64_t index;
      std::int32_t label;
    };
    m = std::min(m, c_.n());
    std::vector<Cand> best;
    for_each_chunk([&](ShardEngine<T>& e, std::int64_t first, std::int64_t rows) {
      e.assign(last_centroids_.data(), last_k_, nullptr, nullptr);
      const T* dist = e.point_distances();
      for (const FarPoint& f : e.farthest(std::min(m, rows)))
        best.push_back({dist[f.index], first + f.index, f.label});
      std::sort(best.begin(), best.end(), [](const Cand& a, const Cand& b) {
        return a.dist != b.dist ? a.dist > b.dist : a.index < b.index;
      });
      if (static_cast<std::int64_t>(best.size()) > m) best.resize(static_cast<std::size_t>(m));
    });
    std::vector<FarPoint> out;
    for (const Cand& c : best) out.push_back({c.index, c.label});
    return out;
  }

  const T* host_data() override {
    throw Error("streamed data has no host copy (internal: host_data on a stream engine)");
  }
  const T* host_weights() override { return w_; }
  void distances(const T*, int, T*) override {
    throw Error("streamed fit: distances are not available (internal)");
  }
  bool rebind(const DataView<T>&) override { return false; }
  DataOps<T>* data_ops() override { return ops_; }

 protected:
  ChunkedEngine(Chunks<T>& chunks, const T* w, DataOps<T>* ops) : c_(chunks), w_(w), ops_(ops) {}

  /// fn(engine, first, rows) on a shard engine bound to each chunk (global rows [first, +rows),
  /// a whole number of kReduceBlock blocks from the start), in row order.
  using ChunkFn = std::function<void(ShardEngine<T>&, std::int64_t, std::int64_t)>;
  virtual void for_each_chunk(const ChunkFn& fn) = 0;

  Chunks<T>& c_;
  const T* w_;  ///< all n weights (engine units) or null

 private:
  DataOps<T>* ops_;
  PageArray<std::int32_t> labels_;
  bool fresh_ = true;
  std::vector<T> last_centroids_;
  int last_k_ = 0;
  std::vector<double> nodes_out_;
  std::vector<double> total_;
  std::vector<std::int32_t> chunk_labels_;
};

}  // namespace kmeans::detail::stream
