// SPDX-License-Identifier: Apache-2.0
// The plain-loop oracle of mini-batch k-means (scikit-learn's MiniBatchKMeans written out) and test data.
// Include it only where fused multiply-adds are off (tests/CMakeLists.txt): it must round as the
// Reference backend does.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <vector>

#include "kmeans/kmeans.hpp"
#include "minibatch.hpp"

namespace kmeans_test {

using kmeans::Params;
using kmeans::detail::SplitMix64;

/// n points of d features around `centres` blobs far apart (spread `width`, LCG noise), with
/// every `dup`-th row a copy of the previous one when dup > 0.
template <class T>
std::vector<T> blobs(std::int64_t n, std::int64_t d, int centres, double width, int dup = 0,
                     std::uint64_t seed = 7) {
  std::uint64_t s = seed;
  auto u = [&]() {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<double>(s >> 11) * 0x1.0p-53 - 0.5;
  };
  std::vector<T> x(static_cast<std::size_t>(n * d));
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int64_t b = i % centres;
    for (std::int64_t j = 0; j < d; ++j)
      x[i * d + j] = static_cast<T>(20.0 * static_cast<double>((b * 7 + j * 3) % 11) + width * u());
    if (dup > 0 && i > 0 && i % dup == 0)
      std::copy_n(x.begin() + (i - 1) * d, d, x.begin() + i * d);
  }
  return x;
}

/// What the oracle computes: the fields a mini-batch fit must reproduce.
template <class T>
struct Expected {
  std::vector<T> centroids;
  std::vector<double> sse_history;
  std::vector<double> shifts;  ///< each step's total squared centre change
  int n_steps = 0;
  bool converged = false;
  std::vector<std::int32_t> labels;
  double inertia = 0;
  std::vector<double> counts;
};

/// Nearest centre of x (ties: the lowest index) and its squared distance, in double.
template <class T>
int nearest(const T* x, const std::vector<T>& c, int k, std::int64_t d, double& dist) {
  int best = 0;
  dist = std::numeric_limits<double>::infinity();
  for (int j = 0; j < k; ++j) {
    double s = 0;
    for (std::int64_t f = 0; f < d; ++f) {
      const double t = static_cast<double>(x[f]) - static_cast<double>(c[j * d + f]);
      s += t * t;
    }
    if (s < dist) {
      dist = s;
      best = j;
    }
  }
  return best;
}

