// SPDX-License-Identifier: Apache-2.0
// GPU tests of kmeans::mpi's NCCL combine (ctest label gpu, in test_cuda; they skip without a
// device or without NCCL): the merge kernels against tree::NodeStack, a one-rank fit whose
// passes go through a real NCCL communicator (ncclCommInitAll on device 0) against the
// in-memory CUDA fit bit for bit, and, with two GPUs or more, the combine over all of them.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "cuda/nccl_combine.hpp"
#include "cuda/shard.hpp"
#include "driver.hpp"
#include "engine.hpp"
#include "internal.hpp"
#include "kmeans/kmeans.hpp"
#include "canonical_oracle.hpp"
#include "tree_sum.hpp"

namespace kmeans {
namespace {

namespace tree = detail::tree;
using detail::cuda::NcclCombine;

#define KMEANS_SKIP_WITHOUT_GPU_OR_NCCL(need_nccl)                             \
  do {                                                                         \
    std::string why_;                                                          \
    if (!cuda_available(&why_)) GTEST_SKIP() << why_;                          \
    if ((need_nccl) && !detail::cuda::nccl_loadable(&why_)) GTEST_SKIP() << why_; \
  } while (0)

using kmeans_test::leaf_values;
using kmeans_test::stack_of;

TEST(CudaNccl, MergeKernelsGiveTheNodeStackBits) {
  KMEANS_SKIP_WITHOUT_GPU_OR_NCCL(false);
  std::mt19937_64 g(5);
  for (int trial = 0; trial < 40; ++trial) {
    const std::int64_t blocks = 1 + static_cast<std::int64_t>(g() % 300);
    const int size = 1 + static_cast<int>(g() % 9);
    const std::int64_t width = std::vector<std::int64_t>{1, 7, 300, 1025}[trial % 4];
    std::vector<std::int64_t> cuts{0};
    for (int q = 1; q < size; ++q) cuts.push_back(static_cast<std::int64_t>(g() % (blocks + 1)));
    cuts.push_back(blocks);
    std::sort(cuts.begin(), cuts.end());
    const std::vector<std::int64_t> first(cuts.begin(), cuts.end() - 1), end(cuts.begin() + 1, cuts.end());
    const auto leaves = leaf_values(blocks, width, g);
    std::vector<std::vector<double>> local;
    std::vector<double> changed;
    for (int q = 0; q < size; ++q) {
      const auto s = stack_of(leaves, width, first[q], end[q]);
      local.emplace_back(s.data(), s.data() + s.size() * width);
      changed.push_back(static_cast<double>(100 * q + trial));
    }
    std::vector<double> want(static_cast<std::size_t>(width));
    stack_of(leaves, width, 0, blocks).total(want.data());
    const auto got = detail::cuda::combine_ranks_on_one_device(local, width, first, end, changed);
    SCOPED_TRACE("blocks " + std::to_string(blocks) + ", ranks " + std::to_string(size) +
                 ", width " + std::to_string(width));
    ASSERT_EQ(got.size(), want.size() + 1);
    EXPECT_EQ(std::memcmp(got.data(), want.data(), want.size() * sizeof(double)), 0);
    double total_changed = 0;
    for (double c : changed) total_changed += c;
    EXPECT_EQ(got.back(), total_changed);
  }
}

/// One rank's engine: the CUDA shard engine's passes combined through the NCCL combine.
template <class T>
class OneRankNcclEngine final : public detail::Engine<T> {
 public:
  OneRankNcclEngine(std::unique_ptr<detail::cuda::CudaShardEngine<T>> shard,
                    std::unique_ptr<NcclCombine> combine, const T* x, const T* w, std::int64_t d)
      : shard_(std::move(shard)), combine_(std::move(combine)), x_(x), w_(w), d_(d) {}
  Backend kind() const override { return Backend::Cuda; }
  detail::StepStats assign(const T* c, int k, double* sums, double* weights) override {
    const bool with_sums = sums != nullptr;
    const std::int64_t width = with_sums ? k * d_ + k + 1 : 1;
    detail::StepStats local;
    const double* rows = shard_->assign_nodes_device(c, k, with_sums, &local);
    total_.assign(static_cast<std::size_t>(width) + 1, std::nan(""));
    detail::cuda::NcclTraffic t;
    combine_->combine(rows, width, static_cast<double>(local.n_changed), total_.data(), &t);
    bytes += t.sent + t.received;
    if (with_sums) {
      std::copy(total_.begin(), total_.begin() + k * d_, sums);
      std::copy(total_.begin() + k * d_, total_.begin() + k * d_ + k, weights);
    }
    detail::StepStats st;
    st.sse = total_[static_cast<std::size_t>(width) - 1];
    st.n_changed = static_cast<std::int64_t>(total_[static_cast<std::size_t>(width)]);
    EXPECT_EQ(st.n_changed, local.n_changed);
    ++passes;
    return st;
  }
  void labels(std::int32_t* out) override { shard_->labels(out); }
  std::vector<detail::FarPoint> farthest(std::int64_t m) override { return shard_->farthest(m); }
  const T* host_data() override { return x_; }
  const T* host_weights() override { return w_; }
  void distances(const T* c, int k, T* out) override { shard_->distances(c, k, out); }
  bool rebind(const detail::DataView<T>&) override { return false; }
  int passes = 0;
  std::int64_t bytes = 0;

