// SPDX-License-Identifier: Apache-2.0
// The Lloyd driver's semantics on hand-checked cases, input validation, initialisation and
// determinism, on the host backends (Reference and Cpu).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <set>
#include <string>
#include <type_traits>
#include <vector>

#include "kmeans/kmeans.hpp"
#include "test_data.hpp"

namespace {

using kmeans::Backend;
using kmeans::Init;

constexpr double kExactTol = 1e-12;

const Backend kHostBackends[] = {Backend::Reference, Backend::Cpu};

/// Params for Init::Array from `init` (a built-in array or a std::vector of the data's type).
template <class A>
auto array_params(int k, const A& init, Backend b, int max_iter = 300, double tol = 0) {
  kmeans::Params<std::remove_cv_t<std::remove_reference_t<decltype(init[0])>>> p;
  p.k = k;
  p.max_iter = max_iter;
  p.tol = tol;
  p.init = Init::Array;
  p.init_centroids = init;
  p.backend = b;
  return p;
}

/// Throws unless calling f raises kmeans::Error whose message contains `needle`.
template <class F>
void expect_error(F&& f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "expected kmeans::Error containing \"" << needle << "\"";
  } catch (const kmeans::Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos)
        << "message: " << e.what() << "\nexpected to contain: " << needle;
  }
}

// Worked by hand: 1-D points {0, 1, 10, 11}, k = 2, initial centroids {0, 1}.
//  iteration 0: labels {0,1,1,1}, SSE 0+0+81+100 = 181, centroids -> {0, 22/3}
//  iteration 1: labels {0,0,1,1}, SSE 0+1+(8/3)^2+(11/3)^2 = 1+64/9+121/9, centroids -> {0.5, 10.5}
//  iteration 2: labels unchanged, SSE 4 * 0.25 = 1: strict convergence after 3 iterations.
TEST(Driver, HandCheckedLloydSequence) {
  const double x[] = {0, 1, 10, 11};
  const double c0[] = {0, 1};
  for (Backend b : kHostBackends) {
    SCOPED_TRACE(kmeans::to_string(b));
    auto r = kmeans::fit(x, 4, 1, array_params(2, c0, b));
    ASSERT_EQ(r.n_iter, 3);
    EXPECT_TRUE(r.converged);
    ASSERT_EQ(r.sse_history.size(), 3u);
    EXPECT_NEAR(r.sse_history[0], 181.0, kExactTol);
    EXPECT_NEAR(r.sse_history[1], 1.0 + 64.0 / 9 + 121.0 / 9, kExactTol);
    EXPECT_NEAR(r.sse_history[2], 1.0, kExactTol);
    EXPECT_NEAR(r.inertia, 1.0, kExactTol);
    EXPECT_DOUBLE_EQ(r.centroids[0], 0.5);
    EXPECT_DOUBLE_EQ(r.centroids[1], 10.5);
    EXPECT_EQ(r.labels, (std::vector<std::int32_t>{0, 0, 1, 1}));
    EXPECT_EQ(r.backend, b);
    EXPECT_EQ(r.n_empty_relocated, 0);
  }
}

// A point equidistant from two centroids goes to the lower index; max_iter = 0 only assigns.
TEST(Driver, TiesGoToLowestIndexAndMaxIterZeroOnlyAssigns) {
  const float x[] = {0, 1, 2};
  const float c0[] = {0, 2};
  for (Backend b : kHostBackends) {
    SCOPED_TRACE(kmeans::to_string(b));
    auto r = kmeans::fit(x, 3, 1, array_params(2, c0, b, /*max_iter=*/0));
    EXPECT_EQ(r.n_iter, 0);
    EXPECT_FALSE(r.converged);
    EXPECT_TRUE(r.sse_history.empty());
    EXPECT_EQ(r.labels, (std::vector<std::int32_t>{0, 0, 1}));
    EXPECT_NEAR(r.inertia, 1.0, kExactTol);
    EXPECT_EQ(r.centroids, (std::vector<float>{0, 2}));
  }
}

// Two identical initial centroids: cluster 1 is empty after the first assignment and takes the
// point farthest from its centroid. Both points are at distance 1, so the tie goes to point 0:
// cluster 0 keeps point 1 (x = 2), cluster 1 gets point 0 (x = 0).
TEST(Driver, EmptyClusterTakesFarthestPointLowestIndexOnTies) {
  const double x[] = {0, 2};
  const double c0[] = {1, 1};
  for (Backend b : kHostBackends) {
    SCOPED_TRACE(kmeans::to_string(b));
    auto r = kmeans::fit(x, 2, 1, array_params(2, c0, b, /*max_iter=*/1));
    EXPECT_EQ(r.n_empty_relocated, 1);
    EXPECT_EQ(r.centroids, (std::vector<double>{2, 0}));
    EXPECT_EQ(r.labels, (std::vector<std::int32_t>{1, 0}));
    EXPECT_NEAR(r.inertia, 0.0, kExactTol);
    for (double c : r.centroids) EXPECT_TRUE(std::isfinite(c));
  }
}

