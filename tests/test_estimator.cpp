// SPDX-License-Identifier: Apache-2.0
// The estimator around the driver: k-means||, n_init, weights, predict / transform / score,
// the KMeans class and warnings, on the host backends (modelled on scikit-learn's KMeans tests).
#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <cmath>
#include <cstdint>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "engine.hpp"
#include "kmeans/kmeans.hpp"
#include "test_data.hpp"
#include "test_helpers.hpp"

namespace {

using kmeans::Backend;
using kmeans::Init;
using kmeans_test::expect_same_fit;

using kmeans_test::kHostBackends;

using kmeans_test::blobs;

TEST(KMeansParallel, SeededPicksDataPointsOnePerBlob) {
  const auto x = blobs(250, 3);
  for (std::uint64_t seed = 0; seed < 4; ++seed) {
    kmeans::Params<double> p;
    p.k = 4;
    p.init = Init::KMeansParallel;
    p.max_iter = 0;
    p.seed = seed;
    const auto a = kmeans::fit(x.data(), 1000, 2, p);
    const auto b = kmeans::fit(x.data(), 1000, 2, p);
    EXPECT_EQ(a.centroids, b.centroids) << "same seed, same centroids";
    std::set<int> blob_of;
    for (int j = 0; j < 4; ++j) {
      bool is_point = false;
      for (int i = 0; i < 1000 && !is_point; ++i)
        is_point = x[2 * i] == a.centroids[2 * j] && x[2 * i + 1] == a.centroids[2 * j + 1];
      EXPECT_TRUE(is_point);
      blob_of.insert((a.centroids[2 * j] > 50 ? 1 : 0) + (a.centroids[2 * j + 1] > 50 ? 2 : 0));
    }
    EXPECT_EQ(blob_of.size(), 4u) << "seed " << seed;
  }
}

TEST(KMeansParallel, SameResultForAnyThreadCount) {
  const auto x = blobs(2000, 5);
  kmeans::Params<double> p;
  p.k = 20;
  p.init = Init::KMeansParallel;
  p.max_iter = 0;
  p.seed = 1;
  p.n_threads = 1;
  const auto a = kmeans::fit(x.data(), 8000, 2, p);
  p.n_threads = 2;
  const auto b = kmeans::fit(x.data(), 8000, 2, p);
  EXPECT_EQ(a.centroids, b.centroids);
}

TEST(KMeansParallel, TinyDataTopsUpCandidates) {
  const double x[] = {0, 1, 2, 3, 4};
  kmeans::Params<double> p;
  p.k = 5;
  p.init = Init::KMeansParallel;
  auto r = kmeans::fit(x, 5, 1, p);
  EXPECT_NEAR(r.inertia, 0.0, 1e-12);  // k = n: every point its own cluster
}

TEST(NInit, KeepsTheLowestInertiaAndItsOwnSeedSequence) {
  // Many clusters on few blobs: different inits end in different local minima.
  const auto x = blobs(100, 9);
  kmeans::Params<double> p;
  p.k = 7;
  p.init = Init::Random;
  p.seed = 100;
  double best = std::numeric_limits<double>::infinity();
  for (int i = 0; i < 6; ++i) {
    kmeans::Params<double> one = p;
    one.seed = p.seed + i;
    best = std::min(best, kmeans::fit(x.data(), 400, 2, one).inertia);
  }
  p.n_init = 6;
  const auto r = kmeans::fit(x.data(), 400, 2, p);
  EXPECT_EQ(r.inertia, best);
  p.n_init = 0;
  EXPECT_THROW(kmeans::fit(x.data(), 400, 2, p), kmeans::Error);
}

TEST(NInit, ArrayInitRunsOnceAndWarns) {
  const auto x = blobs(10, 1);
  const double c0[] = {0, 0, 100, 100};
  kmeans::Params<double> p;
  p.k = 2;
  p.init = Init::Array;
  p.init_centroids = c0;
  p.n_init = 5;
  const auto r = kmeans::fit(x.data(), 40, 2, p);
  ASSERT_EQ(r.warnings.size(), 1u);
  EXPECT_NE(r.warnings[0].find("n_init = 5 ignored"), std::string::npos);
}

TEST(Weights, ScalingAllWeightsChangesNothingButTheInertiaScale) {
  const auto x = blobs(50, 4);
  std::vector<double> w(200), w3(200);
  for (int i = 0; i < 200; ++i) {
    w[i] = 0.5 + (i % 7);
    w3[i] = 3 * w[i];
  }
  for (Backend b : kHostBackends) {
    kmeans::Params<double> p;
    p.k = 4;
    p.seed = 2;
    p.backend = b;
    p.sample_weight = w;
    const auto a = kmeans::fit(x.data(), 200, 2, p);
    p.sample_weight = w3;
    const auto c = kmeans::fit(x.data(), 200, 2, p);
    EXPECT_EQ(a.labels, c.labels);
    for (std::size_t i = 0; i < a.centroids.size(); ++i)
      EXPECT_NEAR(a.centroids[i], c.centroids[i], 1e-9);
    EXPECT_NEAR(c.inertia, 3 * a.inertia, 1e-9 * c.inertia);
  }
}

TEST(Estimator, TransformPredictScoreAgreeWithFit) {
  const auto x = blobs<float>(60, 8);
  for (Backend b : kHostBackends) {
    SCOPED_TRACE(kmeans::to_string(b));
    kmeans::Params<float> p;
    p.k = 4;
    p.backend = b;
    kmeans::KMeans<float> km(p);
    EXPECT_FALSE(km.fitted());
    EXPECT_THROW(km.result(), kmeans::Error);
    const auto labels = km.fit_predict(x.data(), 240, 2);
    ASSERT_TRUE(km.fitted());
    const auto& r = km.result();
    EXPECT_EQ(labels, r.labels);
    EXPECT_EQ(km.predict(x.data(), 240), r.labels);
    EXPECT_NEAR(km.score(x.data(), 240), -r.inertia, 1e-6 * r.inertia);
    const auto t = km.transform(x.data(), 240);
    ASSERT_EQ(t.size(), 240u * 4);
    for (int i = 0; i < 240; ++i) {
      const auto row = t.begin() + 4 * i;
      EXPECT_EQ(std::min_element(row, row + 4) - row, r.labels[i]) << "point " << i;
      for (int c = 0; c < 4; ++c) {
        const double dx = x[2 * i] - r.centroids[2 * c], dy = x[2 * i + 1] - r.centroids[2 * c + 1];
        EXPECT_NEAR(row[c], std::sqrt(dx * dx + dy * dy), 1e-4);
      }
    }
  }
}

TEST(Estimator, ScoreUsesWeights) {
  const double x[] = {0, 2};
  const double c[] = {1};
  const double w[] = {2, 3};
  EXPECT_DOUBLE_EQ(kmeans::score(x, 2, 1, c, 1), -2.0);
  EXPECT_DOUBLE_EQ(kmeans::score(x, 2, 1, c, 1, w), -5.0);
}

TEST(Estimator, FloatAndDoubleAgree) {
  const auto xd = blobs<double>(100, 6);
  const std::vector<float> xf(xd.begin(), xd.end());
  kmeans::Params<double> p;
  p.k = 4;
  p.seed = 11;
  kmeans::Params<float> pf;
  static_cast<kmeans::Options&>(pf) = p;  // the same knobs
  const auto rd = kmeans::fit(xd.data(), 400, 2, p);
  const auto rf = kmeans::fit(xf.data(), 400, 2, pf);
  EXPECT_EQ(rd.labels, rf.labels);
  EXPECT_NEAR(rf.inertia, rd.inertia, 1e-5 * rd.inertia);
}

TEST(Estimator, FewerDistinctPointsThanKWarns) {
  std::vector<double> x;
  for (int i = 0; i < 20; ++i) x.push_back(i % 2);
  kmeans::Params<double> p;
  p.k = 3;
  const auto r = kmeans::fit(x.data(), 20, 1, p);
  ASSERT_FALSE(r.warnings.empty());
  EXPECT_NE(r.warnings.back().find("distinct clusters (2)"), std::string::npos) << r.warnings.back();
  EXPECT_NEAR(r.inertia, 0.0, 1e-12);
}

TEST(Workspace, RefitOfTheSameShapeReusesTheEngineAndMatchesAFreshFit) {
  const auto x1 = blobs<float>(500, 21);
  const auto x2 = blobs<float>(500, 22);  // same shape, other values
  std::vector<float> w(2000);
  for (std::size_t i = 0; i < w.size(); ++i) w[i] = 0.5f + static_cast<float>(i % 4);
  for (Backend b : kHostBackends) {
    SCOPED_TRACE(kmeans::to_string(b));
    kmeans::Params<float> p;
    p.k = 5;
    p.seed = 4;
    p.n_init = 2;
    p.backend = b;
    kmeans::detail::WorkspacePtr<float> ws;
    kmeans::detail::fit(ws, x1.data(), 2000, 2, p);
    ASSERT_NE(ws, nullptr);
    EXPECT_EQ(ws->engines_made, 1);
    expect_same_fit(kmeans::detail::fit(ws, x2.data(), 2000, 2, p), kmeans::fit(x2.data(), 2000, 2, p));
    p.sample_weight = w;  // weights appear: same engine
    expect_same_fit(kmeans::detail::fit(ws, x1.data(), 2000, 2, p), kmeans::fit(x1.data(), 2000, 2, p));
    p.sample_weight = nullptr;
    expect_same_fit(kmeans::detail::fit(ws, x1.data(), 1000, 4, p), kmeans::fit(x1.data(), 1000, 4, p));
    EXPECT_EQ(ws->engines_made, 1) << "host engines take any shape";
    EXPECT_EQ(ws->rebinds, 3);
    // Another backend needs another engine.
    p.backend = b == Backend::Cpu ? Backend::Reference : Backend::Cpu;
    kmeans::detail::fit(ws, x1.data(), 2000, 2, p);
    EXPECT_EQ(ws->engines_made, 2);
    EXPECT_EQ(ws->fit_engine->kind(), p.backend);
  }
}

TEST(Workspace, PredictTransformScoreReuseOneEngine) {
  const auto x = blobs<double>(300, 23);
  const auto y = blobs<double>(300, 24);
  for (Backend b : kHostBackends) {
    SCOPED_TRACE(kmeans::to_string(b));
    kmeans::Params<double> p;
    p.k = 4;
    p.backend = b;
    const auto r = kmeans::fit(x.data(), 1200, 2, p);
    const double* c = r.centroids.data();
    kmeans::detail::WorkspacePtr<double> ws;
    for (const auto* data : {x.data(), y.data(), x.data()}) {
      EXPECT_EQ(kmeans::detail::predict(ws, data, 1200, 2, c, 4, b),
                kmeans::predict(data, 1200, 2, c, 4, b));
      EXPECT_EQ(kmeans::detail::transform(ws, data, 1200, 2, c, 4, b),
                kmeans::transform(data, 1200, 2, c, 4, b));
      EXPECT_EQ(kmeans::detail::score<double>(ws, data, 1200, 2, c, 4, nullptr, b),
                kmeans::score<double>(data, 1200, 2, c, 4, nullptr, b));
    }
    EXPECT_EQ(ws->engines_made, 1);
    EXPECT_EQ(ws->rebinds, 8);
    EXPECT_EQ(ws->fit_engine, nullptr);
  }
}

TEST(Workspace, ARebindCountsEveryLabelAsChanged) {
  const auto x = blobs<double>(100, 25);
  const auto c = std::vector<double>{0, 0, 100, 100};
  for (Backend b : kHostBackends) {
    SCOPED_TRACE(kmeans::to_string(b));
    const kmeans::detail::DataView<double> v{x.data(), nullptr, 400, 2, 0};
    auto e = b == Backend::Cpu ? kmeans::detail::make_cpu_engine(v)
                               : kmeans::detail::make_reference_engine(v);
    EXPECT_EQ(e->assign(c.data(), 2, nullptr, nullptr).n_changed, 400);
    EXPECT_EQ(e->assign(c.data(), 2, nullptr, nullptr).n_changed, 0);
    ASSERT_TRUE(e->rebind(v));
    EXPECT_EQ(e->assign(c.data(), 2, nullptr, nullptr).n_changed, 400);
  }
}

TEST(Estimator, KMeansCopiesAndReleaseKeepTheModel) {
  const auto x = blobs<float>(50, 26);
  kmeans::Params<float> p;
  p.k = 4;
  p.backend = Backend::Cpu;
  kmeans::KMeans<float> km(p);
  km.fit(x.data(), 200, 2);
  const auto labels = km.predict(x.data(), 200);
  kmeans::KMeans<float> copy = km;  // a copy has the model, not the engines
  EXPECT_EQ(copy.predict(x.data(), 200), labels);
  km.release();
  EXPECT_EQ(km.predict(x.data(), 200), labels);
  kmeans::KMeans<float> moved = std::move(copy);
  EXPECT_EQ(moved.predict(x.data(), 200), labels);
  EXPECT_EQ(moved.result().labels, labels);
  // The moved-from object is unfitted: an Error, not a division by its d.
  EXPECT_FALSE(copy.fitted());  // NOLINT(bugprone-use-after-move): on purpose
  EXPECT_THROW(copy.predict(x.data(), 200), kmeans::Error);
  kmeans::KMeans<float> target;
  target = std::move(moved);
  EXPECT_EQ(target.predict(x.data(), 200), labels);
  EXPECT_THROW(moved.transform(x.data(), 200), kmeans::Error);  // NOLINT: on purpose
}

TEST(Estimator, TransformIsExactInDoubleOnEveryHostBackend) {
  // Distances near a tie and with cancellation: the host formula is sqrt(sum (x - c)^2) in
  // double; every backend must give those bits (the CUDA kernel included, test_cuda).
  const std::int64_t n = 333, d = 7;
  std::vector<float> x(static_cast<std::size_t>(n * d));
  std::uint64_t state = 27;
  for (auto& v : x) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    v = static_cast<float>(static_cast<double>(state >> 11) * 0x1.0p-53 * 200.0 - 100.0);
  }
  std::vector<float> c(x.begin(), x.begin() + 5 * d);
  c[d + 3] = std::nextafter(c[d + 3], 200.0f);  // centre 1: one ulp off point 1
  for (Backend b : kHostBackends) {
    SCOPED_TRACE(kmeans::to_string(b));
    const auto t = kmeans::transform(x.data(), n, d, c.data(), 5, b);
    ASSERT_EQ(t.size(), static_cast<std::size_t>(n * 5));
    for (std::int64_t i = 0; i < n; ++i)
      for (int j = 0; j < 5; ++j) {
        double s = 0;
        for (std::int64_t f = 0; f < d; ++f) {
          const double u = static_cast<double>(x[i * d + f]) - static_cast<double>(c[j * d + f]);
          s = s + u * u;
        }
        ASSERT_EQ(t[i * 5 + j], static_cast<float>(std::sqrt(s))) << i << ", " << j;
      }
    EXPECT_EQ(t[0], 0.0f);  // point 0 is centre 0
  }
}