/// The oracle: scikit-learn's MiniBatchKMeans written out in plain loops over the rows, from
/// Init::Array centroids. Fit mode (batches empty): batches of min(batch_size, n) rows drawn
/// with the library's draw_indices from SplitMix64(seed), max_iter * n / batch steps with early
/// stopping. Stream mode: one step per given batch (row indices into x), no stopping, the
/// generator (seeded by `seed`) used by reassignment only, counts starting from `counts`.
template <class T>
Expected<T> oracle(const std::vector<T>& x, const std::vector<T>& w, std::int64_t n,
                   std::int64_t d, const Params<T>& p, double tol,
                   const std::vector<std::vector<std::int64_t>>& batches = {},
                   std::vector<double> counts = {}) {
  const int k = p.k;
  const bool stream = !batches.empty();
  Expected<T> out;
  std::vector<T> c(p.init_centroids.data(), p.init_centroids.data() + k * d);
  if (counts.empty()) counts.assign(static_cast<std::size_t>(k), 0.0);
  SplitMix64 g(p.seed);
  const std::int64_t nb = stream ? 0 : std::min<std::int64_t>(p.batch_size, n);
  const std::int64_t steps = stream ? static_cast<std::int64_t>(batches.size())
                                    : std::int64_t{p.max_iter} * n / nb;
  std::int64_t since = 0;
  double ewa = 0, ewa_min = 0;
  int no_improvement = 0;
  for (std::int64_t step = 0; step < steps; ++step) {
    std::vector<std::int64_t> idx;
    if (stream) {
      idx = batches[static_cast<std::size_t>(step)];
    } else {
      idx.resize(static_cast<std::size_t>(nb));
      kmeans::detail::draw_indices(g, n, nb, idx.data());
    }
    const auto b = static_cast<std::int64_t>(idx.size());
    since += b;
    bool reassign = false;
    if (std::count(counts.begin(), counts.end(), 0.0) > 0 || since >= 10 * k) {
      since = 0;
      reassign = true;
    }
    std::vector<double> sums(static_cast<std::size_t>(k * d), 0.0), bw(k, 0.0);
    double sse = 0;
    for (std::int64_t i : idx) {
      double dist = 0;
      const int l = nearest(x.data() + i * d, c, k, d, dist);
      const double wi = w.empty() ? 1.0 : static_cast<double>(w[i]);
      sse += wi * dist;
      for (std::int64_t f = 0; f < d; ++f) sums[l * d + f] += wi * static_cast<double>(x[i * d + f]);
      bw[l] += wi;
    }
    const std::vector<T> old = c;
    for (int j = 0; j < k; ++j) {
      if (!(bw[j] > 0)) continue;
      const double before = counts[j];
      counts[j] += bw[j];
      const double inv = 1.0 / counts[j];
      for (std::int64_t f = 0; f < d; ++f)
        c[j * d + f] = static_cast<T>((static_cast<double>(c[j * d + f]) * before + sums[j * d + f]) * inv);
    }
    if (reassign && p.reassignment_ratio > 0) {
      const double top = *std::max_element(counts.begin(), counts.end());
      std::vector<int> flagged;
      for (int j = 0; j < k; ++j)
        if (counts[j] < p.reassignment_ratio * top && counts[j] != top) flagged.push_back(j);
      if (2 * static_cast<std::int64_t>(flagged.size()) > b) {  // keep the b / 2 lowest counts
        std::vector<int> order(k);
        std::iota(order.begin(), order.end(), 0);
        std::stable_sort(order.begin(), order.end(), [&](int a, int z) { return counts[a] < counts[z]; });
        std::vector<int> keep;
        for (int j : flagged)
          if (std::find(order.begin(), order.begin() + b / 2, j) != order.begin() + b / 2) keep.push_back(j);
        flagged = keep;
      }
      const auto m = static_cast<std::int64_t>(flagged.size());
      if (m > 0) {
        const auto chosen = kmeans::detail::choose_distinct(g, b, m);
        for (std::int64_t t = 0; t < m; ++t)
          for (std::int64_t f = 0; f < d; ++f)
            c[flagged[t] * d + f] = x[idx[chosen[t]] * d + f];
      }
      double low = std::numeric_limits<double>::infinity();
      for (int j = 0; j < k; ++j)
        if (std::find(flagged.begin(), flagged.end(), j) == flagged.end()) low = std::min(low, counts[j]);
      for (int j : flagged) counts[j] = low;
    }
    double shift = 0;
    for (std::size_t i = 0; i < c.size(); ++i) {
      const double t = static_cast<double>(c[i]) - static_cast<double>(old[i]);
      shift += t * t;
    }
    out.sse_history.push_back(sse);
    out.shifts.push_back(shift);
    out.n_steps = static_cast<int>(step + 1);
    if (stream || step == 0) continue;
    const double alpha = std::min(1.0, nb * 2.0 / (n + 1.0));
    ewa = step == 1 ? sse / nb : ewa * (1 - alpha) + sse / nb * alpha;
    if (tol > 0 && shift <= tol) {
      out.converged = true;
      break;
    }
    if (step == 1 || ewa < ewa_min) {
      no_improvement = 0;
      ewa_min = ewa;
    } else if (++no_improvement >= p.max_no_improvement && p.max_no_improvement > 0) {
      out.converged = true;
      break;
    }
  }
  out.centroids = c;
  out.counts = counts;
  for (std::int64_t i = 0; i < n; ++i) {
    double dist = 0;
    out.labels.push_back(nearest(x.data() + i * d, c, k, d, dist));
    out.inertia += (w.empty() ? 1.0 : static_cast<double>(w[i])) * dist;
  }
  return out;
}

/// Mean over features of the population variance of each: Params::tol's scale.
template <class T>
double feature_variance(const std::vector<T>& x, std::int64_t n, std::int64_t d) {
  double total = 0;
  for (std::int64_t f = 0; f < d; ++f) {
    double mean = 0, var = 0;
    for (std::int64_t i = 0; i < n; ++i) mean += static_cast<double>(x[i * d + f]);
    mean /= static_cast<double>(n);
    for (std::int64_t i = 0; i < n; ++i) {
      const double t = static_cast<double>(x[i * d + f]) - mean;
      var += t * t;
    }
    total += var / static_cast<double>(n);
  }
  return total / static_cast<double>(d);
}

}  // namespace kmeans_test
