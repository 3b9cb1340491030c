// SPDX-License-Identifier: Apache-2.0
// Spherical k-means' host arithmetic (sphere.hpp): row normalisation and unit centroids.
#include "sphere.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "engine.hpp"
#include "internal.hpp"

namespace kmeans::detail {

template <class T>
double unit_tolerance(std::int64_t d) {
  return 4.0 * std::numeric_limits<T>::epsilon() +
         4.0 * static_cast<double>(d) * std::numeric_limits<double>::epsilon();
}

std::string zero_row_error(const char* what, std::int64_t row) {
  return std::string("metric = cosine: ") + what + " row " + std::to_string(row) +
         " has zero norm (every value is 0), so it has no direction; remove the row or use "
         "metric = euclidean";
}

namespace {

enum class RowKind { Done, Zero, NonFinite };

/// One row (normalise_rows' rules).
template <class T>
RowKind normalise_row(const T* x, std::int64_t d, T* out, double tolerance) {
  double m = 0;
  bool finite = true;
  for (std::int64_t j = 0; j < d; ++j) {
    const double a = std::fabs(static_cast<double>(x[j]));
    finite = finite && std::isfinite(a);
    m = std::max(m, a);
  }
  if (!finite) {  // left for the caller's validation to name
    if (out != x) std::copy(x, x + d, out);
    return RowKind::NonFinite;
  }
  if (m == 0) return RowKind::Zero;
  const int e = std::ilogb(m);  // x * 2^-e has its largest |value| in [1, 2)
  double s = 0;
  for (std::int64_t j = 0; j < d; ++j) {
    const double v = std::ldexp(static_cast<double>(x[j]), -e);
    s += v * v;
  }
  if (std::fabs(std::ldexp(s, 2 * e) - 1.0) <= tolerance) {  // unit already (exact rescale)
    if (out != x) std::copy(x, x + d, out);
    return RowKind::Done;
  }
  const double norm = std::sqrt(s);
  for (std::int64_t j = 0; j < d; ++j)
    out[j] = static_cast<T>(std::ldexp(static_cast<double>(x[j]), -e) / norm);
  return RowKind::Done;
}

}  // namespace

template <class T>
void normalise_rows(const T* x, std::int64_t n, std::int64_t d, T* out, const char* what,
                    int n_threads) {
  const double tolerance = unit_tolerance<T>(d);
  std::int64_t first_zero = n, first_non_finite = n;
#pragma omp parallel for schedule(static) reduction(min : first_zero, first_non_finite) \
    num_threads(threads_for(n_threads, static_cast<double>(n) * static_cast<double>(d)))
  for (std::int64_t i = 0; i < n; ++i) {
    const RowKind kind = normalise_row(x + i * d, d, out + i * d, tolerance);
    if (kind == RowKind::Zero) first_zero = std::min(first_zero, i);
    if (kind == RowKind::NonFinite) first_non_finite = std::min(first_non_finite, i);
  }
  // The first bad row is named: a NaN or infinity before it is left to the validation.
  if (first_zero < first_non_finite) throw Error(zero_row_error(what, first_zero));
}

template <class T>
bool unit_from_mean(const double* mean, std::int64_t d, T* c) {
  double m = 0;
  for (std::int64_t j = 0; j < d; ++j) m = std::max(m, std::fabs(mean[j]));
  if (!(m > 0) || !std::isfinite(m)) return false;
  const int e = std::ilogb(m);
  double s = 0;
  for (std::int64_t j = 0; j < d; ++j) {
    const double v = std::ldexp(mean[j], -e);
    s += v * v;
  }
  const double norm = std::sqrt(s);
  for (std::int64_t j = 0; j < d; ++j) c[j] = static_cast<T>(std::ldexp(mean[j], -e) / norm);
  return true;
}

template <class T>
const T* to_sphere(const T* data, std::int64_t n, std::int64_t d, const char* what,
                   int n_threads, SphereData<T>& out) {
  out = SphereData<T>{};
  if (is_device_pointer(data)) {
    out.device = normalise_rows_device(data, n, d, what);
    out.data = static_cast<const T*>(out.device.get());
    return out.data;
  }
  out.host.resize(static_cast<std::size_t>(n * d));
  normalise_rows(data, n, d, out.host.data(), what, n_threads);
  out.data = out.host.data();
  return out.data;
}

#define KMEANS_INSTANTIATE(T)                                                                  \
  template double unit_tolerance<T>(std::int64_t);                                             \
  template void normalise_rows<T>(const T*, std::int64_t, std::int64_t, T*, const char*, int); \
  template bool unit_from_mean<T>(const double*, std::int64_t, T*);                            \
  template const T* to_sphere<T>(const T*, std::int64_t, std::int64_t, const char*, int,       \
                                 SphereData<T>&);
KMEANS_INSTANTIATE(float)
KMEANS_INSTANTIATE(double)
#undef KMEANS_INSTANTIATE

}  // namespace kmeans::detail
