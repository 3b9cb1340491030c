// SPDX-License-Identifier: Apache-2.0
// The one Lloyd driver shared by every backend: validation, engine choice, initialisation,
// the iteration loop with scikit-learn's convergence rules, empty-cluster repair and the
// final assignment. Backends only do the arithmetic (engine.hpp).
#include <algorithm>
#include <chrono>
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
      validate_finite(c, p.k, d, "init_centroids", p.n_threads);
      return std::vector<T>(c, c + static_cast<std::int64_t>(p.k) * d);
    }
    case Init::Random:
      return init_random(e.host_data(), e.host_weights(), n, d, p.k, p.seed);
    case Init::KMeansPlusPlus:
      return init_kmeans_plusplus(e.host_data(), e.host_weights(), n, d, p.k, p.seed, p.n_threads);
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

template <class T>
Result<T> run_fit(const T* data, std::size_t n, std::size_t d, const Params& p) {
  using clock = std::chrono::steady_clock;
  validate_shape(data, n, d, "data");
  if (p.k < 1) throw Error("k = " + std::to_string(p.k) + " must be at least 1");
  if (static_cast<std::size_t>(p.k) > n) {
    throw Error("k = " + std::to_string(p.k) + " exceeds the number of samples n = " +
                std::to_string(n));
  }
  if (p.max_iter < 0) throw Error("max_iter = " + std::to_string(p.max_iter) + " is negative");
  if (!(p.tol >= 0) || p.tol == std::numeric_limits<double>::infinity()) {
    std::ostringstream msg;
    msg << "tol = " << p.tol << " must be finite and >= 0";
    throw Error(msg.str());
  }
  auto seconds_since = [](clock::time_point t) {
    return std::chrono::duration<double>(clock::now() - t).count();
  };
  const auto t_init = clock::now();
  auto engine =
      bind(data, n, d, static_cast<const T*>(p.sample_weight), p.k, p.backend, p.n_threads);
  Engine<T>& e = *engine;
  const auto ni = static_cast<std::int64_t>(n), di = static_cast<std::int64_t>(d);
  const int k = p.k;

  Result<T> r;
  r.backend = e.kind();
  r.centroids = initial_centroids(e, ni, di, p);
  const double tol =
      p.tol > 0 ? p.tol * mean_feature_variance(e.host_data(), ni, di, p.n_threads) : 0.0;
  r.timings.init = seconds_since(t_init);

  std::vector<double> sums(static_cast<std::size_t>(k * di)), weights(static_cast<std::size_t>(k));
  for (int it = 0; it < p.max_iter; ++it) {
    const auto t0 = clock::now();
    const StepStats s = e.assign(r.centroids.data(), k, sums.data(), weights.data());
    const auto t1 = clock::now();
    r.sse_history.push_back(s.sse);
    r.n_empty_relocated += relocate_empty_clusters(e, di, k, sums.data(), weights.data());
    const double shift = update_centroids(sums.data(), weights.data(), k, di, r.centroids);
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
  const auto t_final = clock::now();
  const StepStats s = e.assign(r.centroids.data(), k, nullptr, nullptr);
  r.inertia = s.sse;
  r.labels.resize(n);
  e.labels(r.labels.data());
  r.timings.final_assign = seconds_since(t_final);
  return r;
}

template <class T>
std::vector<std::int32_t> run_predict(const T* data, std::size_t n, std::size_t d,
                                      const T* centroids, std::size_t k, Backend backend) {
  validate_shape(data, n, d, "data");
  if (centroids == nullptr) throw Error("centroids is a null pointer");
  if (k < 1 || k > static_cast<std::size_t>(std::numeric_limits<int>::max()))
    throw Error("k = " + std::to_string(k) + " is out of range");
  validate_finite(centroids, static_cast<std::int64_t>(k), static_cast<std::int64_t>(d),
                  "centroids", 0);
  auto engine = bind<T>(data, n, d, nullptr, static_cast<int>(k), backend, 0);
  engine->assign(centroids, static_cast<int>(k), nullptr, nullptr);
  std::vector<std::int32_t> labels(n);
  engine->labels(labels.data());
  return labels;
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

template Result<float> fit<float>(const float*, std::size_t, std::size_t, const Params&);
template Result<double> fit<double>(const double*, std::size_t, std::size_t, const Params&);
template std::vector<std::int32_t> predict<float>(const float*, std::size_t, std::size_t,
                                                  const float*, std::size_t, Backend);
template std::vector<std::int32_t> predict<double>(const double*, std::size_t, std::size_t,
                                                   const double*, std::size_t, Backend);

}  // namespace kmeans
