// SPDX-License-Identifier: Apache-2.0
// What the GPU test files of test_cuda share: the skip-without-a-GPU macro, device arrays owned by
// a test, seeded data and centroids, the tolerances against the reference backend.
#pragma once

#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "engine.hpp"
#include "cuda_skip.hpp"
#include "kmeans/kmeans.hpp"

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

}  // namespace
}  // namespace kmeans
