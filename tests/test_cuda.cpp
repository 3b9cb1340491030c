// SPDX-License-Identifier: Apache-2.0
// GPU tests of Backend::Cuda (ctest label gpu): every path against the Reference backend,
// device-pointer input, determinism, error paths. Each test skips without a usable device.
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
#include "test_data.hpp"

namespace kmeans {
namespace {

using detail::DataView;
using detail::Engine;
using detail::StepStats;

/// Slack for a label against the reference minimum, relative to the size of the distances
/// involved (||x||^2 + ||c||^2): float tile distances carry ~d ulps, GEMM distances the
/// cancellation of ||x||^2 - 2x.c + ||c||^2.
constexpr double kRelTolF32 = 1e-4;
constexpr double kRelTolF64 = 1e-10;
/// Sums are accumulated in double on both sides; only the order differs.
constexpr double kSumRelTol = 1e-12;

template <class T>
constexpr double rel_tol() {
  return sizeof(T) == sizeof(float) ? kRelTolF32 : kRelTolF64;
}

#define KMEANS_SKIP_WITHOUT_GPU()                          \
  do {                                                     \
    std::string why_;                                      \
    if (!cuda_available(&why_)) GTEST_SKIP() << why_;      \
  } while (0)

#define ASSERT_CUDA(call) ASSERT_EQ((call), cudaSuccess) << #call

/// Device memory owned by a test.
template <class T>
class TestDeviceArray {
 public:
  explicit TestDeviceArray(const std::vector<T>& h) : n_(h.size()) {
    if (cudaMalloc(&p_, n_ * sizeof(T)) != cudaSuccess) {
      (void)cudaGetLastError();
      p_ = nullptr;
      return;
    }
    if (cudaMemcpy(p_, h.data(), n_ * sizeof(T), cudaMemcpyHostToDevice) != cudaSuccess) {
      (void)cudaGetLastError();
    }
  }
  ~TestDeviceArray() {
    if (p_) (void)cudaFree(p_);
  }
  TestDeviceArray(const TestDeviceArray&) = delete;
  TestDeviceArray& operator=(const TestDeviceArray&) = delete;
  T* get() const { return p_; }

 private:
  T* p_ = nullptr;
  std::size_t n_;
};

enum class Shape { Uniform, Blobs, Duplicates };

/// n x d points with a fixed seed: uniform in [-1, 1], Gaussian blobs around k_true centers in
/// [-10, 10], or only 5 distinct points repeated.
template <class T>
std::vector<T> make_data(std::int64_t n, std::int64_t d, Shape shape, std::uint32_t seed,
                         int k_true = 8, std::vector<T>* centers = nullptr) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<double> u(-1, 1);
  std::normal_distribution<double> g(0, 1);
  std::vector<T> x(static_cast<std::size_t>(n * d));
  if (shape == Shape::Uniform) {
    for (auto& v : x) v = static_cast<T>(u(gen));
    return x;
  }
  const int distinct = shape == Shape::Duplicates ? 5 : k_true;
  std::vector<double> ctr(static_cast<std::size_t>(distinct * d));
  for (auto& v : ctr) v = 10 * u(gen);
  if (centers) centers->assign(ctr.begin(), ctr.end());
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int64_t b = i % distinct;
    for (std::int64_t j = 0; j < d; ++j)
      x[i * d + j] = static_cast<T>(ctr[b * d + j] + (shape == Shape::Blobs ? 0.3 * g(gen) : 0.0));
  }
  return x;
}

/// k centroids: distinct data points plus a little noise, so every distance is non-trivial.
template <class T>
std::vector<T> make_centroids(const std::vector<T>& x, std::int64_t n, std::int64_t d, int k,
                              std::uint32_t seed) {
  std::mt19937_64 gen(seed);
  std::normal_distribution<double> g(0, 0.05);
  std::vector<std::int64_t> idx(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) idx[i] = i;
  std::shuffle(idx.begin(), idx.end(), gen);
  std::vector<T> c(static_cast<std::size_t>(k * d));
  for (int j = 0; j < k; ++j)
    for (std::int64_t f = 0; f < d; ++f)
      c[j * d + f] = static_cast<T>(static_cast<double>(x[idx[j] * d + f]) + g(gen));
  return c;
}


template <class T>
double sq_norm(const T* a, std::int64_t d) {
  double s = 0;
  for (std::int64_t j = 0; j < d; ++j) s += static_cast<double>(a[j]) * static_cast<double>(a[j]);
  return s;
}

