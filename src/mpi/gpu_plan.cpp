// SPDX-License-Identifier: Apache-2.0
// plan_gpus (gpu_plan.hpp): node-local ranks (MPI_Comm_split_type), device choice, the agreed
// backend, GPUs shared between ranks (their UUIDs), and the NCCL unique id from rank 0.
#include "mpi/gpu_plan.hpp"

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#if defined(KMEANS_WITH_CUDA)
#include "cuda/rank_gpu.hpp"
#endif

namespace kmeans::mpi {

const char* to_string(Combine c) {
  switch (c) {
    case Combine::Auto: return "auto";
    case Combine::Host: return "host";
    case Combine::Nccl: return "nccl";
  }
  return "unknown";
}

namespace detail {

Combine requested_combine(Combine requested) {
  if (requested != Combine::Auto) return requested;
  const char* env = std::getenv("KMEANS_MPI_COMBINE");
  if (env == nullptr || *env == '\0') return Combine::Auto;
  const std::string v = env;
  if (v == "auto") return Combine::Auto;
  if (v == "host") return Combine::Host;
  if (v == "nccl") return Combine::Nccl;
  throw Error("KMEANS_MPI_COMBINE = '" + v + "' is unknown: expected host, nccl or auto");
}

namespace {

/// The ranks of this rank's node (shared memory), freed with the object (collective: every
/// rank leaves plan_gpus at the same step, by its end or by the same agreed error).
struct NodeComm {
  MPI_Comm comm = MPI_COMM_NULL;
  int rank = 0;
  int size = 1;
  explicit NodeComm(const Comm& c) {
    MPI_Comm_split_type(c.comm, MPI_COMM_TYPE_SHARED, c.rank, MPI_INFO_NULL, &comm);
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
  }
  ~NodeComm() {
    if (comm != MPI_COMM_NULL) MPI_Comm_free(&comm);
  }
  NodeComm(const NodeComm&) = delete;
  NodeComm& operator=(const NodeComm&) = delete;
};

}  // namespace

GpuPlan plan_gpus(const Comm& c, Backend requested, Combine combine_in, std::int64_t n_local,
                  std::int64_t d, int k, std::size_t elem_size) {
  GpuPlan plan;
  // The request, rank 0's (the environment may differ between ranks).
  int req = 0;
  agree(c.comm, [&] { req = static_cast<int>(requested_combine(combine_in)); });
  MPI_Bcast(&req, 1, MPI_INT, 0, c.comm);
  const auto combine = static_cast<Combine>(req);
  if (requested == Backend::Cpu) {
    agree(c.comm, [&] {
      if (combine == Combine::Nccl)
        throw Error("combine = nccl merges the passes on the GPUs: it needs backend = cuda "
                    "(or auto with a GPU on every rank), not cpu");
    });
    return plan;
  }
  // Each rank's GPU and whether it holds the rank's working set.
  const NodeComm node(c);
  const int local_rank = node.rank;
  std::string why;
  int usable = 0;
#if defined(KMEANS_WITH_CUDA)
  try {
    plan.device = cuda::rank_device(local_rank, &why);
    usable = plan.device >= 0 &&
             cuda::rank_device_fits(plan.device, n_local, d, k, elem_size, &why);
  } catch (const std::exception& e) {
    why = e.what();
    usable = 0;
  }
#else
  (void)local_rank, (void)n_local, (void)d, (void)k, (void)elem_size;
  (void)cuda_available(&why);
#endif
  int all_usable = usable;
  MPI_Allreduce(MPI_IN_PLACE, &all_usable, 1, MPI_INT, MPI_MIN, c.comm);
  if (requested == Backend::Auto && !all_usable) {
    agree(c.comm, [&] {
      if (combine == Combine::Nccl)
        throw Error("combine = nccl needs backend = cuda, but backend = auto runs the CPU "
                    "engine: not every rank has a usable GPU");
    });
    return plan;
  }
  agree(c.comm, [&] {
    if (!usable) throw Error("backend = cuda: " + why);
  });
  plan.backend = Backend::Cuda;
#if defined(KMEANS_WITH_CUDA)
  // Ranks of a node that share a GPU (NCCL takes one GPU per rank).
  const int node_size = node.size;
  std::array<unsigned char, 16> uuid{};
  agree(c.comm, [&] { uuid = cuda::device_uuid(plan.device); });
  std::vector<unsigned char> uuids(16 * static_cast<std::size_t>(node_size));
  MPI_Allgather(uuid.data(), 16, MPI_UNSIGNED_CHAR, uuids.data(), 16, MPI_UNSIGNED_CHAR,
                node.comm);
  int shared_with = -1;
  for (int q = 0; q < node_size && shared_with < 0; ++q)
    if (q != local_rank && std::memcmp(uuids.data() + 16 * q, uuid.data(), 16) == 0)
      shared_with = q;
  std::string nccl_why;
  const bool loads = cuda::nccl_loadable(&nccl_why);
  int flags[2] = {shared_with >= 0 ? 1 : 0, loads ? 0 : 1};  // any rank shares, any cannot load
  MPI_Allreduce(MPI_IN_PLACE, flags, 2, MPI_INT, MPI_MAX, c.comm);
  if (combine == Combine::Nccl) {
    agree(c.comm, [&] {
      if (!loads) throw Error("combine = nccl: " + nccl_why);
      if (shared_with >= 0)
        throw Error("combine = nccl needs one GPU per rank, but this rank shares " +
                    cuda::device_name(plan.device) + " with node-local rank " +
                    std::to_string(shared_with) +
                    " (NCCL refuses two ranks on one GPU): use combine = host or fewer ranks");
    });
    plan.combine = Combine::Nccl;
  } else if (combine == Combine::Auto) {
    const std::int64_t width = static_cast<std::int64_t>(k) * (d + 1) + 1;
    plan.combine = c.size > 1 && flags[0] == 0 && flags[1] == 0 && width >= kNcclAutoWidth
                       ? Combine::Nccl
                       : Combine::Host;
  }
  if (plan.combine == Combine::Nccl) {
    agree(c.comm, [&] {
      if (c.rank == 0) plan.nccl_id = cuda::nccl_unique_id();
    });
    MPI_Bcast(plan.nccl_id.data(), static_cast<int>(plan.nccl_id.size()), MPI_CHAR, 0, c.comm);
  }
#endif
  return plan;
}

}  // namespace detail
}  // namespace kmeans::mpi