 private:
  std::unique_ptr<detail::cuda::CudaShardEngine<T>> shard_;
  std::unique_ptr<NcclCombine> combine_;
  const T* x_;
  const T* w_;
  std::int64_t d_;
  std::vector<double> total_;
};

template <class T>
void one_rank_fit(std::int64_t n, std::int64_t d, int k, Init init, bool weighted) {
  SCOPED_TRACE("n " + std::to_string(n) + " d " + std::to_string(d) + " k " + std::to_string(k) +
               (weighted ? " weighted" : "") + (sizeof(T) == 4 ? " float" : " double"));
  std::mt19937_64 g(static_cast<std::uint64_t>(n + d + k));
  std::normal_distribution<double> noise(0.0, 1.0);
  std::vector<T> x(static_cast<std::size_t>(n * d)), w;
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < d; ++j)
      x[static_cast<std::size_t>(i * d + j)] = static_cast<T>(3.0 * static_cast<double>((i * 7) % k) + noise(g));
  if (weighted)
    for (std::int64_t i = 0; i < n; ++i) w.push_back(static_cast<T>(0.5 + 0.25 * static_cast<double>(i % 5)));
  Params<T> p;
  p.k = k;
  p.init = init;
  p.seed = 3;
  p.max_iter = 30;
  p.backend = Backend::Cuda;
  if (weighted) p.sample_weight = w;
  const Result<T> one = fit(x.data(), static_cast<std::size_t>(n), static_cast<std::size_t>(d), p);

