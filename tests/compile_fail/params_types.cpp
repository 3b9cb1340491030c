// SPDX-License-Identifier: Apache-2.0
// Compile-time checks of the typed Params: CASE 0 must compile, every other CASE must not.
#include <kmeans/kmeans.hpp>

#include <vector>

#ifndef CASE
#define CASE 0
#endif

int main() {
  std::vector<float> data(8, 1.0f), init(4, 0.0f), weights(4, 1.0f);
  std::vector<double> weights_f64(4, 1.0), init_f64(4, 0.0);
  const float centroids[] = {0, 1};
  kmeans::Params<float> p;
  p.k = 2;
#if CASE == 0  // the right types: vectors, built-in arrays, pointer + length, empty
  p.sample_weight = weights;
  p.init_centroids = init;
  p.init_centroids = {init.data(), init.size()};
  p.sample_weight = nullptr;
  p.sample_weight = {};
  const float w4[] = {1, 1, 1, 1};
  p.sample_weight = w4;
  kmeans::KMeans<float> km(p);
  (void)kmeans::score(data.data(), 4, 2, centroids, 1, weights);
  (void)kmeans::score(data.data(), 4, 2, centroids, 1, nullptr);
  return kmeans::fit(data.data(), 4, 2, p).n_iter;
#elif CASE == 1  // double weights for float data
  p.sample_weight = weights_f64;
#elif CASE == 2  // double initial centroids for float data
  p.init_centroids = init_f64;
#elif CASE == 3  // a bare pointer: its length cannot be checked
  p.sample_weight = weights.data();
#elif CASE == 4  // float data with double params
  kmeans::Params<double> pd;
  return kmeans::fit(data.data(), 4, 2, pd).n_iter;
#elif CASE == 5  // a temporary vector would dangle
  p.sample_weight = std::vector<float>(4, 1.0f);
#elif CASE == 6  // double weights to score float data
  (void)kmeans::score(data.data(), 4, 2, centroids, 1, weights_f64);
#elif CASE == 7  // pointer + length of the wrong type
  p.sample_weight = {weights_f64.data(), weights_f64.size()};
#endif
  return 0;
}
