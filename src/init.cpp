// SPDX-License-Identifier: Apache-2.0
// Initial centroids: uniform random points and scikit-learn's greedy k-means++, on the host,
// seeded by the portable SplitMix64 generator so every machine draws the same centroids.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <numeric>
#include <sstream>
#include <vector>

#include "engine.hpp"
#include "internal.hpp"

namespace kmeans::detail {

#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__) && defined(__GLIBC__)
#define KMEANS_INIT_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define KMEANS_INIT_CLONES
#endif
#if defined(__GNUC__)
#define KMEANS_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define KMEANS_ALWAYS_INLINE inline
#endif

namespace {

template <class C>
KMEANS_ALWAYS_INLINE void tile_squared_distances_body(const double* __restrict__ xt,
                                                      std::int64_t ld, std::int64_t rows,
                                                      std::int64_t d, const C* __restrict__ c,
                                                      double* __restrict__ s) {
  for (std::int64_t r = 0; r < rows; ++r) s[r] = 0;
  for (std::int64_t j = 0; j < d; ++j) {
    const double cj = static_cast<double>(c[j]);
    const double* xj = xt + j * ld;
    for (std::int64_t r = 0; r < rows; ++r) {
      const double u = xj[r] - cj;
      s[r] = s[r] + u * u;
    }
  }
}

}  // namespace

namespace {

/// s[r] = sum_j (xt[j * ld + r] - c[j])^2 for r < rows, each sum formed in feature order
/// (s = s + u * u): the exact distance of every backend (Engine::distances), one point per
/// SIMD lane. Lanes are independent, so vectorising changes no bit: no fused multiply-add (this
/// file is built with -ffp-contract=off) and no reassociation (no -ffast-math). An AVX2 clone
/// is chosen at run time where the CPU has it. Internal linkage: GCC would export the ifunc of
/// a clone with external linkage from the shared library, whatever the visibility.
KMEANS_INIT_CLONES
void squared_distances_clone(const double* xt, std::int64_t ld, std::int64_t rows,
                             std::int64_t d, const float* c, double* s) {
  tile_squared_distances_body(xt, ld, rows, d, c, s);
}
KMEANS_INIT_CLONES
void squared_distances_clone(const double* xt, std::int64_t ld, std::int64_t rows,
                             std::int64_t d, const double* c, double* s) {
  tile_squared_distances_body(xt, ld, rows, d, c, s);
}

}  // namespace

void tile_squared_distances(const double* xt, std::int64_t ld, std::int64_t rows, std::int64_t d,
                            const float* c, double* s) {
  squared_distances_clone(xt, ld, rows, d, c, s);
}
void tile_squared_distances(const double* xt, std::int64_t ld, std::int64_t rows, std::int64_t d,
                            const double* c, double* s) {
  squared_distances_clone(xt, ld, rows, d, c, s);
}

template <class T>
void load_tile(const T* x, std::int64_t d, std::int64_t i0, std::int64_t rows, std::int64_t ld,
               double* xt) {
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t j = 0; j < d; ++j)
      xt[j * ld + r] = static_cast<double>(x[(i0 + r) * d + j]);
}

namespace {

template <class T>
double weight_of(const T* w, std::int64_t i) {
  return w ? static_cast<double>(w[i]) : 1.0;
}

template <class T>
void copy_row(const T* x, std::int64_t d, std::int64_t i, T* out) {
  std::copy(x + i * d, x + (i + 1) * d, out);
}

/// DataOps over host arrays: the loops of scikit-learn's algorithms, in parallel over fixed
/// blocks of points so that every sum has one order whatever the thread count.
template <class T>
class HostDataOps final : public DataOps<T> {
 public:
  HostDataOps(const T* x, const T* w, std::int64_t n, std::int64_t d, int n_threads)
      : x_(x), w_(w), n_(n), d_(d), n_threads_(n_threads) {}

  std::int64_t size() const override { return n_; }
  std::int64_t dim() const override { return d_; }
  const T* weights() override { return w_; }

  void rows(const std::int64_t* idx, std::int64_t m, T* out) override {
    for (std::int64_t c = 0; c < m; ++c) copy_row(x_, d_, idx[c], out + c * d_);
  }

