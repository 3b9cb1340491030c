// SPDX-License-Identifier: Apache-2.0
// Input validation at the library boundary, and small fixed-order host reductions.
#include <omp.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstdint>
#include <cstring>
#include <limits>
#include <sstream>
#include <string>
#include <type_traits>
#include <unordered_set>
#include <vector>

#include "cpu_pool.hpp"
#include "engine.hpp"  // is_device_pointer
#include "internal.hpp"

namespace kmeans::detail {

// At most kMaxThreads (1024) threads: far more would crash or abort inside libgomp. Checked on
// every resolution, small problems included; the OpenMP default is clamped to it.
constexpr int kMaxThreads = 1024;
int resolve_threads(int n_threads) {
  if (n_threads > kMaxThreads) {
    throw Error("n_threads = " + std::to_string(n_threads) + " exceeds the limit of " +
                std::to_string(kMaxThreads) + " threads");
  }
  return n_threads > 0 ? n_threads : std::min(omp_get_max_threads(), kMaxThreads);
}

int threads_for(int n_threads, double work) {
  const int threads = resolve_threads(n_threads);
  return work < kMinParallelWork ? 1 : threads;
}

void validate_shape(const void* data, std::size_t n, std::size_t d, const char* what) {
  std::ostringstream msg;
  if (data == nullptr) {
    msg << what << " is a null pointer";
  } else if (n == 0) {
    msg << what << " has n = 0 samples";
  } else if (d == 0) {
    msg << what << " has d = 0 features";
  } else if (n > static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max()) / d ||
             n * d > std::numeric_limits<std::size_t>::max() / sizeof(double)) {
    msg << what << " size n * d = " << n << " * " << d << " overflows";
  } else {
    return;
  }
  throw Error(msg.str());
}

namespace {

/// The row-major index of the first element x[i] with bad(x[i]), or n * d when none, whatever
/// the thread count.
template <class T, class Bad>
std::int64_t first_bad_index(const T* x, std::int64_t n, std::int64_t d, int n_threads, Bad bad) {
  const std::int64_t total = n * d;
  constexpr std::int64_t kSpan = kReduceBlock * 16;
  const std::int64_t spans = (total + kSpan - 1) / kSpan;
  std::vector<std::int64_t> first(static_cast<std::size_t>(spans), total);
  auto scan = [&](std::int64_t s, int) {
    const std::int64_t b = s * kSpan, end = std::min(total, b + kSpan);
    for (std::int64_t i = b; i < end; ++i)
      if (bad(x[i])) {
        first[static_cast<std::size_t>(s)] = i;
        break;
      }
  };
  cpu::parallel_for(threads_for(n_threads, static_cast<double>(total)), spans, scan);
  std::int64_t first_bad = total;
  for (const std::int64_t f : first) first_bad = std::min(first_bad, f);
  return first_bad;
}

}  // namespace

template <class T>
void validate_finite(const T* x, std::int64_t n, std::int64_t d, const char* what, int n_threads) {
  const std::int64_t i =
      first_bad_index(x, n, d, n_threads, [](T v) { return !std::isfinite(v); });
  if (i < n * d) {
    std::ostringstream msg;
    msg << what << " contains " << (std::isnan(x[i]) ? "NaN" : "Inf") << " at row " << i / d
        << ", column " << i % d;
    throw Error(msg.str());
  }
}

/// The shortest decimal text of v that reads back as the same value of the data type.
std::string shortest_text(double v, bool is_float) {
  char buf[40];
  for (int digits = 6; digits <= 17; ++digits) {
    std::snprintf(buf, sizeof buf, "%.*g", digits, v);
    const double back = std::strtod(buf, nullptr);
    if (is_float ? static_cast<float>(back) == static_cast<float>(v) : back == v) break;
  }
  return buf;
}

std::string point_error(const char* what, double value, std::int64_t row, std::int64_t col,
                        std::int64_t d, bool is_float) {
  std::ostringstream msg;
  if (std::isnan(value) || std::isinf(value)) {
    msg << what << " contains " << (std::isnan(value) ? "NaN" : "Inf") << " at row " << row
        << ", column " << col;
  } else {
    const double bound = is_float ? max_abs_value<float>(static_cast<std::size_t>(d))
                                  : max_abs_value<double>(static_cast<std::size_t>(d));
    const std::string b = shortest_text(bound, false);  // 3 digits, exactly the bound
    msg << what << " value " << shortest_text(value, is_float) << " at row " << row
        << ", column " << col << " is outside the supported range [-" << b << ", " << b << "] for "
        << (is_float ? "float32" : "float64") << " with d = " << d
        << (is_float ? " (|x| <= sqrt(FLT_MAX / (8 d)), so that squared distances in float32 "
                       "cannot overflow)"
                     : " (|x| <= sqrt(DBL_MAX / (8 d)) / 2^40, so that sums of squared "
                       "distances cannot overflow)");
  }
  return msg.str();
}

