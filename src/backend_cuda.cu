// SPDX-License-Identifier: Apache-2.0
// Backend::Cuda: the engine that runs the Lloyd passes on an NVIDIA GPU (sm_80 and newer).
//
// One pass (Engine::assign) for k centroids is, on the engine's own non-blocking stream:
//   upload centroids (pinned host -> device)
//   -> assign: the fused tile kernel (kernels/assign.cuh), or, when k and d are large
//      (tuning::use_gemm), centroids centred on the data mean, cuBLAS products x.c' and the
//      centred ranking with exact distances for the candidates (gemm_argmin_kernel)
//   -> update: the fused kernel's per-block partials reduced by cub::DeviceSegmentedReduce, or,
//      when k * d is too large for partials (tuning::use_partials), the labels radix-sorted and
//      each cluster summed as one segment (kernels/update.cuh)
//   -> download SSE, changed count, weights and sums (device -> pinned host).
// The sequence is captured once per (k, with/without sums) into a CUDA graph and replayed.
//
// Determinism: no floating-point atomics; every sum has a fixed order given n, d, k and the
// device's SM count, so two runs on the same GPU and build give identical bits. cuBLAS GEMMs are
// deterministic on one stream with a fixed workspace. Sums are accumulated in double from the
// first addition (per block, per cluster and across blocks): a per-block float sum over a few
// thousand points would lose ~12 bits, and the sums cost d additions per point against k * d
// for the distances, so double costs little.
//
// Synchronisation: the constructor (upload, device-side validation), every assign (one
// cudaStreamSynchronize after the graph, as the Engine interface hands sums back on the host),
// labels(), farthest(), distances(), rebind(), each DataOps call (initialisation, the tol
// scale, row gathers: once at its end, greedy k-means++ included) and the first
// host_data()/host_weights() of device data synchronise the engine's stream. Changing k
// reallocates the k-sized buffers (cudaMalloc/cudaFree synchronise the device). Device input is
// ordered after the caller's earlier work on the legacy default stream (and so on every blocking
// stream) by one event recorded there at construction and at each rebind; nothing else touches
// the legacy default stream.
#include <cuda_runtime.h>
#include <cublas_v2.h>
#include <nvtx3/nvToolsExt.h>

#include <cub/device/device_radix_sort.cuh>
#include <cub/device/device_segmented_reduce.cuh>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <numeric>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "engine.hpp"
#include "internal.hpp"
#include "kernels/assign.cuh"
#include "kernels/cuda_check.hpp"
#include "kernels/device_buffer.hpp"
#include "kernels/distances.cuh"
#include "kernels/init.cuh"
#include "kernels/layout.cuh"
#include "kernels/tuning.cuh"
#include "kernels/update.cuh"

#define KMEANS_CUBLAS_TRY(call)                                                            \
  do {                                                                                     \
    const cublasStatus_t kmeans_status_ = (call);                                          \
    if (kmeans_status_ != CUBLAS_STATUS_SUCCESS) {                                         \
      (void)cudaGetLastError();                                                            \
      throw ::kmeans::Error(std::string("cuBLAS error in ") + #call + " at " + __FILE__ + \
                            ":" + std::to_string(__LINE__) + ": " +                        \
                            cublasGetStatusString(kmeans_status_));                        \
    }                                                                                      \
  } while (0)

namespace kmeans {
namespace detail {
namespace {

namespace tn = tuning;

// The assign kernel's static shared memory must leave kAssignSmemBytes of dynamic memory under
// the 48 KiB a kernel gets without an opt-in.
static_assert(sizeof(typename cub::BlockRadixSort<int, tn::kAssignThreads, 1, int>::TempStorage) +
                      2 * tn::kAssignThreads * sizeof(int) + tn::kAssignSmemBytes <=
                  48 * 1024,
              "assign kernel shared memory exceeds 48 KiB");

/// Tells cuda_available whether this build has code for the device.
__global__ void probe_kernel() {}

/// Makes `device` current for a scope and restores the caller's device after.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device) {
    KMEANS_CUDA_TRY(cudaGetDevice(&previous_));
    if (previous_ == device)
      previous_ = -1;
    else
      KMEANS_CUDA_TRY(cudaSetDevice(device));
  }
  ~DeviceGuard() {
    if (previous_ >= 0) KMEANS_CUDA_TRY_NOTHROW(cudaSetDevice(previous_));
  }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = -1;
};

/// The last member of an engine to go: gives the caller back the device the destructor
/// switched from.
struct DeviceRestore {
  int previous = -1;
  ~DeviceRestore() {
    if (previous >= 0) KMEANS_CUDA_TRY_NOTHROW(cudaSetDevice(previous));
  }
};

/// A timing-free event, recorded once and destroyed (the runtime keeps it until it completes).
class Event {
 public:
  Event() { KMEANS_CUDA_TRY(cudaEventCreateWithFlags(&e_, cudaEventDisableTiming)); }
  ~Event() {
    if (e_) KMEANS_CUDA_TRY_NOTHROW(cudaEventDestroy(e_));
  }
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  cudaEvent_t get() const { return e_; }

 private:
  cudaEvent_t e_ = nullptr;
};

class Stream {
 public:
  Stream() { KMEANS_CUDA_TRY(cudaStreamCreateWithFlags(&s_, cudaStreamNonBlocking)); }
  ~Stream() {
    if (s_) KMEANS_CUDA_TRY_NOTHROW(cudaStreamDestroy(s_));
  }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  cudaStream_t get() const { return s_; }

 private:
  cudaStream_t s_ = nullptr;
};

class CublasHandle {
 public:
  CublasHandle() = default;
  ~CublasHandle() {
    if (h_) (void)cublasDestroy(h_);
  }
  CublasHandle(const CublasHandle&) = delete;
  CublasHandle& operator=(const CublasHandle&) = delete;
  /// Creates the handle once, bound to `stream` and to an explicit workspace (graph capture
  /// must not let cuBLAS allocate).
  void create(cudaStream_t stream, void* workspace, std::size_t bytes) {
    if (h_) return;
    KMEANS_CUBLAS_TRY(cublasCreate(&h_));
    KMEANS_CUBLAS_TRY(cublasSetStream(h_, stream));
    KMEANS_CUBLAS_TRY(cublasSetWorkspace(h_, workspace, bytes));
    // Plain FP32/FP64 arithmetic: TF32 tensor cores would move near-tie labels.
    KMEANS_CUBLAS_TRY(cublasSetMathMode(h_, CUBLAS_DEFAULT_MATH));
  }
  cublasHandle_t get() const { return h_; }

