// SPDX-License-Identifier: Apache-2.0
// The one Lloyd driver shared by every backend: validation, engine choice, initialisation,
// the iteration loop with scikit-learn's convergence rules, empty-cluster repair and the
// final assignment. Backends only do the arithmetic (engine.hpp).
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

namespace detail {
namespace {

template <class T>
std::unique_ptr<Engine<T>> make_engine(Backend requested, const DataView<T>& v, bool on_device,
                                       int k) {
  Backend b = requested;
  if (b == Backend::Auto) {
    // The GPU when it is usable and the fit's working set fits in its free memory.
    b = (on_device || cuda_working_set_fits(v.n, v.d, k, sizeof(T), on_device, nullptr))
            ? Backend::Cuda
            : Backend::Cpu;
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

/// Checks the data and weights and binds an engine to them.
template <class T>
std::unique_ptr<Engine<T>> bind(const T* data, std::size_t n, std::size_t d, const T* weights,
                                int k, Backend backend, int n_threads) {
  validate_shape(data, n, d, "data");
  const bool on_device = is_device_pointer(data);
  if (weights && is_device_pointer(weights) != on_device)
    throw Error("sample_weight and data must both be in host memory or both in GPU memory");
  const auto ni = static_cast<std::int64_t>(n), di = static_cast<std::int64_t>(d);
  if (!on_device) {  // the CUDA engine checks device-resident data on the device
    validate_finite(data, ni, di, "data", n_threads);
    if (weights) validate_weights(weights, ni, n_threads);
  }
  DataView<T> v{data, weights, ni, di, n_threads};
  return make_engine(backend, v, on_device, k);
}

template <class T>
std::vector<T> initial_centroids(Engine<T>& e, std::int64_t n, std::int64_t d, const Params& p) {
  switch (p.init) {
    case Init::Array: {
      if (p.init_centroids == nullptr)
        throw Error("init = Array but Params::init_centroids is a null pointer");
      const T* c = static_cast<const T*>(p.init_centroids);
      if (is_device_pointer(c)) throw Error("init_centroids must be in host memory");
      validate_finite(c, p.k, d, "init_centroids", p.n_threads);
      return std::vector<T>(c, c + static_cast<std::int64_t>(p.k) * d);
    }
    case Init::Random:
      return init_random(e.host_data(), e.host_weights(), n, d, p.k, p.seed);
    case Init::KMeansPlusPlus:
      return init_kmeans_plusplus(e.host_data(), e.host_weights(), n, d, p.k, p.seed, p.n_threads);
    case Init::KMeansParallel:
      return init_kmeans_parallel(e.host_data(), e.host_weights(), n, d, p.k, p.seed, p.n_threads);
  }
  throw Error("unknown init method");
}

/// scikit-learn's repair: the i-th empty cluster (ascending index) takes the i-th point farthest
/// from its centroid; that point's weighted coordinates move from its old cluster's sums to the
/// empty one. Returns the number of clusters repaired.
template <class T>
int relocate_empty_clusters(Engine<T>& e, std::int64_t d, int k, double* sums, double* weights) {
  std::vector<int> empty;
  for (int c = 0; c < k; ++c)
    if (weights[c] == 0) empty.push_back(c);
  if (empty.empty()) return 0;
  const std::vector<FarPoint> far = e.farthest(static_cast<std::int64_t>(empty.size()));
  const T* x = e.host_data();
  const T* w = e.host_weights();
  const std::size_t n_moved = std::min(empty.size(), far.size());
  for (std::size_t i = 0; i < n_moved; ++i) {
    const int to = empty[i];
    const int from = far[i].label;
    const T* xi = x + far[i].index * d;
    const double wi = w ? static_cast<double>(w[far[i].index]) : 1.0;
    for (std::int64_t j = 0; j < d; ++j) {
      sums[from * d + j] -= wi * static_cast<double>(xi[j]);
      sums[to * d + j] = wi * static_cast<double>(xi[j]);
    }
    weights[from] -= wi;
    weights[to] = wi;
  }
  return static_cast<int>(n_moved);
}

/// New centroids from sums and weights; a cluster left with no weight keeps its old centroid
/// (possible only with zero sample weights). Returns the total squared shift.
template <class T>
double update_centroids(const double* sums, const double* weights, int k, std::int64_t d,
                        std::vector<T>& c) {
  double shift = 0;
  for (int j = 0; j < k; ++j) {
    if (!(weights[j] > 0)) continue;
    const double inv = 1.0 / weights[j];
    for (std::int64_t f = 0; f < d; ++f) {
      const T next = static_cast<T>(sums[j * d + f] * inv);
      const double diff = static_cast<double>(next) - static_cast<double>(c[j * d + f]);
      shift += diff * diff;
      c[j * d + f] = next;
    }
  }
  return shift;
}

void validate_params(const Params& p, std::size_t n) {
  if (p.k < 1) throw Error("k = " + std::to_string(p.k) + " must be at least 1");
  if (static_cast<std::size_t>(p.k) > n) {
    throw Error("k = " + std::to_string(p.k) + " exceeds the number of samples n = " +
                std::to_string(n));
  }
  if (p.max_iter < 0) throw Error("max_iter = " + std::to_string(p.max_iter) + " is negative");
  if (p.n_init < 1) throw Error("n_init = " + std::to_string(p.n_init) + " must be at least 1");
  if (!(p.tol >= 0) || p.tol == std::numeric_limits<double>::infinity()) {
    std::ostringstream msg;
    msg << "tol = " << p.tol << " must be finite and >= 0";
    throw Error(msg.str());
  }
}

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

/// Lloyd iterations from r.centroids (already initialised) until convergence or max_iter,
/// then the final assignment. `tol` is absolute (already scaled by the data variance).
template <class T>
void lloyd(Engine<T>& e, std::int64_t n, std::int64_t d, const Params& p, double tol,
           Result<T>& r) {
  const int k = p.k;
  std::vector<double> sums(static_cast<std::size_t>(k * d)), weights(static_cast<std::size_t>(k));
  for (int it = 0; it < p.max_iter; ++it) {
    const auto t0 = Clock::now();
    const StepStats s = e.assign(r.centroids.data(), k, sums.data(), weights.data());
    const auto t1 = Clock::now();
    r.sse_history.push_back(s.sse);
    r.n_empty_relocated += relocate_empty_clusters(e, d, k, sums.data(), weights.data());
    const double shift = update_centroids(sums.data(), weights.data(), k, d, r.centroids);
    r.n_iter = it + 1;
    // scikit-learn: labels identical to the previous iteration's is strict convergence;
    // otherwise a total squared shift <= tol (scaled by the data variance) converges too.
    r.converged = (it > 0 && s.n_changed == 0) || shift <= tol;
    r.timings.assign += std::chrono::duration<double>(t1 - t0).count();
    r.timings.update += seconds_since(t1);
    if (p.on_iteration && !p.on_iteration(IterationInfo{it, s.sse, shift, seconds_since(t0)}))
      break;
    if (r.converged) break;
  }
  // The final assignment: the returned labels and inertia belong to the returned centroids.
  const auto t_final = Clock::now();
  r.inertia = e.assign(r.centroids.data(), k, nullptr, nullptr).sse;
  r.labels.resize(static_cast<std::size_t>(n));
  e.labels(r.labels.data());
  r.timings.final_assign += seconds_since(t_final);
}

template <class T>
Result<T> run_fit(const T* data, std::size_t n, std::size_t d, const Params& p) {
  validate_shape(data, n, d, "data");
  validate_params(p, n);
  const auto t_bind = Clock::now();
  auto engine =
      bind(data, n, d, static_cast<const T*>(p.sample_weight), p.k, p.backend, p.n_threads);
  Engine<T>& e = *engine;
  const auto ni = static_cast<std::int64_t>(n), di = static_cast<std::int64_t>(d);
  const double tol =
      p.tol > 0 ? p.tol * mean_feature_variance(e.host_data(), ni, di, p.n_threads) : 0.0;
  const double bind_seconds = seconds_since(t_bind);

  // Explicit centroids are one starting point: n_init > 1 would repeat the same fit.
  const int n_init = p.init == Init::Array ? 1 : p.n_init;
  Result<T> best;
  Timings total;
  for (int run = 0; run < n_init; ++run) {
    Result<T> r;
    r.backend = e.kind();
    const auto t_init = Clock::now();
    Params pr = p;
    pr.seed = p.seed + static_cast<std::uint64_t>(run);
    r.centroids = initial_centroids(e, ni, di, pr);
    r.timings.init = seconds_since(t_init);
    lloyd(e, ni, di, p, tol, r);
    total.init += r.timings.init;
    total.assign += r.timings.assign;
    total.update += r.timings.update;
    total.final_assign += r.timings.final_assign;
    if (run == 0 || r.inertia < best.inertia) best = std::move(r);
  }
  best.timings = total;
  best.timings.init += bind_seconds;
  if (p.init == Init::Array && p.n_init > 1)
    best.warnings.push_back("init = Array: n_init = " + std::to_string(p.n_init) +
                            " ignored, one fit from the given centroids");
  std::vector<char> used(static_cast<std::size_t>(p.k), 0);
  for (auto l : best.labels) used[static_cast<std::size_t>(l)] = 1;
  const auto distinct = std::count(used.begin(), used.end(), 1);
  if (distinct < p.k)
    best.warnings.push_back("number of distinct clusters (" + std::to_string(distinct) +
                            ") found smaller than k = " + std::to_string(p.k) +
                            ": the data may have fewer distinct points than k");
  return best;
}

/// Checks centroids for predict / transform / score and binds an engine to the data.
template <class T>
std::unique_ptr<Engine<T>> bind_for_centroids(const T* data, std::size_t n, std::size_t d,
                                              const T* centroids, std::size_t k,
                                              const T* weights, Backend backend) {
  validate_shape(data, n, d, "data");
  if (centroids == nullptr) throw Error("centroids is a null pointer");
  if (is_device_pointer(centroids)) throw Error("centroids must be in host memory");
  if (k < 1 || k > static_cast<std::size_t>(std::numeric_limits<int>::max()))
    throw Error("k = " + std::to_string(k) + " is out of range [1, 2^31)");
  validate_finite(centroids, static_cast<std::int64_t>(k), static_cast<std::int64_t>(d),
                  "centroids", 0);
  return bind<T>(data, n, d, weights, static_cast<int>(k), backend, 0);
}

template <class T>
std::vector<std::int32_t> run_predict(const T* data, std::size_t n, std::size_t d,
                                      const T* centroids, std::size_t k, Backend backend) {
  auto engine = bind_for_centroids(data, n, d, centroids, k, static_cast<const T*>(nullptr), backend);
  engine->assign(centroids, static_cast<int>(k), nullptr, nullptr);
  std::vector<std::int32_t> labels(n);
  engine->labels(labels.data());
  return labels;
}

template <class T>
double run_score(const T* data, std::size_t n, std::size_t d, const T* centroids, std::size_t k,
                 const T* weights, Backend backend) {
  auto engine = bind_for_centroids(data, n, d, centroids, k, weights, backend);
  return -engine->assign(centroids, static_cast<int>(k), nullptr, nullptr).sse;
}

template <class T>
std::vector<T> run_transform(const T* data, std::size_t n, std::size_t d, const T* centroids,
                             std::size_t k, Backend backend) {
  auto engine = bind_for_centroids(data, n, d, centroids, k, static_cast<const T*>(nullptr), backend);
  if (k > std::numeric_limits<std::size_t>::max() / sizeof(T) / n)
    throw Error("transform: the n x k = " + std::to_string(n) + " x " + std::to_string(k) +
                " distance matrix overflows");
  // Distances in double from the host data (a host copy for device data), as sqrt(sum (x-c)^2).
  const T* x = engine->host_data();
  const auto ni = static_cast<std::int64_t>(n), di = static_cast<std::int64_t>(d);
  const auto ki = static_cast<std::int64_t>(k);
  std::vector<T> out(n * k);
#pragma omp parallel for schedule(static) num_threads(threads_for(0, double(ni) * ki * di))
  for (std::int64_t i = 0; i < ni; ++i)
    for (std::int64_t c = 0; c < ki; ++c) {
      double s = 0;
      for (std::int64_t j = 0; j < di; ++j) {
        const double t = static_cast<double>(x[i * di + j]) - static_cast<double>(centroids[c * di + j]);
        s += t * t;
      }
      out[static_cast<std::size_t>(i * ki + c)] = static_cast<T>(std::sqrt(s));
    }
  return out;
}

}  // namespace
}  // namespace detail

template <class T>
Result<T> fit(const T* data, std::size_t n, std::size_t d, const Params& p) {
  return detail::run_fit(data, n, d, p);
}

template <class T>
std::vector<std::int32_t> predict(const T* data, std::size_t n, std::size_t d, const T* centroids,
                                  std::size_t k, Backend backend) {
  return detail::run_predict(data, n, d, centroids, k, backend);
}

template <class T>
std::vector<T> transform(const T* data, std::size_t n, std::size_t d, const T* centroids,
                         std::size_t k, Backend backend) {
  return detail::run_transform(data, n, d, centroids, k, backend);
}

template <class T>
double score(const T* data, std::size_t n, std::size_t d, const T* centroids, std::size_t k,
             const T* sample_weight, Backend backend) {
  return detail::run_score(data, n, d, centroids, k, sample_weight, backend);
}

template Result<float> fit<float>(const float*, std::size_t, std::size_t, const Params&);
template Result<double> fit<double>(const double*, std::size_t, std::size_t, const Params&);
template std::vector<std::int32_t> predict<float>(const float*, std::size_t, std::size_t,
                                                  const float*, std::size_t, Backend);
template std::vector<std::int32_t> predict<double>(const double*, std::size_t, std::size_t,
                                                   const double*, std::size_t, Backend);
template std::vector<float> transform<float>(const float*, std::size_t, std::size_t, const float*,
                                             std::size_t, Backend);
template std::vector<double> transform<double>(const double*, std::size_t, std::size_t,
                                               const double*, std::size_t, Backend);
template double score<float>(const float*, std::size_t, std::size_t, const float*, std::size_t,
                             const float*, Backend);
template double score<double>(const double*, std::size_t, std::size_t, const double*,
                              std::size_t, const double*, Backend);

}  // namespace kmeans
