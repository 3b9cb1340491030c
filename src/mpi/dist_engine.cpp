// SPDX-License-Identifier: Apache-2.0
// The distributed engine: each pass runs the local shard engine (CPU, or CUDA on the rank's GPU),
// then the ranks' canonical tree nodes (tree_sum.hpp) are merged over a fixed binomial tree of
// ranks (pairs of adjacent ranges, in rank order: no dependence on timing) to rank 0, which
// broadcasts the totals: on the host over MPI, or on the GPUs over NCCL (cuda/nccl_combine.hpp,
// the same adds in the same order). The DataOps fetches rows from their owners and forms the
// variance from every rank's per-block partials, with the single-process bits; k-means++ and
// k-means|| run on a gathered copy.
#include "mpi/dist_engine.hpp"

#include <algorithm>
#include <chrono>
#include <string>
#include <utility>

#include "internal.hpp"
#include "shard_engine.hpp"
#include "tree_sum.hpp"

#if defined(KMEANS_WITH_CUDA)
#include "cuda/nccl_combine.hpp"
#include "cuda/rank_gpu.hpp"
#include "cuda/shard.hpp"
#endif

namespace kmeans::mpi::detail {

using kmeans::detail::DataOps;
using kmeans::detail::Engine;
using kmeans::detail::FarPoint;
using kmeans::detail::ShardEngine;
using kmeans::detail::StepStats;
namespace tree = kmeans::detail::tree;
using Clock = std::chrono::steady_clock;

int Layout::owner(std::int64_t i) const {
  // The last rank whose offset is <= i and that holds rows.
  const auto it = std::upper_bound(offset.begin(), offset.end() - 1, i);
  int r = static_cast<int>(it - offset.begin()) - 1;
  while (r > 0 && rows(r) == 0) --r;
  return r;
}

namespace {

double seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

template <class T>
class MpiDataOps final : public DataOps<T> {
 public:
  MpiDataOps(const Comm& c, const Layout& l, const T* x, const T* w, bool weighted,
             int n_threads)
      : c_(c), l_(l), x_(x), w_(w), weighted_(weighted), n_threads_(n_threads) {}

  std::int64_t size() const override { return l_.n(); }
  std::int64_t dim() const override { return l_.d; }
  /// All n weights, gathered on first use (collective): only k-means++ and k-means|| ask (the
  /// driver takes cluster sizes and relocation weights from the engine).
  const T* weights() override {
    if (!weighted_) return nullptr;
    if (global_w_.empty())
      global_w_ = allgatherv(c_, w_, w_ ? l_.rows(c_.rank) : 0, "weights");
    return global_w_.data();
  }

  /// Every rank packs the requested rows it owns (in idx order); one allgatherv; unpacked by
  /// owner in idx order.
  void rows(const std::int64_t* idx, std::int64_t m, T* out) override {
    const std::int64_t d = l_.d;
    std::vector<T> mine;
    for (std::int64_t q = 0; q < m; ++q)
      if (l_.owner(idx[q]) == c_.rank) {
        const T* row = x_ + (idx[q] - l_.offset[c_.rank]) * d;
        mine.insert(mine.end(), row, row + d);
      }
    const std::vector<T> all =
        allgatherv(c_, mine.data(), static_cast<std::int64_t>(mine.size()), "rows");
    // Rank r's rows start after those of the ranks before it.
    std::vector<std::int64_t> at(static_cast<std::size_t>(c_.size) + 1, 0);
    for (std::int64_t q = 0; q < m; ++q) ++at[static_cast<std::size_t>(l_.owner(idx[q])) + 1];
    for (int r = 0; r < c_.size; ++r) at[r + 1] += at[r];
    for (std::int64_t q = 0; q < m; ++q) {
      const int r = l_.owner(idx[q]);
      const T* row = all.data() + (at[static_cast<std::size_t>(r)]++) * d;
      std::copy(row, row + d, out + q * d);
    }
  }

