// SPDX-License-Identifier: Apache-2.0
// bench_kmeans --cpu-peers: our CPU backend against every CPU peer on a fixed list of shapes in
// one run, each shape's share of its machine limit, and the busy-core case.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "measure.hpp"

namespace bench {
namespace {

using kmeans::Backend;

struct Shape {
  std::int64_t n, d;
  int k;
  bool f64;
  const char* what;
};

/// The six shapes first, then tall-skinny, wide, large k, float64 and the shapes the
/// exactness change slowed.
std::vector<Shape> shapes(bool quick) {
  std::vector<Shape> s = {
      {4000, 3, 4, true, "classic study"},     {1000000, 8, 64, false, ""},
      {2000000, 16, 16, false, ""},            {100000, 128, 1024, false, ""},
      {60000, 784, 10, false, "MNIST-shaped"}, {20000, 64, 4096, false, "large k"},
  };
  if (quick) return s;
  const std::vector<Shape> more = {
      {10000000, 2, 8, false, "tall-skinny"}, {5000, 2048, 32, false, "wide"},
      {1000000, 8, 64, true, "float64"},      {100000, 32, 128, true, "float64"},
      {200000, 16, 256, false, ""},           {200000, 4, 512, false, ""},
      {20000, 8, 64, false, "busy-core issue"},
  };
  s.insert(s.end(), more.begin(), more.end());
  return s;
}

/// One other process spinning for as long as the object lives (the busy-core case).
class Spinner {
 public:
  Spinner() {
    pid_ = fork();
    if (pid_ == 0) {
      volatile unsigned long spin = 0;
      for (;;) spin = spin + 1;
    }
  }
  ~Spinner() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  Spinner(const Spinner&) = delete;
  Spinner& operator=(const Spinner&) = delete;
  bool ok() const { return pid_ > 0; }

