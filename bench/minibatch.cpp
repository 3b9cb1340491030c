// SPDX-License-Identifier: Apache-2.0
// bench_kmeans --minibatch: time to reach a given inertia, Lloyd against mini-batch k-means (ours and scikit-learn's), from the same centroids.
//
// Every measured point is one complete fit() call from the same initial centroids, wall-timed around the call, and its inertia is the one the fit returns over the
// whole data (ours: the final assignment; scikit-learn: inertia_ with compute_labels). The
// common start is k distinct data rows. The points of one
// method differ only in its stopping knob: max_iter for Lloyd (tol 0; the grid stops at the
// tightest target, ours then adds the converged fit), and (max_iter, max_no_improvement) for
// mini-batch. A method's time to a target inertia is the wall time of
// its cheapest fit that reached the target. Every fit runs kPasses times (ours before and
// after scikit-learn's; theirs in as many passes) and each point keeps the fastest time.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "io/io.hpp"
#include "measure.hpp"

#ifndef KMEANS_BENCH_MINIBATCH_SCRIPT
#define KMEANS_BENCH_MINIBATCH_SCRIPT "bench/minibatch_peers.py"
#endif

namespace bench {
namespace {

using kmeans::Backend;

/// One complete fit of a method.
struct Point {
  int max_iter = 0;
  int patience = -1;  ///< max_no_improvement (0: disabled); -1 for Lloyd
  double seconds = NAN;
  double other_pass = NAN;  ///< ours: the other pass's time (the spread)
  double inertia = NAN;
  int n_iter = 0;
  int n_steps = 0;
};

struct Method {
  std::string label;  ///< "ours lloyd cpu", "sklearn mb 1024", ...
  std::string who;    ///< "ours" or "sklearn"
  int batch = 0;      ///< 0: Lloyd
  Backend backend = Backend::Cpu;
  bool ok = true;
  std::string error;
  std::string version;
  std::vector<Point> points;
};

const int kLloydIters[] = {1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 300};
/// (max_iter epochs, max_no_improvement; 0 = disabled): the early-stopping rule at growing
/// patience, then whole epochs.
/// Larger patience is left out: at 1e6 rows (alpha = 2 b / (n + 1) ~ 0.002) the smoothed
/// inertia keeps improving for tens of epochs, which scikit-learn's Python steps take tens of
/// minutes to run on two cores.
const int kMiniBatchConfigs[][2] = {{100, 1}, {100, 2}, {100, 3}, {100, 5}, {100, 10}, {1, 0}};
/// Runs of every fit (each point keeps the fastest): ours and scikit-learn's alike.
constexpr int kPasses = 1;

/// Side of the cube the blob centres are drawn in: with unit noise in 16 dimensions the blobs
/// overlap (a centre's nearest neighbour is a few noise radii away), so Lloyd needs tens of
/// iterations and the mini-batch noise floor shows, unlike grid_data's far-apart blobs.
constexpr double kCentreCube = 5.0;

/// n x d points around `centres` centres uniform in [0, kCentreCube)^d with unit Gaussian noise.
std::vector<float> overlapping_blobs(std::int64_t n, std::int64_t d, int centres, std::uint64_t seed) {
  Rng g(seed);
  std::vector<double> c(static_cast<std::size_t>(centres * d));
  for (double& v : c) v = g.uniform() * kCentreCube;
  std::vector<float> x(static_cast<std::size_t>(n * d));
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int64_t j = static_cast<std::int64_t>(g.below(static_cast<std::uint64_t>(centres)));
    for (std::int64_t f = 0; f < d; ++f)
      x[i * d + f] = static_cast<float>(c[j * d + f] + g.normal());
  }
  return x;
}

/// Our fits of one method. A Lloyd grid runs the max_iter values of kLloydIters until a fit
/// reaches `stop` (the tightest target) or converges, then the converged fit (max_iter 300).
/// The second pass reruns the first pass's fits; each point keeps the faster time.
void run_ours(Method& m, const float* x, std::int64_t n, std::int64_t d,
              const std::vector<float>& init, int k, int threads, double stop, bool second_pass) {
  std::vector<Point> pts;
  auto one = [&](int max_iter, int patience) {
    kmeans::Params<float> p;
    p.k = k;
    p.init = kmeans::Init::Array;
    p.init_centroids = init;
    p.max_iter = max_iter;
    p.tol = 0;
    p.backend = m.backend;
    p.n_threads = threads;
    p.seed = 0;
    if (m.batch > 0) {
      p.batch_size = m.batch;
      p.max_no_improvement = patience;
    }
    const auto t0 = Clock::now();
    const kmeans::Result<float> r = kmeans::fit(x, n, d, p);
    Point pt;
    pt.seconds = seconds_since(t0);
    pt.max_iter = max_iter;
    pt.patience = m.batch > 0 ? patience : -1;
    pt.inertia = r.inertia;
    pt.n_iter = r.n_iter;
    pt.n_steps = r.n_steps;
    pts.push_back(pt);
    return r;
  };
  try {
    if (second_pass) {
      for (const Point& q : m.points) one(q.max_iter, q.patience);
    } else if (m.batch > 0) {
      for (const auto& c : kMiniBatchConfigs) one(c[0], c[1]);
    } else {
      for (int it : kLloydIters) {
        if (it == 300) break;
        const kmeans::Result<float> r = one(it, 0);
        if ((r.converged && r.n_iter < it) || r.inertia <= stop) break;
      }
      one(300, 0);  // converged (or 300 iterations): the reference
    }
  } catch (const kmeans::Error& e) {
    m.ok = false;
    m.error = e.what();
    return;
  }
  if (!second_pass) {
    m.points = pts;
    return;
  }
  for (std::size_t i = 0; i < pts.size() && i < m.points.size(); ++i) {
    Point& a = m.points[i];
    const double first = a.seconds;
    a.seconds = std::min(first, pts[i].seconds);
    a.other_pass = std::max(first, pts[i].seconds);
  }
}

/// scikit-learn's fits of one method, through minibatch_peers.py.
void run_sklearn(Method& m, const Run& run, const std::string& data, const std::string& init,
                 double stop) {
  std::string configs = "[";
  if (m.batch > 0) {
    for (const auto& c : kMiniBatchConfigs) {
      configs += (configs.size() > 1 ? ", [" : "[") + std::to_string(c[0]) + ", " +
                 (c[1] == 0 ? std::string("null") : std::to_string(c[1])) + "]";
    }
  } else {
    for (int it : kLloydIters) configs += (configs.size() > 1 ? ", " : "") + std::to_string(it);
  }
  configs += "]";
  std::string cmd;
  if (access("/usr/bin/timeout", X_OK) == 0) cmd = "/usr/bin/timeout 3600 ";
  cmd += shell_quote(run.python) + " " + shell_quote(KMEANS_BENCH_MINIBATCH_SCRIPT) +
         " --method " + (m.batch > 0 ? "minibatch" : "lloyd") + " --data " + shell_quote(data) +
         " --init " + shell_quote(init) + " --threads " + std::to_string(run.threads) +
         " --batch-size " + std::to_string(std::max(1, m.batch)) + " --configs " +
         shell_quote(configs) + " --stop-below " + fmt_sci(stop, 17) + " --passes " +
         std::to_string(kPasses) + " 2>&1";
  int status = 0;
  const std::string out = run_command(cmd, &status);
  Json j;
  const std::size_t at = out.rfind("\n{\"ok\"");
  try {
    j = Json::parse(out.substr(at == std::string::npos ? 0 : at + 1));
  } catch (const std::exception&) {
    m.ok = false;
    m.error = "no report (exit " + std::to_string(status) + "): " +
              out.substr(out.size() > 300 ? out.size() - 300 : 0);
    return;
  }
  if (!j.get("ok").boolean()) {
    m.ok = false;
    m.error = j.get("error").string();
    return;
  }
  m.version = j.get("version").string();
  for (const Json& q : j.get("points").items()) {
    Point p;
    p.max_iter = static_cast<int>(q.get("max_iter").number());
    p.patience = m.batch > 0 ? static_cast<int>(q.get("max_no_improvement").number(0)) : -1;
    p.seconds = q.get("seconds").number(NAN);
    p.other_pass = q.get("seconds_other_pass").number(NAN);
    p.inertia = q.get("inertia").number(NAN);
    p.n_iter = static_cast<int>(q.get("n_iter").number());
    p.n_steps = static_cast<int>(q.get("n_steps").number());
    m.points.push_back(p);
  }
}

/// The wall time of the method's cheapest fit with inertia <= target (NaN: none reached it).
double time_to(const Method& m, double target) {
  double best = NAN;
  for (const Point& p : m.points)
    if (p.inertia <= target && !(p.seconds >= best)) best = p.seconds;
  return best;
}

double best_inertia(const Method& m) {
  double best = NAN;
  for (const Point& p : m.points)
    if (!(p.inertia >= best)) best = p.inertia;
  return best;
}

std::string knob(const Method& m, const Point& p) {
  if (m.batch == 0) return "max_iter " + std::to_string(p.max_iter);
  return "max_iter " + std::to_string(p.max_iter) + ", max_no_improvement " +
         (p.patience == 0 ? std::string("None") : std::to_string(p.patience));
}

}  // namespace