  std::vector<std::int64_t> greedy_kmeanspp(int k, int trials, const double* u) override {
    return gathered().greedy_kmeanspp(k, trials, u);
  }
  void lower_closest(const std::int64_t* idx, std::int64_t m, double* closest) override {
    gathered().lower_closest(idx, m, closest);
  }
  void nearest(const std::int64_t* idx, std::int64_t m, std::int64_t* out) override {
    gathered().nearest(idx, m, out);
  }

  /// kmeans::detail::mean_feature_variance's two passes: per-block partial column sums (each
  /// block's points in order), every rank's blocks gathered in block order, column_means.
  double mean_feature_variance() override {
    const std::int64_t d = l_.d, n_local = l_.rows(c_.rank);
    const std::int64_t blocks = l_.end_block(c_.rank) - l_.first_block(c_.rank);
    std::vector<double> part(static_cast<std::size_t>(blocks * d));
    auto pass = [&](const std::vector<double>* mean) {
      kmeans::detail::block_column_sums(x_, n_local, d, mean, part.data(), 1);
      const std::vector<double> all =
          allgatherv(c_, part.data(), static_cast<std::int64_t>(part.size()), "variance");
      return kmeans::detail::column_means(all.data(), static_cast<std::int64_t>(all.size()) / d, d,
                                          l_.n());
    };
    const std::vector<double> mean = pass(nullptr);
    return kmeans::detail::mean_of(pass(&mean));
  }

 private:
  /// The whole data on every rank (k-means++ / k-means||), gathered on first use.
  DataOps<T>& gathered() {
    if (!all_ops_) {
      all_x_ = allgatherv(c_, x_, l_.rows(c_.rank) * l_.d, "gathered data");
      all_ops_ = kmeans::detail::make_host_data_ops(all_x_.data(), weights(), l_.n(), l_.d,
                                                    n_threads_);
    }
    return *all_ops_;
  }

  const Comm& c_;
  const Layout& l_;
  const T* x_;
  const T* w_;
  bool weighted_;
  std::vector<T> global_w_;
  int n_threads_;
  std::vector<T> all_x_;
  std::unique_ptr<DataOps<T>> all_ops_;
};

template <class T>
class MpiEngine final : public Engine<T> {
 public:
  MpiEngine(const Comm& c, const Layout& l, Backend kind, std::unique_ptr<ShardEngine<T>> local,
            const T* w, DataOps<T>& ops, CommStats* stats)
      : c_(c), l_(l), kind_(kind), local_(std::move(local)), w_(w), ops_(ops), stats_(stats) {}

  Backend kind() const override { return kind_; }

#if defined(KMEANS_WITH_CUDA)
  /// Combines over NCCL from now on; `local` is local_ (null without rows).
  void use_nccl(std::unique_ptr<kmeans::detail::cuda::NcclCombine> nccl,
                kmeans::detail::cuda::CudaShardEngine<T>* local) {
    const std::size_t rows = local ? local->nodes().size() : 0;
    if (rows != static_cast<std::size_t>(nccl->local_rows()))
      throw Error("NCCL combine: the shard engine has " + std::to_string(rows) +
                  " tree nodes, the combine's schedule " + std::to_string(nccl->local_rows()));
    nccl_ = std::move(nccl);
    cuda_local_ = local;
  }
#endif

  StepStats assign(const T* centroids, int k, double* sums, double* weights) override {
    if (kind_ != Backend::Cuda || c_.size == 1) return pass(centroids, k, sums, weights);
    // A CUDA or NCCL failure on one rank would leave the others waiting in the combine: not
    // a kmeans::Error (which the ranks raise together), so that fit ends the job.
    try {
      return pass(centroids, k, sums, weights);
    } catch (const Error& e) {
      throw std::runtime_error(e.what());
    }
  }

