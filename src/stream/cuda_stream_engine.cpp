// SPDX-License-Identifier: Apache-2.0
// The CUDA engine over chunks: each chunk of 2^m whole blocks goes host -> pinned staging ->
// device buffer (double-buffered, two copy streams) while the previous one is computed by a CUDA
// shard engine bound to its buffer; the canonical tree nodes merged in block order give the
// in-memory CUDA fit's bits whatever the chunking.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "cuda/runtime.hpp"
#include "cuda/shard.hpp"
#include "kernels/device_buffer.hpp"
#include "stream/chunk_pass.hpp"
#include "stream/cuda_stream.hpp"
#include "stream/pipeline.hpp"

namespace kmeans::detail::stream {
namespace {

template <class T>
class CudaStreamEngine final : public ChunkedEngine<T> {
 public:
  CudaStreamEngine(Chunks<T>& chunks, const T* w, int n_threads, DataOps<T>* ops)
      : ChunkedEngine<T>(chunks, w, ops), n_threads_(n_threads) {
    KMEANS_CUDA_TRY(cudaGetDevice(&device_));
    const std::size_t rows = static_cast<std::size_t>(std::min(c_.chunk_rows(), c_.n()));
    const std::size_t values = rows * static_cast<std::size_t>(c_.d());
    const int used = c_.n_chunks() == 1 ? 1 : 2;
    for (int s = 0; s < used; ++s) {
      Slot& slot = slots_[s];
      slot.copy = std::make_unique<cuda::Stream>();
      slot.uploaded = std::make_unique<cuda::Event>();
      slot.computed = std::make_unique<cuda::Event>();
      slot.hx.allocate(values, "streamed chunk (pinned staging)");
      slot.dx.allocate(values, "streamed chunk");
      // Poisoned: a row no upload wrote shows up as NaN (every row a chunk uses is uploaded).
      KMEANS_CUDA_TRY(cudaMemsetAsync(slot.dx.get(), 0xFF, slot.dx.bytes(), slot.copy->get()));
      if (w_) {
        slot.hw.allocate(rows, "streamed chunk weights (pinned staging)");
        slot.dw.allocate(rows, "streamed chunk weights");
        KMEANS_CUDA_TRY(cudaMemsetAsync(slot.dw.get(), 0xFF, slot.dw.bytes(), slot.copy->get()));
      }
      // Nothing computed yet: the first upload's wait on `computed` is satisfied at once.
      KMEANS_CUDA_TRY(cudaEventRecord(slot.computed->get(), slot.copy->get()));
      KMEANS_CUDA_TRY(cudaStreamSynchronize(slot.copy->get()));
    }
  }

  ~CudaStreamEngine() override {
    // The shard engines go first (they synchronise their streams), then nothing may be in
    // flight on the copy streams when the staging and device buffers are freed.
    for (auto& e : full_) e.reset();
    short_.reset();
    for (Slot& s : slots_)
      if (s.copy) KMEANS_CUDA_TRY_NOTHROW(cudaStreamSynchronize(s.copy->get()));
  }

  Backend kind() const override { return Backend::Cuda; }

  std::size_t device_bytes() const override {
    std::size_t b = 0;
    for (const Slot& s : slots_) b += s.dx.bytes() + s.dw.bytes();
    for (const auto& e : full_)
      if (e) b += e->device_bytes();
    if (short_) b += short_->device_bytes();
    return b;
  }

 private:
  using ChunkedEngine<T>::c_;
  using ChunkedEngine<T>::w_;

  void for_each_chunk(const typename ChunkedEngine<T>::ChunkFn& fn) override { run_pass(fn); }

  struct Slot {
    PinnedBuffer<T> hx, hw;  // staging: filled on the host by the fill thread
    DeviceBuffer<T> dx, dw;  // the chunk on the device, read by the shard engine
    std::unique_ptr<cuda::Stream> copy;
    std::unique_ptr<cuda::Event> uploaded;  // staging read, device buffer written
    std::unique_ptr<cuda::Event> computed;  // the shard engine's last reads of the buffer
    std::int64_t resident = -1;             // the chunk the device buffer holds (n_chunks <= 2)
  };

  std::int64_t rows_of(std::int64_t i) const {
    return std::min(c_.chunk_rows(), c_.n() - i * c_.chunk_rows());
  }

