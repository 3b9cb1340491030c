// SPDX-License-Identifier: Apache-2.0
// DataOps over chunks: the host DataOps' loops (init.cpp, validate.cpp) chunk by chunk, every
// sum in the same order, so a streamed initialisation chooses the in-memory one's points.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <type_traits>
#include <vector>

#include "stream/chunks.hpp"

namespace kmeans::detail::stream {
namespace {

template <class T>
class StreamDataOps final : public DataOps<T> {
 public:
  StreamDataOps(Chunks<T>& chunks, const T* w, int n_threads)
      : c_(chunks), w_(w), n_threads_(n_threads) {}

  std::int64_t size() const override { return c_.n(); }
  std::int64_t dim() const override { return c_.d(); }
  const T* weights() override { return w_; }

  void rows(const std::int64_t* idx, std::int64_t m, T* out) override { c_.gather(idx, m, out); }

  std::vector<std::int64_t> greedy_kmeanspp(int, int, const double*) override {
    throw Error("init = k-means++ is not supported by a streamed fit (its k - 1 greedy steps "
                "would each read the data twice); use k-means|| or random");
  }

  void lower_closest(const std::int64_t* idx, std::int64_t m, double* closest) override {
    const std::int64_t d = c_.d();
    std::vector<T> cx(static_cast<std::size_t>(m * d));
    c_.gather(idx, m, cx.data());
    c_.for_each([&](std::int64_t first, std::int64_t rows, const T* x) {
      const int nt = threads_for(n_threads_, static_cast<double>(rows) * m * d);
      double* cl = closest + first;
      for_each_tile(x, rows, d, nt, [&](TileScratch& ts, std::int64_t i0, std::int64_t r) {
        for (std::int64_t c = 0; c < m; ++c) {
          tile_squared_distances(ts.xt.data(), ts.rows, r, d, cx.data() + c * d, ts.s.data());
          for (std::int64_t q = 0; q < r; ++q) cl[i0 + q] = std::min(cl[i0 + q], ts.s[q]);
        }
      });
    });
  }

  void nearest(const std::int64_t* idx, std::int64_t m, std::int64_t* out) override {
    const std::int64_t d = c_.d();
    std::vector<T> cx(static_cast<std::size_t>(m * d));
    c_.gather(idx, m, cx.data());
    c_.for_each([&](std::int64_t first, std::int64_t rows, const T* x) {
      const int nt = threads_for(n_threads_, static_cast<double>(rows) * m * d);
      std::int64_t* o = out + first;
      for_each_tile(x, rows, d, nt, [&](TileScratch& ts, std::int64_t i0, std::int64_t r) {
        double best[kTileMaxRows];
        std::fill(best, best + r, std::numeric_limits<double>::infinity());
        std::fill(o + i0, o + i0 + r, std::int64_t{0});
        for (std::int64_t c = 0; c < m; ++c) {
          tile_squared_distances(ts.xt.data(), ts.rows, r, d, cx.data() + c * d, ts.s.data());
          for (std::int64_t q = 0; q < r; ++q)
            if (ts.s[q] < best[q]) {
              best[q] = ts.s[q];
              o[i0 + q] = c;
            }
        }
      });
    });
  }

  /// validate.cpp's mean_feature_variance: per-block column sums (then squared deviations)
  /// in double, each block in row order, the blocks added in block order by column_means.
  double mean_feature_variance() override {
    const std::int64_t n = c_.n(), d = c_.d();
    const std::int64_t n_blocks = (n + kBlock - 1) / kBlock;
    std::vector<double> part(static_cast<std::size_t>(n_blocks * d));
    auto pass = [&](const std::vector<double>* mean) {
      c_.for_each([&](std::int64_t first, std::int64_t rows, const T* x) {
        const std::int64_t b0 = first / kBlock, nb = (rows + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) num_threads(threads_for(n_threads_, double(rows) * d))
        for (std::int64_t b = 0; b < nb; ++b) {
          double* acc = &part[static_cast<std::size_t>((b0 + b) * d)];
          for (std::int64_t j = 0; j < d; ++j) acc[j] = 0;
          const std::int64_t end = std::min(rows, (b + 1) * kBlock);
          for (std::int64_t i = b * kBlock; i < end; ++i) {
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
      });
      return column_means(part.data(), n_blocks, d, n);
    };
    const std::vector<double> mean = pass(nullptr);
    return mean_of(pass(&mean));
  }

 private:
  Chunks<T>& c_;
  const T* w_;
  int n_threads_;
};

}  // namespace

template <class T>
std::unique_ptr<DataOps<T>> make_stream_data_ops(Chunks<T>& chunks, const T* w, int n_threads) {
  return std::make_unique<StreamDataOps<T>>(chunks, w, n_threads);
}

template <class T>
double validate_stream_points(Chunks<T>& chunks, int n_threads) {
  const std::int64_t d = chunks.d();
  const double bound = max_abs_value<T>(static_cast<std::size_t>(d));
  double largest = 0;
  chunks.for_each([&](std::int64_t first, std::int64_t rows, const T* x) {
    const std::int64_t total = rows * d;
    std::int64_t first_bad = total;
    double big = 0;
#pragma omp parallel for schedule(static) reduction(min : first_bad) reduction(max : big) \
    num_threads(threads_for(n_threads, static_cast<double>(total)))
    for (std::int64_t b = 0; b < total; b += kBlock * 16) {
      const std::int64_t end = std::min(total, b + kBlock * 16);
      for (std::int64_t i = b; i < end; ++i) {
        const double a = std::fabs(static_cast<double>(x[i]));
        if (!(a <= bound)) {
          first_bad = std::min(first_bad, i);
          break;
        }
        big = std::max(big, a);
      }
    }
    if (first_bad < total)
      throw Error(point_error("data", static_cast<double>(x[first_bad]), first + first_bad / d,
                              first_bad % d, d, std::is_same<T, float>::value));
    largest = std::max(largest, big);
  });
  return largest;
}

#define KMEANS_INSTANTIATE(T)                                                                  \
  template std::unique_ptr<DataOps<T>> make_stream_data_ops<T>(Chunks<T>&, const T*, int);     \
  template double validate_stream_points<T>(Chunks<T>&, int);
KMEANS_INSTANTIATE(float)
KMEANS_INSTANTIATE(double)
#undef KMEANS_INSTANTIATE

}  // namespace kmeans::detail::stream