  StepStats pass(const T* centroids, int k, double* sums, double* weights) {
    const auto t0 = Clock::now();
    const std::int64_t d = l_.d;
    const bool with_sums = sums != nullptr;
    const std::int64_t width = with_sums ? k * d + k + 1 : 1;
    double changed = 0;  // exact: counts below 2^53
    std::int64_t sent = 0, received = 0;
    total_.resize(static_cast<std::size_t>(width) + 1);
#if defined(KMEANS_WITH_CUDA)
    if (nccl_) {
      const double* rows = nullptr;
      if (cuda_local_) {
        StepStats local;
        rows = cuda_local_->assign_nodes_device(centroids, k, with_sums, &local);
        changed = static_cast<double>(local.n_changed);
      }
      const auto t_local = Clock::now();
      const auto t1 = wait(t_local);
      kmeans::detail::cuda::NcclTraffic traffic;
      nccl_->combine(rows, width, changed, total_.data(), &traffic);
      sent = traffic.sent;
      received = traffic.received;
      return finish(k, with_sums, width, sums, weights, t0, t_local, t1, sent, received);
    }
#endif
    tree::NodeStack stack(width);
    if (local_) {
      changed = static_cast<double>(local_->assign_nodes(centroids, k, with_sums, rows_).n_changed);
      for (std::size_t j = 0; j < local_->nodes().size(); ++j)
        stack.push(local_->nodes()[j], rows_.data() + j * width);
    }
    const auto t_local = Clock::now();
    const auto t1 = wait(t_local);  // the combine starts here
    // Binomial tree over ranks: at step h, rank r (r % 2h == 0) takes the merged nodes of
    // ranks [r + h, r + 2h), the range right after its own; fixed pairs, fixed order.
    for (int h = 1; h < c_.size; h *= 2) {
      if (c_.rank % (2 * h) == h) {
        msg_.assign(stack.data(), stack.data() + stack.size() * width);
        msg_.push_back(changed);
        MPI_Send(msg_.data(), count_of(static_cast<std::int64_t>(msg_.size()), "tree nodes"),
                 MPI_DOUBLE, c_.rank - h, 0, c_.comm);
        sent += static_cast<std::int64_t>(msg_.size() * sizeof(double));
        break;
      }
      const int src = c_.rank + h;
      if (c_.rank % (2 * h) == 0 && src < c_.size) {
        const int last = std::min(c_.size, src + h) - 1;
        const auto nodes = tree::decompose(l_.first_block(src), group_end_block(src, last));
        msg_.resize(nodes.size() * static_cast<std::size_t>(width) + 1);
        MPI_Recv(msg_.data(), count_of(static_cast<std::int64_t>(msg_.size()), "tree nodes"),
                 MPI_DOUBLE, src, 0, c_.comm, MPI_STATUS_IGNORE);
        received += static_cast<std::int64_t>(msg_.size() * sizeof(double));
        for (std::size_t j = 0; j < nodes.size(); ++j)
          stack.push(nodes[j], msg_.data() + j * static_cast<std::size_t>(width));
        changed += msg_.back();
      }
    }
    if (c_.rank == 0) {
      stack.total(total_.data());
      total_[static_cast<std::size_t>(width)] = changed;
    }
    MPI_Bcast(total_.data(), static_cast<int>(total_.size()), MPI_DOUBLE, 0, c_.comm);
    if (c_.rank == 0)
      sent += static_cast<std::int64_t>(total_.size() * sizeof(double));  // at least once
    else
      received += static_cast<std::int64_t>(total_.size() * sizeof(double));
    return finish(k, with_sums, width, sums, weights, t0, t_local, t1, sent, received);
  }

  /// With measure_wait: the barrier before the combine, timed. Returns when the combine starts.
  Clock::time_point wait(Clock::time_point t_local) {
    if (!stats_ || !stats_->measure_wait) return t_local;
    MPI_Barrier(c_.comm);
    const auto t1 = Clock::now();
    stats_->wait_seconds += seconds(t_local, t1);
    return t1;
  }

