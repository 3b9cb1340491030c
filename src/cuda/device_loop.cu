// SPDX-License-Identifier: Apache-2.0
// The CUDA engine's device Lloyd loop (Engine::run_lloyd): for small fits the driver's loop runs
// on the device in batches of tuning::kDeviceLoopBatch iterations, each iteration the pass with
// sums (no upload, no download) and the step kernel (kernels/device_loop.cuh: the farthest
// points when clusters are empty, kernels/farthest.cuh's selection, then lloyd_step.hpp's
// arithmetic, the host loop's bits); a batch is captured once into a CUDA graph and replayed, and the host
// reads the done flag once per batch. KMEANS_CUDA_DEVICE_LOOP=0 turns it off (the host loop).
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "cuda/engine.cuh"
#include "internal.hpp"
#include "kernels/device_loop.cuh"
#include "kernels/layout.cuh"
#include "kernels/tuning.cuh"

namespace kmeans::detail::cuda {

namespace tn = tuning;
namespace dl = device_loop;

namespace {

/// KMEANS_CUDA_DEVICE_LOOP: unset or 1 = the size rule, 0 = never (the host loop).
bool device_loop_allowed() {
  const char* v = std::getenv("KMEANS_CUDA_DEVICE_LOOP");
  if (!v || !*v || std::strcmp(v, "1") == 0) return true;
  if (std::strcmp(v, "0") == 0) return false;
  throw Error(std::string("KMEANS_CUDA_DEVICE_LOOP = '") + v + "' is not 0 or 1");
}

}  // namespace

template <class T>
void CudaEngine<T>::enqueue_loop_batch(int iters) {
  const cudaStream_t s = stream_.get();
  const int k = plan_.k;
  dl::StepView<T> v;
  v.x = d_x_;
  v.w = d_w_;
  v.c = d_centroids_.get();
  v.totals = d_totals_.get();
  v.k = k;
  v.d = v_.d;
  const std::size_t max_iter = d_loop_hist_.size() / 2;
  v.sse = d_loop_hist_.get();
  v.imbalance = d_loop_hist_.get() + max_iter;
  v.state = d_loop_state_.get();
  for (int i = 0; i < iters; ++i) {
    enqueue_pass(1 | 4);
    dl::step_kernel<T><<<1, tn::kFarthestThreads, 0, s>>>(v, d_dist_.get(), d_labels_.get(), v_.n);
    KMEANS_CUDA_CHECK_LAUNCH(s);
  }
}

template <class T>
bool CudaEngine<T>::run_lloyd(T* centroids, int k, int max_iter, double tol, LloydTrace& out) {
  if (first_block_ != 0 || !tn::use_device_loop(v_.n, v_.d, k, max_iter) ||
      !device_loop_allowed())
    return false;
  ProfileRange range("kmeans::device_loop");
  DeviceGuard guard(device_);
  if (k != plan_.k) configure(k);
  const cudaStream_t s = stream_.get();
  const auto kd = static_cast<std::size_t>(k) * static_cast<std::size_t>(v_.d);
  // Buffers (grow only); a graph holding an old pointer, or another history length, goes.
  const void* before = d_loop_state_.get();
  grow(d_loop_state_, dl::kSlots, "device loop state");
  if (d_loop_state_.get() != before) loop_graph_.reset();
  if (d_loop_hist_.size() != 2 * static_cast<std::size_t>(max_iter)) {
    loop_graph_.reset();  // its imbalance offset is max_iter, whatever the address
    d_loop_hist_.allocate(2 * static_cast<std::size_t>(max_iter), "device loop history");
    KMEANS_CUDA_TRY(cudaMemsetAsync(d_loop_hist_.get(), 0xFF, d_loop_hist_.bytes(), s));
  }
  if (h_loop_state_.size() == 0) h_loop_state_.allocate(dl::kSlots, "device loop state (pinned)");
  const int batch = std::min(max_iter, tn::kDeviceLoopBatch);
  if (loop_graph_iters_ != batch) loop_graph_.reset();

  std::int64_t* st = h_loop_state_.get();
  std::fill(st, st + dl::kSlots, 0);
  st[dl::kMaxIter] = max_iter;
  std::memcpy(&st[dl::kTolBits], &tol, sizeof tol);
  KMEANS_CUDA_TRY(cudaMemcpyAsync(d_loop_state_.get(), st, dl::kSlots * sizeof(std::int64_t),
                                  cudaMemcpyHostToDevice, s));
  std::memcpy(h_centroids_.get(), centroids, kd * sizeof(T));
  KMEANS_CUDA_TRY(cudaMemcpyAsync(d_centroids_.get(), h_centroids_.get(), kd * sizeof(T),
                                  cudaMemcpyHostToDevice, s));
  h_dist_valid_ = false;
  // Each batch ends with the state's download; the stream's order makes the next batch (and
  // the state upload above) wait for nothing on the host but this read.
  for (int run = 0;; run += batch) {
    if (run >= max_iter)
      throw Error("internal: the device loop ran " + std::to_string(run) +
                  " iterations without its done flag (max_iter = " + std::to_string(max_iter) +
                  ")");
#if defined(KMEANS_CUDA_SYNC_DEBUG)
    enqueue_loop_batch(batch);
#else
    // The first batch runs directly (lazily-loaded kernels load outside a capture, a launch
    // error is reported at its source); later ones replay one captured batch.
    if (loop_batches_++ == 0) {
      enqueue_loop_batch(batch);
    } else {
      if (!loop_graph_) {
        ProfileRange capture_range("kmeans::capture");
        loop_graph_ = capture_graph(s, [&] { enqueue_loop_batch(batch); });
        loop_graph_iters_ = batch;
      }
      KMEANS_CUDA_TRY(cudaGraphLaunch(loop_graph_.get(), s));
    }
#endif
    KMEANS_CUDA_TRY(cudaMemcpyAsync(st, d_loop_state_.get(), dl::kSlots * sizeof(std::int64_t),
                                    cudaMemcpyDeviceToHost, s));
    KMEANS_CUDA_TRY(cudaStreamSynchronize(s));
    if (st[dl::kDone]) break;
  }
  if (st[dl::kFailed])
    throw Error("internal: the device loop's farthest-point selection came back short");
  const auto iters = static_cast<std::size_t>(st[dl::kIter]);
  if (iters < 1 || iters > static_cast<std::size_t>(max_iter))
    throw Error("internal: the device loop reports " + std::to_string(iters) + " iterations");
  out.sse.resize(iters);
  out.imbalance.resize(iters);
  KMEANS_CUDA_TRY(cudaMemcpyAsync(out.sse.data(), d_loop_hist_.get(), iters * sizeof(double),
                                  cudaMemcpyDeviceToHost, s));
  KMEANS_CUDA_TRY(cudaMemcpyAsync(out.imbalance.data(), d_loop_hist_.get() + max_iter,
                                  iters * sizeof(double), cudaMemcpyDeviceToHost, s));
  KMEANS_CUDA_TRY(cudaMemcpyAsync(centroids, d_centroids_.get(), kd * sizeof(T),
                                  cudaMemcpyDeviceToHost, s));
  KMEANS_CUDA_TRY(cudaStreamSynchronize(s));
  out.n_iter = static_cast<int>(iters);
  out.converged = st[dl::kConverged] != 0;
  out.n_empty_relocated = static_cast<int>(st[dl::kRelocated]);
  return true;
}

#define KMEANS_CUDA_DEVICE_LOOP_MEMBERS(TYPE)                                             \
  template void CudaEngine<TYPE>::enqueue_loop_batch(int iters);                         \
  template bool CudaEngine<TYPE>::run_lloyd(TYPE* centroids, int k, int max_iter, double tol, \
                                            LloydTrace& out);

KMEANS_CUDA_ENGINE_INSTANTIATE(KMEANS_CUDA_DEVICE_LOOP_MEMBERS)

}  // namespace kmeans::detail::cuda