  std::vector<std::int64_t> greedy_kmeanspp(int k, int n_trials, const double* u) override {
    const std::int64_t n = n_, d = d_;
    const T* x = x_;
    const T* w = w_;
    const int nt = threads_for(n_threads_, static_cast<double>(n) * d * 4);
    std::vector<std::int64_t> chosen(static_cast<std::size_t>(k));
    std::vector<double> closest(static_cast<std::size_t>(n));
    std::vector<double> cumsum(static_cast<std::size_t>(n));
    std::vector<double> cand_dist(static_cast<std::size_t>(n) * n_trials);
    const std::int64_t n_blocks = (n + kReduceBlock - 1) / kReduceBlock;
    std::vector<double> block_sum(static_cast<std::size_t>(n_blocks) * n_trials);

    // Prefix sums of w * dist (dist null: 1), in a fixed order: blocks in parallel, then the
    // block offsets in block order. Returns the total.
    auto prefix = [&](const double* dist) {
      auto block = [&](std::int64_t b, int) {
        double s = 0;
        const std::int64_t end = std::min(n, (b + 1) * kReduceBlock);
        for (std::int64_t i = b * kReduceBlock; i < end; ++i) {
          s += weight_of(w, i) * (dist ? dist[i] : 1.0);
          cumsum[i] = s;
        }
      };
      cpu::parallel_for(nt, n_blocks, block);
      double offset = 0;
      for (std::int64_t b = 0; b < n_blocks; ++b) {
        const std::int64_t end = std::min(n, (b + 1) * kReduceBlock);
        const double block_total = cumsum[end - 1];
        if (b > 0)
          for (std::int64_t i = b * kReduceBlock; i < end; ++i) cumsum[i] += offset;
        offset += block_total;
      }
      return cumsum[n - 1];
    };
    // Index of the first prefix sum >= r (numpy searchsorted, side="left"), clipped to n - 1.
    auto search = [&](double r) {
      const auto it = std::lower_bound(cumsum.begin(), cumsum.end(), r);
      return std::min<std::int64_t>(it - cumsum.begin(), n - 1);
    };

    // First centre: one point drawn with probability proportional to its weight.
    const double total_w = prefix(nullptr);
    chosen[0] = search(u[0] * total_w);
    const T* first = x + chosen[0] * d;
    for_each_tile(x, n, d, nt, [&](TileScratch& ts, std::int64_t i0, std::int64_t rows) {
      tile_squared_distances(ts.xt.data(), ts.rows, rows, d, first, closest.data() + i0);
    });
    double potential = prefix(closest.data());

    std::vector<std::int64_t> cand(static_cast<std::size_t>(n_trials));
    std::vector<double> cand_pot(static_cast<std::size_t>(n_trials));
    // Per-thread scratch of the candidate loop (cpu::parallel_for slots).
    std::vector<TileScratch> tiles(static_cast<std::size_t>(nt), TileScratch(d, n));
    std::vector<std::vector<double>> accs(static_cast<std::size_t>(nt),
                                          std::vector<double>(static_cast<std::size_t>(n_trials)));
    for (int cidx = 1; cidx < k; ++cidx) {
      const double* uc = u + 1 + static_cast<std::int64_t>(cidx - 1) * n_trials;
      for (int t = 0; t < n_trials; ++t) cand[t] = search(uc[t] * potential);
      // Distances to every candidate, min with the current closest, per-block potentials: each
      // block's tiles in point order, so each trial's block sum has the scalar loop's order.
      auto block = [&](std::int64_t b, int slot) {
        TileScratch& ts = tiles[static_cast<std::size_t>(slot)];
        std::vector<double>& acc = accs[static_cast<std::size_t>(slot)];
        const std::int64_t end = std::min(n, (b + 1) * kReduceBlock);
        std::fill(acc.begin(), acc.end(), 0.0);
        for (std::int64_t i0 = b * kReduceBlock; i0 < end; i0 += ts.rows) {
          const std::int64_t rows = std::min(ts.rows, end - i0);
          load_tile(x, d, i0, rows, ts.rows, ts.xt.data());
          for (int t = 0; t < n_trials; ++t) {
            tile_squared_distances(ts.xt.data(), ts.rows, rows, d, x + cand[t] * d,
                                   ts.s.data());
            double* dist = &cand_dist[static_cast<std::size_t>(t) * n + i0];
            double a = acc[t];
            for (std::int64_t r = 0; r < rows; ++r) {
              dist[r] = std::min(closest[i0 + r], ts.s[r]);
              a += weight_of(w, i0 + r) * dist[r];
            }
            acc[t] = a;
          }
        }
        for (int t = 0; t < n_trials; ++t) block_sum[static_cast<std::size_t>(t * n_blocks + b)] = acc[t];
      };
      cpu::parallel_for(nt, n_blocks, block);
      int best = 0;
      for (int t = 0; t < n_trials; ++t) {
        double s = 0;
        for (std::int64_t b = 0; b < n_blocks; ++b)
          s += block_sum[static_cast<std::size_t>(t * n_blocks + b)];
        cand_pot[t] = s;
        if (s < cand_pot[best]) best = t;
      }
      std::copy(cand_dist.begin() + static_cast<std::ptrdiff_t>(best) * n,
                cand_dist.begin() + static_cast<std::ptrdiff_t>(best + 1) * n, closest.begin());
      chosen[cidx] = cand[best];
      potential = prefix(closest.data());
    }
    return chosen;
  }

