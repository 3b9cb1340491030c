// SPDX-License-Identifier: Apache-2.0
// Serving a fitted model: predict, transform and score against given centroids (the free
// functions and the KMeans objects' calls), on the engines the driver binds (driver.hpp).
#include <algorithm>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "driver.hpp"
#include "engine.hpp"
#include "internal.hpp"
#include "sphere.hpp"

namespace kmeans {
namespace detail {
namespace {

/// Checks centroids for predict / transform / score and binds an engine to the data; `c`
/// receives the centroids in the engine's units (`centroids` itself, or a rescaled copy kept
/// in `cs`).
template <class T>
Engine<T>& bind_for_centroids(Workspace<T>* ws, std::unique_ptr<Engine<T>>& local,
                              const T* data, std::size_t n, std::size_t d, const T* centroids,
                              std::size_t k, ArrayView<T> weights, Backend backend, Metric metric,
                              Units<T>& u, SphereData<T>& unit, std::vector<T>& cs,
                              const T*& c) {
  validate_shape(data, n, d, "data");
  if (centroids == nullptr) throw Error("centroids is a null pointer");
  if (is_device_pointer(centroids)) throw Error("centroids must be in host memory");
  if (k < 1 || k > static_cast<std::size_t>(std::numeric_limits<int>::max()))
    throw Error("k = " + std::to_string(k) + " is out of range [1, 2^31)");
  if (metric != Metric::Euclidean && metric != Metric::Cosine)
    throw Error("metric = " + std::to_string(static_cast<int>(metric)) +
                " is not Metric::Euclidean or Metric::Cosine");
  double c_max = validate_points(centroids, static_cast<std::int64_t>(k),
                                 static_cast<std::int64_t>(d), "centroids", 0);
  std::vector<T> unit_centroids;
  if (metric == Metric::Cosine) {
    // Data and centroids onto the unit sphere (unit rows, a fitted model's centroids among
    // them, are kept bit for bit).
    data = to_sphere(data, static_cast<std::int64_t>(n), static_cast<std::int64_t>(d), "data", 0,
                     unit);
    unit_centroids.resize(k * d);
    normalise_rows(centroids, static_cast<std::int64_t>(k), static_cast<std::int64_t>(d),
                   unit_centroids.data(), "centroids", 0);
    c_max = std::min(c_max, 1.0);
  }
  Engine<T>& e = bind_engine<T>(data, n, d, weights, static_cast<int>(k), backend, 0,
                                ws ? ws->predict_engine : local, ws, 0, c_max, u);
  c = centroids;
  if (metric == Metric::Cosine) {
    cs = std::move(unit_centroids);
    c = cs.data();
  }
  if (u.data_exp != 0) {
    cs.assign(c, c + k * d);
    u.to_engine(cs);
    c = cs.data();
  }
  return e;
}

/// One predict / transform / score call's binding (bind_for_centroids): the engine `e`, the
/// centroids `c` in its units, and what they live in for the call; `used` receives e's kind.
template <class T>
struct Served {
  std::unique_ptr<Engine<T>> local;
  Units<T> u;
  SphereData<T> unit;
  std::vector<T> cs;
  const T* c = nullptr;
  Engine<T>* e = nullptr;
  Served(Workspace<T>* ws, const T* data, std::size_t n, std::size_t d, const T* centroids,
         std::size_t k, ArrayView<T> weights, Backend backend, Metric metric, Backend* used) {
    e = &bind_for_centroids(ws, local, data, n, d, centroids, k, weights, backend, metric, u,
                            unit, cs, c);
    if (used) *used = e->kind();
  }
  Served(const Served&) = delete;
  Served& operator=(const Served&) = delete;
};

template <class T>
std::vector<std::int32_t> run_predict(Workspace<T>* ws, const T* data, std::size_t n,
                                      std::size_t d, const T* centroids, std::size_t k,
                                      Backend backend, Metric metric, Backend* used = nullptr) {
  ProfileRange range("kmeans::predict");
  Served<T> s(ws, data, n, d, centroids, k, ArrayView<T>{}, backend, metric, used);
  s.e->assign(s.c, static_cast<int>(k), nullptr, nullptr);
  std::vector<std::int32_t> labels(n);
  s.e->labels(labels.data());
  return labels;
}

/// predict into device memory (KMeans::predict with device_labels_out): the CUDA engine's
/// labels device to device, a host engine's copied in; on the legacy default stream, complete
/// when it returns.
template <class T>
void run_predict_to_device(Workspace<T>* ws, const T* data, std::size_t n, std::size_t d,
                           const T* centroids, std::size_t k, Backend backend, Metric metric,
                           std::int32_t* out, Backend* used = nullptr) {
  ProfileRange range("kmeans::predict");
  if (!out) throw Error("predict: device_labels_out is a null pointer");
  check_device_output(out, "device_labels_out");
  Served<T> s(ws, data, n, d, centroids, k, ArrayView<T>{}, backend, metric, used);
  const int device = s.e->labels_device();
  check_device_output(out, "device_labels_out", device);
  s.e->assign(s.c, static_cast<int>(k), nullptr, nullptr);
  if (device >= 0) {
    std::vector<std::int64_t> counts;
    s.e->labels_to_device(out, static_cast<int>(k), counts);
    return;
  }
  std::vector<std::int32_t> labels(n);
  s.e->labels(labels.data());
  copy_host_to_device(out, labels.data(), n * sizeof(std::int32_t), nullptr);
}

template <class T>
double run_score(Workspace<T>* ws, const T* data, std::size_t n, std::size_t d,
                 const T* centroids, std::size_t k, ArrayView<T> weights, Backend backend,
                 Metric metric, Backend* used = nullptr) {
  ProfileRange range("kmeans::score");
  Served<T> s(ws, data, n, d, centroids, k, weights, backend, metric, used);
  const double to_metric = metric == Metric::Cosine ? 0.5 : 1.0;  // as lloyd's
  return -to_metric * s.u.sse(s.e->assign(s.c, static_cast<int>(k), nullptr, nullptr).sse);
}

template <class T>
std::vector<T> run_transform(Workspace<T>* ws, const T* data, std::size_t n, std::size_t d,
                             const T* centroids, std::size_t k, Backend backend,
                             Metric metric, Backend* used = nullptr) {
  ProfileRange range("kmeans::transform");
  Served<T> s(ws, data, n, d, centroids, k, ArrayView<T>{}, backend, metric, used);
  if (k > std::numeric_limits<std::size_t>::max() / sizeof(T) / n)
    throw Error("transform: the n x k = " + std::to_string(n) + " x " + std::to_string(k) +
                " distance matrix overflows");
  std::vector<T> out(n * k);
  s.e->distances(s.c, static_cast<int>(k), out.data());
  s.u.to_caller(out);  // distances scale as the points
  if (metric == Metric::Cosine) {
    // 1 - x . c = ||x - c||^2 / 2 for unit x and c: the exact distance squared and halved.
    for (T& v : out) v = static_cast<T>(0.5 * static_cast<double>(v) * static_cast<double>(v));
  }
  return out;
}

}  // namespace

template <class T>
std::vector<std::int32_t> predict(WorkspacePtr<T>& ws, const T* data, std::size_t n,
                                  std::size_t d, const T* centroids, std::size_t k,
                                  Backend backend, Metric metric) {
  return run_predict(workspace(ws), data, n, d, centroids, k, backend, metric);
}
template <class T>
void predict_to_device(WorkspacePtr<T>& ws, const T* data, std::size_t n, std::size_t d,
                       const T* centroids, std::size_t k, Backend backend, Metric metric,
                       std::int32_t* device_labels_out) {
  run_predict_to_device(workspace(ws), data, n, d, centroids, k, backend, metric,
                        device_labels_out);
}
template <class T>
std::vector<T> transform(WorkspacePtr<T>& ws, const T* data, std::size_t n, std::size_t d,
                         const T* centroids, std::size_t k, Backend backend, Metric metric) {
  return run_transform(workspace(ws), data, n, d, centroids, k, backend, metric);
}
template <class T>
double score(WorkspacePtr<T>& ws, const T* data, std::size_t n, std::size_t d,
             const T* centroids, std::size_t k, ArrayView<T> sample_weight, Backend backend,
             Metric metric) {
  return run_score(workspace(ws), data, n, d, centroids, k, sample_weight, backend, metric);
}

#define KMEANS_INSTANTIATE(T)                                                                   \
  template std::vector<std::int32_t> predict<T>(WorkspacePtr<T>&, const T*, std::size_t,        \
                                                std::size_t, const T*, std::size_t, Backend,    \
                                                Metric);                                        \
  template void predict_to_device<T>(WorkspacePtr<T>&, const T*, std::size_t, std::size_t,      \
                                     const T*, std::size_t, Backend, Metric, std::int32_t*);    \
  template std::vector<T> transform<T>(WorkspacePtr<T>&, const T*, std::size_t, std::size_t,    \
                                       const T*, std::size_t, Backend, Metric);                 \
  template double score<T>(WorkspacePtr<T>&, const T*, std::size_t, std::size_t, const T*,      \
                           std::size_t, ArrayView<T>, Backend, Metric);
KMEANS_INSTANTIATE(float)
KMEANS_INSTANTIATE(double)
#undef KMEANS_INSTANTIATE

}  // namespace detail

template <class T>
std::vector<std::int32_t> predict(const T* data, std::size_t n, std::size_t d, const T* centroids,
                                  std::size_t k, Backend backend, Backend* used) {
  return detail::run_predict<T>(nullptr, data, n, d, centroids, k, backend, Metric::Euclidean,
                                used);
}

template <class T>
std::vector<std::int32_t> predict(const T* data, std::size_t n, std::size_t d, const T* centroids,
                                  std::size_t k, Metric metric, Backend backend, Backend* used) {
  return detail::run_predict<T>(nullptr, data, n, d, centroids, k, backend, metric, used);
}

template <class T>
void predict_to_device(const T* data, std::size_t n, std::size_t d, const T* centroids,
                       std::size_t k, std::int32_t* device_labels_out, Metric metric,
                       Backend backend, Backend* used) {
  detail::run_predict_to_device<T>(nullptr, data, n, d, centroids, k, backend, metric,
                                   device_labels_out, used);
}

template <class T>
std::vector<T> transform(const T* data, std::size_t n, std::size_t d, const T* centroids,
                         std::size_t k, Backend backend, Backend* used) {
  return detail::run_transform<T>(nullptr, data, n, d, centroids, k, backend,
                                  Metric::Euclidean, used);
}

template <class T>
std::vector<T> transform(const T* data, std::size_t n, std::size_t d, const T* centroids,
                         std::size_t k, Metric metric, Backend backend, Backend* used) {
  return detail::run_transform<T>(nullptr, data, n, d, centroids, k, backend, metric, used);
}

template <class T>
double score(const T* data, std::size_t n, std::size_t d, const T* centroids, std::size_t k,
             detail::NoDeduce<ArrayView<T>> sample_weight, Backend backend, Backend* used) {
  return detail::run_score<T>(nullptr, data, n, d, centroids, k, sample_weight, backend,
                              Metric::Euclidean, used);
}

template <class T>
double score(const T* data, std::size_t n, std::size_t d, const T* centroids, std::size_t k,
             Metric metric, detail::NoDeduce<ArrayView<T>> sample_weight, Backend backend,
             Backend* used) {
  return detail::run_score<T>(nullptr, data, n, d, centroids, k, sample_weight, backend, metric,
                              used);
}

template std::vector<std::int32_t> predict<float>(const float*, std::size_t, std::size_t,
                                                  const float*, std::size_t, Backend, Backend*);
template std::vector<std::int32_t> predict<double>(const double*, std::size_t, std::size_t,
                                                   const double*, std::size_t, Backend, Backend*);
template void predict_to_device<float>(const float*, std::size_t, std::size_t, const float*,
                                       std::size_t, std::int32_t*, Metric, Backend, Backend*);
template void predict_to_device<double>(const double*, std::size_t, std::size_t, const double*,
                                        std::size_t, std::int32_t*, Metric, Backend, Backend*);
template std::vector<float> transform<float>(const float*, std::size_t, std::size_t, const float*,
                                             std::size_t, Backend, Backend*);
template std::vector<double> transform<double>(const double*, std::size_t, std::size_t,
                                               const double*, std::size_t, Backend, Backend*);
template double score<float>(const float*, std::size_t, std::size_t, const float*, std::size_t,
                             ArrayView<float>, Backend, Backend*);
template double score<double>(const double*, std::size_t, std::size_t, const double*,
                              std::size_t, ArrayView<double>, Backend, Backend*);
template std::vector<std::int32_t> predict<float>(const float*, std::size_t, std::size_t,
                                                  const float*, std::size_t, Metric, Backend,
                                                  Backend*);
template std::vector<std::int32_t> predict<double>(const double*, std::size_t, std::size_t,
                                                   const double*, std::size_t, Metric, Backend,
                                                   Backend*);
template std::vector<float> transform<float>(const float*, std::size_t, std::size_t, const float*,
                                             std::size_t, Metric, Backend, Backend*);
template std::vector<double> transform<double>(const double*, std::size_t, std::size_t,
                                               const double*, std::size_t, Metric, Backend,
                                               Backend*);
template double score<float>(const float*, std::size_t, std::size_t, const float*, std::size_t,
                             Metric, ArrayView<float>, Backend, Backend*);
template double score<double>(const double*, std::size_t, std::size_t, const double*,
                              std::size_t, Metric, ArrayView<double>, Backend, Backend*);

}  // namespace kmeans
