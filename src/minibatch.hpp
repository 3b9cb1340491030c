// SPDX-License-Identifier: Apache-2.0
// Mini-batch k-means (scikit-learn's MiniBatchKMeans), the second driver beside Lloyd's: its draws, checks and steps.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

#include "engine.hpp"
#include "internal.hpp"

namespace kmeans::detail {

/// The random numbers of a mini-batch fit all come from one SplitMix64(seed) stream, in this
/// order: for Init::Array nothing before the steps; otherwise init_size validation indices
/// (draw_indices, only when n_init > 1), then per init run init_size subset indices (only when
/// init_size < n) and one next() that seeds the init. Then per step: batch_size batch indices
/// (draw_indices), and, when that step reassigns m centres, choose_distinct(batch_size, m).
/// init_size = min(n, max(3 batch_size, 3 k)), as scikit-learn.

/// m indices drawn uniformly with replacement from [0, n): out[i] = floor(u_i * n) for the
/// next uniform u_i (scikit-learn's randint(0, n, m)).
inline void draw_indices(SplitMix64& g, std::int64_t n, std::int64_t m, std::int64_t* out) {
  for (std::int64_t i = 0; i < m; ++i) {
    const auto j = static_cast<std::int64_t>(g.uniform() * static_cast<double>(n));
    out[i] = j < n ? j : n - 1;
  }
}

/// m distinct indices of [0, n) (m <= n), uniformly without replacement: the first m of a
/// partial Fisher-Yates shuffle of 0..n-1 (position i swaps with i + draw of [0, n - i)).
inline std::vector<std::int64_t> choose_distinct(SplitMix64& g, std::int64_t n, std::int64_t m) {
  std::vector<std::int64_t> p(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) p[i] = i;
  for (std::int64_t i = 0; i < m; ++i) {
    std::int64_t j = 0;
    draw_indices(g, n - i, 1, &j);
    std::swap(p[i], p[i + j]);
  }
  p.resize(static_cast<std::size_t>(m));
  return p;
}

/// scikit-learn's initial sample size of a mini-batch fit: min(n, max(3 b, 3 k)), b the batch.
inline std::int64_t minibatch_init_size(std::int64_t n, std::int64_t batch, int k) {
  return std::min(n, std::max(3 * batch, 3 * static_cast<std::int64_t>(k)));
}

/// Throws kmeans::Error naming the value unless batch_size >= 0, max_no_improvement >= 0 and
/// reassignment_ratio is finite and >= 0.
void validate_minibatch_params(const Options& p);

/// One centre's scikit-learn update (_minibatch_update_dense, in double): with the batch's
/// weighted coordinate sum s and weight w > 0 of the centre, count += w and
/// c = (c * old count + s) / count (times the inverse, as scikit-learn; a division when the
/// inverse overflows). Shared with the tests' oracle.
template <class T>
void minibatch_update_centre(T* c, const double* s, double w, double& count, std::int64_t d) {
  const double old = count;
  count = old + w;
  const double inv = 1.0 / count;
  const bool divide = !std::isfinite(inv);
  for (std::int64_t f = 0; f < d; ++f) {
    const double v = static_cast<double>(c[f]) * old + s[f];
    c[f] = static_cast<T>(divide ? v / count : v * inv);
  }
}

/// The mini-batch steps of a fit over the data of `e` (ops: its DataOps), from initialisation
/// to the last step, in the engine's units (Units): fills r's centroids, sse_history,
/// imbalance_history, n_iter, n_steps, converged and timings; the caller then runs the final
/// assignment over the whole data. `tol` is absolute (scaled by the data variance). With
/// `stream` (partial_fit) the data is the batch itself: one step over every row, no draws of
/// batches, counts and generator carried in *stream (counts in the caller's units; empty:
/// initialise from p first). `batch_engine`: the engine over the batch buffer, kept by the
/// caller between fits (rebound, or replaced by one of e's backend; `made` counts new ones).
template <class T>
void minibatch(Engine<T>& e, DataOps<T>& ops, std::int64_t n, std::int64_t d, const Params<T>& p,
               double tol, const Units<T>& u, StreamState* stream,
               std::unique_ptr<Engine<T>>& batch_engine, std::int64_t* made, Result<T>& r);

}  // namespace kmeans::detail
