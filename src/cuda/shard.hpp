// SPDX-License-Identifier: Apache-2.0
// The CUDA engine over one shard of a larger data set (a chunk of a streamed fit, an MPI rank's
// rows): its passes' sums as the canonical tree nodes (tree_sum.hpp), on the host or on the device.
//
// Canonical order on the GPU (the same for every grid, device, chunking and rank count):
//   sub-tile = 256 consecutive points (global index multiple of 256); its value for cluster c and
//     column j is the sum, in point order, starting from +0.0, of w_p * x_p[j] (j < d) or w_p
//     (j = d) over its points labelled c, in double (w_p = 1.0 without weights);
//   leaf = kReduceBlock (4096) points = 16 sub-tiles; its value = ((0 + S_0) + S_1) + ... + S_15;
//   total = the dyadic tree over leaves of tree_sum.hpp (an empty leaf is +0.0, which adds
//     exactly, so a sparse evaluation over the non-empty leaves gives the dense tree's bits).
//   The SSE has the same structure with w_p * double(dist_p) per point; changed counts are exact.
// The CPU engine forms its sums in the same order (src/cpu_accumulate.hpp), so with the same
// labels and distances the two give the same bits; every CUDA fit (in memory, streamed, on P
// ranks) gives the same bits.
#pragma once

#include <cstdint>
#include <memory>

#include "shard_engine.hpp"

namespace kmeans::detail::cuda {

template <class T>
class CudaShardEngine : public ShardEngine<T> {
 public:
  /// The CUDA device the engine runs on, and its stream (a cudaStream_t) on which all its work is
  /// ordered.
  virtual int device() const = 0;
  virtual void* stream() const = 0;
  /// As assign_nodes, but the nodes().size() rows of node values (same width and layout as
  /// assign_nodes' `out`) stay in device memory: the returned pointer is valid until the next
  /// pass or rebind and is written in stream() order (the call returns once they are written).
  /// StepStats as assign_nodes'.
  virtual const double* assign_nodes_device(const T* centroids, int k, bool with_sums,
                                            StepStats* stats) = 0;
};

/// The CUDA engine over rows [first_block * kReduceBlock, + v.n) of a larger data set (every
/// shard but the last a whole number of blocks), on the current device. v.data is host memory
/// (copied once) or device memory (used in place; v.stream orders it as Options::cuda_stream).
/// `validated`: device data the caller has already checked (finite, in range) is not checked
/// again at construction and at each rebind. Throws kmeans::Error when no device is usable.
template <class T>
std::unique_ptr<CudaShardEngine<T>> make_cuda_shard_engine(const DataView<T>& v,
                                                           std::int64_t first_block,
                                                           bool validated = false);

}  // namespace kmeans::detail::cuda