#if defined(__SSE2__)
// SSE2's float and double forms under one name, for max_abs_sse2.
inline __m128 sse_load(const float* p) { return _mm_loadu_ps(p); }
inline __m128d sse_load(const double* p) { return _mm_loadu_pd(p); }
inline __m128 sse_abs(__m128 v) { return _mm_andnot_ps(_mm_set1_ps(-0.0f), v); }
inline __m128d sse_abs(__m128d v) { return _mm_andnot_pd(_mm_set1_pd(-0.0), v); }
inline __m128 sse_not_le(__m128 a, __m128 b) { return _mm_cmpnle_ps(a, b); }
inline __m128d sse_not_le(__m128d a, __m128d b) { return _mm_cmpnle_pd(a, b); }
inline __m128 sse_or(__m128 a, __m128 b) { return _mm_or_ps(a, b); }
inline __m128d sse_or(__m128d a, __m128d b) { return _mm_or_pd(a, b); }
inline __m128 sse_max(__m128 a, __m128 b) { return _mm_max_ps(a, b); }
inline __m128d sse_max(__m128d a, __m128d b) { return _mm_max_pd(a, b); }
inline __m128 sse_splat(float v) { return _mm_set1_ps(v); }
inline __m128d sse_splat(double v) { return _mm_set1_pd(v); }
inline int sse_any(__m128 m) { return _mm_movemask_ps(m); }
inline int sse_any(__m128d m) { return _mm_movemask_pd(m); }

/// The largest |x[i]| over whole pairs of SSE2 vectors from i on (below re), and whether any
/// |x[i]| is not <= bound (NaN included); i ends at the first value not covered.
template <class T>
inline void max_abs_sse2(const T* x, std::int64_t& i, std::int64_t re, T bound, T& top,
                         bool& bad) {
  constexpr int W = 16 / sizeof(T);
  const auto lim = sse_splat(bound);
  auto t0 = sse_splat(T(0)), t1 = t0, bad_v = t0;
  for (; i + 2 * W <= re; i += 2 * W) {
    const auto a0 = sse_abs(sse_load(x + i)), a1 = sse_abs(sse_load(x + i + W));
    bad_v = sse_or(bad_v, sse_or(sse_not_le(a0, lim), sse_not_le(a1, lim)));
    t0 = sse_max(t0, a0);
    t1 = sse_max(t1, a1);
  }
  const auto m = sse_max(t0, t1);
  T lanes[W];
  std::memcpy(lanes, &m, sizeof lanes);
  for (T l : lanes) top = l > top ? l : top;
  bad = bad || sse_any(bad_v) != 0;
}
#endif

template <class T>
double validate_points(const T* x, std::int64_t n, std::int64_t d, const char* what,
                       int n_threads) {
  const double bound = max_abs_value<T>(static_cast<std::size_t>(d));
  // The bound in T, rounded down: |v| <= bound_t exactly when |v| <= bound, for every v in T.
  T bound_t = static_cast<T>(bound);
  if (static_cast<double>(bound_t) > bound) bound_t = std::nextafter(bound_t, T(0));
  const std::int64_t total = n * d;
  // One pass: the first element beyond the bound (or NaN: !(|v| <= bound)), in row-major order
  // whatever the thread count, and the largest magnitude. On the CPU backend's pool, not in an
  // OpenMP team: a team's idle thread spins on after the loop, and on 2 cores it took a core from
  // the fit's first pass (5000 x 2048, 2 threads: 20 ms instead of 11, bench/NOTES.md).
  constexpr std::int64_t kSpan = kReduceBlock * 16;
  const std::int64_t spans = (total + kSpan - 1) / kSpan;
  std::vector<std::int64_t> first(static_cast<std::size_t>(spans), total);
  std::vector<double> most(static_cast<std::size_t>(spans), 0.0);
  auto scan = [&](std::int64_t s, int) {
    const std::int64_t b = s * kSpan;
    const std::int64_t end = std::min(total, b + kSpan);
    std::int64_t& first_bad = first[static_cast<std::size_t>(s)];
    double& largest = most[static_cast<std::size_t>(s)];
    // Runs of kRun values without a branch, in vectors where SSE2 is there (a scalar scan with
    // an early exit cost more than a k-means iteration at 60k x 784); a run with a bad value is
    // scanned again for the first one.
    constexpr std::int64_t kRun = 1024;
    for (std::int64_t r = b; r < end; r += kRun) {
      const std::int64_t re = std::min(end, r + kRun);
      T top = 0;
      bool bad = false;
      std::int64_t i = r;
#if defined(__SSE2__)
      max_abs_sse2(x, i, re, bound_t, top, bad);  // whole vectors; i moves past them
#endif
      for (; i < re; ++i) {
        const T a = std::fabs(x[i]);
        bad = bad || !(a <= bound_t);
        top = a > top ? a : top;
      }
      if (bad) {
        std::int64_t f = r;
        while (std::fabs(x[f]) <= bound_t) ++f;
        first_bad = std::min(first_bad, f);
        break;
      }
      largest = std::max(largest, static_cast<double>(top));
    }
  };
  cpu::parallel_for(threads_for(n_threads, static_cast<double>(total)), spans, scan);
  std::int64_t first_bad = total;
  for (const std::int64_t f : first) first_bad = std::min(first_bad, f);
  double largest = 0;
  for (const double m : most) largest = std::max(largest, m);
  if (first_bad < total)
    throw Error(point_error(what, static_cast<double>(x[first_bad]), first_bad / d,
                            first_bad % d, d, std::is_same<T, float>::value));
  return largest;
}

