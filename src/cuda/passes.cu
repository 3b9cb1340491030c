// SPDX-License-Identifier: Apache-2.0
// The Lloyd passes of the CUDA engine: planning a k (paths, tiles, grids), allocating its
// buffers, recording one pass (assign kernel or cuBLAS GEMM + argmin, then the canonical update
// of update.cu) and replaying it as a CUDA graph; labels. (The farthest points: farthest.cu.)
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <numeric>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <cub/device/device_radix_sort.cuh>
#include <cub/device/device_segmented_reduce.cuh>

#include "cuda/engine.cuh"
#include "cuda/mma_pass.hpp"
#include "internal.hpp"
#include "kernels/assign.cuh"
#include "kernels/canonical.cuh"
#include "kernels/gemm_rank.cuh"
#include "kernels/layout.cuh"
#include "kernels/tuning.cuh"
#include "kernels/update.cuh"

namespace kmeans::detail::cuda {

namespace tn = tuning;

namespace {

/// A positive integer from the environment (a test hook), or 0.
std::int64_t env_count(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) return 0;
  char* end = nullptr;
  const long long x = std::strtoll(v, &end, 10);
  if (*end != '\0' || x <= 0 || x > INT_MAX)
    throw Error(std::string(name) + " = '" + v + "' is not a positive integer");
  return x;
}

/// set_cuda_gemm_chunk_rows_for_testing's value (0: the size rule).
std::atomic<std::int64_t> g_gemm_chunk_rows{0};
}  // namespace

// The assign kernel's static shared memory must leave kAssignSmemBytes of dynamic memory under
// the 48 KiB a kernel gets without an opt-in.
static_assert(sizeof(typename cub::BlockRadixSort<int, tn::kAssignThreads, 1, int>::TempStorage) +
                      2 * tn::kAssignThreads * sizeof(int) + tn::kAssignSmemBytes <=
                  48 * 1024,
              "assign kernel shared memory exceeds 48 KiB");

#if defined(KMEANS_CUDA_SYNC_DEBUG)
#pragma nv_diag_suppress 177  // the graph machinery is compiled but unused in this mode
#endif

template <class T>
StepStats CudaEngine<T>::run_pass(const T* centroids, int k, bool with_sums, bool node_rows) {
  if (k != plan_.k) configure(k);
  std::memcpy(h_centroids_.get(), centroids,
              static_cast<std::size_t>(k) * static_cast<std::size_t>(v_.d) * sizeof(T));
  const int mode = (with_sums ? 1 : 0) | (node_rows ? 2 : 0);
  if (node_rows) {
    const std::int64_t width = with_sums ? std::int64_t{k} * v_.d + k + 1 : 1;
    const double* before = d_nodes_.get();
    grow(d_nodes_, nodes_.size() * static_cast<std::size_t>(width), "tree node rows");
    if (d_nodes_.get() != before) {  // the node-row graphs hold the old pointer
      graphs_[2].reset();
      graphs_[3].reset();
    }
  }
  h_dist_valid_ = false;
#if defined(KMEANS_CUDA_SYNC_DEBUG)
  enqueue_pass(mode);  // graphs cannot hold the per-launch synchronisations
#else
  // The first pass of a configuration runs directly: it loads lazily-loaded kernels (CUDA's
  // default module loading) outside a capture and reports any launch error at its source.
  // Later passes capture the same sequence once and replay it.
  if (passes_[mode]++ == 0) {
    enqueue_pass(mode);
  } else {
    if (!graphs_[mode]) graphs_[mode] = capture(mode);
    KMEANS_CUDA_TRY(cudaGraphLaunch(graphs_[mode].get(), stream_.get()));
  }
#endif
  KMEANS_CUDA_TRY(cudaStreamSynchronize(stream_.get()));
  const double* h = h_totals_.get();
  StepStats stats;
  stats.sse = h[layout::kTotalSse];
  stats.n_changed = static_cast<std::int64_t>(h[layout::kTotalChanged]);
  return stats;
}

