// SPDX-License-Identifier: Apache-2.0
// Deterministic test data shared by the host test suites (portable: no library RNG).
#pragma once

#include <cstdint>
#include <vector>

namespace kmeans_test {

/// Squared Euclidean distance of two d-vectors, accumulated in double.
template <class T>
double exact_dist(const T* a, const T* b, std::int64_t d) {
  double s = 0;
  for (std::int64_t j = 0; j < d; ++j) {
    const double t = static_cast<double>(a[j]) - static_cast<double>(b[j]);
    s += t * t;
  }
  return s;
}

/// Four far-apart 2-D blobs centred at (0,0), (100,0), (0,100), (100,100), `per_blob` points
/// each, with LCG noise uniform in [-width/2, width/2) per coordinate.
template <class T = double>
std::vector<T> four_blobs(int per_blob, std::uint64_t seed, double width = 1.0) {
  std::vector<T> x;
  const double centers[4][2] = {{0, 0}, {100, 0}, {0, 100}, {100, 100}};
  std::uint64_t s = seed;
  auto u = [&]() {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<double>(s >> 11) * 0x1.0p-53 - 0.5;
  };
  for (int b = 0; b < 4; ++b)
    for (int i = 0; i < per_blob; ++i) {
      const double dx = width * u();
      const double dy = width * u();
      x.push_back(static_cast<T>(centers[b][0] + dx));
      x.push_back(static_cast<T>(centers[b][1] + dy));
    }
  return x;
}

}  // namespace kmeans_test
