// SPDX-License-Identifier: Apache-2.0
// The NCCL combine of kmeans::mpi: per pass, this rank's node rows are copied into its stack, the
// binomial tree's messages are received (ncclRecv) and merged by merge_kernel (the plan of
// kernels/node_merge.cuh), sent (ncclSend), and rank 0's right fold is broadcast (ncclBroadcast).
#include <cuda_runtime.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>

#include "cuda/nccl.hpp"
#include "cuda/nccl_combine.hpp"
#include "cuda/runtime.hpp"
#include "kernels/cuda_check.hpp"
#include "kernels/device_buffer.hpp"
#include "kernels/node_merge.cuh"

namespace kmeans::detail::cuda {
namespace {

static_assert(sizeof(NcclId) == sizeof(ncclUniqueId), "NcclId must hold ncclUniqueId");

constexpr int kThreads = 256;

/// stk[0, count) = local[0, count), then stk[count] = changed.
__global__ void start_kernel(double* stk, const double* local, std::int64_t count,
                             double changed) {
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
       i < count; i += stride)
    stk[i] = local[i];
  if (blockIdx.x == 0 && threadIdx.x == 0) stk[count] = changed;
}

/// One receive step: column e of the merge per thread; column 0's thread also carries the
/// changed count (stk[m * width] + in[r * width] to stk[n_keep * width]).
__global__ void merge_kernel(double* stk, double* in, std::int64_t width, const merge::MergePlan p) {
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t e = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
       e < width; e += stride) {
    if (e == 0) {
      const double c = merge::merged_changed(stk, in, width, p);
      merge::merge_column(stk, in, width, p, 0);
      stk[p.n_keep * width] = c;
    } else {
      merge::merge_column(stk, in, width, p, e);
    }
  }
}

/// tot[e] = the right fold of the m rows' column e; tot[width] = the changed count.
__global__ void fold_kernel(const double* stk, int m, std::int64_t width, double* tot) {
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t e = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
       e < width; e += stride)
    tot[e] = merge::fold_column(stk, m, width, e);
  if (blockIdx.x == 0 && threadIdx.x == 0) tot[width] = stk[m * width];
}

unsigned grid_for(std::int64_t count) {
  return static_cast<unsigned>(
      std::max<std::int64_t>(1, std::min<std::int64_t>(ceil_div(count, kThreads), 1024)));
}

class Combine final : public NcclCombine {
 public:
  /// Takes `comm` (destroyed with the object).
  Combine(ncclComm_t comm, int rank, int size, const std::vector<std::int64_t>& first,
          const std::vector<std::int64_t>& end, int device, cudaStream_t stream,
          std::int64_t max_width)
      : comm_(comm), rank_(rank), size_(size), device_(device),
        schedule_(merge::tree_schedule(rank, size, first, end)) {
    DeviceGuard guard(device_);
    if (stream == nullptr) {
      own_stream_ = std::make_unique<Stream>();
      stream = own_stream_->get();
    }
    stream_ = stream;
    const auto w = static_cast<std::size_t>(std::max<std::int64_t>(max_width, 1));
    const auto rows = static_cast<std::size_t>(std::max(schedule_.max_stack_rows, schedule_.final_rows));
    stk_.allocate(rows * w + 1, "NCCL combine: node stack");
    in_.allocate(static_cast<std::size_t>(schedule_.max_in_rows) * w + 1, "NCCL combine: received nodes");
    tot_.allocate(w + 1, "NCCL combine: totals");
    max_width_ = static_cast<std::int64_t>(w);
    // Poisoned: a value no kernel or receive wrote shows up as NaN.
    KMEANS_CUDA_TRY(cudaMemsetAsync(stk_.get(), 0xFF, stk_.bytes(), stream_));
    KMEANS_CUDA_TRY(cudaMemsetAsync(in_.get(), 0xFF, in_.bytes(), stream_));
    KMEANS_CUDA_TRY(cudaMemsetAsync(tot_.get(), 0xFF, tot_.bytes(), stream_));
    KMEANS_CUDA_TRY(cudaStreamSynchronize(stream_));
  }

  ~Combine() override {
    if (comm_) {
      DeviceGuard guard(device_);
      const NcclApi* api = nccl_api();
      if (api) (void)api->comm_destroy(comm_);
    }
  }

  int local_rows() const override { return schedule_.local_rows; }
  void* stream() const override { return stream_; }