template <class T>
int data_scale_exponent(double max_abs) {
  // Below these magnitudes the squared difference of neighbouring values of T leaves the
  // normal range of T (float: (2^-28 * 2^-23)^2 = 2^-102; double: (2^-432 * 2^-52)^2 = 2^-968).
  const double small = std::is_same<T, float>::value ? 0x1p-28 : 0x1p-432;
  if (!(max_abs > 0) || max_abs >= small) return 0;
  return -std::ilogb(max_abs);  // max_abs * 2^e is in [1, 2)
}

template <class T>
void check_weights_view(ArrayView<T> weights, std::size_t n) {
  if (weights.empty()) return;
  if (weights.data() == nullptr)
    throw Error("sample_weight is a null pointer with size " + std::to_string(weights.size()));
  if (weights.size() != n)
    throw Error("sample_weight has " + std::to_string(weights.size()) +
                " values but the data has n = " + std::to_string(n) + " samples");
}

template <class T>
double validate_init_centroids(const Params<T>& p, std::size_t d) {
  if (p.init != Init::Array) return 0;
  const T* c = p.init_centroids.data();
  if (c == nullptr) throw Error("init = Array but Params::init_centroids is a null pointer");
  const std::size_t want = static_cast<std::size_t>(p.k) * d;
  if (p.init_centroids.size() != want)
    throw Error("init_centroids has " + std::to_string(p.init_centroids.size()) +
                " values but k x d = " + std::to_string(p.k) + " x " + std::to_string(d) +
                " needs " + std::to_string(want));
  if (is_device_pointer(c)) throw Error("init_centroids must be in host memory");
  return validate_points(c, p.k, static_cast<std::int64_t>(d), "init_centroids", p.n_threads);
}

template <class T>
WeightStats validate_weights(const T* w, std::int64_t n, int n_threads) {
  validate_finite(w, n, 1, "sample_weight", n_threads);
  WeightStats s;
  for (std::int64_t i = 0; i < n; ++i) {
    if (w[i] < 0) {
      std::ostringstream msg;
      msg << "sample_weight[" << i << "] = " << w[i] << " is negative";
      throw Error(msg.str());
    }
    s.total += w[i];
    s.max = std::max(s.max, static_cast<double>(w[i]));
  }
  if (!(s.max > 0)) throw Error("sample_weight sums to 0: at least one weight must be positive");
  if (!(s.total <= std::numeric_limits<double>::max())) {
    std::ostringstream msg;
    msg << "sample_weight sums to more than the largest double (" 
        << std::numeric_limits<double>::max() << "; the largest weight is " << s.max
        << "): scale the weights down so that their total is finite";
    throw Error(msg.str());
  }
  return s;
}

template <class T>
int weight_scale_exponent(const WeightStats& w) {
  if (!std::is_same<T, double>::value) return 0;
  if (w.total <= 0x1p64 && w.max >= 0x1p-64) return 0;
  return std::ilogb(w.max);  // w.max * 2^-e is in [1, 2)
}

template <class T>
std::int64_t count_distinct_rows(const T* x, std::int64_t n, std::int64_t d, std::int64_t limit) {
  auto hash = [x, d](std::int64_t i) {
    std::uint64_t h = 0x9E3779B97F4A7C15ull;
    for (std::int64_t j = 0; j < d; ++j) {
      const double v = static_cast<double>(x[i * d + j]) + 0.0;  // -0 + 0 = +0
      std::uint64_t bits;
      std::memcpy(&bits, &v, sizeof bits);
      h = (h ^ bits) * 0x100000001B3ull;
      h ^= h >> 29;
    }
    return static_cast<std::size_t>(h);
  };
  auto equal = [x, d](std::int64_t a, std::int64_t b) {
    for (std::int64_t j = 0; j < d; ++j)
      if (!(x[a * d + j] == x[b * d + j])) return false;
    return true;
  };
  std::unordered_set<std::int64_t, decltype(hash), decltype(equal)> seen(
      static_cast<std::size_t>(std::min(limit, n)) * 2 + 1, hash, equal);
  for (std::int64_t i = 0; i < n && static_cast<std::int64_t>(seen.size()) < limit; ++i)
    seen.insert(i);
  return static_cast<std::int64_t>(seen.size());
}