// ---- Initialisation's data operations against plain scalar loops (the oracle) ----------------

double oracle_sq(const float* a, const float* b, std::int64_t d) {
  double s = 0;
  for (std::int64_t j = 0; j < d; ++j) {
    const double t = static_cast<double>(a[j]) - static_cast<double>(b[j]);
    s = s + t * t;
  }
  return s;
}

/// scikit-learn's greedy k-means++ written plainly, with the library's draw layout and its
/// fixed summation order (per block of 4096 points, then blocks in order).
std::vector<std::int64_t> oracle_kmeanspp(const std::vector<float>& x, const std::vector<float>* w,
                                          std::int64_t n, std::int64_t d, int k, int trials,
                                          const std::vector<double>& u) {
  const std::int64_t B = 4096, nb = (n + B - 1) / B;
  auto wt = [&](std::int64_t i) { return w ? static_cast<double>((*w)[i]) : 1.0; };
  std::vector<double> cum(static_cast<std::size_t>(n));
  auto prefix = [&](const std::vector<double>* v) {
    double offset = 0;
    for (std::int64_t b = 0; b < nb; ++b) {
      double s = 0;
      const std::int64_t end = std::min(n, (b + 1) * B);
      for (std::int64_t i = b * B; i < end; ++i) {
        s = s + wt(i) * (v ? (*v)[i] : 1.0);
        cum[i] = b > 0 ? s + offset : s;
      }
      offset = offset + s;
    }
    return cum[n - 1];
  };
  auto search = [&](double r) {
    const auto it = std::lower_bound(cum.begin(), cum.end(), r);
    return std::min<std::int64_t>(it - cum.begin(), n - 1);
  };
  std::vector<std::int64_t> chosen;
  chosen.push_back(search(u[0] * prefix(nullptr)));
  std::vector<double> closest(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) closest[i] = oracle_sq(&x[i * d], &x[chosen[0] * d], d);
  double pot = prefix(&closest);
  for (int c = 1; c < k; ++c) {
    std::int64_t best_cand = -1;
    double best_pot = 0;
    std::vector<double> best_dist;
    for (int t = 0; t < trials; ++t) {
      const std::int64_t cand = search(u[1 + (c - 1) * trials + t] * pot);
      std::vector<double> dist(static_cast<std::size_t>(n));
      double total = 0;
      for (std::int64_t b = 0; b < nb; ++b) {
        double s = 0;
        for (std::int64_t i = b * B; i < std::min(n, (b + 1) * B); ++i) {
          dist[i] = std::min(closest[i], oracle_sq(&x[i * d], &x[cand * d], d));
          s = s + wt(i) * dist[i];
        }
        total = total + s;
      }
      if (t == 0 || total < best_pot) {  // ties: the earliest trial
        best_cand = cand;
        best_pot = total;
        best_dist = dist;
      }
    }
    chosen.push_back(best_cand);
    closest = best_dist;
    pot = prefix(&closest);
  }
  return chosen;
}

