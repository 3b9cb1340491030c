// SPDX-License-Identifier: Apache-2.0
// The estimator's state under awkward use: calls before fit, after a move, from inside its own
// on_iteration callback (nested fits, release, assignment, changed params) and after a callback
// that throws.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
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

// Before the first fit every model method throws kmeans::Error (it used to divide by the
// unset d = 0 first: SIGFPE).
TEST(Estimator, UnfittedModelThrowsBeforeComputingAnything) {
  const std::vector<float> x = {0, 1, 2, 3};
  const kmeans::KMeans<float> km;
  const std::string needle = "call fit() before using the fitted model";
  for (int call = 0; call < 4; ++call) {
    try {
      if (call == 0) km.predict(x.data(), 4);
      if (call == 1) km.transform(x.data(), 4);
      if (call == 2) km.score(x.data(), 4);
      if (call == 3) km.result();
      ADD_FAILURE() << "call " << call << " did not throw";
    } catch (const kmeans::Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  }
  // A failed first fit leaves the model unfitted.
  kmeans::KMeans<float> bad;
  bad.params().k = 9;
  EXPECT_THROW(bad.fit(x.data(), 4, 1), kmeans::Error);
  EXPECT_FALSE(bad.fitted());
  EXPECT_THROW(bad.predict(x.data(), 4), kmeans::Error);
}

// Re-entry from on_iteration works: a nested fit (another shape), predict, release(), an
// assignment and changed params inside the callback leave the running fit undisturbed, and the
// nested fit gives the bits of a fresh fit.
TEST(Estimator, CallsFromInsideItsOwnCallbackDoNotDisturbTheFit) {
  const auto x = blobs<double>(60, 41);   // 240 x 2
  const auto y = blobs<double>(30, 42);   // 120 x 2, seen as 80 x 3
  for (Backend b : kHostBackends) {
    SCOPED_TRACE(kmeans::to_string(b));
    kmeans::Params<double> p;
    p.k = 4;
    p.seed = 7;
    p.tol = 0;
    p.backend = b;
    const auto expected = kmeans::fit(x.data(), 240, 2, p);
    kmeans::Params<double> py = p;
    py.k = 3;
    const auto expected_inner = kmeans::fit(y.data(), 80, 3, py);

    kmeans::KMeans<double> km(p);
    int depth = 0, calls = 0;
    kmeans::Result<double> inner;
    std::vector<std::int32_t> inner_labels;
    km.params().on_iteration = [&](const kmeans::IterationInfo& it) {
      if (depth > 0) return true;  // the nested fit's own calls
      ++depth;
      ++calls;
      if (it.iteration == 0) {
        km.params().k = 3;
        inner = km.fit(y.data(), 80, 3).result();
        inner_labels = km.predict(y.data(), 80);
      } else if (it.iteration == 1) {
        km.release();
        km = kmeans::KMeans<double>(km.params());  // a new object moved in
        km.params().k = 2;
        km.params().on_iteration = nullptr;  // destroys the params' copy of this callback
      }
      --depth;
      return true;
    };
    km.fit(x.data(), 240, 2);
    EXPECT_EQ(calls, expected.n_iter);
    expect_same_fit(km.result(), expected);
    expect_same_fit(inner, expected_inner);
    EXPECT_EQ(inner_labels, expected_inner.labels);
    EXPECT_EQ(km.predict(x.data(), 240), expected.labels);
    EXPECT_EQ(km.params().k, 2);  // the changes stay for the next fit
    EXPECT_FALSE(km.params().on_iteration);
    EXPECT_EQ(km.fit(x.data(), 240, 2).result().centroids.size(), 4u);
  }
}

// The driver itself holds a workspace's fit engine while it runs: a nested fit on the same
// workspace (another shape) gets its own, and the outer fit's engine is kept for reuse.
TEST(Workspace, NestedFitOnTheSameWorkspaceGetsItsOwnEngine) {
  const auto x = blobs<float>(100, 44);
  const auto y = blobs<float>(30, 45);
  for (Backend b : kHostBackends) {
    SCOPED_TRACE(kmeans::to_string(b));
    kmeans::Params<float> p;
    p.k = 4;
    p.backend = b;
    const auto expected = kmeans::fit(x.data(), 400, 2, p);
    kmeans::Params<float> py = p;
    py.k = 2;
    const auto expected_inner = kmeans::fit(y.data(), 60, 2, py);
    kmeans::detail::WorkspacePtr<float> ws;
    kmeans::Result<float> inner;
    bool nested = false;
    p.on_iteration = [&](const kmeans::IterationInfo&) {
      if (!nested) {
        nested = true;
        inner = kmeans::detail::fit(ws, y.data(), 60, 2, py);
      }
      return true;
    };
    expect_same_fit(kmeans::detail::fit(ws, x.data(), 400, 2, p), expected);
    expect_same_fit(inner, expected_inner);
    EXPECT_EQ(ws->engines_made, 2);
    ASSERT_NE(ws->fit_engine, nullptr);
    p.on_iteration = nullptr;
    expect_same_fit(kmeans::detail::fit(ws, x.data(), 400, 2, p), expected);
    EXPECT_EQ(ws->engines_made, 2) << "the outer fit's engine was kept";
  }
}

// A callback that throws ends the fit with its exception; the object keeps its engines and
// its last model and fits again to the bits of a fresh fit.
TEST(Estimator, AThrowingCallbackLeavesTheObjectUsable) {
  const auto x = blobs<double>(50, 43);
  for (Backend b : kHostBackends) {
    SCOPED_TRACE(kmeans::to_string(b));
    kmeans::Params<double> p;
    p.k = 4;
    p.seed = 2;
    p.backend = b;
    const auto expected = kmeans::fit(x.data(), 200, 2, p);
    kmeans::KMeans<double> km(p);
    km.fit(x.data(), 200, 2);
    km.params().on_iteration = [](const kmeans::IterationInfo&) -> bool {
      throw std::runtime_error("stop here");
    };
    EXPECT_THROW(km.fit(x.data(), 200, 2), std::runtime_error);
    expect_same_fit(km.result(), expected);  // the model of the last completed fit
    km.params().on_iteration = nullptr;
    expect_same_fit(km.fit(x.data(), 200, 2).result(), expected);
  }
}

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

}  // namespace
