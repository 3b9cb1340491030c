// SPDX-License-Identifier: Apache-2.0
// The plain host oracle of the canonical sum order that the CPU and CUDA engines share
// (src/cpu_accumulate.hpp, src/cuda/shard.hpp): dense loops over every sub-tile and leaf, then
// every leaf pushed onto tree_sum.hpp's NodeStack; and order-sensitive leaf values with their
// NodeStack, for the node-merge tests. Call canonical_leaf_rows / canonical_nodes only from
// files built with -ffp-contract=off, so that their products stay unfused.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "tree_sum.hpp"

namespace kmeans_test {

/// A pass's inputs for the canonical-order tests: n x d data, n weights, k x d centroids.
template <class T>
struct CanonProblem {
  std::int64_t n = 0, d = 0;
  int k = 0;
  std::vector<T> x, w, c;
};

/// n x d values whose sums depend on their order (magnitudes 2^-12 .. 2^12 on an offset of up to
/// 8) into x and n weights of varied magnitudes into w, drawn from gen.
template <class T>
void order_sensitive_data(std::mt19937_64& gen, std::int64_t n, std::int64_t d,
                          std::vector<T>& x, std::vector<T>& w) {
  std::uniform_real_distribution<double> u(-1, 1);
  std::uniform_int_distribution<int> mag(-12, 12);
  x.resize(static_cast<std::size_t>(n * d));
  for (auto& v : x) v = static_cast<T>(std::ldexp(u(gen), mag(gen)) + 8 * u(gen));
  w.resize(static_cast<std::size_t>(n));
  for (auto& v : w) v = static_cast<T>(std::ldexp(1 + u(gen), mag(gen) / 4));
}

/// A CanonProblem with order-sensitive data and weights from gen; the centroids left empty.
template <class T>
CanonProblem<T> order_sensitive_problem(std::mt19937_64& gen, std::int64_t n, std::int64_t d,
                                        int k) {
  CanonProblem<T> p;
  p.n = n;
  p.d = d;
  p.k = k;
  order_sensitive_data(gen, n, d, p.x, p.w);
  return p;
}

/// Leaf rows of k x d sums, k weights and the SSE (width k * d + k + 1) of n points with labels
/// and distances dist (w: weights, or null): each 256-point sub-tile summed in point order from
/// +0.0, added to its 4096-point leaf from +0.0 in sub-tile order.
template <class T>
std::vector<double> canonical_leaf_rows(const T* x, const T* w, const std::int32_t* labels,
                                        const T* dist, std::int64_t n, std::int64_t d, int k) {
  constexpr std::int64_t kLeaf = 4096, kSub = 256;
  const std::int64_t W = k * d + k + 1, leaves = (n + kLeaf - 1) / kLeaf;
  std::vector<double> rows(static_cast<std::size_t>(leaves * W), 0.0);
  std::vector<double> sub(static_cast<std::size_t>(W));
  for (std::int64_t l = 0; l < leaves; ++l) {
    double* leaf = rows.data() + l * W;
    for (std::int64_t s = 0; s < kLeaf / kSub; ++s) {
      std::fill(sub.begin(), sub.end(), 0.0);
      const std::int64_t p0 = l * kLeaf + s * kSub;
      for (std::int64_t i = p0; i < std::min(n, p0 + kSub); ++i) {
        const double wi = w ? static_cast<double>(w[i]) : 1.0;
        const int c = labels[i];
        for (std::int64_t j = 0; j < d; ++j)
          sub[c * d + j] = sub[c * d + j] + wi * static_cast<double>(x[i * d + j]);
        sub[k * d + c] = sub[k * d + c] + wi;
        sub[W - 1] = sub[W - 1] + wi * static_cast<double>(dist[i]);
      }
      for (std::int64_t e = 0; e < W; ++e) leaf[e] = leaf[e] + sub[e];
    }
  }
  return rows;
}

/// Order-sensitive leaf values (blocks x width): random signs, mantissas and exponents over
/// 2^-30 .. 2^30.
inline std::vector<double> leaf_values(std::int64_t blocks, std::int64_t width,
                                       std::mt19937_64& g) {
  std::uniform_real_distribution<double> m(1.0, 2.0);
  std::uniform_int_distribution<int> ex(-30, 30), sign(0, 1);
  std::vector<double> v(static_cast<std::size_t>(blocks * width));
  for (double& x : v) x = std::ldexp(m(g), ex(g)) * (sign(g) ? -1.0 : 1.0);
  return v;
}

/// The canonical node values of blocks [a, b) of such leaves: NodeStack over them.
inline kmeans::detail::tree::NodeStack stack_of(const std::vector<double>& leaves,
                                                std::int64_t width, std::int64_t a,
                                                std::int64_t b) {
  kmeans::detail::tree::NodeStack s(width);
  for (std::int64_t i = a; i < b; ++i) s.push({i, 1}, leaves.data() + i * width);
  return s;
}

/// The canonical nodes of those points as the shard whose first leaf is global block `fb`.
template <class T>
kmeans::detail::tree::NodeStack canonical_nodes(const T* x, const T* w,
                                                const std::int32_t* labels, const T* dist,
                                                std::int64_t n, std::int64_t d, int k,
                                                std::int64_t fb) {
  const std::int64_t W = k * d + k + 1;
  const std::vector<double> rows = canonical_leaf_rows(x, w, labels, dist, n, d, k);
  kmeans::detail::tree::NodeStack stack(W);
  for (std::int64_t l = 0; l * 4096 < n; ++l) stack.push({fb + l, 1}, rows.data() + l * W);
  return stack;
}

}  // namespace kmeans_test