/// One assignment pass of the CUDA engine against the reference engine:
/// - every label is in [0, k) and its exact distance is within tolerance of the true minimum;
/// - the SSE matches the reference's;
/// - sums and weights equal the sums over the CUDA labels (computed here in double);
/// - n_changed is n on the first pass and 0 on a repeat; an assign-only pass agrees.
template <class T>
void check_single_pass(std::int64_t n, std::int64_t d, int k, Shape shape, bool weighted,
                       std::uint32_t seed) {
  SCOPED_TRACE("n=" + std::to_string(n) + " d=" + std::to_string(d) + " k=" + std::to_string(k) +
               " elem=" + std::to_string(sizeof(T)) + (weighted ? " weighted" : ""));
  const auto x = make_data<T>(n, d, shape, seed);
  const auto c = make_centroids(x, n, d, k, seed + 1);
  std::vector<T> w;
  if (weighted) {
    std::mt19937_64 gen(seed + 2);
    std::uniform_real_distribution<double> u(0, 3);
    w.resize(static_cast<std::size_t>(n));
    for (auto& v : w) v = static_cast<T>(u(gen));
    w[0] = 0;  // a zero weight is legal
  }
  const DataView<T> view{x.data(), weighted ? w.data() : nullptr, n, d, 0};
  auto cuda = detail::make_cuda_engine(view);
  auto ref = detail::make_reference_engine(view);
  std::vector<double> sums(static_cast<std::size_t>(k * d)), weights(static_cast<std::size_t>(k));
  std::vector<double> rsums(sums.size()), rweights(weights.size());
  const StepStats sc = cuda->assign(c.data(), k, sums.data(), weights.data());
  const StepStats sr = ref->assign(c.data(), k, rsums.data(), rweights.data());
  std::vector<std::int32_t> labels(static_cast<std::size_t>(n));
  cuda->labels(labels.data());

  double cmax = 0;
  for (int j = 0; j < k; ++j) cmax = std::max(cmax, sq_norm(c.data() + j * d, d));
  const double tol = rel_tol<T>();
  std::vector<double> want_sums(sums.size(), 0.0), want_weights(weights.size(), 0.0),
      abs_sums(sums.size(), 0.0);
  double sse_scale = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int32_t l = labels[i];
    ASSERT_GE(l, 0) << "point " << i;
    ASSERT_LT(l, k) << "point " << i;
    const T* xi = x.data() + i * d;
    double best = std::numeric_limits<double>::infinity();
    for (int j = 0; j < k; ++j) best = std::min(best, kmeans_test::exact_dist(xi, c.data() + j * d, d));
    const double got = kmeans_test::exact_dist(xi, c.data() + l * d, d);
    const double scale = sq_norm(xi, d) + cmax;
    ASSERT_LE(got, best + tol * scale) << "point " << i << " label " << l;
    const double wi = weighted ? static_cast<double>(w[i]) : 1.0;
    sse_scale += wi * scale;
    want_weights[l] += wi;
    for (std::int64_t j = 0; j < d; ++j) {
      want_sums[l * d + j] += wi * static_cast<double>(xi[j]);
      abs_sums[l * d + j] += std::abs(wi * static_cast<double>(xi[j]));
    }
  }
  EXPECT_NEAR(sc.sse, sr.sse, tol * sse_scale);
  EXPECT_EQ(sc.n_changed, n);
  for (int j = 0; j < k; ++j) {
    ASSERT_NEAR(weights[j], want_weights[j], kSumRelTol * (1 + want_weights[j])) << "cluster " << j;
    for (std::int64_t f = 0; f < d; ++f)
      ASSERT_NEAR(sums[j * d + f], want_sums[j * d + f], kSumRelTol * (1 + abs_sums[j * d + f]))
          << "cluster " << j << " feature " << f;
  }
  if (!weighted) {  // unit weights: the counts are exact integers
    for (int j = 0; j < k; ++j) EXPECT_EQ(weights[j], want_weights[j]);
  }
  // Same centroids again: nothing changes, same bits.
  std::vector<double> sums2(sums.size()), weights2(weights.size());
  const StepStats sc2 = cuda->assign(c.data(), k, sums2.data(), weights2.data());
  EXPECT_EQ(sc2.n_changed, 0);
  EXPECT_EQ(sc2.sse, sc.sse);
  EXPECT_EQ(0, std::memcmp(sums.data(), sums2.data(), sums.size() * sizeof(double)));
  // Assign-only (final assignment / predict) gives the same labels and SSE.
  const StepStats sc3 = cuda->assign(c.data(), k, nullptr, nullptr);
  EXPECT_EQ(sc3.n_changed, 0);
  EXPECT_EQ(sc3.sse, sc.sse);
  std::vector<std::int32_t> labels3(labels.size());
  cuda->labels(labels3.data());
  EXPECT_EQ(labels, labels3);
}

using PassParam = std::tuple<std::int64_t, std::int64_t, int, Shape>;

class CudaSinglePass : public ::testing::TestWithParam<PassParam> {
 protected:
  void SetUp() override { KMEANS_SKIP_WITHOUT_GPU(); }
};

