// SPDX-License-Identifier: Apache-2.0
// Every tuning constant of the CUDA backend and the size rules that pick its paths, in one place.
//
// None of these numbers is measured yet: this session had no GPU. Each comment says what the
// number trades; bench/gpu_suite.sh measures the paths on an H100/H200 and bench/NOTES.md
// should record the measurement that confirms or replaces each one.
#pragma once

#include <cstddef>
#include <cstdint>

#if defined(__CUDACC__)
#define KMEANS_HD __host__ __device__
#else
#define KMEANS_HD
#endif

namespace kmeans::detail::tuning {

// ---- fused assign kernel (kernels/assign.cuh: assign_tile_kernel) --------------------------

/// Threads per assign block; each thread owns one point of a 256-point sub-tile. 256 keeps
/// the block-wide radix sort of the labels to one item per thread.
constexpr int kAssignThreads = 256;
/// Centroids whose running distances one thread keeps in registers (the CPU kernel's trick:
/// one load of a point coordinate feeds kRegTile fused multiply-adds).
constexpr int kRegTile = 16;
/// Dynamic shared memory of one assign block: centroid tile plus per-block partial sums.
/// 36 KiB plus the ~11 KiB of static scratch (block radix sort, sorted keys) stays under the
/// 48 KiB that needs no opt-in, and four blocks (1024 threads) still share an SM.
constexpr std::size_t kAssignSmemBytes = 36 * 1024;
/// Largest per-block partial record (weights + sums, k * (d + 1) doubles) the fused path keeps:
/// above it each block spends more time writing partials than reading its points, and the
/// [entries][blocks] buffer grows with k * d; the sort path takes over.
constexpr std::int64_t kMaxPartialColumns = 2048;
/// Grid of the assign kernel: as many blocks as can be resident at once (occupancy query)
/// times this; each block loops over its share of the sub-tiles, so the partial buffer is
/// bounded by the GPU's size rather than by n.
constexpr int kAssignWaves = 1;
/// Small n with partials: when the grid would give each block fewer than 16 sub-tiles (a whole
/// canonical leaf), blocks keep the grid's share and write one row of partials per sub-tile
/// (folded into leaves afterwards) as long as those rows take at most this many bytes; above it
/// blocks own whole leaves (fewer, longer blocks).
constexpr std::size_t kMaxSubtileRowBytes = std::size_t{64} << 20;
/// The largest resident-block count per SM the working-set estimate assumes (2048 threads).
constexpr int kMaxAssignBlocksPerSm = 2048 / kAssignThreads;
/// The assign kernel's minimum resident blocks per SM (its __launch_bounds__), which caps its
/// registers: float 3 (80 registers, 768 threads per SM), double 4 (64 registers, 1024 threads:
/// all that shared memory allows). The ranking's register row and running values
/// (kernels/tile_rank.cuh: 32 + 16 floats, 8 + 8 doubles) then fit but for a few row values of
/// the widest float rows (sm_90 SASS: about 12 of the 32 row registers live in local memory, one
/// L1 load per 16 FMAs for those features); float at 2 blocks (128 registers) has no such
/// spill. The old kernel (no minimum) used 48 (float, 4 blocks by shared memory) and 72 (double,
/// 3 blocks) registers. Not measured: bench/NOTES.md.
KMEANS_HD constexpr int assign_min_blocks(std::size_t elem) { return elem == 4 ? 3 : 4; }

// ---- GEMM distance path (cuBLAS + gemm_argmin_kernel) --------------------------------------

/// Ranking centroids by |c'|^2 / 2 - x.c' + m.c' (c' = c - m, m the data mean) with x.c' from
/// cuBLAS pays off once each point meets many centroids in many dimensions: then the product
/// runs at GEMM speed while the tile kernel is bound by shared-memory bandwidth. Below these
/// the tile kernel's single pass wins.
constexpr int kGemmMinK = 128;
constexpr std::int64_t kGemmMinD = 32;
/// Bytes of one of the two buffers of the n x k product: rows are processed in chunks so that
/// the whole n x k matrix never exists (1M x 20000 floats would be 80 GB). While
/// gemm_argmin_kernel reads chunk i from one buffer (once: the one-pass ranking), cuBLAS writes
/// chunk i + 1 into the other (two streams). gemm_chunk_rows raises a chunk to one argmin block
/// per SM when this is too small for that.
constexpr std::size_t kGemmTileBytes = std::size_t{128} << 20;
/// Threads of centre_centroids_kernel (a warp per centroid) and of gemm_bound_kernel.
constexpr int kGemmThreads = 256;
/// gemm_argmin_kernel: a warp scans kGemmRowsPerWarp rows at once (each lane's per-centroid
/// bias, loaded once, serves them all), kGemmArgminThreads / 32 warps per block. 16 rows per
/// block: 264 blocks (two per SM on an H200) in a chunk of 4224 rows.
constexpr int kGemmArgminThreads = 128;
constexpr int kGemmRowsPerWarp = 4;
constexpr int kGemmRowsPerBlock = kGemmArgminThreads / 32 * kGemmRowsPerWarp;
/// Columns of a row one warp step covers: each lane reads two aligned 4-element vectors of
/// products (at 4 * lane and 128 + 4 * lane), so the step's warp minimum (a shuffle butterfly)
/// is paid once per 256 products.
constexpr int kGemmLaneCols = 8;
constexpr int kGemmStepCols = 32 * kGemmLaneCols;
/// A chunk holds at least this many argmin blocks per SM: one block (4 warps) per SM would
/// keep too few loads in flight to stream the products at full bandwidth.
constexpr int kGemmMinBlocksPerSm = 2;
/// Candidates one row keeps (shared memory, 4 bytes each) before it compacts the list and, if
/// still full, falls back to a second pass over its products.
constexpr int kGemmCandidates = 64;
/// cuBLAS workspace handed over explicitly, as graph capture requires (32 MiB: Hopper's need).
constexpr std::size_t kCublasWorkspaceBytes = std::size_t{32} << 20;
/// transform: output rows per chunk are capped so one chunk of the n x k result stays under this.
constexpr std::int64_t kTransformChunkBytes = std::int64_t{64} << 20;
/// Data mean of the GEMM path's centring (column_sums_kernel): rows per chunk, and caps on the
/// chunk count (gridDim.y) and on the chunks x d partial buffer (doubles).
constexpr std::int64_t kMeanRowsPerChunk = 4096;
constexpr std::int64_t kMeanMaxChunks = 1024;
constexpr std::int64_t kMeanMaxPartialDoubles = std::int64_t{1} << 24;

// ---- TF32 tensor-core path (kernels/mma_rank.cuh: mma_assign_kernel) ---------------------

/// Threads of one mma_assign_kernel block: four warps, each owning 32 points (two m16 tiles of
/// mma.sync m16n8k8) against every centroid of the streamed tile.
constexpr int kMmaThreads = 128;
/// Points per block (held on chip, TF32-rounded, for the whole pass) and centroids per
/// streamed tile (eight n8 tiles: 64 accumulators per thread).
constexpr int kMmaRows = 128;
constexpr int kMmaCols = 64;
/// Features per cp.async stage of a centroid tile, and the stages in flight (a ring: the load
/// of stage i + kMmaStages - 1 overlaps the products of stage i).
constexpr int kMmaKChunk = 32;
constexpr int kMmaStages = 3;
/// Candidate slots per (point, quad lane): a point's candidates live in 4 lanes' lists; a list
/// that fills up (after dropping what the threshold excludes) is flushed: its candidates' exact
/// distances go into the lane's running argmin (each costs d FMAs: many candidates are slower,
/// never wrong).
constexpr int kMmaCandidates = 4;
/// Prediction (GPU verification pending): the TF32 product beats the tile kernel once each
/// point meets enough centroids in enough dimensions to feed the tensor cores, and beats cuBLAS
/// + gemm_argmin_kernel everywhere it fits (no n x k matrix). kMmaMaxD keeps the point tile
/// (kMmaRows x d floats) on chip.
constexpr int kMmaMinK = 64;
constexpr std::int64_t kMmaMinD = 16;
constexpr std::int64_t kMmaMaxD = 256;

// ---- sort path and small kernels (kernels/update.cuh) ---------------------------------------

/// Threads of the per-cluster sum kernel and the widest column tile it covers (one warp of
/// consecutive coordinates: a 128-byte float read per row).
constexpr int kSortThreads = 256;
constexpr int kSortMaxColTile = 32;
/// Threads of the elementwise helper kernels (offsets, norms, validation).
constexpr int kSmallThreads = 256;

// ---- memory --------------------------------------------------------------------------------

/// Free device memory a fit leaves untouched (other users, cuBLAS and CUB internals).
constexpr std::size_t kWorkingSetMarginBytes = std::size_t{256} << 20;
/// The CUDA backend indexes points with int32 (labels are int32 too).
constexpr std::int64_t kMaxPoints = 0x7fffffff;

// ---- rules -----------------------------------------------------------------------------------

KMEANS_HD constexpr std::int64_t round_up(std::int64_t a, std::int64_t b) {
  return (a + b - 1) / b * b;
}

/// Centroids per shared-memory tile of the assign kernel (a multiple of kRegTile; all k when
/// they fit), given `budget` bytes; 0 when not even kRegTile centroids fit (huge d). A centroid
/// takes d + 1 values: its centred coordinates and |c'|^2 / 2 (kernels/tile_rank.cuh).
KMEANS_HD constexpr int assign_centroid_tile(std::int64_t k, std::int64_t d, std::size_t elem,
                                             std::size_t budget) {
  const std::int64_t fit =
      static_cast<std::int64_t>(budget / (static_cast<std::size_t>(d + 1) * elem));
  const std::int64_t fit_tiles = fit / kRegTile * kRegTile;
  const std::int64_t all = round_up(k, kRegTile);
  return static_cast<int>(fit_tiles < all ? fit_tiles : all);
}

/// Columns of one block's partial record: k weights then k * d coordinate sums.
KMEANS_HD constexpr std::int64_t partial_columns(std::int64_t k, std::int64_t d) {
  return k * (d + 1);
}

/// Bytes of the assign kernel's dynamic shared memory: the partial accumulators (rounded to
/// 16 bytes so the centroid tile that follows stays aligned for 16-byte loads) then the
/// ranking tile (d + 1 values per centroid).
KMEANS_HD constexpr std::size_t assign_smem_bytes(int k_tile, std::int64_t d, std::size_t elem,
                                                  std::int64_t acc_columns) {
  return static_cast<std::size_t>(round_up(acc_columns * 8, 16)) +
         static_cast<std::size_t>(k_tile) * static_cast<std::size_t>(d + 1) * elem;
}

/// The GEMM distance path: many centroids in many dimensions, or a d so large that the tile
/// kernel cannot hold even kRegTile centroids in shared memory.
KMEANS_HD constexpr bool use_gemm(std::int64_t k, std::int64_t d, std::size_t elem) {
  return (k >= kGemmMinK && d >= kGemmMinD) ||
         assign_centroid_tile(k, d, elem, kAssignSmemBytes) == 0;
}

/// Features of one row of the TF32 path's operands: d rounded up to the mma's k = 8.
KMEANS_HD constexpr std::int64_t mma_dim_pad(std::int64_t d) { return round_up(d, 8); }
/// Centroids of the TF32 path's padded operand: whole streamed tiles.
KMEANS_HD constexpr std::int64_t mma_k_pad(std::int64_t k) { return round_up(k, kMmaCols); }

/// Dynamic shared memory of one mma_assign_kernel block: the point tile (row stride
/// dp + 4: conflict-free fragment loads), the cp.async ring of centroid chunks (row stride
/// kMmaKChunk + 4), the candidate lists (value + index) and the per-point bound terms.
KMEANS_HD constexpr std::size_t mma_smem_bytes(std::int64_t d) {
  return sizeof(float) *
         static_cast<std::size_t>(kMmaRows * (mma_dim_pad(d) + 4) +
                                  kMmaStages * kMmaCols * (kMmaKChunk + 4) +
                                  2 * kMmaRows * 4 * kMmaCandidates + 2 * kMmaRows);
}

/// The TF32 tensor-core path (float only; double keeps the exact-arithmetic paths): enough
/// centroids and features to feed the tensor cores, and a point tile that fits on chip.
KMEANS_HD constexpr bool use_mma(std::int64_t k, std::int64_t d, std::size_t elem) {
  return elem == sizeof(float) && k >= kMmaMinK && d >= kMmaMinD && d <= kMmaMaxD;
}

/// Per-block partial sums inside the assign kernel (one read of the data per iteration) when
/// all k centroids and the k * (d + 1) accumulators fit in the block's shared memory;
/// otherwise the sort path (radix sort by label, one segment per cluster).
KMEANS_HD constexpr bool use_partials(std::int64_t k, std::int64_t d, std::size_t elem) {
  if (use_gemm(k, d, elem) || use_mma(k, d, elem)) return false;
  const std::int64_t cols = partial_columns(k, d);
  if (cols > kMaxPartialColumns) return false;
  const int k_pad = static_cast<int>(round_up(k, kRegTile));
  return assign_smem_bytes(k_pad, d, elem, cols) <= kAssignSmemBytes;
}

/// Sub-tiles (of kAssignThreads points) per assign block so that at most max_blocks blocks
/// cover n points with an even share each.
KMEANS_HD constexpr std::int64_t assign_subtiles_per_block(std::int64_t n, std::int64_t max_blocks) {
  const std::int64_t subtiles = (n + kAssignThreads - 1) / kAssignThreads;
  const std::int64_t blocks = max_blocks < 1 ? 1 : max_blocks;
  return (subtiles + blocks - 1) / blocks;
}

/// The tile kernel's share of sub-tiles per block given the grid's (or a forced) share spb.
/// With partials (the canonical order, kernels/canonical.cuh) a block owns whole leaves of 16
/// sub-tiles, or, when spb < 16 and one row of partials per sub-tile (cols + 1 doubles, cols =
/// partial_columns) takes at most kMaxSubtileRowBytes, keeps spb and writes sub-tile rows
/// (subtile_rows). Never more sub-tiles than n has (rounded up to a leaf).
struct TileShare {
  std::int64_t subtiles_per_block = 1;
  bool subtile_rows = false;
};
KMEANS_HD constexpr TileShare tile_share(std::int64_t n, std::int64_t cols, bool partials,
                                         std::int64_t spb) {
  const std::int64_t subtiles = (n + kAssignThreads - 1) / kAssignThreads;
  TileShare t;
  t.subtiles_per_block = spb < 1 ? 1 : spb;
  t.subtile_rows = partials && t.subtiles_per_block < 16 &&
                   static_cast<std::size_t>(subtiles) * static_cast<std::size_t>(cols + 1) *
                           sizeof(double) <=
                       kMaxSubtileRowBytes;
  if (partials && !t.subtile_rows) t.subtiles_per_block = round_up(t.subtiles_per_block, 16);
  const std::int64_t cap = round_up(subtiles, 16);
  if (t.subtiles_per_block > cap) t.subtiles_per_block = cap;
  return t;
}

/// Leading dimension (elements) of the product buffers and of the bias row: k rounded up to 4,
/// so every row starts 16-byte aligned (float) and the argmin reads aligned 4-element vectors.
KMEANS_HD constexpr std::int64_t gemm_products_ld(std::int64_t k) { return round_up(k, 4); }

/// Rows of one GEMM chunk: a multiple of kGemmRowsPerBlock with rows * ld * elem within
/// kGemmTileBytes, but at least sm_count blocks of gemm_argmin_kernel (every chunk fills the
/// GPU: kGemmMinBlocksPerSm per SM) and one block, and no more than n needs.
KMEANS_HD constexpr std::int64_t gemm_chunk_rows(std::int64_t n, std::int64_t k, std::size_t elem,
                                                 int sm_count) {
  const std::int64_t by_bytes =
      static_cast<std::int64_t>(kGemmTileBytes /
                                (static_cast<std::size_t>(gemm_products_ld(k)) * elem)) /
      kGemmRowsPerBlock * kGemmRowsPerBlock;
  const std::int64_t by_sms =
      static_cast<std::int64_t>(sm_count < 1 ? 1 : sm_count) * kGemmMinBlocksPerSm *
      kGemmRowsPerBlock;
  const std::int64_t rows = by_bytes < by_sms ? by_sms : by_bytes;
  const std::int64_t need = round_up(n, kGemmRowsPerBlock);
  return rows < need ? rows : need;
}

/// Doubles of the GEMM path's ranking terms: the bias row (ld entries), then slope, base and
/// |c'| (k each), then the header gemm_bound_kernel writes (kGemmHeader doubles).
constexpr int kGemmHeader = 4;
KMEANS_HD constexpr std::int64_t gemm_terms_size(std::int64_t k) {
  return gemm_products_ld(k) + 3 * k + kGemmHeader;
}

/// Column tile of the column-summing kernels: the smallest power of two covering `columns`,
/// at most kSortMaxColTile.
KMEANS_HD constexpr int col_tile_for(std::int64_t columns) {
  int t = 1;
  while (t < columns && t < kSortMaxColTile) t *= 2;
  return t;
}

/// Column tile of the per-cluster sum kernel over the d + 1 columns (coordinates + weight).
KMEANS_HD constexpr int sort_col_tile(std::int64_t d) { return col_tile_for(d + 1); }

/// Largest gridDim.y (and z) of a launch.
constexpr std::int64_t kMaxGridY = 65535;

/// Column tiles of sorted_walk_kernel's grid (gridDim.y); each block loops over the tiles
/// y, y + gridDim.y, ... so a d beyond 65535 * kSortMaxColTile still launches.
KMEANS_HD constexpr std::int64_t sort_grid_y(std::int64_t d, int col_tile) {
  const std::int64_t tiles = (d + 1 + col_tile - 1) / col_tile;
  return tiles < kMaxGridY ? tiles : kMaxGridY;
}

/// Row chunks of the data-mean reduction (gridDim.y of column_sums_kernel): about
/// kMeanRowsPerChunk rows each, at most kMeanMaxChunks, and chunks * d doubles at most
/// kMeanMaxPartialDoubles (one chunk when d alone exceeds it).
KMEANS_HD constexpr std::int64_t mean_chunks(std::int64_t n, std::int64_t d) {
  std::int64_t c = (n + kMeanRowsPerChunk - 1) / kMeanRowsPerChunk;
  if (c > kMeanMaxChunks) c = kMeanMaxChunks;
  const std::int64_t by_memory = kMeanMaxPartialDoubles / (d < 1 ? 1 : d);
  if (c > by_memory) c = by_memory;
  return c < 1 ? 1 : c;
}

/// Rows of one chunk of the data-mean reduction: the chunks cover [0, n).
KMEANS_HD constexpr std::int64_t mean_rows_per_chunk(std::int64_t n, std::int64_t d) {
  const std::int64_t c = mean_chunks(n, d);
  return (n + c - 1) / c;
}

/// Relative error bound of the GEMM path's ranking, for a d-term dot product in a type of
/// `elem` bytes: 2 * gamma_(d+2), gamma_m = m u / (1 - m u) (Higham's bound for any summation
/// order with or without FMA; the factor 2 and the + 2 cover the double arithmetic around it).
/// Negative when m u >= 1/2 and the bound says nothing: every centroid is then a candidate.
KMEANS_HD constexpr double gemm_error_gamma(std::int64_t d, std::size_t elem) {
  const double u = elem == sizeof(float) ? 0x1p-24 : 0x1p-53;
  const double mu = static_cast<double>(d + 2) * u;
  return mu < 0.5 ? 2 * mu / (1 - mu) : -1.0;
}

/// Relative error bound of the ranking's x-free part |c'|^2 / 2 + m.c' (sums in double) plus
/// the rounding of c' = c - m to T, which moves the ranked centroid m + c' off c by up to
/// u |c'|: gemm_error_gamma for double plus 4 u of T. Negative when the bound says nothing.
KMEANS_HD constexpr double gemm_bias_gamma(std::int64_t d, std::size_t elem) {
  const double g = gemm_error_gamma(d, sizeof(double));
  return g < 0 ? g : g + 4 * (elem == sizeof(float) ? 0x1p-24 : 0x1p-53);
}

/// Relative error bound of squared_distance (the labels' formula) in a type of `elem` bytes over
/// d coordinates: each difference rounds once, its square keeps (1 + u)^2, and the fused running
/// sum of d non-negative terms is within gamma_d of the exact one, so
/// |fl(D) - D| <= gamma_(d+2) D. Returned as 2 gamma_(d+2), which is >= gamma_(d+2) /
/// (1 - gamma_(d+2)) times (1 + 1/2) while gamma_(d+2) <= 1/4 (the slack covers the double
/// rounding of ||x - m||^2 in gemm_row_bound). Negative beyond that: every centroid is then a
/// candidate.
KMEANS_HD constexpr double gemm_distance_gamma(std::int64_t d, std::size_t elem) {
  const double u = elem == sizeof(float) ? 0x1p-24 : 0x1p-53;
  const double mu = static_cast<double>(d + 2) * u;
  return mu < 0.2 ? 2 * mu / (1 - mu) : -1.0;
}

/// Bits the radix sorts need for keys in [0, k] (k itself marks "no point").
KMEANS_HD constexpr int key_bits(std::int64_t k) {
  int b = 1;
  while ((std::int64_t{1} << b) <= k) ++b;
  return b;
}

/// Device bytes a fit needs (see CudaEngine::configure): data (unless already on the device)
/// and weights, labels and distances, the sort path's keys and indices and CUB scratch, the
/// two GEMM chunks, the per-block counts, the per-leaf partials and the centroids.
constexpr std::size_t working_set_bytes(std::int64_t n, std::int64_t d, std::int64_t k,
                                        std::size_t elem, bool data_on_device, int sm_count) {
  const auto un = static_cast<std::size_t>(n), ud = static_cast<std::size_t>(d),
             uk = static_cast<std::size_t>(k);
  std::size_t bytes = data_on_device ? 0 : un * ud * elem + un * elem;
  bytes += un * (sizeof(std::int32_t) + elem);  // labels, distances
  if (use_mma(k, d, elem)) {  // padded TF32 operand and terms, data mean, per-block SSE
    bytes += static_cast<std::size_t>(mma_k_pad(k) * (mma_dim_pad(d) + 4)) * sizeof(float);
    bytes += (ud + static_cast<std::size_t>(mean_chunks(n, d)) * ud) * sizeof(double);
    bytes += 2 * (un / kMmaRows + 1) * sizeof(double);
  } else if (use_gemm(k, d, elem)) {
    bytes += 2 * static_cast<std::size_t>(gemm_chunk_rows(n, k, elem, sm_count)) *
             static_cast<std::size_t>(gemm_products_ld(k)) * elem;  // two product buffers
    bytes += uk * ud * elem +
             static_cast<std::size_t>(gemm_terms_size(k)) * sizeof(double);  // c', terms
    bytes += (ud + static_cast<std::size_t>(mean_chunks(n, d)) * ud) * sizeof(double);  // mean
    bytes += kCublasWorkspaceBytes;
    bytes += 2 * (un / kGemmRowsPerBlock + 1) * sizeof(double);  // per-block SSE and changes
  }
  const bool partials = use_partials(k, d, elem);
  if (!partials) bytes += un * 4 * sizeof(std::int32_t);  // sorted keys, two index arrays, scratch
  const std::size_t max_blocks =
      static_cast<std::size_t>(sm_count) * kMaxAssignBlocksPerSm * kAssignWaves;
  bytes += 2 * max_blocks * sizeof(double);  // per-block SSE and changed count
  // The canonical leaf rows (kernels/canonical.cuh): k (d + 1) + 1 doubles per 4096 points with
  // partials, the SSE alone otherwise (at most 4 bytes per point more than the labels).
  const std::size_t leaves = (un + 4095) / 4096;
  bytes += leaves * (partials ? 1 + static_cast<std::size_t>(partial_columns(k, d)) : 1) *
           sizeof(double);
  if (partials) {  // small n: the per-sub-tile rows, at most kMaxSubtileRowBytes
    const std::size_t rows = (un + kAssignThreads - 1) / kAssignThreads *
                             (1 + static_cast<std::size_t>(partial_columns(k, d))) * sizeof(double);
    bytes += rows < kMaxSubtileRowBytes ? rows : kMaxSubtileRowBytes;
  }
  bytes += uk * ud * elem + (2 + uk * (ud + 1)) * sizeof(double);  // centroids, totals
  return bytes;
}

// ---- the farthest points and the device Lloyd loop (kernels/farthest.cuh, device_loop.cuh) --

/// Threads of a farthest-point selection block.
constexpr int kFarthestThreads = 256;
/// Most points one device selection returns: m passes over each block's chunk, so m stays
/// small; Engine::farthest with more ranks on the host (a download of all n distances).
constexpr int kFarthestMaxM = 64;
/// Blocks of the first selection stage: about 16 points per thread, at most two per SM (and
/// kFarthestMaxBlocks), each writing its own top m for the single-block merge.
constexpr int kFarthestMaxBlocks = 264;
KMEANS_HD constexpr int farthest_blocks(std::int64_t n, int sm_count) {
  const std::int64_t want = (n + 16 * kFarthestThreads - 1) / (16 * kFarthestThreads);
  const std::int64_t cap = 2 * sm_count < kFarthestMaxBlocks ? 2 * sm_count : kFarthestMaxBlocks;
  return static_cast<int>(want < 1 ? 1 : want > cap ? (cap < 1 ? 1 : cap) : want);
}

/// Iterations of the device loop captured into one graph; the host reads the done flag once
/// per batch, so up to kDeviceLoopBatch - 1 passes after convergence run for nothing (their
/// step kernels are no-ops). Prediction: 16 keeps that waste under one host round trip.
constexpr int kDeviceLoopBatch = 16;
/// The device loop's size rule (prediction, GPU verification pending): the step kernel runs the
/// update, shift and repair on one thread in the host's order, so k * d stays small (512
/// dependent double additions ~ 5 us); k <= kFarthestMaxM (every empty cluster gets its point
/// from one device selection); and n * k * d <= 2^24, where one pass costs a few microseconds
/// on an H200 and the host round trip (~10-20 us) it saves is the larger cost.
constexpr int kDeviceLoopMaxK = kFarthestMaxM;
constexpr std::int64_t kDeviceLoopMaxKd = 512;
constexpr std::int64_t kDeviceLoopMaxWork = std::int64_t{1} << 24;
/// max_iter above this runs on the host (the device keeps two doubles of history per iteration).
constexpr int kDeviceLoopMaxIter = 1 << 20;
KMEANS_HD constexpr bool use_device_loop(std::int64_t n, std::int64_t d, int k, int max_iter) {
  return k >= 1 && k <= kDeviceLoopMaxK && k * d <= kDeviceLoopMaxKd &&
         n * k * d <= kDeviceLoopMaxWork && max_iter >= 1 && max_iter <= kDeviceLoopMaxIter;
}

}  // namespace kmeans::detail::tuning
