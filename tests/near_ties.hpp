// SPDX-License-Identifier: Apache-2.0
// Near-tie test data for the assignment paths' exact rankings (host tests and GPU tests alike).
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

namespace kmeans_test {

/// Near ties: each point p sits on the bisector of two centroids a != b, c_a = p + v and
/// c_b = p - v with v_j a random multiple of ulp(p_j), so both are exact and the direct distances
/// tie exactly (the lowest index must win); in two of three points c_b is then nudged by one ulp
/// in one coordinate (a tie broken by one rounding). The other centroids lie within 4 spreads.
/// Far from the origin with a small spread, an uncentred ranking would lose every digit.
template <class T>
void make_near_ties(int d, int k, int n, double offset, double spread, std::uint32_t seed,
                    std::vector<T>& x, std::vector<T>& c) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<double> u(-1, 1);
  std::uniform_int_distribution<int> pick(0, k - 1), mult(1, 64);
  std::uniform_real_distribution<double> around(offset - 4 * spread, offset + 4 * spread);
  c.resize(static_cast<std::size_t>(k) * d);
  for (auto& e : c) e = static_cast<T>(around(gen));
  x.assign(static_cast<std::size_t>(n) * d, T(0));
  const T inf = std::numeric_limits<T>::infinity();
  for (int i = 0; i < n; ++i) {
    // The pair is rebuilt around point i; later points overwrite earlier pairs, and each point
    // is checked against the final centroids, so some ties survive and some do not.
    int a = pick(gen), b = pick(gen);
    if (a == b) b = (a + 1) % k;
    for (int j = 0; j < d; ++j) {
      const T p = static_cast<T>(offset + spread * u(gen));
      const T ulp = std::nextafter(p, inf) - p;
      const T v = static_cast<T>(mult(gen)) * ulp;
      x[static_cast<std::size_t>(i) * d + j] = p;
      c[static_cast<std::size_t>(a) * d + j] = p + v;
      c[static_cast<std::size_t>(b) * d + j] = p - v;
    }
    const int nudge = i % 3;  // 0: exact tie, 1: up one ulp, 2: down one ulp
    if (nudge != 0) {
      T& e = c[static_cast<std::size_t>(b) * d + static_cast<std::size_t>(i % d)];
      e = std::nextafter(e, nudge == 1 ? inf : -inf);
    }
  }
}

}  // namespace kmeans_test
