// SPDX-License-Identifier: Apache-2.0
// The CPU engine over chunks: each 4096-row block runs through a CPU engine bound to it, and the
// per-block sums, SSEs and changed counts are combined in the in-memory engine's block order.
#include <algorithm>
#include <cstdint>
#include <limits>
#include <memory>
#include <numeric>
#include <vector>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "cpu_pool.hpp"
#include "stream/chunks.hpp"

namespace kmeans::detail::stream {
namespace {

/// The in-memory CPU engine's combination of per-block values (backend_cpu.cpp): each entry is
/// the left fold 0 + v_0 + v_1 + ... over the blocks in block order.
class BlockFold {
 public:
  void reset(std::int64_t width) { acc_.assign(static_cast<std::size_t>(width), 0.0); }
  /// Adds the next block's values (width of them).
  void add(const double* v) {
    for (std::size_t e = 0; e < acc_.size(); ++e) acc_[e] += v[e];
  }
  const double* total() const { return acc_.data(); }

 private:
  std::vector<double> acc_;
};

template <class T>
class StreamEngine final : public Engine<T> {
 public:
  StreamEngine(Chunks<T>& chunks, const T* w, int n_threads, std::int64_t max_partial_doubles,
               DataOps<T>* ops)
      : c_(chunks),
        w_(w),
        n_threads_(resolve_threads(n_threads)),
        max_partial_doubles_(max_partial_doubles),
        ops_(ops) {}

  Backend kind() const override { return Backend::Cpu; }

  StepStats assign(const T* centroids, int k, double* sums, double* weights) override {
    const std::int64_t n = c_.n(), d = c_.d();
    const std::int64_t stride = k * d + k;
    const std::int64_t n_blocks = (n + kBlock - 1) / kBlock;
    // The in-memory engine's size rule, for the whole data set: per-block partials, or each
    // cluster summed in point order (bucket-by-label), which streams as running sums.
    const bool bucket = sums && n_blocks * stride > max_partial_doubles_;
    const bool partials = sums && !bucket;
    last_centroids_.assign(centroids, centroids + k * d);
    last_k_ = k;
    if (labels_.empty()) {
#if defined(__GLIBC__)
      malloc_trim(0);  // initialisation's arrays are gone: give their pages back first
#endif
      labels_.allocate(n);
      fresh_ = true;
    }
    if (partials) fold_.reset(stride);
    if (bucket) {
      std::fill(sums, sums + k * d, 0.0);
      std::fill(weights, weights + k, 0.0);
    }
    double sse = 0;
    std::int64_t changed = 0;
    std::int32_t* labels = labels_.data();
    c_.for_each([&](std::int64_t first, std::int64_t rows, const T* x) {
      const std::int64_t nb = (rows + kBlock - 1) / kBlock;
      const int nt = threads_for(n_threads_, double(rows) * d * (k + 1));
      prepare(nt, x, first, rows);
      if (partials) part_.resize(static_cast<std::size_t>(nb * stride));
      block_sse_.resize(static_cast<std::size_t>(nb));
      block_changed_.resize(static_cast<std::size_t>(nb));
      auto block = [&](std::int64_t b, int slot) {
        Engine<T>& e = *engines_[static_cast<std::size_t>(slot)];
        const std::int64_t r0 = b * kBlock, br = std::min(kBlock, rows - r0);
        e.rebind(view(x, first, r0, br));
        double* ps = partials ? part_.data() + b * stride : nullptr;
        const StepStats s = e.assign(centroids, k, ps, ps ? ps + k * d : nullptr);
        std::int32_t* lab = slot_labels_[static_cast<std::size_t>(slot)].data();
        e.labels(lab);
        std::int32_t* out = labels + first + r0;
        std::int64_t ch = 0;
        for (std::int64_t r = 0; r < br; ++r) {
          ch += fresh_ || out[r] != lab[r];
          out[r] = lab[r];
        }
        block_sse_[static_cast<std::size_t>(b)] = s.sse;
        block_changed_[static_cast<std::size_t>(b)] = ch;
      };
      cpu::parallel_for(nt, nb, block);
      for (std::int64_t b = 0; b < nb; ++b) {
        if (partials) fold_.add(part_.data() + b * stride);
        sse += block_sse_[static_cast<std::size_t>(b)];
        changed += block_changed_[static_cast<std::size_t>(b)];
      }
      if (bucket) sum_in_point_order(x, first, rows, k, sums, weights);
    });
    fresh_ = false;
    if (partials) {
      const double* t = fold_.total();
      std::copy(t, t + k * d, sums);
      std::copy(t + k * d, t + stride, weights);
    }
    StepStats stats;
    stats.sse = sse;
    stats.n_changed = changed;
    return stats;
  }

  /// The end of a run: the labels move out and the engine's copy is freed (the next pass
  /// counts every label as changed, as after a rebind).
  void labels(std::int32_t* out) override { labels_.move_out(out); }

