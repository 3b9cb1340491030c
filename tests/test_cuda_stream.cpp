// SPDX-License-Identifier: Apache-2.0
// GPU tests of Options::cuda_stream (ctest label gpu): a fit of device data written on the
// caller's non-blocking stream waits for that write. Each test skips without a usable device.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "kmeans/kmeans.hpp"
#include "cuda_skip.hpp"
#include "test_helpers.hpp"

namespace {

using kmeans::Backend;

#define CUDA_OK(call) ASSERT_EQ((call), cudaSuccess) << #call

/// Holds the stream back for 200 ms, so that work queued after it is still pending when the
/// test calls fit: a fit that did not wait for the stream would read the poisoned buffer.
void CUDART_CB hold_stream(void*) { std::this_thread::sleep_for(std::chrono::milliseconds(200)); }

/// Device data poisoned with NaN bytes, then, on a non-blocking stream held back by
/// hold_stream, overwritten from pinned host memory with x: fit with cuda_stream = that stream
/// must see x (the same bits as the fit of host x), and never the NaN poison.
template <class T>
void fit_after_stream_write(kmeans::Metric metric) {
  const std::vector<T> x = kmeans_test::blobs<T>(1500, 11);  // 6000 x 2
  const std::size_t n = x.size() / 2, d = 2, bytes = x.size() * sizeof(T);
  kmeans::Params<T> p;
  p.k = 4;
  p.seed = 3;
  p.backend = Backend::Cuda;
  p.metric = metric;
  const kmeans::Result<T> want = kmeans::fit(x.data(), n, d, p);

  cudaStream_t s = nullptr;
  CUDA_OK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  T* dx = nullptr;
  T* pinned = nullptr;
  CUDA_OK(cudaMalloc(&dx, bytes));
  CUDA_OK(cudaMallocHost(&pinned, bytes));
  std::memcpy(pinned, x.data(), bytes);
  CUDA_OK(cudaMemset(dx, 0xFF, bytes));
  CUDA_OK(cudaDeviceSynchronize());
  CUDA_OK(cudaLaunchHostFunc(s, hold_stream, nullptr));
  CUDA_OK(cudaMemcpyAsync(dx, pinned, bytes, cudaMemcpyHostToDevice, s));
  p.cuda_stream = s;
  kmeans::Result<T> got;
  try {
    got = kmeans::fit(dx, n, d, p);
  } catch (const kmeans::Error& e) {
    ADD_FAILURE() << "the fit did not wait for the caller's stream: " << e.what();
  }
  (void)cudaStreamSynchronize(s);
  (void)cudaFree(dx);
  (void)cudaFreeHost(pinned);
  (void)cudaStreamDestroy(s);
  EXPECT_EQ(got.labels, want.labels);
  EXPECT_EQ(got.centroids, want.centroids);
  EXPECT_EQ(got.inertia, want.inertia);
}

TEST(CudaStream, FitWaitsForTheCallersStreamFloat) {
  KMEANS_SKIP_WITHOUT_GPU();
  fit_after_stream_write<float>(kmeans::Metric::Euclidean);
}

TEST(CudaStream, FitWaitsForTheCallersStreamDouble) {
  KMEANS_SKIP_WITHOUT_GPU();
  fit_after_stream_write<double>(kmeans::Metric::Euclidean);
}

TEST(CudaStream, CosineFitWaitsForTheCallersStream) {
  KMEANS_SKIP_WITHOUT_GPU();
  fit_after_stream_write<float>(kmeans::Metric::Cosine);
}

TEST(CudaStream, RefitOnOneObjectWaitsEachTime) {
  KMEANS_SKIP_WITHOUT_GPU();
  // The second fit rebinds the kept engine: the rebind must wait for the stream too.
  const std::vector<float> a = kmeans_test::blobs<float>(1000, 5);
  const std::vector<float> b = kmeans_test::blobs<float>(1000, 6);
  const std::size_t n = a.size() / 2, d = 2, bytes = a.size() * sizeof(float);
  kmeans::Params<float> p;
  p.k = 4;
  p.backend = Backend::Cuda;
  const kmeans::Result<float> want = kmeans::fit(b.data(), n, d, p);
  cudaStream_t s = nullptr;
  CUDA_OK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  float* dx = nullptr;
  float* pinned = nullptr;
  CUDA_OK(cudaMalloc(&dx, bytes));
  CUDA_OK(cudaMallocHost(&pinned, bytes));
  CUDA_OK(cudaMemcpy(dx, a.data(), bytes, cudaMemcpyHostToDevice));
  p.cuda_stream = s;
  kmeans::KMeans<float> km(p);
  km.fit(dx, n, d);
  std::memcpy(pinned, b.data(), bytes);
  CUDA_OK(cudaLaunchHostFunc(s, hold_stream, nullptr));
  CUDA_OK(cudaMemcpyAsync(dx, pinned, bytes, cudaMemcpyHostToDevice, s));
  km.fit(dx, n, d);
  (void)cudaStreamSynchronize(s);
  (void)cudaFree(dx);
  (void)cudaFreeHost(pinned);
  (void)cudaStreamDestroy(s);
  EXPECT_EQ(km.result().labels, want.labels);
  EXPECT_EQ(km.result().centroids, want.centroids);
}

}  // namespace