  void lower_closest(const std::int64_t* idx, std::int64_t m, double* closest) override {
    const std::int64_t d = d_;
    const int nt = threads_for(n_threads_, static_cast<double>(n_) * m * d);
    for_each_tile(x_, n_, d, nt, [&](TileScratch& ts, std::int64_t i0, std::int64_t rows) {
      for (std::int64_t c = 0; c < m; ++c) {
        tile_squared_distances(ts.xt.data(), ts.rows, rows, d, x_ + idx[c] * d, ts.s.data());
        for (std::int64_t r = 0; r < rows; ++r)
          closest[i0 + r] = std::min(closest[i0 + r], ts.s[r]);
      }
    });
  }

  void nearest(const std::int64_t* idx, std::int64_t m, std::int64_t* out) override {
    const std::int64_t d = d_;
    const int nt = threads_for(n_threads_, static_cast<double>(n_) * m * d);
    for_each_tile(x_, n_, d, nt, [&](TileScratch& ts, std::int64_t i0, std::int64_t rows) {
      double best[kTileMaxRows];
      std::fill(best, best + rows, std::numeric_limits<double>::infinity());
      std::fill(out + i0, out + i0 + rows, std::int64_t{0});
      for (std::int64_t c = 0; c < m; ++c) {
        tile_squared_distances(ts.xt.data(), ts.rows, rows, d, x_ + idx[c] * d, ts.s.data());
        for (std::int64_t r = 0; r < rows; ++r)
          if (ts.s[r] < best[r]) {
            best[r] = ts.s[r];
            out[i0 + r] = c;
          }
      }
    });
  }

  double mean_feature_variance() override {
    return detail::mean_feature_variance(x_, n_, d_, n_threads_);
  }

 private:
  const T* x_;
  const T* w_;
  std::int64_t n_, d_;
  int n_threads_;
};

}  // namespace

template <class T>
std::unique_ptr<DataOps<T>> make_host_data_ops(const T* x, const T* w, std::int64_t n,
                                                 std::int64_t d, int n_threads) {
  return std::make_unique<HostDataOps<T>>(x, w, n, d, n_threads);
}

