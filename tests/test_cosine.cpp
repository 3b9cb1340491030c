// SPDX-License-Identifier: Apache-2.0
// Spherical k-means (Metric::Cosine) on the host backends against a plain-loop oracle in
// double and against the Reference backend: fit, predict, transform, score, mini-batch, model
// files and the errors (zero rows).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "kmeans/kmeans.hpp"
#include "sphere.hpp"
#include "test_helpers.hpp"

namespace {

using kmeans::Backend;
using kmeans::Init;
using kmeans::Metric;
using kmeans_test::expect_error;
using kmeans_test::kHostBackends;

/// A portable generator for the test data (no library RNG).
struct Lcg {
  std::uint64_t s;
  double uniform() {  // [0, 1)
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<double>(s >> 11) * 0x1.0p-53;
  }
  double gauss() {  // Box-Muller
    const double u1 = 1.0 - uniform(), u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }
};

/// Embedding-like data: n rows of d features around k_true random directions (noise `spread`
/// per coordinate relative to a unit direction), each row scaled by a random norm in [0.5, 4).
/// `truth` receives the generating direction of each row.
template <class T>
std::vector<T> directions(std::int64_t n, std::int64_t d, int k_true, double spread,
                          std::uint64_t seed, std::vector<int>* truth = nullptr) {
  Lcg g{seed};
  std::vector<double> centre(static_cast<std::size_t>(k_true * d));
  for (int c = 0; c < k_true; ++c) {
    double s = 0;
    for (std::int64_t j = 0; j < d; ++j) {
      centre[c * d + j] = g.gauss();
      s += centre[c * d + j] * centre[c * d + j];
    }
    for (std::int64_t j = 0; j < d; ++j) centre[c * d + j] /= std::sqrt(s);
  }
  std::vector<T> x(static_cast<std::size_t>(n * d));
  if (truth) truth->assign(static_cast<std::size_t>(n), 0);
  for (std::int64_t i = 0; i < n; ++i) {
    const int c = static_cast<int>(i % k_true);
    if (truth) (*truth)[i] = c;
    const double scale = 0.5 + 3.5 * g.uniform();
    for (std::int64_t j = 0; j < d; ++j)
      x[i * d + j] = static_cast<T>(scale * (centre[c * d + j] + spread * g.gauss() /
                                                                     std::sqrt(double(d))));
  }
  return x;
}

/// Plain-loop spherical k-means in double, the oracle: rows and the initial centroids scaled to
/// unit norm, labels by the largest dot product (ties: the lowest index), centroids the unit
/// weighted mean (an empty cluster keeps its centroid; the oracle's cases have none), the
/// library's stopping rules with tol = 0; inertia = sum w (1 - x . c) against the final
/// centroids.
struct OracleFit {
  std::vector<double> centroids;
  std::vector<int> labels;
  double inertia = 0;
  int n_iter = 0;
};

std::vector<double> unit_rows(const std::vector<double>& x, std::int64_t d) {
  std::vector<double> u(x);
  for (std::size_t i = 0; i < x.size(); i += d) {
    double s = 0;
    for (std::int64_t j = 0; j < d; ++j) s += x[i + j] * x[i + j];
    for (std::int64_t j = 0; j < d; ++j) u[i + j] = x[i + j] / std::sqrt(s);
  }
  return u;
}

double dot(const double* a, const double* b, std::int64_t d) {
  double s = 0;
  for (std::int64_t j = 0; j < d; ++j) s += a[j] * b[j];
  return s;
}

/// Labels (largest dot product) and the cosine inertia of unit rows against unit centroids.
double oracle_assign(const std::vector<double>& x, const std::vector<double>& w, std::int64_t d,
                     const std::vector<double>& c, int k, std::vector<int>& labels) {
  const auto n = static_cast<std::int64_t>(x.size()) / d;
  labels.assign(static_cast<std::size_t>(n), 0);
  double inertia = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    double best = -2;
    for (int j = 0; j < k; ++j) {
      const double s = dot(&x[i * d], &c[j * d], d);
      if (s > best) {
        best = s;
        labels[i] = j;
      }
    }
    inertia += (w.empty() ? 1.0 : w[i]) * (1.0 - best);
  }
  return inertia;
}

