// SPDX-License-Identifier: Apache-2.0
// GPU tests of whole Backend::Cuda fits (ctest label gpu): every path and mini-batch against the
// Reference backend, device-pointer input, determinism, graph recapture, error paths.
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

}  // namespace
}  // namespace kmeans
