// SPDX-License-Identifier: Apache-2.0
// Backend::Cpu: the fast multithreaded CPU backend. A thread pool (cpu_pool.hpp) hands out fixed
// blocks of points dynamically; each block runs the register-blocked SIMD kernel (cpu_kernel.inl)
// and accumulates its own partial per-cluster sums in the canonical order it shares with the CUDA
// engine (cpu_accumulate.hpp), which are combined in the canonical dyadic tree over the blocks
// (tree_sum.hpp): the result depends neither on the number of threads nor on how the blocks are
// split between shards (ShardEngine). When k * d is too large for
// per-block partials, the points are bucketed by label and each cluster forms its block partials
// and the same tree from its own points (the same bits).
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <numeric>
#include <string>
#include <vector>

#include "cpu_accumulate.hpp"
#include "cpu_bounds.hpp"
#include "cpu_kernel.hpp"
#include "cpu_pool.hpp"
#include "cpu_tables.hpp"
#include "engine.hpp"
#include "internal.hpp"
#include "shard_engine.hpp"
#include "tree_sum.hpp"

#ifndef KMEANS_SMALL_K_DEFAULT
#define KMEANS_SMALL_K_DEFAULT 16
#endif
#ifndef KMEANS_SMALL_K_WIDE_WORK
#define KMEANS_SMALL_K_WIDE_WORK 1024
#endif