template <class T>
StepStats CudaEngine<T>::assign(const T* centroids, int k, double* sums, double* weights) {
  ProfileRange range("kmeans::assign");
  DeviceGuard guard(device_);
  const bool with_sums = sums != nullptr;
  const StepStats stats = run_pass(centroids, k, with_sums, false);
  const double* h = h_totals_.get();
  if (with_sums) {
    std::copy(h + layout::total_weight(0), h + layout::total_weight(k), weights);
    std::copy(h + layout::total_sum(0, 0, k, v_.d),
              h + layout::total_sum(0, 0, k, v_.d) + static_cast<std::int64_t>(k) * v_.d, sums);
  }
  return stats;
}

template <class T>
void CudaEngine<T>::labels(std::int32_t* out) {
  DeviceGuard guard(device_);
  KMEANS_CUDA_TRY(cudaMemcpyAsync(out, d_labels_.get(), d_labels_.bytes(),
                                  cudaMemcpyDeviceToHost, stream_.get()));
  KMEANS_CUDA_TRY(cudaStreamSynchronize(stream_.get()));
}

template <class T>
Plan CudaEngine<T>::make_plan(int k) const {
  const std::int64_t n = v_.n, d = v_.d;
  constexpr std::size_t elem = sizeof(T);
  Plan p;
  p.k = k;
  // Without a loadable cuBLAS the tile kernel serves every k (exact as well, slower at large
  // k and d) instead of failing the fit. KMEANS_CUDA_ASSIGN forces a path where it can run.
  const AssignPath forced = forced_assign_path();
  const bool mma_ok = std::is_same_v<T, float> && mma_supported(device_, d);
  const bool tile_ok = tn::assign_centroid_tile(k, d, elem, tn::kAssignSmemBytes) != 0;
  const bool gemm_ok = cublas_api() != nullptr;
  const bool rules = forced == AssignPath::Rules || (forced == AssignPath::Mma && !mma_ok) ||
                     (forced == AssignPath::Tile && !tile_ok) ||
                     (forced == AssignPath::Gemm && !gemm_ok);
  if (rules) {
    p.mma = mma_ok && tn::use_mma(k, d, elem);
    p.gemm = !p.mma && tn::use_gemm(k, d, elem) && gemm_ok;
  } else {
    p.mma = forced == AssignPath::Mma;
    p.gemm = forced == AssignPath::Gemm;
  }
  const char* force_sort = std::getenv(kForceSortEnv);  // test hook
  p.partials = !p.mma && !p.gemm && tn::use_partials(k, d, elem) &&
               !(force_sort && std::strcmp(force_sort, "1") == 0);
  p.sort_bits = tn::key_bits(k);
  p.col_tile = tn::sort_col_tile(d);
  if (p.mma) {
    p.stat_blocks = static_cast<int>(ceil_div(n, tn::kMmaRows));
  } else if (p.gemm) {
    std::int64_t rows = tn::gemm_chunk_rows(n, k, elem, sm_count_);
    const std::int64_t forced_rows = g_gemm_chunk_rows.load(std::memory_order_relaxed);
    if (forced_rows > 0)
      rows = std::min(tn::round_up(forced_rows, tn::kGemmRowsPerBlock),
                      tn::round_up(n, tn::kGemmRowsPerBlock));
    p.gemm_rows = static_cast<int>(rows);
    p.gemm_ld = static_cast<int>(tn::gemm_products_ld(k));
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
    std::int64_t spb = tn::assign_subtiles_per_block(n, max_blocks);
    if (const std::int64_t forced = env_count(kSubtilesPerBlockEnv)) spb = forced;  // test hook
    // With partials a block owns whole leaves: each leaf's value is formed in one block, in
    // the canonical order, whatever the grid; or, at small n, where that would leave SMs idle,
    // blocks keep fewer sub-tiles and write one row per sub-tile, folded into leaves after.
    const tn::TileShare share = tn::tile_share(n, tn::partial_columns(k, d), p.partials, spb);
    static_assert(canon::kSubtilesPerLeaf == 16, "tile_share's leaves are 16 sub-tiles");
    spb = share.subtiles_per_block;
    p.subtile_rows = share.subtile_rows;
    p.subtiles_per_block = static_cast<int>(spb);
    p.assign_blocks = static_cast<int>(ceil_div(ceil_div(n, tn::kAssignThreads), spb));
    p.stat_blocks = p.assign_blocks;
  }
  p.records = 2;  // SSE (unused: canonical below) and changed count per block
  p.leaf_width = p.partials ? tn::partial_columns(k, d) + 1 : 1;
  return p;
}

