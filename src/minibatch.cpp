// SPDX-License-Identifier: Apache-2.0
// Mini-batch k-means with scikit-learn's MiniBatchKMeans rules, every batch pass run by an Engine.
//
// Each step draws batch_size row indices (with replacement) from the seed on the host, gathers
// those rows (DataOps::rows: on the GPU for device data) into a host buffer of the fixed batch
// shape and rebinds one batch engine of the fit's backend to it; the engine labels the batch and
// returns its per-cluster sums and weights in double, and the host applies scikit-learn's update
// (_minibatch_update_dense), its random reassignment of rarely used centres (_mini_batch_step)
// and its early stopping (_mini_batch_convergence), every loop in a fixed order. The engines'
// sums do not depend on the thread count, so neither does the fit.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include "minibatch.hpp"
#include "sphere.hpp"

namespace kmeans::detail {
namespace {


/// A new engine of the backend `kind` (never Auto) bound to v.
template <class T>
std::unique_ptr<Engine<T>> engine_of(Backend kind, const DataView<T>& v) {
  switch (kind) {
    case Backend::Reference: return make_reference_engine(v);
    case Backend::Cuda: return make_cuda_engine(v);
    case Backend::Cpu:
    case Backend::Auto: break;
  }
  return make_cpu_engine(v);
}

/// The rows idx[0, m) of the data into x (m x d, host) and their weights into w (left empty
/// when the data is unweighted).
template <class T>
void gather(DataOps<T>& ops, const std::vector<std::int64_t>& idx, std::int64_t d,
            std::vector<T>& x, std::vector<T>& w) {
  const auto m = static_cast<std::int64_t>(idx.size());
  x.resize(static_cast<std::size_t>(m * d));
  ops.rows(idx.data(), m, x.data());
  w.clear();
  if (const T* all = ops.weights()) {
    w.resize(idx.size());
    for (std::size_t i = 0; i < idx.size(); ++i) w[i] = all[idx[i]];
  }
}

template <class T>
DataView<T> view_of(const std::vector<T>& x, const std::vector<T>& w, std::int64_t m,
                    std::int64_t d, int n_threads) {
  return DataView<T>{x.data(), w.empty() ? nullptr : w.data(), m, d, n_threads};
}

/// FAISS's imbalance factor (as the Lloyd driver's) of one batch's cluster weights.
double imbalance_factor(const std::vector<double>& sizes) {
  double total = 0, squares = 0;
  for (double s : sizes) {
    total += s;
    squares += s * s;
  }
  return total > 0 ? static_cast<double>(sizes.size()) * squares / (total * total) : 0.0;
}

/// The initial centroids (engine units): Init::Array's; or, for the other inits, the best of
/// n_init runs (lowest inertia on init_size validation rows, ties: the earliest), each on
/// init_size rows drawn from the data, or on the whole data when init_size = n. `whole` (the
/// first partial_fit): one run on the whole data.
template <class T>
std::vector<T> initial_centroids(Backend kind, DataOps<T>& ops, std::int64_t n, std::int64_t d,
                                 const Params<T>& p, std::int64_t batch, const Units<T>& u,
                                 SplitMix64& g, bool whole) {
  const int k = p.k;
  if (p.init == Init::Array) {
    const T* c = p.init_centroids.data();
    std::vector<T> out(c, c + static_cast<std::int64_t>(k) * d);
    u.to_engine(out);
    return out;
  }
  const std::int64_t size = whole ? n : minibatch_init_size(n, batch, k);
  const int n_init = whole ? 1 : p.n_init;
  std::vector<std::int64_t> idx(static_cast<std::size_t>(size));
  std::vector<T> vx, vw;
  if (n_init > 1) {
    draw_indices(g, n, size, idx.data());
    gather(ops, idx, d, vx, vw);
  }
  std::unique_ptr<Engine<T>> validation;
  std::vector<T> best;
  double best_inertia = 0;
  for (int run = 0; run < n_init; ++run) {
    std::vector<T> sx, sw;
    std::unique_ptr<DataOps<T>> subset;
    DataOps<T>* src = &ops;
    if (size < n) {
      draw_indices(g, n, size, idx.data());
      gather(ops, idx, d, sx, sw);
      subset = make_host_data_ops(sx.data(), sw.empty() ? nullptr : sw.data(), size, d,
                                  p.n_threads);
      src = subset.get();
    }
    const std::uint64_t seed = g.next();
    std::vector<T> c;
    switch (p.init) {
      case Init::Random: c = init_random(*src, k, seed); break;
      case Init::KMeansParallel: c = init_kmeans_parallel(*src, k, seed, p.n_threads); break;
      case Init::KMeansPlusPlus:
      case Init::Array: c = init_kmeans_plusplus(*src, k, seed); break;
    }
    if (n_init == 1) return c;
    if (!validation) validation = engine_of(kind, view_of(vx, vw, size, d, p.n_threads));
    const double inertia = validation->assign(c.data(), k, nullptr, nullptr).sse;
    if (run == 0 || inertia < best_inertia) {
      best = std::move(c);
      best_inertia = inertia;
    }
  }
  return best;
}

/// scikit-learn's random reassignment (_mini_batch_step): the centres whose count is below
/// ratio * the largest count (never one holding the largest count, which only a ratio above 1
/// could reach), at most floor(batch / 2) of them (the lowest counts, ties: the lowest index),
/// move to distinct batch rows drawn uniformly (choose_distinct), given in ascending centre
/// order; their counts become the smallest count of the others. `fetch(idx, m, out)` copies
/// batch rows. Returns the number of centres moved.
template <class T, class Fetch>
int reassign_centres(std::vector<double>& counts, std::int64_t d, double ratio,
                     std::int64_t batch, SplitMix64& g, Fetch&& fetch, std::vector<T>& c) {
  const int k = static_cast<int>(counts.size());
  const double top = *std::max_element(counts.begin(), counts.end());
  std::vector<char> flag(static_cast<std::size_t>(k), 0);
  std::int64_t m = 0;
  for (int j = 0; j < k; ++j) {
    flag[j] = counts[j] < ratio * top && counts[j] != top;
    m += flag[j];
  }
  if (2 * m > batch) {
    std::vector<int> order(static_cast<std::size_t>(k));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](int a, int b) { return counts[a] < counts[b]; });
    for (std::int64_t i = batch / 2; i < k; ++i) flag[order[i]] = 0;
    m = std::count(flag.begin(), flag.end(), 1);
  }
  if (m > 0) {
    const std::vector<std::int64_t> chosen = choose_distinct(g, batch, m);
    std::vector<T> rows(static_cast<std::size_t>(m * d));
    fetch(chosen.data(), m, rows.data());
    std::int64_t next = 0;
    for (int j = 0; j < k; ++j) {
      if (!flag[j]) continue;
      std::copy(rows.begin() + next * d, rows.begin() + (next + 1) * d, c.begin() + j * d);
      ++next;
    }
  }
  double low = std::numeric_limits<double>::infinity();
  for (int j = 0; j < k; ++j)
    if (!flag[j]) low = std::min(low, counts[j]);
  for (int j = 0; j < k; ++j)
    if (flag[j]) counts[j] = low;
  return static_cast<int>(m);
}

