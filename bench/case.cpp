// SPDX-License-Identifier: Apache-2.0
// bench_kmeans --case: one custom point on each backend and the peers, optionally with the
// time of one initialisation.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "measure.hpp"

namespace bench {
namespace {

using kmeans::Backend;

/// Initialisation alone (fits with max_iter = 0): the median of Timings::init over repeats
/// within the budget (at least 3), per backend, with the ratio to the first backend listed.
template <class T>
void time_init(Run& run, const T* x, const CaseSpec& c, const std::vector<Backend>& backends,
               double budget) {
  kmeans::Params<T> p;
  p.k = c.k;
  p.max_iter = 0;
  p.seed = kInitSeed;
  p.n_threads = run.threads;
  p.init = c.init == "random"      ? kmeans::Init::Random
           : c.init == "k-means++" ? kmeans::Init::KMeansPlusPlus
                                   : kmeans::Init::KMeansParallel;
  std::printf("\nInitialisation %s (fit with max_iter = 0; median of Timings::init):\n",
              c.init.c_str());
  std::printf("  %-10s %12s %10s\n", "backend", "init s", "vs first");
  double first = 0;
  for (Backend b : backends) {
    p.backend = b;
    std::vector<double> t;
    const auto t0 = Clock::now();
    std::vector<T> centroids;
    while (t.size() < 3 || (seconds_since(t0) < budget && t.size() < 25)) {
      const auto r = kmeans::fit(x, c.n, c.d, p);
      t.push_back(r.timings.init);
      if (centroids.empty()) centroids = r.centroids;
      if (r.centroids != centroids) throw kmeans::Error("init: repeats chose different centroids");
    }
    const double med = median(t);
    if (first == 0) first = med;
    std::printf("  %-10s %12.6f %9.2fx\n", kmeans::to_string(b), med, first / med);
    Json j = point_json("case", "", b, sizeof(T) == 8, c.n, c.d, c.k);
    j.set("kind", "init").set("init", c.init).set("seconds", med)
        .set("repeats", static_cast<std::int64_t>(t.size()));
    run.rows.push(j);
  }
}

template <class T>
void run_case_typed(Run& run, const CaseSpec& c) {
  const bool f64 = sizeof(T) == 8;
  const double need = static_cast<double>(c.n) * c.d * sizeof(T) + 16.0 * c.n;
  const double avail = host_available_bytes();
  if (avail > 0 && need > kHostMemoryShare * avail) {
    throw kmeans::Error("--case needs " + fmt_fix(need * 1e-9, 1) + " GB of host memory, " +
                        fmt_fix(avail * 1e-9, 1) + " GB available");
  }
  std::vector<Backend> backends;
  if (c.backend == "all") {
    backends = available_backends(static_cast<double>(c.n) * c.k * c.d <= kReferenceMaxWork);
  } else {
    backends.push_back(c.backend == "cpu" ? Backend::Cpu
                       : c.backend == "cuda" ? Backend::Cuda
                                             : Backend::Reference);
  }
  const double budget = run.opt.budget > 0 ? run.opt.budget : (run.opt.quick ? 1.0 : 10.0);
  std::printf("\nCase: n = %lld, d = %lld, k = %d, %s, %d iterations (tol = 0), %d threads, "
              "data seed %llu\n",
              static_cast<long long>(c.n), static_cast<long long>(c.d), c.k,
              f64 ? "float64" : "float32", c.iters, run.threads,
              static_cast<unsigned long long>(c.seed));
  const std::vector<T> x = grid_data<T>(c.n, c.d, std::min(c.k, 1024), c.seed);
  const std::vector<T> init = take_rows(x.data(), c.d, distinct_rows(c.n, c.k, kInitSeed));
  if (c.stream) {
    run_stream_case(run, c, x, init);
    return;
  }
  print_point_header();
  std::vector<Measured> ours;
  for (Backend b : backends) {
    Measured m = measure_ours(x.data(), c.n, c.d, init, c.k, c.iters, b, run.threads, 7, budget,
                              true);
    print_and_record(run, point_json("case", "", b, f64, c.n, c.d, c.k), m, f64, c.n, c.d, c.k);
    ours.push_back(std::move(m));
  }
  if (run.peers) {
    const auto peers = run_peers_on(run, x.data(), c.n, c.d, init, c.k, c.iters, budget);
    print_and_record_peers(run, "case", "", peers, ours, f64, c.n, c.d, c.k);
  }
  std::printf("  s/iter: median over repeats of (assign + update) / n_iter; peer/ours > 1 means "
              "we are faster on the same device\n");
  if (!c.init.empty()) time_init(run, x.data(), c, backends, budget);
  std::string why;
  if (!kmeans::cuda_available(&why)) std::printf("GPU: not used: %s\n", why.c_str());
}

}  // namespace

void run_case(Run& run) {
  if (run.opt.case_spec.f64)
    run_case_typed<double>(run, run.opt.case_spec);
  else
    run_case_typed<float>(run, run.opt.case_spec);
}

}  // namespace bench