OracleFit oracle(const std::vector<double>& raw, const std::vector<double>& w, std::int64_t d,
                 const std::vector<double>& init, int k, int max_iter) {
  const std::vector<double> x = unit_rows(raw, d);
  const auto n = static_cast<std::int64_t>(x.size()) / d;
  OracleFit f;
  f.centroids = unit_rows(init, d);
  std::vector<int> prev;
  for (int it = 0; it < max_iter; ++it) {
    oracle_assign(x, w, d, f.centroids, k, f.labels);
    std::vector<double> sum(static_cast<std::size_t>(k * d), 0.0), wt(static_cast<std::size_t>(k), 0.0);
    for (std::int64_t i = 0; i < n; ++i) {
      const double wi = w.empty() ? 1.0 : w[i];
      wt[f.labels[i]] += wi;
      for (std::int64_t j = 0; j < d; ++j) sum[f.labels[i] * d + j] += wi * x[i * d + j];
    }
    double shift = 0;
    for (int c = 0; c < k; ++c) {
      if (!(wt[c] > 0)) continue;
      double s = 0;
      for (std::int64_t j = 0; j < d; ++j) s += sum[c * d + j] * sum[c * d + j];
      for (std::int64_t j = 0; j < d; ++j) {
        const double v = sum[c * d + j] / std::sqrt(s);
        shift += (v - f.centroids[c * d + j]) * (v - f.centroids[c * d + j]);
        f.centroids[c * d + j] = v;
      }
    }
    f.n_iter = it + 1;
    const bool same = it > 0 && f.labels == prev;
    prev = f.labels;
    if (same || shift == 0) break;
  }
  f.inertia = oracle_assign(x, w, d, f.centroids, k, f.labels);
  return f;
}

template <class T>
std::vector<double> to_double(const std::vector<T>& v) {
  return std::vector<double>(v.begin(), v.end());
}

template <class T>
kmeans::Params<T> cosine_params(int k, const std::vector<T>& init, Backend b, int max_iter = 100) {
  kmeans::Params<T> p;
  p.k = k;
  p.max_iter = max_iter;
  p.tol = 0;
  p.init = Init::Array;
  p.init_centroids = init;
  p.backend = b;
  p.metric = Metric::Cosine;
  return p;
}

/// The first k rows of x, scaled by 3 (init centroids need not be unit).
template <class T>
std::vector<T> first_rows(const std::vector<T>& x, std::int64_t d, int k) {
  std::vector<T> c(x.begin(), x.begin() + k * d);
  for (T& v : c) v = static_cast<T>(3 * v);
  return c;
}

template <class T>
double rel_tol() {
  return sizeof(T) == 4 ? 1e-5 : 1e-11;
}

template <class T>
void expect_unit_rows(const std::vector<T>& c, std::int64_t d) {
  for (std::size_t i = 0; i < c.size(); i += d) {
    double s = 0;
    for (std::int64_t j = 0; j < d; ++j) s += double(c[i + j]) * double(c[i + j]);
    EXPECT_NEAR(s, 1.0, kmeans::detail::unit_tolerance<T>(d)) << "centroid row " << i / d;
  }
}