namespace kmeans::detail {

namespace {

/// Points per parallel work item; also the unit of the fixed-order reductions.
constexpr std::int64_t kBlock = kReduceBlock;
static_assert(kBlock == cpu::kSubtilesPerLeaf * cpu::kSubtileRows, "a leaf is 16 sub-tiles");
/// Up to this many centroids the small-k kernel (points in SIMD lanes) runs instead of the
/// tiled one: measured on 4000 x 3 and 1M x 8 (bench/NOTES.md). With rows wider than one chunk
/// (d > kSmallKChunkD) it runs up to cpu::kSmallKChunkedMaxK = 64 centroids: there the tiled
/// kernel's rounding bound grows with d and sends many points to the re-check (5000 x 2048,
/// k = 32: 2.7x faster; 100k x 128, k = 64: 1.9x). With AVX-512 float tiles (32 centroids) it
/// also wins up to k = 64 on narrower rows (100k x 32, k = 48: 1.44x; 100k x 48, k = 64: 1.13x;
/// with AVX2's 16-centroid tiles it did not, so they keep the tiled kernel there).
constexpr int kSmallK = KMEANS_SMALL_K_DEFAULT;
/// It also runs while d <= kSmallKWideMaxD and k * d <= kSmallKWideWork * tile / 32: there the
/// tiled kernel's exactness checks (runner-up tracking, direct distance, bound test) cost more
/// than the small-k kernel's two operations per centroid and feature (measured with AVX-512
/// float tiles of 32 on 200k x {2, 4, 8, 16} and 1M x 8, k * d from 512 to 2048; AVX2's tiles
/// of 16 halve the limit, as measured on 1M x 8 and 200k x 8 with k = 64 and 128).
constexpr std::int64_t kSmallKWideMaxD = 16;
constexpr std::int64_t kSmallKWideWork = KMEANS_SMALL_K_WIDE_WORK;
/// Where the tiled kernel runs, the GEMM-shaped ranking pass (cpu_kernel_gemm.inl) replaces it
/// from this many features: measured one thread, tiled / GEMM time, AVX-512 float (double):
/// d = 48, k = 1024: 1.05 (1.03); d = 64, k = 512: 1.10 (1.11); d = 128, k = 512: 1.13 (1.06);
/// d = 2048, k = 128: 1.47 (1.10); AVX2 float 1.17 to 1.42, generic 1.04 to 1.18 on the same
/// shapes. At d = 8..32 its per-tile bookkeeping costs more than it saves: 0.69 to 0.95
/// (bench/NOTES.md, "a GEMM-shaped ranking pass").
constexpr std::int64_t kGemmMinD = 48;
inline bool use_gemm(std::int64_t d, int /*k*/) { return d >= kGemmMinD; }
/// Per-block partial sums are used while blocks * (k * d + k) stays under this many doubles
/// (128 MiB); above it the bucket-by-label path avoids the memory.
constexpr std::int64_t kMaxPartialDoubles = std::int64_t{16} << 20;
/// Bytes of rows per sub-block of a block (kernel, then accumulation, while the rows are cached).
constexpr std::int64_t kSubBlockBytes = 256 * 1024;

/// 64-byte aligned scratch for the centroid tiles (the kernel loads whole vectors).
template <class T>
struct AlignedBuffer {
  struct Free {
    void operator()(T* p) const noexcept { ::operator delete[](p, std::align_val_t{64}); }
  };
  std::unique_ptr<T[], Free> ptr;
  std::size_t size = 0;
  T* get(std::size_t n) {
    if (n > size) {
      ptr.reset(static_cast<T*>(::operator new[](n * sizeof(T), std::align_val_t{64})));
      size = n;
    }
    return ptr.get();
  }
};

/// Where the small-k kernel runs on rows of 24 features or more, the centroid-lanes kernel
/// (cpu_kernel_centroid_lanes.inl: centroids in the lanes, no transpose of the rows, the same
/// bits) replaces it from 3 centroids, in one vector of centroids or in vectors at least 3/5
/// full. Measured one thread, rows from memory, small-k / centroid-lanes cycles per row-feature
/// (Zen 4, bench/NOTES.md "centroids in the lanes"): AVX-512 float d = 784 k = 2 1.24 / 1.31,
/// k = 3 1.44 / 1.30, k = 8 1.46 / 1.27, k = 12 1.96 / 1.31, k = 18 (9/16 full) 2.16 / 2.32,
/// k = 20 2.42 / 2.33, k = 28 2.85 / 2.16, k = 64 5.3 / 4.3; d = 2048 k = 32 3.2-3.5 / 2.3-2.55;
/// d = 128 k = 16 2.1 / 1.35, k = 64 5.2 / 5.2; double d = 784 k = 2-4 2.0-2.3 / 1.3-1.4, k = 9
/// (9/16 full) 2.30 / 2.59, k = 16 4.12 / 2.40; whole fits 100k x 32 k = 48 1.36x, but 1M x 8
/// k = 64 and 20k x 8 k = 64 0.9-1.0x and 200k x 16 k = 32 mixed (so d >= 24). AVX2 and generic
/// were mostly faster on the kernel alone too (not generic d = 256 k = 64, 16 vectors: 21.2 /
/// 26.3), but not on whole fits (centroid_lanes_table).
/// Only the AVX-512 tables (64-byte vectors, 32 registers) take it: with AVX2's 16 registers a
/// pass keeps 4-6 chains (2-3 points), too few to hide the FMA latency, and whole fits on the
/// same Zen 4 with KMEANS_CPU_ISA=avx2 were mixed (20k x 1024 k = 16 1.3x faster, 5000 x 2048
/// k = 32 and 100k x 128 k = 64 1.1-1.3x slower, 200k x 16 k = 256 1.6x slower in place of the
/// ranking pass); the generic table's were 1.1-1.3x slower (60k x 784 k = 10, 100k x 32 k = 48).
inline bool centroid_lanes_table(int width, std::size_t bytes) {
  return static_cast<std::size_t>(width) * bytes == 64;
}
constexpr std::int64_t kCentroidLanesMinD = 24;
inline bool lanes_fill(int k, int width) {
  const int vecs = (k + width - 1) / width;
  return k >= 3 && (vecs == 1 || 5 * k >= 3 * vecs * width);
}
inline bool use_centroid_lanes(std::int64_t d, int k, int width) {
  return d >= kCentroidLanesMinD && k <= cpu::kSmallKChunkedMaxK && lanes_fill(k, width);
}

/// Whether the CPU runs a vector subtract on other pipes than its fused multiply-adds, so that
/// the direct formula's two operations per centroid and feature cost one FMA slot, as the
/// centred ranking's one: AMD Zen 4 (2 FMA + 2 add pipes; bench/NOTES.md, "Zen 4 and the direct
/// formula"). Taken as every AMD x86 CPU; Intel's cores put both on the FMA ports.
inline bool subtract_beside_fma() {
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
  static const bool amd = __builtin_cpu_is("amd");
  return amd;
#else
  return false;
#endif
}

/// Where the tiled or GEMM ranking pass would run, such a CPU takes the centroid-lanes kernel
/// up to k = 256 while its transposed centroids (d x kp values) fit in 1 MiB, and up to
/// k = 1024 while they fit in 256 KiB (float) or 32 KiB (double). Whole fits, 1 thread, ranking
/// pass / centroid lanes, ms per iteration (Zen 4, bench/NOTES.md "centroid lanes beyond the
/// small-k shapes" and after): float 200k x 4 k = 512 23.4 / 14.5, 200k x 8 k = 256 20.1 / 13.2,
/// 200k x 16 k = 256 30.3 / 21.8, 100k x 32 k = 128 16.3 / 11.5, 100k x 128 k = 256 95 / 76,
/// 20k x 512 k = 256 82 / 70-77, 5000 x 2048 k = 128 (1 MiB) 51-54 / 42-44; double 200k x 8
/// k = 256 33.4 / 24.4, 100k x 64 k = 128 48-49 / 38-41, 100k x 64 k = 256 82-87 / 70-76, 20k x
/// 256 k = 256 72 / 62-69, 5000 x 1024 k = 128 (1 MiB) 47-49 / 39-42; beyond the rules float
/// 100k x 128 k = 1024 (512 KiB) a tie, 20k x 256 k = 512 1.02-1.06x, 20k x 64 k = 4096 0.86-0.91x,
/// double 50k x 128 k = 512 (512 KiB) 0.94-1.0x.
constexpr int kCentroidLanesRankK = 256;
constexpr std::int64_t kCentroidLanesRankBytes = 1024 * 1024;
constexpr int kCentroidLanesRankMaxK = 1024;
template <class T>
bool use_centroid_lanes_ranking(std::int64_t d, int k, int width) {
  const std::int64_t bytes = d * cpu::centroid_lanes_kp(k) * static_cast<std::int64_t>(sizeof(T));
  const std::int64_t large_k_bytes = sizeof(T) == 4 ? 256 * 1024 : 32 * 1024;
  return subtract_beside_fma() && lanes_fill(k, width) &&
         ((k <= kCentroidLanesRankK && bytes <= kCentroidLanesRankBytes) ||
          (k <= kCentroidLanesRankMaxK && bytes <= large_k_bytes));
}

/// The internal hook KMEANS_CPU_KERNEL (tests and benchmarks): "tiled" or "gemm" runs that
/// ranking pass on every shape, "small_k" the kernels as they were before the centroid-lanes
/// kernel (the points-in-lanes small-k kernel, the tiled and GEMM passes, by the size rules);
/// unset or empty the size rules decide. All give the same bits.
enum class ForcedKernel { None, Tiled, Gemm, SmallK };
ForcedKernel forced_kernel() {
  const char* f = std::getenv("KMEANS_CPU_KERNEL");
  if (f == nullptr || *f == '\0') return ForcedKernel::None;
  if (std::strcmp(f, "tiled") == 0) return ForcedKernel::Tiled;
  if (std::strcmp(f, "gemm") == 0) return ForcedKernel::Gemm;
  if (std::strcmp(f, "small_k") == 0) return ForcedKernel::SmallK;
  throw Error(std::string("KMEANS_CPU_KERNEL = ") + f + " is unknown (valid: tiled, gemm, small_k)");
}

}  // namespace

namespace {

template <class T>
class CpuEngine final : public ShardEngine<T> {
 public:
  CpuEngine(const DataView<T>& v, const cpu::KernelTable& kt, std::int64_t max_partial_doubles,
            std::int64_t first_block = 0)
      : v_(v),
        first_block_(first_block),
        max_partial_doubles_(max_partial_doubles),
        kernel_(kernel_of<T>(kt)),
        gemm_kernel_(gemm_kernel_of<T>(kt)),
        forced_(forced_kernel()),
        small_k_kernel_(small_k_kernel_of<T>(kt)),
        lanes_kernel_(centroid_lanes_kernel_of<T>(kt)),
        width_(simd_width_of<T>(kt)),
        accumulate_(accumulate_of<T>(kt)),
        accumulate_leaf_(accumulate_leaf_of<T>(kt)),
        add_(kt.add),
        subtile_(subtile_of<T>(kt)),
        tile_(tile_of<T>(kt)),
        bounds_test_(bounds_test_of<T>(cpu::bounds_table_for(kt.name))),
        bounds_groups_(bounds_groups_of<T>(cpu::bounds_table_for(kt.name))),
        bounds_full_(bounds_full_of<T>(cpu::bounds_table_for(kt.name))),
        bounds_search_(bounds_search_of<T>(cpu::bounds_table_for(kt.name))),
        n_threads_(resolve_threads(v.n_threads)),
        n_blocks_((v.n + kBlock - 1) / kBlock),
        labels_(static_cast<std::size_t>(v.n), -1),
        dist_(static_cast<std::size_t>(v.n)),
        block_sse_(static_cast<std::size_t>(n_blocks_)),
        nodes_(tree::decompose(first_block_, first_block_ + n_blocks_)) {}

