// SPDX-License-Identifier: Apache-2.0
// The CUDA engine's DataOps and transform: greedy k-means++, k-means|| distances, the tol
// scale and row gathers on the device with the host's bits (kernels/init.cuh), and the exact
// point-centroid distances of transform (kernels/distances.cuh).
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
#include <utility>
#include <vector>

#include "cuda/engine.cuh"
#include "internal.hpp"
#include "kernels/distances.cuh"
#include "kernels/init.cuh"
#include "kernels/tuning.cuh"

namespace kmeans::detail::cuda {

namespace tn = tuning;

/// transform: the exact distances kernel over row chunks of at most kTransformChunkBytes of
/// output, each chunk copied to `out` as it is done. The buffers only grow.
template <class T>
void CudaEngine<T>::distances(const T* centroids, int k, T* out) {
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

template <class T>
void CudaEngine<T>::rows(const std::int64_t* idx, std::int64_t m, T* out) {
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
template <class T>
std::vector<std::int64_t> CudaEngine<T>::greedy_kmeanspp(int k, int trials, const double* u) {
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

template <class T>
void CudaEngine<T>::lower_closest(const std::int64_t* idx, std::int64_t m, double* closest) {
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
template <class T>
double CudaEngine<T>::mean_feature_variance() {
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

template <class T>
void CudaEngine<T>::nearest(const std::int64_t* idx, std::int64_t m, std::int64_t* out) {
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

template <class T>
void CudaEngine<T>::upload_indices(const std::int64_t* idx, std::int64_t m) {
  grow(d_index_, static_cast<std::size_t>(m), "point indices");
  KMEANS_CUDA_TRY(cudaMemcpyAsync(d_index_.get(), idx, m * sizeof(std::int64_t),
                                  cudaMemcpyHostToDevice, stream_.get()));
}

/// Prefix sums of w * v (v null: 1) over the points into d_cumsum_, in the host's order;
/// the total into *total (device).
template <class T>
void CudaEngine<T>::prefix(const double* v, double* total) {
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

template <class T>
void CudaEngine<T>::release_init_buffers() noexcept {
  d_closest_.release();
  d_cumsum_.release();
  d_trial_dist_.release();
  d_block_total_.release();
  d_block_offset_.release();
  d_trial_block_sum_.release();
  d_uniforms_.release();
}

#define KMEANS_CUDA_DATA_OPS_MEMBERS(TYPE) \
  template void CudaEngine<TYPE>::distances(const TYPE* centroids, int k, TYPE* out); \
  template void CudaEngine<TYPE>::rows(const std::int64_t* idx, std::int64_t m, TYPE* out); \
  template std::vector<std::int64_t> CudaEngine<TYPE>::greedy_kmeanspp(int k, int trials, const double* u); \
  template void CudaEngine<TYPE>::lower_closest(const std::int64_t* idx, std::int64_t m, double* closest); \
  template double CudaEngine<TYPE>::mean_feature_variance(); \
  template void CudaEngine<TYPE>::nearest(const std::int64_t* idx, std::int64_t m, std::int64_t* out); \
  template void CudaEngine<TYPE>::upload_indices(const std::int64_t* idx, std::int64_t m); \
  template void CudaEngine<TYPE>::prefix(const double* v, double* total); \
  template void CudaEngine<TYPE>::release_init_buffers() noexcept;

KMEANS_CUDA_ENGINE_INSTANTIATE(KMEANS_CUDA_DATA_OPS_MEMBERS)

}  // namespace kmeans::detail::cuda