/// Fit on every host backend against the oracle: the same labels and iterations, centroids
/// and inertia within the dtype's tolerance, unit centroids.
template <class T>
void check_against_oracle(std::int64_t n, std::int64_t d, int k, int k_true, double spread,
                          bool weighted, std::uint64_t seed) {
  SCOPED_TRACE("n = " + std::to_string(n) + ", d = " + std::to_string(d) + ", k = " +
               std::to_string(k) + (weighted ? ", weighted" : ""));
  const std::vector<T> x = directions<T>(n, d, k_true, spread, seed);
  std::vector<T> w;
  if (weighted) {
    Lcg g{seed + 7};
    for (std::int64_t i = 0; i < n; ++i) w.push_back(static_cast<T>(0.25 + 2 * g.uniform()));
  }
  const std::vector<T> init = first_rows(x, d, k);
  const OracleFit o = oracle(to_double(x), to_double(w), d, to_double(init), k, 100);
  for (Backend b : kHostBackends) {
    SCOPED_TRACE(kmeans::to_string(b));
    kmeans::Params<T> p = cosine_params(k, init, b);
    p.sample_weight = w;
    const kmeans::Result<T> r = kmeans::fit(x.data(), n, d, p);
    ASSERT_EQ(r.labels.size(), static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) ASSERT_EQ(r.labels[i], o.labels[i]) << "row " << i;
    EXPECT_EQ(r.n_iter, o.n_iter);
    EXPECT_TRUE(r.converged);
    EXPECT_NEAR(r.inertia, o.inertia, rel_tol<T>() * std::max(1.0, o.inertia));
    for (std::size_t i = 0; i < r.centroids.size(); ++i)
      ASSERT_NEAR(double(r.centroids[i]), o.centroids[i], sizeof(T) == 4 ? 2e-6 : 1e-13)
          << "centroid value " << i;
    expect_unit_rows(r.centroids, d);
    // The last SSE is the inertia (labels stopped changing), both cosine distance sums.
    ASSERT_FALSE(r.sse_history.empty());
    EXPECT_NEAR(r.sse_history.back(), r.inertia, rel_tol<T>() * std::max(1.0, r.inertia));
  }
}

TEST(Cosine, MatchesTheOracleFloat) {
  check_against_oracle<float>(5000, 16, 5, 5, 0.6, false, 1);  // n not a multiple of 4096
  check_against_oracle<float>(700, 3, 4, 4, 0.3, true, 2);
}

TEST(Cosine, MatchesTheOracleDouble) {
  check_against_oracle<double>(5000, 16, 5, 5, 0.6, false, 3);
  check_against_oracle<double>(700, 3, 4, 4, 0.3, true, 4);
  check_against_oracle<double>(300, 40, 1, 3, 0.5, false, 5);  // k = 1: the mean direction
}

/// Embeddings (d = 384 and 768): every host backend against the Reference backend from
/// k-means++, and the generating directions recovered.
template <class T>
void check_embeddings(std::int64_t d) {
  SCOPED_TRACE("d = " + std::to_string(d));
  const std::int64_t n = 1500;
  const int k = 6;
  std::vector<int> truth;
  const std::vector<T> x = directions<T>(n, d, k, 0.8, 11 + static_cast<std::uint64_t>(d), &truth);
  kmeans::Params<T> p;
  p.k = k;
  p.metric = Metric::Cosine;
  p.n_init = 3;
  p.seed = 5;
  p.backend = Backend::Reference;
  const kmeans::Result<T> ref = kmeans::fit(x.data(), n, d, p);
  // Each found cluster is one generating direction.
  std::vector<int> map(k, -1);
  for (std::int64_t i = 0; i < n; ++i) {
    int& m = map[static_cast<std::size_t>(ref.labels[i])];
    if (m < 0) m = truth[i];
    ASSERT_EQ(m, truth[i]) << "row " << i << " joined a cluster of another direction";
  }
  expect_unit_rows(ref.centroids, d);
  p.backend = Backend::Cpu;
  const kmeans::Result<T> cpu = kmeans::fit(x.data(), n, d, p);
  EXPECT_EQ(cpu.labels, ref.labels);
  EXPECT_EQ(cpu.n_iter, ref.n_iter);
  EXPECT_NEAR(cpu.inertia, ref.inertia, rel_tol<T>() * ref.inertia);
  for (std::size_t i = 0; i < ref.centroids.size(); ++i)
    ASSERT_NEAR(double(cpu.centroids[i]), double(ref.centroids[i]), sizeof(T) == 4 ? 1e-6 : 1e-13);
  // The oracle's inertia of the reference's centroids (cosine distances, from raw rows).
  std::vector<int> labels;
  const double o = oracle_assign(unit_rows(to_double(x), d), {}, d, to_double(ref.centroids), k,
                                 labels);
  EXPECT_NEAR(ref.inertia, o, rel_tol<T>() * o);
}

