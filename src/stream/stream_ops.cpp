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

  /// init.cpp's greedy k-means++ over chunks. Its prefix sums (per block from 0 in point
  /// order, then the block offsets in block order) are not stored: a draw finds its block from
  /// the block totals and forms that block's prefix sums again, with the same bits. Each step
  /// reads the data twice: the candidates' potentials, then the chosen one's distances.
  std::vector<std::int64_t> greedy_kmeanspp(int k, int n_trials, const double* u) override {
    const std::int64_t n = c_.n(), d = c_.d();
    const T* w = w_;
    const std::int64_t n_blocks = (n + kBlock - 1) / kBlock;
    std::vector<std::int64_t> chosen(static_cast<std::size_t>(k));
    std::vector<double> closest(static_cast<std::size_t>(n));
    std::vector<double> block_total(static_cast<std::size_t>(n_blocks));
    const int nt = threads_for(n_threads_, static_cast<double>(n) * 4);
    auto weight = [w](std::int64_t i) { return w ? static_cast<double>(w[i]) : 1.0; };
    // The block totals of w * dist (dist null: 1); returns the last prefix sum (the total).
    auto totals = [&](const double* dist) {
#pragma omp parallel for schedule(static) num_threads(nt)
      for (std::int64_t b = 0; b < n_blocks; ++b) {
        double s = 0;
        const std::int64_t end = std::min(n, (b + 1) * kBlock);
        for (std::int64_t i = b * kBlock; i < end; ++i) s += weight(i) * (dist ? dist[i] : 1.0);
        block_total[static_cast<std::size_t>(b)] = s;
      }
      double offset = 0;
      for (std::int64_t b = 0; b + 1 < n_blocks; ++b) offset += block_total[static_cast<std::size_t>(b)];
      return n_blocks == 1 ? block_total[0] : block_total[static_cast<std::size_t>(n_blocks - 1)] + offset;
    };
    // The first prefix sum >= r (numpy searchsorted, side="left"), clipped to n - 1.
    auto search = [&](double r, const double* dist) {
      double offset = 0;
      for (std::int64_t b = 0; b < n_blocks; ++b) {
        const double bt = block_total[static_cast<std::size_t>(b)];
        if ((b == 0 ? bt : bt + offset) >= r) {
          double s = 0;
          const std::int64_t end = std::min(n, (b + 1) * kBlock);
          for (std::int64_t i = b * kBlock; i < end; ++i) {
            s += weight(i) * (dist ? dist[i] : 1.0);
            if ((b == 0 ? s : s + offset) >= r) return i;
          }
          return end - 1;
        }
        offset += bt;
      }
      return n - 1;
    };
    // closest = min(closest, |x - c|^2) (or = when `assign`), a chunk at a time.
    auto lower = [&](const T* c, bool assign) {
      c_.for_each([&](std::int64_t first, std::int64_t rows, const T* x) {
        const int tnt = threads_for(n_threads_, static_cast<double>(rows) * d);
        double* cl = closest.data() + first;
        for_each_tile(x, rows, d, tnt, [&](TileScratch& ts, std::int64_t i0, std::int64_t r) {
          tile_squared_distances(ts.xt.data(), ts.rows, r, d, c, ts.s.data());
          for (std::int64_t q = 0; q < r; ++q)
            cl[i0 + q] = assign ? ts.s[q] : std::min(cl[i0 + q], ts.s[q]);
        });
      });
    };

    chosen[0] = search(u[0] * totals(nullptr), nullptr);
    std::vector<T> rows(static_cast<std::size_t>(n_trials * d));
    c_.gather(&chosen[0], 1, rows.data());
    lower(rows.data(), true);
    double potential = totals(closest.data());

    std::vector<std::int64_t> cand(static_cast<std::size_t>(n_trials));
    std::vector<double> block_sum(static_cast<std::size_t>(n_blocks) * n_trials);
    for (int cidx = 1; cidx < k; ++cidx) {
      const double* uc = u + 1 + static_cast<std::int64_t>(cidx - 1) * n_trials;
      for (int t = 0; t < n_trials; ++t) cand[t] = search(uc[t] * potential, closest.data());
      c_.gather(cand.data(), n_trials, rows.data());
      // Each trial's potential per block: its tiles in point order (init.cpp's loop).
      c_.for_each([&](std::int64_t first, std::int64_t n_rows, const T* x) {
        const std::int64_t b0 = first / kBlock, nb = (n_rows + kBlock - 1) / kBlock;
        const int tnt = threads_for(n_threads_, static_cast<double>(n_rows) * d * n_trials);
#pragma omp parallel num_threads(tnt)
        {
          TileScratch ts(d, n_rows);
          std::vector<double> acc(static_cast<std::size_t>(n_trials));
#pragma omp for schedule(static)
          for (std::int64_t b = 0; b < nb; ++b) {
            const std::int64_t end = std::min(n_rows, (b + 1) * kBlock);
            std::fill(acc.begin(), acc.end(), 0.0);
            for (std::int64_t i0 = b * kBlock; i0 < end; i0 += ts.rows) {
              const std::int64_t r = std::min(ts.rows, end - i0);
              load_tile(x, d, i0, r, ts.rows, ts.xt.data());
              for (int t = 0; t < n_trials; ++t) {
                tile_squared_distances(ts.xt.data(), ts.rows, r, d, rows.data() + t * d,
                                       ts.s.data());
                double a = acc[t];
                for (std::int64_t q = 0; q < r; ++q) {
                  const std::int64_t g = first + i0 + q;
                  a += weight(g) * std::min(closest[g], ts.s[q]);
                }
                acc[t] = a;
              }
            }
            for (int t = 0; t < n_trials; ++t)
              block_sum[static_cast<std::size_t>(t * n_blocks + b0 + b)] = acc[t];
          }
        }
      });
      int best = 0;
      std::vector<double> cand_pot(static_cast<std::size_t>(n_trials));
      for (int t = 0; t < n_trials; ++t) {
        double s = 0;
        for (std::int64_t b = 0; b < n_blocks; ++b)
          s += block_sum[static_cast<std::size_t>(t * n_blocks + b)];
        cand_pot[t] = s;
        if (s < cand_pot[best]) best = t;
      }
      lower(rows.data() + best * d, false);  // the chosen candidate's distances, again
      chosen[cidx] = cand[best];
      potential = totals(closest.data());
    }
    return chosen;
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
        block_column_sums(x, rows, d, mean, &part[static_cast<std::size_t>(first / kBlock * d)],
                          n_threads_);
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
