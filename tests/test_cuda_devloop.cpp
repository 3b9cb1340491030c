// SPDX-License-Identifier: Apache-2.0
// GPU tests of the CUDA engine's device Lloyd loop (src/cuda/device_loop.cu; ctest label gpu):
// the device loop gives the host loop's results bit for bit (KMEANS_CUDA_DEVICE_LOOP=0 forces
// the host loop on the same engine) on the small shapes of tests/devloop_cases.hpp, and the
// device farthest-point selection (src/cuda/farthest.cu) equals the old host ranking.
// Each test skips without a usable device.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "devloop_cases.hpp"
#include "direct_formula.hpp"
#include "engine.hpp"
#include "kernels/tuning.cuh"
#include "kmeans/kmeans.hpp"
#include "test_helpers.hpp"

namespace kmeans {
namespace {

using detail::DataView;
using detail::LloydTrace;

class CudaDeviceLoop : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (!cuda_available(&why)) GTEST_SKIP() << why;
  }
};

template <class T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

template <class T>
Params<T> loop_params(const kmeans_test::LoopCase& lc, const std::vector<T>& init,
                      const std::vector<T>& w) {
  Params<T> p;
  p.k = lc.k;
  p.max_iter = lc.max_iter;
  p.tol = lc.tol;
  p.init = Init::Array;
  p.init_centroids = ArrayView<T>(init);
  if (!w.empty()) p.sample_weight = ArrayView<T>(w);
  p.backend = Backend::Cuda;
  return p;
}

/// fit with the device loop == fit with the host loop (same engine kind), every output; and
/// the engine's run_lloyd itself applies (returns true) with the host loop's centroids.
template <class T>
void check_device_loop() {
  std::uint32_t seed = 101;
  for (const kmeans_test::LoopCase& lc : kmeans_test::loop_cases()) {
    SCOPED_TRACE(lc.name);
    std::vector<T> x, init, w;
    kmeans_test::make_loop_case(lc, seed++, x, init, w);
    const Params<T> p = loop_params(lc, init, w);
    const auto n = static_cast<std::size_t>(lc.n), d = static_cast<std::size_t>(lc.d);
    Result<T> host;
    {
      kmeans_test::EnvScope off("KMEANS_CUDA_DEVICE_LOOP", "0");
      host = kmeans::fit(x.data(), n, d, p);
    }
    const Result<T> dev = kmeans::fit(x.data(), n, d, p);
    EXPECT_EQ(dev.n_iter, host.n_iter);
    EXPECT_EQ(dev.converged, host.converged);
    EXPECT_EQ(dev.n_empty_relocated, host.n_empty_relocated);
    EXPECT_TRUE(same_bits(dev.sse_history, host.sse_history));
    EXPECT_TRUE(same_bits(dev.imbalance_history, host.imbalance_history));
    EXPECT_TRUE(same_bits(dev.centroids, host.centroids));
    EXPECT_TRUE(same_bits(dev.labels, host.labels));
    EXPECT_EQ(std::memcmp(&dev.inertia, &host.inertia, sizeof(double)), 0);
    EXPECT_TRUE(same_bits(dev.cluster_sizes, host.cluster_sizes));
    if (lc.empty) EXPECT_GT(dev.n_empty_relocated, 0);
    if (lc.points_init) EXPECT_EQ(dev.n_iter, 1);

    // The engine's own loop applies on these shapes and ends at the host loop's centroids.
    ASSERT_TRUE(detail::tuning::use_device_loop(lc.n, lc.d, lc.k, lc.max_iter));
    const T* wp = w.empty() ? nullptr : w.data();
    auto e = detail::make_cuda_engine(DataView<T>{x.data(), wp, lc.n, lc.d, 0, nullptr});
    const double tol =
        lc.tol > 0 ? lc.tol * detail::make_host_data_ops(x.data(), wp, lc.n, lc.d, 0)
                                  ->mean_feature_variance()
                   : 0.0;
    std::vector<T> c = init;
    LloydTrace t;
    ASSERT_TRUE(e->run_lloyd(c.data(), lc.k, lc.max_iter, tol, t));
    EXPECT_EQ(t.n_iter, host.n_iter);
    EXPECT_TRUE(same_bits(c, host.centroids));
    // A second run on the same engine replays the captured batch: the same bits again.
    std::vector<T> c2 = init;
    LloydTrace t2;
    ASSERT_TRUE(e->run_lloyd(c2.data(), lc.k, lc.max_iter, tol, t2));
    EXPECT_TRUE(same_bits(c2, c));
    EXPECT_TRUE(same_bits(t2.sse, t.sse));
  }
}