TEST(Cosine, Embeddings384And768Float) {
  check_embeddings<float>(384);
  check_embeddings<float>(768);
}

TEST(Cosine, Embeddings384Double) { check_embeddings<double>(384); }

TEST(Cosine, OneFeatureSplitsBySign) {
  const double x[] = {3, -1, 0.5, -7, 2, -0.25};
  const double c0[] = {1, 1};  // both +1: the repair moves the farthest point (a -1) to the other
  for (Backend b : kHostBackends) {
    SCOPED_TRACE(kmeans::to_string(b));
    kmeans::Params<double> p;
    p.k = 2;
    p.init = Init::Array;
    p.init_centroids = c0;
    p.metric = Metric::Cosine;
    p.backend = b;
    const auto r = kmeans::fit(x, 6, 1, p);
    EXPECT_EQ(r.inertia, 0.0);
    ASSERT_EQ(r.centroids.size(), 2u);
    EXPECT_EQ(std::fabs(r.centroids[0]), 1.0);
    EXPECT_EQ(r.centroids[0], -r.centroids[1]);
    for (int i = 0; i < 6; ++i)
      EXPECT_EQ(r.centroids[static_cast<std::size_t>(r.labels[i])], x[i] > 0 ? 1.0 : -1.0);
    EXPECT_EQ(r.n_empty_relocated, 1);
  }
}

TEST(Cosine, KEqualsNGivesZeroInertia) {
  const std::int64_t n = 40, d = 5;
  const std::vector<float> x = directions<float>(n, d, 40, 0.1, 9);
  for (Backend b : kHostBackends) {
    SCOPED_TRACE(kmeans::to_string(b));
    kmeans::Params<float> p = cosine_params(static_cast<int>(n), x, b);
    const auto r = kmeans::fit(x.data(), n, d, p);
    EXPECT_NEAR(r.inertia, 0.0, 1e-5);
    for (std::int64_t i = 0; i < n; ++i) EXPECT_EQ(r.labels[i], i);
  }
}

/// Rows scaled by powers of two, or given already normalised by the library, fit to the same
/// bits: only the directions matter. Integer weights equal repeated rows.
TEST(Cosine, OnlyDirectionsMatterAndWeightsCountAsRepeats) {
  const std::int64_t n = 900, d = 7;
  const std::vector<double> x = directions<double>(n, d, 3, 0.7, 21);
  std::vector<double> scaled(x), unit(x.size());
  Lcg g{3};
  for (std::int64_t i = 0; i < n; ++i) {
    const int e = static_cast<int>(g.uniform() * 40) - 20;
    for (std::int64_t j = 0; j < d; ++j) scaled[i * d + j] = std::ldexp(x[i * d + j], e);
  }
  kmeans::detail::normalise_rows(x.data(), n, d, unit.data(), "data", 0);
  for (Backend b : kHostBackends) {
    SCOPED_TRACE(kmeans::to_string(b));
    kmeans::Params<double> p;
    p.k = 3;
    p.metric = Metric::Cosine;
    p.backend = b;
    const auto r = kmeans::fit(x.data(), n, d, p);
    kmeans_test::expect_same_fit(kmeans::fit(scaled.data(), n, d, p), r);
    kmeans_test::expect_same_fit(kmeans::fit(unit.data(), n, d, p), r);

    // Weights 1 or 2 against the rows repeated.
    std::vector<double> w(static_cast<std::size_t>(n)), rep;
    for (std::int64_t i = 0; i < n; ++i) {
      w[i] = 1.0 + static_cast<double>(i % 2);
      for (int t = 0; t < w[i]; ++t) rep.insert(rep.end(), x.begin() + i * d, x.begin() + (i + 1) * d);
    }
    const std::vector<double> init = first_rows(x, d, 3);
    kmeans::Params<double> pw = cosine_params(3, init, b);
    pw.sample_weight = w;
    const auto rw = kmeans::fit(x.data(), n, d, pw);
    const auto rr = kmeans::fit(rep.data(), rep.size() / d, d, cosine_params(3, init, b));
    EXPECT_NEAR(rw.inertia, rr.inertia, 1e-9 * rr.inertia);
    for (std::size_t i = 0; i < rw.centroids.size(); ++i)
      EXPECT_NEAR(rw.centroids[i], rr.centroids[i], 1e-12);
  }
}