  Backend kind() const override { return Backend::Cpu; }

  void set_algorithm(Algorithm a) override { algorithm_ = a; }
  bool prunes() const override { return true; }
  std::int64_t last_pass_searched() const override { return last_searched_; }

  StepStats assign(const T* centroids, int k, double* sums, double* weights) override {
    return pass(centroids, k, sums != nullptr, sums, weights, nullptr);
  }

  const std::vector<tree::Node>& nodes() const override { return nodes_; }

  StepStats assign_nodes(const T* centroids, int k, bool with_sums,
                         std::vector<double>& out) override {
    const std::int64_t width = with_sums ? k * v_.d + k + 1 : 1;
    out.assign(nodes_.size() * static_cast<std::size_t>(width), 0.0);
    return pass(centroids, k, with_sums, nullptr, nullptr, out.data());
  }

  const T* point_distances() const override { return dist_.data(); }
  void keep_centre() override { keep_centre_ = true; }

 private:
  /// The rows of one sub-block of a block (the kernel, then the accumulation while the rows are
  /// cached).
  std::int64_t sub_block_rows() const {
    const std::int64_t row_bytes = v_.d * static_cast<std::int64_t>(sizeof(T));
    return std::min(kBlock, std::max<std::int64_t>(64, kSubBlockBytes / row_bytes / 64 * 64));
  }

