// SPDX-License-Identifier: Apache-2.0
// The small fits on which the device Lloyd loop is checked against the host loop (host
// emulation: test_device_loop_host.cu; GPU: test_cuda_devloop.cpp): an empty cluster repaired,
// max_iter hit, tol = 0, convergence at iteration 1 (k = n), weights with zeros, d = 1, k = 1.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace kmeans_test {

struct LoopCase {
  std::string name;
  std::int64_t n, d;
  int k, max_iter;
  double tol;        ///< relative (Params::tol)
  bool weights;      ///< random weights, some of them 0
  bool empty;        ///< one initial centroid far from every point: empty at the first pass
  bool points_init;  ///< the first k points as the initial centroids (else random in the box)
};

inline std::vector<LoopCase> loop_cases() {
  return {
      {"classic 4000x3 k=4", 4000, 3, 4, 300, 1e-4, false, false, false},
      {"empty cluster repaired", 2000, 2, 5, 300, 1e-4, false, true, false},
      {"two empty clusters, weights", 1500, 3, 6, 300, 0.0, true, true, false},
      {"max_iter hit", 3001, 4, 8, 3, 0.0, false, false, false},
      {"tol = 0, long run", 5000, 2, 16, 300, 0.0, false, false, false},
      {"weights with zeros", 2500, 5, 7, 300, 1e-4, true, false, false},
      {"d = 1", 777, 1, 3, 300, 1e-4, false, false, false},
      {"k = 1", 1000, 3, 1, 300, 1e-4, false, false, false},
      {"k = n: converged at iteration 1", 40, 3, 40, 300, 0.0, false, false, true},
      {"max_iter = 1", 600, 2, 4, 1, 1e-4, false, false, false},
      {"batch boundary: max_iter = 16", 900, 2, 9, 16, 0.0, false, false, false},
      {"batch boundary: max_iter = 17", 900, 2, 9, 17, 0.0, false, false, false},
      {"k = 64, d = 8", 4096, 8, 64, 300, 1e-4, false, true, false},
  };
}

/// Blobs around k / 2 + 1 centres (so some clusters compete), the initial centroids and the
/// weights of `c` (empty when unweighted).
template <class T>
void make_loop_case(const LoopCase& c, std::uint32_t seed, std::vector<T>& x,
                    std::vector<T>& init, std::vector<T>& w) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<double> u(-1, 1);
  std::normal_distribution<double> g(0, 0.15);
  const int centres = c.k / 2 + 1;
  std::vector<double> mu(static_cast<std::size_t>(centres * c.d));
  for (auto& v : mu) v = 4 * u(gen);
  x.resize(static_cast<std::size_t>(c.n * c.d));
  for (std::int64_t i = 0; i < c.n; ++i) {
    const auto b = static_cast<std::int64_t>(gen() % static_cast<unsigned>(centres));
    for (std::int64_t j = 0; j < c.d; ++j)
      x[i * c.d + j] = static_cast<T>(mu[b * c.d + j] + g(gen));
  }
  if (c.n >= 4 && !c.points_init)  // a duplicate point: distances tie
    for (std::int64_t j = 0; j < c.d; ++j) x[3 * c.d + j] = x[j];
  init.resize(static_cast<std::size_t>(c.k * c.d));
  for (std::int64_t i = 0; i < c.k * c.d; ++i)
    init[i] = c.points_init ? x[i] : static_cast<T>(4 * u(gen));
  if (c.empty) {
    for (std::int64_t j = 0; j < c.d; ++j) init[j] = static_cast<T>(1000);
    if (c.k >= 4)
      for (std::int64_t j = 0; j < c.d; ++j) init[3 * c.d + j] = static_cast<T>(-1000);
  }
  w.clear();
  if (c.weights) {
    w.resize(static_cast<std::size_t>(c.n));
    for (auto& v : w) v = gen() % 5 == 0 ? T(0) : static_cast<T>(0.5 + u(gen) * 0.4);
  }
}

}  // namespace kmeans_test
