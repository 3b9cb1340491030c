// SPDX-License-Identifier: Apache-2.0
// Input validation at the library boundary, and small fixed-order host reductions.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

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

template <class T>
void validate_finite(const T* x, std::int64_t n, std::int64_t d, const char* what, int n_threads) {
  // Find the first bad element in row-major order, whatever the thread count.
  const std::int64_t total = n * d;
  std::int64_t first_bad = total;
#pragma omp parallel for schedule(static) reduction(min : first_bad) \
    num_threads(threads_for(n_threads, static_cast<double>(total)))
  for (std::int64_t b = 0; b < total; b += kReduceBlock * 16) {
    const std::int64_t end = std::min(total, b + kReduceBlock * 16);
    for (std::int64_t i = b; i < end; ++i) {
      if (!std::isfinite(x[i])) {
        first_bad = std::min(first_bad, i);
        break;
      }
    }
  }
  if (first_bad < total) {
    std::ostringstream msg;
    msg << what << " contains " << (std::isnan(x[first_bad]) ? "NaN" : "Inf") << " at row "
        << first_bad / d << ", column " << first_bad % d;
    throw Error(msg.str());
  }
}

template <class T>
void validate_weights(const T* w, std::int64_t n, int n_threads) {
  validate_finite(w, n, 1, "sample_weight", n_threads);
  double total = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    if (w[i] < 0) {
      std::ostringstream msg;
      msg << "sample_weight[" << i << "] = " << w[i] << " is negative";
      throw Error(msg.str());
    }
    total += w[i];
  }
  if (!(total > 0)) throw Error("sample_weight sums to 0: at least one weight must be positive");
}

template <class T>
double mean_feature_variance(const T* x, std::int64_t n, std::int64_t d, int n_threads) {
  // Two passes in double (mean, then squared deviations), per block then in block order.
  const std::int64_t n_blocks = (n + kReduceBlock - 1) / kReduceBlock;
  std::vector<double> part(static_cast<std::size_t>(n_blocks * d));
  auto pass = [&](const std::vector<double>* mean) {
#pragma omp parallel for schedule(static) num_threads(threads_for(n_threads, double(n) * d))
    for (std::int64_t b = 0; b < n_blocks; ++b) {
      double* acc = &part[static_cast<std::size_t>(b * d)];
      for (std::int64_t j = 0; j < d; ++j) acc[j] = 0;
      const std::int64_t end = std::min(n, (b + 1) * kReduceBlock);
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
    }
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
  template void validate_weights<T>(const T*, std::int64_t, int);                               \
  template double mean_feature_variance<T>(const T*, std::int64_t, std::int64_t, int);
KMEANS_INSTANTIATE(float)
KMEANS_INSTANTIATE(double)
#undef KMEANS_INSTANTIATE

}  // namespace kmeans::detail