  void combine(const double* local, std::int64_t width, double changed, double* total,
               NcclTraffic* traffic) override {
    if (width < 1 || width > max_width_)
      throw Error("NCCL combine: row width " + std::to_string(width) + " outside [1, " +
                  std::to_string(max_width_) + "]");
    const NcclApi& api = nccl();
    DeviceGuard guard(device_);
    double* stk = stk_.get();
    double* in = in_.get();
    const std::int64_t local_count = schedule_.local_rows * width;
    if (local_count > 0 && local == nullptr)
      throw Error("NCCL combine: no node rows given for " + std::to_string(schedule_.local_rows) +
                  " nodes");
    start_kernel<<<grid_for(local_count), kThreads, 0, stream_>>>(stk, local, local_count, changed);
    KMEANS_CUDA_CHECK_LAUNCH(stream_);
    int rows = schedule_.local_rows;
    NcclTraffic t;
    for (const merge::TreeStep& s : schedule_.steps) {
      const std::size_t count = static_cast<std::size_t>(s.rows * width + 1);
      if (s.send) {
        KMEANS_NCCL_TRY(api.send(stk, count, ncclDouble, s.peer, comm_, stream_));
        t.sent += static_cast<std::int64_t>(count * sizeof(double));
        break;
      }
      KMEANS_NCCL_TRY(api.recv(in, count, ncclDouble, s.peer, comm_, stream_));
      t.received += static_cast<std::int64_t>(count * sizeof(double));
      merge_kernel<<<grid_for(width), kThreads, 0, stream_>>>(stk, in, width, s.plan);
      KMEANS_CUDA_CHECK_LAUNCH(stream_);
      rows = s.plan.n_keep;
    }
    if (rank_ == 0) {
      fold_kernel<<<grid_for(width), kThreads, 0, stream_>>>(stk, rows, width, tot_.get());
      KMEANS_CUDA_CHECK_LAUNCH(stream_);
    }
    const auto tot_count = static_cast<std::size_t>(width + 1);
    KMEANS_NCCL_TRY(api.broadcast(tot_.get(), tot_.get(), tot_count, ncclDouble, 0, comm_, stream_));
    if (rank_ == 0)
      t.sent += static_cast<std::int64_t>(tot_count * sizeof(double));
    else
      t.received += static_cast<std::int64_t>(tot_count * sizeof(double));
    KMEANS_CUDA_TRY(cudaMemcpyAsync(total, tot_.get(), tot_count * sizeof(double),
                                    cudaMemcpyDeviceToHost, stream_));
    const cudaError_t sync = cudaStreamSynchronize(stream_);
    ncclResult_t async = ncclSuccess;
    KMEANS_NCCL_TRY(api.comm_get_async_error(comm_, &async));
    KMEANS_NCCL_TRY(async);
    KMEANS_CUDA_TRY(sync);
    if (traffic) {
      traffic->sent += t.sent;
      traffic->received += t.received;
    }
  }

 private:
  ncclComm_t comm_ = nullptr;
  int rank_ = 0;
  int size_ = 1;
  int device_ = 0;
  merge::Schedule schedule_;
  std::unique_ptr<Stream> own_stream_;
  cudaStream_t stream_ = nullptr;
  std::int64_t max_width_ = 1;
  DeviceBuffer<double> stk_, in_, tot_;
};

void check_ranks(int rank, int size, const std::vector<std::int64_t>& first,
                 const std::vector<std::int64_t>& end) {
  if (size < 1 || rank < 0 || rank >= size || first.size() != static_cast<std::size_t>(size) ||
      end.size() != static_cast<std::size_t>(size))
    throw Error("NCCL combine: rank " + std::to_string(rank) + " of " + std::to_string(size) +
                " with " + std::to_string(first.size()) + " block ranges");
}

}  // namespace

bool nccl_loadable(std::string* why) { return nccl_api(why) != nullptr; }

NcclId nccl_unique_id() {
  ncclUniqueId id;
  KMEANS_NCCL_TRY(nccl().get_unique_id(&id));
  NcclId out;
  std::memcpy(out.data(), &id, sizeof id);
  return out;
}

std::unique_ptr<NcclCombine> make_nccl_combine(const NcclId& id, int rank, int size,
                                               const std::vector<std::int64_t>& first,
                                               const std::vector<std::int64_t>& end, int device,
                                               void* stream, std::int64_t max_width) {
  check_ranks(rank, size, first, end);
  const NcclApi& api = nccl();
  ncclUniqueId uid;
  std::memcpy(&uid, id.data(), sizeof uid);
  ncclComm_t comm = nullptr;
  {
    DeviceGuard guard(device);
    KMEANS_NCCL_TRY(api.comm_init_rank(&comm, size, uid, rank));
  }
  try {
    return std::make_unique<Combine>(comm, rank, size, first, end, device,
                                     static_cast<cudaStream_t>(stream), max_width);
  } catch (...) {
    // Combine's constructor failed before it owned the communicator.
    DeviceGuard guard(device);
    (void)api.comm_destroy(comm);
    throw;
  }
}