  /// One pass over the chunks: on_chunk(engine, first, rows) on the shard engine bound to each
  /// chunk's device buffer, in chunk order (ChunkPipeline: fill, upload, compute overlap).
  /// With one or two chunks the data stays in the device buffers after the first pass.
  template <class F>
  void run_pass(F&& on_chunk) {
    cuda::DeviceGuard guard(device_);
    const std::int64_t n_chunks = c_.n_chunks(), d = c_.d();
    const bool keep = n_chunks <= 2;
    ChunkPipeline::Steps steps;
    steps.fill = [&](std::int64_t i, int s) {
      Slot& slot = slots_[s];
      if (keep && slot.resident == i) return;
      const std::int64_t rows = c_.copy_chunk(i, slot.hx.get());
      if (w_)
        std::memcpy(slot.hw.get(), w_ + i * c_.chunk_rows(),
                    static_cast<std::size_t>(rows) * sizeof(T));
    };
    steps.wait_staging = [&](int s) {
      // The fill thread's own device: cudaEventSynchronize needs none, but keep it explicit.
      KMEANS_CUDA_TRY(cudaSetDevice(device_));
      KMEANS_CUDA_TRY(cudaEventSynchronize(slots_[s].uploaded->get()));
    };
    steps.upload = [&](std::int64_t i, int s) {
      Slot& slot = slots_[s];
      if (keep && slot.resident == i) return;
      const cudaStream_t cs = slot.copy->get();
      const std::size_t rows = static_cast<std::size_t>(rows_of(i));
      // The buffer's previous chunk is done with on the device before it is overwritten.
      KMEANS_CUDA_TRY(cudaStreamWaitEvent(cs, slot.computed->get(), 0));
      KMEANS_CUDA_TRY(cudaMemcpyAsync(slot.dx.get(), slot.hx.get(),
                                      rows * static_cast<std::size_t>(d) * sizeof(T),
                                      cudaMemcpyHostToDevice, cs));
      if (w_)
        KMEANS_CUDA_TRY(cudaMemcpyAsync(slot.dw.get(), slot.hw.get(), rows * sizeof(T),
                                        cudaMemcpyHostToDevice, cs));
      KMEANS_CUDA_TRY(cudaEventRecord(slot.uploaded->get(), cs));
      slot.resident = keep ? i : -1;
    };
    steps.compute = [&](std::int64_t i, int s) {
      const std::int64_t rows = rows_of(i);
      cuda::CudaShardEngine<T>& e = bind(s, i, rows);
      on_chunk(static_cast<ShardEngine<T>&>(e), i * c_.chunk_rows(), rows);
      KMEANS_CUDA_TRY(cudaEventRecord(slots_[s].computed->get(),
                                      static_cast<cudaStream_t>(e.stream())));
    };
    ChunkPipeline::run(n_chunks, steps);
  }

  /// The shard engine of slot s bound to chunk i: one per device buffer (a short last chunk has
  /// its own), rebound at the same pointer (its graphs stay) unless it holds chunk i already.
  /// v.stream is the slot's copy stream: the engine orders its reads after the upload.
  cuda::CudaShardEngine<T>& bind(int s, std::int64_t i, std::int64_t rows) {
    Slot& slot = slots_[s];
    const DataView<T> v{slot.dx.get(), w_ ? slot.dw.get() : nullptr, rows, c_.d(), n_threads_,
                        slot.copy->get()};
    const bool full = rows == c_.chunk_rows();
    std::unique_ptr<cuda::CudaShardEngine<T>>& e = full ? full_[s] : short_;
    std::int64_t& holds = full ? holds_[s] : short_holds_;
    if (e && holds == i && slot.resident == i) return *e;  // data kept on the device
    if (!e || !e->rebind(v)) {
      e.reset();
      e = cuda::make_cuda_shard_engine<T>(v, 0, /*validated=*/true);
      e->keep_centre();  // the first chunk's mean centres every chunk (shard_engine.hpp)
    }
    holds = i;
    return *e;
  }

  int n_threads_;
  int device_ = 0;
  Slot slots_[2];
  std::unique_ptr<cuda::CudaShardEngine<T>> full_[2];  // after the buffers: destroyed first
  std::unique_ptr<cuda::CudaShardEngine<T>> short_;
  std::int64_t holds_[2] = {-1, -1};
  std::int64_t short_holds_ = -1;
};

}  // namespace

CudaStreamDevice cuda_stream_device() {
  CudaStreamDevice out;
  if (!cuda_available(&out.why)) return out;
  int device = 0;
  std::size_t free_b = 0, total_b = 0;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&out.sm_count, cudaDevAttrMultiProcessorCount, device) !=
          cudaSuccess ||
      cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) {
    const cudaError_t err = cudaGetLastError();
    out.why = std::string("cannot query device memory: ") + cudaGetErrorString(err);
    return out;
  }
  const std::size_t cap = cuda_free_memory_cap();
  out.free_bytes = cap ? std::min(free_b, cap) : free_b;
  out.usable = true;
  return out;
}

template <class T>
std::unique_ptr<Engine<T>> make_cuda_stream_engine(Chunks<T>& chunks, const T* w, int n_threads,
                                                   DataOps<T>* ops) {
  std::string why;
  if (!cuda_available(&why)) throw Error("backend = cuda requested, but " + why);
  return std::make_unique<CudaStreamEngine<T>>(chunks, w, n_threads, ops);
}

template std::unique_ptr<Engine<float>> make_cuda_stream_engine(Chunks<float>&, const float*, int,
                                                                DataOps<float>*);
template std::unique_ptr<Engine<double>> make_cuda_stream_engine(Chunks<double>&, const double*,
                                                                 int, DataOps<double>*);

}  // namespace kmeans::detail::stream
