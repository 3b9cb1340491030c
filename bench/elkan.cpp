// SPDX-License-Identifier: Apache-2.0
// bench_kmeans --elkan: whole fits with Algorithm::Elkan against Algorithm::Lloyd on the CPU
// backend, interleaved in one process (Lloyd, Elkan, Lloyd, Elkan, ...), results checked equal.
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "measure.hpp"

namespace bench {
namespace {

struct ElkanShape {
  std::int64_t n, d;
  int k;
  int centers;
  bool f64;
  int fixed_iters = 0;  ///< > 0: tol = 0 and max_iter = this (the fit still stops when no label changes)
};

/// n points around `centers` centres uniform in [0, L)^d with unit normal noise, L = 4
/// centers^(1/d): neighbouring clusters overlap, so fits take tens of iterations (grid_data's
/// far-apart clusters converge in two or three, which measures only the first passes).
template <class T>
std::vector<T> overlapping_blobs(std::int64_t n, std::int64_t d, int centers, std::uint64_t seed) {
  Rng rng(seed);
  const double side = 4 * std::pow(static_cast<double>(centers), 1.0 / static_cast<double>(d));
  std::vector<double> c(static_cast<std::size_t>(centers * d));
  for (double& v : c) v = side * rng.uniform();
  std::vector<T> x(static_cast<std::size_t>(n * d));
  for (std::int64_t i = 0; i < n; ++i) {
    const auto b = static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(centers)));
    for (std::int64_t j = 0; j < d; ++j) x[i * d + j] = static_cast<T>(c[b * d + j] + rng.normal());
  }
  return x;
}

template <class T>
void elkan_shape(Run& run, const ElkanShape& s, int repeats) {
  const std::vector<T> x = overlapping_blobs<T>(s.n, s.d, s.centers, kDataSeed);
  kmeans::Params<T> p;  // scikit-learn's defaults (tol = 1e-4, max_iter = 300) but init
  p.init = kmeans::Init::Random;  // k-means++ would cost more than the iterations
  p.k = s.k;
  p.seed = kInitSeed;
  p.backend = kmeans::Backend::Cpu;
  p.n_threads = run.threads;
  if (s.fixed_iters > 0) {
    p.tol = 0;
    p.max_iter = s.fixed_iters;
  }
  std::vector<double> whole[3], iters[3];
  kmeans::Result<T> res[3];
  bool same = true;
  for (int rep = 0; rep < repeats; ++rep)
    for (int a = 0; a < 3; ++a) {
      p.algorithm = a == 0 ? kmeans::Algorithm::Lloyd
                    : a == 1 ? kmeans::Algorithm::Elkan
                             : kmeans::Algorithm::Auto;
      const auto t0 = Clock::now();
      kmeans::Result<T> r = kmeans::fit(x.data(), s.n, s.d, p);
      whole[a].push_back(seconds_since(t0));
      iters[a].push_back(r.timings.assign + r.timings.update + r.timings.final_assign);
      if (rep == 0) res[a] = std::move(r);
    }
  for (int a = 1; a < 3; ++a)
    same = same && res[0].centroids == res[a].centroids && res[0].labels == res[a].labels &&
           res[0].inertia == res[a].inertia && res[0].n_iter == res[a].n_iter &&
           res[0].sse_history == res[a].sse_history;
  const double wl = median(whole[0]), we = median(whole[1]);
  const double il = median(iters[0]), ie = median(iters[1]);
  const double wa = median(whole[2]);
  std::printf("%9s %5s %5s %8s %4d%s %10s %10s %8s %10s %10s %8s %8s %s\n",
              fmt_count(s.n).c_str(), std::to_string(s.d).c_str(), std::to_string(s.k).c_str(),
              s.f64 ? "float64" : "float32", res[0].n_iter, s.fixed_iters ? "*" : " ", fmt_sci(wl).c_str(),
              fmt_sci(we).c_str(), fmt_ratio(wl / we).c_str(), fmt_sci(il).c_str(),
              fmt_sci(ie).c_str(), fmt_ratio(il / ie).c_str(), fmt_ratio(wl / wa).c_str(),
              same ? "same" : "DIFFERENT");
  Json row = Json::object();
  row.set("mode", "elkan")
      .set("n", s.n)
      .set("d", s.d)
      .set("k", s.k)
      .set("dtype", s.f64 ? "float64" : "float32")
      .set("n_iter", res[0].n_iter)
      .set("tol", p.tol)
      .set("repeats", repeats)
      .set("lloyd_fit_s", wl)
      .set("elkan_fit_s", we)
      .set("lloyd_iterations_s", il)
      .set("elkan_iterations_s", ie)
      .set("auto_fit_s", wa)
      .set("same_result", same);
  run.rows.push(row);
}

}  // namespace

void run_elkan(Run& run) {
  const bool q = run.opt.quick;
  const int repeats = q ? 2 : 3;
  std::printf("\nElkan vs Lloyd, Backend::Cpu, %d threads, whole fits (init = random, tol = 1e-4), "
              "median of %d interleaved repeats (Lloyd, Elkan, Auto); x = Lloyd's time / theirs;\n"
              "'it' = assign + update + final assignment; iter* = tol 0 (until no label changes)\n",
              run.threads, repeats);
  std::printf("%9s %5s %5s %8s %5s %10s %10s %8s %10s %10s %8s %8s %s\n", "n", "d", "k", "dtype",
              "iter", "lloyd s", "elkan s", "fit x", "lloyd it", "elkan it", "iters x", "auto x",
              "result");
  std::vector<ElkanShape> shapes = {
      {q ? 50000 : 200000, 2, 256, 256, false},    // k >= 256 clustered
      {q ? 50000 : 100000, 16, 256, 256, false},
      {q ? 20000 : 50000, 64, 512, 512, false},
      {q ? 5000 : 10000, 784, 256, 256, false},
      {q ? 20000 : 100000, 32, 256, 256, true},
      {q ? 50000 : 200000, 8, 64, 64, false},      // Auto's smallest k
      {q ? 50000 : 200000, 8, 64, 64, true},
      {q ? 50000 : 100000, 3, 128, 16, false},     // fewer true clusters than k
      {q ? 20000 : 50000, 256, 64, 64, false},     // Auto's widest rows
      {q ? 100000 : 400000, 4, 16, 16, false},     // small k: Auto keeps Lloyd
      {q ? 5000 : 10000, 512, 128, 128, false},    // wide rows: Auto keeps Lloyd
      // tol = 0, max_iter = 100: the fit runs until no label changes.
      {q ? 50000 : 100000, 16, 256, 256, false, 100},
      {q ? 20000 : 50000, 64, 512, 512, false, 100},
      {q ? 20000 : 50000, 32, 256, 256, true, 100},
  };
  if (!q) {  // around Auto's rule (cpu_bounds.cpp use_bounds): inside it, then one bound off
    const std::vector<ElkanShape> around = {
        {100000, 32, 256, 256, false},  {100000, 64, 256, 256, false},
        {100000, 128, 256, 256, false}, {100000, 32, 512, 512, true},
        {200000, 32, 256, 256, false},  {50000, 32, 256, 256, false},   // n below
        {100000, 32, 128, 128, false},  {100000, 16, 256, 256, true},   // k, d below
        {100000, 512, 256, 256, false},                                  // d above
    };
    shapes.insert(shapes.end(), around.begin(), around.end());
  }
  for (const ElkanShape& s : shapes) {
    if (s.f64)
      elkan_shape<double>(run, s, repeats);
    else
      elkan_shape<float>(run, s, repeats);
  }
}

}  // namespace bench
