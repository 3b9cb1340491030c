// SPDX-License-Identifier: Apache-2.0
// Example app: the classic k-means study (4 Gaussian blobs in 3-D, 1000 points each, k = 4,
// 50 iterations) through the installed library: fit, predict, refit, transform, print the
// mean SSE.
#include <kmeans/kmeans.hpp>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <vector>

namespace {

// A tiny portable generator (splitmix64 + Box-Muller): the same data on every machine.
struct Rng {
  std::uint64_t s;
  double uniform() {
    std::uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return static_cast<double>((z ^ (z >> 31)) >> 11) * 0x1.0p-53;
  }
  double normal() {
    const double u1 = 1.0 - uniform(), u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }
};

}  // namespace

int main() {
  const double means[4][3] = {{5, 5, 5}, {4, 20, 20}, {25, 20, 5}, {30, 30, 30}};
  const double sds[4] = {4, 3, 5, 5};
  const std::size_t per_blob = 1000, n = 4 * per_blob, d = 3;
  Rng rng{2024};
  std::vector<double> x;
  for (int b = 0; b < 4; ++b)
    for (std::size_t i = 0; i < per_blob; ++i)
      for (std::size_t j = 0; j < d; ++j) x.push_back(means[b][j] + sds[b] * rng.normal());
  // Initial centroids: four data points, one from each blob's range of rows.
  std::vector<double> init;
  for (std::size_t b = 0; b < 4; ++b)
    for (std::size_t j = 0; j < d; ++j) init.push_back(x[(b * per_blob + 17) * d + j]);

  try {
    kmeans::Params<double> p;
    p.k = 4;
    p.max_iter = 50;
    p.tol = 0;
    p.init = kmeans::Init::Array;
    p.init_centroids = init;  // a std::vector<double>: its size (k x d) is checked
    kmeans::KMeans<double> model(p);
    model.fit(x.data(), n, d);
    const auto& r = model.result();
    const auto labels = model.predict(x.data(), n);

    // The same fit on the reference backend: the installed library must agree with itself.
    p.backend = kmeans::Backend::Reference;
    const auto ref = kmeans::fit(x.data(), n, d, p);

    std::printf("kmeans %s, backend %s\n", kmeans::version(), kmeans::to_string(r.backend));
    std::printf("iterations %d, converged %s\n", r.n_iter, r.converged ? "yes" : "no");
    std::printf("final mean SSE %.6f (reference backend %.6f)\n", r.inertia / n, ref.inertia / n);
    for (int c = 0; c < 4; ++c)
      std::printf("centroid %d: %.3f %.3f %.3f\n", c, r.centroids[3 * c], r.centroids[3 * c + 1],
                  r.centroids[3 * c + 2]);
    // A refit of the same shape reuses the model's engine (on a GPU: its buffers and graphs);
    // transform's nearest centroid is the label.
    const double first_inertia = r.inertia;
    model.fit(x.data(), n, d);
    const auto dist = model.transform(x.data(), n);
    bool nearest_is_label = true;
    for (std::size_t i = 0; i < n; ++i) {
      std::size_t best = 0;
      for (std::size_t c = 1; c < 4; ++c)
        if (dist[i * 4 + c] < dist[i * 4 + best]) best = c;
      nearest_is_label = nearest_is_label && static_cast<std::int32_t>(best) == labels[i];
    }
    const bool agree = labels == model.result().labels && labels == ref.labels &&
                       model.result().inertia == first_inertia && nearest_is_label &&
                       std::abs(first_inertia - ref.inertia) <= 1e-9 * ref.inertia;
    std::printf("%s\n", agree ? "OK: predict, fit and the reference backend agree" : "MISMATCH");
    return agree ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "classic_study: %s\n", e.what());
    return 1;
  }
}
