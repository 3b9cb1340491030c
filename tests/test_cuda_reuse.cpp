// SPDX-License-Identifier: Apache-2.0
// GPU tests of a reused CUDA engine (ctest label gpu): no allocation on repeated calls, rebinds,
// initialisation and transform on the device against the host, the estimator end to end.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "engine.hpp"
#include "kernels/tuning.cuh"
#include "kmeans/kmeans.hpp"
#include "stream/cuda_stream.hpp"
#include "cuda_test_support.hpp"
#include "test_data.hpp"

namespace kmeans {
namespace {

class CudaReuse : public ::testing::Test {
 protected:
  void SetUp() override { KMEANS_SKIP_WITHOUT_GPU(); }
};

template <class T>
void expect_same_fit(const Result<T>& a, const Result<T>& b) {
  ASSERT_EQ(a.centroids.size(), b.centroids.size());
  EXPECT_EQ(0, std::memcmp(a.centroids.data(), b.centroids.data(), a.centroids.size() * sizeof(T)));
  EXPECT_EQ(a.labels, b.labels);
  EXPECT_EQ(0, std::memcmp(&a.inertia, &b.inertia, sizeof(double)));
  EXPECT_EQ(a.sse_history, b.sse_history);
  EXPECT_EQ(a.n_iter, b.n_iter);
  EXPECT_EQ(a.n_empty_relocated, b.n_empty_relocated);
  EXPECT_EQ(a.backend, Backend::Cuda);
  EXPECT_EQ(b.backend, Backend::Cuda);
}

/// A KMeans object refitting new data of the same shape, and predicting / transforming /
/// scoring batches of one shape, allocates no device memory after the first call of each kind,
/// and gives the bits of fresh calls.
template <class T>
void check_reuse_allocates_nothing(std::int64_t n, std::int64_t d, int k) {
  SCOPED_TRACE("n=" + std::to_string(n) + " d=" + std::to_string(d) + " k=" + std::to_string(k));
  const auto x1 = make_data<T>(n, d, Shape::Blobs, 60, k);
  const auto x2 = make_data<T>(n, d, Shape::Blobs, 61, k);
  const auto y1 = make_data<T>(n / 3, d, Shape::Uniform, 62);
  const auto y2 = make_data<T>(n / 3, d, Shape::Uniform, 63);
  Params<T> p;
  p.k = k;
  p.seed = 5;
  p.max_iter = 15;
  p.backend = Backend::Cuda;
  KMeans<T> km(p);
  km.fit(x1.data(), n, d);
  const std::int64_t after_first_fit = detail::cuda_allocation_count();
  km.fit(x2.data(), n, d);
  EXPECT_EQ(detail::cuda_allocation_count(), after_first_fit) << "the refit allocated";
  expect_same_fit(km.result(), fit(x2.data(), n, d, p));
  km.fit(x1.data(), n, d);
  expect_same_fit(km.result(), fit(x1.data(), n, d, p));
  const auto& c = km.result().centroids;

  // Fresh calls first (they allocate), then the object's calls.
  const std::int64_t m = n / 3;
  std::vector<std::vector<std::int32_t>> labels;
  std::vector<std::vector<T>> dists;
  std::vector<double> scores;
  for (const auto* y : {y2.data(), y1.data()}) {
    labels.push_back(predict(y, m, d, c.data(), k, Backend::Cuda));
    dists.push_back(transform(y, m, d, c.data(), k, Backend::Cuda));
    scores.push_back(score<T>(y, m, d, c.data(), k, nullptr, Backend::Cuda));
  }
  (void)km.predict(y1.data(), m);
  (void)km.transform(y1.data(), m);
  const std::int64_t after_first_predict = detail::cuda_allocation_count();
  int i = 0;
  for (const auto* y : {y2.data(), y1.data()}) {
    EXPECT_EQ(km.predict(y, m), labels[i]);
    EXPECT_EQ(km.transform(y, m), dists[i]);
    EXPECT_EQ(km.score(y, m), scores[i]);
    ++i;
  }
  EXPECT_EQ(detail::cuda_allocation_count(), after_first_predict)
      << "repeated predict/transform/score allocated";
  km.release();
  EXPECT_EQ(km.predict(y1.data(), m), labels[1]);
}

TEST_F(CudaReuse, PartialsPathAllocatesNothingOnRepeatedCalls) {
  check_reuse_allocates_nothing<float>(9000, 8, 6);
}
TEST_F(CudaReuse, SortPathAllocatesNothingOnRepeatedCalls) {
  check_reuse_allocates_nothing<float>(9000, 20, 100);
}
TEST_F(CudaReuse, GemmPathAllocatesNothingOnRepeatedCalls) {
  // The GEMM path centres on the data mean, which changes with the data: the mean and |m| are
  // recomputed in place, in device memory the kept graph reads.
  check_reuse_allocates_nothing<float>(9000, 40, 150);
  check_reuse_allocates_nothing<double>(9000, 40, 150);
}

TEST_F(CudaReuse, DeviceInputAtANewAddressAndWeightsComingAndGoing) {
  const std::int64_t n = 6000, d = 5;
  const int k = 7;
  const auto x1 = make_data<float>(n, d, Shape::Blobs, 64, k);
  const auto x2 = make_data<float>(n, d, Shape::Blobs, 65, k);
  std::vector<float> w(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) w[i] = 0.25f + static_cast<float>(i % 5);
  TestDeviceArray<float> d1(x1), d2(x2), dw(w);
  ASSERT_NE(d1.get(), nullptr);
  ASSERT_NE(d2.get(), nullptr);
  ASSERT_NE(dw.get(), nullptr);
  Params<float> p;
  p.k = k;
  p.seed = 2;
  p.backend = Backend::Cuda;
  KMeans<float> km(p);
  km.fit(d1.get(), n, d);
  const std::int64_t allocations = detail::cuda_allocation_count();
  km.fit(d2.get(), n, d);  // same engine, new pointer: the graph is re-captured
  EXPECT_EQ(detail::cuda_allocation_count(), allocations) << "the device refit allocated";
  expect_same_fit(km.result(), fit(x2.data(), n, d, p));
  km.params().sample_weight = {dw.get(), w.size()};
  p.sample_weight = w;
  km.fit(d1.get(), n, d);
  expect_same_fit(km.result(), fit(x1.data(), n, d, p));
  km.params().sample_weight = nullptr;
  p.sample_weight = nullptr;
  km.fit(d1.get(), n, d);
  expect_same_fit(km.result(), fit(x1.data(), n, d, p));
  // Host data after device data: another engine, same answer.
  km.fit(x2.data(), n, d);
  expect_same_fit(km.result(), fit(x2.data(), n, d, p));
  // A NaN in rebound device data is still found.
  auto bad = x2;
  bad[11 * d + 3] = std::numeric_limits<float>::quiet_NaN();
  TestDeviceArray<float> dbad(bad);
  km.fit(d1.get(), n, d);
  try {
    km.fit(dbad.get(), n, d);
    ADD_FAILURE() << "NaN in rebound device data was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("NaN at row 11, column 3"), std::string::npos) << e.what();
  }
  km.fit(d2.get(), n, d);  // and the engine recovers
  expect_same_fit(km.result(), fit(x2.data(), n, d, p));
  // The failed rebind must leave nothing stale behind: fixed in place (same address as the
  // failed call), the data gives the fresh fit's bits, not a replay over the previous data.
  km.fit(d1.get(), n, d);
  EXPECT_THROW(km.fit(dbad.get(), n, d), Error);
  ASSERT_CUDA(cudaMemcpy(dbad.get(), x2.data(), x2.size() * sizeof(float), cudaMemcpyHostToDevice));
  km.fit(dbad.get(), n, d);
  expect_same_fit(km.result(), fit(x2.data(), n, d, p));
}

/// Initialisation on the GPU chooses the host's points, bit for bit: every distance is exact
/// and every sum is formed in the host's order (kernels/init.cuh).
template <class T>
void check_init_matches_host(std::int64_t n, std::int64_t d, int k, Shape shape, bool weighted,
                             bool device_input) {
  SCOPED_TRACE("n=" + std::to_string(n) + " d=" + std::to_string(d) + " k=" + std::to_string(k) +
               (weighted ? " weighted" : "") + (device_input ? " device input" : ""));
  const auto x = make_data<T>(n, d, shape, 90 + static_cast<std::uint32_t>(k), 6);
  std::vector<T> w(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) w[i] = static_cast<T>(0.5 + static_cast<double>(i % 4));
  if (n > 3) w[3] = 0;  // a point that must never be drawn
  TestDeviceArray<T> dx(x), dw(w);
  ASSERT_NE(dx.get(), nullptr);
  ASSERT_NE(dw.get(), nullptr);
  for (Init init : {Init::Random, Init::KMeansPlusPlus, Init::KMeansParallel}) {
    SCOPED_TRACE("init " + std::to_string(static_cast<int>(init)));
    for (std::uint64_t seed : {0u, 7u}) {
      Params<T> p;
      p.k = k;
      p.init = init;
      p.seed = seed;
      p.max_iter = 0;  // the result's centroids are the initial ones
      p.sample_weight = weighted ? ArrayView<T>(w) : ArrayView<T>();
      p.backend = Backend::Reference;
      const Result<T> host = fit(x.data(), n, d, p);
      p.backend = Backend::Cuda;
      if (device_input)
        p.sample_weight = weighted ? ArrayView<T>(dw.get(), w.size()) : ArrayView<T>();
      const Result<T> gpu = fit(device_input ? dx.get() : x.data(), n, d, p);
      ASSERT_EQ(gpu.centroids.size(), host.centroids.size());
      EXPECT_EQ(0, std::memcmp(gpu.centroids.data(), host.centroids.data(),
                               host.centroids.size() * sizeof(T)))
          << "seed " << seed;
    }
  }
}

TEST_F(CudaReuse, InitChoosesTheHostsPoints) {
  check_init_matches_host<float>(10007, 5, 17, Shape::Blobs, false, false);
  check_init_matches_host<float>(10007, 5, 17, Shape::Blobs, true, true);
  check_init_matches_host<double>(5000, 1, 3, Shape::Uniform, true, false);   // d = 1
  check_init_matches_host<float>(300, 40, 30, Shape::Uniform, false, true);
  check_init_matches_host<double>(4096 * 3 + 1, 3, 100, Shape::Blobs, true, false);
  check_init_matches_host<float>(500, 4, 12, Shape::Duplicates, false, false);  // 5 distinct
  check_init_matches_host<double>(50, 2, 49, Shape::Uniform, true, true);      // k = n - 1 > 0 weights
  check_init_matches_host<float>(64, 3, 64, Shape::Uniform, false, false);       // k = n
  check_init_matches_host<float>(3000, 700, 8, Shape::Blobs, false, false);      // large d
}

TEST_F(CudaReuse, EngineDataOperationsMatchTheHost) {
  // The DataOps operations one by one against the host implementation, bit for bit.
  for (std::int64_t n : {std::int64_t{1}, std::int64_t{4097}, std::int64_t{20000}}) {
    const std::int64_t d = 6;
    SCOPED_TRACE("n=" + std::to_string(n));
    const auto x = make_data<float>(n, d, Shape::Blobs, 95, 4);
    std::vector<float> w(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) w[i] = 1.0f + static_cast<float>(i % 7) / 8;
    const DataView<float> view{x.data(), w.data(), n, d, 0};
    auto engine = detail::make_cuda_engine(view);
    detail::DataOps<float>* gpu = engine->data_ops();
    ASSERT_NE(gpu, nullptr);
    auto host = detail::make_host_data_ops(x.data(), w.data(), n, d, 0);
    const double vg = gpu->mean_feature_variance(), vh = host->mean_feature_variance();
    EXPECT_EQ(0, std::memcmp(&vg, &vh, sizeof(double)));
    std::vector<std::int64_t> idx;
    for (std::int64_t i = 0; i < std::min<std::int64_t>(n, 40); ++i) idx.push_back((i * 7919) % n);
    const auto m = static_cast<std::int64_t>(idx.size());
    std::vector<double> cg(static_cast<std::size_t>(n), 1e300), ch(cg);
    gpu->lower_closest(idx.data(), m, cg.data());
    host->lower_closest(idx.data(), m, ch.data());
    EXPECT_EQ(0, std::memcmp(cg.data(), ch.data(), cg.size() * sizeof(double)));
    std::vector<std::int64_t> ng(static_cast<std::size_t>(n), -1), nh(ng);
    gpu->nearest(idx.data(), m, ng.data());
    host->nearest(idx.data(), m, nh.data());
    EXPECT_EQ(ng, nh);
    std::vector<float> rg(static_cast<std::size_t>(m * d)), rh(rg.size());
    gpu->rows(idx.data(), m, rg.data());
    host->rows(idx.data(), m, rh.data());
    EXPECT_EQ(rg, rh);
    const int k = static_cast<int>(std::min<std::int64_t>(n, 9));
    const int trials = 2 + static_cast<int>(std::log(static_cast<double>(k)));
    std::vector<double> u(1 + static_cast<std::size_t>(k - 1) * trials);
    for (std::size_t i = 0; i < u.size(); ++i) u[i] = static_cast<double>((i * 2654435761u) % 1000) / 1000;
    EXPECT_EQ(gpu->greedy_kmeanspp(k, trials, u.data()), host->greedy_kmeanspp(k, trials, u.data()));
  }
}

TEST_F(CudaReuse, WholeEstimatorMatchesTheReference) {
  // Seeded init (the host's points on the GPU), n_init, weights, then Lloyd: in double the GPU
  // gives the reference's labels and iterations, and centroids to rounding.
  const std::int64_t n = 6000, d = 5;
  const auto x = make_data<double>(n, d, Shape::Blobs, 77, 8);
  std::vector<double> w(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) w[i] = 1.0 + static_cast<double>(i % 3);
  for (Init init : {Init::Random, Init::KMeansPlusPlus, Init::KMeansParallel}) {
    SCOPED_TRACE("init " + std::to_string(static_cast<int>(init)));
    Params<double> p;
    p.k = 8;
    p.init = init;
    p.n_init = 3;
    p.seed = 4;
    p.sample_weight = w;
    p.backend = Backend::Reference;
    const auto ref = fit(x.data(), n, d, p);
    p.backend = Backend::Cuda;
    const auto gpu = fit(x.data(), n, d, p);
    EXPECT_EQ(gpu.labels, ref.labels);
    EXPECT_EQ(gpu.n_iter, ref.n_iter);
    EXPECT_EQ(gpu.cluster_sizes, ref.cluster_sizes);  // summed from the labels in point order
    ASSERT_EQ(gpu.imbalance_history.size(), ref.imbalance_history.size());
    for (std::size_t i = 0; i < ref.imbalance_history.size(); ++i)
      EXPECT_NEAR(gpu.imbalance_history[i], ref.imbalance_history[i], 1e-12) << "iteration " << i;
    EXPECT_NEAR(gpu.inertia, ref.inertia, kRelTolF64 * ref.inertia);
    for (std::size_t i = 0; i < ref.centroids.size(); ++i)
      EXPECT_NEAR(gpu.centroids[i], ref.centroids[i], 1e-9 * (1 + std::abs(ref.centroids[i])));
  }
  // The progress callback stops the GPU fit too (random init: this data needs 20+ iterations
  // from it, so the stop after the third is the callback's).
  Params<double> p;
  p.k = 8;
  p.tol = 0;
  p.init = Init::Random;
  p.backend = Backend::Cuda;
  int calls = 0;
  p.on_iteration = [&](const IterationInfo& it) {
    EXPECT_EQ(it.iteration, calls);
    EXPECT_GT(it.sse, 0.0);
    ++calls;
    return it.iteration < 2;
  };
  const auto r = fit(x.data(), n, d, p);
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(r.n_iter, 3);
}

TEST_F(CudaReuse, KMeansPlusPlusFallsBackToTheHostWhenItsBuffersDoNotFit) {
  // 4M x 2 floats: the engine needs ~64 MiB (data, labels, distances), GPU k-means++ another
  // (2 + 3 trials) x 4M doubles = 160 MiB. Leave ~120 MiB free: the fit runs, k-means++ does
  // not fit, the host does it, and the centroids are the host's all the same.
  const std::int64_t n = 4000000, d = 2;
  const auto x = make_data<float>(n, d, Shape::Blobs, 97, 4);
  Params<float> p;
  p.k = 4;
  p.max_iter = 0;
  p.seed = 12;
  p.backend = Backend::Reference;
  const auto host = fit(x.data(), n, d, p);
  std::size_t free_b = 0, total_b = 0;
  ASSERT_CUDA(cudaMemGetInfo(&free_b, &total_b));
  const std::size_t keep = std::size_t{120} << 20;
  void* hog = nullptr;
  std::size_t hog_bytes = free_b > keep ? free_b - keep : 0;
  while (hog_bytes > 0 && cudaMalloc(&hog, hog_bytes) != cudaSuccess) {
    (void)cudaGetLastError();
    hog = nullptr;
    hog_bytes -= std::min(hog_bytes, std::size_t{16} << 20);
  }
  ASSERT_NE(hog, nullptr) << "could not fill device memory";
  p.backend = Backend::Cuda;
  Result<float> gpu;
  std::string error;
  try {
    gpu = fit(x.data(), n, d, p);
  } catch (const Error& e) {
    error = e.what();
  }
  ASSERT_CUDA(cudaFree(hog));
  ASSERT_TRUE(error.empty()) << error;
  EXPECT_EQ(gpu.backend, Backend::Cuda);
  EXPECT_EQ(gpu.centroids, host.centroids);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
}

TEST_F(CudaReuse, ARebindThatThrowsLeavesTheEngineUsable) {
  // The engine alone (no driver to drop it): a rebind that fails on an Inf, then a rebind to
  // the repaired data at the same address, must replay nothing captured for the earlier data.
  // Double, so labels match the reference exactly.
  const std::int64_t n = 5000, d = 4;
  const int k = 5;
  const auto x1 = make_data<double>(n, d, Shape::Blobs, 98, k);
  auto x2 = make_data<double>(n, d, Shape::Blobs, 99, k);
  const auto c = make_centroids(x2, n, d, k, 100);
  TestDeviceArray<double> d1(x1), d2(x2);
  ASSERT_NE(d1.get(), nullptr);
  ASSERT_NE(d2.get(), nullptr);
  auto engine = detail::make_cuda_engine(DataView<double>{d1.get(), nullptr, n, d, 0});
  std::vector<double> s(static_cast<std::size_t>(k * d)), w(static_cast<std::size_t>(k));
  for (int pass = 0; pass < 3; ++pass)  // run directly, then capture and replay a graph on d1
    engine->assign(c.data(), k, s.data(), w.data());
  auto bad = x2;
  bad[5] = std::numeric_limits<double>::infinity();
  ASSERT_CUDA(cudaMemcpy(d2.get(), bad.data(), bad.size() * sizeof(double), cudaMemcpyHostToDevice));
  EXPECT_THROW(engine->rebind(DataView<double>{d2.get(), nullptr, n, d, 0}), Error);
  ASSERT_CUDA(cudaMemcpy(d2.get(), x2.data(), x2.size() * sizeof(double), cudaMemcpyHostToDevice));
  ASSERT_TRUE(engine->rebind(DataView<double>{d2.get(), nullptr, n, d, 0}));
  auto ref = detail::make_reference_engine(DataView<double>{x2.data(), nullptr, n, d, 0});
  std::vector<double> rs(s.size()), rw(w.size());
  for (int pass = 0; pass < 3; ++pass) {
    const auto a = engine->assign(c.data(), k, s.data(), w.data());
    const auto b = ref->assign(c.data(), k, rs.data(), rw.data());
    EXPECT_NEAR(a.sse, b.sse, kRelTolF64 * b.sse) << "pass " << pass;
    EXPECT_EQ(w, rw) << "pass " << pass;  // cluster sizes: the labels of the new data
  }
  std::vector<std::int32_t> labels(static_cast<std::size_t>(n)), ref_labels(labels.size());
  engine->labels(labels.data());
  ref->labels(ref_labels.data());
  EXPECT_EQ(labels, ref_labels);
}

/// transform on the GPU gives the host's bits (both form sqrt(sum (x - c)^2) in double without
/// fused multiply-adds), across the output chunks too.
template <class T>
void check_transform_bits(std::int64_t n, std::int64_t d, int k) {
  SCOPED_TRACE("n=" + std::to_string(n) + " d=" + std::to_string(d) + " k=" + std::to_string(k));
  const auto x = make_data<T>(n, d, Shape::Blobs, 70, 4);
  const auto c = make_centroids(x, n, d, k, 71);
  const auto g = transform(x.data(), n, d, c.data(), k, Backend::Cuda);
  const auto h = transform(x.data(), n, d, c.data(), k, Backend::Reference);
  ASSERT_EQ(g.size(), h.size());
  EXPECT_EQ(0, std::memcmp(g.data(), h.data(), g.size() * sizeof(T)));
}

TEST_F(CudaReuse, TransformMatchesTheHostBitForBit) {
  check_transform_bits<float>(1001, 1, 1);
  check_transform_bits<float>(777, 300, 9);
  check_transform_bits<double>(2049, 13, 33);
  // 64 MiB output chunks: 300001 x 64 floats (73 MiB) takes two.
  check_transform_bits<float>(300001, 3, 64);
}

}  // namespace
}  // namespace kmeans
