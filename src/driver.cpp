// SPDX-License-Identifier: Apache-2.0
// The one Lloyd driver shared by every backend: validation, engine choice, initialisation,
// the iteration loop with scikit-learn's convergence rules, empty-cluster repair and the
// final assignment. Backends only do the arithmetic (engine.hpp); fit_entry.cpp is the public
// fit's way in (checks, streaming choice, cosine copies, the workspace's engine).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <cstdint>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "engine.hpp"
#include "internal.hpp"
#include "driver.hpp"
#include "lloyd_step.hpp"
#include "minibatch.hpp"
#include "sphere.hpp"

namespace kmeans {

const char* to_string(Backend b) {
  switch (b) {
    case Backend::Auto: return "auto";
    case Backend::Cuda: return "cuda";
    case Backend::Cpu: return "cpu";
    case Backend::Reference: return "reference";
  }
  return "unknown";
}

const char* to_string(Metric m) {
  switch (m) {
    case Metric::Euclidean: return "euclidean";
    case Metric::Cosine: return "cosine";
  }
  return "unknown";
}

namespace detail {
namespace {

/// `passed_over` receives why Auto ran on the CPU although a GPU is usable (the working set
/// does not fit its free memory, say); it stays empty when there is no usable GPU at all.
template <class T>
std::unique_ptr<Engine<T>> make_engine(Backend requested, const DataView<T>& v, bool on_device,
                                       int k, std::size_t extra_bytes, std::string& passed_over) {
  Backend b = requested;
  if (b == Backend::Auto) {
    // The GPU when it is usable and the fit's working set fits in its free memory.
    std::string why;
    b = (on_device ||
         cuda_working_set_fits(v.n, v.d, k, sizeof(T), on_device, &why, extra_bytes))
            ? Backend::Cuda
            : Backend::Cpu;
    if (b == Backend::Cpu && cuda_available()) passed_over = why + ": using the CPU backend";
  }
  if (on_device && b != Backend::Cuda) {
    throw Error(std::string("data is in GPU memory but backend = ") + to_string(b) +
                " needs host memory; use Backend::Cuda or Backend::Auto");
  }
  switch (b) {
    case Backend::Reference: return make_reference_engine(v);
    case Backend::Cpu: return make_cpu_engine(v);
    case Backend::Cuda: return make_cuda_engine(v);
    case Backend::Auto: break;
  }
  throw Error("unknown backend");
}

}  // namespace

/// Checks the data and weights and binds an engine to them: the engine in `slot` when it can
/// take the data (Engine::rebind), else a new one stored there. Host data and weights that need
/// it are rescaled into `u` (data_scale_exponent over the data and `centroid_max_abs`, the
/// largest |c| of the centroids the call will use; weight_scale_exponent), which must outlive
/// the engine's use. `extra_bytes`: device memory the call needs beyond a pass's working set
/// (initialisation).
template <class T>
Engine<T>& bind_engine(const T* data, std::size_t n, std::size_t d, ArrayView<T> weights_view,
                       int k, Backend backend, int n_threads, std::unique_ptr<Engine<T>>& slot,
                       Workspace<T>* ws, std::size_t extra_bytes, double centroid_max_abs,
                       Units<T>& u, void* stream) {
  ProfileRange range("kmeans::bind");
  validate_shape(data, n, d, "data");
  check_weights_view(weights_view, n);
  const T* weights = weights_view.data();
  const bool on_device = is_device_pointer(data);
  if (weights && is_device_pointer(weights) != on_device)
    throw Error("sample_weight and data must both be in host memory or both in GPU memory");
  const auto ni = static_cast<std::int64_t>(n), di = static_cast<std::int64_t>(d);
  u = Units<T>{};
  if (!on_device) {  // the CUDA engine checks device-resident data on the device
    const double max_abs = validate_points(data, ni, di, "data", n_threads);
    u.data_exp = data_scale_exponent<T>(std::max(max_abs, centroid_max_abs));
    if (u.data_exp != 0) {
      u.points.assign(data, data + n * d);
      for (T& x : u.points) x = std::ldexp(x, u.data_exp);
      data = u.points.data();
    }
    if (weights) {
      u.weight_exp = weight_scale_exponent<T>(validate_weights(weights, ni, n_threads));
      if (u.weight_exp != 0) {
        u.weights.resize(n);
        for (std::size_t i = 0; i < n; ++i) u.weights[i] = std::ldexp(weights[i], -u.weight_exp);
        weights = u.weights.data();
      }
    }
  }
  DataView<T> v{data, weights, ni, di, n_threads, stream};
  if (slot) {
    // A kept engine serves Auto too (it was chosen for this shape before), unless it is a GPU
    // engine on host data and this call's working set (k may have changed) no longer fits in
    // free memory plus what the engine holds: then Auto chooses afresh, after the kept engine
    // has freed its memory.
    const Backend kept = slot->kind();
    bool compatible = (backend == Backend::Auto || backend == kept) &&
                      (!on_device || kept == Backend::Cuda);
    if (compatible && backend == Backend::Auto && kept == Backend::Cuda && !on_device)
      compatible = cuda_working_set_fits(ni, di, k, sizeof(T), false, nullptr, extra_bytes,
                                         slot->device_bytes());
    bool rebound = false;
    try {
      rebound = compatible && slot->rebind(v);
    } catch (...) {
      slot.reset();  // a rebind that failed half-way leaves nothing behind
      throw;
    }
    if (rebound) {
      if (ws) ++ws->rebinds;
      return *slot;
    }
    slot.reset();  // free its memory before the new engine takes its own
  }
  slot = make_engine(backend, v, on_device, k, extra_bytes, u.gpu_passed_over);
  if (ws) ++ws->engines_made;
  return *slot;
}

template <class T>
DataOps<T>& data_ops_of(Engine<T>& e, std::unique_ptr<DataOps<T>>& holder, std::int64_t n,
                        std::int64_t d, int n_threads) {
  if (DataOps<T>* own = e.data_ops()) return *own;
  holder = make_host_data_ops(e.host_data(), e.host_weights(), n, d, n_threads);
  return *holder;
}

namespace {

template <class T>
std::vector<T> initial_centroids(DataOps<T>& data, std::int64_t d, const Params<T>& p) {
  switch (p.init) {
    case Init::Array: {
      const T* c = p.init_centroids.data();
      return std::vector<T>(c, c + static_cast<std::int64_t>(p.k) * d);
    }
    case Init::Random: return init_random(data, p.k, p.seed);
    case Init::KMeansPlusPlus: return init_kmeans_plusplus(data, p.k, p.seed);
    case Init::KMeansParallel: return init_kmeans_parallel(data, p.k, p.seed, p.n_threads);
  }
  throw Error("unknown init method");
}

/// scikit-learn's repair: the i-th empty cluster (ascending index) takes the i-th point farthest
/// from its centroid; that point's weighted coordinates move from its old cluster's sums to the
/// empty one. Returns the number of clusters repaired.
template <class T>
int relocate_empty_clusters(Engine<T>& e, DataOps<T>& data, std::int64_t d, int k, double* sums,
                            double* weights) {
  std::vector<int> empty;
  for (int c = 0; c < k; ++c)
    if (weights[c] == 0) empty.push_back(c);
  if (empty.empty()) return 0;
  const std::vector<FarPoint> far = e.farthest(static_cast<std::int64_t>(empty.size()));
  const std::size_t n_moved = std::min(empty.size(), far.size());
  // The moved points' coordinates, gathered where the data is (no host copy of device data).
  std::vector<std::int64_t> idx(n_moved);
  for (std::size_t i = 0; i < n_moved; ++i) idx[i] = far[i].index;
  std::vector<T> rows(n_moved * static_cast<std::size_t>(d));
  data.rows(idx.data(), static_cast<std::int64_t>(n_moved), rows.data());
  // The weights from the engine when it gives them (spread data), else DataOps'.
  const T* w = n_moved > 0 && far[0].weight >= 0 ? nullptr : data.weights();
  for (std::size_t i = 0; i < n_moved; ++i) {
    const int to = empty[i];
    const int from = far[i].label;
    const T* xi = rows.data() + i * d;
    const double wi = far[i].weight >= 0 ? far[i].weight
                                         : w ? static_cast<double>(w[far[i].index]) : 1.0;
    lloyd_step::relocate_point(sums, weights, d, to, from, wi, xi);
  }
  return static_cast<int>(n_moved);
}

/// New centroids from sums and weights; a cluster left with no weight keeps its old centroid
/// (possible only with zero sample weights). `sphere` (Metric::Cosine): each new centroid is
/// the unit vector along the mean (sphere.hpp), or the old centroid when the mean is 0.
/// Returns the total squared shift.
template <class T>
double update_centroids(const double* sums, const double* weights, int k, std::int64_t d,
                        std::vector<T>& c, bool sphere) {
  if (!sphere) return lloyd_step::update_centroids(sums, weights, k, d, c.data());
  // Metric::Cosine stays on the host: the mean by lloyd_step::MeanRule, then scaled onto the
  // sphere from its double values (unit_from_mean).
  double shift = 0;
  std::vector<double> mean(static_cast<std::size_t>(d));
  std::vector<T> unit(static_cast<std::size_t>(d));
  for (int j = 0; j < k; ++j) {
    if (!(weights[j] > 0)) continue;
    const lloyd_step::MeanRule rule(weights[j]);
    for (std::int64_t f = 0; f < d; ++f) mean[f] = rule.mean(sums[j * d + f]);
    if (!unit_from_mean(mean.data(), d, unit.data())) continue;
    for (std::int64_t f = 0; f < d; ++f) {
      const double diff = static_cast<double>(unit[f]) - static_cast<double>(c[j * d + f]);
      shift += diff * diff;
      c[j * d + f] = unit[f];
    }
  }
  return shift;
}

}  // namespace

void validate_params(const Options& p, std::size_t n) {
  if (p.k < 1) throw Error("k = " + std::to_string(p.k) + " must be at least 1");
  if (static_cast<std::size_t>(p.k) > n) {
    throw Error("k = " + std::to_string(p.k) + " exceeds the number of samples n = " +
                std::to_string(n));
  }
  if (p.max_iter < 0) throw Error("max_iter = " + std::to_string(p.max_iter) + " is negative");
  if (p.n_init < 1) throw Error("n_init = " + std::to_string(p.n_init) + " must be at least 1");
  if (p.metric != Metric::Euclidean && p.metric != Metric::Cosine)
    throw Error("metric = " + std::to_string(static_cast<int>(p.metric)) +
                " is not Metric::Euclidean or Metric::Cosine");
  if (!(p.tol >= 0) || p.tol == std::numeric_limits<double>::infinity()) {
    std::ostringstream msg;
    msg << "tol = " << p.tol << " must be finite and >= 0";
    throw Error(msg.str());
  }
  if (p.algorithm != Algorithm::Lloyd && p.algorithm != Algorithm::Elkan &&
      p.algorithm != Algorithm::Auto)
    throw Error("algorithm = " + std::to_string(static_cast<int>(p.algorithm)) +
                " is not one of Lloyd (0), Elkan (1), Auto (2)");
  validate_minibatch_params(p);
}

void check_device_output(const void* ptr, const char* field, int device) {
  if (!ptr) return;
  const int on = device_of_pointer(ptr);
  std::ostringstream msg;
  if (on < 0) {
    msg << field << " = " << ptr << " is not device memory: it must be a CUDA device (or "
        << "managed) allocation" << (cuda_available() ? "" : ", and no CUDA device is usable");
    throw Error(msg.str());
  }
  if (device >= 0 && on != device) {
    msg << field << " = " << ptr << " is memory of CUDA device " << on
        << ", but the call runs on device " << device;
    throw Error(msg.str());
  }
}

namespace {

using lloyd_step::imbalance_factor;

/// Lloyd iterations from r.centroids (already initialised) until convergence or max_iter,
/// then the final assignment. `tol` is absolute (already scaled by the data variance).
/// r.centroids, r.inertia and r.cluster_sizes are left in the engine's units (Units); the SSEs
/// and shifts reported per iteration are converted back at once.
template <class T>
void lloyd(Engine<T>& e, DataOps<T>& data, std::int64_t n, std::int64_t d, const Params<T>& p,
           double tol, const Units<T>& u, Result<T>& r) {
  const int k = p.k;
  const bool sphere = p.metric == Metric::Cosine;
  // On the sphere ||x - c||^2 = 2 (1 - x . c): the engines' squared distances halved (exactly)
  // are the cosine distances reported.
  const double to_metric = sphere ? 0.5 : 1.0;
  std::vector<double> sums(static_cast<std::size_t>(k * d)), weights(static_cast<std::size_t>(k));
  // The engine's own run of this loop (the CUDA engine's device loop, lloyd_step.hpp's
  // arithmetic: the same bits) where it offers one: never with a callback, which needs every
  // iteration on the host, nor on the sphere. Its time is reported as the assign time.
  LloydTrace trace;
  const auto t_loop = Clock::now();
  const bool engine_loop = !p.on_iteration && !sphere && p.max_iter > 0 &&
                           e.run_lloyd(r.centroids.data(), k, p.max_iter, tol, trace);
  if (engine_loop) {
    for (std::size_t i = 0; i < trace.sse.size(); ++i) {
      r.sse_history.push_back(u.sse(trace.sse[i]));
      r.imbalance_history.push_back(trace.imbalance[i]);
    }
    r.n_iter = trace.n_iter;
    r.converged = trace.converged;
    r.n_empty_relocated += trace.n_empty_relocated;
    r.timings.assign += seconds_since(t_loop);
  }
  for (int it = 0; it < (engine_loop ? 0 : p.max_iter); ++it) {
    ProfileRange iteration_range("kmeans::iteration");
    const auto t0 = Clock::now();
    const StepStats s = e.assign(r.centroids.data(), k, sums.data(), weights.data());
    const auto t1 = Clock::now();
    const double sse = to_metric * u.sse(s.sse);
    r.sse_history.push_back(sse);
    r.imbalance_history.push_back(imbalance_factor(weights.data(), k));
    double shift = 0;
    {
      ProfileRange update_range("kmeans::update");
      r.n_empty_relocated += relocate_empty_clusters(e, data, d, k, sums.data(), weights.data());
      shift = update_centroids(sums.data(), weights.data(), k, d, r.centroids, sphere);
    }
    r.n_iter = it + 1;
    // scikit-learn: labels identical to the previous iteration's is strict convergence;
    // otherwise a total squared shift <= tol (scaled by the data variance) converges too.
    r.converged = lloyd_step::converged(it, s.n_changed, shift, tol);
    r.timings.assign += std::chrono::duration<double>(t1 - t0).count();
    r.timings.update += seconds_since(t1);
    if (p.on_iteration) {
      ProfileRange callback_range("kmeans::on_iteration");
      if (!p.on_iteration(IterationInfo{it, sse, u.squared(shift), seconds_since(t0)})) break;
    }
    if (r.converged) break;
  }
  // The final assignment: the returned labels and inertia belong to the returned centroids.
  // In scaled units (Units::data_exp) the centroids first take the values they will have in
  // the caller's units (a mean of subnormal values rounds there), so the labels are the exact
  // ones for the centroids returned.
  ProfileRange final_range("kmeans::final_assign");
  const auto t_final = Clock::now();
  if (u.data_exp != 0) {
    u.to_caller(r.centroids);
    u.to_engine(r.centroids);
  }
  r.inertia = to_metric * e.assign(r.centroids.data(), k, nullptr, nullptr).sse;
  if (p.device_labels_out && e.labels_device() >= 0) {
    // The labels stay on the device: fit_bound copies the best run's (device_labels_and_sizes).
    r.labels.clear();
    r.cluster_sizes.clear();
  } else if (!e.local_labels_and_sizes(k, r.labels, r.cluster_sizes)) {  // spread data: its own way
    r.labels.resize(static_cast<std::size_t>(n));
    e.labels(r.labels.data());
    // Cluster sizes from the labels, in point order (the same bits on every backend).
    r.cluster_sizes.assign(static_cast<std::size_t>(k), 0.0);
    const T* w = data.weights();
    for (std::int64_t i = 0; i < n; ++i)
      r.cluster_sizes[static_cast<std::size_t>(r.labels[i])] += w ? static_cast<double>(w[i]) : 1.0;
  }
  r.timings.final_assign += seconds_since(t_final);
}

/// Params::device_labels_out on the CUDA engine, for the run whose result `r` is kept: the
/// labels of the engine's last pass (r's final assignment) go device to device into the
/// caller's buffer, and the cluster sizes keep the bits of lloyd's host loop (the weights
/// summed in point order): from the per-cluster counts formed on the device when unweighted
/// (integers, exact in any order), else from a host copy of the labels (weighted: the one
/// n-sized download, for the sizes only). The counts go to u.label_counts.
template <class T>
void device_labels_and_sizes(Engine<T>& e, DataOps<T>& data, std::int64_t n, const Params<T>& p,
                             Units<T>& u, Result<T>& r) {
  if (!p.device_labels_out || e.labels_device() < 0) return;
  ProfileRange range("kmeans::device_labels");
  const auto t0 = Clock::now();
  e.labels_to_device(p.device_labels_out, p.k, u.label_counts);
  std::int64_t total = 0;
  for (std::int64_t c : u.label_counts) total += c;
  if (static_cast<int>(u.label_counts.size()) != p.k || total != n)
    throw Error("internal: the device label counts add up to " + std::to_string(total) +
                ", not n = " + std::to_string(n));
  r.labels.clear();
  r.cluster_sizes.assign(static_cast<std::size_t>(p.k), 0.0);
  if (const T* w = data.weights()) {
    std::vector<std::int32_t> labels(static_cast<std::size_t>(n));
    e.labels(labels.data());
    for (std::int64_t i = 0; i < n; ++i)
      r.cluster_sizes[static_cast<std::size_t>(labels[i])] += static_cast<double>(w[i]);
  } else {
    for (int c = 0; c < p.k; ++c)
      r.cluster_sizes[static_cast<std::size_t>(c)] = static_cast<double>(u.label_counts[c]);
  }
  r.timings.final_assign += seconds_since(t0);
}

}  // namespace

template <class T>
void warn_empty_clusters(const T* data, std::int64_t n, std::int64_t d, const Result<T>& r,
                         int k, std::vector<std::string>& warnings,
                         const std::vector<std::int64_t>& counts) {
  std::vector<char> used(static_cast<std::size_t>(k), 0);
  for (auto l : r.labels) used[static_cast<std::size_t>(l)] = 1;
  if (r.labels.empty())
    for (std::size_t c = 0; c < counts.size() && c < used.size(); ++c) used[c] = counts[c] > 0;
  const auto distinct = std::count(used.begin(), used.end(), 1);
  if (distinct == k) return;
  const std::string head = "number of distinct clusters (" + std::to_string(distinct) +
                           ") found smaller than k = " + std::to_string(k) + ": ";
  if (!is_device_pointer(data)) {
    const std::int64_t points = count_distinct_rows(data, n, d, k);
    if (points < k) {
      warnings.push_back(head + "the data has only " + std::to_string(points) +
                         " distinct points");
      return;
    }
  }
  warnings.push_back(head + std::to_string(k - distinct) +
                     " cluster(s) ended empty in the final assignment" +
                     (r.converged ? "" : " (the fit stopped before converging: raise max_iter)"));
}

template <class T>
Result<T> fit_bound(Engine<T>& e, DataOps<T>& ops, std::int64_t ni, std::int64_t di,
                    const Params<T>& p, Units<T>& u, double bind_seconds, StreamState* stream,
                    std::unique_ptr<Engine<T>>& held_batch, std::int64_t* engines_made) {
  const double tol = p.tol > 0 ? p.tol * ops.mean_feature_variance() : 0.0;

  // Explicit centroids are one starting point: n_init > 1 would repeat the same fit.
  const int n_init = p.init == Init::Array ? 1 : p.n_init;
  Result<T> best;
  Timings total;
  const bool mini_batch = p.batch_size > 0 || stream;
  // Bound-pruned passes give Lloyd's results; mini-batch steps are not Lloyd passes.
  e.set_algorithm(mini_batch ? Algorithm::Lloyd : p.algorithm);
  if (mini_batch) {  // its own initialisation and steps, then the final assignment over all
    best.backend = e.kind();
    minibatch(e, ops, ni, di, p, tol, u, stream, held_batch, engines_made, best);
    Params<T> final_only = p;
    final_only.max_iter = 0;
    lloyd(e, ops, ni, di, final_only, tol, u, best);
    device_labels_and_sizes(e, ops, ni, p, u, best);
    total = best.timings;
  }
  for (int run = 0; run < (mini_batch ? 0 : n_init); ++run) {
    Result<T> r;
    r.backend = e.kind();
    const auto t_init = Clock::now();
    Params<T> pr = p;
    pr.seed = p.seed + static_cast<std::uint64_t>(run);
    {
      ProfileRange init_range("kmeans::init");
      r.centroids = initial_centroids(ops, di, pr);
      if (p.init == Init::Array) u.to_engine(r.centroids);  // the others are drawn from the data
    }
    r.timings.init = seconds_since(t_init);
    lloyd(e, ops, ni, di, p, tol, u, r);
    const bool kept = run == 0 || r.inertia < best.inertia;  // rescaled units: finite
    // Device labels: only the kept run's reach the caller's buffer (the engine still holds them).
    if (kept) device_labels_and_sizes(e, ops, ni, p, u, r);
    total.init += r.timings.init;
    total.assign += r.timings.assign;
    total.update += r.timings.update;
    total.final_assign += r.timings.final_assign;
    if (kept) best = std::move(r);
  }
  best.timings = total;
  best.timings.init += bind_seconds;
  u.to_caller(best.centroids);
  best.inertia = u.sse(best.inertia);
  for (double& c : best.cluster_sizes) c = u.size(c);
  if (!u.gpu_passed_over.empty()) best.warnings.push_back(u.gpu_passed_over);
  bool sse_overflow = !std::isfinite(best.inertia);
  for (double v : best.sse_history) sse_overflow = sse_overflow || !std::isfinite(v);
  if (u.weight_exp != 0 && sse_overflow)
    best.warnings.push_back("the weighted inertia (or an iteration's SSE) exceeds the largest "
                            "double: reported as inf");
  if (p.algorithm == Algorithm::Elkan && !mini_batch && !e.prunes())
    best.warnings.push_back(std::string("algorithm = Elkan: ") +
                            (e.kind() == Backend::Cuda        ? "the CUDA backend"
                             : e.kind() == Backend::Reference ? "the reference backend"
                                                              : "a streamed or distributed fit") +
                            " runs Lloyd's algorithm (the same results)");
  if (p.init == Init::Array && p.n_init > 1)
    best.warnings.push_back("init = Array: n_init = " + std::to_string(p.n_init) +
                            " ignored, one fit from the given centroids");
  return best;
}


std::size_t cuda_init_bytes(Init init, std::int64_t n, int k) {
  const auto un = static_cast<std::size_t>(n);
  switch (init) {
    case Init::KMeansPlusPlus: {
      // closest, prefix sums and one distance array per trial; draws and block sums are small.
      const auto trials = static_cast<std::size_t>(2 + static_cast<int>(std::log(double(k))));
      return (trials + 2) * un * sizeof(double) +
             (1 + static_cast<std::size_t>(k) * trials) * sizeof(double);
    }
    case Init::KMeansParallel:  // closest, nearest candidate and candidate indices
      return 3 * un * sizeof(double);
    case Init::Random:
    case Init::Array:
      break;
  }
  return 0;
}

template <class T>
void host_distances(const T* x, std::int64_t n, std::int64_t d, const T* centroids, int k, T* out,
                    int n_threads) {
  // sqrt(sum_j (x_j - c_j)^2) in double in feature order, a tile of points per SIMD pass.
  const int nt = threads_for(n_threads, double(n) * k * d);
  for_each_tile(x, n, d, nt, [&](TileScratch& ts, std::int64_t i0, std::int64_t rows) {
    for (std::int64_t j = 0; j < k; ++j) {
      tile_squared_distances(ts.xt.data(), ts.rows, rows, d, centroids + j * d, ts.s.data());
      for (std::int64_t r = 0; r < rows; ++r)
        out[(i0 + r) * k + j] = static_cast<T>(std::sqrt(ts.s[r]));
    }
  });
}

#define KMEANS_INSTANTIATE(T)                                                                   \
  template Result<T> fit_bound<T>(Engine<T>&, DataOps<T>&, std::int64_t, std::int64_t,          \
                                  const Params<T>&, Units<T>&, double, StreamState*,            \
                                  std::unique_ptr<Engine<T>>&, std::int64_t*);                  \
  template void host_distances<T>(const T*, std::int64_t, std::int64_t, const T*, int, T*, int); \
  template Engine<T>& bind_engine<T>(const T*, std::size_t, std::size_t, ArrayView<T>, int,     \
                                     Backend, int, std::unique_ptr<Engine<T>>&, Workspace<T>*,  \
                                     std::size_t, double, Units<T>&, void*);                    \
  template DataOps<T>& data_ops_of<T>(Engine<T>&, std::unique_ptr<DataOps<T>>&, std::int64_t,   \
                                      std::int64_t, int);                                       \
  template void warn_empty_clusters<T>(const T*, std::int64_t, std::int64_t, const Result<T>&,  \
                                       int, std::vector<std::string>&,                          \
                                       const std::vector<std::int64_t>&);
KMEANS_INSTANTIATE(float)
KMEANS_INSTANTIATE(double)
#undef KMEANS_INSTANTIATE

}  // namespace detail

}  // namespace kmeans