  /// A pass with the last centroids: every block's m farthest points (by the block engine),
  /// then, chunk by chunk, the m farthest of those and of the earlier chunks' m farthest (a
  /// CPU engine bound to their rows in point order: its order is (distance, index)).
  std::vector<FarPoint> farthest(std::int64_t m) override {
    const std::int64_t n = c_.n(), d = c_.d();
    const int k = last_k_;
    const T* cent = last_centroids_.data();
    m = std::min(m, n);
    std::vector<FarPoint> best;      // the m farthest so far, by decreasing distance
    std::vector<std::int64_t> keep;  // their indices, ascending
    std::vector<T> keep_rows;        // their rows, in `keep` order
    std::unique_ptr<Engine<T>> pick;
    c_.for_each([&](std::int64_t first, std::int64_t rows, const T* x) {
      const std::int64_t nb = (rows + kBlock - 1) / kBlock;
      const int nt = threads_for(n_threads_, double(rows) * d * (k + 1));
      prepare(nt, x, first, rows);
      std::vector<std::vector<FarPoint>> per_block(static_cast<std::size_t>(nb));
      auto block = [&](std::int64_t b, int slot) {
        Engine<T>& e = *engines_[static_cast<std::size_t>(slot)];
        const std::int64_t r0 = b * kBlock, br = std::min(kBlock, rows - r0);
        e.rebind(view(x, first, r0, br));
        e.assign(cent, k, nullptr, nullptr);
        per_block[static_cast<std::size_t>(b)] = e.farthest(std::min(m, br));
      };
      cpu::parallel_for(nt, nb, block);
      std::vector<std::int64_t> cand = keep;
      std::vector<T> cand_rows = keep_rows;
      std::vector<std::int64_t> local;
      for (std::int64_t b = 0; b < nb; ++b)
        for (const FarPoint& f : per_block[static_cast<std::size_t>(b)])
          local.push_back(b * kBlock + f.index);
      std::sort(local.begin(), local.end());
      for (std::int64_t r : local) {
        cand.push_back(first + r);
        cand_rows.insert(cand_rows.end(), x + r * d, x + (r + 1) * d);
      }
      DataView<T> v{cand_rows.data(), nullptr, static_cast<std::int64_t>(cand.size()), d, 1};
      if (!pick || !pick->rebind(v)) pick = make_cpu_engine(v);
      pick->assign(cent, k, nullptr, nullptr);
      best = pick->farthest(m);
      std::vector<std::int64_t> pos;
      for (FarPoint& f : best) {
        pos.push_back(f.index);
        f.index = cand[static_cast<std::size_t>(f.index)];
      }
      std::sort(pos.begin(), pos.end());
      keep.clear();
      keep_rows.clear();
      for (std::int64_t q : pos) {
        keep.push_back(cand[static_cast<std::size_t>(q)]);
        keep_rows.insert(keep_rows.end(), cand_rows.begin() + q * d, cand_rows.begin() + (q + 1) * d);
      }
    });
    return best;
  }

  const T* host_data() override {
    throw Error("streamed data has no host copy (internal: host_data on a stream engine)");
  }
  const T* host_weights() override { return w_; }

  void distances(const T*, int, T*) override {
    throw Error("streamed fit: distances are not available (internal)");
  }

  bool rebind(const DataView<T>&) override { return false; }

  DataOps<T>* data_ops() override { return ops_; }

 private:
  /// Block engines for `nt` slots (the first bound to the chunk's first block) and their label
  /// buffers.
  void prepare(int nt, const T* x, std::int64_t first, std::int64_t rows) {
    while (engines_.size() < static_cast<std::size_t>(nt)) {
      // Per-block partials whatever the size: the whole data set's rule is applied by assign.
      engines_.push_back(make_cpu_engine(view(x, first, 0, std::min(kBlock, rows)),
                                         std::numeric_limits<std::int64_t>::max()));
      slot_labels_.emplace_back(static_cast<std::size_t>(kBlock));
    }
  }

  /// Rows [r0, r0 + count) of the chunk at `first` (x), with their weights.
  DataView<T> view(const T* x, std::int64_t first, std::int64_t r0, std::int64_t count) const {
    return DataView<T>{x + r0 * c_.d(), w_ ? w_ + first + r0 : nullptr, count, c_.d(), 1};
  }

  /// backend_cpu.cpp's sum_by_cluster as running sums: each cluster adds its points in point
  /// order (the chunks come in order), weighted sums then the weight.
  void sum_in_point_order(const T* x, std::int64_t first, std::int64_t rows, int,
                          double* sums, double* weights) {
    const std::int64_t d = c_.d();
    const std::int32_t* labels = labels_.data() + first;
    for (std::int64_t r = 0; r < rows; ++r) {
      const std::int64_t c = labels[r];
      const double w = w_ ? static_cast<double>(w_[first + r]) : 1.0;
      double* s = sums + c * d;
      const T* xi = x + r * d;
      for (std::int64_t j = 0; j < d; ++j) s[j] += w * static_cast<double>(xi[j]);
      weights[c] += w;
    }
  }

  Chunks<T>& c_;
  const T* w_;
  int n_threads_;
  std::int64_t max_partial_doubles_;
  DataOps<T>* ops_;
  PageArray<std::int32_t> labels_;
  bool fresh_ = true;
  std::vector<T> last_centroids_;
  int last_k_ = 0;
  std::vector<std::unique_ptr<Engine<T>>> engines_;
  std::vector<std::vector<std::int32_t>> slot_labels_;
  std::vector<double> part_;
  std::vector<double> block_sse_;
  std::vector<std::int64_t> block_changed_;
  BlockFold fold_;
};

}  // namespace

template <class T>
std::unique_ptr<Engine<T>> make_stream_engine(Chunks<T>& chunks, const T* w, int n_threads,
                                              std::int64_t max_partial_doubles, DataOps<T>* ops) {
  return std::make_unique<StreamEngine<T>>(chunks, w, n_threads, max_partial_doubles, ops);
}

template std::unique_ptr<Engine<float>> make_stream_engine(Chunks<float>&, const float*, int,
                                                           std::int64_t, DataOps<float>*);
template std::unique_ptr<Engine<double>> make_stream_engine(Chunks<double>&, const double*, int,
                                                            std::int64_t, DataOps<double>*);

}  // namespace kmeans::detail::stream
