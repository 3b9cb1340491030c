// SPDX-License-Identifier: Apache-2.0
// The CUDA engine's life cycle: binding data to the device (copy or use in place), rebinding new
// data of the same shape, the device-side validation of device input, and host copies of it.
#include <cuda_runtime.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <numeric>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "cuda/engine.cuh"
#include "internal.hpp"
#include "kernels/tuning.cuh"
#include "kernels/validate.cuh"

namespace kmeans::detail::cuda {

namespace tn = tuning;

/// The stream after whose work the caller's device data is read: Options::cuda_stream, or the
/// legacy default stream when none is given.
template <class T>
cudaStream_t caller_stream(const DataView<T>& v) {
  return v.stream ? static_cast<cudaStream_t>(v.stream) : cudaStreamLegacy;
}

template <class T>
CudaEngine<T>::CudaEngine(const DataView<T>& v, int device, bool on_device,
                          std::int64_t first_block, bool validated)
    : v_(v), device_(device), on_device_(on_device), first_block_(first_block),
      validated_(validated) {
  // Called with `device` current (make_cuda_engine's guard).
  if (v.n < 1) throw Error("n = " + std::to_string(v.n) + ": the CUDA engine needs at least one point");
  if (first_block < 0)
    throw Error("first_block = " + std::to_string(first_block) + " is negative");
  if (v.n > tn::kMaxPoints)
    throw Error("n = " + std::to_string(v.n) + " exceeds the CUDA backend's limit of " +
                std::to_string(tn::kMaxPoints) + " points");
  if (v.d > INT_MAX)
    throw Error("d = " + std::to_string(v.d) + " exceeds the CUDA backend's limit of " +
                std::to_string(INT_MAX) + " features");
  nodes_ = tree::decompose(first_block_, first_block_ + ceil_div(v.n, kReduceBlock));
  sm_count_ = device_attribute(cudaDevAttrMultiProcessorCount, device_);
  const std::size_t nd = static_cast<std::size_t>(v.n) * static_cast<std::size_t>(v.d);
  const cudaStream_t s = stream_.get();
  if (on_device_) {
    d_x_ = v.data;
    d_w_ = v.weights;
    // The caller may have just written the data on its stream (Options::cuda_stream; null: the
    // legacy default stream, with which every blocking stream synchronises) without waiting:
    // the non-blocking stream_ would not wait for it.
    Event ready;
    KMEANS_CUDA_TRY(cudaEventRecord(ready.get(), caller_stream(v)));
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
  if (on_device_ && !validated_) validate_device_input();
  KMEANS_CUDA_TRY(cudaStreamSynchronize(s));
}

template <class T>
CudaEngine<T>::~CudaEngine() {
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

/// Same n, d, device and memory space: the data is copied into (or pointed at by) the
/// existing buffers and every k-sized buffer, the plan and the captured graphs are kept. The
/// graphs are re-captured only when a pointer they hold changed (device input at a new
/// address, weights appearing or going).
template <class T>
bool CudaEngine<T>::rebind(const DataView<T>& v) {
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
    Event ready;  // ordered after the caller's work on its stream (as at construction)
    KMEANS_CUDA_TRY(cudaEventRecord(ready.get(), caller_stream(v)));
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
  if (on_device_ && !validated_) validate_device_input();
  h_dist_valid_ = false;
  // New data: the GEMM path's centre is recomputed (in place), unless the shard engine keeps
  // it (keep_centre: the labels and distances are exact whatever the centre).
  if (!keep_centre_) mean_valid_ = false;
  if ((plan_.gemm || plan_.mma) && !mean_valid_) compute_mean();
  KMEANS_CUDA_TRY(cudaStreamSynchronize(s));
  return true;
}

/// Device data gets the checks the driver gives host data: finite values within
/// max_abs_value<T>(d) (on the device) and weights that are finite, >= 0, not all 0 and of
/// a finite total (on a host copy), with the host's messages (validate.cpp).
template <class T>
void CudaEngine<T>::validate_device_input() {
  const cudaStream_t s = stream_.get();
  grow(d_first_, 1, "validation flags");
  DeviceBuffer<unsigned long long>& d_first = d_first_;
  KMEANS_CUDA_TRY(cudaMemsetAsync(d_first.get(), 0xFF, d_first.bytes(), s));
  const std::int64_t total = v_.n * v_.d;
  const auto grid = [&](std::int64_t count) {
    return static_cast<unsigned>(
        std::max<std::int64_t>(1, std::min<std::int64_t>(ceil_div(count, tn::kSmallThreads),
                                                         std::int64_t{sm_count_} * 8)));
  };
  const T bound = static_cast<T>(max_abs_value<T>(static_cast<std::size_t>(v_.d)));
  first_out_of_range_kernel<T><<<grid(total), tn::kSmallThreads, 0, s>>>(d_x_, total, bound,
                                                                         d_first.get());
  KMEANS_CUDA_CHECK_LAUNCH(s);
  unsigned long long first = 0;
  KMEANS_CUDA_TRY(cudaMemcpyAsync(&first, d_first.get(), sizeof first, cudaMemcpyDeviceToHost, s));
  KMEANS_CUDA_TRY(cudaStreamSynchronize(s));
  if (first < static_cast<unsigned long long>(total)) {
    const auto at = static_cast<std::int64_t>(first);
    throw Error(point_error("data", static_cast<double>(read_element(d_x_ + at)), at / v_.d,
                            at % v_.d, v_.d, std::is_same<T, float>::value));
  }
  // Values so small that squared distances would leave T's normal range are rescaled exactly
  // for host data (data_scale_exponent); device data is not copied, so it is refused instead.
  KMEANS_CUDA_TRY(cudaMemsetAsync(d_first.get(), 0, sizeof(unsigned long long), s));
  using Bits = std::conditional_t<sizeof(T) == 4, unsigned int, unsigned long long>;
  max_abs_kernel<T, Bits><<<grid(total), tn::kSmallThreads, 0, s>>>(
      d_x_, total, reinterpret_cast<Bits*>(d_first.get()));
  KMEANS_CUDA_CHECK_LAUNCH(s);
  T max_abs = 0;
  KMEANS_CUDA_TRY(cudaMemcpyAsync(&max_abs, d_first.get(), sizeof max_abs, cudaMemcpyDeviceToHost, s));
  KMEANS_CUDA_TRY(cudaStreamSynchronize(s));
  if (data_scale_exponent<T>(static_cast<double>(max_abs)) != 0) {
    std::ostringstream msg;
    msg << "data in GPU memory is too small to cluster exactly in "
        << (std::is_same<T, float>::value ? "float32" : "float64") << " (largest |x| = "
        << static_cast<double>(max_abs)
        << "): the library rescales such data exactly only in host memory; pass host memory "
           "or scale the data";
    throw Error(msg.str());
  }
  if (!d_w_) return;
  // The weights get the host's checks (finite, >= 0, not all 0, a finite total; the same
  // messages) on a host copy: n values, which initialisation reads there anyway.
  const WeightStats stats = validate_weights(host_weights(), v_.n, v_.n_threads);
  if (weight_scale_exponent<T>(stats) != 0) {
    std::ostringstream msg;
    msg << "sample_weight in GPU memory would need rescaling (largest weight " << stats.max
        << ", total " << stats.total
        << "): the library rescales weights exactly only in host memory; pass host weights or "
           "scale them";
    throw Error(msg.str());
  }
}

/// One element of device memory, for error messages.
template <class T>
T CudaEngine<T>::read_element(const T* d_ptr) {
  T value{};
  KMEANS_CUDA_TRY(cudaMemcpyAsync(&value, d_ptr, sizeof(T), cudaMemcpyDeviceToHost, stream_.get()));
  KMEANS_CUDA_TRY(cudaStreamSynchronize(stream_.get()));
  return value;
}

template <class T>
const T* CudaEngine<T>::host_data() {
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

template <class T>
const T* CudaEngine<T>::host_weights() {
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

template <class T>
std::size_t CudaEngine<T>::device_bytes() const {
  std::size_t total = 0;
  const auto add = [&total](const auto&... b) { ((total += b.bytes()), ...); };
  add(x_copy_, w_copy_, d_labels_, d_dist_, d_centroids_, d_partials_, d_totals_, d_leaf_,
      d_subtile_, d_nodes_,
      d_record_offsets_, d_reduce_tmp_, d_sorted_labels_, d_order_in_, d_order_,
      d_cluster_offsets_, d_sort_tmp_, d_cublas_ws_, d_products_, d_centred_, d_terms_, d_mean_,
      d_mean_partial_, d_mean_norm_, d_mma_centred_, d_mma_terms_, d_first_, d_label_counts_,
      d_transform_centroids_,
      d_transform_out_, d_closest_, d_cumsum_, d_trial_dist_, d_block_total_, d_block_offset_,
      d_trial_block_sum_, d_uniforms_, d_scalar_, d_index_, d_candidates_, d_chosen_,
      d_nearest_, d_best_, d_gather_, d_var_part_, d_var_mean_);
  return total;
}

template class CudaEngine<float>;
template class CudaEngine<double>;

}  // namespace kmeans::detail::cuda