// Fewer distinct points than k: empty clusters are repaired, nothing is NaN, inertia is 0.
TEST(Driver, FewerDistinctPointsThanKNeverGivesNaN) {
  std::vector<double> x;
  for (int i = 0; i < 30; ++i) x.push_back(i % 3);  // three distinct values
  std::vector<double> c0(6, 1.0);                   // six identical centroids
  for (Backend b : kHostBackends) {
    SCOPED_TRACE(kmeans::to_string(b));
    auto r = kmeans::fit(x.data(), x.size(), 1, array_params(6, c0, b, 10));
    for (double c : r.centroids) EXPECT_TRUE(std::isfinite(c));
    EXPECT_GT(r.n_empty_relocated, 0);
    EXPECT_NEAR(r.inertia, 0.0, kExactTol);
    for (auto l : r.labels) {
      EXPECT_GE(l, 0);
      EXPECT_LT(l, 6);
    }
  }
}

TEST(Driver, KEqualsOneGivesTheMeanAndKEqualsNGivesZeroInertia) {
  const double x[] = {1, 2, 3, 5, 7, 11, 13, 17};  // 4 points in 2-D
  for (Backend b : kHostBackends) {
    SCOPED_TRACE(kmeans::to_string(b));
    kmeans::Params<double> p;
    p.k = 1;
    p.backend = b;
    auto r1 = kmeans::fit(x, 4, 2, p);
    EXPECT_DOUBLE_EQ(r1.centroids[0], (1 + 3 + 7 + 13) / 4.0);
    EXPECT_DOUBLE_EQ(r1.centroids[1], (2 + 5 + 11 + 17) / 4.0);
    double sse = 0;
    for (int i = 0; i < 4; ++i)
      for (int j = 0; j < 2; ++j) sse += std::pow(x[2 * i + j] - r1.centroids[j], 2);
    EXPECT_NEAR(r1.inertia, sse, 1e-9 * sse);
    p.k = 4;
    auto r4 = kmeans::fit(x, 4, 2, p);
    EXPECT_NEAR(r4.inertia, 0.0, kExactTol);
    EXPECT_EQ(std::set<std::int32_t>(r4.labels.begin(), r4.labels.end()).size(), 4u);
  }
}

// tol is relative to the mean feature variance: a huge tol stops after one iteration.
TEST(Driver, ToleranceStopsEarly) {
  const double x[] = {0, 1, 10, 11};
  const double c0[] = {0, 1};
  auto r = kmeans::fit(x, 4, 1, array_params(2, c0, Backend::Cpu, 300, /*tol=*/1e9));
  EXPECT_EQ(r.n_iter, 1);
  EXPECT_TRUE(r.converged);
  // Labels still belong to the returned centroids {0, 22/3}.
  EXPECT_EQ(r.labels, (std::vector<std::int32_t>{0, 0, 1, 1}));
}

TEST(Driver, MaxIterReachedIsNotConverged) {
  const double x[] = {0, 1, 10, 11};
  const double c0[] = {0, 1};
  auto r = kmeans::fit(x, 4, 1, array_params(2, c0, Backend::Cpu, /*max_iter=*/1));
  EXPECT_EQ(r.n_iter, 1);
  EXPECT_FALSE(r.converged);
  EXPECT_EQ(r.labels, (std::vector<std::int32_t>{0, 0, 1, 1}));  // against {0, 22/3}
}

TEST(Driver, CallbackSeesEveryIterationAndCanStop) {
  const double x[] = {0, 1, 10, 11};
  const double c0[] = {0, 1};
  auto p = array_params(2, c0, Backend::Reference);
  std::vector<kmeans::IterationInfo> seen;
  p.on_iteration = [&](const kmeans::IterationInfo& info) {
    seen.push_back(info);
    return true;
  };
  auto r = kmeans::fit(x, 4, 1, p);
  ASSERT_EQ(seen.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(seen[i].iteration, i);
    EXPECT_EQ(seen[i].sse, r.sse_history[i]);
    EXPECT_GE(seen[i].seconds, 0.0);
  }
  // Shift of iteration 0: centroid 1 moves from 1 to 22/3.
  EXPECT_NEAR(seen[0].center_shift, std::pow(22.0 / 3 - 1, 2), kExactTol);
  p.on_iteration = [](const kmeans::IterationInfo&) { return false; };
  auto stopped = kmeans::fit(x, 4, 1, p);
  EXPECT_EQ(stopped.n_iter, 1);
  EXPECT_FALSE(stopped.converged);
}

