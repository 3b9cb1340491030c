// SPDX-License-Identifier: Apache-2.0
// Mini-batch k-means and KMeans::partial_fit against a plain-loop oracle (minibatch_oracle.hpp) of the same draws.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "engine.hpp"
#include "kmeans/kmeans.hpp"
#include "minibatch.hpp"
#include "minibatch_oracle.hpp"
#include "test_helpers.hpp"

namespace {

using kmeans::Backend;
using kmeans::Init;
using kmeans::Params;
using kmeans::Result;
using kmeans::detail::SplitMix64;
using kmeans_test::blobs;
using kmeans_test::Expected;
using kmeans_test::expect_error;
using kmeans_test::feature_variance;
using kmeans_test::nearest;
using kmeans_test::oracle;

struct Case {
  std::int64_t n, d;
  int k, batch, max_iter;
  double ratio, tol;
  int max_no_improvement;
  bool weighted;
  int dup;
  bool stops;  ///< the case is meant to stop early
};

std::string describe(const Case& c) {
  return "n=" + std::to_string(c.n) + " d=" + std::to_string(c.d) + " k=" + std::to_string(c.k) +
         " batch=" + std::to_string(c.batch) + " ratio=" + std::to_string(c.ratio) +
         " tol=" + std::to_string(c.tol) + (c.weighted ? " weighted" : "") +
         (c.dup ? " duplicates" : "");
}

const std::vector<Case> kCases = {
    {1000, 3, 5, 64, 4, 0.01, 0.0, 10, false, 0, false},   // n not a multiple of the batch
    {999, 1, 4, 100, 3, 0.01, 0.0, 10, true, 0, false},    // d = 1, weights
    {500, 4, 1, 50, 3, 0.01, 0.0, 10, false, 0, false},    // k = 1
    {12, 2, 12, 5, 6, 0.01, 0.0, 0, false, 0, false},      // k = n
    {300, 3, 6, 40, 5, 0.01, 0.0, 10, false, 2, false},    // duplicated rows
    {200, 2, 4, 1000, 5, 0.01, 0.0, 10, false, 0, false},  // batch larger than n: clamped to n
    {400, 3, 40, 10, 2, 0.5, 0.0, 0, false, 0, false},     // heavy reassignment, capped at batch / 2
    {300, 2, 5, 1, 2, 0.01, 0.0, 0, true, 0, false},       // batch of one row
    {2000, 3, 4, 100, 30, 0.01, 1e-7, 0, false, 0, true},   // stops on the centre change
    {2000, 3, 8, 50, 30, 0.0, 0.0, 3, false, 0, true},    // stops on no improvement, no reassignment
};

template <class T>
void check_against_oracle(const Case& cs, Backend backend, int n_threads) {
  SCOPED_TRACE(describe(cs) + " backend=" + kmeans::to_string(backend) +
               " threads=" + std::to_string(n_threads));
  const std::vector<T> x = blobs<T>(cs.n, cs.d, std::max(1, std::min(cs.k, 6)), 3.0, cs.dup);
  std::vector<T> w;
  if (cs.weighted)
    for (std::int64_t i = 0; i < cs.n; ++i) w.push_back(static_cast<T>(0.25 * (1 + i % 7)) * (i % 11 == 0 ? 0 : 1));
  std::vector<T> init(x.begin(), x.begin() + cs.k * cs.d);  // the first k rows
  Params<T> p;
  p.k = cs.k;
  p.init = Init::Array;
  p.init_centroids = init;
  p.batch_size = cs.batch;
  p.max_iter = cs.max_iter;
  p.tol = cs.tol;
  p.reassignment_ratio = cs.ratio;
  p.max_no_improvement = cs.max_no_improvement;
  p.seed = 42;
  p.sample_weight = w;
  p.backend = backend;
  p.n_threads = n_threads;
  std::vector<double> shifts;
  p.on_iteration = [&](const kmeans::IterationInfo& info) {
    shifts.push_back(info.center_shift);
    return true;
  };
  const Result<T> r = kmeans::fit(x.data(), cs.n, cs.d, p);
  const Expected<T> e = oracle(x, w, cs.n, cs.d, p, cs.tol * feature_variance(x, cs.n, cs.d));
  const std::int64_t b = std::min<std::int64_t>(cs.batch, cs.n);
  EXPECT_EQ(r.backend, backend);
  EXPECT_EQ(r.n_steps, e.n_steps);
  EXPECT_EQ(r.n_iter, static_cast<int>((e.n_steps * b + cs.n - 1) / cs.n));
  EXPECT_EQ(r.converged, e.converged);
  ASSERT_EQ(r.sse_history.size(), e.sse_history.size());
  EXPECT_EQ(r.imbalance_history.size(), e.sse_history.size());
  if (backend == Backend::Reference) {  // the same loops in the same order: the same bits
    EXPECT_EQ(r.centroids, e.centroids);
    EXPECT_EQ(r.sse_history, e.sse_history);
    EXPECT_EQ(shifts, e.shifts);
    EXPECT_EQ(r.inertia, e.inertia);
  } else {
    for (std::size_t i = 0; i < e.centroids.size(); ++i)
      EXPECT_NEAR(r.centroids[i], e.centroids[i], 1e-4 * (1 + std::abs(e.centroids[i])));
    ASSERT_EQ(shifts.size(), e.shifts.size());
    for (std::size_t i = 0; i < e.sse_history.size(); ++i) {
      EXPECT_NEAR(r.sse_history[i], e.sse_history[i], 1e-4 * (1 + e.sse_history[i]));
      EXPECT_NEAR(shifts[i], e.shifts[i], 1e-4 * (1 + e.shifts[i]));
    }
    EXPECT_NEAR(r.inertia, e.inertia, 1e-4 * (1 + e.inertia));
  }
  EXPECT_EQ(r.labels, e.labels);
  if (cs.stops) EXPECT_TRUE(r.converged);
}

TEST(MiniBatch, ReferenceMatchesOracleBitForBitFloat) {
  for (const Case& c : kCases) check_against_oracle<float>(c, Backend::Reference, 1);
}
TEST(MiniBatch, ReferenceMatchesOracleBitForBitDouble) {
  for (const Case& c : kCases) check_against_oracle<double>(c, Backend::Reference, 1);
}
TEST(MiniBatch, CpuMatchesOracleFloat) {
  for (const Case& c : kCases) check_against_oracle<float>(c, Backend::Cpu, 2);
}
TEST(MiniBatch, CpuMatchesOracleDouble) {
  for (const Case& c : kCases) check_against_oracle<double>(c, Backend::Cpu, 3);
}

/// A fit big enough for the CPU engine to run its passes in parallel: 1, 2 and 3 threads (and
/// the default) give the same bits, k-means++ initialisation with n_init = 2 included.
template <class T>
void check_thread_counts(Init init) {
  const std::int64_t n = 20000, d = 10;
  const std::vector<T> x = blobs<T>(n, d, 16, 4.0);
  Params<T> p;
  p.k = 16;
  p.init = init;
  p.n_init = 2;
  p.batch_size = 8192;
  p.max_iter = 3;
  p.seed = 5;
  p.backend = Backend::Cpu;
  p.n_threads = 1;
  const Result<T> one = kmeans::fit(x.data(), n, d, p);
  EXPECT_GT(one.n_steps, 0);
  for (int t : {2, 3, 0}) {
    SCOPED_TRACE("threads=" + std::to_string(t));
    p.n_threads = t;
    const Result<T> r = kmeans::fit(x.data(), n, d, p);
    kmeans_test::expect_same_fit(one, r);
    EXPECT_EQ(r.n_steps, one.n_steps);
  }
}
TEST(MiniBatch, ThreadCountsGiveTheSameBitsFloat) { check_thread_counts<float>(Init::KMeansPlusPlus); }
TEST(MiniBatch, ThreadCountsGiveTheSameBitsDouble) { check_thread_counts<double>(Init::Random); }

/// k-means++ / random / k-means|| initialisation on a subset: reference and cpu agree, the fit
/// finds the separated blobs, and the same seed repeats the same bits.
template <class T>
void check_drawn_init(Init init) {
  const std::int64_t n = 3000, d = 3;
  const int k = 6;
  const std::vector<T> x = blobs<T>(n, d, k, 1.0);
  Params<T> p;
  p.k = k;
  p.init = init;
  p.n_init = 3;
  p.batch_size = 100;
  p.seed = 11;
  p.backend = Backend::Reference;
  const Result<T> ref = kmeans::fit(x.data(), n, d, p);
  kmeans_test::expect_same_fit(ref, kmeans::fit(x.data(), n, d, p));
  p.backend = Backend::Cpu;
  const Result<T> cpu = kmeans::fit(x.data(), n, d, p);
  EXPECT_EQ(cpu.labels, ref.labels);
  EXPECT_EQ(cpu.n_steps, ref.n_steps);
  if (init == Init::Random) return;  // random draws may put two centres in one blob
  // One label per blob (blob i % k).
  std::vector<int> label_of_blob(k, -1);
  for (std::int64_t i = 0; i < n; ++i) {
    int& l = label_of_blob[i % k];
    if (l < 0) l = ref.labels[i];
    ASSERT_EQ(ref.labels[i], l) << "row " << i;
  }
  EXPECT_LT(ref.inertia, n * d * 0.2);
}
TEST(MiniBatch, DrawnInitKMeansPlusPlus) { check_drawn_init<double>(Init::KMeansPlusPlus); }
TEST(MiniBatch, DrawnInitRandom) { check_drawn_init<float>(Init::Random); }
TEST(MiniBatch, DrawnInitKMeansParallel) { check_drawn_init<double>(Init::KMeansParallel); }

/// partial_fit over the batches a fit would draw equals that fit (no reassignment, no stopping),
/// and with reassignment the oracle's stream mode, call after call.
template <class T>
void check_partial_fit(Backend backend, double ratio) {
  SCOPED_TRACE(std::string("backend=") + kmeans::to_string(backend) + " ratio=" + std::to_string(ratio));
  const std::int64_t n = 700, d = 3, b = 64;
  const int k = 7;
  const std::vector<T> x = blobs<T>(n, d, 5, 3.0);
  std::vector<T> init(x.begin() + 10 * d, x.begin() + (10 + k) * d);
  Params<T> p;
  p.k = k;
  p.init = Init::Array;
  p.init_centroids = init;
  p.batch_size = static_cast<int>(b);
  p.max_iter = 3;
  p.tol = 0;
  p.max_no_improvement = 0;
  p.reassignment_ratio = ratio;
  p.seed = 3;
  p.backend = backend;
  // The fit's batches, from the documented draw order (Init::Array: batches only).
  SplitMix64 g(p.seed);
  std::vector<std::vector<std::int64_t>> batches;
  std::int64_t i_steps = p.max_iter * n / b;
  for (std::int64_t s = 0; s < i_steps; ++s) {
    std::vector<std::int64_t> idx(b);
    kmeans::detail::draw_indices(g, n, b, idx.data());
    batches.push_back(idx);
  }
  kmeans::KMeans<T> model(p);
  std::vector<T> rows;
  for (const auto& idx : batches) {
    rows.clear();
    for (std::int64_t i : idx) rows.insert(rows.end(), x.begin() + i * d, x.begin() + (i + 1) * d);
    model.partial_fit(rows.data(), idx.size(), d);
  }
  const Result<T>& r = model.result();
  EXPECT_EQ(r.n_steps, static_cast<int>(batches.size()));
  EXPECT_EQ(r.labels.size(), static_cast<std::size_t>(b));  // the last batch's labels
  const Expected<T> e = oracle(x, {}, n, d, p, 0.0, batches);
  if (backend == Backend::Reference) {
    EXPECT_EQ(r.centroids, e.centroids);
  } else {
    for (std::size_t i = 0; i < e.centroids.size(); ++i)
      EXPECT_NEAR(r.centroids[i], e.centroids[i], 1e-4 * (1 + std::abs(e.centroids[i])));
  }
  // The last batch's labels and inertia against the final centroids.
  double inertia = 0;
  for (std::size_t i = 0; i < batches.back().size(); ++i) {
    double dist = 0;
    EXPECT_EQ(r.labels[i], nearest(x.data() + batches.back()[i] * d, r.centroids, k, d, dist));
    inertia += dist;
  }
  EXPECT_NEAR(r.inertia, inertia, (sizeof(T) == 4 ? 1e-6 : 1e-9) * (1 + inertia));
  if (ratio == 0) {  // without reassignment the generator is unused: exactly the fit
    const Result<T> f = kmeans::fit(x.data(), n, d, p);
    EXPECT_EQ(f.n_steps, r.n_steps);
    EXPECT_EQ(f.centroids, r.centroids);
  }
}
TEST(MiniBatch, PartialFitEqualsFitFloat) { check_partial_fit<float>(Backend::Reference, 0.0); }
TEST(MiniBatch, PartialFitEqualsFitDouble) { check_partial_fit<double>(Backend::Cpu, 0.0); }
TEST(MiniBatch, PartialFitReassignsAsTheOracleFloat) { check_partial_fit<float>(Backend::Cpu, 0.3); }
TEST(MiniBatch, PartialFitReassignsAsTheOracleDouble) { check_partial_fit<double>(Backend::Reference, 0.3); }

TEST(MiniBatch, PartialFitAfterFitContinuesWithClusterSizesAsCounts) {
  const std::int64_t n = 400, d = 2;
  const std::vector<double> x = blobs<double>(n, d, 4, 2.0);
  Params<double> p;
  p.k = 4;
  p.seed = 1;
  p.backend = Backend::Reference;
  p.reassignment_ratio = 0;
  kmeans::KMeans<double> model(p);
  model.fit(x.data(), n, d);  // Lloyd
  const Result<double> lloyd = model.result();
  model.partial_fit(x.data() + 100 * d, 50, d);
  // The oracle's stream mode from the Lloyd centroids with their cluster sizes as counts.
  Params<double> q = p;
  q.init = Init::Array;
  q.init_centroids = lloyd.centroids;
  std::vector<std::int64_t> idx(50);
  std::iota(idx.begin(), idx.end(), 100);
  const Expected<double> e = oracle(x, {}, n, d, q, 0.0, {idx}, lloyd.cluster_sizes);
  EXPECT_EQ(model.result().centroids, e.centroids);
  EXPECT_EQ(model.result().n_steps, 1);
  expect_error([&] { model.partial_fit(x.data(), n / 2, 3); }, "partial_fit: d = 3 differs from the fitted d = 2");
}

TEST(MiniBatch, PartialFitInitialisesFromTheFirstBatchAndIsReproducible) {
  const std::int64_t n = 600, d = 2;
  const std::vector<float> x = blobs<float>(n, d, 3, 1.0);
  Params<float> p;
  p.k = 3;
  p.seed = 9;
  p.backend = Backend::Cpu;
  kmeans::KMeans<float> a(p), b(p);
  for (int s = 0; s < 3; ++s) {
    a.partial_fit(x.data() + s * 200 * d, 200, d);
    b.partial_fit(x.data() + s * 200 * d, 200, d);
  }
  kmeans_test::expect_same_fit(a.result(), b.result());
  EXPECT_EQ(a.result().n_steps, 3);
  EXPECT_EQ(a.result().labels.size(), 200u);
  // Each of the three blobs got a centre: the batch inertia is that of the blob spread.
  EXPECT_LT(a.result().inertia, 200 * d * 0.2);
  // A copy carries the counts and generator: it continues as the original.
  kmeans::KMeans<float> c = a;
  a.partial_fit(x.data(), 100, d);
  c.partial_fit(x.data(), 100, d);
  EXPECT_EQ(a.result().centroids, c.result().centroids);
}

/// Data below the underflow threshold (rescaled inside by a power of two) and weights totalling
/// more than 2^64 (likewise) give exactly the scaled fit of ordinary data and weights: the same
/// labels and steps, the centroids scaled by 2^-500, the counts carried by partial_fit intact.
TEST(MiniBatch, RescaledDataAndWeightsGiveTheScaledFit) {
  const std::int64_t n = 600, d = 3;
  const std::vector<double> x = blobs<double>(n, d, 4, 2.0);
  std::vector<double> tiny(x.size()), w(n), heavy(n);
  for (std::size_t i = 0; i < x.size(); ++i) tiny[i] = std::ldexp(x[i], -500);
  for (std::int64_t i = 0; i < n; ++i) {
    w[i] = 1.0 + static_cast<double>(i % 5);
    heavy[i] = std::ldexp(w[i], 70);
  }
  Params<double> p;
  p.k = 4;
  p.batch_size = 50;
  p.seed = 2;
  p.backend = Backend::Cpu;
  p.sample_weight = w;
  const Result<double> plain = kmeans::fit(x.data(), n, d, p);
  p.sample_weight = heavy;
  const Result<double> scaled = kmeans::fit(tiny.data(), n, d, p);
  EXPECT_EQ(scaled.labels, plain.labels);
  EXPECT_EQ(scaled.n_steps, plain.n_steps);
  ASSERT_EQ(scaled.centroids.size(), plain.centroids.size());
  for (std::size_t i = 0; i < plain.centroids.size(); ++i)
    EXPECT_EQ(scaled.centroids[i], std::ldexp(plain.centroids[i], -500)) << i;
  EXPECT_EQ(scaled.inertia, std::ldexp(plain.inertia, 70 - 1000));
  // partial_fit: counts in the caller's units survive the per-call rescaling.
  kmeans::KMeans<double> a(p), b(p);
  a.params().sample_weight = {w.data(), 200};
  b.params().sample_weight = {heavy.data(), 200};
  for (int s = 0; s < 3; ++s) {
    a.partial_fit(x.data() + s * 200 * d, 200, d);
    b.partial_fit(tiny.data() + s * 200 * d, 200, d);
  }
  for (std::size_t i = 0; i < a.result().centroids.size(); ++i)
    EXPECT_EQ(b.result().centroids[i], std::ldexp(a.result().centroids[i], -500)) << i;
}

/// A workspace keeps the batch engine: a same-shape mini-batch refit builds no engine and gives
/// the bits of a fresh fit.
TEST(MiniBatch, RefitReusesTheBatchEngine) {
  const std::int64_t n = 800, d = 3;
  const std::vector<double> x1 = blobs<double>(n, d, 4, 2.0, 0, 1), x2 = blobs<double>(n, d, 4, 2.0, 0, 2);
  for (Backend b : {Backend::Reference, Backend::Cpu}) {
    SCOPED_TRACE(kmeans::to_string(b));
    Params<double> p;
    p.k = 4;
    p.batch_size = 64;
    p.backend = b;
    kmeans::detail::WorkspacePtr<double> ws;
    kmeans_test::expect_same_fit(kmeans::detail::fit(ws, x1.data(), n, d, p), kmeans::fit(x1.data(), n, d, p));
    ASSERT_NE(ws, nullptr);
    EXPECT_EQ(ws->engines_made, 2);  // the data's and the batch's
    ASSERT_NE(ws->batch_engine, nullptr);
    kmeans_test::expect_same_fit(kmeans::detail::fit(ws, x2.data(), n, d, p), kmeans::fit(x2.data(), n, d, p));
    EXPECT_EQ(ws->engines_made, 2);
    p.batch_size = 100;  // host engines take any shape
    kmeans_test::expect_same_fit(kmeans::detail::fit(ws, x2.data(), n, d, p), kmeans::fit(x2.data(), n, d, p));
    EXPECT_EQ(ws->engines_made, 2);
  }
}

/// A fit or partial_fit made from inside on_iteration on the same object does not disturb the
/// running mini-batch fit, whose result and engines win when it returns.
TEST(MiniBatch, ReentryFromTheCallbackLeavesTheRunningFitAlone) {
  const std::int64_t n = 500, d = 2;
  const std::vector<float> x = blobs<float>(n, d, 3, 1.0);
  Params<float> p;
  p.k = 3;
  p.batch_size = 32;
  p.tol = 0;
  p.max_no_improvement = 0;
  p.max_iter = 1;
  p.backend = Backend::Cpu;
  const Result<float> alone = kmeans::fit(x.data(), n, d, p);
  kmeans::KMeans<float> model(p);
  int nested = 0;
  model.params().on_iteration = [&](const kmeans::IterationInfo& info) {
    if (info.iteration == 2 && nested == 0) {  // the nested fit calls back too
      ++nested;
      model.params().batch_size = 7;  // the running fit works on its own copy
      model.fit(x.data() + 100 * d, 200, d);
      model.partial_fit(x.data(), 50, d);
    }
    return true;
  };
  model.fit(x.data(), n, d);
  EXPECT_EQ(nested, 1);
  Result<float> got = model.result();
  EXPECT_EQ(got.centroids, alone.centroids);
  EXPECT_EQ(got.labels, alone.labels);
  EXPECT_EQ(got.sse_history, alone.sse_history);
  EXPECT_EQ(got.n_steps, alone.n_steps);
}

/// A model saved after a mini-batch fit and loaded back continues under partial_fit exactly as
/// the original object does (counts from cluster_sizes, generator from the stored seed).
TEST(MiniBatch, PartialFitAfterLoadContinuesAsTheOriginal) {
  const std::int64_t n = 400, d = 2;
  const std::vector<double> x = blobs<double>(n, d, 4, 2.0);
  Params<double> p;
  p.k = 4;
  p.batch_size = 40;
  p.seed = 6;
  p.backend = Backend::Cpu;
  kmeans::KMeans<double> original(p);
  original.fit(x.data(), n, d);
  kmeans::KMeans<double> loaded = kmeans::KMeans<double>::from_json(original.to_json());
  for (int s = 0; s < 3; ++s) {
    original.partial_fit(x.data() + s * 100 * d, 100, d);
    loaded.partial_fit(x.data() + s * 100 * d, 100, d);
  }
  EXPECT_EQ(loaded.result().centroids, original.result().centroids);
  EXPECT_EQ(loaded.result().labels, original.result().labels);
}

TEST(MiniBatch, LloydIsTheDefaultAndMaxIterZeroOnlyInitialises) {
  const std::vector<double> x = blobs<double>(100, 2, 4, 1.0);
  Params<double> p;
  p.k = 4;
  p.backend = Backend::Reference;
  const Result<double> lloyd = kmeans::fit(x.data(), 100, 2, p);
  EXPECT_EQ(lloyd.n_steps, 0);
  p.batch_size = 10;
  p.max_iter = 0;
  const Result<double> none = kmeans::fit(x.data(), 100, 2, p);
  EXPECT_EQ(none.n_steps, 0);
  EXPECT_TRUE(none.sse_history.empty());
  EXPECT_EQ(none.labels.size(), 100u);
}

TEST(MiniBatch, CallbackSeesEveryStepAndCanStop) {
  const std::vector<double> x = blobs<double>(500, 2, 4, 1.0);
  Params<double> p;
  p.k = 4;
  p.batch_size = 20;
  p.max_no_improvement = 0;
  p.tol = 0;
  p.backend = Backend::Cpu;
  int calls = 0;
  p.on_iteration = [&](const kmeans::IterationInfo& info) {
    EXPECT_EQ(info.iteration, calls);
    return ++calls < 7;
  };
  const Result<double> r = kmeans::fit(x.data(), 500, 2, p);
  EXPECT_EQ(calls, 7);
  EXPECT_EQ(r.n_steps, 7);
  EXPECT_FALSE(r.converged);
}

TEST(MiniBatch, BadParametersNameTheValue) {
  const std::vector<float> x = blobs<float>(50, 2, 2, 1.0);
  Params<float> p;
  p.k = 2;
  p.batch_size = -1;
  expect_error([&] { kmeans::fit(x.data(), 50, 2, p); }, "batch_size = -1 is negative");
  p.batch_size = 10;
  p.max_no_improvement = -3;
  expect_error([&] { kmeans::fit(x.data(), 50, 2, p); }, "max_no_improvement = -3 is negative");
  p.max_no_improvement = 10;
  for (double bad : {-0.5, std::nan(""), std::numeric_limits<double>::infinity()}) {
    p.reassignment_ratio = bad;
    expect_error([&] { kmeans::fit(x.data(), 50, 2, p); }, "reassignment_ratio = ");
  }
  p.reassignment_ratio = -0.5;
  expect_error([&] { kmeans::fit(x.data(), 50, 2, p); }, "reassignment_ratio = -0.5 must be finite and >= 0");
  p.reassignment_ratio = 0.01;
  kmeans::KMeans<float> m(p);
  expect_error([&] { m.partial_fit(x.data(), 1, 2); }, "k = 2 exceeds the number of samples n = 1");
  EXPECT_FALSE(m.fitted());
}

}  // namespace