/// (Re)allocates everything sized by k and drops the graphs that point at the old buffers.
template <class T>
void CudaEngine<T>::configure(int k) {
  ProfileRange range("kmeans::configure");
  drop_graphs();
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
  d_leaf_.allocate(static_cast<std::size_t>(ceil_div(n, kReduceBlock) * p.leaf_width),
                   "per-leaf partials");
  // Poison what the kernels must overwrite: an entry they skip shows up as NaN.
  KMEANS_CUDA_TRY(cudaMemsetAsync(d_partials_.get(), 0xFF, d_partials_.bytes(), s));
  KMEANS_CUDA_TRY(cudaMemsetAsync(d_leaf_.get(), 0xFF, d_leaf_.bytes(), s));
  if (p.subtile_rows) {
    d_subtile_.allocate(static_cast<std::size_t>(ceil_div(n, tn::kAssignThreads) * p.leaf_width),
                        "per-sub-tile partials");
    KMEANS_CUDA_TRY(cudaMemsetAsync(d_subtile_.get(), 0xFF, d_subtile_.bytes(), s));
  }
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
  KMEANS_CUDA_TRY(cub::DeviceSegmentedReduce::Sum(
      nullptr, reduce_bytes, d_partials_.get(), d_totals_.get(), p.records,
      d_record_offsets_.get(), d_record_offsets_.get() + 1, s));
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
    // cuBLAS runs on the second stream only (every GEMM of a pass in order there): one handle
    // and one workspace serve, as no two GEMMs ever overlap.
    cublas_.create(gemm_stream_.get(), d_cublas_ws_.get(), d_cublas_ws_.bytes());
    d_products_.allocate(2 * static_cast<std::size_t>(p.gemm_rows) *
                             static_cast<std::size_t>(p.gemm_ld),
                         "distance products (two chunks)");
    d_centred_.allocate(kd, "centred centroids");
    d_terms_.allocate(static_cast<std::size_t>(tn::gemm_terms_size(k)), "centroid ranking terms");
    // Poisoned: the padding columns of the products stay NaN (never read as scores), and a
    // term no kernel wrote shows up as NaN.
    KMEANS_CUDA_TRY(cudaMemsetAsync(d_products_.get(), 0xFF, d_products_.bytes(), s));
    KMEANS_CUDA_TRY(cudaMemsetAsync(d_terms_.get(), 0xFF, d_terms_.bytes(), s));
    if (!mean_valid_) compute_mean();
  }
  if (p.mma) {
    const auto k_pad = static_cast<std::size_t>(tn::mma_k_pad(k));
    d_mma_centred_.allocate(k_pad * static_cast<std::size_t>(tn::mma_dim_pad(d)),
                            "TF32 centred centroids");
    d_mma_terms_.allocate(4 * k_pad, "TF32 ranking terms");
    // Poisoned like the partials: mma_centre_kernel rewrites every element each pass.
    KMEANS_CUDA_TRY(cudaMemsetAsync(d_mma_centred_.get(), 0xFF, d_mma_centred_.bytes(), s));
    KMEANS_CUDA_TRY(cudaMemsetAsync(d_mma_terms_.get(), 0xFF, d_mma_terms_.bytes(), s));
    mma_prepare(static_cast<int>(d));
    if (!mean_valid_) compute_mean();
  }
  KMEANS_CUDA_TRY(cudaStreamSynchronize(s));
  plan_ = p;
}