template <class T>
std::vector<T> init_random(DataOps<T>& data, int k, std::uint64_t seed) {
  // Weighted sampling without replacement (Efraimidis-Spirakis): each point gets the key
  // log(u) / w and the k largest keys win, in decreasing key order. With unit weights this is a
  // uniform draw of k distinct points. Zero-weight points are never drawn.
  const std::int64_t n = data.size(), d = data.dim();
  const T* w = data.weights();
  SplitMix64 rng(seed);
  std::vector<std::pair<double, std::int64_t>> keys;
  keys.reserve(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) {
    const double u = rng.uniform();
    const double wi = weight_of(w, i);
    if (wi > 0) keys.emplace_back(std::log1p(-u) / wi, i);  // log(1 - u): u may be 0, never 1
  }
  if (static_cast<std::int64_t>(keys.size()) < k) {
    std::ostringstream msg;
    msg << "init: only " << keys.size() << " points have a positive weight, fewer than k = " << k;
    throw Error(msg.str());
  }
  auto by_key = [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  };
  std::partial_sort(keys.begin(), keys.begin() + k, keys.end(), by_key);
  std::vector<std::int64_t> idx(static_cast<std::size_t>(k));
  for (int j = 0; j < k; ++j) idx[j] = keys[j].second;
  std::vector<T> c(static_cast<std::size_t>(k * d));
  data.rows(idx.data(), k, c.data());
  return c;
}

template <class T>
std::vector<T> init_kmeans_plusplus(DataOps<T>& data, int k, std::uint64_t seed) {
  // scikit-learn's greedy k-means++: each step draws 2 + floor(ln k) candidates with probability
  // proportional to w * D(x)^2 and keeps the one that lowers the potential most. The draws do
  // not depend on the data, so they are made here, in the generator's order, for any backend.
  const int n_trials = 2 + static_cast<int>(std::log(static_cast<double>(k)));
  SplitMix64 rng(seed);
  std::vector<double> u(1 + static_cast<std::size_t>(k - 1) * n_trials);
  for (double& v : u) v = rng.uniform();
  const std::vector<std::int64_t> idx = data.greedy_kmeanspp(k, n_trials, u.data());
  std::vector<T> c(static_cast<std::size_t>(k) * static_cast<std::size_t>(data.dim()));
  data.rows(idx.data(), k, c.data());
  return c;
}

namespace {

/// Uniform in [0, 1) from (seed, counter): the splitmix64 output function applied to a
/// per-point state, so each point's draw is independent of thread count and order.
double hash_uniform(std::uint64_t seed, std::uint64_t i) {
  return SplitMix64(seed ^ (i * 0xD1B54A32D192ED03ull)).uniform();
}

}  // namespace