TEST(Cosine, SameBitsWhateverTheThreadCount) {
  const std::int64_t n = 9000, d = 32;
  const std::vector<float> x = directions<float>(n, d, 8, 0.9, 31);
  kmeans::Params<float> p;
  p.k = 8;
  p.metric = Metric::Cosine;
  p.backend = Backend::Cpu;
  p.n_threads = 1;
  const auto one = kmeans::fit(x.data(), n, d, p);
  p.n_threads = 2;
  kmeans_test::expect_same_fit(kmeans::fit(x.data(), n, d, p), one);
  p.n_threads = 3;
  kmeans_test::expect_same_fit(kmeans::fit(x.data(), n, d, p), one);
}

/// predict, transform and score follow the metric: the fit's labels, 1 - cos against the
/// oracle, score = -inertia; the free functions with Metric::Cosine agree with KMeans.
template <class T>
void check_serving() {
  const std::int64_t n = 1200, d = 24;
  const int k = 4;
  const std::vector<T> x = directions<T>(n, d, k, 0.8, 41);
  const std::vector<T> fresh = directions<T>(300, d, k, 0.8, 43);
  std::vector<T> w(300);
  for (std::size_t i = 0; i < w.size(); ++i) w[i] = static_cast<T>(1 + i % 3);
  for (Backend b : kHostBackends) {
    SCOPED_TRACE(kmeans::to_string(b));
    kmeans::Params<T> p;
    p.k = k;
    p.metric = Metric::Cosine;
    p.backend = b;
    kmeans::KMeans<T> model(p);
    model.fit(x.data(), n, d);
    const auto& r = model.result();
    EXPECT_EQ(model.predict(x.data(), n), r.labels);
    EXPECT_NEAR(model.score(x.data(), n), -r.inertia, rel_tol<T>() * r.inertia);

    const std::vector<double> ux = unit_rows(to_double(fresh), d);
    const std::vector<double> c = to_double(r.centroids);
    std::vector<int> labels;
    const double inertia = oracle_assign(ux, to_double(w), d, c, k, labels);
    const auto pred = model.predict(fresh.data(), 300);
    const auto dist = model.transform(fresh.data(), 300);
    ASSERT_EQ(dist.size(), 300u * k);
    for (std::int64_t i = 0; i < 300; ++i) {
      EXPECT_EQ(pred[i], labels[i]) << "row " << i;
      for (int j = 0; j < k; ++j) {
        const double cosd = 1.0 - dot(&ux[i * d], &c[j * d], d);
        ASSERT_NEAR(double(dist[i * k + j]), cosd, sizeof(T) == 4 ? 1e-6 : 1e-14)
            << "row " << i << ", centroid " << j;
      }
      const auto row = dist.begin() + i * k;
      EXPECT_EQ(std::min_element(row, row + k) - row, pred[i]);
    }
    EXPECT_NEAR(model.score(fresh.data(), 300, w), -inertia, rel_tol<T>() * inertia);

    // The free functions with the metric; without it they stay Euclidean.
    const T* cc = r.centroids.data();
    EXPECT_EQ(kmeans::predict(fresh.data(), 300, d, cc, k, Metric::Cosine, b), pred);
    EXPECT_EQ(kmeans::transform(fresh.data(), 300, d, cc, k, Metric::Cosine, b), dist);
    EXPECT_EQ(kmeans::score(fresh.data(), 300, d, cc, k, Metric::Cosine, w, b),
              model.score(fresh.data(), 300, w));
    const auto euclid = kmeans::transform(fresh.data(), 300, d, cc, k, b);
    EXPECT_NE(euclid, dist);
    EXPECT_NEAR(double(euclid[0]),
                std::sqrt(kmeans_test::exact_dist(fresh.data(), cc, d)), 1e-4);
    // Centroids given at another scale serve the same (they are normalised too).
    std::vector<T> big(r.centroids);
    for (T& v : big) v = static_cast<T>(v * 8);
    EXPECT_EQ(kmeans::predict(fresh.data(), 300, d, big.data(), k, Metric::Cosine, b), pred);
  }
}

