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

/// x * 2^-e, exactly ldexp(x, -e) (a product by a power of two is rounded once, as ldexp):
/// a multiplication where 2^-e is a normal double, which is much faster than ldexp.
struct PowerOfTwo {
  int e;
  double scale;
  explicit PowerOfTwo(int exponent)
      : e(exponent), scale(exponent > -1000 && exponent < 1000 ? std::ldexp(1.0, -exponent) : 0) {}
  double apply(double x) const { return scale != 0 ? x * scale : std::ldexp(x, -e); }
};

/// What normalise_rows sees in one row: its kind, and for a finite non-zero row the exponent
/// e of its largest |x_j| and s = sum_j (x_j 2^-e)^2 (in feature order).
template <class T>
RowKind inspect_row(const T* x, std::int64_t d, int& e, double& s) {
  double m = 0;
  bool finite = true;
  for (std::int64_t j = 0; j < d; ++j) {
    const double a = std::fabs(static_cast<double>(x[j]));
    finite = finite && std::isfinite(a);
    m = std::max(m, a);
  }
  if (!finite) return RowKind::NonFinite;
  if (m == 0) return RowKind::Zero;
  e = std::ilogb(m);  // x * 2^-e has its largest |value| in [1, 2)
  const PowerOfTwo p(e);
  s = 0;
  for (std::int64_t j = 0; j < d; ++j) {
    const double v = p.apply(static_cast<double>(x[j]));
    s += v * v;
  }
  return RowKind::Done;
}

/// True when sum_j x_j^2 is within `tolerance` of 1 (exact: 2^(2e) s).
inline bool within(int e, double s, double tolerance) {
  return std::fabs(std::ldexp(s, 2 * e) - 1.0) <= tolerance;
}

/// True for a finite row that is unit already (normalise_rows keeps it as it is).
template <class T>
bool is_unit_row(const T* x, std::int64_t d, double tolerance) {
  int e = 0;
  double s = 0;
  return inspect_row(x, d, e, s) == RowKind::Done && within(e, s, tolerance);
}

/// One row (normalise_rows' rules).
template <class T>
RowKind normalise_row(const T* x, std::int64_t d, T* out, double tolerance) {
  int e = 0;
  double s = 0;
  const RowKind kind = inspect_row(x, d, e, s);
  if (kind == RowKind::Zero) return kind;
  if (kind == RowKind::NonFinite || within(e, s, tolerance)) {  // kept as it is
    if (out != x) std::copy(x, x + d, out);
    return kind;
  }
  const PowerOfTwo p(e);
  const double norm = std::sqrt(s);
  for (std::int64_t j = 0; j < d; ++j) out[j] = static_cast<T>(p.apply(static_cast<double>(x[j])) / norm);
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
  const PowerOfTwo p(std::ilogb(m));
  double s = 0;
  for (std::int64_t j = 0; j < d; ++j) {
    const double v = p.apply(mean[j]);
    s += v * v;
  }
  const double norm = std::sqrt(s);
  for (std::int64_t j = 0; j < d; ++j) c[j] = static_cast<T>(p.apply(mean[j]) / norm);
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
  // Data already on the sphere (normalised embeddings) is used in place: no copy. The first
  // row decides cheaply for most other data.
  const double tolerance = unit_tolerance<T>(d);
  bool unit = is_unit_row(data, d, tolerance);
  if (unit) {
#pragma omp parallel for schedule(static) reduction(&& : unit) \
    num_threads(threads_for(n_threads, static_cast<double>(n) * static_cast<double>(d)))
    for (std::int64_t i = 1; i < n; ++i) unit = unit && is_unit_row(data + i * d, d, tolerance);
  }
  if (unit) {
    out.data = data;
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