TEST(HostDataOps, OperationsMatchScalarLoops) {
  for (std::int64_t n : {std::int64_t{1}, std::int64_t{255}, std::int64_t{257}, std::int64_t{9000}}) {
    for (std::int64_t d : {std::int64_t{1}, std::int64_t{3}, std::int64_t{37}}) {
      SCOPED_TRACE("n=" + std::to_string(n) + " d=" + std::to_string(d));
      std::vector<float> x(static_cast<std::size_t>(n * d)), w(static_cast<std::size_t>(n));
      std::uint64_t state = static_cast<std::uint64_t>(n * 131 + d);
      auto next = [&]() {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        return static_cast<double>(state >> 11) * 0x1.0p-53;
      };
      for (auto& v : x) v = static_cast<float>(next() * 20 - 10);
      for (auto& v : w) v = static_cast<float>(next() < 0.1 ? 0.0 : next() * 3);
      w[0] = 1;
      for (const std::vector<float>* wp : {static_cast<const std::vector<float>*>(nullptr),
                                            static_cast<const std::vector<float>*>(&w)}) {
        const int threads = static_cast<int>(1 + (n + d) % 3);  // 1, 2 or 3 threads
        auto data =
            kmeans::detail::make_host_data_ops(x.data(), wp ? wp->data() : nullptr, n, d, threads);
        // lower_closest and nearest over a few candidates
        std::vector<std::int64_t> idx;
        for (std::int64_t c = 0; c < std::min<std::int64_t>(n, 11); ++c) idx.push_back((c * 7 + 3) % n);
        const auto m = static_cast<std::int64_t>(idx.size());
        std::vector<double> closest(static_cast<std::size_t>(n), 50.0), want(closest);
        data->lower_closest(idx.data(), m, closest.data());
        std::vector<std::int64_t> near(static_cast<std::size_t>(n)), want_near(near);
        data->nearest(idx.data(), m, near.data());
        for (std::int64_t i = 0; i < n; ++i) {
          double best = std::numeric_limits<double>::infinity();
          for (std::int64_t c = 0; c < m; ++c) {
            const double s = oracle_sq(&x[i * d], &x[idx[c] * d], d);
            want[i] = std::min(want[i], s);
            if (s < best) {
              best = s;
              want_near[i] = c;
            }
          }
        }
        EXPECT_EQ(closest, want);
        EXPECT_EQ(near, want_near);
        const int k = static_cast<int>(std::min<std::int64_t>(n, 13));
        const int trials = 2 + static_cast<int>(std::log(static_cast<double>(k)));
        std::vector<double> u(1 + static_cast<std::size_t>(k - 1) * trials);
        for (auto& v : u) v = next();
        EXPECT_EQ(data->greedy_kmeanspp(k, trials, u.data()),
                  oracle_kmeanspp(x, wp, n, d, k, trials, u));
      }
    }
  }
}

