// SPDX-License-Identifier: Apache-2.0
// The CUDA engine's class: the state one bound data set keeps on the device (buffers, stream,
// cuBLAS handle, captured graphs) and the methods, defined in engine.cu (binding, validation),
// passes.cu (the Lloyd passes), update.cu (their canonical update phase and the shard engine's
// node rows) and data_ops.cu (initialisation and transform on the device).
//
// One pass (Engine::assign) for k centroids is, on the engine's own non-blocking stream:
//   upload centroids (pinned host -> device)
//   -> assign: the fused tile kernel (kernels/assign.cuh), or, when k and d are large
//      (tuning::use_gemm) and cuBLAS can be loaded, centroids centred on the data mean, cuBLAS
//      products x.c' (on a second stream, forked and joined by events, chunk i + 1's GEMM
//      overlapping chunk i's ranking) and the one-pass centred ranking with exact distances
//      for the candidates (gemm_argmin_kernel), or, for float data with many centroids
//      (tuning::use_mma), the fused TF32 tensor-core ranking with exact distances for its
//      candidates (mma_pass.cu)
//   -> update, in the canonical order of src/cuda/shard.hpp (kernels/canonical.cuh): the fused
//      kernel's per-leaf values (blocks own whole 4096-point leaves) reduced in place by the
//      node trees, or, when k * d is too large for partials (tuning::use_partials), the labels
//      radix-sorted and each (cluster, column) walked leaf by leaf onto a sparse node stack;
//      the SSE by its own leaf kernel; the changed count by cub::DeviceSegmentedReduce of the
//      assign kernels' per-block counts
//   -> the totals (the right fold of the nodes) or, for a shard (assign_nodes), the node rows
//   -> download SSE, changed count, weights and sums (device -> pinned host).
// The sequence is captured once per (k, with/without sums, totals/nodes) into a CUDA graph and
// replayed. For small fits the driver's whole loop runs on the device (run_lloyd,
// device_loop.cu): per iteration the pass without the upload and download and one step kernel
// (farthest points of empty clusters, update, convergence), a batch captured into one graph.
//
// Determinism: no floating-point atomics; every sum (per-cluster sums and weights, the SSE)
// follows the canonical order of src/cuda/shard.hpp: sub-tiles of 256 points in point order,
// leaves of 4096 points, the dyadic tree over leaves of tree_sum.hpp, each product and sum
// rounded on its own (never fused). It depends only on the data, the labels and the weights:
// not on the grid, the SM count, the device, nor on how the rows are split into chunks or
// ranks, so an in-memory, streamed or multi-GPU CUDA fit gives the same bits (the Cpu backend
// sums in the same order, src/cpu_accumulate.hpp; the Reference backend does not). The changed count
// is exact. cuBLAS GEMMs are deterministic on one stream with a fixed workspace, and the labels
// and distances of every path are exact, so the GEMM path changes no bit either. Sums are in
// double from the first addition: a per-block float sum over a few thousand points would lose
// ~12 bits, and the sums cost d additions per point against k * d for the distances.
//
// Synchronisation: the constructor (upload, device-side validation), every assign,
// assign_nodes and assign_nodes_device (one cudaStreamSynchronize after the graph, as the
// interfaces hand sums or the StepStats back on the host), point_distances (its copy),
// labels(), farthest() (its 2 x 64 int64 picks), run_lloyd() (once per batch of device-loop
// iterations: the loop's state), distances(), rebind(), each DataOps call (initialisation, the tol
// scale, row gathers: once at its end, greedy k-means++ included) and the first
// host_data()/host_weights() of device data synchronise the engine's stream. Changing k
// reallocates the k-sized buffers (cudaMalloc/cudaFree synchronise the device). Device input is
// ordered after the caller's earlier work on its stream (Options::cuda_stream; by default the
// legacy default stream, and so every blocking stream) by one event recorded there at
// construction and at each rebind; nothing else touches the caller's stream.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <string>
#include <vector>

#include "cuda/cublas.hpp"
#include "cuda/runtime.hpp"
#include "cuda/shard.hpp"
#include "engine.hpp"
#include "kernels/device_buffer.hpp"
#include "tree_sum.hpp"