  /// One pass. The sums (when with_sums), weights and SSE are totalled into sums, weights and
  /// the returned SSE when `out` is null, else left as node values in `out` (assign_nodes).
  StepStats pass(const T* centroids, int k, bool with_sums, double* sums, double* weights,
                 double* out) {
    const std::int64_t n = v_.n, d = v_.d;
    const int n_tiles = (k + tile_ - 1) / tile_;
    bool small_k =
        (k <= kSmallK && (d <= cpu::kSmallKChunkD || k <= cpu::kSmallKChunkedMaxK)) ||
        (d > cpu::kSmallKChunkD && k <= cpu::kSmallKChunkedMaxK) ||  // wide rows: no bound
        (tile_ >= 32 && k <= cpu::kSmallKChunkedMaxK) ||  // 32-centroid tiles (AVX-512 float)
        (d <= kSmallKWideMaxD && k * d * 32 <= kSmallKWideWork * tile_);
    bool gemm = !small_k && use_gemm(d, k);
    if (forced_ == ForcedKernel::Tiled || forced_ == ForcedKernel::Gemm) {
      small_k = false;
      gemm = forced_ == ForcedKernel::Gemm;
    }
    const bool lanes = forced_ == ForcedKernel::None && centroid_lanes_table(width_, sizeof(T)) &&
                       (small_k ? use_centroid_lanes(d, k, width_)
                                : use_centroid_lanes_ranking<T>(d, k, width_));
    const bool direct_rule = small_k;  // the bound-pruned passes' share rule (tuned before lanes)
    if (lanes) {
      small_k = true;  // no tiles, no centre, no ranking scratch
      gemm = false;
    }
    const bool usable = cpu::bound_consts<T>(d).usable;
    const bool pruned = cpu::use_bounds(algorithm_, n, d, k, sizeof(T), usable, bounds_valid_,
                                        last_changed_, passes_);
    if (with_sums) ++passes_;
    if (pruned)
      bounds_.prepare(centroids, k, n, d, bounds_valid_,
                      threads_for(n_threads_, double(k) * k * d), bounds_search_);
    if (!small_k && !mean_valid_) {  // the tiled kernels' centre, computed on first need
      mean_ = data_mean(v_);
      mean_valid_ = true;
    }
    T* tiles = small_k ? nullptr : make_tiles(centroids, k, n_tiles);
    const T* ct = lanes ? make_centroid_lanes(centroids, k) : nullptr;
    const bool partials = with_sums && n_blocks_ * (k * d + k) <= max_partial_doubles_;
    const std::int64_t stride = k * d + k;  // one block's partial: sums then weights
    const double share = cpu::search_share(direct_rule);
    if (pruned) block_searched_.assign(static_cast<std::size_t>(n_blocks_), 0);
    // Too few blocks to keep every thread busy (under 4 per thread; 5000 x 2048 is two): each
    // block is split into `parts` runs of sub-tiles (at least 2, and at least 2 items per
    // thread; 4 parts gave 5000 x 2048 k = 32 no more than 2, with twice the records); the
    // first run of a block sums into its leaf, the later ones record their sub-tiles
    // (cpu::SubtileRecord), added in order after the pass, so the bits do not change. Not with
    // bound-pruned passes (a block's policy is one thread's) nor the small shapes'
    // four-sub-tile accumulation.
    const int threads = threads_for(n_threads_, double(n) * d * (k + 1));
    int parts = 1;
    if (threads > 1 && !pruned && !(partials && cpu::accumulate_interleaved(d, k)) &&
        n_blocks_ < 4 * threads)
      parts = static_cast<int>(std::min<std::int64_t>(
          cpu::kSubtilesPerLeaf,
          std::max<std::int64_t>(2, (2 * threads + n_blocks_ - 1) / n_blocks_)));
    const std::int64_t items = n_blocks_ * parts;
    const int nt = items > 1 ? threads : 1;
    double* part = partials ? partial_.get(static_cast<std::size_t>(n_blocks_ * stride)) : nullptr;

    if (slots_.size() < static_cast<std::size_t>(nt)) slots_.resize(static_cast<std::size_t>(nt));
    for (int t = 0; t < nt; ++t) {
      slots_[t].lab.resize(static_cast<std::size_t>(kBlock));
      if (!small_k)
        slots_[t].scratch.resize(static_cast<std::size_t>(kBlock + (gemm ? cpu::gemm_scratch(d) : 0)));
      if (pruned) {
        slots_[t].search.resize(static_cast<std::size_t>(kBlock));
        const auto units = static_cast<std::size_t>(cpu::kSearchRows * bounds_.lane_groups());
        slots_[t].unit_idx.resize(3 * units);
        slots_[t].unit_val.resize(2 * units);
      }
    }
    // A block goes through the kernel and the accumulation a sub-block at a time, so that the
    // accumulation finds its rows still in cache: one read of the data per pass.
    const std::int64_t sub = sub_block_rows();
    item_changed_.assign(static_cast<std::size_t>(items), 0);
    if (parts > 1 && part && records_.size() < static_cast<std::size_t>(items))
      records_.resize(static_cast<std::size_t>(items));
    auto block = [&](std::int64_t item, int slot) {
      const std::int64_t b = item / parts, pi = item % parts;
      std::int32_t* lab = slots_[slot].lab.data();
      const std::int64_t i0 = b * kBlock, rows = std::min(kBlock, n - i0);
      // This item's rows of the block: sub-tiles [pi S / parts, (pi + 1) S / parts) of its S.
      const std::int64_t n_sub = (rows + cpu::kSubtileRows - 1) / cpu::kSubtileRows;
      const std::int64_t lo = std::min(rows, pi * n_sub / parts * cpu::kSubtileRows);
      const std::int64_t hi = std::min(rows, (pi + 1) * n_sub / parts * cpu::kSubtileRows);
      double* ps = part ? part + b * stride : nullptr;
      if (ps && pi == 0) std::fill(ps, ps + stride, 0.0);
      // The leaf's sums in the canonical order (cpu_accumulate.hpp): shapes with few sums sum
      // four sub-tiles at once over the whole block, after its kernel calls (their sub-blocks
      // are the whole block); the others a sub-block at a time, while its rows are cached.
      const bool leaf_small = ps && cpu::accumulate_interleaved(d, k);
      cpu::LeafSums<T>& leaf = slots_[slot].sums;
      if (ps && !leaf_small) {
        if (pi == 0)
          leaf.begin(ps, d, k, add_, subtile_);
        else
          leaf.begin_record(&records_[static_cast<std::size_t>(item)], d, k, add_, hi - lo);
      }
      cpu::BlockPolicy* policy = pruned ? &bounds_.policy(b) : nullptr;
      std::int64_t changed = 0;
      for (std::int64_t s0 = lo; s0 < hi; s0 += sub) {
        const std::int64_t r0 = i0 + s0, sr = std::min(sub, hi - s0);
        std::int64_t* search = pruned ? slots_[slot].search.data() : nullptr;
        std::int64_t ns = sr, units = 0;
        const std::int32_t* prev = labels_.data() + r0;  // still the previous pass's labels
        if (pruned) {
          ns = bounds_test_(bounds_.pass(), v_.data + r0 * d, sr, prev, bounds_.lower(r0),
                            lab + s0, dist_.data() + r0, search, &units);
          block_searched_[b] += ns;
        }
        bool lloyd_rows = false, full = false;
        if (pruned && units > share * static_cast<double>(sr) * bounds_.lane_groups()) {
          lloyd_rows = policy->lloyd_when_crowded();
          full = !lloyd_rows;  // a full search of the unproven rows, blocked
          policy->crowded = true;
        }
        if (full) {
          bounds_full_(bounds_.pass(), v_.data + r0 * d, search, ns, prev, bounds_.lower(r0),
                       lab + s0, dist_.data() + r0, nullptr, nullptr);
        } else if (pruned && !lloyd_rows) {
          bounds_groups_(bounds_.pass(), v_.data + r0 * d, search, ns, prev, bounds_.lower(r0),
                         lab + s0, dist_.data() + r0, slots_[slot].unit_idx.data(),
                         slots_[slot].unit_val.data());
        } else if (lanes) {
          lanes_kernel_(v_.data + r0 * d, sr, d, ct, k, lab + s0, dist_.data() + r0);
        } else if (small_k) {
          small_k_kernel_(v_.data + r0 * d, sr, d, centroids, k, lab + s0, dist_.data() + r0);
        } else {
          (gemm ? gemm_kernel_ : kernel_)(v_.data + r0 * d, sr, d, centroids, k, mean_.data(),
                                          tiles, n_tiles, lab + s0, dist_.data() + r0,
                                          slots_[slot].scratch.data());
        }
        if (pruned && lloyd_rows)
          cpu::separation_bounds(bounds_.pass(), prev, lab + s0, dist_.data() + r0, search, ns,
                                 bounds_.separation(), bounds_.lower(r0));
        changed += keep_labels(r0, sr, lab + s0);
        if (ps && !leaf_small)
          leaf.add(v_.data + r0 * d, v_.weights ? v_.weights + r0 : nullptr, s0, sr, lab + s0,
                   accumulate_);
      }
      if (policy) policy->finish();
      if (leaf_small) {
        if (v_.weights)
          cpu::accumulate_leaf_weighted(v_.data + i0 * d, v_.weights + i0, rows, d, k, lab, ps,
                                        ps + k * d);
        else
          accumulate_leaf_(v_.data + i0 * d, rows, d, k, lab, ps, ps + k * d);
      } else if (ps) {
        leaf.end();
      }
      if (parts == 1)
        block_sse_[b] = cpu::leaf_sse(dist_.data() + i0, v_.weights ? v_.weights + i0 : nullptr, rows);
      item_changed_[static_cast<std::size_t>(item)] = changed;
    };
    cpu::parallel_for(nt, items, block);
    if (parts > 1) {  // the split blocks: later runs' sub-tiles in order, then the SSE
      constexpr std::int64_t kCols = 512;  // columns (of d + 1) per replay item
      const std::int64_t chunks = part ? (d + 1 + kCols - 1) / kCols : 0;
      auto finish = [&](std::int64_t i, int) {
        const std::int64_t b = i / chunks, j0 = i % chunks * kCols;
        for (int pi = 1; pi < parts; ++pi)
          cpu::replay(records_[static_cast<std::size_t>(b * parts + pi)], d, k, part + b * stride,
                      j0, std::min(d + 1, j0 + kCols));
      };
      if (part) cpu::parallel_for(nt, n_blocks_ * chunks, finish);
      for (std::int64_t b = 0; b < n_blocks_; ++b)
        block_sse_[b] = cpu::leaf_sse(dist_.data() + b * kBlock,
                                      v_.weights ? v_.weights + b * kBlock : nullptr,
                                      std::min(kBlock, n - b * kBlock));
    }
    const auto m = static_cast<std::int64_t>(nodes_.size());
    const std::int64_t width = with_sums ? stride + 1 : 1;  // a row of `out`
    if (part) {  // each node's tree, then the right fold of the nodes (tree_sum.hpp)
      constexpr std::int64_t kRun = 1024;
      auto merge = [&](std::int64_t run, int) {
        const std::int64_t e0 = run * kRun, e1 = std::min(stride, (run + 1) * kRun);
        for (std::int64_t j = 0; j < m; ++j) {
          double* row = part + (nodes_[j].start - first_block_) * stride;
          tree::reduce_node(row, nodes_[j].size, stride, e0, e1);
          if (out) std::copy(row + e0, row + e1, out + j * width + e0);
        }
        if (out) return;
        for (std::int64_t e = e0; e < e1; ++e) {
          double acc = part[(nodes_[m - 1].start - first_block_) * stride + e];
          for (std::int64_t j = m - 2; j >= 0; --j)
            acc = part[(nodes_[j].start - first_block_) * stride + e] + acc;
          if (e < k * d)
            sums[e] = acc;
          else
            weights[e - k * d] = acc;
        }
      };
      cpu::parallel_for(nt, (stride + kRun - 1) / kRun, merge);
    }
    if (with_sums && !partials) sum_by_cluster(k, sums, weights, out, width);
    bounds_valid_ = pruned;
    // An Elkan pass before the bounds start searched every row.
    last_searched_ =
        !pruned && algorithm_ == Algorithm::Elkan &&
                cpu::bounds_possible(algorithm_, n, d, k, sizeof(T), usable)
            ? n
            : -1;
    if (pruned) {
      last_searched_ = 0;
      for (std::int64_t b = 0; b < n_blocks_; ++b) last_searched_ += block_searched_[b];
    }

    StepStats stats;
    for (const std::int64_t c : item_changed_) stats.n_changed += c;
    // The SSE: the same tree over the block SSEs.
    sse_tree_.assign(block_sse_.begin(), block_sse_.end());
    for (std::int64_t j = 0; j < m; ++j) {
      double* leaf = sse_tree_.data() + (nodes_[j].start - first_block_);
      tree::reduce_node(leaf, nodes_[j].size, 1, 0, 1);
      if (out) out[j * width + width - 1] = *leaf;
    }
    stats.sse = sse_tree_[static_cast<std::size_t>(nodes_[m - 1].start - first_block_)];
    for (std::int64_t j = m - 2; j >= 0; --j)
      stats.sse = sse_tree_[static_cast<std::size_t>(nodes_[j].start - first_block_)] + stats.sse;
    last_changed_ = stats.n_changed;
    return stats;
  }