TEST(Estimator, DistinctObjectsInDistinctThreadsAreIndependent) {
  // Each KMeans owns its engines: two used at once from two threads give the sequential bits.
  const auto a = blobs<float>(3000, 31);
  const auto b = blobs<float>(3000, 32);
  kmeans::Params<float> p;
  p.k = 6;
  p.seed = 3;
  p.n_threads = 1;
  p.backend = Backend::Cpu;
  const auto ra = kmeans::fit(a.data(), 12000, 2, p);
  const auto rb = kmeans::fit(b.data(), 12000, 2, p);
  kmeans::KMeans<float> ka(p), kb(p);
  std::vector<std::int32_t> la, lb;
  std::thread ta([&] {
    for (int i = 0; i < 3; ++i) la = ka.fit(a.data(), 12000, 2).predict(a.data(), 12000);
  });
  std::thread tb([&] {
    for (int i = 0; i < 3; ++i) lb = kb.fit(b.data(), 12000, 2).predict(b.data(), 12000);
  });
  ta.join();
  tb.join();
  EXPECT_EQ(ka.result().centroids, ra.centroids);
  EXPECT_EQ(kb.result().centroids, rb.centroids);
  EXPECT_EQ(la, ra.labels);
  EXPECT_EQ(lb, rb.labels);
}

