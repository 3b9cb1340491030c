// SPDX-License-Identifier: Apache-2.0
// The CPU engine over chunks: a CPU shard engine bound to one chunk of 2^m whole blocks at a
// time gives the chunk's sums, weights and SSE as canonical tree nodes (tree_sum.hpp), merged
// across chunks in block order: the in-memory engine's bits.
#include <algorithm>
#include <cstdint>
#include <memory>
#include <vector>

#include "shard_engine.hpp"
#include "stream/chunk_pass.hpp"
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
    const std::int64_t d = c_.d();
    const bool with_sums = sums != nullptr;
    begin_pass(centroids, k, c_.n(), d, last_centroids_, last_k_, labels_, fresh_);
    tree::NodeStack stack(with_sums ? k * d + k + 1 : 1);  // sums, weights, then the SSE
    std::int64_t changed = 0;
    std::int32_t* labels = labels_.data();
    c_.for_each([&](std::int64_t first, std::int64_t rows, const T* x) {
      ShardEngine<T>& e = bind(x, first, rows);
      e.assign_nodes(centroids, k, with_sums, nodes_out_);
      changed += take_chunk(e, first, rows, nodes_out_, stack, labels, fresh_, chunk_labels_);
    });
    fresh_ = false;
    return pass_totals(stack, k, d, sums, weights, changed, total_);
  }

  /// The end of a run: the labels move out and the engine's copy is freed (the next pass
  /// counts every label as changed, as after a rebind).
  void labels(std::int32_t* out) override { labels_.move_out(out); }

  /// A pass with the last centroids: each chunk's m farthest points and their distances (the
  /// key, point_distances), merged by (decreasing distance, index), as the CPU engine orders.
  std::vector<FarPoint> farthest(std::int64_t m) override {
    const int k = last_k_;
    FarthestMerge<T> best(std::min(m, c_.n()));
    c_.for_each([&](std::int64_t first, std::int64_t rows, const T* x) {
      ShardEngine<T>& e = bind(x, first, rows);
      e.assign(last_centroids_.data(), k, nullptr, nullptr);
      best.add(e, first, rows);
    });
    return best.result();
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