// Integer sample weights give the same fit as repeating the points.
TEST(Driver, IntegerWeightsEqualRepeatedPoints) {
  const double x[] = {0, 0, 1, 0, 5, 5, 6, 5, 9, 1};
  const double w[] = {1, 3, 2, 1, 2};
  std::vector<double> rep;
  for (int i = 0; i < 5; ++i)
    for (int t = 0; t < static_cast<int>(w[i]); ++t) rep.insert(rep.end(), {x[2 * i], x[2 * i + 1]});
  const double c0[] = {0, 0, 9, 1};
  for (Backend b : kHostBackends) {
    SCOPED_TRACE(kmeans::to_string(b));
    auto pw = array_params(2, c0, b);
    pw.sample_weight = w;
    auto rw = kmeans::fit(x, 5, 2, pw);
    auto rr = kmeans::fit(rep.data(), rep.size() / 2, 2, array_params(2, c0, b));
    ASSERT_EQ(rw.centroids.size(), rr.centroids.size());
    for (std::size_t i = 0; i < rw.centroids.size(); ++i)
      EXPECT_NEAR(rw.centroids[i], rr.centroids[i], 1e-12);
    EXPECT_NEAR(rw.inertia, rr.inertia, 1e-9 * (1 + rr.inertia));
    EXPECT_EQ(rw.n_iter, rr.n_iter);
  }
}

TEST(Driver, PredictMatchesFitLabels) {
  std::vector<float> x;
  for (int i = 0; i < 200; ++i) x.push_back(static_cast<float>((i * 37) % 101));
  kmeans::Params<float> p;
  p.k = 5;
  p.backend = Backend::Cpu;
  auto r = kmeans::fit(x.data(), 100, 2, p);
  for (Backend b : kHostBackends) {
    auto labels = kmeans::predict(x.data(), 100, 2, r.centroids.data(), 5, b);
    EXPECT_EQ(labels, r.labels) << kmeans::to_string(b);
  }
}

// ---- Initialisation ----------------------------------------------------------------------

std::vector<double> blobs(int per_blob, std::uint64_t seed) {
  return kmeans_test::four_blobs(per_blob, seed);
}

TEST(Init, SameSeedSameCentroidsDifferentSeedDifferent) {
  const auto x = blobs(50, 1);
  for (Init init : {Init::Random, Init::KMeansPlusPlus}) {
    kmeans::Params<double> p;
    p.k = 4;
    p.init = init;
    p.max_iter = 0;  // the centroids returned are the initial ones
    p.seed = 42;
    auto a = kmeans::fit(x.data(), 200, 2, p);
    auto b = kmeans::fit(x.data(), 200, 2, p);
    EXPECT_EQ(a.centroids, b.centroids);
    p.seed = 43;
    auto c = kmeans::fit(x.data(), 200, 2, p);
    EXPECT_NE(a.centroids, c.centroids);
    // Every initial centroid is a data point, and they are distinct points.
    std::set<std::pair<double, double>> picked;
    for (int j = 0; j < 4; ++j) {
      const std::pair<double, double> cj{a.centroids[2 * j], a.centroids[2 * j + 1]};
      bool found = false;
      for (int i = 0; i < 200 && !found; ++i) found = x[2 * i] == cj.first && x[2 * i + 1] == cj.second;
      EXPECT_TRUE(found);
      picked.insert(cj);
    }
    EXPECT_EQ(picked.size(), 4u);
  }
}

// k-means++ spreads the centres: on four far-apart blobs it picks one point in each.
TEST(Init, KMeansPlusPlusPicksOnePointPerBlob) {
  const auto x = blobs(100, 7);
  for (std::uint64_t seed = 0; seed < 5; ++seed) {
    kmeans::Params<double> p;
    p.k = 4;
    p.max_iter = 0;
    p.seed = seed;
    auto r = kmeans::fit(x.data(), 400, 2, p);
    std::set<int> blob_of;
    for (int j = 0; j < 4; ++j)
      blob_of.insert((r.centroids[2 * j] > 50 ? 1 : 0) + (r.centroids[2 * j + 1] > 50 ? 2 : 0));
    EXPECT_EQ(blob_of.size(), 4u) << "seed " << seed;
  }
}

