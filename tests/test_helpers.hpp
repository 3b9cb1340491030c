// SPDX-License-Identifier: Apache-2.0
// GoogleTest helpers shared by the host test suites: the host backends, blob data, error-message
// and whole-result checks, and environment variables set for a scope (the internal hooks).
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "kmeans/kmeans.hpp"
#include "test_data.hpp"

namespace kmeans_test {

/// Sets an environment variable (an internal hook such as KMEANS_CPU_ISA) for the lifetime of
/// the object, then unsets it.
class EnvScope {
 public:
  EnvScope(const char* name, const std::string& value) : name_(name) {
    ::setenv(name, value.c_str(), 1);
  }
  ~EnvScope() { ::unsetenv(name_); }
  EnvScope(const EnvScope&) = delete;
  EnvScope& operator=(const EnvScope&) = delete;

 private:
  const char* name_;
};

/// KMEANS_CPU_ISA set to `isa` for the lifetime of the object.
class IsaScope : public EnvScope {
 public:
  explicit IsaScope(const std::string& isa) : EnvScope("KMEANS_CPU_ISA", isa) {}
};

/// The backends every host test runs on.
inline constexpr kmeans::Backend kHostBackends[] = {kmeans::Backend::Reference,
                                                    kmeans::Backend::Cpu};

/// Four well-separated Gaussian blobs in 2-D (four_blobs with width 3), per_blob points each.
template <class T = double>
std::vector<T> blobs(int per_blob, std::uint64_t seed) {
  return four_blobs<T>(per_blob, seed, 3.0);
}

/// Fails unless calling f raises kmeans::Error whose message contains `needle`.
template <class F>
void expect_error(F&& f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "expected kmeans::Error containing \"" << needle << "\"";
  } catch (const kmeans::Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos)
        << "message: " << e.what() << "\nexpected to contain: " << needle;
  }
}

/// Two results of the same fit: every field that is not a timing, bit for bit.
template <class T>
void expect_same_fit(const kmeans::Result<T>& a, const kmeans::Result<T>& b) {
  EXPECT_EQ(a.centroids, b.centroids);
  EXPECT_EQ(a.labels, b.labels);
  EXPECT_EQ(a.inertia, b.inertia);
  EXPECT_EQ(a.sse_history, b.sse_history);
  EXPECT_EQ(a.n_iter, b.n_iter);
  EXPECT_EQ(a.converged, b.converged);
  EXPECT_EQ(a.n_empty_relocated, b.n_empty_relocated);
  EXPECT_EQ(a.cluster_sizes, b.cluster_sizes);
  EXPECT_EQ(a.imbalance_history, b.imbalance_history);
  EXPECT_EQ(a.backend, b.backend);
  EXPECT_EQ(a.warnings, b.warnings);
}

}  // namespace kmeans_test
