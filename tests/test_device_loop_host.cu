// SPDX-License-Identifier: Apache-2.0
// Host tests of the device Lloyd loop's logic without a GPU: the farthest-point selection's two
// stages (kernels/farthest.cuh) against the host ranking, the size rules, and the whole device
// loop emulated (kernels/device_loop.cuh's step, the same function the step kernel runs, in
// batches with the done flag) over the reference engine's passes == the host driver, bit for bit.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "devloop_cases.hpp"
#include "driver.hpp"
#include "engine.hpp"
#include "kernels/device_loop.cuh"
#include "kernels/farthest.cuh"
#include "kernels/layout.cuh"
#include "kernels/tuning.cuh"
#include "kmeans/kmeans.hpp"

namespace kmeans::detail {
namespace {

namespace tn = tuning;

/// The old host ranking of CudaEngine::farthest: partial_sort by (distance desc, index asc).
template <class T>
std::vector<std::int64_t> host_ranking(const std::vector<T>& dist, std::int64_t m) {
  std::vector<std::int64_t> idx(dist.size());
  std::iota(idx.begin(), idx.end(), 0);
  m = std::min<std::int64_t>(m, static_cast<std::int64_t>(dist.size()));
  std::partial_sort(idx.begin(), idx.begin() + m, idx.end(), [&](std::int64_t a, std::int64_t b) {
    return dist[a] != dist[b] ? dist[a] > dist[b] : a < b;
  });
  idx.resize(static_cast<std::size_t>(m));
  return idx;
}

template <class T>
void check_top_m() {
  std::mt19937 gen(7);
  for (const std::int64_t n : {1, 2, 63, 64, 65, 255, 256, 257, 4097, 20000}) {
    for (const int levels : {2, 7, 1000000}) {  // few distinct values: many exact ties
      std::vector<T> dist(static_cast<std::size_t>(n));
      for (auto& v : dist) v = static_cast<T>(gen() % static_cast<unsigned>(levels)) / T(8);
      for (const int m : {1, 2, 3, 17, 63, 64}) {
        const auto want = host_ranking(dist, m);
        for (const int blocks : {1, 2, 7, tn::farthest_blocks(n, 132), tn::kFarthestMaxBlocks}) {
          std::vector<std::int64_t> got(static_cast<std::size_t>(m), -2);
          const std::int64_t found = farthest::top_m_model(dist.data(), n, m, blocks, got.data());
          ASSERT_EQ(found, static_cast<std::int64_t>(want.size()))
              << "n " << n << " m " << m << " blocks " << blocks;
          got.resize(static_cast<std::size_t>(found));
          EXPECT_EQ(got, want) << "n " << n << " levels " << levels << " m " << m << " blocks "
                               << blocks;
        }
      }
    }
  }
}

TEST(FarthestSelection, MatchesHostRankingFloat) { check_top_m<float>(); }
TEST(FarthestSelection, MatchesHostRankingDouble) { check_top_m<double>(); }

TEST(FarthestSelection, RanksByDistanceThenIndex) {
  EXPECT_TRUE(farthest::ranks_before(2.0, 5, 1.0, 0));
  EXPECT_TRUE(farthest::ranks_before(1.0, 0, 1.0, 5));
  EXPECT_FALSE(farthest::ranks_before(1.0, 5, 1.0, 0));
  EXPECT_FALSE(farthest::ranks_before(1.0, 5, 1.0, 5));
  const double w[] = {0, 1, 0, 2.5, 0};
  EXPECT_EQ(farthest::count_empty(w, 5), 3);
}

TEST(FarthestSelection, BlocksCoverEveryPoint) {
  for (const std::int64_t n : {1, 255, 4096, 4097, 1000000, 100000000})
    for (const int sms : {1, 8, 132, 1000}) {
      const int b = tn::farthest_blocks(n, sms);
      ASSERT_GE(b, 1);
      ASSERT_LE(b, tn::kFarthestMaxBlocks);
      ASSERT_LE(b, std::max(1, 2 * sms));
      EXPECT_GE(farthest::chunk_points(n, b) * b, n);
    }
}

TEST(DeviceLoopRule, SmallFitsOnly) {
  EXPECT_TRUE(tn::use_device_loop(4000, 3, 4, 300));  // the classic study
  EXPECT_TRUE(tn::use_device_loop(1, 1, 1, 1));
  EXPECT_TRUE(tn::use_device_loop(4096, 8, 64, 300));
  EXPECT_FALSE(tn::use_device_loop(4096, 1, 65, 300));           // k above one selection
  EXPECT_FALSE(tn::use_device_loop(100, 513, 1, 300));           // k * d
  EXPECT_FALSE(tn::use_device_loop((1 << 24) / 12 + 1, 3, 4, 300));  // n * k * d
  EXPECT_FALSE(tn::use_device_loop(4000, 3, 4, 0));
  EXPECT_FALSE(tn::use_device_loop(4000, 3, 4, tn::kDeviceLoopMaxIter + 1));
}

/// The device loop on the host: run_lloyd's batches (kDeviceLoopBatch iterations each, the
/// host reading the done flag after each batch), each iteration the pass (the reference
/// engine's, into a totals record), the farthest points of its empty clusters and the step.
template <class T>
LloydTrace emulate_device_loop(Engine<T>& e, const T* x, const T* w, std::int64_t d, int k,
                               int max_iter, double tol, std::vector<T>& c,
                               int* wasted_passes) {
  std::vector<double> totals(static_cast<std::size_t>(layout::total_entries(k, d)));
  std::vector<std::int64_t> far(2 * tn::kFarthestMaxM, -1);
  std::vector<double> sse(static_cast<std::size_t>(max_iter)), imb(sse.size());
  std::int64_t state[device_loop::kSlots] = {};
  state[device_loop::kMaxIter] = max_iter;
  std::memcpy(&state[device_loop::kTolBits], &tol, sizeof tol);
  device_loop::StepView<T> v;
  v.x = x;
  v.w = w;
  v.c = c.data();
  v.totals = totals.data();
  v.far = far.data();
  v.k = k;
  v.d = d;
  v.sse = sse.data();
  v.imbalance = imb.data();
  v.state = state;
  const int batch = std::min(max_iter, tn::kDeviceLoopBatch);
  *wasted_passes = 0;
  while (!state[device_loop::kDone]) {
    for (int i = 0; i < batch; ++i) {
      const StepStats s = e.assign(c.data(), k, totals.data() + layout::total_sum(0, 0, k, d),
                                   totals.data() + layout::total_weight(0));
      totals[layout::kTotalSse] = s.sse;
      totals[layout::kTotalChanged] = static_cast<double>(s.n_changed);
      const int m = state[device_loop::kDone]
                        ? 0
                        : farthest::count_empty(totals.data() + layout::total_weight(0), k);
      if (m > 0) {
        const std::vector<FarPoint> fp = e.farthest(m);
        for (int j = 0; j < m; ++j) {
          far[j] = fp[j].index;
          far[tn::kFarthestMaxM + j] = fp[j].label;
        }
      }
      if (!device_loop::step(v)) ++*wasted_passes;
    }
  }
  EXPECT_EQ(state[device_loop::kFailed], 0);
  LloydTrace t;
  t.n_iter = static_cast<int>(state[device_loop::kIter]);
  t.converged = state[device_loop::kConverged] != 0;
  t.n_empty_relocated = static_cast<int>(state[device_loop::kRelocated]);
  t.sse.assign(sse.begin(), sse.begin() + t.n_iter);
  t.imbalance.assign(imb.begin(), imb.begin() + t.n_iter);
  return t;
}

template <class T>
void check_emulated_loop() {
  std::uint32_t seed = 11;
  for (const kmeans_test::LoopCase& lc : kmeans_test::loop_cases()) {
    SCOPED_TRACE(lc.name);
    std::vector<T> x, init, w;
    kmeans_test::make_loop_case(lc, seed++, x, init, w);
    Params<T> p;
    p.k = lc.k;
    p.max_iter = lc.max_iter;
    p.tol = lc.tol;
    p.init = Init::Array;
    p.init_centroids = ArrayView<T>(init);
    if (!w.empty()) p.sample_weight = ArrayView<T>(w);
    p.backend = Backend::Reference;
    const Result<T> host = kmeans::fit(x.data(), static_cast<std::size_t>(lc.n),
                                       static_cast<std::size_t>(lc.d), p);

    const T* wp = w.empty() ? nullptr : w.data();
    const double tol =
        lc.tol > 0 ? lc.tol * make_host_data_ops(x.data(), wp, lc.n, lc.d, 0)->mean_feature_variance()
                   : 0.0;
    auto e = make_reference_engine(DataView<T>{x.data(), wp, lc.n, lc.d, 0, nullptr});
    std::vector<T> c = init;
    int wasted = 0;
    const LloydTrace t = emulate_device_loop(*e, x.data(), wp, lc.d, lc.k, lc.max_iter, tol, c,
                                             &wasted);
    EXPECT_EQ(t.n_iter, host.n_iter);
    EXPECT_EQ(t.converged, host.converged);
    EXPECT_EQ(t.n_empty_relocated, host.n_empty_relocated);
    ASSERT_EQ(t.sse.size(), host.sse_history.size());
    for (std::size_t i = 0; i < t.sse.size(); ++i) {
      EXPECT_EQ(std::memcmp(&t.sse[i], &host.sse_history[i], sizeof(double)), 0) << "sse " << i;
      EXPECT_EQ(std::memcmp(&t.imbalance[i], &host.imbalance_history[i], sizeof(double)), 0)
          << "imbalance " << i;
    }
    ASSERT_EQ(c.size(), host.centroids.size());
    EXPECT_EQ(std::memcmp(c.data(), host.centroids.data(), c.size() * sizeof(T)), 0);
    // The batch bookkeeping: the passes after the done flag are whole-batch padding only.
    const int batch = std::min(lc.max_iter, tn::kDeviceLoopBatch);
    EXPECT_EQ((t.n_iter + wasted) % batch, 0);
    EXPECT_LT(wasted, batch);
    if (lc.empty) EXPECT_GT(t.n_empty_relocated, 0);
    if (lc.points_init) {
      EXPECT_EQ(t.n_iter, 1);
      EXPECT_TRUE(t.converged);
    }
    if (lc.name == "max_iter hit") {
      EXPECT_EQ(t.n_iter, lc.max_iter);
      EXPECT_FALSE(t.converged);
    }
  }
}

TEST(DeviceLoopEmulation, EqualsHostDriverFloat) { check_emulated_loop<float>(); }
TEST(DeviceLoopEmulation, EqualsHostDriverDouble) { check_emulated_loop<double>(); }

/// The reference engine offering the emulated device loop as its run_lloyd: the driver's use of
/// Engine::run_lloyd (history, counts, the final assignment) without a GPU.
template <class T>
class LoopingEngine final : public Engine<T> {
 public:
  LoopingEngine(const DataView<T>& v) : v_(v), e_(make_reference_engine(v)) {}
  Backend kind() const override { return e_->kind(); }
  StepStats assign(const T* c, int k, double* sums, double* weights) override {
    return e_->assign(c, k, sums, weights);
  }
  void labels(std::int32_t* out) override { e_->labels(out); }
  std::vector<FarPoint> farthest(std::int64_t m) override { return e_->farthest(m); }
  const T* host_data() override { return e_->host_data(); }
  const T* host_weights() override { return e_->host_weights(); }
  void distances(const T* c, int k, T* out) override { e_->distances(c, k, out); }
  bool rebind(const DataView<T>&) override { return false; }
  bool run_lloyd(T* c, int k, int max_iter, double tol, LloydTrace& out) override {
    ++calls;
    std::vector<T> cv(c, c + static_cast<std::int64_t>(k) * v_.d);
    int wasted = 0;
    out = emulate_device_loop(*e_, v_.data, v_.weights, v_.d, k, max_iter, tol, cv, &wasted);
    std::copy(cv.begin(), cv.end(), c);
    return true;
  }
  int calls = 0;