  // Units as the driver forms them: these data and weights need no rescaling.
  detail::Units<T> u;
  double max_abs = 0;
  for (T v : x) max_abs = std::max(max_abs, std::fabs(static_cast<double>(v)));
  ASSERT_EQ(detail::data_scale_exponent<T>(max_abs), 0);
  if (weighted) {
    detail::WeightStats ws;
    for (T v : w) {
      ws.total += v;
      ws.max = std::max(ws.max, static_cast<double>(v));
    }
    ASSERT_EQ(detail::weight_scale_exponent<T>(ws), 0);
  }
  const T* wp = weighted ? w.data() : nullptr;
  detail::DataView<T> v{x.data(), wp, n, d, 0};
  auto shard = detail::cuda::make_cuda_shard_engine(v, 0);
  const std::int64_t blocks = (n + 4095) / 4096;
  auto combines = detail::cuda::make_nccl_combines_in_process({shard->device()}, {0}, {blocks},
                                                              static_cast<std::int64_t>(k) * (d + 1) + 1);
  ASSERT_EQ(combines.size(), 1u);
  OneRankNcclEngine<T> e(std::move(shard), std::move(combines[0]), x.data(), wp, d);
  auto ops = detail::make_host_data_ops(x.data(), wp, n, d, 0);
  std::unique_ptr<detail::Engine<T>> held;
  Params<T> pr = p;
  pr.sample_weight = ArrayView<T>();
  const Result<T> r = detail::fit_bound(e, *ops, n, d, pr, u, 0.0, nullptr, held, nullptr);
  EXPECT_EQ(r.centroids, one.centroids);
  EXPECT_EQ(std::memcmp(&r.inertia, &one.inertia, sizeof(double)), 0) << r.inertia << " vs " << one.inertia;
  EXPECT_EQ(r.sse_history, one.sse_history);
  EXPECT_EQ(r.n_iter, one.n_iter);
  EXPECT_EQ(r.labels, one.labels);
  EXPECT_EQ(r.cluster_sizes, one.cluster_sizes);
  EXPECT_EQ(r.backend, Backend::Cuda);
  EXPECT_EQ(e.passes, r.n_iter + 1) << "every pass went through NCCL";
  EXPECT_GT(e.bytes, 0) << "the broadcast of the totals counts";
}

TEST(CudaNccl, OneRankFitThroughNcclEqualsTheInMemoryCudaFit) {
  KMEANS_SKIP_WITHOUT_GPU_OR_NCCL(true);
  one_rank_fit<float>(5 * 4096 + 77, 5, 7, Init::Random, false);
  one_rank_fit<double>(3 * 4096, 1, 4, Init::KMeansPlusPlus, true);  // d = 1, whole blocks
  one_rank_fit<float>(1000, 33, 12, Init::Random, true);             // one partial block
}

TEST(CudaNccl, CombineOverEveryDeviceInOneProcess) {
  KMEANS_SKIP_WITHOUT_GPU_OR_NCCL(true);
  int devices = 0;
  ASSERT_EQ(cudaGetDeviceCount(&devices), cudaSuccess);
  if (devices < 2)
    GTEST_SKIP() << "needs 2 GPUs or more (NCCL takes one GPU per rank); this machine has "
                 << devices;
  std::mt19937_64 g(9);
  const std::int64_t width = 513, blocks = 97;
  std::vector<int> devs;
  for (int q = 0; q < devices; ++q) devs.push_back(q);
  std::vector<std::int64_t> first, end;
  for (int q = 0; q < devices; ++q) {
    first.push_back(blocks * q / devices);
    end.push_back(blocks * (q + 1) / devices);
  }
  const auto leaves = leaf_values(blocks, width, g);
  std::vector<double> want(static_cast<std::size_t>(width));
  stack_of(leaves, width, 0, blocks).total(want.data());
  auto combines = detail::cuda::make_nccl_combines_in_process(devs, first, end, width);
  std::vector<std::vector<double>> totals(devs.size());
  std::vector<std::string> errors(devs.size());
  std::vector<std::thread> threads;
  for (int q = 0; q < devices; ++q)
    threads.emplace_back([&, q] {
      try {
        const auto s = stack_of(leaves, width, first[q], end[q]);
        if (cudaSetDevice(q) != cudaSuccess) throw Error("cudaSetDevice");
        double* rows = nullptr;
        const std::size_t bytes = std::max<std::size_t>(s.size(), 1) * width * sizeof(double);
        if (cudaMalloc(&rows, bytes) != cudaSuccess) throw Error("cudaMalloc");
        (void)cudaMemcpy(rows, s.data(), s.size() * width * sizeof(double), cudaMemcpyHostToDevice);
        totals[q].assign(static_cast<std::size_t>(width) + 1, std::nan(""));
        combines[q]->combine(rows, width, static_cast<double>(q + 1), totals[q].data(), nullptr);
        combines[q].reset();  // each communicator destroyed on its own thread
        (void)cudaFree(rows);
      } catch (const std::exception& e) {
        errors[q] = e.what();
      }
    });
  for (auto& t : threads) t.join();
  for (int q = 0; q < devices; ++q) {
    EXPECT_EQ(errors[q], "") << "rank " << q;
    ASSERT_EQ(totals[q].size(), want.size() + 1);
    EXPECT_EQ(std::memcmp(totals[q].data(), want.data(), want.size() * sizeof(double)), 0)
        << "rank " << q;
    EXPECT_EQ(totals[q].back(), devices * (devices + 1) / 2.0);
  }
}

}  // namespace
}  // namespace kmeans