namespace kmeans::detail::cuda {

/// How one k is run: the paths and the launch shapes (see kernels/tuning.cuh).
struct Plan {
  int k = 0;
  bool gemm = false;          ///< cuBLAS distances + gemm_argmin_kernel
  bool mma = false;           ///< TF32 tensor-core ranking + exact recheck (mma_pass.cu)
  bool partials = false;      ///< per-block partial sums inside the assign kernel
  int k_tile = 0;             ///< assign kernel: centroids per shared-memory tile
  int subtiles_per_block = 0; ///< assign kernel: sub-tiles of 256 points per block (with
                              ///< partials a multiple of 16: whole leaves)
  int assign_blocks = 0;      ///< assign kernel grid
  int stat_blocks = 0;        ///< blocks that write a column of the partial buffer
  int records = 0;            ///< entries of the per-block partial buffer (SSE, changed)
  std::int64_t leaf_width = 0;  ///< doubles of a leaf row: k (d + 1) + 1 with partials, else 1
  bool subtile_rows = false;    ///< partials: one row per sub-tile (small n), then folded
  int sort_bits = 0;          ///< radix bits of a label
  int gemm_rows = 0;          ///< rows per GEMM chunk
  int gemm_ld = 0;            ///< leading dimension of the GEMM products (k rounded up to 4)
  int col_tile = 0;           ///< sorted_walk_kernel column tile
};

/// The environment variable that forces the assign kernel's sub-tiles per block (rounded up to
/// whole leaves with partials): a test hook, to check that the sums do not depend on the grid.
constexpr const char* kSubtilesPerBlockEnv = "KMEANS_CUDA_TEST_SUBTILES_PER_BLOCK";
/// The environment variable that, set to 1, makes the tile path sum by the sort path even when
/// partials fit: a test hook, to check that both paths give the same bits.
constexpr const char* kForceSortEnv = "KMEANS_CUDA_TEST_SORT_PATH";

template <class T>
class CudaEngine final : public CudaShardEngine<T>, public DataOps<T> {
 public:
  /// Binds the data (copied to the device once, or used in place when it is device memory)
  /// and validates device input (unless `validated`); called with `device` current. The rows
  /// are the shard starting at global block `first_block` (0: the whole data set).
  CudaEngine(const DataView<T>& v, int device, bool on_device, std::int64_t first_block = 0,
             bool validated = false);
  ~CudaEngine() override;

  Backend kind() const override { return Backend::Cuda; }
  StepStats assign(const T* centroids, int k, double* sums, double* weights) override;
  // ShardEngine / CudaShardEngine (src/cuda/shard.hpp).
  const std::vector<tree::Node>& nodes() const override { return nodes_; }
  StepStats assign_nodes(const T* centroids, int k, bool with_sums,
                         std::vector<double>& out) override;
  const double* assign_nodes_device(const T* centroids, int k, bool with_sums,
                                    StepStats* stats) override;
  /// A host copy of the distances, made on the first call after each pass.
  const T* point_distances() const override;
  void keep_centre() override { keep_centre_ = true; }
  int device() const override { return device_; }
  void* stream() const override { return stream_.get(); }
  void labels(std::int32_t* out) override;
  /// Params::device_labels_out (device_out.cu).
  int labels_device() const override { return device_; }
  void labels_to_device(std::int32_t* out, int k, std::vector<std::int64_t>& counts) override;
  /// By decreasing distance, ties to the lowest index: selected on the device (farthest.cu,
  /// kernels/farthest.cuh), 2m values downloaded; m > tuning::kFarthestMaxM ranks on the host.
  std::vector<FarPoint> farthest(std::int64_t m) override;
  /// The device Lloyd loop (device_loop.cu): batches of passes and step kernels in one graph.
  bool run_lloyd(T* centroids, int k, int max_iter, double tol, LloydTrace& out) override;
  const T* host_data() override;
  const T* host_weights() override;
  /// transform: the exact distances kernel over row chunks of at most kTransformChunkBytes of
  /// output, each chunk copied to `out` as it is done. The buffers only grow.
  void distances(const T* centroids, int k, T* out) override;
  DataOps<T>* data_ops() override { return this; }
  std::size_t device_bytes() const override;
  /// The plan of the current k (tests: which assignment path runs).
  const Plan& plan() const { return plan_; }

