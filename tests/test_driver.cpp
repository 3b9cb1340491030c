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
#include "test_helpers.hpp"

namespace {

using kmeans::Backend;
using kmeans::Init;
using kmeans_test::expect_error;

constexpr double kExactTol = 1e-12;

using kmeans_test::kHostBackends;

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

// ---- Callbacks and warnings ---------------------------------------------------------------

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

// More threads than the bound (1024) crashed or aborted inside libgomp; the bound holds for
// small problems too (which run on one thread), so the error does not depend on the data size.
TEST(Validation, ThreadCountAboveTheLimitIsAnError) {
  const std::vector<double> small = {0, 1, 10, 11};
  const std::vector<double> large = kmeans_test::four_blobs<double>(5000, 7);  // 20000 x 2
  for (Backend b : kHostBackends) {
    SCOPED_TRACE(kmeans::to_string(b));
    for (int threads : {1025, 5000, 100000, std::numeric_limits<int>::max()}) {
      kmeans::Params<double> p;
      p.k = 2;
      p.backend = b;
      p.n_threads = threads;
      const std::string msg = "n_threads = " + std::to_string(threads) + " exceeds the limit of 1024";
      expect_error([&] { kmeans::fit(small.data(), 4, 1, p); }, msg);
      expect_error([&] { kmeans::fit(large.data(), 20000, 2, p); }, msg);
    }
    kmeans::Params<double> p;
    p.k = 2;
    p.backend = b;
    p.n_threads = 1024;
    EXPECT_EQ(kmeans::fit(small.data(), 4, 1, p).labels.size(), 4u);
  }
}

TEST(Version, IsSemantic) {
  const std::string v = kmeans::version();
  EXPECT_EQ(std::count(v.begin(), v.end(), '.'), 2) << v;
}

}  // namespace
