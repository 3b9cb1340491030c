// SPDX-License-Identifier: Apache-2.0
// GPU tests of spherical k-means (Metric::Cosine, ctest label gpu): Backend::Cuda against the
// Reference backend, device-pointer input (normalised by the device kernel, cuda/sphere.cu)
// against host input bit for bit, and its errors. Each test skips without a usable device.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "kmeans/kmeans.hpp"
#include "cuda_skip.hpp"
#include "test_helpers.hpp"

namespace {

using kmeans::Backend;
using kmeans::Metric;

/// Device memory owned by a test (null when the copy failed: the test then fails).
template <class T>
class DeviceCopy {
 public:
  explicit DeviceCopy(const std::vector<T>& h) {
    if (cudaMalloc(&p_, h.size() * sizeof(T)) != cudaSuccess ||
        cudaMemcpy(p_, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice) != cudaSuccess) {
      (void)cudaGetLastError();
      if (p_) (void)cudaFree(p_);
      p_ = nullptr;
    }
  }
  ~DeviceCopy() {
    if (p_) (void)cudaFree(p_);
  }
  DeviceCopy(const DeviceCopy&) = delete;
  DeviceCopy& operator=(const DeviceCopy&) = delete;
  const T* get() const { return p_; }

 private:
  T* p_ = nullptr;
};

/// n x d rows around k random directions, each at a random norm (portable LCG).
template <class T>
std::vector<T> directions(std::int64_t n, std::int64_t d, int k, std::uint64_t seed) {
  std::uint64_t s = seed;
  auto u = [&]() {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<double>(s >> 11) * 0x1.0p-53 - 0.5;
  };
  std::vector<double> c(static_cast<std::size_t>(k * d));
  for (double& v : c) v = u();
  std::vector<T> x(static_cast<std::size_t>(n * d));
  for (std::int64_t i = 0; i < n; ++i) {
    const double scale = 1.0 + 3.0 * (u() + 0.5);
    for (std::int64_t j = 0; j < d; ++j)
      x[i * d + j] = static_cast<T>(scale * (c[(i % k) * d + j] + 0.3 * u()));
  }
  return x;
}

template <class T>
void check_against_reference(std::int64_t n, std::int64_t d, int k) {
  SCOPED_TRACE("n = " + std::to_string(n) + ", d = " + std::to_string(d));
  const std::vector<T> x = directions<T>(n, d, k, 17 + static_cast<std::uint64_t>(d));
  kmeans::Params<T> p;
  p.k = k;
  p.metric = Metric::Cosine;
  p.seed = 3;
  p.backend = Backend::Reference;
  const auto ref = kmeans::fit(x.data(), n, d, p);
  p.backend = Backend::Cuda;
  const auto gpu = kmeans::fit(x.data(), n, d, p);
  EXPECT_EQ(gpu.backend, Backend::Cuda);
  EXPECT_EQ(gpu.labels, ref.labels);
  EXPECT_EQ(gpu.n_iter, ref.n_iter);
  EXPECT_NEAR(gpu.inertia, ref.inertia, (sizeof(T) == 4 ? 1e-5 : 1e-11) * ref.inertia);
  for (std::size_t i = 0; i < ref.centroids.size(); ++i)
    ASSERT_NEAR(double(gpu.centroids[i]), double(ref.centroids[i]), sizeof(T) == 4 ? 1e-6 : 1e-13);

  // Device data: the kernel's unit rows are the host's, so the fit is the same bits.
  DeviceCopy<T> dx(x);
  ASSERT_NE(dx.get(), nullptr);
  kmeans_test::expect_same_fit(kmeans::fit(dx.get(), n, d, p), gpu);
  // predict / transform / score on device data equal host data's.
  const T* c = gpu.centroids.data();
  const auto uk = static_cast<std::size_t>(k);
  EXPECT_EQ(kmeans::predict(dx.get(), n, d, c, uk, Metric::Cosine, Backend::Cuda), gpu.labels);
  EXPECT_EQ(kmeans::transform(dx.get(), n, d, c, uk, Metric::Cosine, Backend::Cuda),
            kmeans::transform(x.data(), n, d, c, uk, Metric::Cosine, Backend::Cuda));
  EXPECT_EQ(kmeans::score(dx.get(), n, d, c, uk, Metric::Cosine, {}, Backend::Cuda),
            kmeans::score(x.data(), n, d, c, uk, Metric::Cosine, {}, Backend::Cuda));
}

TEST(CudaCosine, MatchesReferenceFloat384) {
  KMEANS_SKIP_WITHOUT_GPU();
  check_against_reference<float>(5000, 384, 8);
}

TEST(CudaCosine, MatchesReferenceFloat768) {
  KMEANS_SKIP_WITHOUT_GPU();
  check_against_reference<float>(3000, 768, 6);
}

TEST(CudaCosine, MatchesReferenceDouble) {
  KMEANS_SKIP_WITHOUT_GPU();
  check_against_reference<double>(4500, 33, 5);
  check_against_reference<double>(300, 1, 2);  // d = 1: two directions
}

TEST(CudaCosine, DeviceZeroRowsAndNaNAreNamed) {
  KMEANS_SKIP_WITHOUT_GPU();
  std::vector<float> x = directions<float>(200, 16, 3, 5);
  std::fill(x.begin() + 123 * 16, x.begin() + 124 * 16, 0.0f);
  kmeans::Params<float> p;
  p.k = 3;
  p.metric = Metric::Cosine;
  p.backend = Backend::Cuda;
  {
    DeviceCopy<float> dx(x);
    ASSERT_NE(dx.get(), nullptr);
    kmeans_test::expect_error([&] { kmeans::fit(dx.get(), 200, 16, p); },
                              "metric = cosine: data row 123 has zero norm");
  }
  x[40 * 16 + 2] = std::nanf("");
  DeviceCopy<float> dn(x);
  ASSERT_NE(dn.get(), nullptr);
  kmeans_test::expect_error([&] { kmeans::fit(dn.get(), 200, 16, p); }, "NaN");
}

}  // namespace
