// SPDX-License-Identifier: Apache-2.0
// kmeans::KMeans<T>, the estimator class: its members are defined here, in the library, so that
// the engines it keeps (kmeans::detail) stay internal to the shared library.
#include <string>
#include <utility>

#include "engine.hpp"
#include "kmeans/kmeans.hpp"

namespace kmeans {

template <class T>
KMeans<T>::KMeans(Params<T> p) : params_(std::move(p)) {}

template <class T>
KMeans<T>::KMeans(const KMeans& o)
    : params_(o.params_), result_(o.result_), d_(o.d_), fitted_(o.fitted_), loaded_(o.loaded_),
      stream_(o.stream_) {}

template <class T>
KMeans<T>& KMeans<T>::operator=(const KMeans& o) {
  if (this != &o) {
    params_ = o.params_;
    result_ = o.result_;
    d_ = o.d_;
    fitted_ = o.fitted_;
    loaded_ = o.loaded_;
    stream_ = o.stream_;
    ws_.reset();  // copies share no engines
  }
  return *this;
}

template <class T>
KMeans<T>::KMeans(KMeans&& o) noexcept
    : params_(std::move(o.params_)), result_(std::move(o.result_)), d_(o.d_),
      fitted_(o.fitted_), loaded_(o.loaded_), ws_(std::move(o.ws_)), stream_(std::move(o.stream_)) {
  o.d_ = 0;
  o.fitted_ = false;
  o.loaded_ = false;
  o.stream_ = detail::StreamState{};
}

template <class T>
KMeans<T>& KMeans<T>::operator=(KMeans&& o) noexcept {
  if (this != &o) {
    params_ = std::move(o.params_);
    result_ = std::move(o.result_);
    d_ = o.d_;
    fitted_ = o.fitted_;
    loaded_ = o.loaded_;
    ws_ = std::move(o.ws_);
    stream_ = std::move(o.stream_);
    o.d_ = 0;
    o.fitted_ = false;
    o.loaded_ = false;
    o.stream_ = detail::StreamState{};
  }
  return *this;
}

template <class T>
KMeans<T>::~KMeans() = default;

template <class T>
KMeans<T>& KMeans<T>::fit(const T* data, std::size_t n, std::size_t d) {
  // The engines leave the object for the duration of the fit, so nothing done from inside
  // on_iteration (a nested fit, release(), an assignment) can free or rebind them.
  detail::WorkspacePtr<T> ws = std::move(ws_);
  Result<T> r;
  try {
    r = detail::fit(ws, data, n, d, params_);
  } catch (...) {
    ws_ = std::move(ws);
    throw;
  }
  ws_ = std::move(ws);
  result_ = std::move(r);
  d_ = d;
  fitted_ = true;
  loaded_ = false;
  stream_ = detail::StreamState{};  // a later partial_fit starts from this fit
  return *this;
}

template <class T>
KMeans<T>& KMeans<T>::partial_fit(const T* data, std::size_t n, std::size_t d) {
  Params<T> q = params_;
  q.n_init = 1;
  detail::StreamState st = stream_;
  if (fitted_) {
    if (d != d_) {
      throw Error("partial_fit: d = " + std::to_string(d) + " differs from the fitted d = " +
                  std::to_string(d_));
    }
    // Continue from the fitted centroids (and, after fit(), counts = its cluster sizes).
    q.k = static_cast<int>(k());
    q.init = Init::Array;
    q.init_centroids = result_.centroids;
    if (st.counts.empty()) st.counts = result_.cluster_sizes;
  }
  detail::WorkspacePtr<T> ws = std::move(ws_);
  Result<T> r;
  try {
    r = detail::fit(ws, data, n, d, q, &st);
  } catch (...) {
    ws_ = std::move(ws);
    throw;
  }
  ws_ = std::move(ws);
  result_ = std::move(r);
  stream_ = std::move(st);
  d_ = d;
  fitted_ = true;
  loaded_ = false;
  return *this;
}

template <class T>
std::vector<std::int32_t> KMeans<T>::predict(const T* data, std::size_t n) const {
  check_fitted();
  return detail::predict(ws_, data, n, d_, result_.centroids.data(), k(), serving_backend(),
                           params_.metric);
}

template <class T>
void KMeans<T>::predict(const T* data, std::size_t n, std::int32_t* device_labels_out) const {
  check_fitted();
  detail::predict_to_device(ws_, data, n, d_, result_.centroids.data(), k(), serving_backend(),
                            params_.metric, device_labels_out);
}

template <class T>
std::vector<T> KMeans<T>::transform(const T* data, std::size_t n) const {
  check_fitted();
  return detail::transform(ws_, data, n, d_, result_.centroids.data(), k(), serving_backend(),
                           params_.metric);
}

template <class T>
double KMeans<T>::score(const T* data, std::size_t n, ArrayView<T> sample_weight) const {
  check_fitted();
  return detail::score(ws_, data, n, d_, result_.centroids.data(), k(), sample_weight,
                       serving_backend(), params_.metric);
}

template <class T>
void KMeans<T>::release() noexcept {
  ws_.reset();
}

template class KMeans<float>;
template class KMeans<double>;

}  // namespace kmeans