template <class T>
void block_column_sums(const T* x, std::int64_t rows, std::int64_t d,
                       const std::vector<double>* mean, double* part, int n_threads) {
  const std::int64_t n_blocks = (rows + kReduceBlock - 1) / kReduceBlock;
  auto block = [&](std::int64_t b, int) {
    double* acc = part + b * d;
    for (std::int64_t j = 0; j < d; ++j) acc[j] = 0;
    const std::int64_t end = std::min(rows, (b + 1) * kReduceBlock);
    for (std::int64_t i = b * kReduceBlock; i < end; ++i) {
      for (std::int64_t j = 0; j < d; ++j) {
        const double v = static_cast<double>(x[i * d + j]);
        if (mean) {
          const double dv = v - (*mean)[j];
          acc[j] += dv * dv;
        } else {
          acc[j] += v;
        }
      }
    }
  };
  cpu::parallel_for(threads_for(n_threads, double(rows) * d), n_blocks, block);
}

template <class T>
double mean_feature_variance(const T* x, std::int64_t n, std::int64_t d, int n_threads) {
  // Two passes in double (mean, then squared deviations), per block then in block order.
  const std::int64_t n_blocks = (n + kReduceBlock - 1) / kReduceBlock;
  std::vector<double> part(static_cast<std::size_t>(n_blocks * d));
  auto pass = [&](const std::vector<double>* mean) {
    block_column_sums(x, n, d, mean, part.data(), n_threads);
    return column_means(part.data(), n_blocks, d, n);
  };
  const std::vector<double> mean = pass(nullptr);
  return mean_of(pass(&mean));
}

std::vector<double> column_means(const double* part, std::int64_t n_blocks, std::int64_t d,
                                 std::int64_t n) {
  std::vector<double> total(static_cast<std::size_t>(d), 0.0);
  for (std::int64_t b = 0; b < n_blocks; ++b)
    for (std::int64_t j = 0; j < d; ++j) total[j] += part[b * d + j];
  for (auto& t : total) t /= static_cast<double>(n);
  return total;
}

double mean_of(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s / static_cast<double>(v.size());
}

#define KMEANS_INSTANTIATE(T)                                                                   \
  template void validate_finite<T>(const T*, std::int64_t, std::int64_t, const char*, int);    \
  template double validate_points<T>(const T*, std::int64_t, std::int64_t, const char*, int);  \
  template int data_scale_exponent<T>(double);                                                  \
  template void check_weights_view<T>(ArrayView<T>, std::size_t);                               \
  template double validate_init_centroids<T>(const Params<T>&, std::size_t);                    \
  template WeightStats validate_weights<T>(const T*, std::int64_t, int);                        \
  template std::int64_t count_distinct_rows<T>(const T*, std::int64_t, std::int64_t,            \
                                               std::int64_t);                                   \
  template int weight_scale_exponent<T>(const WeightStats&);                                    \
  template double mean_feature_variance<T>(const T*, std::int64_t, std::int64_t, int);       \
  template void block_column_sums<T>(const T*, std::int64_t, std::int64_t,                   \
                                     const std::vector<double>*, double*, int);
KMEANS_INSTANTIATE(float)
KMEANS_INSTANTIATE(double)
#undef KMEANS_INSTANTIATE

}  // namespace kmeans::detail

namespace kmeans {

namespace {
/// v rounded down to 3 significant decimal digits (v > 0): a bound that prints exactly.
double round_down_3_digits(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2e", v);
  double r = std::strtod(buf, nullptr);
  if (r > v) {  // %.2e rounded up: one unit less in the last digit
    double mantissa = 0;
    int exponent = 0;
    std::sscanf(buf, "%lfe%d", &mantissa, &exponent);
    std::snprintf(buf, sizeof buf, "%.2fe%d", mantissa - 0.01, exponent);
    r = std::strtod(buf, nullptr);
  }
  return r;
}
}  // namespace

template <class T>
double max_abs_value(std::size_t d) {
  const double dd = static_cast<double>(d < 1 ? 1 : d);
  const double raw =
      std::is_same<T, float>::value
          ? std::sqrt(static_cast<double>(std::numeric_limits<float>::max()) / (8 * dd))
          : std::sqrt(std::numeric_limits<double>::max() / (8 * dd)) * 0x1p-40;
  return round_down_3_digits(raw);
}
template double max_abs_value<float>(std::size_t);
template double max_abs_value<double>(std::size_t);

}  // namespace kmeans
