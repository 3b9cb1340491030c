// SPDX-License-Identifier: Apache-2.0
// Backend::Cpu: the fast multithreaded CPU backend. A thread pool (cpu_pool.hpp) hands out fixed
// blocks of points dynamically; each block runs the register-blocked SIMD kernel (cpu_kernel.inl)
// and accumulates its own partial per-cluster sums, which are merged in block order: the result
// does not depend on the number of threads or on scheduling. When k * d is too large for
// per-block partials, the points are bucketed by label and each cluster is summed in index order
// instead (also thread-independent).
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <numeric>
#include <string>
#include <vector>

#include "cpu_bounds.hpp"
#include "cpu_kernel.hpp"
#include "cpu_pool.hpp"
#include "engine.hpp"
#include "internal.hpp"

#ifndef KMEANS_SMALL_K_DEFAULT
#define KMEANS_SMALL_K_DEFAULT 16
#endif
#ifndef KMEANS_SMALL_K_WIDE_WORK
#define KMEANS_SMALL_K_WIDE_WORK 1024
#endif

namespace kmeans::detail {
namespace cpu {

const KernelTable& select_kernels() {
  const KernelTable* all[3];
  const int n = supported_kernels(all, 3);
  return select_kernels_from(std::getenv("KMEANS_CPU_ISA"), all, n);
}

const KernelTable& select_kernels_from(const char* forced, const KernelTable* const* supported,
                                       int n) {
  if (forced == nullptr || *forced == '\0') return *supported[n - 1];
  for (int i = 0; i < n; ++i)
    if (std::strcmp(supported[i]->name, forced) == 0) return *supported[i];
  std::string names;
  for (int i = 0; i < n; ++i) names += std::string(i ? ", " : "") + supported[i]->name;
  static const char* const kKnown[] = {"generic", "avx2", "avx512"};
  for (const char* known : kKnown)
    if (std::strcmp(known, forced) == 0)
      throw Error(std::string("KMEANS_CPU_ISA = ") + forced +
                  " is not supported on this CPU (supported: " + names + ")");
  throw Error(std::string("KMEANS_CPU_ISA = ") + forced +
              " is unknown (valid: generic, avx2, avx512; supported on this CPU: " + names + ")");
}

int supported_kernels(const KernelTable** out, int max) {
  int n = 0;
  if (n < max) out[n++] = &kernels_generic();
#if defined(KMEANS_X86_KERNELS)
  __builtin_cpu_init();
  if (n < max && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    out[n++] = &kernels_avx2();
  if (n == 2 && n < max && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl"))
    out[n++] = &kernels_avx512();
#endif
  return n;
}

}  // namespace cpu

namespace {

/// Points per parallel work item; also the unit of the fixed-order reductions.
constexpr std::int64_t kBlock = kReduceBlock;
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

template <class T>
cpu::AssignFn<T> kernel_of(const cpu::KernelTable& t);
template <>
cpu::AssignFn<float> kernel_of<float>(const cpu::KernelTable& t) { return t.assign_f; }
template <>
cpu::AssignFn<double> kernel_of<double>(const cpu::KernelTable& t) { return t.assign_d; }

template <class T>
cpu::AssignSmallKFn<T> small_k_kernel_of(const cpu::KernelTable& t);
template <>
cpu::AssignSmallKFn<float> small_k_kernel_of<float>(const cpu::KernelTable& t) {
  return t.assign_small_k_f;
}
template <>
cpu::AssignSmallKFn<double> small_k_kernel_of<double>(const cpu::KernelTable& t) {
  return t.assign_small_k_d;
}

template <class T>
cpu::AccumulateFn<T> accumulate_of(const cpu::KernelTable& t);
template <>
cpu::AccumulateFn<float> accumulate_of<float>(const cpu::KernelTable& t) { return t.accumulate_f; }
template <>
cpu::AccumulateFn<double> accumulate_of<double>(const cpu::KernelTable& t) { return t.accumulate_d; }

template <class T>
cpu::FinishFn<T> finish_of(const cpu::KernelTable& t);
template <>
cpu::FinishFn<float> finish_of<float>(const cpu::KernelTable& t) { return t.finish_f; }
template <>
cpu::FinishFn<double> finish_of<double>(const cpu::KernelTable& t) { return t.finish_d; }

template <class T>
cpu::GroupsTestFn<T> bounds_test_of(const cpu::BoundsTable& t);
template <>
cpu::GroupsTestFn<float> bounds_test_of<float>(const cpu::BoundsTable& t) { return t.test_f; }
template <>
cpu::GroupsTestFn<double> bounds_test_of<double>(const cpu::BoundsTable& t) { return t.test_d; }
template <class T>
cpu::GroupsSearchFn<T> bounds_full_of(const cpu::BoundsTable& t);
template <>
cpu::GroupsSearchFn<float> bounds_full_of<float>(const cpu::BoundsTable& t) { return t.full_f; }
template <>
cpu::GroupsSearchFn<double> bounds_full_of<double>(const cpu::BoundsTable& t) { return t.full_d; }
template <class T>
cpu::GroupsSearchFn<T> bounds_groups_of(const cpu::BoundsTable& t);
template <>
cpu::GroupsSearchFn<float> bounds_groups_of<float>(const cpu::BoundsTable& t) { return t.groups_f; }
template <>
cpu::GroupsSearchFn<double> bounds_groups_of<double>(const cpu::BoundsTable& t) {
  return t.groups_d;
}
template <class T>
cpu::BoundsSearchFn<T> bounds_search_of(const cpu::BoundsTable& t);
template <>
cpu::BoundsSearchFn<float> bounds_search_of<float>(const cpu::BoundsTable& t) { return t.search_f; }
template <>
cpu::BoundsSearchFn<double> bounds_search_of<double>(const cpu::BoundsTable& t) {
  return t.search_d;
}

template <class T>
int tile_of(const cpu::KernelTable& t) {
  return sizeof(T) == sizeof(float) ? t.tile_f : t.tile_d;
}

}  // namespace

namespace {

template <class T>
class CpuEngine final : public Engine<T> {
 public:
  CpuEngine(const DataView<T>& v, const cpu::KernelTable& kt, std::int64_t max_partial_doubles)
      : v_(v),
        max_partial_doubles_(max_partial_doubles),
        kernel_(kernel_of<T>(kt)),
        small_k_kernel_(small_k_kernel_of<T>(kt)),
        accumulate_(accumulate_of<T>(kt)),
        finish_(finish_of<T>(kt)),
        tile_(tile_of<T>(kt)),
        bounds_test_(bounds_test_of<T>(cpu::bounds_table_for(kt.name))),
        bounds_groups_(bounds_groups_of<T>(cpu::bounds_table_for(kt.name))),
        bounds_full_(bounds_full_of<T>(cpu::bounds_table_for(kt.name))),
        bounds_search_(bounds_search_of<T>(cpu::bounds_table_for(kt.name))),
        n_threads_(resolve_threads(v.n_threads)),
        n_blocks_((v.n + kBlock - 1) / kBlock),
        mean_(data_mean(v)),
        labels_(static_cast<std::size_t>(v.n), -1),
        dist_(static_cast<std::size_t>(v.n)),
        block_sse_(static_cast<std::size_t>(n_blocks_)),
        block_changed_(static_cast<std::size_t>(n_blocks_)) {}

  Backend kind() const override { return Backend::Cpu; }

  void set_algorithm(Algorithm a) override { algorithm_ = a; }
  std::int64_t last_pass_searched() const override { return last_searched_; }

  StepStats assign(const T* centroids, int k, double* sums, double* weights) override {
    const std::int64_t n = v_.n, d = v_.d;
    const int n_tiles = (k + tile_ - 1) / tile_;
    const bool small_k =
        (k <= kSmallK && (d <= cpu::kSmallKChunkD || k <= cpu::kSmallKChunkedMaxK)) ||
        (d > cpu::kSmallKChunkD && k <= cpu::kSmallKChunkedMaxK) ||  // wide rows: no bound
        (tile_ >= 32 && k <= cpu::kSmallKChunkedMaxK) ||  // 32-centroid tiles (AVX-512 float)
        (d <= kSmallKWideMaxD && k * d * 32 <= kSmallKWideWork * tile_);
    const bool pruned = cpu::use_bounds(algorithm_, n, d, k, sizeof(T),
                                        cpu::bound_consts<T>(d).usable, bounds_valid_,
                                        last_changed_, passes_);
    if (sums) ++passes_;
    if (pruned)
      bounds_.prepare(centroids, k, n, d, bounds_valid_,
                      threads_for(n_threads_, double(k) * k * d), bounds_search_,
                      algorithm_ == Algorithm::Auto);
    T* tiles = small_k ? nullptr : make_tiles(centroids, k, n_tiles);
    const bool partials = sums && n_blocks_ * (k * d + k) <= max_partial_doubles_;
    const std::int64_t stride = k * d + k;  // one block's partial: sums then weights
    const double share = cpu::search_share(small_k);
    if (pruned) block_searched_.assign(static_cast<std::size_t>(n_blocks_), 0);
    const int nt = n_blocks_ > 1 ? threads_for(n_threads_, double(n) * d * (k + 1)) : 1;
    double* part = partials ? partial_.get(static_cast<std::size_t>(n_blocks_ * stride)) : nullptr;

    if (slots_.size() < static_cast<std::size_t>(nt)) slots_.resize(static_cast<std::size_t>(nt));
    for (int t = 0; t < nt; ++t) {
      slots_[t].lab.resize(static_cast<std::size_t>(kBlock));
      if (!small_k) slots_[t].scratch.resize(static_cast<std::size_t>(kBlock));
      if (pruned) {
        slots_[t].search.resize(static_cast<std::size_t>(kBlock));
        const auto units = static_cast<std::size_t>(cpu::kSearchRows * bounds_.lane_groups());
        slots_[t].unit_idx.resize(3 * units);
        slots_[t].unit_val.resize(2 * units);
      }
    }
    // A block goes through the kernel and the accumulation a sub-block at a time, so that the
    // accumulation finds its rows still in cache: one read of the data per pass.
    const std::int64_t row_bytes = d * static_cast<std::int64_t>(sizeof(T));
    const std::int64_t sub = std::min(kBlock, std::max<std::int64_t>(64, kSubBlockBytes / row_bytes / 64 * 64));
    auto block = [&](std::int64_t b, int slot) {
      std::int32_t* lab = slots_[slot].lab.data();
      const std::int64_t i0 = b * kBlock, rows = std::min(kBlock, n - i0);
      double* ps = part ? part + b * stride : nullptr;
      if (ps) std::fill(ps, ps + stride, 0.0);
      double sse[4] = {0, 0, 0, 0};  // row r of the block adds into sse[r % 4]
      cpu::BlockPolicy* policy = pruned ? &bounds_.policy(b) : nullptr;
      std::int64_t changed = 0;
      for (std::int64_t s0 = 0; s0 < rows; s0 += sub) {
        const std::int64_t r0 = i0 + s0, sr = std::min(sub, rows - s0);
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
        } else if (small_k) {
          small_k_kernel_(v_.data + r0 * d, sr, d, centroids, k, lab + s0, dist_.data() + r0);
        } else {
          kernel_(v_.data + r0 * d, sr, d, centroids, k, mean_.data(), tiles, n_tiles, lab + s0,
                  dist_.data() + r0, slots_[slot].scratch.data());
        }
        if (pruned && lloyd_rows)
          cpu::separation_bounds(bounds_.pass(), prev, lab + s0, dist_.data() + r0, search, ns,
                                 bounds_.separation(), bounds_.lower(r0));
        // Unit weights get their own loop: no multiply, no per-point branch.
        if (v_.weights)
          accumulate_rows<true>(r0, sr, k, lab + s0, ps, sse, changed);
        else
          accumulate_rows<false>(r0, sr, k, lab + s0, ps, sse, changed);
      }
      if (policy) policy->finish();
      block_sse_[b] = (sse[0] + sse[1]) + (sse[2] + sse[3]);
      block_changed_[b] = changed;
    };
    cpu::parallel_for(nt, n_blocks_, block);
    if (part) {  // merge partials in block order, runs of entries spread over threads
      constexpr std::int64_t kRun = 1024;
      auto merge = [&](std::int64_t run, int) {
        const std::int64_t e1 = std::min(stride, (run + 1) * kRun);
        for (std::int64_t e = run * kRun; e < e1; ++e) {
          double s = 0;
          for (std::int64_t b = 0; b < n_blocks_; ++b) s += part[b * stride + e];
          if (e < k * d)
            sums[e] = s;
          else
            weights[e - k * d] = s;
        }
      };
      cpu::parallel_for(nt, (stride + kRun - 1) / kRun, merge);
    }
    if (sums && !partials) sum_by_cluster(k, sums, weights);
    bounds_valid_ = pruned;
    last_searched_ = -1;
    if (pruned) {
      last_searched_ = 0;
      for (std::int64_t b = 0; b < n_blocks_; ++b) last_searched_ += block_searched_[b];
    }

    StepStats stats;
    for (std::int64_t b = 0; b < n_blocks_; ++b) {
      stats.sse += block_sse_[b];
      stats.n_changed += block_changed_[b];
    }
    last_changed_ = stats.n_changed;
    return stats;
  }

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
    mean_ = data_mean(v);
    labels_.assign(static_cast<std::size_t>(v.n), -1);
    dist_.resize(static_cast<std::size_t>(v.n));
    block_sse_.resize(static_cast<std::size_t>(n_blocks_));
    block_changed_.resize(static_cast<std::size_t>(n_blocks_));
    return true;
  }

 private:
  /// Labels of rows [i0, i0 + rows) into labels_, their changed count added to `changed` and
  /// their SSE to sse[(i - block start) % 4] (four chains, in row order; i0 is a multiple of 4
  /// from the block's start), and (when ps is not null) their per-cluster weighted sums
  /// (k x d) then weights (k) added into ps.
  template <bool kWeighted>
  void accumulate_rows(std::int64_t i0, std::int64_t rows, int k, const std::int32_t* lab,
                       double* ps, double* sse, std::int64_t& changed) {
    const std::int64_t d = v_.d;
    if (!kWeighted) {
      finish_(lab, dist_.data() + i0, rows, labels_.data() + i0, sse, &changed);
    } else {
      for (std::int64_t r = 0; r < rows; ++r) {
        const std::int64_t i = i0 + r;
        const std::int32_t c = lab[r];
        changed += labels_[i] != c;
        labels_[i] = c;
        sse[r & 3] += static_cast<double>(v_.weights[i]) * static_cast<double>(dist_[i]);
      }
    }
    if (!ps) return;
    if (!kWeighted) return accumulate_(v_.data + i0 * d, rows, d, k, lab, ps, ps + k * d);
    if (cpu::accumulate_interleaved(d, k)) {  // the unit-weight kernel's scheme, weighted
      const std::int64_t S = d + 1;
      double acc[4][cpu::kAccumulateSmallMax];
      for (auto& a : acc) std::fill(a, a + k * S, 0.0);
      for (std::int64_t r = 0; r < rows; ++r) {
        const std::int64_t i = i0 + r;
        const double w = static_cast<double>(v_.weights[i]);
        double* a = acc[r & 3] + lab[r] * S;
        for (std::int64_t j = 0; j < d; ++j) a[j] += w * static_cast<double>(v_.data[i * d + j]);
        a[d] += w;
      }
      for (int c = 0; c < k; ++c)
        for (std::int64_t j = 0; j <= d; ++j) {
          const std::int64_t e = c * S + j;
          const double v = (acc[0][e] + acc[1][e]) + (acc[2][e] + acc[3][e]);
          if (j < d)
            ps[c * d + j] += v;
          else
            ps[k * d + c] += v;
        }
      return;
    }
    for (std::int64_t r = 0; r < rows; ++r) {
      const std::int64_t i = i0 + r;
      const std::int32_t c = lab[r];
      const double w = static_cast<double>(v_.weights[i]);
      double* s = ps + c * d;
      const T* xi = v_.data + i * d;
      for (std::int64_t j = 0; j < d; ++j) s[j] += w * static_cast<double>(xi[j]);
      ps[k * d + c] += w;
    }
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

  /// Per-feature mean of the data (in double, rounded to T): the centre of the expansion.
  static std::vector<T> data_mean(const DataView<T>& v) {
    std::vector<double> m(static_cast<std::size_t>(v.d), 0.0);
    for (std::int64_t i = 0; i < v.n; ++i)
      for (std::int64_t j = 0; j < v.d; ++j) m[j] += static_cast<double>(v.data[i * v.d + j]);
    std::vector<T> out(static_cast<std::size_t>(v.d));
    for (std::int64_t j = 0; j < v.d; ++j) out[j] = static_cast<T>(m[j] / static_cast<double>(v.n));
    return out;
  }

  /// Large k * d: bucket point indices by label (counting sort, stable), then each cluster sums
  /// its points in index order, clusters spread over threads.
  void sum_by_cluster(int k, double* sums, double* weights) {
    const std::int64_t n = v_.n, d = v_.d;
    std::vector<std::int64_t> start(static_cast<std::size_t>(k) + 1, 0);
    for (std::int64_t i = 0; i < n; ++i) ++start[labels_[i] + 1];
    std::partial_sum(start.begin(), start.end(), start.begin());
    order_.resize(static_cast<std::size_t>(n));
    std::vector<std::int64_t> fill(start.begin(), start.end() - 1);
    for (std::int64_t i = 0; i < n; ++i) order_[fill[labels_[i]]++] = i;
    auto cluster = [&](std::int64_t c, int) {
      double* s = sums + c * d;
      std::fill(s, s + d, 0.0);
      double wsum = 0;
      for (std::int64_t q = start[c]; q < start[c + 1]; ++q) {
        const std::int64_t i = order_[q];
        const double w = v_.weights ? static_cast<double>(v_.weights[i]) : 1.0;
        const T* xi = v_.data + i * d;
        for (std::int64_t j = 0; j < d; ++j) s[j] += w * static_cast<double>(xi[j]);
        wsum += w;
      }
      weights[c] = wsum;
    };
    cpu::parallel_for(threads_for(n_threads_, double(n) * d), k, cluster);
  }

  DataView<T> v_;
  std::int64_t max_partial_doubles_;
  cpu::AssignFn<T> kernel_;
  cpu::AssignSmallKFn<T> small_k_kernel_;
  cpu::AccumulateFn<T> accumulate_;
  cpu::FinishFn<T> finish_;
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
  std::vector<std::int32_t> labels_;
  std::vector<T> dist_;
  std::vector<double> block_sse_;
  std::vector<std::int64_t> block_changed_;
  std::vector<std::int64_t> order_;
  AlignedBuffer<T> tiles_;
  AlignedBuffer<double> partial_;
  /// Per-thread scratch of assign (index = the pool's slot), kept across passes.
  struct Slot {
    std::vector<std::int32_t> lab;
    std::vector<T> scratch;
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

template std::unique_ptr<Engine<float>> make_cpu_engine(const DataView<float>&);
template std::unique_ptr<Engine<double>> make_cpu_engine(const DataView<double>&);
template std::unique_ptr<Engine<float>> make_cpu_engine(const DataView<float>&, std::int64_t);
template std::unique_ptr<Engine<double>> make_cpu_engine(const DataView<double>&, std::int64_t);

}  // namespace kmeans::detail