TEST_P(CudaSinglePass, FloatMatchesReference) {
  const auto [n, d, k, shape] = GetParam();
  check_single_pass<float>(n, d, k, shape, false, 17);
}
TEST_P(CudaSinglePass, DoubleMatchesReference) {
  const auto [n, d, k, shape] = GetParam();
  check_single_pass<double>(n, d, k, shape, false, 29);
}
TEST_P(CudaSinglePass, WeightedDoubleMatchesReference) {
  const auto [n, d, k, shape] = GetParam();
  check_single_pass<double>(n, d, k, shape, true, 31);
}

std::string pass_name(const ::testing::TestParamInfo<PassParam>& info) {
  const char* names[] = {"uniform", "blobs", "duplicates"};
  return "n" + std::to_string(std::get<0>(info.param)) + "_d" +
         std::to_string(std::get<1>(info.param)) + "_k" + std::to_string(std::get<2>(info.param)) +
         "_" + names[static_cast<int>(std::get<3>(info.param))];
}

// (n, d, k): n not a multiple of 256, d = 1, d = 300, k = 1, k = n, both sides of the
// partials/sort switch (k * (d + 1) = 2048) and of the GEMM switch (k >= 128 with d >= 32),
// several centroid tiles in shared memory (k = 1000, d = 16), GEMM forced by a large d,
// duplicate points (ties everywhere).
INSTANTIATE_TEST_SUITE_P(
    Shapes, CudaSinglePass,
    ::testing::Values(PassParam{1000, 2, 3, Shape::Uniform}, PassParam{4000, 3, 4, Shape::Blobs},
                      PassParam{5003, 1, 7, Shape::Uniform}, PassParam{2000, 300, 5, Shape::Blobs},
                      PassParam{3000, 8, 1, Shape::Uniform}, PassParam{300, 4, 300, Shape::Uniform},
                      PassParam{6000, 15, 128, Shape::Blobs}, PassParam{6000, 15, 129, Shape::Blobs},
                      PassParam{5000, 32, 127, Shape::Uniform}, PassParam{5000, 32, 128, Shape::Uniform},
                      PassParam{8000, 16, 1000, Shape::Uniform}, PassParam{1500, 1000, 3, Shape::Blobs},
                      PassParam{3001, 6, 10, Shape::Duplicates}, PassParam{2500, 40, 200, Shape::Duplicates}),
    pass_name);

/// The GEMM path on data far from the origin (offset 1e4, blobs of spread 0.3): every label's
/// exact distance is within kFarAbsTol of the true minimum, as tests/test_backends.cpp's
/// DataFarFromTheOrigin asks of the CPU backend (||x||^2 - 2 x.c + ||c||^2 in float is off by
/// hundreds there). The SSE is the sum of the labels' distances.
constexpr double kFarAbsTol = 1e-2;

template <class T>
void check_gemm_far_from_origin(std::int64_t n, std::int64_t d, int k) {
  SCOPED_TRACE("n=" + std::to_string(n) + " d=" + std::to_string(d) + " k=" + std::to_string(k) +
               " elem=" + std::to_string(sizeof(T)));
  ASSERT_TRUE(detail::tuning::use_gemm(k, d, sizeof(T)));  // the path under test
  auto x = make_data<T>(n, d, Shape::Blobs, 71);
  for (auto& v : x) v = static_cast<T>(static_cast<double>(v) + 1e4);
  const auto c = make_centroids(x, n, d, k, 72);
  const DataView<T> view{x.data(), nullptr, n, d, 0};
  auto cuda = detail::make_cuda_engine(view);
  std::vector<double> sums(static_cast<std::size_t>(k * d)), weights(static_cast<std::size_t>(k));
  const StepStats s = cuda->assign(c.data(), k, sums.data(), weights.data());
  std::vector<std::int32_t> labels(static_cast<std::size_t>(n));
  cuda->labels(labels.data());
  std::int64_t wrong = 0;
  double sse = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int32_t l = labels[i];
    ASSERT_TRUE(l >= 0 && l < k) << "point " << i << " label " << l;
    const T* xi = x.data() + i * d;
    double best = std::numeric_limits<double>::infinity();
    for (int j = 0; j < k; ++j) best = std::min(best, kmeans_test::exact_dist(xi, c.data() + j * d, d));
    const double got = kmeans_test::exact_dist(xi, c.data() + l * d, d);
    wrong += got > best + kFarAbsTol;
    sse += got;
  }
  EXPECT_EQ(wrong, 0);
  EXPECT_NEAR(s.sse, sse, rel_tol<T>() * sse);
  double total = 0;
  for (double w : weights) total += w;
  EXPECT_EQ(total, static_cast<double>(n));
  // A replayed pass (graph) agrees bit for bit.
  const StepStats s2 = cuda->assign(c.data(), k, sums.data(), weights.data());
  EXPECT_EQ(s2.n_changed, 0);
  EXPECT_EQ(s2.sse, s.sse);
}

