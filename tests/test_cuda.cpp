// SPDX-License-Identifier: Apache-2.0
// GPU tests of Backend::Cuda (ctest label gpu): single passes of every path against the Reference
// backend on many shapes, data far from the origin, the availability probe. Each test skips
// without a usable device; test_cuda_fit.cpp and test_cuda_reuse.cpp hold the fits and reuse.
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
