// SPDX-License-Identifier: Apache-2.0
// Model files of mini-batch models: "algorithm": "minibatch", its params, n_steps and partial_fit's state round trip.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "kmeans/kmeans.hpp"
#include "test_helpers.hpp"

namespace {

using kmeans::Backend;
using kmeans::Params;
using kmeans_test::blobs;
using kmeans_test::expect_error;

template <class T>
Params<T> minibatch_params() {
  Params<T> p;
  p.k = 4;
  p.batch_size = 24;
  p.max_no_improvement = 7;
  p.reassignment_ratio = 0.125;
  p.seed = 11;
  p.backend = Backend::Cpu;
  return p;
}

std::string replaced(std::string text, const std::string& from, const std::string& to) {
  const std::size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

template <class T>
void check_fit_round_trip() {
  const std::vector<T> x = blobs<T>(60, 3);
  kmeans::KMeans<T> m(minibatch_params<T>());
  m.fit(x.data(), 240, 2);
  ASSERT_GT(m.result().n_steps, 0);
  const std::string text = m.to_json();
  for (const char* member : {"\"algorithm\": \"minibatch\"", "\"batch_size\": 24",
                             "\"max_no_improvement\": 7", "\"reassignment_ratio\": 0.125",
                             "\"n_steps\": "}) {
    EXPECT_NE(text.find(member), std::string::npos) << member << "\n" << text;
  }
  EXPECT_EQ(text.find("\"partial_fit\""), std::string::npos);  // a fit carries no stream state
  const kmeans::KMeans<T> back = kmeans::KMeans<T>::from_json(text);
  EXPECT_EQ(back.params().batch_size, 24);
  EXPECT_EQ(back.params().max_no_improvement, 7);
  EXPECT_EQ(back.params().reassignment_ratio, 0.125);
  EXPECT_EQ(back.result().n_steps, m.result().n_steps);
  EXPECT_EQ(back.result().n_iter, m.result().n_iter);
  EXPECT_EQ(back.result().centroids, m.result().centroids);
  EXPECT_EQ(back.to_json(), text);  // writes back the same file
}

TEST(ModelMiniBatch, FitRoundTripKeepsAlgorithmParamsAndStepsFloat) { check_fit_round_trip<float>(); }
TEST(ModelMiniBatch, FitRoundTripKeepsAlgorithmParamsAndStepsDouble) { check_fit_round_trip<double>(); }

TEST(ModelMiniBatch, LloydModelsAreWrittenAsBefore) {
  const std::vector<double> x = blobs<double>(30, 1);
  Params<double> p;
  p.k = 3;
  p.backend = Backend::Cpu;
  kmeans::KMeans<double> m(p);
  m.fit(x.data(), 120, 2);
  const std::string text = m.to_json();
  EXPECT_NE(text.find("\"algorithm\": \"lloyd\""), std::string::npos);
  for (const char* absent : {"batch_size", "n_steps", "reassignment_ratio", "partial_fit"}) {
    EXPECT_EQ(text.find(absent), std::string::npos) << absent;
  }
}

/// A model saved between partial_fit calls and loaded back continues exactly as the original:
/// the counts, the generator and the reassignment clock travel in "partial_fit".
template <class T>
void check_partial_fit_state_round_trip(bool after_fit) {
  const std::vector<T> x = blobs<T>(100, 5);  // 400 rows
  Params<T> p = minibatch_params<T>();
  p.reassignment_ratio = 0.5;  // reassignments happen, so the generator state matters
  kmeans::KMeans<T> original(p);
  if (after_fit) original.fit(x.data(), 400, 2);
  original.partial_fit(x.data(), 50, 2);
  original.partial_fit(x.data() + 100, 50, 2);
  const std::string text = original.to_json();
  EXPECT_NE(text.find("\"partial_fit\": {\"steps\": 2"), std::string::npos) << text;
  kmeans::KMeans<T> loaded = kmeans::KMeans<T>::from_json(text);
  EXPECT_EQ(loaded.to_json(), text);
  for (int s = 2; s < 8; ++s) {
    original.partial_fit(x.data() + s * 100, 50, 2);
    loaded.partial_fit(x.data() + s * 100, 50, 2);
    ASSERT_EQ(loaded.result().centroids, original.result().centroids) << "call " << s;
    ASSERT_EQ(loaded.result().labels, original.result().labels) << "call " << s;
  }
  EXPECT_EQ(loaded.result().n_steps, original.result().n_steps);
  EXPECT_EQ(loaded.to_json(), original.to_json());
}

TEST(ModelMiniBatch, PartialFitStateRoundTripsFloat) { check_partial_fit_state_round_trip<float>(false); }
TEST(ModelMiniBatch, PartialFitStateRoundTripsDouble) { check_partial_fit_state_round_trip<double>(false); }
TEST(ModelMiniBatch, PartialFitAfterFitStateRoundTrips) { check_partial_fit_state_round_trip<double>(true); }

TEST(ModelMiniBatch, InconsistentFilesAreRefused) {
  const std::vector<double> x = blobs<double>(60, 3);
  kmeans::KMeans<double> m(minibatch_params<double>());
  m.partial_fit(x.data(), 240, 2);
  const std::string text = m.to_json();
  using M = kmeans::KMeans<double>;
  expect_error([&] { M::from_json(replaced(text, "\"algorithm\": \"minibatch\"", "\"algorithm\": \"lloyd\"")); },
               "algorithm \"lloyd\" does not match params.batch_size = 24");
  expect_error([&] { M::from_json(replaced(text, "\"batch_size\": 24", "\"batch_size\": 0")); },
               "algorithm \"minibatch\" does not match params.batch_size = 0");
  expect_error([&] { M::from_json(replaced(text, "\"algorithm\": \"minibatch\"", "\"algorithm\": \"elkhan\"")); },
               "algorithm \"elkhan\" is not known");
  expect_error([&] { M::from_json(replaced(text, "\"reassignment_ratio\": 0.125", "\"reassignment_ratio\": -1")); },
               "params.reassignment_ratio must be >= 0");
  expect_error([&] { M::from_json(replaced(text, "\"steps\": 1", "\"steps\": 0")); }, "partial_fit.steps");
  expect_error([&] { M::from_json(replaced(text, "\"counts\": [", "\"counts\": [1, ")); },
               "\"partial_fit.counts\" has 5 values but k = 4");
  expect_error([&] { M::from_json(replaced(text, "\"counts\": [", "\"counts\": [-1, ")); }, "is negative");
  expect_error([&] { M::from_json(replaced(text, "\"rng\": ", "\"rgn\": ")); },
               "\"partial_fit\" has no member \"rng\"");
}

}  // namespace