class CudaGemm : public ::testing::Test {
 protected:
  void SetUp() override { KMEANS_SKIP_WITHOUT_GPU(); }
};

TEST_F(CudaGemm, DataFarFromTheOriginFloat) {
  check_gemm_far_from_origin<float>(4000, 32, 128);  // k >= 128 and d >= 32
  check_gemm_far_from_origin<float>(2000, 600, 5);   // d too large for the tile kernel
}
TEST_F(CudaGemm, DataFarFromTheOriginDouble) { check_gemm_far_from_origin<double>(4000, 40, 150); }

class CudaFit : public ::testing::Test {
 protected:
  void SetUp() override { KMEANS_SKIP_WITHOUT_GPU(); }
};

/// Full fits with Init::Array on well-separated blobs: double gives the reference's labels,
/// both types its inertia within tolerance.
template <class T>
void check_fit_matches_reference(std::int64_t n, std::int64_t d, int k) {
  SCOPED_TRACE("n=" + std::to_string(n) + " d=" + std::to_string(d) + " k=" + std::to_string(k));
  std::vector<T> centers;
  const auto x = make_data<T>(n, d, Shape::Blobs, 5, k, &centers);
  std::vector<T> init(centers.size());
  std::mt19937_64 gen(9);
  std::normal_distribution<double> g(0, 0.5);
  for (std::size_t i = 0; i < init.size(); ++i)
    init[i] = static_cast<T>(static_cast<double>(centers[i]) + g(gen));
  Params<T> p;
  p.k = k;
  p.init = Init::Array;
  p.init_centroids = init;
  p.max_iter = 50;
  p.backend = Backend::Cuda;
  const Result<T> rc = fit(x.data(), n, d, p);
  p.backend = Backend::Reference;
  const Result<T> rr = fit(x.data(), n, d, p);
  EXPECT_EQ(rc.backend, Backend::Cuda);
  EXPECT_NEAR(rc.inertia, rr.inertia, rel_tol<T>() * rr.inertia);
  ASSERT_EQ(rc.labels.size(), static_cast<std::size_t>(n));
  for (auto l : rc.labels) ASSERT_TRUE(l >= 0 && l < k);
  if (sizeof(T) == sizeof(double)) {
    EXPECT_EQ(rc.labels, rr.labels);
    EXPECT_EQ(rc.n_iter, rr.n_iter);
    for (std::size_t i = 0; i < rc.centroids.size(); ++i)
      EXPECT_NEAR(rc.centroids[i], rr.centroids[i], 1e-9 * (1 + std::abs(rr.centroids[i])));
  }
}

TEST_F(CudaFit, PartialsPathMatchesReference) {
  check_fit_matches_reference<double>(5000, 8, 6);
  check_fit_matches_reference<float>(5000, 8, 6);
}
TEST_F(CudaFit, SortPathMatchesReference) {
  check_fit_matches_reference<double>(6000, 20, 100);
  check_fit_matches_reference<float>(6000, 20, 100);
}
TEST_F(CudaFit, GemmPathMatchesReference) {
  check_fit_matches_reference<double>(6000, 40, 150);
  check_fit_matches_reference<float>(6000, 40, 150);
}

TEST_F(CudaFit, EmptyClusterIsRelocatedLikeReference) {
  const std::int64_t n = 2000, d = 4;
  const int k = 5;
  std::vector<double> centers;
  const auto x = make_data<double>(n, d, Shape::Blobs, 3, 4, &centers);
  std::vector<double> init(centers.begin(), centers.end());
  init.resize(static_cast<std::size_t>(k * d), 1e6);  // cluster 4 starts far from everything
  Params<double> p;
  p.k = k;
  p.init = Init::Array;
  p.init_centroids = init;
  p.backend = Backend::Cuda;
  const auto rc = fit(x.data(), n, d, p);
  p.backend = Backend::Reference;
  const auto rr = fit(x.data(), n, d, p);
  EXPECT_GE(rc.n_empty_relocated, 1);
  EXPECT_EQ(rc.n_empty_relocated, rr.n_empty_relocated);
  EXPECT_EQ(rc.labels, rr.labels);
  EXPECT_NEAR(rc.inertia, rr.inertia, kRelTolF64 * rr.inertia);
  for (double v : rc.centroids) EXPECT_TRUE(std::isfinite(v));
}

TEST_F(CudaFit, KEqualsNGivesZeroInertia) {
  const std::int64_t n = 200, d = 3;
  const auto x = make_data<double>(n, d, Shape::Uniform, 4);
  Params<double> p;
  p.k = static_cast<int>(n);
  p.init = Init::Array;
  p.init_centroids = x;
  p.backend = Backend::Cuda;
  const auto r = fit(x.data(), n, d, p);
  EXPECT_EQ(r.inertia, 0.0);
  for (std::int64_t i = 0; i < n; ++i) EXPECT_EQ(r.labels[i], i);
}