TEST(HostDataOps, VeryWideDataUsesSmallTiles) {
  // 5 points of 300000 features: the exact-distance tiles shrink to one point (a fixed-size
  // tile would take 600 MB per thread); values still match the scalar formula.
  const std::int64_t n = 5, d = 300000;
  std::vector<float> x(static_cast<std::size_t>(n * d));
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>((i * 7919) % 1000) / 100;
  const auto t = kmeans::transform(x.data(), n, d, x.data(), 2, Backend::Cpu);
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t c = 0; c < 2; ++c)
      EXPECT_EQ(t[i * 2 + c], static_cast<float>(std::sqrt(oracle_sq(&x[i * d], &x[c * d], d))));
  kmeans::Params<float> p;
  p.k = 3;
  p.backend = Backend::Cpu;
  const auto r = kmeans::fit(x.data(), n, d, p);
  EXPECT_EQ(r.centroids.size(), static_cast<std::size_t>(3 * d));
  EXPECT_GE(r.inertia, 0.0);
}

TEST(Estimator, PredictTransformScoreReportTheEngineThatRan) {
  const auto x = blobs<double>(20, 33);
  const std::vector<double> c = {0, 0, 100, 100};
  for (Backend b : {Backend::Reference, Backend::Cpu, Backend::Auto}) {
    SCOPED_TRACE(kmeans::to_string(b));
    Backend want = b;
    if (b == Backend::Auto) want = kmeans::cuda_available() ? Backend::Cuda : Backend::Cpu;
    Backend used = Backend::Auto;
    kmeans::predict(x.data(), 80, 2, c.data(), 2, b, &used);
    EXPECT_EQ(used, want);
    used = Backend::Auto;
    kmeans::transform(x.data(), 80, 2, c.data(), 2, b, &used);
    EXPECT_EQ(used, want);
    used = Backend::Auto;
    kmeans::score<double>(x.data(), 80, 2, c.data(), 2, nullptr, b, &used);
    EXPECT_EQ(used, want);
  }
}

}  // namespace