  /// The totals (total_: width values, then the changed count) into the driver's arrays.
  StepStats finish(int k, bool with_sums, std::int64_t width, double* sums, double* weights,
                   Clock::time_point t0, Clock::time_point t_local, Clock::time_point t1,
                   std::int64_t sent, std::int64_t received) {
    const std::int64_t d = l_.d;
    if (with_sums) {
      std::copy(total_.begin(), total_.begin() + k * d, sums);
      std::copy(total_.begin() + k * d, total_.begin() + k * d + k, weights);
    }
    StepStats st;
    st.sse = total_[static_cast<std::size_t>(width) - 1];
    st.n_changed = static_cast<std::int64_t>(total_[static_cast<std::size_t>(width)]);
    if (stats_) {
      stats_->passes += 1;
      stats_->compute_seconds += seconds(t0, t_local);
      stats_->comm_seconds += seconds(t1, Clock::now());
      stats_->bytes_sent += sent;
      stats_->bytes_received += received;
    }
    return st;
  }

  /// Every rank's labels, in rank order (all n; the driver uses local_labels_and_sizes).
  void labels(std::int32_t* out) override {
    std::vector<std::int32_t> mine(static_cast<std::size_t>(l_.rows(c_.rank)));
    if (local_) local_->labels(mine.data());
    const auto all = allgatherv(c_, mine.data(), static_cast<std::int64_t>(mine.size()), "labels");
    std::copy(all.begin(), all.end(), out);
  }

  /// This rank's labels; the sizes summed in point order over all ranks by passing the running
  /// sums from rank to rank (rank r adds its rows to rank r - 1's sums), then broadcast from
  /// the last rank: the single-process bits at P - 1 latencies, once per fit.
  bool local_labels_and_sizes(int k, std::vector<std::int32_t>& labels,
                              std::vector<double>& sizes) override {
    labels.assign(static_cast<std::size_t>(l_.rows(c_.rank)), 0);
    if (local_) local_->labels(labels.data());
    sizes.assign(static_cast<std::size_t>(k), 0.0);
    if (c_.rank > 0)
      MPI_Recv(sizes.data(), k, MPI_DOUBLE, c_.rank - 1, 1, c_.comm, MPI_STATUS_IGNORE);
    for (std::size_t i = 0; i < labels.size(); ++i)
      sizes[static_cast<std::size_t>(labels[i])] += w_ ? static_cast<double>(w_[i]) : 1.0;
    if (c_.rank + 1 < c_.size) MPI_Send(sizes.data(), k, MPI_DOUBLE, c_.rank + 1, 1, c_.comm);
    MPI_Bcast(sizes.data(), k, MPI_DOUBLE, c_.size - 1, c_.comm);
    return true;
  }

  /// Every rank's m farthest (distance, global index, label, weight), merged by decreasing distance,
  /// ties to the lowest index: the single-process order.
  std::vector<FarPoint> farthest(std::int64_t m) override {
    std::vector<double> mine;
    if (local_) {
      const T* dist = local_->point_distances();
      for (const FarPoint& f : local_->farthest(std::min(m, l_.rows(c_.rank)))) {
        mine.push_back(static_cast<double>(dist[f.index]));
        mine.push_back(static_cast<double>(f.index + l_.offset[c_.rank]));
        mine.push_back(static_cast<double>(f.label));
        mine.push_back(w_ ? static_cast<double>(w_[f.index]) : 1.0);
      }
    }
    const auto all = allgatherv(c_, mine.data(), static_cast<std::int64_t>(mine.size()), "farthest");
    std::vector<std::size_t> order(all.size() / 4);
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      return all[4 * a] != all[4 * b] ? all[4 * a] > all[4 * b] : all[4 * a + 1] < all[4 * b + 1];
    });
    std::vector<FarPoint> out;
    for (std::size_t i = 0; i < order.size() && static_cast<std::int64_t>(i) < m; ++i)
      out.push_back({static_cast<std::int64_t>(all[4 * order[i] + 1]),
                     static_cast<std::int32_t>(all[4 * order[i] + 2]), all[4 * order[i] + 3]});
    return out;
  }

  const T* host_data() override { throw Error("kmeans::mpi: the data is distributed (no host copy)"); }
  const T* host_weights() override { return ops_.weights(); }
  void distances(const T*, int, T*) override {
    throw Error("kmeans::mpi: distances are not available on the distributed engine");
  }
  bool rebind(const kmeans::detail::DataView<T>&) override { return false; }
  DataOps<T>* data_ops() override { return &ops_; }
  ShardEngine<T>* local() { return local_.get(); }