/// Two fits of the same input give identical bits (no floating-point atomics), on every path.
template <class T>
void check_deterministic(std::int64_t n, std::int64_t d, int k) {
  SCOPED_TRACE("n=" + std::to_string(n) + " d=" + std::to_string(d) + " k=" + std::to_string(k));
  const auto x = make_data<T>(n, d, Shape::Blobs, 8, k);
  Params<T> p;
  p.k = k;
  p.max_iter = 20;
  p.seed = 3;
  p.backend = Backend::Cuda;
  const Result<T> a = fit(x.data(), n, d, p);
  const Result<T> b = fit(x.data(), n, d, p);
  ASSERT_EQ(a.centroids.size(), b.centroids.size());
  EXPECT_EQ(0, std::memcmp(a.centroids.data(), b.centroids.data(), a.centroids.size() * sizeof(T)));
  EXPECT_EQ(a.labels, b.labels);
  EXPECT_EQ(0, std::memcmp(&a.inertia, &b.inertia, sizeof(double)));
  EXPECT_EQ(a.sse_history, b.sse_history);
}

/// Mini-batch k-means on the GPU (every batch pass a CUDA engine's) against the Reference
/// backend from the same draws: double gives its labels and step count, both types its inertia
/// within tolerance; device-resident data gives the host data's bits; partial_fit agrees too.
template <class T>
void check_minibatch_matches_reference(std::int64_t n, std::int64_t d, int k, int batch) {
  SCOPED_TRACE("mini-batch n=" + std::to_string(n) + " d=" + std::to_string(d) +
               " k=" + std::to_string(k) + " batch=" + std::to_string(batch));
  std::vector<T> centers;
  const auto x = make_data<T>(n, d, Shape::Blobs, 21, k, &centers);
  std::vector<T> init(centers.size());
  std::mt19937_64 gen(4);
  std::normal_distribution<double> g(0, 0.5);
  for (std::size_t i = 0; i < init.size(); ++i)
    init[i] = static_cast<T>(static_cast<double>(centers[i]) + g(gen));
  Params<T> p;
  p.k = k;
  p.init = Init::Array;
  p.init_centroids = init;
  p.batch_size = batch;
  p.max_iter = 3;
  p.tol = 0;
  p.max_no_improvement = 0;  // a fixed step count: 3 n / batch
  p.seed = 8;
  p.backend = Backend::Cuda;
  const Result<T> rc = fit(x.data(), n, d, p);
  p.backend = Backend::Reference;
  const Result<T> rr = fit(x.data(), n, d, p);
  EXPECT_EQ(rc.backend, Backend::Cuda);
  EXPECT_EQ(rc.n_steps, rr.n_steps);
  EXPECT_NEAR(rc.inertia, rr.inertia, rel_tol<T>() * rr.inertia);
  if (sizeof(T) == sizeof(double)) {
    EXPECT_EQ(rc.labels, rr.labels);
    for (std::size_t i = 0; i < rc.centroids.size(); ++i)
      EXPECT_NEAR(rc.centroids[i], rr.centroids[i], 1e-9 * (1 + std::abs(rr.centroids[i])));
  }
  // Device-resident data: the batches are gathered on the device, the same bits as host data.
  TestDeviceArray<T> dx(x);
  ASSERT_NE(dx.get(), nullptr);
  p.backend = Backend::Cuda;
  const Result<T> rd = fit(dx.get(), n, d, p);
  EXPECT_EQ(rd.labels, rc.labels);
  EXPECT_EQ(rd.centroids, rc.centroids);
  EXPECT_EQ(rd.inertia, rc.inertia);
  // partial_fit over consecutive slices: the GPU's centroids near the reference's.
  KMeans<T> gpu(p), ref(p);
  ref.params().backend = Backend::Reference;
  for (std::int64_t s = 0; s + batch <= n && s < 8 * batch; s += batch) {
    gpu.partial_fit(x.data() + s * d, static_cast<std::size_t>(batch), static_cast<std::size_t>(d));
    ref.partial_fit(x.data() + s * d, static_cast<std::size_t>(batch), static_cast<std::size_t>(d));
  }
  EXPECT_EQ(gpu.result().backend, Backend::Cuda);
  if (sizeof(T) == sizeof(double)) EXPECT_EQ(gpu.result().labels, ref.result().labels);
  for (std::size_t i = 0; i < ref.result().centroids.size(); ++i)
    EXPECT_NEAR(gpu.result().centroids[i], ref.result().centroids[i],
                (sizeof(T) == sizeof(double) ? 1e-9 : 1e-3) * (1 + std::abs(ref.result().centroids[i])));
}

