// SPDX-License-Identifier: Apache-2.0
// The numeric range of the inputs: values beyond max_abs_value are rejected, values so small
// that squared distances underflow and extreme sample weights are computed in exact
// power-of-two units, and array lengths are checked.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "kmeans/kmeans.hpp"
#include "test_data.hpp"
#include "test_helpers.hpp"

namespace {

using kmeans::Backend;
using kmeans::Init;
using kmeans_test::expect_error;

using kmeans_test::kHostBackends;

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

// The scan runs in vectors over runs of 1024 values in blocks split between threads: on data of
// many runs and blocks, the value at the bound passes, the next one above it (or NaN, Inf) is
// reported where it is, and of two bad values the first in row-major order is named whatever
// the thread count, in float32 and float64.
template <class T>
void check_bad_values_found_in_order() {
  const std::int64_t d = 7, n = 40000;  // 280 000 values: several blocks of 65 536
  const double bound_exact = kmeans::max_abs_value<T>(static_cast<std::size_t>(d));
  T bound = static_cast<T>(bound_exact);  // the largest T not above it
  if (static_cast<double>(bound) > bound_exact) bound = std::nextafter(bound, T(0));
  const T above = std::nextafter(bound, std::numeric_limits<T>::infinity());
  std::vector<T> x(static_cast<std::size_t>(n * d));
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<T>(i % 97) - T(48);
  x[1000] = -bound;  // at the bound: accepted
  x[200003] = bound;
  const T c[] = {0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1};
  EXPECT_EQ(kmeans::predict(x.data(), n, d, c, 2).size(), static_cast<std::size_t>(n));
  const auto where = [&](std::int64_t i) {
    return "at row " + std::to_string(i / d) + ", column " + std::to_string(i % d);
  };
  for (int threads : {1, 2, 3}) {
    kmeans::Params<T> p;
    p.k = 2;
    p.n_threads = threads;
    for (std::int64_t late : {std::int64_t{279999}, std::int64_t{150001}}) {
      for (std::int64_t early : {std::int64_t{5}, std::int64_t{1023}, std::int64_t{70000},
                                 std::int64_t{131073}}) {
        if (early >= late) continue;
        std::vector<T> y = x;
        y[late] = std::numeric_limits<T>::quiet_NaN();
        y[early] = -above;
        expect_error([&] { kmeans::fit(y.data(), n, d, p); }, "data value ");
        expect_error([&] { kmeans::fit(y.data(), n, d, p); }, where(early));
        y[early] = std::numeric_limits<T>::infinity();
        expect_error([&] { kmeans::fit(y.data(), n, d, p); }, "data contains Inf " + where(early));
        y[early] = 1;
        expect_error([&] { kmeans::fit(y.data(), n, d, p); }, "data contains NaN " + where(late));
      }
    }
  }
}

TEST(Validation, BadValuesAreFoundInRowMajorOrderOnLargeData) {
  check_bad_values_found_in_order<float>();
  check_bad_values_found_in_order<double>();
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

}  // namespace

// Means of subnormal values round when they are returned in the caller's units; the final
// labels are those of the returned centroids (found by fuzz_fit: predict disagreed).
TEST(Validation, LabelsOfSubnormalDataBelongToTheReturnedCentroids) {
  const double v[] = {7.2109320963895041e-178, 5.2218072486209093e-310, 2.6687090373417403e-309};
  const std::int64_t n = 40, d = 4;
  const int k = 29;
  std::vector<double> x(static_cast<std::size_t>(n * d)), w(static_cast<std::size_t>(n)),
      c(static_cast<std::size_t>(k * d));
  std::size_t at = 0;
  for (std::vector<double>* a : {&x, &w, &c})
    for (double& e : *a) e = v[at++ % 3];
  for (Backend b : kHostBackends) {
    SCOPED_TRACE(kmeans::to_string(b));
    for (int threads : {1, 2}) {
      kmeans::Params<double> p;
      p.k = k;
      p.init = kmeans::Init::Array;
      p.init_centroids = c;
      p.sample_weight = w;
      p.max_iter = 7;
      p.n_threads = threads;
      p.backend = b;
      const auto r = kmeans::fit(x.data(), n, d, p);
      EXPECT_EQ(kmeans::predict(x.data(), n, d, r.centroids.data(), k, b), r.labels);
    }
  }
}

// A cluster whose weights are subnormal has no finite 1 / weight: its mean is still finite and
// right (found by fuzz_fit: 0 * inf gave NaN centroids).
TEST(Weights, AClusterOfSubnormalWeightsGetsAFiniteMean) {
  const double x[] = {1, 2, 100, 101};
  const double w[] = {1, 1, 1e-310, 1e-310};
  const double c[] = {1.5, 100.2};
  for (Backend b : kHostBackends) {
    SCOPED_TRACE(kmeans::to_string(b));
    kmeans::Params<double> p;
    p.k = 2;
    p.init = kmeans::Init::Array;
    p.init_centroids = c;
    p.sample_weight = w;
    p.backend = b;
    const auto r = kmeans::fit(x, 4, 1, p);
    EXPECT_DOUBLE_EQ(r.centroids[0], 1.5);
    EXPECT_NEAR(r.centroids[1], 100.5, 1e-9);
    EXPECT_EQ(r.labels, (std::vector<std::int32_t>{0, 0, 1, 1}));
  }
}

// Huge weights on huge (but accepted) values: the true inertia exceeds the largest double. It
// reads inf, and the result says so; the centroids stay finite (found by fuzz_fit).
TEST(Weights, AnInertiaBeyondTheDoubleRangeIsInfWithAWarning) {
  const double x[] = {1e103, -1e103, 2e103, -2e103, 0, 1};
  const double w[] = {1e103, 1e103, 1e103, 1e103, 1, 1};
  for (Backend b : kHostBackends) {
    SCOPED_TRACE(kmeans::to_string(b));
    kmeans::Params<double> p;
    p.k = 2;
    p.init = kmeans::Init::Random;
    p.sample_weight = w;
    p.backend = b;
    const auto r = kmeans::fit(x, 6, 1, p);
    for (double c : r.centroids) EXPECT_TRUE(std::isfinite(c)) << c;
    EXPECT_TRUE(std::isinf(r.inertia)) << r.inertia;
    bool warned = false;
    for (const std::string& m : r.warnings)
      warned = warned || m.find("exceeds the largest double: reported as inf") != std::string::npos;
    EXPECT_TRUE(warned);
  }
}
