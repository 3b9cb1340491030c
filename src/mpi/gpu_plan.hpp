// SPDX-License-Identifier: Apache-2.0
// Which engine and combine a distributed fit uses, agreed by every rank: the backend (Auto:
// CUDA when every rank has a usable GPU), each rank's device, and host or NCCL combine.
#pragma once

#include <cstddef>
#include <cstdint>

#include "cuda/nccl_combine.hpp"
#include "kmeans/kmeans.hpp"
#include "kmeans/mpi.hpp"
#include "mpi/comm.hpp"

namespace kmeans::mpi::detail {

namespace cuda = kmeans::detail::cuda;

/// Auto picks the NCCL combine from this many doubles per node row (k (d + 1) + 1) on: 32768
/// doubles = 256 KiB, where the host combine's device-to-host copies and host messages are
/// bandwidth-bound while NCCL's per-call latency (~10-20 us, a few calls per pass) is paid
/// back. Not measured yet (no multi-GPU machine here): bench/NOTES.md has the model.
constexpr std::int64_t kNcclAutoWidth = 32768;

struct GpuPlan {
  Backend backend = Backend::Cpu;   ///< Cpu or Cuda
  Combine combine = Combine::Host;  ///< Host or Nccl
  int device = -1;                  ///< this rank's device (Cuda)
  cuda::NcclId nccl_id{};           ///< rank 0's, on every rank (Nccl)
};

/// The combine a caller asked for: `requested` unless Auto, then KMEANS_MPI_COMBINE (host,
/// nccl, auto; another value is a kmeans::Error naming it).
Combine requested_combine(Combine requested);

/// Collective. Every rank's own check (device usable, working set fits, NCCL loads, GPU not
/// shared) agreed: Backend::Cuda without a usable GPU on some rank, or Combine::Nccl where it
/// cannot run, throws on every rank. n_local x d points of elem_size bytes, k clusters: the
/// working set each GPU must hold, and the node row width k (d + 1) + 1 of Auto's rule.
GpuPlan plan_gpus(const Comm& c, Backend requested, Combine combine, std::int64_t n_local,
                  std::int64_t d, int k, std::size_t elem_size);

}  // namespace kmeans::mpi::detail