TEST_F(CudaFit, MiniBatchMatchesReference) {
  check_minibatch_matches_reference<double>(20000, 16, 20, 1024);
  check_minibatch_matches_reference<float>(20000, 16, 20, 1024);
  check_minibatch_matches_reference<double>(9000, 40, 150, 700);  // GEMM-sized passes
}

TEST_F(CudaFit, TwoRunsGiveIdenticalBits) {
  check_deterministic<float>(20000, 16, 16);    // partials
  check_deterministic<float>(20000, 20, 200);   // sort
  check_deterministic<float>(20000, 64, 256);   // GEMM
  check_deterministic<double>(20000, 16, 16);
}

TEST_F(CudaFit, DevicePointerInputEqualsHostInput) {
  const std::int64_t n = 7000, d = 5;
  const auto x = make_data<float>(n, d, Shape::Blobs, 12, 6);
  std::vector<float> w(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) w[i] = 0.5f + static_cast<float>(i % 3);
  TestDeviceArray<float> dx(x), dw(w);
  ASSERT_NE(dx.get(), nullptr);
  ASSERT_NE(dw.get(), nullptr);
  ASSERT_TRUE(detail::is_device_pointer(dx.get()));
  ASSERT_FALSE(detail::is_device_pointer(x.data()));
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);  // probing a host pointer leaves no error
  Params<float> p;
  p.k = 6;
  p.seed = 1;
  p.sample_weight = w;
  p.backend = Backend::Cuda;
  const auto host = fit(x.data(), n, d, p);
  p.sample_weight = {dw.get(), w.size()};
  p.backend = Backend::Auto;  // device data: Auto must pick the GPU
  const auto dev = fit(dx.get(), n, d, p);
  EXPECT_EQ(dev.backend, Backend::Cuda);
  EXPECT_EQ(dev.labels, host.labels);
  EXPECT_EQ(0, std::memcmp(dev.centroids.data(), host.centroids.data(),
                           host.centroids.size() * sizeof(float)));
  EXPECT_EQ(dev.inertia, host.inertia);
  // predict on device data
  const auto labels = predict(dx.get(), n, d, dev.centroids.data(), 6, Backend::Auto);
  EXPECT_EQ(labels, dev.labels);
  // Device data with a host-only backend is refused.
  p.backend = Backend::Cpu;
  EXPECT_THROW(fit(dx.get(), n, d, p), Error);
}

TEST_F(CudaFit, DeviceDataStillBeingCopiedOnTheDefaultStreamIsWaitedFor) {
  // The caller copies into device memory asynchronously on the legacy default stream and calls
  // predict at once: the engine's non-blocking stream must not read the data before the copy
  // ends (it would see the zeros written first, or a mix).
  const std::int64_t n = 2000000, d = 8;  // 64 MB: milliseconds of copy
  const int k = 6;
  const auto x = make_data<float>(n, d, Shape::Blobs, 81, k);
  const auto c = make_centroids(x, n, d, k, 82);
  const std::size_t bytes = x.size() * sizeof(float);
  float* pinned = nullptr;
  ASSERT_CUDA(cudaMallocHost(&pinned, bytes));
  std::memcpy(pinned, x.data(), bytes);
  TestDeviceArray<float> dx(std::vector<float>(x.size(), 0.0f));
  ASSERT_NE(dx.get(), nullptr);
  ASSERT_CUDA(cudaDeviceSynchronize());
  ASSERT_CUDA(cudaMemcpyAsync(dx.get(), pinned, bytes, cudaMemcpyHostToDevice, cudaStreamLegacy));
  const auto on_device = predict(dx.get(), n, d, c.data(), k, Backend::Cuda);
  ASSERT_CUDA(cudaDeviceSynchronize());
  ASSERT_CUDA(cudaFreeHost(pinned));
  EXPECT_EQ(on_device, predict(x.data(), n, d, c.data(), k, Backend::Cuda));
}

TEST_F(CudaFit, PredictMatchesReference) {
  const std::int64_t n = 3000, d = 7;
  const int k = 9;
  const auto x = make_data<double>(n, d, Shape::Blobs, 21, k);
  const auto c = make_centroids(x, n, d, k, 22);
  EXPECT_EQ(predict(x.data(), n, d, c.data(), k, Backend::Cuda),
            predict(x.data(), n, d, c.data(), k, Backend::Reference));
}