void run_minibatch(Run& run) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // progress lines as they happen (minutes)
  const bool quick = run.opt.quick;
  const std::int64_t n = quick ? 100000 : 1000000, d = 16;
  const int k = quick ? 64 : 256;
  const std::vector<int> batches = {1024, 8192};
  std::printf("\n== time to inertia: Lloyd against mini-batch k-means, %s x %lld float32 "
              "blobs (%d centres in [0, %g)^d, unit noise: overlapping), k = %d, %d threads%s ==\n",
              fmt_count(n).c_str(), static_cast<long long>(d), k, kCentreCube, k, run.threads,
              quick ? " (--quick; the full run: 1e6 x 16, k = 256)" : "");
  const std::vector<float> x = overlapping_blobs(n, d, k, kDataSeed);
  // The common start: k distinct data rows (init "random", as the other modes), untimed.
  const std::vector<float> init = take_rows(x.data(), d, distinct_rows(n, k, kInitSeed));
  std::printf("initial centroids: %d distinct data rows (seed %llu), the same for every method\n",
              k, static_cast<unsigned long long>(kInitSeed));
  std::printf("every point: one complete fit() from these centroids, wall-timed, with its "
              "inertia over the whole data as the fit returns it; each fit runs %d time%s%s\n",
              kPasses, kPasses > 1 ? "s" : "", kPasses > 1 ? ", the fastest kept" : "");

  std::vector<Method> methods;
  for (Backend b : available_backends(false)) {
    Method lloyd;
    lloyd.label = "ours lloyd " + backend_label(b);
    lloyd.who = "ours";
    lloyd.backend = b;
    methods.push_back(lloyd);
    for (int batch : batches) {
      Method mb = lloyd;
      mb.label = "ours mb " + std::to_string(batch) + " " + backend_label(b);
      mb.batch = batch;
      methods.push_back(mb);
    }
  }
  // The reference first: our Lloyd's converged inertia L on the cpu backend (tol 0: until the
  // labels stop changing, at most 300 iterations); the Lloyd grids stop at the tightest target.
  double ref = NAN;
  {
    kmeans::Params<float> p;
    p.k = k;
    p.init = kmeans::Init::Array;
    p.init_centroids = init;
    p.max_iter = 300;
    p.tol = 0;
    p.backend = Backend::Cpu;
    p.n_threads = run.threads;
    const kmeans::Result<float> r = kmeans::fit(x.data(), n, d, p);
    ref = r.inertia;
    std::printf("reference: our Lloyd's converged inertia L = %.6e after %d iterations%s\n", ref,
                r.n_iter, r.converged ? "" : " (not converged)");
  }
  const double targets[] = {1.10, 1.05, 1.02, 1.01};
  const double stop = ref * targets[3];
  for (Method& m : methods)
    run_ours(m, x.data(), n, d, init, k, ours_threads(run, m.backend), stop, false);

  if (run.peers) {
    char dir_template[] = "/tmp/bench_minibatch_XXXXXX";
    const char* dir = mkdtemp(dir_template);
    const std::string data = std::string(dir ? dir : "/tmp") + "/data.npy";
    const std::string init_path = std::string(dir ? dir : "/tmp") + "/init.npy";
    std::vector<Method> peers;
    for (int batch : {0, batches[0], batches[1]}) {
      Method m;
      m.who = "sklearn";
      m.batch = batch;
      m.label = batch ? "sklearn mb " + std::to_string(batch) : "sklearn lloyd";
      peers.push_back(m);
    }
    try {
      if (!dir) throw kmeans::Error("cannot make a temporary directory");
      kmeans::io::write_npy(data, x.data(), n, d);
      kmeans::io::write_npy(init_path, init.data(), k, d);
      for (Method& m : peers) {
        std::printf("running %s ...\n", m.label.c_str());
        std::fflush(stdout);
        run_sklearn(m, run, data, init_path, stop);
      }
    } catch (const kmeans::Error& e) {
      for (Method& m : peers) {
        m.ok = false;
        m.error = e.what();
      }
    }
    if (dir) {
      std::remove(data.c_str());
      std::remove(init_path.c_str());
      rmdir(dir);
    }
    methods.insert(methods.end(), peers.begin(), peers.end());
  }
  // Ours again (after scikit-learn's when it ran): each point keeps the faster of the passes.
  for (int pass = 1; pass < kPasses; ++pass)
    for (Method& m : methods)
      if (m.who == "ours" && m.ok)
        run_ours(m, x.data(), n, d, init, k, ours_threads(run, m.backend), stop, true);

  std::printf("\nL = %.6e: our Lloyd's converged inertia; the Lloyd grids stop once a fit is "
              "within 1%% of it (scikit-learn's best inertia is then about L+1%%)\n\n", ref);
  std::printf("%-22s %14s", "method", "best inertia");
  for (double t : targets) std::printf("   %11s", ("<= L+" + fmt_fix((t - 1) * 100, 0) + "%").c_str());
  std::printf("\n");
  for (const Method& m : methods) {
    if (!m.ok) {
      std::printf("%-22s not run: %s\n", m.label.c_str(), m.error.substr(0, 200).c_str());
      continue;
    }
    std::printf("%-22s %13s%%", m.label.c_str(),
                ("L" + std::string(best_inertia(m) >= ref ? "+" : "") +
                 fmt_fix((best_inertia(m) / ref - 1) * 100, 2)).c_str());
    for (double t : targets) {
      const double s = time_to(m, t * ref);
      std::printf("   %11s", std::isnan(s) ? "not reached" : (fmt_sci(s, 3) + " s").c_str());
    }
    std::printf("\n");
  }
  // The speed-ups over Lloyd, per target.
  const Method* lloyd = nullptr;
  for (const Method& m : methods)
    if (m.who == "ours" && m.batch == 0 && m.ok) lloyd = lloyd ? lloyd : &m;
  if (lloyd) {
    std::printf("\ntime relative to %s (smaller is faster)\n", lloyd->label.c_str());
    for (const Method& m : methods) {
      if (!m.ok || &m == lloyd) continue;
      std::printf("%-22s %14s", m.label.c_str(), "");
      for (double t : targets) {
        const double a = time_to(m, t * ref), b = time_to(*lloyd, t * ref);
        std::printf("   %11s", std::isnan(a) || std::isnan(b) ? "-" : fmt_ratio(a / b).c_str());
      }
      std::printf("\n");
    }
  }
  std::printf("\nthe points (seconds%s)\n",
              kPasses > 1 ? ": the fastest of the runs, the slowest in brackets" : "");
  for (const Method& m : methods) {
    if (!m.ok) continue;
    std::printf("%s%s\n", m.label.c_str(), m.version.empty() ? "" : (" (scikit-learn " + m.version + ")").c_str());
    Json row = Json::object();
    row.set("mode", "minibatch").set("method", m.label).set("who", m.who).set("batch_size", m.batch)
        .set("n", static_cast<std::int64_t>(n)).set("d", static_cast<std::int64_t>(d)).set("k", k)
        .set("dtype", "float32").set("reference_inertia", ref);
    if (!m.version.empty()) row.set("version", m.version);
    Json pts = Json::array();
    for (const Point& p : m.points) {
      std::printf("  %-40s steps %6d  epochs %4d  %10s s%s  inertia L%s%.3f%%\n", knob(m, p).c_str(),
                  p.n_steps, p.n_iter, fmt_sci(p.seconds, 3).c_str(),
                  std::isnan(p.other_pass) ? "" : (" [" + fmt_sci(p.other_pass, 3) + "]").c_str(),
                  p.inertia >= ref ? "+" : "", (p.inertia / ref - 1) * 100);
      Json q = Json::object();
      q.set("max_iter", p.max_iter).set("seconds", p.seconds).set("inertia", p.inertia)
          .set("n_iter", p.n_iter).set("n_steps", p.n_steps);
      if (p.patience >= 0) q.set("max_no_improvement", p.patience);
      if (!std::isnan(p.other_pass)) q.set("seconds_other_pass", p.other_pass);
      pts.push(q);
    }
    row.set("points", pts);
    Json tt = Json::object();
    for (double t : targets) tt.set(fmt_fix(t, 2), time_to(m, t * ref));
    row.set("time_to_inertia", tt);
    run.rows.push(row);
  }
}

}  // namespace bench