 private:
  cublasHandle_t h_ = nullptr;
};

inline cublasStatus_t gemm(cublasHandle_t h, int m, int n, int k, const float* alpha,
                           const float* a, int lda, const float* b, int ldb, const float* beta,
                           float* c, int ldc) {
  return cublasSgemm(h, CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
inline cublasStatus_t gemm(cublasHandle_t h, int m, int n, int k, const double* alpha,
                           const double* a, int lda, const double* b, int ldb,
                           const double* beta, double* c, int ldc) {
  return cublasDgemm(h, CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

#if defined(KMEANS_CUDA_SYNC_DEBUG)
#pragma nv_diag_suppress 177  // the graph machinery is compiled but unused in this mode
#endif

/// An instantiated CUDA graph.
class GraphExec {
 public:
  GraphExec() = default;
  explicit GraphExec(cudaGraphExec_t g) : g_(g) {}
  GraphExec(GraphExec&& o) noexcept : g_(std::exchange(o.g_, nullptr)) {}
  GraphExec& operator=(GraphExec&& o) noexcept {
    if (this != &o) {
      reset();
      g_ = std::exchange(o.g_, nullptr);
    }
    return *this;
  }
  ~GraphExec() { reset(); }
  void reset() noexcept {
    if (g_) KMEANS_CUDA_TRY_NOTHROW(cudaGraphExecDestroy(g_));
    g_ = nullptr;
  }
  cudaGraphExec_t get() const { return g_; }
  explicit operator bool() const { return g_ != nullptr; }

 private:
  cudaGraphExec_t g_ = nullptr;
};

int device_attribute(cudaDeviceAttr attr, int device) {
  int value = 0;
  KMEANS_CUDA_TRY(cudaDeviceGetAttribute(&value, attr, device));
  return value;
}

std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }

/// The device an engine for `data` runs on: the one holding device data, else the current one.
int device_for(const void* data, bool on_device) {
  int device = 0;
  if (on_device) {
    cudaPointerAttributes attr{};
    KMEANS_CUDA_TRY(cudaPointerGetAttributes(&attr, data));
    device = attr.device;
  } else {
    KMEANS_CUDA_TRY(cudaGetDevice(&device));
  }
  return device;
}

/// How one k is run: the paths and the launch shapes (see kernels/tuning.cuh).
struct Plan {
  int k = 0;
  bool gemm = false;          ///< cuBLAS distances + gemm_argmin_kernel
  bool partials = false;      ///< per-block partial sums inside the assign kernel
  int k_tile = 0;             ///< assign kernel: centroids per shared-memory tile
  int subtiles_per_block = 0; ///< assign kernel: sub-tiles of 256 points per block
  int assign_blocks = 0;      ///< assign kernel grid
  int stat_blocks = 0;        ///< blocks that write a column of the partial buffer
  int records = 0;            ///< entries of the partial buffer (2, or all totals)
  int sort_bits = 0;          ///< radix bits of a label
  int gemm_rows = 0;          ///< rows per GEMM chunk
  int col_tile = 0;           ///< cluster_sums_kernel column tile
};

template <class T>
class CudaEngine final : public Engine<T>, public DataOps<T> {
 public:
  CudaEngine(const DataView<T>& v, int device, bool on_device)
      : v_(v), device_(device), on_device_(on_device) {
    // Called with `device` current (make_cuda_engine's guard).
    if (v.n > tn::kMaxPoints)
      throw Error("n = " + std::to_string(v.n) + " exceeds the CUDA backend's limit of " +
                  std::to_string(tn::kMaxPoints) + " points");
    if (v.d > INT_MAX)
      throw Error("d = " + std::to_string(v.d) + " exceeds the CUDA backend's limit of " +
                  std::to_string(INT_MAX) + " features");
    sm_count_ = device_attribute(cudaDevAttrMultiProcessorCount, device_);
    const std::size_t nd = static_cast<std::size_t>(v.n) * static_cast<std::size_t>(v.d);
    const cudaStream_t s = stream_.get();
    if (on_device_) {
      d_x_ = v.data;
      d_w_ = v.weights;
      // The caller may have just written the data on the legacy default stream (or any stream
      // that synchronises with it) without waiting: the non-blocking stream_ would not.
      Event ready;
      KMEANS_CUDA_TRY(cudaEventRecord(ready.get(), cudaStreamLegacy));
      KMEANS_CUDA_TRY(cudaStreamWaitEvent(s, ready.get(), 0));
    } else {  // host data is copied once; the driver has validated it
      x_copy_.allocate(nd, "data");
      KMEANS_CUDA_TRY(cudaMemcpyAsync(x_copy_.get(), v.data, nd * sizeof(T),
                                      cudaMemcpyHostToDevice, s));
      d_x_ = x_copy_.get();
      if (v.weights) {
        w_copy_.allocate(static_cast<std::size_t>(v.n), "sample_weight");
        KMEANS_CUDA_TRY(cudaMemcpyAsync(w_copy_.get(), v.weights, v.n * sizeof(T),
                                        cudaMemcpyHostToDevice, s));
        d_w_ = w_copy_.get();
      }
    }
    d_labels_.allocate(static_cast<std::size_t>(v.n), "labels");
    d_dist_.allocate(static_cast<std::size_t>(v.n), "distances");
    // Labels start at -1 so the first pass counts every point as changed; distances start as
    // NaN bytes so a point a kernel skipped cannot pass for a real distance.
    KMEANS_CUDA_TRY(cudaMemsetAsync(d_labels_.get(), 0xFF, d_labels_.bytes(), s));
    KMEANS_CUDA_TRY(cudaMemsetAsync(d_dist_.get(), 0xFF, d_dist_.bytes(), s));
    if (on_device_) validate_device_input();
    KMEANS_CUDA_TRY(cudaStreamSynchronize(s));
  }

  ~CudaEngine() override {
    // The members are released on the engine's device (the cuBLAS handle and the stream belong
    // to it); restore_, the first member, switches back after them.
    int current = -1;
    if (cudaGetDevice(&current) != cudaSuccess) {
      (void)cudaGetLastError();
    } else if (current != device_) {
      if (cudaSetDevice(device_) == cudaSuccess)
        restore_.previous = current;
      else
        (void)cudaGetLastError();
    }
    // Nothing may be in flight when the buffers go (cudaFree would wait, but a graph replay
    // writing into pinned memory being freed would not).
    KMEANS_CUDA_TRY_NOTHROW(cudaStreamSynchronize(stream_.get()));
  }

  Backend kind() const override { return Backend::Cuda; }

  StepStats assign(const T* centroids, int k, double* sums, double* weights) override {
    ProfileRange range("kmeans::assign");
    DeviceGuard guard(device_);
    if (k != plan_.k) configure(k);
    std::memcpy(h_centroids_.get(), centroids,
                static_cast<std::size_t>(k) * static_cast<std::size_t>(v_.d) * sizeof(T));
    const bool with_sums = sums != nullptr;
#if defined(KMEANS_CUDA_SYNC_DEBUG)
    enqueue_pass(with_sums);  // graphs cannot hold the per-launch synchronisations
#else
    const int mode = with_sums ? 1 : 0;
    // The first pass of a configuration runs directly: it loads lazily-loaded kernels (CUDA's
    // default module loading) outside a capture and reports any launch error at its source.
    // Later passes capture the same sequence once and replay it.
    if (passes_[mode]++ == 0) {
      enqueue_pass(with_sums);
    } else {
      if (!graphs_[mode]) graphs_[mode] = capture(with_sums);
      KMEANS_CUDA_TRY(cudaGraphLaunch(graphs_[mode].get(), stream_.get()));
    }
#endif
    KMEANS_CUDA_TRY(cudaStreamSynchronize(stream_.get()));

    const double* h = h_totals_.get();
    StepStats stats;
    stats.sse = h[layout::kTotalSse];
    stats.n_changed = static_cast<std::int64_t>(h[layout::kTotalChanged]);
    if (with_sums) {
      std::copy(h + layout::total_weight(0), h + layout::total_weight(k), weights);
      std::copy(h + layout::total_sum(0, 0, k, v_.d),
                h + layout::total_sum(0, 0, k, v_.d) + static_cast<std::int64_t>(k) * v_.d, sums);
    }
    return stats;
  }

  void labels(std::int32_t* out) override {
    DeviceGuard guard(device_);
    KMEANS_CUDA_TRY(cudaMemcpyAsync(out, d_labels_.get(), d_labels_.bytes(),
                                    cudaMemcpyDeviceToHost, stream_.get()));
    KMEANS_CUDA_TRY(cudaStreamSynchronize(stream_.get()));
  }

  /// A rare path (empty clusters): the distances and labels come to the host and are ranked
  /// there, by decreasing distance, ties to the lowest index.
  std::vector<FarPoint> farthest(std::int64_t m) override {
    ProfileRange range("kmeans::farthest");
    DeviceGuard guard(device_);
    const std::int64_t n = v_.n;
    m = std::min(m, n);
    if (m <= 0) return {};
    std::vector<T> dist(static_cast<std::size_t>(n));
    std::vector<std::int32_t> lab(static_cast<std::size_t>(n));
    KMEANS_CUDA_TRY(cudaMemcpyAsync(dist.data(), d_dist_.get(), d_dist_.bytes(),
                                    cudaMemcpyDeviceToHost, stream_.get()));
    KMEANS_CUDA_TRY(cudaMemcpyAsync(lab.data(), d_labels_.get(), d_labels_.bytes(),
                                    cudaMemcpyDeviceToHost, stream_.get()));
    KMEANS_CUDA_TRY(cudaStreamSynchronize(stream_.get()));
    std::vector<std::int64_t> idx(static_cast<std::size_t>(n));
    std::iota(idx.begin(), idx.end(), 0);
    std::partial_sort(idx.begin(), idx.begin() + m, idx.end(), [&](std::int64_t a, std::int64_t b) {
      return dist[a] != dist[b] ? dist[a] > dist[b] : a < b;
    });
    std::vector<FarPoint> out;
    out.reserve(static_cast<std::size_t>(m));
    for (std::int64_t i = 0; i < m; ++i) out.push_back({idx[i], lab[idx[i]]});
    return out;
  }

  const T* host_data() override {
    if (!on_device_) return v_.data;
    if (h_data_.empty()) {
      DeviceGuard guard(device_);
      h_data_.resize(static_cast<std::size_t>(v_.n) * static_cast<std::size_t>(v_.d));
      KMEANS_CUDA_TRY(cudaMemcpyAsync(h_data_.data(), d_x_, h_data_.size() * sizeof(T),
                                      cudaMemcpyDeviceToHost, stream_.get()));
      KMEANS_CUDA_TRY(cudaStreamSynchronize(stream_.get()));
    }
    return h_data_.data();
  }

  const T* host_weights() override {
    if (!on_device_ || d_w_ == nullptr) return v_.weights;
    if (h_weights_.empty()) {
      DeviceGuard guard(device_);
      h_weights_.resize(static_cast<std::size_t>(v_.n));
      KMEANS_CUDA_TRY(cudaMemcpyAsync(h_weights_.data(), d_w_, h_weights_.size() * sizeof(T),
                                      cudaMemcpyDeviceToHost, stream_.get()));
      KMEANS_CUDA_TRY(cudaStreamSynchronize(stream_.get()));
    }
    return h_weights_.data();
  }

  /// transform: the exact distances kernel over row chunks of at most kTransformChunkBytes of
  /// output, each chunk copied to `out` as it is done. The buffers only grow.
  void distances(const T* centroids, int k, T* out) override {
    ProfileRange range("kmeans::distances");
    DeviceGuard guard(device_);
    const cudaStream_t s = stream_.get();
    const std::int64_t n = v_.n, d = v_.d;
    const auto kd = static_cast<std::size_t>(k) * static_cast<std::size_t>(d);
    const std::int64_t rows = std::max<std::int64_t>(
        1, std::min<std::int64_t>(
                   n, tn::kTransformChunkBytes / static_cast<std::int64_t>(sizeof(T)) / k));
    const auto chunk = static_cast<std::size_t>(rows) * static_cast<std::size_t>(k);
    grow(d_transform_centroids_, kd, "transform centroids");
    grow(d_transform_out_, chunk, "transform output");
    KMEANS_CUDA_TRY(cudaMemcpyAsync(d_transform_centroids_.get(), centroids, kd * sizeof(T),
                                    cudaMemcpyHostToDevice, s));
    for (std::int64_t row0 = 0; row0 < n; row0 += rows) {
      const std::int64_t r = std::min(rows, n - row0);
      const std::int64_t total = r * k;
      const auto grid = static_cast<unsigned>(std::max<std::int64_t>(
          1, std::min<std::int64_t>(ceil_div(total, 256), std::int64_t{sm_count_} * 32)));
      distances_kernel<T><<<grid, 256, 0, s>>>(d_x_ + row0 * d, r, static_cast<int>(d),
                                               d_transform_centroids_.get(), k,
                                               d_transform_out_.get());
      KMEANS_CUDA_CHECK_LAUNCH(s);
      KMEANS_CUDA_TRY(cudaMemcpyAsync(out + row0 * k, d_transform_out_.get(),
                                      static_cast<std::size_t>(total) * sizeof(T),
                                      cudaMemcpyDeviceToHost, s));
    }
    KMEANS_CUDA_TRY(cudaStreamSynchronize(s));
  }

  DataOps<T>* data_ops() override { return this; }

  std::size_t device_bytes() const override {
    std::size_t total = 0;
    const auto add = [&total](const auto&... b) { ((total += b.bytes()), ...); };
    add(x_copy_, w_copy_, d_labels_, d_dist_, d_centroids_, d_partials_, d_totals_,
        d_record_offsets_, d_reduce_tmp_, d_sorted_labels_, d_order_in_, d_order_,
        d_cluster_offsets_, d_sort_tmp_, d_cublas_ws_, d_products_, d_centred_, d_terms_, d_mean_,
        d_mean_partial_, d_mean_norm_, d_first_, d_positive_, d_transform_centroids_,
        d_transform_out_, d_closest_, d_cumsum_, d_trial_dist_, d_block_total_, d_block_offset_,
        d_trial_block_sum_, d_uniforms_, d_scalar_, d_index_, d_candidates_, d_chosen_,
        d_nearest_, d_best_, d_gather_, d_var_part_, d_var_mean_);
    return total;
  }

  // DataOps: initialisation on the device (kernels/init.cuh), the host's bits.
  std::int64_t size() const override { return v_.n; }
  std::int64_t dim() const override { return v_.d; }
  const T* weights() override { return host_weights(); }

  void rows(const std::int64_t* idx, std::int64_t m, T* out) override {
    const std::int64_t d = v_.d;
    if (!on_device_) {
      for (std::int64_t c = 0; c < m; ++c)
        std::copy(v_.data + idx[c] * d, v_.data + (idx[c] + 1) * d, out + c * d);
      return;
    }
    if (m <= 0) return;
    DeviceGuard guard(device_);
    const cudaStream_t s = stream_.get();
    upload_indices(idx, m);
    const auto total = static_cast<std::size_t>(m) * static_cast<std::size_t>(d);
    grow(d_gather_, total, "gathered rows");
    gather_rows_kernel<T><<<grid_for(static_cast<std::int64_t>(total)), 256, 0, s>>>(
        d_x_, static_cast<int>(d), d_index_.get(), m, d_gather_.get());
    KMEANS_CUDA_CHECK_LAUNCH(s);
    KMEANS_CUDA_TRY(
        cudaMemcpyAsync(out, d_gather_.get(), total * sizeof(T), cudaMemcpyDeviceToHost, s));
    KMEANS_CUDA_TRY(cudaStreamSynchronize(s));
  }

  /// The whole greedy k-means++ on the device: a step is draw (search_kernel), trial
  /// distances, their block sums, the choice, and the new prefix sums; the host only uploads
  /// the uniforms and downloads the k indices. Needs (trials + 2) x n doubles; when they do
  /// not fit, the host does it (from a host copy of device data).
  std::vector<std::int64_t> greedy_kmeanspp(int k, int trials, const double* u) override {
    ProfileRange range("kmeans::init_kmeans++");
    DeviceGuard guard(device_);
    const std::int64_t n = v_.n;
    const int d = static_cast<int>(v_.d);
    const std::int64_t n_blocks = ceil_div(n, kReduceBlock);
    const auto un = static_cast<std::size_t>(n);
    const std::size_t draws = 1 + static_cast<std::size_t>(k - 1) * static_cast<std::size_t>(trials);
    if (trials > 32) throw Error("k-means++: more than 32 trials per step");
    try {
      grow(d_closest_, un, "k-means++ distances");
      grow(d_cumsum_, un, "k-means++ prefix sums");
      grow(d_trial_dist_, un * static_cast<std::size_t>(trials), "k-means++ trial distances");
      grow(d_block_total_, static_cast<std::size_t>(n_blocks), "k-means++ block sums");
      grow(d_block_offset_, static_cast<std::size_t>(n_blocks), "k-means++ block offsets");
      grow(d_trial_block_sum_, static_cast<std::size_t>(n_blocks) * trials, "k-means++ block sums");
      grow(d_uniforms_, draws, "k-means++ draws");
      grow(d_candidates_, static_cast<std::size_t>(trials), "k-means++ candidates");
      grow(d_chosen_, static_cast<std::size_t>(k), "k-means++ choices");
      grow(d_scalar_, 1, "k-means++ potential");
      grow(d_best_, 1, "k-means++ best trial");
    } catch (const OutOfDeviceMemory&) {
      release_init_buffers();  // too big for the device: the host does it
      return make_host_data_ops(host_data(), host_weights(), n, v_.d, v_.n_threads)
          ->greedy_kmeanspp(k, trials, u);
    }
    const cudaStream_t s = stream_.get();
    KMEANS_CUDA_TRY(cudaMemcpyAsync(d_uniforms_.get(), u, draws * sizeof(double),
                                    cudaMemcpyHostToDevice, s));
    double* closest = d_closest_.get();
    double* total = d_scalar_.get();
    std::int64_t* chosen = d_chosen_.get();
    prefix(nullptr, total);
    search_kernel<<<1, 32, 0, s>>>(d_cumsum_.get(), n, d_uniforms_.get(), 1, total, chosen);
    KMEANS_CUDA_CHECK_LAUNCH(s);
    first_closest_kernel<T><<<grid_for(n), 256, 0, s>>>(d_x_, n, d, chosen, closest);
    KMEANS_CUDA_CHECK_LAUNCH(s);
    prefix(closest, total);
    const auto trial_grid = static_cast<unsigned>(ceil_div(n_blocks * trials, 128));
    for (int c = 1; c < k; ++c) {
      const double* uc = d_uniforms_.get() + 1 + static_cast<std::int64_t>(c - 1) * trials;
      search_kernel<<<1, 32, 0, s>>>(d_cumsum_.get(), n, uc, trials, total, d_candidates_.get());
      KMEANS_CUDA_CHECK_LAUNCH(s);
      trial_distances_kernel<T><<<grid_for(n * trials), 256, 0, s>>>(
          d_x_, n, d, d_candidates_.get(), trials, closest, d_trial_dist_.get());
      KMEANS_CUDA_CHECK_LAUNCH(s);
      trial_block_sums_kernel<T><<<trial_grid, 128, 0, s>>>(d_trial_dist_.get(), d_w_, n,
                                                            kReduceBlock, n_blocks, trials,
                                                            d_trial_block_sum_.get());
      KMEANS_CUDA_CHECK_LAUNCH(s);
      choose_trial_kernel<<<1, 32, 0, s>>>(d_trial_block_sum_.get(), n_blocks, trials,
                                           d_candidates_.get(), chosen + c, d_best_.get());
      KMEANS_CUDA_CHECK_LAUNCH(s);
      take_trial_kernel<<<grid_for(n), 256, 0, s>>>(d_trial_dist_.get(), n, d_best_.get(), closest);
      KMEANS_CUDA_CHECK_LAUNCH(s);
      prefix(closest, total);
    }
    std::vector<std::int64_t> out(static_cast<std::size_t>(k));
    KMEANS_CUDA_TRY(cudaMemcpyAsync(out.data(), chosen, out.size() * sizeof(std::int64_t),
                                    cudaMemcpyDeviceToHost, s));
    KMEANS_CUDA_TRY(cudaStreamSynchronize(s));
    return out;
  }

  void lower_closest(const std::int64_t* idx, std::int64_t m, double* closest) override {
    ProfileRange range("kmeans::init_lower_closest");
    if (m <= 0) return;
    DeviceGuard guard(device_);
    const cudaStream_t s = stream_.get();
    const std::int64_t n = v_.n;
    upload_indices(idx, m);
    grow(d_closest_, static_cast<std::size_t>(n), "k-means|| distances");
    KMEANS_CUDA_TRY(cudaMemcpyAsync(d_closest_.get(), closest, n * sizeof(double),
                                    cudaMemcpyHostToDevice, s));
    lower_closest_kernel<T><<<grid_for(n), 256, 0, s>>>(d_x_, n, static_cast<int>(v_.d),
                                                        d_index_.get(), m, d_closest_.get());
    KMEANS_CUDA_CHECK_LAUNCH(s);
    KMEANS_CUDA_TRY(cudaMemcpyAsync(closest, d_closest_.get(), n * sizeof(double),
                                    cudaMemcpyDeviceToHost, s));
    KMEANS_CUDA_TRY(cudaStreamSynchronize(s));
  }

  /// Two passes on the device, each a partial sum per block of points and feature in the
  /// host's order (block_column_sums_kernel); the blocks are added on the host in block order,
  /// as mean_feature_variance does.
  double mean_feature_variance() override {
    ProfileRange range("kmeans::variance");
    DeviceGuard guard(device_);
    const cudaStream_t s = stream_.get();
    const std::int64_t n = v_.n, d = v_.d;
    const std::int64_t n_blocks = ceil_div(n, kReduceBlock);
    const auto entries = static_cast<std::size_t>(n_blocks) * static_cast<std::size_t>(d);
    grow(d_var_part_, entries, "variance partial sums");
    grow(d_var_mean_, static_cast<std::size_t>(d), "variance means");
    std::vector<double> part(entries);
    const auto grid = static_cast<unsigned>(ceil_div(n_blocks * d, 128));
    auto pass = [&](const std::vector<double>* mean) {
      if (mean)
        KMEANS_CUDA_TRY(cudaMemcpyAsync(d_var_mean_.get(), mean->data(), d * sizeof(double),
                                        cudaMemcpyHostToDevice, s));
      block_column_sums_kernel<T><<<grid, 128, 0, s>>>(d_x_, n, d, kReduceBlock, n_blocks,
                                                       mean ? d_var_mean_.get() : nullptr,
                                                       d_var_part_.get());
      KMEANS_CUDA_CHECK_LAUNCH(s);
      KMEANS_CUDA_TRY(cudaMemcpyAsync(part.data(), d_var_part_.get(), entries * sizeof(double),
                                      cudaMemcpyDeviceToHost, s));
      KMEANS_CUDA_TRY(cudaStreamSynchronize(s));
      return column_means(part.data(), n_blocks, d, n);
    };
    const std::vector<double> mean = pass(nullptr);
    return mean_of(pass(&mean));
  }

  void nearest(const std::int64_t* idx, std::int64_t m, std::int64_t* out) override {
    ProfileRange range("kmeans::init_nearest");
    DeviceGuard guard(device_);
    const cudaStream_t s = stream_.get();
    const std::int64_t n = v_.n;
    upload_indices(idx, m);
    grow(d_nearest_, static_cast<std::size_t>(n), "k-means|| nearest candidates");
    nearest_kernel<T><<<grid_for(n), 256, 0, s>>>(d_x_, n, static_cast<int>(v_.d), d_index_.get(),
                                                  m, d_nearest_.get());
    KMEANS_CUDA_CHECK_LAUNCH(s);
    KMEANS_CUDA_TRY(cudaMemcpyAsync(out, d_nearest_.get(), n * sizeof(std::int64_t),
                                    cudaMemcpyDeviceToHost, s));
    KMEANS_CUDA_TRY(cudaStreamSynchronize(s));
  }

  /// Same n, d, device and memory space: the data is copied into (or pointed at by) the
  /// existing buffers and every k-sized buffer, the plan and the captured graphs are kept. The
  /// graphs are re-captured only when a pointer they hold changed (device input at a new
  /// address, weights appearing or going).
  bool rebind(const DataView<T>& v) override {
    if (v.n != v_.n || v.d != v_.d) return false;
    const bool on_device = is_device_pointer(v.data);
    if (on_device != on_device_) return false;
    if (device_for(v.data, on_device) != device_) return false;
    ProfileRange range("kmeans::rebind");
    DeviceGuard guard(device_);
    const cudaStream_t s = stream_.get();
    // The captured graphs hold the data and weight pointers: drop them first when either
    // changes, before anything below can throw (the driver also drops an engine whose rebind
    // threw). The GEMM path's data mean and |m| are read from device memory, so new data at
    // the same address keeps the graphs.
    const T* new_x = on_device_ ? v.data : x_copy_.get();
    const bool weights_change = on_device_ ? v.weights != d_w_
                                           : (v.weights == nullptr) != (d_w_ == nullptr);
    if (new_x != d_x_ || weights_change) drop_graphs();
    v_ = v;
    h_data_.clear();
    h_weights_.clear();
    if (on_device_) {
      d_x_ = v.data;
      d_w_ = v.weights;
      Event ready;  // ordered after the caller's work on the legacy default stream
      KMEANS_CUDA_TRY(cudaEventRecord(ready.get(), cudaStreamLegacy));
      KMEANS_CUDA_TRY(cudaStreamWaitEvent(s, ready.get(), 0));
    } else {
      const std::size_t nd = static_cast<std::size_t>(v.n) * static_cast<std::size_t>(v.d);
      KMEANS_CUDA_TRY(cudaMemcpyAsync(x_copy_.get(), v.data, nd * sizeof(T),
                                      cudaMemcpyHostToDevice, s));
      d_w_ = nullptr;
      if (v.weights) {
        if (w_copy_.size() != static_cast<std::size_t>(v.n)) {
          drop_graphs();  // a new weight buffer: a new pointer
          w_copy_.allocate(static_cast<std::size_t>(v.n), "sample_weight");
        }
        KMEANS_CUDA_TRY(cudaMemcpyAsync(w_copy_.get(), v.weights, v.n * sizeof(T),
                                        cudaMemcpyHostToDevice, s));
        d_w_ = w_copy_.get();
      }
    }
    KMEANS_CUDA_TRY(cudaMemsetAsync(d_labels_.get(), 0xFF, d_labels_.bytes(), s));
    KMEANS_CUDA_TRY(cudaMemsetAsync(d_dist_.get(), 0xFF, d_dist_.bytes(), s));
    if (on_device_) validate_device_input();
    mean_valid_ = false;  // new data: the GEMM path's centre is recomputed (in place)
    if (plan_.gemm) compute_mean();
    KMEANS_CUDA_TRY(cudaStreamSynchronize(s));
    return true;
  }

 private:
  void drop_graphs() noexcept {
    graphs_[0].reset();
    graphs_[1].reset();
    passes_[0] = passes_[1] = 0;
  }

  /// A grid-stride launch over `count` items: enough blocks of 256 threads to fill the device.
  unsigned grid_for(std::int64_t count) const {
    return static_cast<unsigned>(std::max<std::int64_t>(
        1, std::min<std::int64_t>(ceil_div(count, 256), std::int64_t{sm_count_} * 16)));
  }

  /// Makes `b` hold at least `size` elements (never shrinks, so repeated calls allocate nothing).
  /// Fresh memory is poisoned (NaN bytes), so a value no kernel wrote shows up on first use;
  /// reused memory holds the previous call's values, every one of which a kernel rewrites.
  template <class U>
  void grow(DeviceBuffer<U>& b, std::size_t size, const char* name) {
    if (b.size() >= size) return;
    b.allocate(size, name);
    KMEANS_CUDA_TRY(cudaMemsetAsync(b.get(), 0xFF, b.bytes(), stream_.get()));
  }

  void upload_indices(const std::int64_t* idx, std::int64_t m) {
    grow(d_index_, static_cast<std::size_t>(m), "point indices");
    KMEANS_CUDA_TRY(cudaMemcpyAsync(d_index_.get(), idx, m * sizeof(std::int64_t),
                                    cudaMemcpyHostToDevice, stream_.get()));
  }

  /// Prefix sums of w * v (v null: 1) over the points into d_cumsum_, in the host's order;
  /// the total into *total (device).
  void prefix(const double* v, double* total) {
    const cudaStream_t s = stream_.get();
    const std::int64_t n = v_.n;
    const std::int64_t n_blocks = ceil_div(n, kReduceBlock);
    block_prefix_kernel<T><<<static_cast<unsigned>(ceil_div(n_blocks, 128)), 128, 0, s>>>(
        v, d_w_, n, kReduceBlock, n_blocks, d_cumsum_.get(), d_block_total_.get());
    KMEANS_CUDA_CHECK_LAUNCH(s);
    block_offsets_kernel<<<1, 1, 0, s>>>(d_block_total_.get(), n_blocks, d_block_offset_.get(),
                                         total);
    KMEANS_CUDA_CHECK_LAUNCH(s);
    if (n_blocks > 1) {
      add_offsets_kernel<<<grid_for(n - kReduceBlock), 256, 0, s>>>(d_cumsum_.get(), n,
                                                                    kReduceBlock,
                                                                    d_block_offset_.get());
      KMEANS_CUDA_CHECK_LAUNCH(s);
    }
  }

  void release_init_buffers() noexcept {
    d_closest_.release();
    d_cumsum_.release();
    d_trial_dist_.release();
    d_block_total_.release();
    d_block_offset_.release();
    d_trial_block_sum_.release();
    d_uniforms_.release();
  }

  /// Device data gets the checks the driver gives host data: finite values, and weights that
  /// are finite, >= 0 and not all 0. The messages match the host checks (validate.cpp).
  void validate_device_input() {
    const cudaStream_t s = stream_.get();
    grow(d_first_, 2, "validation flags");
    grow(d_positive_, 1, "validation flags");
    DeviceBuffer<unsigned long long>& d_first = d_first_;
    DeviceBuffer<unsigned int>& d_positive = d_positive_;
    KMEANS_CUDA_TRY(cudaMemsetAsync(d_first.get(), 0xFF, d_first.bytes(), s));
    KMEANS_CUDA_TRY(cudaMemsetAsync(d_positive.get(), 0, d_positive.bytes(), s));
    const std::int64_t total = v_.n * v_.d;
    const auto grid = [&](std::int64_t count) {
      return static_cast<unsigned>(
          std::max<std::int64_t>(1, std::min<std::int64_t>(ceil_div(count, tn::kSmallThreads),
                                                           std::int64_t{sm_count_} * 8)));
    };
    first_nonfinite_kernel<T><<<grid(total), tn::kSmallThreads, 0, s>>>(d_x_, total, d_first.get());
    KMEANS_CUDA_CHECK_LAUNCH(s);
    if (d_w_) {
      first_nonfinite_kernel<T><<<grid(v_.n), tn::kSmallThreads, 0, s>>>(d_w_, v_.n,
                                                                          d_first.get() + 1);
      KMEANS_CUDA_CHECK_LAUNCH(s);
    }
    unsigned long long first[2];
    KMEANS_CUDA_TRY(cudaMemcpyAsync(first, d_first.get(), sizeof first, cudaMemcpyDeviceToHost, s));
    KMEANS_CUDA_TRY(cudaStreamSynchronize(s));
    const auto report = [&](const T* d_ptr, unsigned long long at, std::int64_t cols,
                            const char* what) {
      const T value = read_element(d_ptr + at);
      std::ostringstream msg;
      msg << what << " contains " << (std::isnan(value) ? "NaN" : "Inf") << " at row "
          << at / static_cast<unsigned long long>(cols) << ", column "
          << at % static_cast<unsigned long long>(cols);
      throw Error(msg.str());
    };
    if (first[0] < static_cast<unsigned long long>(total)) report(d_x_, first[0], v_.d, "data");
    if (!d_w_) return;
    if (first[1] < static_cast<unsigned long long>(v_.n)) report(d_w_, first[1], 1, "sample_weight");
    KMEANS_CUDA_TRY(cudaMemsetAsync(d_first.get(), 0xFF, sizeof(unsigned long long), s));
    check_weights_kernel<T><<<grid(v_.n), tn::kSmallThreads, 0, s>>>(d_w_, v_.n, d_first.get(),
                                                                      d_positive.get());
    KMEANS_CUDA_CHECK_LAUNCH(s);
    unsigned int positive = 0;
    KMEANS_CUDA_TRY(cudaMemcpyAsync(first, d_first.get(), sizeof(unsigned long long),
                                    cudaMemcpyDeviceToHost, s));
    KMEANS_CUDA_TRY(cudaMemcpyAsync(&positive, d_positive.get(), sizeof positive,
                                    cudaMemcpyDeviceToHost, s));
    KMEANS_CUDA_TRY(cudaStreamSynchronize(s));
    if (first[0] < static_cast<unsigned long long>(v_.n)) {
      const T value = read_element(d_w_ + first[0]);
      std::ostringstream msg;
      msg << "sample_weight[" << first[0] << "] = " << value << " is negative";
      throw Error(msg.str());
    }
    if (positive == 0)
      throw Error("sample_weight sums to 0: at least one weight must be positive");
  }

  /// One element of device memory, for error messages.
  T read_element(const T* d_ptr) {
    T value{};
    KMEANS_CUDA_TRY(cudaMemcpyAsync(&value, d_ptr, sizeof(T), cudaMemcpyDeviceToHost, stream_.get()));
    KMEANS_CUDA_TRY(cudaStreamSynchronize(stream_.get()));
    return value;
  }

  Plan make_plan(int k) const {
    const std::int64_t n = v_.n, d = v_.d;
    constexpr std::size_t elem = sizeof(T);
    Plan p;
    p.k = k;
    p.gemm = tn::use_gemm(k, d, elem);
    p.partials = tn::use_partials(k, d, elem);
    p.sort_bits = tn::key_bits(k);
    p.col_tile = tn::sort_col_tile(d);
    if (p.gemm) {
      p.gemm_rows = static_cast<int>(tn::gemm_chunk_rows(n, k, elem));
      p.stat_blocks = static_cast<int>(ceil_div(n, tn::kGemmRowsPerBlock));
    } else {
      p.k_tile = p.partials ? static_cast<int>(tn::round_up(k, tn::kRegTile))
                            : tn::assign_centroid_tile(k, d, elem, tn::kAssignSmemBytes);
      const std::size_t smem =
          tn::assign_smem_bytes(p.k_tile, d, elem, p.partials ? tn::partial_columns(k, d) : 0);
      int per_sm = 0;
      KMEANS_CUDA_TRY(cudaOccupancyMaxActiveBlocksPerMultiprocessor(
          &per_sm, assign_tile_kernel<T>, tn::kAssignThreads, smem));
      const std::int64_t max_blocks =
          std::int64_t{std::max(per_sm, 1)} * sm_count_ * tn::kAssignWaves;
      const std::int64_t spb = tn::assign_subtiles_per_block(n, max_blocks);
      p.subtiles_per_block = static_cast<int>(spb);
      p.assign_blocks = static_cast<int>(ceil_div(ceil_div(n, tn::kAssignThreads), spb));
      p.stat_blocks = p.assign_blocks;
    }
    p.records = p.partials ? static_cast<int>(layout::total_entries(k, d)) : 2;
    return p;
  }

  /// (Re)allocates everything sized by k and drops the graphs that point at the old buffers.
  void configure(int k) {
    ProfileRange range("kmeans::configure");
    graphs_[0].reset();
    graphs_[1].reset();
    passes_[0] = passes_[1] = 0;
    plan_ = Plan{};  // a failure below leaves the engine unconfigured, not half-configured
    const Plan p = make_plan(k);
    const std::int64_t n = v_.n, d = v_.d;
    const cudaStream_t s = stream_.get();
    const auto kd = static_cast<std::size_t>(k) * static_cast<std::size_t>(d);
    const auto entries = static_cast<std::size_t>(layout::total_entries(k, d));

    d_centroids_.allocate(kd, "centroids");
    h_centroids_.allocate(kd, "centroids (pinned)");
    d_totals_.allocate(entries, "totals");
    h_totals_.allocate(entries, "totals (pinned)");
    d_partials_.allocate(static_cast<std::size_t>(p.records) * p.stat_blocks, "per-block partials");
    // Poison what the kernels must overwrite: an entry they skip shows up as NaN.
    KMEANS_CUDA_TRY(cudaMemsetAsync(d_partials_.get(), 0xFF, d_partials_.bytes(), s));
    KMEANS_CUDA_TRY(cudaMemsetAsync(d_totals_.get(), 0xFF, d_totals_.bytes(), s));
    std::fill(h_totals_.get(), h_totals_.get() + entries, std::nan(""));

    std::vector<std::int32_t> offsets(static_cast<std::size_t>(p.records) + 1);
    for (int e = 0; e <= p.records; ++e)
      offsets[e] = static_cast<std::int32_t>(layout::partial_slot(e, 0, p.stat_blocks));
    d_record_offsets_.allocate(offsets.size(), "segment offsets");
    KMEANS_CUDA_TRY(cudaMemcpyAsync(d_record_offsets_.get(), offsets.data(),
                                    offsets.size() * sizeof(std::int32_t), cudaMemcpyHostToDevice,
                                    s));
    std::size_t reduce_bytes = 0, bytes = 0;
    for (int segments : {2, p.records}) {
      KMEANS_CUDA_TRY(cub::DeviceSegmentedReduce::Sum(
          nullptr, bytes, d_partials_.get(), d_totals_.get(), segments, d_record_offsets_.get(),
          d_record_offsets_.get() + 1, s));
      reduce_bytes = std::max(reduce_bytes, bytes);
    }
    d_reduce_tmp_.allocate(std::max<std::size_t>(reduce_bytes, 1), "segmented-reduce scratch");

    if (!p.partials) {
      const auto un = static_cast<std::size_t>(n);
      d_sorted_labels_.allocate(un, "sorted labels");
      d_order_.allocate(un, "sorted point indices");
      if (d_order_in_.size() != un) {
        d_order_in_.allocate(un, "point indices");
        iota_kernel<<<static_cast<unsigned>(ceil_div(n, tn::kSmallThreads)), tn::kSmallThreads, 0,
                      s>>>(d_order_in_.get(), static_cast<int>(n));
        KMEANS_CUDA_CHECK_LAUNCH(s);
      }
      d_cluster_offsets_.allocate(static_cast<std::size_t>(k) + 1, "cluster offsets");
      bytes = 0;
      KMEANS_CUDA_TRY(cub::DeviceRadixSort::SortPairs(
          nullptr, bytes, d_labels_.get(), d_sorted_labels_.get(), d_order_in_.get(),
          d_order_.get(), static_cast<int>(n), 0, p.sort_bits, s));
      d_sort_tmp_.allocate(std::max<std::size_t>(bytes, 1), "radix-sort scratch");
    }
    if (p.gemm) {
      if (d_cublas_ws_.size() == 0) d_cublas_ws_.allocate(tn::kCublasWorkspaceBytes, "cuBLAS workspace");
      cublas_.create(s, d_cublas_ws_.get(), d_cublas_ws_.bytes());
      d_products_.allocate(static_cast<std::size_t>(p.gemm_rows) * static_cast<std::size_t>(k),
                           "distance products");
      d_centred_.allocate(kd, "centred centroids");
      d_terms_.allocate(3 * static_cast<std::size_t>(k), "centroid ranking terms");
      if (!mean_valid_) compute_mean();
    }
    KMEANS_CUDA_TRY(cudaStreamSynchronize(s));
    plan_ = p;
  }

  /// The per-feature data mean in double (the GEMM path's centre), once per data set: column
  /// sums over row chunks, then the chunks in order, so the bits depend only on n and d. Also |m|.
  void compute_mean() {
    const cudaStream_t s = stream_.get();
    const std::int64_t n = v_.n, d = v_.d;
    const std::int64_t chunks = tn::mean_chunks(n, d);
    const int col_tile = tn::col_tile_for(d);
    grow(d_mean_partial_, static_cast<std::size_t>(chunks * d), "column partial sums");
    DeviceBuffer<double>& d_partial = d_mean_partial_;
    mean_valid_ = false;  // until the end: a failure below leaves it to be redone
    grow(d_mean_norm_, 1, "data mean norm");
    grow(d_mean_, static_cast<std::size_t>(d), "data mean");
    const dim3 grid(static_cast<unsigned>(ceil_div(d, col_tile)), static_cast<unsigned>(chunks));
    column_sums_kernel<T><<<grid, tn::kSortThreads, 0, s>>>(
        d_x_, n, d, tn::mean_rows_per_chunk(n, d), col_tile, d_partial.get());
    KMEANS_CUDA_CHECK_LAUNCH(s);
    column_means_kernel<<<static_cast<unsigned>(ceil_div(d, tn::kSmallThreads)), tn::kSmallThreads,
                          0, s>>>(d_partial.get(), chunks, d, n, d_mean_.get());
    KMEANS_CUDA_CHECK_LAUNCH(s);
    std::vector<double> mean(static_cast<std::size_t>(d));
    KMEANS_CUDA_TRY(cudaMemcpyAsync(mean.data(), d_mean_.get(), d_mean_.bytes(),
                                    cudaMemcpyDeviceToHost, s));
    KMEANS_CUDA_TRY(cudaStreamSynchronize(s));
    double norm = 0;
    for (double m : mean) norm += m * m;
    mean_norm_ = std::sqrt(norm);
    // A device scalar read by centre_centroids_kernel, so a captured graph survives new data.
    KMEANS_CUDA_TRY(cudaMemcpyAsync(d_mean_norm_.get(), &mean_norm_, sizeof(double),
                                    cudaMemcpyHostToDevice, s));
    KMEANS_CUDA_TRY(cudaStreamSynchronize(s));
    mean_valid_ = true;
  }

  /// Records one pass on the stream (for capture, or run directly in KMEANS_CUDA_SYNC_DEBUG).
  void enqueue_pass(bool with_sums) {
    const Plan& p = plan_;
    const cudaStream_t s = stream_.get();
    const std::int64_t n = v_.n, d = v_.d;
    const int k = p.k;
    KMEANS_CUDA_TRY(cudaMemcpyAsync(d_centroids_.get(), h_centroids_.get(), d_centroids_.bytes(),
                                    cudaMemcpyHostToDevice, s));
    if (p.gemm) {
      enqueue_gemm_assign();
    } else {
      AssignArgs<T> a;
      a.x = d_x_;
      a.w = d_w_;
      a.c = d_centroids_.get();
      a.n = static_cast<int>(n);
      a.d = static_cast<int>(d);
      a.k = k;
      a.k_tile = p.k_tile;
      a.subtiles_per_block = p.subtiles_per_block;
      a.n_blocks = p.assign_blocks;
      a.sort_bits = p.sort_bits;
      a.with_partials = with_sums && p.partials;
      a.labels = d_labels_.get();
      a.dist = d_dist_.get();
      a.partials = d_partials_.get();
      const std::size_t smem = tn::assign_smem_bytes(
          p.k_tile, d, sizeof(T), a.with_partials ? tn::partial_columns(k, d) : 0);
      assign_tile_kernel<T><<<p.assign_blocks, tn::kAssignThreads, smem, s>>>(a);
      KMEANS_CUDA_CHECK_LAUNCH(s);
    }
    if (with_sums && !p.partials) enqueue_sort_sums();
    std::size_t reduce_bytes = d_reduce_tmp_.bytes();
    const int segments = with_sums && p.partials ? p.records : 2;
    KMEANS_CUDA_TRY(cub::DeviceSegmentedReduce::Sum(
        d_reduce_tmp_.get(), reduce_bytes, d_partials_.get(), d_totals_.get(), segments,
        d_record_offsets_.get(), d_record_offsets_.get() + 1, s));
    const std::int64_t download = with_sums ? layout::total_entries(k, d) : layout::kTotalHeader;
    KMEANS_CUDA_TRY(cudaMemcpyAsync(h_totals_.get(), d_totals_.get(), download * sizeof(double),
                                    cudaMemcpyDeviceToHost, s));
  }

  /// The centred ranking: centroids centred on the data mean (centre_centroids_kernel), then
  /// one chunk of rows at a time, products[r][c] = x_r . c'_c by cuBLAS and the argmin.
  void enqueue_gemm_assign() {
    const Plan& p = plan_;
    const cudaStream_t s = stream_.get();
    const std::int64_t n = v_.n;
    const int d = static_cast<int>(v_.d), k = p.k;
    CentreArgs<T> ca;
    ca.c = d_centroids_.get();
    ca.mean = d_mean_.get();
    ca.k = k;
    ca.d = d;
    ca.mean_norm = d_mean_norm_.get();
    ca.gamma_t = tn::gemm_error_gamma(d, sizeof(T));
    ca.gamma_bias = tn::gemm_bias_gamma(d, sizeof(T));
    ca.centred = d_centred_.get();
    ca.terms = d_terms_.get();
    constexpr int kCentroidsPerBlock = tn::kGemmThreads / 32;  // a warp per centroid
    centre_centroids_kernel<T><<<static_cast<unsigned>(ceil_div(k, kCentroidsPerBlock)),
                                 tn::kGemmThreads, 0, s>>>(ca);
    KMEANS_CUDA_CHECK_LAUNCH(s);
    GemmTermsView terms;
    terms.bias = d_terms_.get();
    terms.slope = d_terms_.get() + k;
    terms.base = d_terms_.get() + 2 * static_cast<std::int64_t>(k);
    const T alpha = T(1), beta = T(0);
    for (std::int64_t row0 = 0; row0 < n; row0 += p.gemm_rows) {
      const int rows = static_cast<int>(std::min<std::int64_t>(p.gemm_rows, n - row0));
      // Column-major view: C' (d x k) transposed times X_chunk (d x rows) = products (k x rows).
      KMEANS_CUBLAS_TRY(gemm(cublas_.get(), k, rows, d, &alpha, d_centred_.get(), d,
                             d_x_ + row0 * d, d, &beta, d_products_.get(), k));
      GemmArgminArgs<T> a;
      a.x = d_x_;
      a.w = d_w_;
      a.c = d_centroids_.get();
      a.terms = terms;
      a.g = d_products_.get();
      a.n = static_cast<int>(n);
      a.d = d;
      a.k = k;
      a.row0 = static_cast<int>(row0);
      a.rows = rows;
      a.n_blocks = p.stat_blocks;
      a.labels = d_labels_.get();
      a.dist = d_dist_.get();
      a.partials = d_partials_.get();
      gemm_argmin_kernel<T><<<static_cast<unsigned>(ceil_div(rows, tn::kGemmRowsPerBlock)),
                              tn::kGemmThreads, 0, s>>>(a);
      KMEANS_CUDA_CHECK_LAUNCH(s);
    }
  }

  /// Large k * d: sort point indices by label, find each cluster's range, sum each cluster.
  void enqueue_sort_sums() {
    const Plan& p = plan_;
    const cudaStream_t s = stream_.get();
    const int n = static_cast<int>(v_.n), k = p.k;
    std::size_t sort_bytes = d_sort_tmp_.bytes();
    KMEANS_CUDA_TRY(cub::DeviceRadixSort::SortPairs(
        d_sort_tmp_.get(), sort_bytes, d_labels_.get(), d_sorted_labels_.get(), d_order_in_.get(),
        d_order_.get(), n, 0, p.sort_bits, s));
    cluster_offsets_kernel<<<static_cast<unsigned>(ceil_div(k + 1, tn::kSmallThreads)),
                             tn::kSmallThreads, 0, s>>>(d_sorted_labels_.get(), n, k,
                                                        d_cluster_offsets_.get());
    KMEANS_CUDA_CHECK_LAUNCH(s);
    ClusterSumArgs<T> a;
    a.x = d_x_;
    a.w = d_w_;
    a.order = d_order_.get();
    a.offsets = d_cluster_offsets_.get();
    a.d = static_cast<int>(v_.d);
    a.k = k;
    a.col_tile = p.col_tile;
    a.totals = d_totals_.get();
    const dim3 grid(static_cast<unsigned>(k),
                    static_cast<unsigned>(tn::sort_grid_y(v_.d, p.col_tile)));
    cluster_sums_kernel<T><<<grid, tn::kSortThreads, 0, s>>>(a);
    KMEANS_CUDA_CHECK_LAUNCH(s);
  }

  /// Captures one pass into a graph; a failure mid-capture ends the capture cleanly first.
  GraphExec capture(bool with_sums) {
    ProfileRange range("kmeans::capture");
    const cudaStream_t s = stream_.get();
    KMEANS_CUDA_TRY(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
    try {
      enqueue_pass(with_sums);
    } catch (...) {
      cudaGraph_t broken = nullptr;
      (void)cudaStreamEndCapture(s, &broken);
      if (broken) (void)cudaGraphDestroy(broken);
      (void)cudaGetLastError();
      throw;
    }
    cudaGraph_t graph = nullptr;
    KMEANS_CUDA_TRY(cudaStreamEndCapture(s, &graph));
    cudaGraphExec_t exec = nullptr;
    const cudaError_t err = cudaGraphInstantiate(&exec, graph, 0);
    KMEANS_CUDA_TRY_NOTHROW(cudaGraphDestroy(graph));
    KMEANS_CUDA_TRY(err);
    return GraphExec(exec);
  }

  DeviceRestore restore_;  // first member: destroyed last
  DataView<T> v_;
  int device_ = 0;
  bool on_device_ = false;
  int sm_count_ = 0;
  Stream stream_;
  DeviceBuffer<T> x_copy_, w_copy_;  // host input, copied once
  const T* d_x_ = nullptr;           // the data on the device (the user's pointer or x_copy_)
  const T* d_w_ = nullptr;
  DeviceBuffer<std::int32_t> d_labels_;
  DeviceBuffer<T> d_dist_;
  Plan plan_;
  DeviceBuffer<T> d_centroids_;
  PinnedBuffer<T> h_centroids_;
  DeviceBuffer<double> d_partials_, d_totals_;
  PinnedBuffer<double> h_totals_;
  DeviceBuffer<std::int32_t> d_record_offsets_;
  DeviceBuffer<unsigned char> d_reduce_tmp_;
  DeviceBuffer<std::int32_t> d_sorted_labels_, d_order_in_, d_order_, d_cluster_offsets_;
  DeviceBuffer<unsigned char> d_sort_tmp_;
  DeviceBuffer<unsigned char> d_cublas_ws_;
  CublasHandle cublas_;  // after its workspace: destroyed before it
  DeviceBuffer<T> d_products_, d_centred_;  // GEMM path: x.c' per chunk, c' = c - m
  DeviceBuffer<double> d_terms_, d_mean_;    // GEMM path: [bias | slope | base], data mean
  double mean_norm_ = 0;                     // |m|, also in d_mean_norm_
  bool mean_valid_ = false;                  // d_mean_ and d_mean_norm_ hold this data's
  DeviceBuffer<double> d_mean_norm_;
  DeviceBuffer<double> d_mean_partial_;     // GEMM path: column sums per row chunk
  DeviceBuffer<unsigned long long> d_first_;  // device-input validation flags
  DeviceBuffer<unsigned int> d_positive_;
  DeviceBuffer<T> d_transform_centroids_, d_transform_out_;  // distances(): grow only
  // Initialisation (DataOps), grow only.
  DeviceBuffer<double> d_closest_, d_cumsum_, d_trial_dist_, d_block_total_, d_block_offset_;
  DeviceBuffer<double> d_trial_block_sum_, d_uniforms_, d_scalar_;
  DeviceBuffer<std::int64_t> d_index_, d_candidates_, d_chosen_, d_nearest_;
  DeviceBuffer<int> d_best_;
  DeviceBuffer<T> d_gather_;
  DeviceBuffer<double> d_var_part_, d_var_mean_;  // mean_feature_variance
  std::vector<T> h_data_, h_weights_;  // host copies of device input, made on demand
  std::int64_t passes_[2] = {0, 0};    // passes run since configure, [without, with sums]
  GraphExec graphs_[2];                // [without sums, with sums]; destroyed first
};

}  // namespace

namespace {
std::atomic<std::int64_t> g_cuda_allocations{0};
}  // namespace

void count_cuda_allocation() noexcept { g_cuda_allocations.fetch_add(1, std::memory_order_relaxed); }

std::int64_t cuda_allocation_count() { return g_cuda_allocations.load(std::memory_order_relaxed); }

ProfileRange::ProfileRange(const char* name) { nvtxRangePushA(name); }
ProfileRange::~ProfileRange() { nvtxRangePop(); }

bool is_device_pointer(const void* p) {
  if (p == nullptr) return false;
  cudaPointerAttributes attr{};
  if (cudaPointerGetAttributes(&attr, p) != cudaSuccess) {
    (void)cudaGetLastError();  // no driver or no device: not device memory, and no sticky error
    return false;
  }
  return attr.type == cudaMemoryTypeDevice || attr.type == cudaMemoryTypeManaged;
}

bool cuda_working_set_fits(std::int64_t n, std::int64_t d, int k, std::size_t elem,
                           bool data_on_device, std::string* why, std::size_t extra_bytes,
                           std::size_t held_bytes) {
  if (!cuda_available(why)) return false;
  if (n > tn::kMaxPoints) {
    if (why) *why = "n = " + std::to_string(n) + " exceeds the CUDA backend's point limit";
    return false;
  }
  int device = 0, sms = 0;
  std::size_t free_b = 0, total_b = 0;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) != cudaSuccess ||
      cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) {
    const cudaError_t err = cudaGetLastError();
    if (why) *why = std::string("cannot query device memory: ") + cudaGetErrorString(err);
    return false;
  }
  const std::size_t need =
      tn::working_set_bytes(n, d, k, elem, data_on_device, sms) + tn::kWorkingSetMarginBytes +
      extra_bytes;
  if (need > free_b + held_bytes) {
    if (why)
      *why = "the fit needs about " + std::to_string(need >> 20) + " MiB of device memory, " +
             std::to_string((free_b + held_bytes) >> 20) + " MiB are free";
    return false;
  }
  return true;
}

template <class T>
std::unique_ptr<Engine<T>> make_cuda_engine(const DataView<T>& v) {
  std::string why;
  if (!cuda_available(&why)) throw Error("backend = cuda requested, but " + why);
  const bool on_device = is_device_pointer(v.data);
  const int device = device_for(v.data, on_device);
  DeviceGuard guard(device);
  return std::make_unique<CudaEngine<T>>(v, device, on_device);
}

template std::unique_ptr<Engine<float>> make_cuda_engine(const DataView<float>&);
template std::unique_ptr<Engine<double>> make_cuda_engine(const DataView<double>&);

}  // namespace detail

bool cuda_available(std::string* why) {
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    (void)cudaGetLastError();
    if (why) *why = std::string("no usable CUDA device: ") + cudaGetErrorString(err);
    return false;
  }
  if (count == 0) {
    if (why) *why = "no CUDA device found";
    return false;
  }
  int device = 0, major = 0, minor = 0;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess ||
      cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device) != cudaSuccess) {
    err = cudaGetLastError();
    if (why) *why = std::string("cannot query the CUDA device: ") + cudaGetErrorString(err);
    return false;
  }
  if (major < 8) {
    if (why)
      *why = "CUDA device " + std::to_string(device) + " has compute capability " +
             std::to_string(major) + "." + std::to_string(minor) + "; the CUDA backend needs 8.0+";
    return false;
  }
  cudaFuncAttributes attr{};
  err = cudaFuncGetAttributes(&attr, detail::probe_kernel);
  if (err != cudaSuccess) {
    (void)cudaGetLastError();
    if (why)
      *why = "this build has no kernels for compute capability " + std::to_string(major) + "." +
             std::to_string(minor) + ": " + cudaGetErrorString(err);
    return false;
  }
  return true;
}

}  // namespace kmeans