TEST(Cosine, PredictTransformScoreFloat) { check_serving<float>(); }
TEST(Cosine, PredictTransformScoreDouble) { check_serving<double>(); }

TEST(Cosine, ZeroRowsAreRefusedWithTheirIndex) {
  std::vector<double> x = directions<double>(50, 4, 2, 0.5, 51);
  std::fill(x.begin() + 17 * 4, x.begin() + 18 * 4, 0.0);
  std::fill(x.begin() + 30 * 4, x.begin() + 31 * 4, -0.0);
  for (Backend b : kHostBackends) {
    SCOPED_TRACE(kmeans::to_string(b));
    kmeans::Params<double> p;
    p.k = 2;
    p.metric = Metric::Cosine;
    p.backend = b;
    expect_error([&] { kmeans::fit(x.data(), 50, 4, p); },
                 "metric = cosine: data row 17 has zero norm");
    p.batch_size = 10;
    expect_error([&] { kmeans::fit(x.data(), 50, 4, p); }, "data row 17 has zero norm");
    p.batch_size = 0;
    // NaN is reported as NaN, before anything about zero rows after it.
    std::vector<double> nan = x;
    nan[5 * 4 + 1] = std::nan("");
    expect_error([&] { kmeans::fit(nan.data(), 50, 4, p); }, "data");
    expect_error([&] { kmeans::fit(nan.data(), 50, 4, p); }, "NaN");

    const std::vector<double> good = directions<double>(50, 4, 2, 0.5, 52);
    std::vector<double> init(good.begin(), good.begin() + 8);
    std::fill(init.begin() + 4, init.end(), 0.0);
    kmeans::Params<double> pa = cosine_params(2, init, b);
    expect_error([&] { kmeans::fit(good.data(), 50, 4, pa); }, "init_centroids row 1 has zero norm");
    expect_error([&] { kmeans::predict(good.data(), 50, 4, init.data(), 2, Metric::Cosine, b); },
                 "centroids row 1 has zero norm");
    expect_error([&] { kmeans::transform(x.data(), 50, 4, good.data(), 2, Metric::Cosine, b); },
                 "data row 17 has zero norm");
    expect_error([&] { kmeans::score(x.data(), 50, 4, good.data(), 2, Metric::Cosine, {}, b); },
                 "data row 17 has zero norm");
    // Euclidean k-means takes zero rows.
    p.metric = Metric::Euclidean;
    EXPECT_NO_THROW(kmeans::fit(x.data(), 50, 4, p));
  }
}

TEST(Cosine, UnknownMetricValueIsRefused) {
  const std::vector<double> x = directions<double>(20, 3, 2, 0.5, 61);
  kmeans::Params<double> p;
  p.k = 2;
  p.metric = static_cast<Metric>(7);
  expect_error([&] { kmeans::fit(x.data(), 20, 3, p); }, "metric = 7 is not");
  expect_error([&] { kmeans::predict(x.data(), 20, 3, x.data(), 2, static_cast<Metric>(7)); },
               "metric = 7 is not");
  EXPECT_STREQ(kmeans::to_string(Metric::Cosine), "cosine");
  EXPECT_STREQ(kmeans::to_string(Metric::Euclidean), "euclidean");
}

