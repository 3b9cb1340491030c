// SPDX-License-Identifier: Apache-2.0
// The CUDA engine's update phase in the canonical order of src/cuda/shard.hpp (the kernels of
// kernels/canonical.cuh): the leaf SSE, the in-place node trees, the sort path's walk, the totals
// or the shard's node rows, and the shard engine's methods (assign_nodes, assign_nodes_device,
// point_distances).
#include <cuda_runtime.h>

#include <cstdint>
#include <string>
#include <vector>

#include <cub/device/device_radix_sort.cuh>

#include "cuda/engine.cuh"
#include "internal.hpp"
#include "kernels/canonical.cuh"
#include "kernels/layout.cuh"
#include "kernels/tuning.cuh"
#include "kernels/update.cuh"

namespace kmeans::detail::cuda {

namespace tn = tuning;

static_assert(canon::kLeafPoints == kReduceBlock, "a canonical leaf is a tree_sum.hpp block");

namespace {

/// The shard's nodes as kernel arguments (local leaf offsets and levels).
canon::NodeList node_list(const std::vector<tree::Node>& nodes, std::int64_t first_block) {
  std::vector<std::int64_t> start, size;
  for (const tree::Node& node : nodes) {
    start.push_back(node.start);
    size.push_back(node.size);
  }
  canon::NodeList list;
  if (!canon::make_node_list(start.data(), size.data(), nodes.size(), first_block, list))
    throw Error("internal: " + std::to_string(nodes.size()) + " tree nodes exceed " +
                std::to_string(canon::kMaxNodes));
  return list;
}

}  // namespace

template <class T>
StepStats CudaEngine<T>::assign_nodes(const T* centroids, int k, bool with_sums,
                                      std::vector<double>& out) {
  ProfileRange range("kmeans::assign_nodes");
  DeviceGuard guard(device_);
  const StepStats stats = run_pass(centroids, k, with_sums, true);
  const std::int64_t width = with_sums ? std::int64_t{k} * v_.d + k + 1 : 1;
  out.resize(nodes_.size() * static_cast<std::size_t>(width));
  KMEANS_CUDA_TRY(cudaMemcpyAsync(out.data(), d_nodes_.get(), out.size() * sizeof(double),
                                  cudaMemcpyDeviceToHost, stream_.get()));
  KMEANS_CUDA_TRY(cudaStreamSynchronize(stream_.get()));
  return stats;
}

template <class T>
const double* CudaEngine<T>::assign_nodes_device(const T* centroids, int k, bool with_sums,
                                                 StepStats* stats) {
  ProfileRange range("kmeans::assign_nodes");
  DeviceGuard guard(device_);
  const StepStats st = run_pass(centroids, k, with_sums, true);
  if (stats) *stats = st;
  return d_nodes_.get();
}

template <class T>
const T* CudaEngine<T>::point_distances() const {
  if (!h_dist_valid_) {
    DeviceGuard guard(device_);
    h_dist_.resize(static_cast<std::size_t>(v_.n));
    KMEANS_CUDA_TRY(cudaMemcpyAsync(h_dist_.data(), d_dist_.get(), d_dist_.bytes(),
                                    cudaMemcpyDeviceToHost, stream_.get()));
    KMEANS_CUDA_TRY(cudaStreamSynchronize(stream_.get()));
    h_dist_valid_ = true;
  }
  return h_dist_.data();
}

/// The canonical update (kernels/canonical.cuh) after the labels: the leaf SSE, the node
/// trees, the node rows or the totals.
template <class T>
void CudaEngine<T>::enqueue_canonical(bool with_sums, bool node_rows) {
  const Plan& p = plan_;
  const cudaStream_t s = stream_.get();
  const std::int64_t n = v_.n, d = v_.d, k = p.k;
  const std::int64_t leaves = ceil_div(n, kReduceBlock);
  const std::int64_t W = p.leaf_width;
  const std::int64_t width = with_sums ? k * d + k + 1 : 1;
  const canon::NodeList nodes = node_list(nodes_, first_block_);
  const std::int64_t subtiles = ceil_div(n, canon::kSubtilePoints);
  canon::leaf_sse_kernel<T><<<static_cast<unsigned>(ceil_div(subtiles, 256)), 256, 0, s>>>(
      d_dist_.get(), d_w_, n, leaves, W, d_leaf_.get());
  KMEANS_CUDA_CHECK_LAUNCH(s);
  // Leaf columns in use: all with the partials path's sums, else the SSE alone (the sort path
  // forms its sums' nodes itself).
  const std::int64_t e0 = with_sums && p.partials ? 0 : W - 1;
  const std::int64_t cols = W - e0;
  if (with_sums && p.subtile_rows) {
    canon::subtile_fold_kernel<<<static_cast<unsigned>(ceil_div(leaves * (W - 1), 256)), 256, 0,
                                 s>>>(d_subtile_.get(), subtiles, W, W - 1, leaves,
                                      d_leaf_.get());
    KMEANS_CUDA_CHECK_LAUNCH(s);
  }
  for (int t0 = 0; t0 < nodes.max_level; t0 += canon::kTreeGroupLevels) {
    const int span = std::min(nodes.max_level - t0, canon::kTreeGroupLevels);
    const std::int64_t groups = std::int64_t{1} << (nodes.max_level - t0 - span);
    canon::TreeArgs a;
    a.v = d_leaf_.get();
    a.width = W;
    a.e0 = e0;
    a.e1 = W;
    a.t0 = t0;
    a.nodes = nodes;
    const dim3 grid(static_cast<unsigned>(ceil_div(groups * cols, 256)),
                    static_cast<unsigned>(nodes.m));
    canon::tree_group_kernel<<<grid, 256, 0, s>>>(a);
    KMEANS_CUDA_CHECK_LAUNCH(s);
  }
  canon::FinishArgs f;
  f.leaf = d_leaf_.get();
  f.leaf_width = W;
  f.e0 = e0;
  f.k = k;
  f.d = d;
  f.width = width;
  f.nodes = nodes;
  f.out = node_rows ? d_nodes_.get() : nullptr;
  f.totals = d_totals_.get();
  canon::finish_leaves_kernel<<<static_cast<unsigned>(ceil_div(cols, 256)), 256, 0, s>>>(f);
  KMEANS_CUDA_CHECK_LAUNCH(s);
  if (node_rows) {  // the shard's SSE total for StepStats
    canon::FoldArgs a;
    a.nodes = d_nodes_.get();
    a.m = nodes.m;
    a.width = width;
    a.e0 = width - 1;
    a.k = k;
    a.d = d;
    a.totals = d_totals_.get();
    canon::fold_totals_kernel<<<1, 256, 0, s>>>(a);
    KMEANS_CUDA_CHECK_LAUNCH(s);
  }
}

/// Large k * d: sort point indices by label, find each cluster's range, walk each
/// (cluster, column) onto its sparse node stack: node rows into `node_out`, or (null) their
/// right fold into the totals.
template <class T>
void CudaEngine<T>::enqueue_sort_sums(double* node_out) {
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
  canon::WalkArgs<T> a;
  a.x = d_x_;
  a.w = d_w_;
  a.order = d_order_.get();
  a.offsets = d_cluster_offsets_.get();
  a.d = static_cast<int>(v_.d);
  a.k = k;
  a.col_tile = p.col_tile;
  a.first_block = first_block_;
  a.n_leaves = ceil_div(v_.n, kReduceBlock);
  a.width = std::int64_t{k} * v_.d + k + 1;
  a.m = static_cast<int>(nodes_.size());
  a.out = node_out;
  a.totals = d_totals_.get();
  const dim3 grid(static_cast<unsigned>(k),
                  static_cast<unsigned>(tn::sort_grid_y(v_.d, p.col_tile)));
  canon::sorted_walk_kernel<T><<<grid, tn::kSortThreads, 0, s>>>(a);
  KMEANS_CUDA_CHECK_LAUNCH(s);
}

#define KMEANS_CUDA_UPDATE_MEMBERS(TYPE) \
  template StepStats CudaEngine<TYPE>::assign_nodes(const TYPE* centroids, int k, bool with_sums, std::vector<double>& out); \
  template const double* CudaEngine<TYPE>::assign_nodes_device(const TYPE* centroids, int k, bool with_sums, StepStats* stats); \
  template const TYPE* CudaEngine<TYPE>::point_distances() const; \
  template void CudaEngine<TYPE>::enqueue_canonical(bool with_sums, bool node_rows); \
  template void CudaEngine<TYPE>::enqueue_sort_sums(double* node_out);

KMEANS_CUDA_ENGINE_INSTANTIATE(KMEANS_CUDA_UPDATE_MEMBERS)

}  // namespace kmeans::detail::cuda