TEST(Init, ZeroWeightPointsAreNeverChosen) {
  const double x[] = {0, 1, 2, 3, 4, 5};
  const double w[] = {0, 1, 0, 1, 0, 1};
  for (Init init : {Init::Random, Init::KMeansPlusPlus}) {
    for (std::uint64_t seed = 0; seed < 10; ++seed) {
      kmeans::Params<double> p;
      p.k = 3;
      p.init = init;
      p.max_iter = 0;
      p.seed = seed;
      p.sample_weight = w;
      auto r = kmeans::fit(x, 6, 1, p);
      for (double c : r.centroids) EXPECT_EQ(static_cast<int>(c) % 2, 1) << c;
    }
  }
}

// ---- Validation --------------------------------------------------------------------------

TEST(Validation, BadShapesAndParams) {
  const double x[] = {1, 2, 3, 4, 5, 6, 7, 8};
  kmeans::Params<double> p;
  p.k = 2;
  expect_error([&] { kmeans::fit<double>(nullptr, 4, 2, p); }, "data is a null pointer");
  expect_error([&] { kmeans::fit(x, 0, 2, p); }, "n = 0");
  expect_error([&] { kmeans::fit(x, 4, 0, p); }, "d = 0");
  expect_error([&] { kmeans::fit(x, std::numeric_limits<std::size_t>::max() / 2, 4, p); },
               "overflows");
  p.k = 0;
  expect_error([&] { kmeans::fit(x, 4, 2, p); }, "k = 0 must be at least 1");
  p.k = -3;
  expect_error([&] { kmeans::fit(x, 4, 2, p); }, "k = -3");
  p.k = 5;
  expect_error([&] { kmeans::fit(x, 4, 2, p); }, "k = 5 exceeds the number of samples n = 4");
  p.k = 2;
  p.max_iter = -1;
  expect_error([&] { kmeans::fit(x, 4, 2, p); }, "max_iter = -1");
  p.max_iter = 10;
  p.tol = -1;
  expect_error([&] { kmeans::fit(x, 4, 2, p); }, "tol = -1");
  p.tol = std::nan("");
  expect_error([&] { kmeans::fit(x, 4, 2, p); }, "tol = nan");
  p.tol = 1e-4;
  p.init = Init::Array;
  expect_error([&] { kmeans::fit(x, 4, 2, p); }, "init_centroids is a null pointer");
  const double bad_init[] = {0, 0, std::nan(""), 1};
  p.init_centroids = bad_init;
  expect_error([&] { kmeans::fit(x, 4, 2, p); }, "init_centroids contains NaN at row 1, column 0");
}

TEST(Validation, NonFiniteDataNamesTheElement) {
  for (Backend b : kHostBackends) {
    std::vector<float> x(40, 1.0f);
    kmeans::Params<float> p;
    p.k = 2;
    p.backend = b;
    x[2 * 13 + 1] = std::numeric_limits<float>::quiet_NaN();
    expect_error([&] { kmeans::fit(x.data(), 20, 2, p); }, "data contains NaN at row 13, column 1");
    x[2 * 13 + 1] = 0;
    x[7] = -std::numeric_limits<float>::infinity();
    expect_error([&] { kmeans::fit(x.data(), 20, 2, p); }, "data contains Inf at row 3, column 1");
  }
}

TEST(Validation, BadWeights) {
  const double x[] = {1, 2, 3, 4};
  kmeans::Params<double> p;
  p.k = 2;
  const double negative[] = {1, -1, 1, 1};
  p.sample_weight = negative;
  expect_error([&] { kmeans::fit(x, 4, 1, p); }, "sample_weight[1] = -1 is negative");
  const double zeros[] = {0, 0, 0, 0};
  p.sample_weight = zeros;
  expect_error([&] { kmeans::fit(x, 4, 1, p); }, "sample_weight sums to 0");
  const double nan_w[] = {1, 1, std::nan(""), 1};
  p.sample_weight = nan_w;
  expect_error([&] { kmeans::fit(x, 4, 1, p); }, "sample_weight contains NaN at row 2");
  // Only two points carry weight: k = 3 cannot be initialised from them.
  const double two[] = {1, 0, 0, 1};
  p.sample_weight = two;
  p.k = 3;
  p.init = Init::Random;
  expect_error([&] { kmeans::fit(x, 4, 1, p); }, "fewer than k = 3");
}