/// max_iter * n / batch (scikit-learn's n_steps) without overflowing for large n.
std::int64_t step_count(int max_iter, std::int64_t n, std::int64_t batch) {
  const std::int64_t q = n / batch, rem = n % batch;
  return max_iter * q + (max_iter * rem) / batch;
}

}  // namespace

void validate_minibatch_params(const Options& p) {
  if (p.batch_size < 0) {
    throw Error("batch_size = " + std::to_string(p.batch_size) +
                " is negative (0 runs Lloyd's algorithm, > 0 mini-batch k-means)");
  }
  if (p.max_no_improvement < 0) {
    throw Error("max_no_improvement = " + std::to_string(p.max_no_improvement) +
                " is negative (0 disables the rule)");
  }
  if (!(p.reassignment_ratio >= 0) ||
      p.reassignment_ratio == std::numeric_limits<double>::infinity()) {
    std::ostringstream msg;
    msg << "reassignment_ratio = " << p.reassignment_ratio << " must be finite and >= 0";
    throw Error(msg.str());
  }
}

template <class T>
void minibatch(Engine<T>& e, DataOps<T>& ops, std::int64_t n, std::int64_t d, const Params<T>& p,
               double tol, const Units<T>& u, StreamState* stream,
               std::unique_ptr<Engine<T>>& batch_engine, std::int64_t* made, Result<T>& r) {
  const int k = p.k;
  const auto uk = static_cast<std::size_t>(k);
  const auto t_init = Clock::now();
  const std::int64_t batch = stream ? n : std::min<std::int64_t>(p.batch_size, n);
  SplitMix64 g(stream && stream->steps > 0 ? stream->rng : p.seed);
  std::vector<double> counts(uk, 0.0);
  std::int64_t since = 0;
  if (stream && !stream->counts.empty()) {
    if (stream->counts.size() != uk)
      throw Error("partial_fit: " + std::to_string(stream->counts.size()) +
                  " kept counts do not match k = " + std::to_string(k));
    for (std::size_t j = 0; j < uk; ++j) counts[j] = std::ldexp(stream->counts[j], -u.weight_exp);
    since = stream->since_reassign;
  }
  r.centroids = initial_centroids(e.kind(), ops, n, d, p, batch, u, g, stream != nullptr);
  r.timings.init += seconds_since(t_init);

  const std::int64_t n_steps = stream ? 1 : step_count(p.max_iter, n, batch);
  const double alpha = std::min(1.0, static_cast<double>(batch) * 2.0 / (static_cast<double>(n) + 1));
  std::vector<std::int64_t> idx(static_cast<std::size_t>(batch));
  std::vector<T> bx, bw, old;
  std::vector<double> sums(uk * static_cast<std::size_t>(d)), weights(uk);
  // Metric::Cosine (the driver put the data on the unit sphere): centres are re-normalised
  // after each update and SSEs are cosine distances (half the squared distances on the sphere).
  const bool sphere = p.metric == Metric::Cosine;
  const double to_metric = sphere ? 0.5 : 1.0;
  std::vector<double> unit;
  double ewa = 0, ewa_min = 0;
  bool have_ewa = false, have_min = false;
  int no_improvement = 0;
  auto fetch = [&](const std::int64_t* at, std::int64_t m, T* out) {
    if (stream) {
      ops.rows(at, m, out);
      return;
    }
    for (std::int64_t i = 0; i < m; ++i) std::copy_n(bx.data() + at[i] * d, d, out + i * d);
  };
  for (std::int64_t step = 0; step < n_steps; ++step) {
    ProfileRange step_range("kmeans::minibatch_step");
    const auto t0 = Clock::now();
    Engine<T>* be = &e;
    if (!stream) {
      draw_indices(g, n, batch, idx.data());
      gather(ops, idx, d, bx, bw);
      const DataView<T> v = view_of(bx, bw, batch, d, p.n_threads);
      bool rebound = false;
      try {
        rebound = batch_engine && batch_engine->kind() == e.kind() && batch_engine->rebind(v);
      } catch (...) {
        batch_engine.reset();  // a rebind that failed half-way leaves nothing behind
        throw;
      }
      if (!rebound) {
        batch_engine.reset();  // free its memory before the new engine takes its own
        batch_engine = engine_of(e.kind(), v);
        if (made) ++*made;
      }
      be = batch_engine.get();
    }
    // scikit-learn's _random_reassign, evaluated on the counts before this step's update.
    since += batch;
    bool reassign = false;
    if (std::find(counts.begin(), counts.end(), 0.0) != counts.end() || since >= 10 * k) {
      since = 0;
      reassign = true;
    }
    const StepStats s = be->assign(r.centroids.data(), k, sums.data(), weights.data());
    const auto t1 = Clock::now();
    old = r.centroids;  // for the centre change (reported, and the tol rule)
    for (int j = 0; j < k; ++j) {
      if (!(weights[j] > 0)) continue;  // no batch weight: the centre and its count stay
      T* c = r.centroids.data() + j * d;
      minibatch_update_centre(c, sums.data() + j * d, weights[j], counts[j], d);
      if (sphere) {  // spherical: back onto the unit sphere (the old centre if it vanished)
        unit.assign(c, c + d);
        if (!unit_from_mean(unit.data(), d, c)) std::copy_n(old.data() + j * d, d, c);
      }
    }
    if (reassign && p.reassignment_ratio > 0)
      reassign_centres(counts, d, p.reassignment_ratio, batch, g, fetch, r.centroids);
    double shift = 0;
    for (std::size_t i = 0; i < old.size(); ++i) {
      const double diff = static_cast<double>(r.centroids[i]) - static_cast<double>(old[i]);
      shift += diff * diff;
    }
    r.sse_history.push_back(to_metric * u.sse(s.sse));
    r.imbalance_history.push_back(imbalance_factor(weights));
    r.n_steps = static_cast<int>(std::min<std::int64_t>(step + 1, std::numeric_limits<int>::max()));
    // scikit-learn's _mini_batch_convergence (not in partial_fit): the first step is skipped;
    // then an exponentially weighted average of the batch inertia per batch row.
    bool stop = false;
    if (!stream && step > 0) {
      const double batch_inertia = s.sse / static_cast<double>(batch);
      ewa = have_ewa ? ewa * (1 - alpha) + batch_inertia * alpha : batch_inertia;
      have_ewa = true;
      if (tol > 0 && shift <= tol) {
        stop = true;
      } else {
        if (!have_min || ewa < ewa_min) {
          no_improvement = 0;
          ewa_min = ewa;
          have_min = true;
        } else {
          ++no_improvement;
        }
        stop = p.max_no_improvement > 0 && no_improvement >= p.max_no_improvement;
      }
    }
    r.converged = stop;
    r.timings.assign += std::chrono::duration<double>(t1 - t0).count();
    r.timings.update += seconds_since(t1);
    if (p.on_iteration) {
      ProfileRange callback_range("kmeans::on_iteration");
      const IterationInfo info{static_cast<int>(r.n_steps - 1), to_metric * u.sse(s.sse),
                               u.squared(shift),
                               seconds_since(t0)};
      if (!p.on_iteration(info)) break;
    }
    if (stop) break;
  }
  if (stream) {
    stream->counts.resize(uk);
    for (std::size_t j = 0; j < uk; ++j) stream->counts[j] = std::ldexp(counts[j], u.weight_exp);
    stream->rng = g.state();
    stream->since_reassign = since;
    ++stream->steps;
    r.n_steps = stream->steps;
  } else {
    r.n_iter = static_cast<int>((static_cast<std::int64_t>(r.n_steps) * batch + n - 1) / n);
  }
}

#define KMEANS_INSTANTIATE(T)                                                              \
  template void minibatch<T>(Engine<T>&, DataOps<T>&, std::int64_t, std::int64_t,          \
                             const Params<T>&, double, const Units<T>&, StreamState*,      \
                             std::unique_ptr<Engine<T>>&, std::int64_t*, Result<T>&);
KMEANS_INSTANTIATE(float)
KMEANS_INSTANTIATE(double)
#undef KMEANS_INSTANTIATE

}  // namespace kmeans::detail
