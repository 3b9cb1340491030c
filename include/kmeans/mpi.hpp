// SPDX-License-Identifier: Apache-2.0
// kmeans::mpi: distributed Lloyd k-means, every MPI rank holding a shard of the rows; the result
// is bit for bit the single-process kmeans::fit of the concatenated data (library kmeans_mpi,
// CMake target kmeans::mpi, built when MPI is found).
#pragma once

#include <mpi.h>

#include <cstddef>
#include <cstdint>

#include "kmeans/kmeans.hpp"

namespace kmeans::mpi {

/// Rows per block of the canonical reduction order: every shard but the last must hold a
/// multiple of it for the bits to be partition-independent (fit refuses other shards).
constexpr std::size_t kBlockRows = 4096;

/// Init::KMeansPlusPlus and Init::KMeansParallel gather the whole data set to every rank (the
/// same bits as one process); fit refuses them when n * d * sizeof(T) exceeds this many bytes.
/// Init::Random and Init::Array are distributed and have no limit.
constexpr std::size_t kGatherInitLimitBytes = std::size_t{1} << 30;

/// A rank's rows [offset, offset + rows) of the global data.
struct Shard {
  std::size_t offset = 0;
  std::size_t rows = 0;
};

/// The default partition of n rows over `size` ranks: whole blocks of kBlockRows spread evenly
/// in rank order (the first ranks get one block fewer when they do not divide), the last rank
/// taking the partial block. Ranks may get no rows (n < size blocks).
KMEANS_API Shard shard_rows(std::size_t n, int rank, int size);

/// How the ranks of a Backend::Cuda fit combine each pass's tree nodes (the same adds in the
/// same order either way: the same bits).
enum class Combine {
  Auto,  ///< KMEANS_MPI_COMBINE (host, nccl or auto) when set, else Nccl when every rank has a
         ///< GPU of its own, NCCL loads and a node row is large (README), else Host.
  Host,  ///< Node rows copied to the host and merged there over MPI (always for Backend::Cpu).
  Nccl,  ///< Node rows merged on the GPUs over NCCL (libnccl.so.2, opened at run time).
};

/// "auto", "host" or "nccl".
KMEANS_API const char* to_string(Combine c);

/// Where a distributed fit's time and traffic went, on the calling rank.
struct CommStats {
  int passes = 0;                  ///< Assignment passes (iterations + final assignments).
  double compute_seconds = 0;      ///< The local passes (distances, argmin, block partials).
  double comm_seconds = 0;         ///< Combining the passes' tree nodes and broadcasting totals
                                   ///< (including waits for slower ranks, unless measure_wait).
  std::int64_t bytes_sent = 0;     ///< Bytes this rank sent in the passes' combines.
  std::int64_t bytes_received = 0; ///< Bytes it received there.
  double setup_seconds = 0;        ///< Shapes, validation, variance, weights (before init).
  /// Input: when true, every pass first waits at a barrier, timed as wait_seconds, so that
  /// comm_seconds is the combine alone, not the wait for slower ranks (for benchmarks: the
  /// barrier costs a round of latency per pass).
  bool measure_wait = false;
  double wait_seconds = 0;         ///< With measure_wait: the passes' barrier waits.
  /// Input: how a Backend::Cuda fit combines (Combine::Auto: see there). Combine::Nccl with the
  /// CPU engine, without NCCL or with two ranks on one GPU is an error.
  Combine combine = Combine::Auto;
  Combine combine_used = Combine::Host;  ///< What the fit used (Host or Nccl).
  int device = -1;                 ///< The rank's CUDA device, -1 on the CPU engine.
};

/// Clusters the rows held by all ranks of `comm` (collective: every rank calls it with its own
/// shard, the same d and the same params). Rank r holds global rows [offset_r, offset_r +
/// local_n) in rank order; every rank but the last must hold a multiple of kBlockRows rows (0
/// allowed). Params::sample_weight, when given, holds this rank's local_n weights; Params::
/// init_centroids are rank 0's; Params::on_iteration runs on every rank and must return the
/// same on all. Backend::Cpu runs the CPU engine on every rank; Backend::Cuda the CUDA engine,
/// rank r on device (its node-local rank) % (devices it sees); Backend::Auto is Cuda when every
/// rank has a usable GPU that holds its working set (agreed by all ranks), else Cpu. Only
/// Lloyd's algorithm (batch_size = 0) is supported.
///
/// Returns on every rank the single-process Result of the concatenated data, bit for bit
/// (centroids, inertia, SSE history, iterations, cluster sizes; the CUDA engine's sums are
/// formed in its own canonical order, so a Cuda fit equals the single-process Backend::Cuda
/// fit, a Cpu fit the Backend::Cpu one), except that `labels` holds
/// this rank's local_n labels only. A bad input or error on any rank throws, on every rank, one
/// kmeans::Error carrying the failing rank's message ("rank r: ..."), never a hang. Past the
/// checks the ranks run the same steps (an Error then is every rank's); another failure on one
/// rank during the iterations (std::bad_alloc; a CUDA or NCCL error in a pass on one of several
/// ranks) calls MPI_Abort rather than leave a hang.
template <class T>
KMEANS_API Result<T> fit(MPI_Comm comm, const T* local_data, std::size_t local_n, std::size_t d,
                         const Params<T>& p, CommStats* stats = nullptr);

/// Runs `fn` on every rank of `comm` and agrees on the outcome (collective): when it throws on
/// any rank, every rank throws one kmeans::Error with the lowest failing rank's message,
/// prefixed "rank r: ". For callers' own per-rank steps (reading a shard of a file, say).
KMEANS_API void agree(MPI_Comm comm, const std::function<void()>& fn);

}  // namespace kmeans::mpi