 public:
  void labels(std::int32_t* out) override { std::copy(labels_.begin(), labels_.end(), out); }

  std::vector<FarPoint> farthest(std::int64_t m) override {
    m = std::min(m, v_.n);
    std::vector<std::int64_t> idx(static_cast<std::size_t>(v_.n));
    std::iota(idx.begin(), idx.end(), 0);
    std::partial_sort(idx.begin(), idx.begin() + m, idx.end(), [&](std::int64_t a, std::int64_t b) {
      return dist_[a] != dist_[b] ? dist_[a] > dist_[b] : a < b;
    });
    std::vector<FarPoint> out;
    for (std::int64_t i = 0; i < m; ++i) out.push_back({idx[i], labels_[idx[i]]});
    return out;
  }

  const T* host_data() override { return v_.data; }
  const T* host_weights() override { return v_.weights; }

  void distances(const T* centroids, int k, T* out) override {
    host_distances(v_.data, v_.n, v_.d, centroids, k, out, n_threads_);
  }

  /// Any data set: the per-point buffers keep their memory when n is unchanged.
  bool rebind(const DataView<T>& v) override {
    v_ = v;
    bounds_valid_ = false;
    last_changed_ = -1;
    passes_ = 0;
    n_threads_ = resolve_threads(v.n_threads);
    n_blocks_ = (v.n + kBlock - 1) / kBlock;
    if (!keep_centre_) mean_valid_ = false;
    labels_.assign(static_cast<std::size_t>(v.n), -1);
    dist_.resize(static_cast<std::size_t>(v.n));
    block_sse_.resize(static_cast<std::size_t>(n_blocks_));
    nodes_ = tree::decompose(first_block_, first_block_ + n_blocks_);
    return true;
  }