  // DataOps: initialisation on the device (kernels/init.cuh), the host's bits (data_ops.cu).
  std::int64_t size() const override { return v_.n; }
  std::int64_t dim() const override { return v_.d; }
  const T* weights() override { return host_weights(); }
  void rows(const std::int64_t* idx, std::int64_t m, T* out) override;
  /// The whole greedy k-means++ on the device: a step is draw (search_kernel), trial
  /// distances, their block sums, the choice, and the new prefix sums; the host only uploads
  /// the uniforms and downloads the k indices. Needs (trials + 2) x n doubles; when they do
  /// not fit, the host does it (from a host copy of device data).
  std::vector<std::int64_t> greedy_kmeanspp(int k, int trials, const double* u) override;
  void lower_closest(const std::int64_t* idx, std::int64_t m, double* closest) override;
  /// Two passes on the device, each a partial sum per block of points and feature in the
  /// host's order (block_column_sums_kernel); the blocks are added on the host in block order,
  /// as mean_feature_variance does.
  double mean_feature_variance() override;
  void nearest(const std::int64_t* idx, std::int64_t m, std::int64_t* out) override;
  /// Same n, d, device and memory space: the data is copied into (or pointed at by) the
  /// existing buffers and every k-sized buffer, the plan and the captured graphs are kept. The
  /// graphs are re-captured only when a pointer they hold changed (device input at a new
  /// address, weights appearing or going).
  bool rebind(const DataView<T>& v) override;

 private:
  void drop_graphs() noexcept {
    for (int m = 0; m < kModes; ++m) {
      graphs_[m].reset();
      passes_[m] = 0;
    }
    loop_graph_.reset();
    loop_batches_ = 0;
  }
  /// A pass's graph: with sums (bit 0), node rows instead of totals (bit 1).
  static constexpr int kModes = 4;
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
  void upload_indices(const std::int64_t* idx, std::int64_t m);
  /// Prefix sums of w * v (v null: 1) over the points into d_cumsum_, in the host's order;
  /// the total into *total (device).
  void prefix(const double* v, double* total);
  void release_init_buffers() noexcept;
  /// Device data gets the checks the driver gives host data: finite values within
  /// max_abs_value<T>(d) (on the device) and weights that are finite, >= 0, not all 0 and of
  /// a finite total (on a host copy), with the host's messages (validate.cpp).
  void validate_device_input();
  /// One element of device memory, for error messages.
  T read_element(const T* d_ptr);
  Plan make_plan(int k) const;
  /// (Re)allocates everything sized by k and drops the graphs that point at the old buffers.
  void configure(int k);
  /// The per-feature data mean in double (the GEMM path's centre), once per data set: column
  /// sums over row chunks, then the chunks in order, so the bits depend only on n and d. Also |m|.
  void compute_mean();
  /// One pass on the stream (graph replay after the first) and its synchronisation; mode as
  /// graphs_'. The totals header (SSE, changed) is on the host after it, and the totals (totals
  /// mode) or the node rows in d_nodes_ (nodes mode).
  StepStats run_pass(const T* centroids, int k, bool with_sums, bool node_rows);
  /// Records one pass on the stream (for capture, or run directly in KMEANS_CUDA_SYNC_DEBUG).
  void enqueue_pass(int mode);
  /// The canonical update (kernels/canonical.cuh) after the labels: the leaf SSE, the node
  /// trees, the node rows or the totals.
  void enqueue_canonical(bool with_sums, bool node_rows);
  /// The centred ranking: centroids centred on the data mean (centre_centroids_kernel), then
  /// one chunk of rows at a time, products[r][c] = x_r . c'_c by cuBLAS (on gemm_stream_, into
  /// one of two buffers) and the one-pass argmin (on stream_), chunk i + 1's GEMM overlapping
  /// chunk i's argmin.
  void enqueue_gemm_assign();
  /// Large k * d: sort point indices by label, find each cluster's range, walk each
  /// (cluster, column) onto its sparse node stack: node rows into `node_out`, or (null) their
  /// right fold into the totals.
  void enqueue_sort_sums(double* node_out);
  /// Captures one pass into a graph; a failure mid-capture ends the capture cleanly first.
  GraphExec capture(int mode);
  /// The two-stage top-m selection (m <= tuning::kFarthestMaxM) over d_dist_ into d_far_out_
  /// (farthest.cu). The device loop's step kernel selects by itself, in one block.
  void enqueue_farthest(int m);
  /// `iters` device-loop iterations: pass (mode 5: no upload, no download), step kernel.
  void enqueue_loop_batch(int iters);