TEST(Validation, CudaRequestedWithoutUsableDeviceIsAnError) {
  std::string why;
  if (kmeans::cuda_available(&why)) GTEST_SKIP() << "a usable CUDA device is present";
  EXPECT_FALSE(why.empty());
  const double x[] = {1, 2, 3, 4};
  kmeans::Params<double> p;
  p.k = 2;
  p.backend = Backend::Cuda;
  try {
    kmeans::fit(x, 4, 1, p);
    ADD_FAILURE() << "Backend::Cuda without a device must throw";
  } catch (const kmeans::Error& e) {
    EXPECT_NE(std::string(e.what()).find("cuda"), std::string::npos) << e.what();
  }
  // Auto falls back to the CPU and says so.
  p.backend = Backend::Auto;
  EXPECT_EQ(kmeans::fit(x, 4, 1, p).backend, Backend::Cpu);
}

TEST(Validation, PredictChecksItsInputs) {
  const double x[] = {1, 2, 3, 4};
  const double c[] = {1, std::nan("")};
  expect_error([&] { kmeans::predict<double>(x, 4, 1, nullptr, 2); }, "centroids is a null pointer");
  expect_error([&] { kmeans::predict(x, 4, 1, c, 2); }, "centroids contains NaN at row 1");
  expect_error([&] { kmeans::predict(x, 4, 1, c, 0); }, "k = 0");
}

// ---- Value ranges and array lengths -------------------------------------------------------

// float32 distances past FLT_MAX would give wrong labels: such values are rejected, naming the
// value, its place and the range; values inside the range give the exact labels.
TEST(Validation, ValuesBeyondTheSupportedRangeAreRejected) {
  const float big[] = {0, 1e20f, 2e20f, 3e20f, 1e19f};
  const float c_big[] = {0, 2e20f};
  const std::string range = "outside the supported range [-6.52e+18, 6.52e+18] for float32";
  const float small[] = {0, 1, 2, 3, 4};
  expect_error([&] { kmeans::predict(big, 5, 1, small, 2); }, "data value 1e+20 at row 1, column 0");
  expect_error([&] { kmeans::predict(big, 5, 1, small, 2); }, range);
  expect_error([&] { kmeans::predict(big, 5, 1, c_big, 2); }, "value 2e+20 at row 1, column 0");
  expect_error([&] { kmeans::transform(small, 5, 1, c_big, 2); },
               "centroids value 2e+20 at row 1, column 0");
  expect_error([&] { kmeans::score(small, 5, 1, c_big, 2); }, "centroids value 2e+20");
  kmeans::Params<float> pf;
  pf.k = 2;
  expect_error([&] { kmeans::fit(big, 5, 1, pf); }, "data value 1e+20 at row 1, column 0");
  pf.init = Init::Array;
  pf.init_centroids = c_big;
  expect_error([&] { kmeans::fit(small, 5, 1, pf); }, "init_centroids value 2e+20 at row 1");
  // The same shape scaled into the range: the exact labels (0 0 1 1 0) on every host backend.
  const float in[] = {0, 1e18f, 2e18f, 3e18f, 1e17f};
  const float c_in[] = {0, 2e18f};
  for (Backend b : kHostBackends)
    EXPECT_EQ(kmeans::predict(in, 5, 1, c_in, 2, b), (std::vector<std::int32_t>{0, 0, 1, 1, 0}))
        << kmeans::to_string(b);
  // The bound is max_abs_value<T>(d), and it shrinks with d.
  const double bf = kmeans::max_abs_value<float>(1);
  EXPECT_GT(bf, 3e18);
  EXPECT_LT(bf, 1e19);
  EXPECT_NEAR(kmeans::max_abs_value<float>(4), bf / 2, 0.01 * bf);
  // float64: +-1.7e308 is rejected; values just inside the bound fit to finite centroids.
  const double huge[] = {1.7e308, -1.7e308, 0, 1};
  kmeans::Params<double> pd;
  pd.k = 2;
  expect_error([&] { kmeans::fit(huge, 4, 1, pd); }, "data value 1.7e+308 at row 0, column 0");
  expect_error([&] { kmeans::fit(huge, 4, 1, pd); }, "for float64 with d = 1");
  const double bd = kmeans::max_abs_value<double>(2);
  const double edge[] = {bd, bd, -bd, -bd, bd, -bd, -bd, bd, 0, 0, bd / 2, bd / 3};
  for (Backend b : kHostBackends) {
    SCOPED_TRACE(kmeans::to_string(b));
    pd.k = 3;
    pd.backend = b;
    const auto r = kmeans::fit(edge, 6, 2, pd);
    for (double v : r.centroids) EXPECT_TRUE(std::isfinite(v)) << v;
    EXPECT_TRUE(std::isfinite(r.inertia)) << r.inertia;
    for (double v : r.sse_history) EXPECT_TRUE(std::isfinite(v)) << v;
  }
}