std::vector<std::unique_ptr<NcclCombine>> make_nccl_combines_in_process(
    const std::vector<int>& devices, const std::vector<std::int64_t>& first,
    const std::vector<std::int64_t>& end, std::int64_t max_width) {
  const int size = static_cast<int>(devices.size());
  check_ranks(0, size, first, end);
  const NcclApi& api = nccl();
  std::vector<ncclComm_t> comms(devices.size(), nullptr);
  KMEANS_NCCL_TRY(api.comm_init_all(comms.data(), size, devices.data()));
  std::vector<std::unique_ptr<NcclCombine>> out;
  std::size_t taken = 0;
  try {
    for (; taken < comms.size(); ++taken)
      out.push_back(std::make_unique<Combine>(comms[taken], static_cast<int>(taken), size, first,
                                              end, devices[taken], nullptr, max_width));
  } catch (...) {
    for (std::size_t q = taken; q < comms.size(); ++q) (void)api.comm_destroy(comms[q]);
    throw;
  }
  return out;
}

std::vector<double> combine_ranks_on_one_device(const std::vector<std::vector<double>>& local,
                                                std::int64_t width,
                                                const std::vector<std::int64_t>& first,
                                                const std::vector<std::int64_t>& end,
                                                const std::vector<double>& changed) {
  const int size = static_cast<int>(first.size());
  check_ranks(0, size, first, end);
  if (local.size() != first.size() || changed.size() != first.size() || width < 1)
    throw Error("combine_ranks_on_one_device: one row set and count per rank, width >= 1");
  Stream stream;
  const cudaStream_t s = stream.get();
  std::vector<DeviceBuffer<double>> message(first.size());
  std::vector<double> total(static_cast<std::size_t>(width) + 1);
  for (int r = size - 1; r >= 0; --r) {
    const merge::Schedule sc = merge::tree_schedule(r, size, first, end);
    const auto& rows_in = local[static_cast<std::size_t>(r)];
    if (static_cast<std::int64_t>(rows_in.size()) != sc.local_rows * width)
      throw Error("combine_ranks_on_one_device: rank " + std::to_string(r) + " needs " +
                  std::to_string(sc.local_rows) + " rows");
    const auto cap = static_cast<std::size_t>(std::max(sc.max_stack_rows, sc.final_rows));
    DeviceBuffer<double> stk(cap * width + 1, "stack"), in(sc.max_in_rows * width + 1, "in"),
        rows(std::max<std::size_t>(rows_in.size(), 1), "local rows"), tot(width + 1, "totals");
    for (auto* b : {&stk, &in, &tot})
      KMEANS_CUDA_TRY(cudaMemsetAsync(b->get(), 0xFF, b->bytes(), s));
    KMEANS_CUDA_TRY(cudaMemcpyAsync(rows.get(), rows_in.data(), rows_in.size() * sizeof(double),
                                    cudaMemcpyHostToDevice, s));
    const std::int64_t count = sc.local_rows * width;
    start_kernel<<<grid_for(count), kThreads, 0, s>>>(stk.get(), rows.get(), count,
                                                      changed[static_cast<std::size_t>(r)]);
    KMEANS_CUDA_CHECK_LAUNCH(s);
    int held = sc.local_rows;
    for (const merge::TreeStep& t : sc.steps) {
      const std::size_t n = static_cast<std::size_t>(t.rows * width + 1);
      if (t.send) {
        message[static_cast<std::size_t>(r)].allocate(n, "message");
        KMEANS_CUDA_TRY(cudaMemcpyAsync(message[static_cast<std::size_t>(r)].get(), stk.get(),
                                        n * sizeof(double), cudaMemcpyDeviceToDevice, s));
        break;
      }
      const DeviceBuffer<double>& m = message[static_cast<std::size_t>(t.peer)];
      if (m.size() != n) throw Error("combine_ranks_on_one_device: message size mismatch");
      KMEANS_CUDA_TRY(cudaMemcpyAsync(in.get(), m.get(), n * sizeof(double),
                                      cudaMemcpyDeviceToDevice, s));
      merge_kernel<<<grid_for(width), kThreads, 0, s>>>(stk.get(), in.get(), width, t.plan);
      KMEANS_CUDA_CHECK_LAUNCH(s);
      held = t.plan.n_keep;
    }
    if (r == 0) {
      fold_kernel<<<grid_for(width), kThreads, 0, s>>>(stk.get(), held, width, tot.get());
      KMEANS_CUDA_CHECK_LAUNCH(s);
      KMEANS_CUDA_TRY(cudaMemcpyAsync(total.data(), tot.get(), total.size() * sizeof(double),
                                      cudaMemcpyDeviceToHost, s));
    }
    KMEANS_CUDA_TRY(cudaStreamSynchronize(s));  // before this rank's buffers go
  }
  return total;
}

}  // namespace kmeans::detail::cuda