 private:
  /// Labels of rows [i0, i0 + rows) into labels_; returns how many changed.
  std::int64_t keep_labels(std::int64_t i0, std::int64_t rows,
                           const std::int32_t* __restrict__ lab) {
    std::int32_t* __restrict__ out = labels_.data() + i0;
    std::int64_t changed = 0;
    for (std::int64_t r = 0; r < rows; ++r) {
      changed += out[r] != lab[r];
      out[r] = lab[r];
    }
    return changed;
  }

  /// Centroids centred on the data mean and transposed into [tile][d + 1][tile_] blocks; row 0
  /// holds half the squared norm (in double, then rounded), +inf in padding so it never wins.
  T* make_tiles(const T* c, int k, int n_tiles) {
    const std::int64_t d = v_.d;
    T* t = tiles_.get(static_cast<std::size_t>(n_tiles) * (d + 1) * tile_);
    for (int tt = 0; tt < n_tiles; ++tt) {
      T* tile = t + static_cast<std::int64_t>(tt) * (d + 1) * tile_;
      for (int l = 0; l < tile_; ++l) {
        const int ci = tt * tile_ + l;
        double norm = 0;
        for (std::int64_t j = 0; j < d; ++j) {
          const double cj = ci < k ? static_cast<double>(c[ci * d + j]) - mean_[j] : 0.0;
          const T rounded = static_cast<T>(cj);
          tile[(j + 1) * tile_ + l] = rounded;
          norm += static_cast<double>(rounded) * static_cast<double>(rounded);
        }
        tile[l] = ci < k ? static_cast<T>(0.5 * norm) : static_cast<T>(__builtin_inf());
      }
    }
    return t;
  }