TEST_F(CudaDeviceLoop, EqualsHostLoopFloat) { check_device_loop<float>(); }
TEST_F(CudaDeviceLoop, EqualsHostLoopDouble) { check_device_loop<double>(); }

TEST_F(CudaDeviceLoop, NotOfferedOutsideItsRule) {
  std::vector<double> x(200 * 2), c(65 * 2);
  std::mt19937 gen(3);
  for (auto& v : x) v = static_cast<double>(gen() % 1000) / 100;
  for (std::size_t i = 0; i < c.size(); ++i) c[i] = x[i];
  auto e = detail::make_cuda_engine(DataView<double>{x.data(), nullptr, 200, 2, 0, nullptr});
  LloydTrace t;
  std::vector<double> c0 = c;
  EXPECT_FALSE(e->run_lloyd(c.data(), 65, 300, 0.0, t));  // k above kDeviceLoopMaxK
  EXPECT_EQ(c, c0);
  kmeans_test::EnvScope off("KMEANS_CUDA_DEVICE_LOOP", "0");
  EXPECT_FALSE(e->run_lloyd(c.data(), 4, 300, 0.0, t));
  kmeans_test::EnvScope bad("KMEANS_CUDA_DEVICE_LOOP", "yes");
  EXPECT_THROW(e->run_lloyd(c.data(), 4, 300, 0.0, t), Error);
}

/// farthest(m) on the device == the old host ranking of the direct distances (partial_sort by
/// distance desc, index asc), labels included; m beyond kFarthestMaxM takes the host path.
template <class T>
void check_farthest() {
  for (const std::int64_t n : {1, 300, 4097, 70001}) {
    for (const int d : {1, 3, 17}) {
      const int k = static_cast<int>(std::min<std::int64_t>(5, n));
      std::mt19937 gen(static_cast<std::uint32_t>(n * 7 + d));
      std::vector<T> x(static_cast<std::size_t>(n * d)), c(static_cast<std::size_t>(k * d));
      for (auto& v : x) v = static_cast<T>(static_cast<int>(gen() % 9) - 4);  // many ties
      for (auto& v : c) v = static_cast<T>(static_cast<int>(gen() % 9) - 4);
      auto e = detail::make_cuda_engine(DataView<T>{x.data(), nullptr, n, d, 0, nullptr});
      std::vector<double> sums(static_cast<std::size_t>(k * d)), weights(k);
      e->assign(c.data(), k, sums.data(), weights.data());
      std::vector<std::int32_t> labels(static_cast<std::size_t>(n));
      e->labels(labels.data());
      std::vector<T> dist(static_cast<std::size_t>(n));
      for (std::int64_t i = 0; i < n; ++i)
        dist[i] = kmeans_test::direct_distance(x.data() + i * d, c.data() + labels[i] * d, d);
      for (const std::int64_t m : {std::int64_t{1}, std::int64_t{2}, std::int64_t{17},
                                   std::int64_t{64}, std::int64_t{65}, n}) {
        const std::int64_t mm = std::min(m, n);
        std::vector<std::int64_t> idx(static_cast<std::size_t>(n));
        std::iota(idx.begin(), idx.end(), 0);
        std::partial_sort(idx.begin(), idx.begin() + mm, idx.end(),
                          [&](std::int64_t a, std::int64_t b) {
                            return dist[a] != dist[b] ? dist[a] > dist[b] : a < b;
                          });
        const std::vector<detail::FarPoint> got = e->farthest(m);
        ASSERT_EQ(static_cast<std::int64_t>(got.size()), mm) << "n " << n << " m " << m;
        for (std::int64_t i = 0; i < mm; ++i) {
          EXPECT_EQ(got[i].index, idx[i]) << "n " << n << " d " << d << " m " << m << " i " << i;
          EXPECT_EQ(got[i].label, labels[idx[i]]);
        }
      }
    }
  }
}

TEST_F(CudaDeviceLoop, FarthestEqualsHostRankingFloat) { check_farthest<float>(); }
TEST_F(CudaDeviceLoop, FarthestEqualsHostRankingDouble) { check_farthest<double>(); }

}  // namespace
}  // namespace kmeans