/// Mini-batch follows the metric: unit centres, a cosine inertia equal to -score, SSEs below
/// the Euclidean maximum of a cosine distance (2 per row), and partial_fit likewise.
TEST(Cosine, MiniBatchStaysOnTheSphere) {
  const std::int64_t n = 5000, d = 20;
  const std::vector<float> x = directions<float>(n, d, 5, 0.7, 71);
  for (Backend b : kHostBackends) {
    SCOPED_TRACE(kmeans::to_string(b));
    kmeans::Params<float> p;
    p.k = 5;
    p.metric = Metric::Cosine;
    p.batch_size = 256;
    p.max_iter = 5;
    p.backend = b;
    kmeans::KMeans<float> model(p);
    model.fit(x.data(), n, d);
    const auto& r = model.result();
    expect_unit_rows(r.centroids, d);
    EXPECT_NEAR(model.score(x.data(), n), -r.inertia, 1e-5 * r.inertia);
    std::vector<int> labels;
    const double o = oracle_assign(unit_rows(to_double(x), d), {}, d, to_double(r.centroids), 5, labels);
    EXPECT_NEAR(r.inertia, o, 1e-5 * o);
    for (double s : r.sse_history) EXPECT_LE(s, 2.0 * 256);
    EXPECT_LT(r.inertia, 0.5 * n);  // clustered: well below the 1 per row of random directions

    kmeans::KMeans<float> stream(p);
    for (std::int64_t row = 0; row + 1000 <= n; row += 1000) stream.partial_fit(x.data() + row * d, 1000, d);
    expect_unit_rows(stream.result().centroids, d);
  }
}

TEST(Cosine, ModelFilesRoundTripTheMetric) {
  const std::int64_t n = 400, d = 6;
  const std::vector<double> x = directions<double>(n, d, 3, 0.5, 81);
  kmeans::Params<double> p;
  p.k = 3;
  p.metric = Metric::Cosine;
  kmeans::KMeans<double> model(p);
  model.fit(x.data(), n, d);
  const std::string text = model.to_json();
  EXPECT_NE(text.find("\"metric\": \"cosine\""), std::string::npos);
  const auto back = kmeans::KMeans<double>::from_json(text);
  EXPECT_EQ(back.params().metric, Metric::Cosine);
  EXPECT_EQ(back.result().centroids, model.result().centroids);
  EXPECT_EQ(back.predict(x.data(), n), model.result().labels);
  EXPECT_EQ(back.transform(x.data(), n), model.transform(x.data(), n));
  EXPECT_EQ(back.score(x.data(), n), model.score(x.data(), n));
  EXPECT_EQ(back.to_json(), text);
  // A Euclidean model says so and loads as Euclidean.
  kmeans::Params<double> pe = p;
  pe.metric = Metric::Euclidean;
  kmeans::KMeans<double> euclid(pe);
  euclid.fit(x.data(), n, d);
  EXPECT_EQ(kmeans::KMeans<double>::from_json(euclid.to_json()).params().metric, Metric::Euclidean);
}

TEST(Cosine, NormalisationIsIdempotentAndKeepsUnitRows) {
  const std::int64_t n = 300, d = 384;
  const std::vector<float> x = directions<float>(n, d, 4, 1.0, 91);
  std::vector<float> once(x.size()), twice(x.size());
  kmeans::detail::normalise_rows(x.data(), n, d, once.data(), "data", 0);
  kmeans::detail::normalise_rows(once.data(), n, d, twice.data(), "data", 0);
  EXPECT_EQ(once, twice);
  expect_unit_rows(once, d);
  // Tiny and huge rows normalise without underflow or overflow.
  const double tiny[] = {1e-300, -2e-300, 0};
  const double huge[] = {1e300, 1e300, 0};
  double out[3];
  kmeans::detail::normalise_rows(tiny, 1, 3, out, "data", 0);
  EXPECT_NEAR(out[0], 1 / std::sqrt(5.0), 1e-15);
  EXPECT_NEAR(out[1], -2 / std::sqrt(5.0), 1e-15);
  kmeans::detail::normalise_rows(huge, 1, 3, out, "data", 0);
  EXPECT_NEAR(out[0], 1 / std::sqrt(2.0), 1e-15);
  // Beyond 2^+-1000 the prescaling is ldexp's (subnormal rows included).
  const double subnormal[] = {3e-310, 0, -4e-310};
  const double top[] = {1e306, -1e306, 1e306};
  kmeans::detail::normalise_rows(subnormal, 1, 3, out, "data", 0);
  EXPECT_NEAR(out[0], 0.6, 1e-12);
  EXPECT_NEAR(out[2], -0.8, 1e-12);
  kmeans::detail::normalise_rows(top, 1, 3, out, "data", 0);
  EXPECT_NEAR(out[1], -1 / std::sqrt(3.0), 1e-15);
}

}  // namespace