/// Fits, predictions, distances and scores of blobs scaled by 2^e equal those of the blobs
/// themselves scaled by 2^e (2^2e for squared sums): bit for bit while the scaled values are
/// normal numbers, to the rounding of the subnormal inputs below that. Values so small that
/// their squared distances would underflow in T are computed in rescaled units.
template <class T>
void expect_scale_invariant(int e, Backend b) {
  SCOPED_TRACE(std::string(kmeans::to_string(b)) + (sizeof(T) == 4 ? " float" : " double") +
               " 2^" + std::to_string(e));
  const auto xd = kmeans_test::four_blobs(40, 6);
  const std::vector<T> x(xd.begin(), xd.end());
  std::vector<T> xs(x);
  for (T& v : xs) v = std::ldexp(v, e);
  const bool exact = std::ldexp(T(0.5), e) >= std::numeric_limits<T>::min();
  const double rel = exact ? 0 : 1e-3;  // subnormal inputs keep ~16 bits
  auto expect_close = [&](double got, double want, const char* what) {
    if (exact)
      EXPECT_EQ(got, want) << what;
    else
      EXPECT_NEAR(got, want, rel * std::abs(want) + 4 * std::numeric_limits<T>::denorm_min())
          << what;
  };
  std::vector<T> w(160);
  for (std::size_t i = 0; i < w.size(); ++i) w[i] = static_cast<T>(1 + i % 3);
  kmeans::Params<T> p;
  p.k = 4;
  p.seed = 3;
  p.backend = b;
  p.sample_weight = w;
  const auto r = kmeans::fit(x.data(), 160, 2, p);
  const auto rs = kmeans::fit(xs.data(), 160, 2, p);
  EXPECT_EQ(rs.labels, r.labels);
  ASSERT_EQ(rs.centroids.size(), r.centroids.size());
  for (std::size_t i = 0; i < r.centroids.size(); ++i)
    expect_close(rs.centroids[i], std::ldexp(r.centroids[i], e), "centroid");
  EXPECT_NEAR(rs.inertia, std::ldexp(r.inertia, 2 * e), 10 * rel * std::ldexp(r.inertia, 2 * e));
  if (std::ldexp(r.inertia, 2 * e) > 0) EXPECT_GT(rs.inertia, 0.0);  // else below 1e-308 itself
  EXPECT_EQ(rs.cluster_sizes, r.cluster_sizes);
  if (exact) {
    EXPECT_EQ(rs.n_iter, r.n_iter);
    EXPECT_EQ(rs.inertia, std::ldexp(r.inertia, 2 * e));
  }
  std::vector<T> cs(r.centroids);
  for (T& v : cs) v = std::ldexp(v, e);
  EXPECT_EQ(kmeans::predict(xs.data(), 160, 2, cs.data(), 4, b), r.labels);
  const double score = kmeans::score(xs.data(), 160, 2, cs.data(), 4, w, b);
  EXPECT_NEAR(score, -std::ldexp(r.inertia, 2 * e), 10 * rel * std::ldexp(r.inertia, 2 * e));
  const auto t = kmeans::transform(x.data(), 160, 2, r.centroids.data(), 4, b);
  const auto ts = kmeans::transform(xs.data(), 160, 2, cs.data(), 4, b);
  ASSERT_EQ(ts.size(), t.size());
  for (std::size_t i = 0; i < t.size(); ++i) expect_close(ts[i], std::ldexp(t[i], e), "distance");
}

TEST(Validation, TinyValuesGiveTheExactLabels) {
  // float32 distances of values near 1e-30 underflow to 0: every point would tie to cluster 0.
  const float x[] = {0, 1e-30f, 2e-30f, 3e-30f, 1e-31f};
  const float c[] = {0, 2e-30f};
  const double xd[] = {0, 1e-200, 2e-200, 3e-200, 1e-201};
  const double cd[] = {0, 2e-200};
  const std::vector<std::int32_t> exact = {0, 0, 1, 1, 0};
  for (Backend b : kHostBackends) {
    EXPECT_EQ(kmeans::predict(x, 5, 1, c, 2, b), exact) << kmeans::to_string(b);
    EXPECT_EQ(kmeans::predict(xd, 5, 1, cd, 2, b), exact) << kmeans::to_string(b);
    expect_scale_invariant<float>(-100, b);
    expect_scale_invariant<float>(-136, b);  // subnormal floats
    expect_scale_invariant<double>(-600, b);
    expect_scale_invariant<double>(-1036, b);  // subnormal doubles
  }
}