/// The per-feature data mean in double (the GEMM path's centre), once per data set: column
/// sums over row chunks, then the chunks in order, so the bits depend only on n and d. Also |m|.
template <class T>
void CudaEngine<T>::compute_mean() {
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
template <class T>
void CudaEngine<T>::enqueue_pass(int mode) {
  // Mode bit 2 (the device loop, device_loop.cu): the centroids are already on the device and
  // the totals stay there.
  const bool with_sums = (mode & 1) != 0, node_rows = (mode & 2) != 0, resident = (mode & 4) != 0;
  const Plan& p = plan_;
  const cudaStream_t s = stream_.get();
  const std::int64_t n = v_.n, d = v_.d;
  const int k = p.k;
  if (!resident)
    KMEANS_CUDA_TRY(cudaMemcpyAsync(d_centroids_.get(), h_centroids_.get(),
                                    d_centroids_.bytes(), cudaMemcpyHostToDevice, s));
  if (p.mma) {
    if constexpr (std::is_same_v<T, float>) {  // make_plan chooses it for float only
      MmaPassArgs a;
      a.x = d_x_;
      a.w = d_w_;
      a.c = d_centroids_.get();
      a.mean = d_mean_.get();
      a.centred = d_mma_centred_.get();
      a.terms = d_mma_terms_.get();
      a.n = n;
      a.d = static_cast<int>(d);
      a.k = k;
      a.labels = d_labels_.get();
      a.dist = d_dist_.get();
      a.partials = d_partials_.get();
      enqueue_mma_assign(a, s);
    }
  } else if (p.gemm) {
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
    a.leaf_sums = p.subtile_rows ? d_subtile_.get() : d_leaf_.get();
    a.leaf_width = p.leaf_width;
    a.subtile_rows = p.subtile_rows;
    a.bound = tile_bound_terms<T>(d);
    const std::size_t smem = tn::assign_smem_bytes(
        p.k_tile, d, sizeof(T), a.with_partials ? tn::partial_columns(k, d) : 0);
    assign_tile_kernel<T><<<p.assign_blocks, tn::kAssignThreads, smem, s>>>(a);
    KMEANS_CUDA_CHECK_LAUNCH(s);
  }
  if (with_sums && !p.partials) enqueue_sort_sums(node_rows ? d_nodes_.get() : nullptr);
  // The changed count (exact in any order) from the per-block counts; the per-block SSE that
  // lands in kTotalSse is replaced by the canonical one below.
  std::size_t reduce_bytes = d_reduce_tmp_.bytes();
  KMEANS_CUDA_TRY(cub::DeviceSegmentedReduce::Sum(
      d_reduce_tmp_.get(), reduce_bytes, d_partials_.get(), d_totals_.get(), p.records,
      d_record_offsets_.get(), d_record_offsets_.get() + 1, s));
  enqueue_canonical(with_sums, node_rows);
  if (resident) return;
  const std::int64_t download =
      with_sums && !node_rows ? layout::total_entries(k, d) : layout::kTotalHeader;
  KMEANS_CUDA_TRY(cudaMemcpyAsync(h_totals_.get(), d_totals_.get(), download * sizeof(double),
                                  cudaMemcpyDeviceToHost, s));
}

/// The centred ranking: centroids centred on the data mean (centre_centroids_kernel) and the
/// bound's header (gemm_bound_kernel), then one chunk of rows at a time, products[r][c] =
/// x_r . c'_c by cuBLAS and the one-pass argmin. Chunks alternate between two product buffers:
/// the GEMMs run in order on gemm_stream_ (forked from stream_ by an event, so also inside a
/// captured graph), the argmins on stream_; chunk i's argmin waits for its GEMM (ready event),
/// and the GEMM of chunk i + 2 waits for that argmin (free event) before overwriting its buffer,
/// so the GEMM of chunk i + 1 overlaps the argmin of chunk i. The last GEMM is joined back into
/// stream_ by the last argmin's wait.
template <class T>
void CudaEngine<T>::enqueue_gemm_assign() {
  const Plan& p = plan_;
  const cudaStream_t s = stream_.get(), s2 = gemm_stream_.get();
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
  gemm_bound_kernel<tn::kGemmThreads><<<1, tn::kGemmThreads, 0, s>>>(d_terms_.get(), k);
  KMEANS_CUDA_CHECK_LAUNCH(s);
  KMEANS_CUDA_TRY(cudaEventRecord(gemm_fork_.get(), s));
  KMEANS_CUDA_TRY(cudaStreamWaitEvent(s2, gemm_fork_.get(), 0));
  const std::size_t half = static_cast<std::size_t>(p.gemm_rows) * static_cast<std::size_t>(p.gemm_ld);
  std::int64_t chunk = 0;
  for (std::int64_t row0 = 0; row0 < n; row0 += p.gemm_rows, ++chunk) {
    const int rows = static_cast<int>(std::min<std::int64_t>(p.gemm_rows, n - row0));
    const int buf = static_cast<int>(chunk % 2);
    T* products = d_products_.get() + buf * half;
    if (chunk >= 2) KMEANS_CUDA_TRY(cudaStreamWaitEvent(s2, gemm_free_[buf].get(), 0));
    // Column-major view: C' (d x k) transposed times X_chunk (d x rows) = products (k x rows,
    // leading dimension ld).
    gemm_tn(cublas_.get(), k, rows, d, d_centred_.get(), d, d_x_ + row0 * d, d, products,
            p.gemm_ld);
    KMEANS_CUDA_TRY(cudaEventRecord(gemm_ready_[buf].get(), s2));
    KMEANS_CUDA_TRY(cudaStreamWaitEvent(s, gemm_ready_[buf].get(), 0));
    GemmArgminArgs<T> a;
    a.x = d_x_;
    a.w = d_w_;
    a.c = d_centroids_.get();
    a.terms = gemm_terms_view(d_terms_.get(), k);
    a.mean = d_mean_.get();
    a.mean_norm = d_mean_norm_.get();
    a.gamma_dist = tn::gemm_distance_gamma(d, sizeof(T));
    a.gamma_q = tn::gemm_error_gamma(d, sizeof(double));
    a.g = products;
    a.ld = p.gemm_ld;
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
                            tn::kGemmArgminThreads, 0, s>>>(a);
    KMEANS_CUDA_CHECK_LAUNCH(s);
    KMEANS_CUDA_TRY(cudaEventRecord(gemm_free_[buf].get(), s));
  }
}

/// Captures one pass into a graph; a failure mid-capture ends the capture cleanly first.
template <class T>
GraphExec CudaEngine<T>::capture(int mode) {
  ProfileRange range("kmeans::capture");
  const cudaStream_t s = stream_.get();
  return capture_graph(s, [&] { enqueue_pass(mode); });
}

#define KMEANS_CUDA_PASSES_MEMBERS(TYPE) \
  template StepStats CudaEngine<TYPE>::run_pass(const TYPE* centroids, int k, bool with_sums, bool node_rows); \
  template StepStats CudaEngine<TYPE>::assign(const TYPE* centroids, int k, double* sums, double* weights); \
  template void CudaEngine<TYPE>::labels(std::int32_t* out); \
  template Plan CudaEngine<TYPE>::make_plan(int k) const; \
  template void CudaEngine<TYPE>::configure(int k); \
  template void CudaEngine<TYPE>::compute_mean(); \
  template void CudaEngine<TYPE>::enqueue_pass(int mode); \
  template void CudaEngine<TYPE>::enqueue_gemm_assign(); \
  template GraphExec CudaEngine<TYPE>::capture(int mode);

KMEANS_CUDA_ENGINE_INSTANTIATE(KMEANS_CUDA_PASSES_MEMBERS)

}  // namespace kmeans::detail::cuda

namespace kmeans::detail {
void set_cuda_gemm_chunk_rows_for_testing(std::int64_t rows) {
  cuda::g_gemm_chunk_rows.store(rows > 0 ? rows : 0, std::memory_order_relaxed);
}
}  // namespace kmeans::detail
