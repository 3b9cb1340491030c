// SPDX-License-Identifier: Apache-2.0
// The streamed fit on the GPU: the CUDA stream engine (cuda_stream_engine.cpp) and the rule that
// sizes its device chunks from free device memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "engine.hpp"
#include "kernels/tuning.cuh"
#include "stream/chunks.hpp"

namespace kmeans::detail::stream {

/// Share of the free device memory, less tuning::kWorkingSetMarginBytes (as Auto's rule leaves),
/// that the streamed fit's device buffers and shard engines may take (the rest: estimate
/// error, other users, CUDA's own pools).
constexpr double kCudaStreamMemoryShare = 0.75;
/// Data per device chunk buffer at most: the pipeline's grain. Its fill and drain (the first
/// chunk's copy, the last chunk's compute) cost one chunk each per pass, so smaller is better
/// down to where per-chunk costs (a synchronisation, a graph launch, the labels' download)
/// show; 256 MiB is 5 ms at 50 GB/s.
constexpr std::size_t kCudaStreamMaxChunkBytes = std::size_t{256} << 20;

/// Device bytes of one CUDA shard engine over `rows` rows of device data (the data is not
/// counted): the engine's working set (with its canonical leaf rows, tuning.cuh), plus its
/// node rows (k * (d + 1) + 1 doubles for each node of the decomposition: at most
/// 2 log2(blocks) + 2).
inline std::size_t cuda_shard_engine_bytes(std::int64_t rows, std::int64_t d, int k,
                                           std::size_t elem, int sm_count) {
  const std::int64_t blocks = (rows + kReduceBlock - 1) / kReduceBlock;
  std::size_t nodes = 2;
  for (std::int64_t b = 1; b < blocks; b *= 2) nodes += 2;
  return tuning::working_set_bytes(rows, d, k, elem, true, sm_count) +
         nodes * (static_cast<std::size_t>(k) * static_cast<std::size_t>(d + 1) + 1) *
             sizeof(double);
}

/// Device bytes of the CUDA stream engine with chunks of `chunk_rows` rows: two chunk buffers
/// (data, and weights when weighted) and three shard engines (one per buffer, one for a short
/// last chunk).
inline std::size_t cuda_stream_device_bytes(std::int64_t chunk_rows, std::int64_t d, int k,
                                            std::size_t elem, bool weighted, int sm_count) {
  const auto rows = static_cast<std::size_t>(chunk_rows);
  return 2 * rows * (static_cast<std::size_t>(d) + (weighted ? 1 : 0)) * elem +
         3 * cuda_shard_engine_bytes(chunk_rows, d, k, elem, sm_count);
}

/// The device chunk in blocks: the largest power of two whose cuda_stream_device_bytes fit in
/// kCudaStreamMemoryShare of `free_bytes` - kWorkingSetMarginBytes, whose data per buffer stays within
/// kCudaStreamMaxChunkBytes (one block at least) and that n needs (no larger than the power of
/// two covering n's blocks). 0 when not even one block fits.
inline std::int64_t cuda_stream_chunk_blocks(std::int64_t n, std::int64_t d, int k,
                                             std::size_t elem, bool weighted,
                                             std::size_t free_bytes, int sm_count) {
  const std::size_t margin = tuning::kWorkingSetMarginBytes;
  const double budget =
      free_bytes > margin ? kCudaStreamMemoryShare * static_cast<double>(free_bytes - margin) : 0;
  const double block_bytes = static_cast<double>(kReduceBlock) * static_cast<double>(d) *
                             static_cast<double>(elem);
  std::int64_t blocks = 1;
  while (static_cast<double>(blocks * 2) * block_bytes <=
         static_cast<double>(kCudaStreamMaxChunkBytes))
    blocks *= 2;
  const std::int64_t n_blocks = (n + kReduceBlock - 1) / kReduceBlock;
  while (blocks / 2 >= n_blocks) blocks /= 2;
  const auto need = [&](std::int64_t b) {
    return static_cast<double>(
        cuda_stream_device_bytes(b * kReduceBlock, d, k, elem, weighted, sm_count));
  };
  while (blocks > 1 && need(blocks) > budget) blocks /= 2;
  return need(blocks) <= budget ? blocks : 0;
}

/// The device a streamed fit would use: whether the CUDA backend is usable (else `why`), the
/// current device's free memory (under the test cap, set_cuda_free_memory_cap) and SM count.
struct CudaStreamDevice {
  bool usable = false;
  std::string why;
  std::size_t free_bytes = 0;
  int sm_count = 0;
};
CudaStreamDevice cuda_stream_device();

/// The streamed engine on the GPU over chunks of 2^m whole blocks (chunks.chunk_rows()): each
/// chunk goes host -> pinned staging -> device buffer (two of each, on two copy streams)
/// while the previous chunk is computed by a CUDA shard engine bound to its buffer; the
/// chunks' canonical nodes merged in block order give the in-memory CUDA fit's sums.
/// `ops` is its data_ops() (the host's chunked DataOps). Throws kmeans::Error when the CUDA
/// backend is not built or no device is usable.
template <class T>
std::unique_ptr<Engine<T>> make_cuda_stream_engine(Chunks<T>& chunks, const T* w, int n_threads,
                                                   DataOps<T>* ops);

}  // namespace kmeans::detail::stream