  /// The centroids transposed for the centroid-lanes kernel: ct[j * kp + c], +inf padding.
  const T* make_centroid_lanes(const T* c, int k) {
    const std::int64_t d = v_.d, kp = cpu::centroid_lanes_kp(k);
    T* t = lanes_.get(static_cast<std::size_t>(d * kp));
    for (std::int64_t j = 0; j < d; ++j) {
      T* row = t + j * kp;
      for (int ci = 0; ci < k; ++ci) row[ci] = c[ci * d + j];
      for (std::int64_t ci = k; ci < kp; ++ci) row[ci] = static_cast<T>(__builtin_inf());
    }
    return t;
  }

  /// Per-feature mean of the data (in double, rounded to T): the centre of the expansion.
  static std::vector<T> data_mean(const DataView<T>& v) {
    std::vector<double> m(static_cast<std::size_t>(v.d), 0.0);
    for (std::int64_t i = 0; i < v.n; ++i)
      for (std::int64_t j = 0; j < v.d; ++j) m[j] += static_cast<double>(v.data[i * v.d + j]);
    std::vector<T> out(static_cast<std::size_t>(v.d));
    for (std::int64_t j = 0; j < v.d; ++j) out[j] = static_cast<T>(m[j] / static_cast<double>(v.n));
    return out;
  }

  /// Large k * d: the sums by cluster from the points bucketed by label (cpu::bucket_sums).
  void sum_by_cluster(int k, double* sums, double* weights, double* out, std::int64_t width) {
    cpu::bucket_sums(v_.data, v_.weights, v_.n, v_.d, k, labels_.data(), nodes_, first_block_,
                     threads_for(n_threads_, double(v_.n) * v_.d), bucket_, sums, weights, out,
                     width);
  }