template <class T>
std::vector<T> init_kmeans_parallel(DataOps<T>& data, int k, std::uint64_t seed, int n_threads) {
  constexpr int kRounds = 5;
  const std::int64_t n = data.size(), d = data.dim();
  const T* w = data.weights();
  SplitMix64 rng(seed);
  const int nt = threads_for(n_threads, static_cast<double>(n) * 4);
  const double l = 2.0 * k;  // oversampling factor
  const std::int64_t n_blocks = (n + kReduceBlock - 1) / kReduceBlock;
  std::vector<double> block_sum(static_cast<std::size_t>(n_blocks));
  std::vector<double> closest(static_cast<std::size_t>(n));
  auto potential = [&]() {  // sum of w * D^2 in a fixed order
    auto block = [&](std::int64_t b, int) {
      double s = 0;
      for (std::int64_t i = b * kReduceBlock; i < std::min(n, (b + 1) * kReduceBlock); ++i)
        s += weight_of(w, i) * closest[i];
      block_sum[b] = s;
    };
    cpu::parallel_for(nt, n_blocks, block);
    double s = 0;
    for (double v : block_sum) s += v;
    return s;
  };
  // Lowers closest[] with the candidates cand[from..] (the distances: DataOps).
  std::vector<std::int64_t> cand;
  auto lower_closest = [&](std::size_t from) {
    if (from < cand.size())
      data.lower_closest(cand.data() + from, static_cast<std::int64_t>(cand.size() - from),
                         closest.data());
  };

  // The first candidate: one point drawn by weight.
  {
    double total = 0;
    for (std::int64_t i = 0; i < n; ++i) total += weight_of(w, i);
    const double r = rng.uniform() * total;
    double acc = 0;
    std::int64_t first = n - 1;
    for (std::int64_t i = 0; i < n; ++i) {
      acc += weight_of(w, i);
      if (acc > r && weight_of(w, i) > 0) {
        first = i;
        break;
      }
    }
    cand.push_back(first);
    std::fill(closest.begin(), closest.end(), std::numeric_limits<double>::infinity());
    lower_closest(0);
  }
  std::vector<char> picked(static_cast<std::size_t>(n), 0);
  picked[static_cast<std::size_t>(cand[0])] = 1;
  for (int round = 0; round < kRounds; ++round) {
    const double phi = potential();
    if (!(phi > 0)) break;  // every point is already a candidate (up to duplicates)
    const std::uint64_t round_seed = rng.next();
    const std::size_t before = cand.size();
    auto pick = [&](std::int64_t b, int) {
      for (std::int64_t i = b * kReduceBlock; i < std::min(n, (b + 1) * kReduceBlock); ++i) {
        const double prob = l * weight_of(w, i) * closest[i] / phi;
        if (!picked[i] && hash_uniform(round_seed, static_cast<std::uint64_t>(i)) < prob)
          picked[i] = 2;
      }
    };
    cpu::parallel_for(nt, n_blocks, pick);
    for (std::int64_t i = 0; i < n; ++i)
      if (picked[i] == 2) {
        picked[i] = 1;
        cand.push_back(i);
      }
    lower_closest(before);
  }
  // Too few candidates (tiny or degenerate data): top up with points drawn by weight.
  if (static_cast<std::int64_t>(cand.size()) < k) {
    std::vector<std::pair<double, std::int64_t>> keys;
    for (std::int64_t i = 0; i < n; ++i)
      if (!picked[i] && weight_of(w, i) > 0)
        keys.emplace_back(std::log1p(-rng.uniform()) / weight_of(w, i), i);
    const std::size_t missing = std::min(keys.size(), static_cast<std::size_t>(k) - cand.size());
    std::partial_sort(keys.begin(), keys.begin() + static_cast<std::ptrdiff_t>(missing), keys.end(),
                      [](const auto& a, const auto& b) {
                        return a.first != b.first ? a.first > b.first : a.second < b.second;
                      });
    for (std::size_t i = 0; i < missing; ++i) cand.push_back(keys[i].second);
    if (static_cast<std::int64_t>(cand.size()) < k) {
      std::ostringstream msg;
      msg << "init: only " << cand.size() << " points have a positive weight, fewer than k = " << k;
      throw Error(msg.str());
    }
  }
  // Weight of each candidate: the weight of the points nearest to it (ties: lowest index),
  // summed in point order.
  const auto m = static_cast<std::int64_t>(cand.size());
  std::vector<std::int64_t> nearest(static_cast<std::size_t>(n));
  data.nearest(cand.data(), m, nearest.data());
  std::vector<T> cand_w(static_cast<std::size_t>(m), T(0));
  std::vector<double> acc(static_cast<std::size_t>(m), 0.0);
  for (std::int64_t i = 0; i < n; ++i) acc[nearest[i]] += weight_of(w, i);
  for (std::int64_t c = 0; c < m; ++c) cand_w[c] = static_cast<T>(acc[c]);
  std::vector<T> cx(static_cast<std::size_t>(m * d));
  data.rows(cand.data(), m, cx.data());
  HostDataOps<T> candidates(cx.data(), cand_w.data(), m, d, n_threads);
  return init_kmeans_plusplus<T>(candidates, k, rng.next());
}

#define KMEANS_INSTANTIATE(T)                                                                   \
  template void load_tile<T>(const T*, std::int64_t, std::int64_t, std::int64_t, std::int64_t,  \
                             double*);                                                          \
  template std::unique_ptr<DataOps<T>> make_host_data_ops<T>(const T*, const T*, std::int64_t, \
                                                              std::int64_t, int);               \
  template std::vector<T> init_random<T>(DataOps<T>&, int, std::uint64_t);                     \
  template std::vector<T> init_kmeans_plusplus<T>(DataOps<T>&, int, std::uint64_t);            \
  template std::vector<T> init_kmeans_parallel<T>(DataOps<T>&, int, std::uint64_t, int);
KMEANS_INSTANTIATE(float)
KMEANS_INSTANTIATE(double)
#undef KMEANS_INSTANTIATE

}  // namespace kmeans::detail
