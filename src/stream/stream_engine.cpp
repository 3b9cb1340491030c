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

namespace kmeans::detail::stream {
namespace {

template <class T>
class StreamEngine final : public ChunkedEngine<T> {
 public:
  StreamEngine(Chunks<T>& chunks, const T* w, int n_threads, std::int64_t max_partial_doubles,
               DataOps<T>* ops)
      : ChunkedEngine<T>(chunks, w, ops),
        n_threads_(n_threads),
        max_partial_doubles_(max_partial_doubles) {}

  Backend kind() const override { return Backend::Cpu; }

 private:
  using ChunkedEngine<T>::c_;
  using ChunkedEngine<T>::w_;

  void for_each_chunk(const typename ChunkedEngine<T>::ChunkFn& fn) override {
    c_.for_each([&](std::int64_t first, std::int64_t rows, const T* x) {
      fn(bind(x, first, rows), first, rows);
    });
  }

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

  int n_threads_;
  std::int64_t max_partial_doubles_;
  std::unique_ptr<ShardEngine<T>> engine_;
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
