// SPDX-License-Identifier: Apache-2.0
// The CPU engine over chunks: a CPU shard engine bound to one chunk of 2^m whole blocks at a
// time gives the chunk's sums, weights and SSE as canonical tree nodes (tree_sum.hpp), merged
// across chunks in block order: the in-memory engine's bits.
#include <algorithm>
#include <cstdint>
#include <memory>
#include <vector>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "shard_engine.hpp"
#include "stream/chunks.hpp"
#include "tree_sum.hpp"

namespace kmeans::detail::stream {
namespace {

template <class T>
class StreamEngine final : public Engine<T> {
 public:
  StreamEngine(Chunks<T>& chunks, const T* w, int n_threads, std::int64_t max_partial_doubles,
               DataOps<T>* ops)
      : c_(chunks),
        w_(w),
        n_threads_(n_threads),
        max_partial_doubles_(max_partial_doubles),
        ops_(ops) {}

  Backend kind() const override { return Backend::Cpu; }

  StepStats assign(const T* centroids, int k, double* sums, double* weights) override {
    const std::int64_t n = c_.n(), d = c_.d();
    const std::int64_t stride = k * d + k;
    const bool with_sums = sums != nullptr;
    const std::int64_t width = with_sums ? stride + 1 : 1;  // sums, weights, then the SSE
    last_centroids_.assign(centroids, centroids + k * d);
    last_k_ = k;
    if (labels_.empty()) {
#if defined(__GLIBC__)
      malloc_trim(0);  // initialisation's arrays are gone: give their pages back first
#endif
      labels_.allocate(n);
      fresh_ = true;
    }
    tree::NodeStack stack(width);
    std::int64_t changed = 0;
    std::int32_t* labels = labels_.data();
    c_.for_each([&](std::int64_t first, std::int64_t rows, const T* x) {
      ShardEngine<T>& e = bind(x, first, rows);
      e.assign_nodes(centroids, k, with_sums, nodes_out_);
      push_nodes(e, first, stack);
      chunk_labels_.resize(static_cast<std::size_t>(rows));
      e.labels(chunk_labels_.data());
      std::int32_t* out = labels + first;
      const std::int32_t* lab = chunk_labels_.data();
      std::int64_t ch = 0;
      for (std::int64_t r = 0; r < rows; ++r) {
        ch += fresh_ || out[r] != lab[r];
        out[r] = lab[r];
      }
      changed += ch;
    });
    fresh_ = false;
    total_.resize(static_cast<std::size_t>(width));
    stack.total(total_.data());
    if (with_sums) {
      std::copy(total_.begin(), total_.begin() + k * d, sums);
      std::copy(total_.begin() + k * d, total_.begin() + stride, weights);
    }
    StepStats stats;
    stats.sse = total_[static_cast<std::size_t>(width - 1)];
    stats.n_changed = changed;
    return stats;
  }

  /// The end of a run: the labels move out and the engine's copy is freed (the next pass
  /// counts every label as changed, as after a rebind).
  void labels(std::int32_t* out) override { labels_.move_out(out); }

  /// A pass with the last centroids: each chunk's m farthest points and their distances (the
  /// key, point_distances), merged by (decreasing distance, index), as the CPU engine orders.
  std::vector<FarPoint> farthest(std::int64_t m) override {
    const std::int64_t n = c_.n();
    const int k = last_k_;
    m = std::min(m, n);
    struct Cand {
      T dist;
      std::int64_t index;
      std::int32_t label;
    };
    auto before = [](const Cand& a, const Cand& b) {
      return a.dist != b.dist ? a.dist > b.dist : a.index < b.index;
    };
    std::vector<Cand> best;
    c_.for_each([&](std::int64_t first, std::int64_t rows, const T* x) {
      ShardEngine<T>& e = bind(x, first, rows);
      e.assign(last_centroids_.data(), k, nullptr, nullptr);
      const T* dist = e.point_distances();
      for (const FarPoint& f : e.farthest(std::min(m, rows)))
        best.push_back({dist[f.index], first + f.index, f.label});
      std::sort(best.begin(), best.end(), before);
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

 private:
  /// The shard engine bound to the chunk at `first` (a whole number of blocks, 2^m per chunk
  /// and aligned to it: its canonical nodes are the whole data set's, shifted).
  ShardEngine<T>& bind(const T* x, std::int64_t first, std::int64_t rows) {
    const DataView<T> v{x, w_ ? w_ + first : nullptr, rows, c_.d(), n_threads_};
    if (!engine_ || !engine_->rebind(v)) {
      engine_ = make_cpu_shard_engine(v, 0, max_partial_doubles_);
      engine_->keep_centre();  // the first chunk's mean centres every chunk (shard_engine.hpp)
    }
    return *engine_;
  }

  /// Pushes the bound chunk's node values (nodes_out_) onto `stack`, shifted to the chunk's
  /// first block.
  void push_nodes(const ShardEngine<T>& e, std::int64_t first, tree::NodeStack& stack) const {
    const std::int64_t b0 = first / kBlock;
    const std::vector<tree::Node>& nodes = e.nodes();
    for (std::size_t j = 0; j < nodes.size(); ++j)
      stack.push({b0 + nodes[j].start, nodes[j].size},
                 nodes_out_.data() + static_cast<std::int64_t>(j) * stack.width());
  }

  Chunks<T>& c_;
  const T* w_;
  int n_threads_;
  std::int64_t max_partial_doubles_;
  DataOps<T>* ops_;
  PageArray<std::int32_t> labels_;
  bool fresh_ = true;
  std::vector<T> last_centroids_;
  int last_k_ = 0;
  std::unique_ptr<ShardEngine<T>> engine_;
  std::vector<double> nodes_out_;
  std::vector<double> total_;
  std::vector<std::int32_t> chunk_labels_;
};

}  // namespace

template <class T>
std::unique_ptr<Engine<T>> make_stream_engine(Chunks<T>& chunks, const T* w, int n_threads,
                                              std::int64_t max_partial_doubles, DataOps<T>* ops) {
  return std::make_unique<StreamEngine<T>>(chunks, w, n_threads, max_partial_doubles, ops);
}

template std::unique_ptr<Engine<float>> make_stream_engine(Chunks<float>&, const float*, int,
                                                           std::int64_t, DataOps<float>*);
template std::unique_ptr<Engine<double>> make_stream_engine(Chunks<double>&, const double*, int,
                                                            std::int64_t, DataOps<double>*);

}  // namespace kmeans::detail::stream
