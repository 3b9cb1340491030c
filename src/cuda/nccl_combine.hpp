// SPDX-License-Identifier: Apache-2.0
// kmeans::mpi's device combine: the ranks' canonical tree nodes merged on the GPUs over NCCL
// (ncclSend / ncclRecv of node rows along the host combine's binomial tree, the sibling merges
// and rank 0's right fold by small kernels, ncclBroadcast of the totals). No CUDA, NCCL or MPI
// type appears here: kmeans::mpi (plain C++) includes it.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace kmeans::detail::cuda {

/// NCCL's unique id (the bytes of ncclUniqueId): made on one rank, passed to every rank.
using NcclId = std::array<char, 128>;

/// True when NCCL (libnccl.so.2) loads; else `why` says why.
bool nccl_loadable(std::string* why);

/// A new unique id (ncclGetUniqueId). Throws kmeans::Error when NCCL cannot be loaded or fails.
NcclId nccl_unique_id();

/// Bytes this rank moved in combines.
struct NcclTraffic {
  std::int64_t sent = 0;
  std::int64_t received = 0;
};

/// One rank's side of the combine over one NCCL communicator (owned). Rank q holds blocks
/// [first[q], end[q]) (first[q] == end[q] without rows); its rows are the values of
/// tree::decompose(first[q], end[q]), in order.
class NcclCombine {
 public:
  virtual ~NcclCombine() = default;
  /// Collective over the communicator. `local` (device memory, written in stream() order):
  /// this rank's node rows (width values each); `changed`: this rank's changed labels. On
  /// every rank, `total` (host, width + 1 values) receives the right fold of every rank's nodes
  /// merged in rank order (tree::NodeStack's bits) and then the total changed count. Returns
  /// once `total` is written; errors (CUDA's, NCCL's) are kmeans::Error.
  virtual void combine(const double* local, std::int64_t width, double changed, double* total,
                       NcclTraffic* traffic) = 0;
  /// The rows this rank's `local` must hold.
  virtual int local_rows() const = 0;
  /// The stream (a cudaStream_t) the combine's work is ordered on.
  virtual void* stream() const = 0;
};

/// Joins a new NCCL communicator of `size` ranks made from `id` (ncclCommInitRank: collective)
/// as `rank`, on `device`, ordered on `stream` (a cudaStream_t on that device; null: a stream of
/// its own). Buffers for rows of up to max_width values are allocated here.
std::unique_ptr<NcclCombine> make_nccl_combine(const NcclId& id, int rank, int size,
                                               const std::vector<std::int64_t>& first,
                                               const std::vector<std::int64_t>& end, int device,
                                               void* stream, std::int64_t max_width);

/// For one process driving several devices (tests; ncclCommInitAll): rank q on devices[q], each
/// on a stream of its own. combine() of each must then run on a thread of its own (the ranks'
/// sends and receives wait for each other); one device needs no threads.
std::vector<std::unique_ptr<NcclCombine>> make_nccl_combines_in_process(
    const std::vector<int>& devices, const std::vector<std::int64_t>& first,
    const std::vector<std::int64_t>& end, std::int64_t max_width);

/// For tests, without NCCL: the combine of first.size() ranks run on the current device, rank
/// by rank (highest first) with the same schedule and kernels, messages copied from device to
/// device. local[q]: rank q's node rows (host, width values each); changed[q] its count.
/// Returns the totals (width + 1 values) rank 0 would broadcast.
std::vector<double> combine_ranks_on_one_device(const std::vector<std::vector<double>>& local,
                                                std::int64_t width,
                                                const std::vector<std::int64_t>& first,
                                                const std::vector<std::int64_t>& end,
                                                const std::vector<double>& changed);

}  // namespace kmeans::detail::cuda