  DeviceRestore restore_;  // first member: destroyed last
  DataView<T> v_;
  int device_ = 0;
  bool on_device_ = false;
  std::int64_t first_block_ = 0;   // the shard's first global block (leaf)
  bool validated_ = false;         // device input is not checked (make_cuda_shard_engine)
  bool keep_centre_ = false;       // rebinds keep the GEMM path's centre (ShardEngine)
  std::vector<tree::Node> nodes_;  // the canonical decomposition of the shard's leaves
  int sm_count_ = 0;
  Stream stream_;
  // GEMM path: cuBLAS's stream, forked from stream_ and joined back each pass, and its events
  // (fork; per product buffer: GEMM done, argmin done). See enqueue_gemm_assign.
  Stream gemm_stream_;
  Event gemm_fork_, gemm_ready_[2], gemm_free_[2];
  DeviceBuffer<T> x_copy_, w_copy_;  // host input, copied once
  const T* d_x_ = nullptr;           // the data on the device (the user's pointer or x_copy_)
  const T* d_w_ = nullptr;
  DeviceBuffer<std::int32_t> d_labels_;
  DeviceBuffer<T> d_dist_;
  Plan plan_;
  DeviceBuffer<T> d_centroids_;
  PinnedBuffer<T> h_centroids_;
  DeviceBuffer<double> d_partials_, d_totals_;
  DeviceBuffer<double> d_leaf_;   // leaf rows (plan_.leaf_width each), reduced in place
  DeviceBuffer<double> d_subtile_;  // small n, partials: sub-tile rows (plan_.subtile_rows)
  DeviceBuffer<double> d_nodes_;  // node rows of a shard pass (assign_nodes), grow only
  mutable std::vector<T> h_dist_; // point_distances(): host copy of d_dist_
  mutable bool h_dist_valid_ = false;
  PinnedBuffer<double> h_totals_;
  DeviceBuffer<std::int32_t> d_record_offsets_;
  DeviceBuffer<unsigned char> d_reduce_tmp_;
  DeviceBuffer<std::int32_t> d_sorted_labels_, d_order_in_, d_order_, d_cluster_offsets_;
  DeviceBuffer<unsigned char> d_sort_tmp_;
  DeviceBuffer<unsigned char> d_cublas_ws_;
  CublasHandle cublas_;  // after its workspace: destroyed before it
  DeviceBuffer<T> d_products_, d_centred_;  // GEMM path: x.c' (two chunks), c' = c - m
  DeviceBuffer<double> d_terms_, d_mean_;    // GEMM path: GemmTermsView's array, data mean
  double mean_norm_ = 0;                     // |m|, also in d_mean_norm_
  bool mean_valid_ = false;                  // d_mean_ and d_mean_norm_ hold this data's
  DeviceBuffer<double> d_mean_norm_;
  DeviceBuffer<double> d_mean_partial_;     // GEMM path: column sums per row chunk
  DeviceBuffer<float> d_mma_centred_, d_mma_terms_;  // TF32 path: tf32(c - m) padded, terms
  DeviceBuffer<unsigned long long> d_first_;  // device-input validation flag
  DeviceBuffer<unsigned long long> d_label_counts_;  // labels_to_device: points per label
  DeviceBuffer<T> d_transform_centroids_, d_transform_out_;  // distances(): grow only
  // Initialisation (DataOps), grow only.
  DeviceBuffer<double> d_closest_, d_cumsum_, d_trial_dist_, d_block_total_, d_block_offset_;
  DeviceBuffer<double> d_trial_block_sum_, d_uniforms_, d_scalar_;
  DeviceBuffer<std::int64_t> d_index_, d_candidates_, d_chosen_, d_nearest_;
  DeviceBuffer<int> d_best_;
  DeviceBuffer<T> d_gather_;
  DeviceBuffer<double> d_var_part_, d_var_mean_;  // mean_feature_variance
  // Farthest points (farthest.cu: candidates, picks) and the device loop (device_loop.cu), grow
  // only.
  DeviceBuffer<std::int64_t> d_far_cand_, d_far_out_, d_loop_state_;
  DeviceBuffer<double> d_loop_hist_;  // [sse | imbalance], max_iter each
  PinnedBuffer<std::int64_t> h_loop_state_;
  std::int64_t loop_batches_ = 0;     // device-loop batches run since configure
  int loop_graph_iters_ = 0;          // iterations in loop_graph_
  std::vector<T> h_data_, h_weights_;  // host copies of device input, made on demand
  std::int64_t passes_[kModes] = {};   // passes run since configure, per mode
  GraphExec graphs_[kModes];           // per mode (drop_graphs); destroyed first
  GraphExec loop_graph_;               // a device-loop batch (drop_graphs)
};

// Defined in engine.cu (the class), passes.cu, update.cu and data_ops.cu (their members).
extern template class CudaEngine<float>;
extern template class CudaEngine<double>;

/// The explicit instantiations of the methods each .cu file defines (float and double only).
#define KMEANS_CUDA_ENGINE_INSTANTIATE(MEMBERS) MEMBERS(float) MEMBERS(double)

}  // namespace kmeans::detail::cuda