 private:
  pid_t pid_ = -1;
};

/// The time one pass cannot beat: one read of the data at the copy bandwidth, or n * k * d
/// multiply-adds at the measured FMA rate (two flops each), whichever is longer.
double limit_seconds(const Run& run, const Shape& s) {
  const double elem = s.f64 ? 8 : 4;
  const double bytes = static_cast<double>(s.n) * s.d * elem;
  const double fma = (s.f64 ? run.cpu.limit_gflops_f64 : run.cpu.limit_gflops_f32) * 1e9 / 2;
  const double t_bw = run.cpu.copy_gbps > 0 ? bytes / (run.cpu.copy_gbps * 1e9) : 0;
  const double t_fma = fma > 0 ? static_cast<double>(s.n) * s.k * s.d / fma : 0;
  return std::max(t_bw, t_fma);
}

struct Outcome {
  double vs_sklearn = NAN, vs_best = NAN, busy = NAN;
  std::string best_peer;
  std::vector<std::string> missing;  ///< the CPU peers that did not run on this shape
};

template <class T>
Outcome run_shape(Run& run, const Shape& s, double budget, bool busy) {
  const int iters = s.n * s.d < 100000 ? 50 : static_cast<double>(s.n) * s.k * s.d > 2e9 ? 4 : 10;
  const std::vector<T> x = grid_data<T>(s.n, s.d, std::min(s.k, 1024), kDataSeed);
  const std::vector<T> init = take_rows(x.data(), s.d, distinct_rows(s.n, s.k, kInitSeed));
  const int reps = iters == 50 ? 101 : 7;
  const Measured m = measure_ours(x.data(), s.n, s.d, init, s.k, iters, Backend::Cpu,
                                  run.threads, reps, budget, true);
  Outcome o;
  char shape[64];
  std::snprintf(shape, sizeof shape, "%sx%lld k=%d", fmt_count(s.n).c_str(),
                static_cast<long long>(s.d), s.k);
  Json j = point_json("cpu-peers", "", Backend::Cpu, s.f64, s.n, s.d, s.k);
  j.set("kind", "ours").set("iters", iters).set("threads", run.threads).set("note", s.what);
  if (!m.ok) {
    std::printf("%-22s %-7s  ours failed: %s\n", shape, s.f64 ? "float64" : "float32",
                m.error.c_str());
    j.set("error", m.error);
    run.rows.push(j);
    return o;
  }
  const double lim = limit_seconds(run, s);
  std::vector<PeerResult> peers;
  if (run.peers) peers = run_peers_on(run, x.data(), s.n, s.d, init, s.k, iters, budget);
  double busy_default = NAN, busy_one = NAN;
  if (busy && run.threads > 1) {
    Spinner spin;
    if (spin.ok()) {
      const double b = std::max(0.3, budget / 2);
      const Measured md = measure_ours(x.data(), s.n, s.d, init, s.k, iters, Backend::Cpu,
                                       run.threads, reps, b, true);
      const Measured m1 = measure_ours(x.data(), s.n, s.d, init, s.k, iters, Backend::Cpu, 1,
                                       reps, b, true);
      if (md.ok && m1.ok) busy_default = md.s_per_iter, busy_one = m1.s_per_iter;
    }
  }
  o.busy = busy_default / busy_one;
  std::string cols;
  for (const auto& p : peers) {
    char cell[64];
    if (p.ok) {
      const double r = p.s_per_iter / m.s_per_iter;
      std::snprintf(cell, sizeof cell, " %9s %6s", fmt_sci(p.s_per_iter).c_str(),
                    fmt_ratio(r).c_str());
      if (p.name == "sklearn") o.vs_sklearn = r;
      if (!(r >= o.vs_best)) o.vs_best = r, o.best_peer = p.name;
    } else {
      std::snprintf(cell, sizeof cell, " %9s %6s", "-", "-");
      if (p.name != "faiss-gpu") o.missing.push_back(p.name);
    }
    cols += cell;
    Json pj = peer_json(p);
    pj.set("mode", "cpu-peers").set("kind", "peer").set("n", s.n).set("d", s.d).set("k", s.k)
        .set("dtype", s.f64 ? "float64" : "float32").set("iters", iters);
    if (p.ok) pj.set("peer_over_ours", p.s_per_iter / m.s_per_iter);
    run.rows.push(pj);
  }
  std::printf("%-22s %-7s %3d %9s %6s%s %8s  %s\n", shape, s.f64 ? "float64" : "float32", iters,
              fmt_sci(m.s_per_iter).c_str(), fmt_fix(100 * lim / m.s_per_iter, 1).c_str(),
              cols.c_str(), std::isnan(o.busy) ? "-" : fmt_ratio(o.busy).c_str(), s.what);
  set_spread(j, m.spread, m.runs);
  j.set("s_per_iter", m.s_per_iter).set("limit_s_per_iter", lim)
      .set("pct_of_limit", 100 * lim / m.s_per_iter).set("n_iter", m.n_iter)
      .set("final_mean_sse", m.inertia / s.n);
  if (!std::isnan(o.busy))
    j.set("busy_core", Json::object().set("default_threads_s_per_iter", busy_default)
                           .set("one_thread_s_per_iter", busy_one).set("ratio", o.busy));
  run.rows.push(j);
  std::fflush(stdout);
  return o;
}

}  // namespace

void run_cpu_peers(Run& run) {
  const bool quick = run.opt.quick;
  const double budget = run.opt.budget > 0 ? run.opt.budget : (quick ? 0.5 : 2.0);
  std::printf("\nCPU peers: our cpu backend (%d threads) against every CPU peer, same data, "
              "initial centroids and iteration count (tol = 0)\n", run.threads);
  std::printf("%%lim: the larger of (one read of the data) / (copy bandwidth %.1f GB/s) and "
              "(n k d multiply-adds) / (FMA rate %.0f / %.0f GFLOP/s f32 / f64), over our time\n",
              run.cpu.copy_gbps, run.cpu.limit_gflops_f32, run.cpu.limit_gflops_f64);
  std::printf("busy: ours with %d threads / ours with 1 thread, both while another process spins "
              "(one core busy)\n\n", run.threads);
  std::string head;
  for (const auto& name : peer_names())
    if (name != "faiss-gpu") head += " " + std::string(9 - std::min<std::size_t>(9, name.size()), ' ') + name + "  x/us";
  std::printf("%-22s %-7s %3s %9s %6s%s %8s\n", "shape", "dtype", "it", "ours s/it", "%lim",
              head.c_str(), "busy");
  double min_sklearn = INFINITY, min_best = INFINITY, max_busy = 0;
  std::string at_sklearn, at_best, at_busy;
  int n_shapes = 0, without_sklearn = 0, without_any = 0;
  std::vector<std::string> absent;  // peers missing on some shape, once each
  for (const Shape& s : shapes(quick)) {
    const Outcome o = s.f64 ? run_shape<double>(run, s, budget, true)
                            : run_shape<float>(run, s, budget, true);
    const std::string name = fmt_count(s.n) + "x" + std::to_string(s.d) + " k=" + std::to_string(s.k);
    if (o.vs_sklearn < min_sklearn) min_sklearn = o.vs_sklearn, at_sklearn = name;
    if (o.vs_best < min_best) min_best = o.vs_best, at_best = name + " (" + o.best_peer + ")";
    if (o.busy > max_busy) max_busy = o.busy, at_busy = name;
    ++n_shapes;
    if (std::isnan(o.vs_sklearn)) ++without_sklearn;
    if (std::isnan(o.vs_best)) ++without_any;
    for (const auto& p : o.missing)
      if (std::find(absent.begin(), absent.end(), p) == absent.end()) absent.push_back(p);
  }
  std::printf("\nx/us: peer s/iter over ours (> 1: we are faster)\n");
  if (run.peers) {
    // A verdict needs its peer on every shape: a missing one makes it unknown, not "yes".
    if (without_sklearn > 0)
      std::printf("every shape >= 3x scikit-learn: unknown (scikit-learn did not run on %d of %d "
                  "shapes)\n", without_sklearn, n_shapes);
    else
      std::printf("every shape >= 3x scikit-learn: %s (lowest %s at %s)\n",
                  min_sklearn >= 3 ? "yes" : "no", fmt_ratio(min_sklearn).c_str(),
                  at_sklearn.c_str());
    std::string not_run;
    for (const auto& p : absent) not_run += (not_run.empty() ? "" : ", ") + p;
    if (without_any > 0)
      std::printf("ahead of every peer: unknown (no peer ran on %d of %d shapes)\n", without_any,
                  n_shapes);
    else
      std::printf("ahead of every peer%s: %s (closest %s at %s)\n",
                  not_run.empty() ? "" : (" that ran (not run on some or all shapes: " + not_run + ")").c_str(),
                  min_best > 1 ? "yes" : "no", fmt_ratio(min_best).c_str(), at_best.c_str());
  }
  if (max_busy > 0)
    std::printf("busy core within 1.5x of one thread: %s (worst %s at %s)\n",
                max_busy <= 1.5 ? "yes" : "no", fmt_ratio(max_busy).c_str(), at_busy.c_str());
}

}  // namespace bench