 private:
  DataView<T> v_;
  std::unique_ptr<Engine<T>> e_;
};

template <class T>
void check_driver_uses_run_lloyd() {
  std::uint32_t seed = 211;
  for (const kmeans_test::LoopCase& lc : kmeans_test::loop_cases()) {
    SCOPED_TRACE(lc.name);
    std::vector<T> x, init, w;
    kmeans_test::make_loop_case(lc, seed++, x, init, w);
    Params<T> p;
    p.k = lc.k;
    p.max_iter = lc.max_iter;
    p.tol = lc.tol;
    p.init = Init::Array;
    p.init_centroids = ArrayView<T>(init);
    if (!w.empty()) p.sample_weight = ArrayView<T>(w);
    p.backend = Backend::Reference;
    const Result<T> host = kmeans::fit(x.data(), static_cast<std::size_t>(lc.n),
                                       static_cast<std::size_t>(lc.d), p);
    const T* wp = w.empty() ? nullptr : w.data();
    LoopingEngine<T> e(DataView<T>{x.data(), wp, lc.n, lc.d, 0, nullptr});
    auto ops = make_host_data_ops(x.data(), wp, lc.n, lc.d, 0);
    Units<T> u;
    std::unique_ptr<Engine<T>> held;
    const Result<T> r = fit_bound<T>(e, *ops, lc.n, lc.d, p, u, 0.0, nullptr, held, nullptr);
    EXPECT_EQ(e.calls, 1);
    EXPECT_EQ(r.n_iter, host.n_iter);
    EXPECT_EQ(r.converged, host.converged);
    EXPECT_EQ(r.n_empty_relocated, host.n_empty_relocated);
    EXPECT_EQ(r.sse_history, host.sse_history);
    EXPECT_EQ(r.imbalance_history, host.imbalance_history);
    EXPECT_EQ(r.centroids, host.centroids);
    EXPECT_EQ(r.labels, host.labels);
    EXPECT_EQ(r.inertia, host.inertia);
    EXPECT_EQ(r.cluster_sizes, host.cluster_sizes);
    // A callback needs every iteration on the host: run_lloyd is not asked.
    Params<T> pc = p;
    int seen = 0;
    pc.on_iteration = [&](const IterationInfo&) { return ++seen > 0; };
    const Result<T> rc = fit_bound<T>(e, *ops, lc.n, lc.d, pc, u, 0.0, nullptr, held, nullptr);
    EXPECT_EQ(e.calls, 1);
    EXPECT_EQ(seen, host.n_iter);
    EXPECT_EQ(rc.centroids, host.centroids);
  }
}

TEST(DeviceLoopEmulation, DriverUsesRunLloydFloat) { check_driver_uses_run_lloyd<float>(); }
TEST(DeviceLoopEmulation, DriverUsesRunLloydDouble) { check_driver_uses_run_lloyd<double>(); }

}  // namespace
}  // namespace kmeans::detail
