// SPDX-License-Identifier: Apache-2.0
// Shared by the streamed-fit tests (test_stream.cpp on the CPU, test_cuda_gpustream.cpp on the
// GPU): clustered data, and a streamed result checked against the in-memory one bit for bit.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "kmeans/kmeans.hpp"

namespace kmeans_test {

/// n x d points around `centres` random centres (spread 10, noise 1), seeded; with
/// duplicate_every = p > 0 every p-th point (i % p == p - 1) is a copy of the one before.
template <class T>
std::vector<T> clustered(std::int64_t n, std::int64_t d, int centres, std::uint64_t seed,
                         std::int64_t duplicate_every = 0) {
  std::mt19937_64 g(seed);
  std::normal_distribution<double> noise(0.0, 1.0);
  std::uniform_real_distribution<double> spread(-10.0, 10.0);
  std::vector<double> c(static_cast<std::size_t>(centres * d));
  for (double& v : c) v = spread(g);
  std::vector<T> x(static_cast<std::size_t>(n * d));
  for (std::int64_t i = 0; i < n; ++i) {
    const auto ci = static_cast<std::int64_t>(g() % static_cast<std::uint64_t>(centres));
    const bool copy = duplicate_every > 0 && i % duplicate_every == duplicate_every - 1;
    for (std::int64_t j = 0; j < d; ++j)
      x[i * d + j] = copy ? x[(i - 1) * d + j] : static_cast<T>(c[ci * d + j] + noise(g));
  }
  return x;
}

template <class T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}
inline bool same_bits(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }

/// The result fields a streamed fit must share with the in-memory one, bit for bit: centroids,
/// labels, inertia, SSE history, n_iter, convergence, relocations, cluster sizes.
template <class T>
void expect_same_result(const kmeans::Result<T>& mem, const kmeans::Result<T>& st) {
  EXPECT_TRUE(same_bits(mem.centroids, st.centroids)) << "centroids differ";
  EXPECT_EQ(mem.labels, st.labels);
  EXPECT_TRUE(same_bits(mem.inertia, st.inertia)) << mem.inertia << " vs " << st.inertia;
  EXPECT_TRUE(same_bits(mem.sse_history, st.sse_history)) << "sse_history differs";
  EXPECT_EQ(mem.n_iter, st.n_iter);
  EXPECT_EQ(mem.converged, st.converged);
  EXPECT_EQ(mem.n_empty_relocated, st.n_empty_relocated);
  EXPECT_TRUE(same_bits(mem.cluster_sizes, st.cluster_sizes)) << "cluster_sizes differ";
}

}  // namespace kmeans_test