  DataView<T> v_;
  std::int64_t first_block_;
  std::int64_t max_partial_doubles_;
  cpu::AssignFn<T> kernel_;
  cpu::AssignFn<T> gemm_kernel_;
  ForcedKernel forced_;
  cpu::AssignSmallKFn<T> small_k_kernel_;
  cpu::AssignCentroidLanesFn<T> lanes_kernel_;
  int width_;  ///< the table's values of T per vector
  cpu::AccumulateFn<T> accumulate_;
  cpu::AccumulateLeafFn<T> accumulate_leaf_;
  cpu::AddFn add_;
  cpu::SubtileSumsFn<T> subtile_;
  int tile_;
  cpu::GroupsTestFn<T> bounds_test_;
  cpu::GroupsSearchFn<T> bounds_groups_;
  cpu::GroupsSearchFn<T> bounds_full_;
  cpu::BoundsSearchFn<T> bounds_search_;
  Algorithm algorithm_ = Algorithm::Lloyd;
  cpu::Bounds<T> bounds_;
  bool bounds_valid_ = false;  ///< bounds_ belong to labels_ (the last pass was pruned)
  std::int64_t last_changed_ = -1;  ///< labels the last pass changed (-1: none yet), for Auto
  std::int64_t passes_ = 0;         ///< passes with sums since the last bind, for Auto
  std::int64_t last_searched_ = -1;
  std::vector<std::int64_t> block_searched_;
  int n_threads_;
  std::int64_t n_blocks_;
  std::vector<T> mean_;
  bool keep_centre_ = false;  ///< rebind keeps mean_ (ShardEngine::keep_centre)
  /// mean_ holds the data's mean: it is computed on the first pass through a tiled kernel (the
  /// small-k kernel needs none; a full pass over the data at 60k x 784 costs ~half an iteration).
  bool mean_valid_ = false;
  std::vector<std::int32_t> labels_;
  std::vector<T> dist_;
  std::vector<double> block_sse_;
  std::vector<std::int64_t> item_changed_;  ///< labels changed per work item of a pass
  std::vector<cpu::SubtileRecord> records_;  ///< the later runs of split blocks
  std::vector<tree::Node> nodes_;  ///< the canonical decomposition of this data's blocks
  std::vector<double> sse_tree_;
  cpu::BucketScratch bucket_;
  AlignedBuffer<T> tiles_;
  AlignedBuffer<T> lanes_;  ///< the centroid-lanes kernel's transposed centroids
  AlignedBuffer<double> partial_;
  /// Per-thread scratch of assign (index = the pool's slot), kept across passes.
  struct Slot {
    std::vector<std::int32_t> lab;
    std::vector<T> scratch;
    cpu::LeafSums<T> sums;  ///< the block's canonical sums (general shapes)
    std::vector<std::int64_t> search;  ///< rows of a pruned pass that search
    std::vector<std::int32_t> unit_idx;  ///< the search's (row, lane group) units
    std::vector<T> unit_val;
  };
  std::vector<Slot> slots_;
};

}  // namespace

template <class T>
std::unique_ptr<Engine<T>> make_cpu_engine(const DataView<T>& v, std::int64_t max_partial_doubles) {
  return std::make_unique<CpuEngine<T>>(v, cpu::select_kernels(), max_partial_doubles);
}

template <class T>
std::unique_ptr<Engine<T>> make_cpu_engine(const DataView<T>& v) {
  return make_cpu_engine(v, kMaxPartialDoubles);
}

template <class T>
std::unique_ptr<ShardEngine<T>> make_cpu_shard_engine(const DataView<T>& v,
                                                      std::int64_t first_block,
                                                      std::int64_t max_partial_doubles) {
  if (first_block < 0) throw Error("first_block = " + std::to_string(first_block) + " is negative");
  return std::make_unique<CpuEngine<T>>(
      v, cpu::select_kernels(), max_partial_doubles > 0 ? max_partial_doubles : kMaxPartialDoubles,
      first_block);
}

template std::unique_ptr<Engine<float>> make_cpu_engine(const DataView<float>&);
template std::unique_ptr<Engine<double>> make_cpu_engine(const DataView<double>&);
template std::unique_ptr<Engine<float>> make_cpu_engine(const DataView<float>&, std::int64_t);
template std::unique_ptr<Engine<double>> make_cpu_engine(const DataView<double>&, std::int64_t);
template std::unique_ptr<ShardEngine<float>> make_cpu_shard_engine(const DataView<float>&,
                                                                   std::int64_t, std::int64_t);
template std::unique_ptr<ShardEngine<double>> make_cpu_shard_engine(const DataView<double>&,
                                                                    std::int64_t, std::int64_t);

}  // namespace kmeans::detail