TEST_F(CudaFit, ChangingKRecapturesTheGraph) {
  const std::int64_t n = 4000, d = 6;
  const auto x = make_data<float>(n, d, Shape::Uniform, 30);
  const DataView<float> view{x.data(), nullptr, n, d, 0};
  auto cuda = detail::make_cuda_engine(view);
  auto ref = detail::make_reference_engine(view);
  for (int k : {5, 300, 5, 64}) {  // partials, sort, partials again, partials
    SCOPED_TRACE("k=" + std::to_string(k));
    const auto c = make_centroids(x, n, d, k, 31 + k);
    std::vector<double> s(static_cast<std::size_t>(k * d)), w(static_cast<std::size_t>(k));
    std::vector<double> rs(s.size()), rw(w.size());
    const auto a = cuda->assign(c.data(), k, s.data(), w.data());
    const auto b = ref->assign(c.data(), k, rs.data(), rw.data());
    EXPECT_NEAR(a.sse, b.sse, kRelTolF32 * b.sse);
    // The first pass after a change of k runs directly, the second replays the new graph:
    // same sequence, same bits.
    std::vector<double> s2(s.size()), w2(w.size());
    const auto a2 = cuda->assign(c.data(), k, s2.data(), w2.data());
    EXPECT_EQ(a2.sse, a.sse);
    EXPECT_EQ(a2.n_changed, 0);
    EXPECT_EQ(s2, s);
    EXPECT_EQ(w2, w);
    double total = 0;
    for (double v : w) total += v;
    EXPECT_EQ(total, static_cast<double>(n));
  }
}

// Device data gets the host's range rules: values beyond max_abs_value are rejected with the
// host's message; values or weights that the host would rescale exactly are refused with a
// message that says to pass host memory (device input is not copied to be rescaled).
TEST_F(CudaFit, DeviceDataOutsideTheExactRangeIsRefusedClearly) {
  const std::int64_t n = 1000, d = 2;
  auto big = make_data<float>(n, d, Shape::Uniform, 42);
  big[5 * d + 1] = 1e20f;
  TestDeviceArray<float> dbig(big);
  Params<float> pf;
  pf.k = 3;
  pf.backend = Backend::Cuda;
  try {
    fit(dbig.get(), n, d, pf);
    FAIL() << "1e20 in float32 device data was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("data value 1e+20 at row 5, column 1 is outside the supported range"),
              std::string::npos) << e.what();
  }
  auto tiny = make_data<float>(n, d, Shape::Uniform, 43);
  for (float& v : tiny) v *= 1e-30f;
  TestDeviceArray<float> dtiny(tiny);
  try {
    fit(dtiny.get(), n, d, pf);
    FAIL() << "float32 device data near 1e-30 was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("data in GPU memory is too small"), std::string::npos)
        << e.what();
  }
  // The same tiny values in host memory are rescaled and fit.
  EXPECT_NO_THROW(fit(tiny.data(), n, d, pf));
  const auto clean = make_data<double>(n, d, Shape::Uniform, 44);
  TestDeviceArray<double> dclean(clean);
  std::vector<double> w(static_cast<std::size_t>(n), 1e-300);
  TestDeviceArray<double> dw(w);
  Params<double> pd;
  pd.k = 3;
  pd.backend = Backend::Cuda;
  pd.sample_weight = {dw.get(), w.size()};
  try {
    fit(dclean.get(), n, d, pd);
    FAIL() << "device weights that need rescaling were accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("sample_weight in GPU memory would need rescaling"),
              std::string::npos) << e.what();
  }
  pd.sample_weight = nullptr;
  EXPECT_NO_THROW(fit(dclean.get(), n, d, pd));
}

TEST_F(CudaFit, NonFiniteDeviceDataIsRejected) {
  const std::int64_t n = 1000, d = 4;
  auto x = make_data<double>(n, d, Shape::Uniform, 40);
  x[7 * d + 2] = std::numeric_limits<double>::quiet_NaN();
  x[9 * d + 1] = std::numeric_limits<double>::infinity();
  TestDeviceArray<double> dx(x);
  ASSERT_NE(dx.get(), nullptr);
  Params<double> p;
  p.k = 3;
  p.backend = Backend::Cuda;
  try {
    fit(dx.get(), n, d, p);
    FAIL() << "NaN in device data was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("NaN at row 7, column 2"), std::string::npos) << e.what();
  }
  // Weights on the device: negative, then all zero.
  const auto clean = make_data<double>(n, d, Shape::Uniform, 41);
  TestDeviceArray<double> dclean(clean);
  std::vector<double> w(static_cast<std::size_t>(n), 1.0);
  w[3] = -2;
  TestDeviceArray<double> dw(w);
  p.sample_weight = {dw.get(), w.size()};
  try {
    fit(dclean.get(), n, d, p);
    FAIL() << "a negative device weight was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("sample_weight[3]"), std::string::npos) << e.what();
  }
  std::vector<double> zeros(static_cast<std::size_t>(n), 0.0);
  TestDeviceArray<double> dz(zeros);
  p.sample_weight = {dz.get(), zeros.size()};
  EXPECT_THROW(fit(dclean.get(), n, d, p), Error);
  // The library still works afterwards.
  p.sample_weight = nullptr;
  EXPECT_NO_THROW(fit(dclean.get(), n, d, p));
}