TEST(Validation, ArrayLengthsAreChecked) {
  const double x[] = {1, 2, 3, 4};
  kmeans::Params<double> p;
  p.k = 2;
  const double three[] = {1, 1, 1};
  p.sample_weight = three;
  expect_error([&] { kmeans::fit(x, 4, 1, p); }, "sample_weight has 3 values but the data has n = 4");
  p.sample_weight = {nullptr, 4};
  expect_error([&] { kmeans::fit(x, 4, 1, p); }, "sample_weight is a null pointer with size 4");
  p.sample_weight = {};
  p.init = Init::Array;
  p.init_centroids = three;
  expect_error([&] { kmeans::fit(x, 2, 2, p); },
               "init_centroids has 3 values but k x d = 2 x 2 needs 4");
  const double c[] = {1, 3};
  expect_error([&] { kmeans::score(x, 4, 1, c, 2, three); },
               "sample_weight has 3 values but the data has n = 4");
}

// ---- Extreme sample weights ---------------------------------------------------------------

/// The fit of blobs with every weight equal to w: the unweighted fit's labels, its centroids
/// (bit for bit when w is a power of two: then every weighted sum is exact), and its inertia
/// and cluster sizes times w.
void expect_uniform_weight_matches_unweighted(double w, Backend b) {
  SCOPED_TRACE(std::string(kmeans::to_string(b)) + " w = " + std::to_string(w));
  const auto x = kmeans_test::four_blobs(50, 3);
  kmeans::Params<double> p;
  p.k = 4;
  p.seed = 5;
  p.backend = b;
  const auto plain = kmeans::fit(x.data(), 200, 2, p);
  const std::vector<double> weights(200, w);
  p.sample_weight = weights;
  const auto r = kmeans::fit(x.data(), 200, 2, p);
  EXPECT_EQ(r.labels, plain.labels);
  EXPECT_EQ(r.n_iter, plain.n_iter);
  ASSERT_EQ(r.centroids.size(), plain.centroids.size());
  int exponent = 0;
  const bool power_of_two = std::frexp(w, &exponent) == 0.5;
  for (std::size_t i = 0; i < r.centroids.size(); ++i) {
    if (power_of_two)
      EXPECT_EQ(r.centroids[i], plain.centroids[i]);
    else
      EXPECT_NEAR(r.centroids[i], plain.centroids[i], 1e-12 * (1 + std::abs(plain.centroids[i])));
  }
  EXPECT_NEAR(r.inertia, plain.inertia * w, 1e-12 * plain.inertia * w + 1e-320);
  ASSERT_EQ(r.cluster_sizes.size(), 4u);
  for (int c = 0; c < 4; ++c)
    EXPECT_NEAR(r.cluster_sizes[c], plain.cluster_sizes[c] * w, 1e-12 * plain.cluster_sizes[c] * w);
  ASSERT_EQ(r.imbalance_history.size(), plain.imbalance_history.size());
  for (std::size_t i = 0; i < r.imbalance_history.size(); ++i)
    EXPECT_NEAR(r.imbalance_history[i], plain.imbalance_history[i], 1e-12);
  for (double v : r.sse_history) EXPECT_TRUE(std::isfinite(v));
}

TEST(Weights, HugeAndTinyWeightsGiveTheUnweightedFit) {
  for (Backend b : kHostBackends) {
    expect_uniform_weight_matches_unweighted(0x1p1016, b);  // sums of w x overflow unless rescaled
    expect_uniform_weight_matches_unweighted(1e305, b);
    expect_uniform_weight_matches_unweighted(5e-324, b);  // the smallest subnormal
    expect_uniform_weight_matches_unweighted(0x1p-70, b);
    expect_uniform_weight_matches_unweighted(1e-300, b);
  }
}