 private:
  /// The end block of ranks [first, last] together.
  std::int64_t group_end_block(int first, int last) const {
    std::int64_t e = l_.first_block(first);
    for (int r = first; r <= last; ++r) e = std::max(e, l_.end_block(r));
    return e;
  }

  const Comm& c_;
  const Layout& l_;
  Backend kind_;
  std::unique_ptr<ShardEngine<T>> local_;
  const T* w_;  ///< this rank's weights (engine units) or null
  DataOps<T>& ops_;
  CommStats* stats_;
  std::vector<double> rows_, msg_, total_;
#if defined(KMEANS_WITH_CUDA)
  // After local_: goes first (it may use local_'s stream).
  std::unique_ptr<kmeans::detail::cuda::NcclCombine> nccl_;
  kmeans::detail::cuda::CudaShardEngine<T>* cuda_local_ = nullptr;
#endif
};

}  // namespace

template <class T>
Distributed<T> make_distributed(const Comm& c, const Layout& layout, const T* x, const T* w,
                                bool weighted, int n_threads, const GpuPlan& gpu, int k,
                                CommStats* stats) {
  Distributed<T> out;
  MpiEngine<T>* engine = nullptr;
  // Every rank's local engine first: the NCCL communicator (collective) only once all have one.
  agree(c.comm, [&] {
    out.ops = std::make_unique<MpiDataOps<T>>(c, layout, x, w, weighted, n_threads);
    std::unique_ptr<ShardEngine<T>> local;
    const std::int64_t n_local = layout.rows(c.rank);
    if (n_local > 0) {
      kmeans::detail::DataView<T> v{x, w, n_local, layout.d, n_threads};
      if (gpu.backend == Backend::Cuda) {
#if defined(KMEANS_WITH_CUDA)
        kmeans::detail::cuda::DeviceScope scope(gpu.device);
        local = kmeans::detail::cuda::make_cuda_shard_engine(v, layout.first_block(c.rank));
#endif
      } else {
        local = kmeans::detail::make_cpu_shard_engine(v, layout.first_block(c.rank));
      }
    }
    auto e = std::make_unique<MpiEngine<T>>(c, layout, gpu.backend, std::move(local), w,
                                            *out.ops, stats);
    engine = e.get();
    out.engine = std::move(e);
  });
#if defined(KMEANS_WITH_CUDA)
  if (gpu.combine == Combine::Nccl) {
    agree(c.comm, [&] {
      auto* local = static_cast<kmeans::detail::cuda::CudaShardEngine<T>*>(engine->local());
      std::vector<std::int64_t> first(static_cast<std::size_t>(c.size)),
          end(static_cast<std::size_t>(c.size));
      for (int q = 0; q < c.size; ++q) {
        first[static_cast<std::size_t>(q)] = layout.first_block(q);
        end[static_cast<std::size_t>(q)] = layout.end_block(q);
      }
      const std::int64_t max_width = static_cast<std::int64_t>(k) * (layout.d + 1) + 1;
      engine->use_nccl(kmeans::detail::cuda::make_nccl_combine(
                           gpu.nccl_id, c.rank, c.size, first, end, gpu.device,
                           local ? local->stream() : nullptr, max_width),
                       local);
    });
  }
#else
  (void)k;
#endif
  if (stats) {
    stats->combine_used = gpu.combine;
    stats->device = gpu.backend == Backend::Cuda ? gpu.device : -1;
  }
  return out;
}

template Distributed<float> make_distributed(const Comm&, const Layout&, const float*,
                                             const float*, bool, int, const GpuPlan&, int,
                                             CommStats*);
template Distributed<double> make_distributed(const Comm&, const Layout&, const double*,
                                              const double*, bool, int, const GpuPlan&, int,
                                              CommStats*);

}  // namespace kmeans::mpi::detail