TEST_F(CudaFit, OutOfMemoryIsACleanErrorAndTheLibraryRecovers) {
  // Leave about 256 MiB free, then ask for a fit whose data alone needs 512 MiB more.
  std::size_t free_b = 0, total_b = 0;
  ASSERT_CUDA(cudaMemGetInfo(&free_b, &total_b));
  const std::size_t keep = std::size_t{256} << 20;
  void* hog = nullptr;
  std::size_t hog_bytes = free_b > keep ? free_b - keep : 0;
  while (hog_bytes > 0 && cudaMalloc(&hog, hog_bytes) != cudaSuccess) {
    (void)cudaGetLastError();
    hog = nullptr;
    hog_bytes -= std::min(hog_bytes, std::size_t{64} << 20);
  }
  ASSERT_NE(hog, nullptr) << "could not fill device memory";
  ASSERT_CUDA(cudaMemGetInfo(&free_b, &total_b));
  ASSERT_LT(free_b, std::size_t{2} << 30) << "device memory did not fill up";
  const std::int64_t d = 64;
  const std::int64_t n = static_cast<std::int64_t>((free_b + (std::size_t{512} << 20)) / (d * 4));
  std::vector<float> x(static_cast<std::size_t>(n * d), 1.0f);
  x[0] = 2.0f;
  Params<float> p;
  p.k = 2;
  p.init = Init::Random;
  p.backend = Backend::Cuda;
  p.max_iter = 2;
  // When one streamed chunk fits in what is left (the device chunk rule), the fit streams the
  // host data through the GPU instead (README, GPU streaming); else Cuda's clean allocation
  // error and Auto's CPU fallback, each saying why.
  const detail::stream::CudaStreamDevice dev = detail::stream::cuda_stream_device();
  const bool streams = dev.usable && detail::stream::cuda_stream_chunk_blocks(
                                         n, d, 2, sizeof(float), false, dev.free_bytes,
                                         dev.sm_count) > 0;
  const auto said = [](const Result<float>& r, const char* what) {
    for (const std::string& w : r.warnings)
      if (w.find("does not fit in the GPU's free memory") != std::string::npos &&
          w.find(what) != std::string::npos)
        return true;
    return false;
  };
  try {
    const auto rc = fit(x.data(), n, d, p);
    if (!streams) ADD_FAILURE() << "a fit larger than free memory succeeded";
    EXPECT_EQ(rc.backend, Backend::Cuda);
    EXPECT_TRUE(said(rc, "the data streams through the GPU")) << "streamed without a warning";
  } catch (const Error& e) {
    EXPECT_FALSE(streams) << "one chunk fits, but the fit failed: " << e.what();
    EXPECT_NE(std::string(e.what()).find("allocation"), std::string::npos) << e.what();
  }
  // Auto sees it does not fit and streams or falls back to the CPU instead of failing, and
  // says why.
  std::string why;
  EXPECT_FALSE(detail::cuda_working_set_fits(n, d, 2, sizeof(float), false, &why));
  EXPECT_NE(why.find("does not fit in the GPU's free memory"), std::string::npos) << why;
  {
    Params<float> pa = p;
    pa.backend = Backend::Auto;
    pa.max_iter = 1;
    const auto ra = fit(x.data(), n, d, pa);
    EXPECT_EQ(ra.backend, streams ? Backend::Cuda : Backend::Cpu);
    EXPECT_TRUE(said(ra, streams ? "the data streams through the GPU" : "using the CPU backend"))
        << "Auto moved off the in-memory GPU fit without a warning";
  }
  if (hog) ASSERT_CUDA(cudaFree(hog));
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
  const auto small = make_data<float>(1000, 4, Shape::Blobs, 50, 3);
  p.k = 3;
  const auto r = fit(small.data(), 1000, 4, p);
  EXPECT_EQ(r.backend, Backend::Cuda);
  EXPECT_GT(r.n_iter, 0);
}

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

TEST(CudaAvailability, ReasonIsGivenWhenUnavailable) {
  std::string why;
  const bool ok = cuda_available(&why);
  if (ok) {
    int major = 0, device = 0;
    ASSERT_CUDA(cudaGetDevice(&device));
    ASSERT_CUDA(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
    EXPECT_GE(major, 8);
    Params<float> p;
    p.k = 2;
    const std::vector<float> x = {0, 0, 1, 1, 10, 10, 11, 11};
    EXPECT_EQ(fit(x.data(), 4, 2, p).backend, Backend::Cuda);  // Auto picks the GPU
  } else {
    // Without a driver every runtime call keeps failing, so there is no error state to check.
    EXPECT_FALSE(why.empty());
    EXPECT_FALSE(detail::is_device_pointer(&why));
    EXPECT_THROW(detail::make_cuda_engine(DataView<float>{}), Error);
    GTEST_SKIP() << why;
  }
}

}  // namespace
}  // namespace kmeans