TEST(Weights, ATotalBeyondTheDoubleRangeIsRejected) {
  const double x[] = {0, 1, 10, 11};
  const double w[] = {1e308, 1e308, 1e308, 1e308};
  kmeans::Params<double> p;
  p.k = 2;
  p.sample_weight = w;
  expect_error([&] { kmeans::fit(x, 4, 1, p); }, "sample_weight sums to more than the largest double");
  expect_error([&] { kmeans::fit(x, 4, 1, p); }, "the largest weight is 1e+308");
  const double c[] = {0, 10};
  expect_error([&] { kmeans::score(x, 4, 1, c, 2, w); }, "sample_weight sums to more than");
  // One huge weight among ordinary ones: fine, and finite.
  const double mixed[] = {1e300, 1, 1, 1};
  p.sample_weight = mixed;
  const auto r = kmeans::fit(x, 4, 1, p);
  for (double v : r.centroids) EXPECT_TRUE(std::isfinite(v));
  EXPECT_TRUE(std::isfinite(r.inertia));
  EXPECT_DOUBLE_EQ(-kmeans::score(x, 4, 1, r.centroids.data(), 2, mixed), r.inertia);
}

// Float weights are summed in double: even the largest float powers of two need no rescaling
// (a power of two, so that the weighted fit is the unweighted one bit for bit).
TEST(Weights, FloatWeightsAtTheTopOfTheRangeAreExact) {
  const auto xd = kmeans_test::four_blobs(25, 8);
  const std::vector<float> x(xd.begin(), xd.end());
  const std::vector<float> w(100, 0x1p127f);
  for (Backend b : kHostBackends) {
    kmeans::Params<float> p;
    p.k = 4;
    p.backend = b;
    const auto plain = kmeans::fit(x.data(), 100, 2, p);
    p.sample_weight = w;
    const auto r = kmeans::fit(x.data(), 100, 2, p);
    EXPECT_EQ(r.centroids, plain.centroids) << kmeans::to_string(b);
    EXPECT_NEAR(r.inertia / plain.inertia, static_cast<double>(w[0]), 1e-6 * w[0]);
  }
}

// ---- Callbacks and warnings ---------------------------------------------------------------

// The fit works on a copy of its params: a callback that changes them (k, the callback itself)
// does not disturb the running fit.
TEST(Driver, CallbackChangingTheParamsDoesNotDisturbTheFit) {
  const auto x = kmeans_test::four_blobs(40, 2);
  kmeans::Params<double> p;
  p.k = 4;
  p.seed = 1;
  p.tol = 0;
  const auto expected = kmeans::fit(x.data(), 160, 2, p);
  int calls = 0;
  p.on_iteration = [&](const kmeans::IterationInfo&) {
    ++calls;
    p.k = 1;                  // a smaller k: the fit must keep its own
    p.on_iteration = nullptr;  // destroys the caller's copy of this very callback
    return true;
  };
  const auto r = kmeans::fit(x.data(), 160, 2, p);
  EXPECT_EQ(calls, r.n_iter);
  EXPECT_EQ(r.centroids, expected.centroids);
  EXPECT_EQ(r.labels, expected.labels);
  EXPECT_EQ(p.k, 1);
}

TEST(Driver, EmptyClusterWarningNamesItsCause) {
  // Many distinct points, a centroid far away and no iteration: the cluster ends empty, and
  // the warning must not blame the data.
  std::vector<double> x;
  for (int i = 0; i < 50; ++i) x.push_back(i);
  const double c0[] = {0, 1e6};
  const auto r = kmeans::fit(x.data(), 50, 1, array_params(2, c0, Backend::Cpu, /*max_iter=*/0));
  ASSERT_EQ(r.warnings.size(), 1u);
  EXPECT_NE(r.warnings[0].find("1 cluster(s) ended empty"), std::string::npos) << r.warnings[0];
  EXPECT_NE(r.warnings[0].find("raise max_iter"), std::string::npos) << r.warnings[0];
  EXPECT_EQ(r.warnings[0].find("distinct points"), std::string::npos) << r.warnings[0];
  EXPECT_EQ(r.cluster_sizes, (std::vector<double>{50, 0}));
  // Two distinct points for k = 3: then the data is the cause, and the warning counts them.
  std::vector<double> dup;
  for (int i = 0; i < 30; ++i) dup.push_back(i % 2 == 0 ? -0.0 : 1.0);
  dup[4] = 0.0;  // +0 and -0 are the same point
  kmeans::Params<double> p;
  p.k = 3;
  const auto rd = kmeans::fit(dup.data(), 30, 1, p);
  ASSERT_FALSE(rd.warnings.empty());
  EXPECT_NE(rd.warnings.back().find("the data has only 2 distinct points"), std::string::npos)
      << rd.warnings.back();
}

TEST(Version, IsSemantic) {
  const std::string v = kmeans::version();
  EXPECT_EQ(std::count(v.begin(), v.end(), '.'), 2) << v;
}

}  // namespace
