// SPDX-License-Identifier: Apache-2.0
// bench_kmeans --grid: scaling sweeps over n, k and d in float32 and float64 against the
// machine's bandwidth and FMA limits.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "measure.hpp"

namespace bench {
namespace {

using kmeans::Backend;

constexpr int kMinGridIters = 3;

struct Sweep {
  std::string name;         ///< "n", "k" or "d": the swept variable.
  bool gpu = false;         ///< Sized for (and run on) the cuda backend only.
  std::vector<std::int64_t> values;
  std::int64_t n, d;
  int k;
};

std::vector<Sweep> make_sweeps(bool quick, bool with_gpu) {
  std::vector<Sweep> s;
  if (quick) {
    s.push_back({"n", false, {1000, 10000, 100000}, 0, 8, 64});
    s.push_back({"k", false, {2, 16, 128, 1024}, 20000, 8, 0});
    s.push_back({"d", false, {2, 8, 32, 128}, 20000, 0, 64});
  } else {
    s.push_back({"n", false, {1000, 10000, 100000, 1000000, 10000000, 100000000}, 0, 8, 64});
    s.push_back({"k", false, {2, 8, 32, 128, 512, 2048, 8192, 65536}, 100000, 8, 0});
    s.push_back({"d", false, {2, 4, 8, 16, 32, 64, 128, 256, 512, 1024}, 100000, 0, 64});
  }
  if (with_gpu) {
    // The GPU needs far more work per launch to leave its latency floor: larger bases.
    if (quick) {
      s.push_back({"n", true, {10000, 1000000, 10000000}, 0, 8, 64});
      s.push_back({"k", true, {2, 128, 4096}, 1000000, 8, 0});
      s.push_back({"d", true, {2, 32, 512}, 1000000, 0, 64});
    } else {
      s.push_back({"n", true, {1000, 10000, 100000, 1000000, 10000000, 100000000}, 0, 8, 64});
      s.push_back({"k", true, {2, 8, 32, 128, 512, 2048, 8192, 65536}, 1000000, 8, 0});
      s.push_back({"d", true, {2, 4, 8, 16, 32, 64, 128, 256, 512, 1024}, 1000000, 0, 64});
    }
  }
  return s;
}

/// Predicts a backend's time per iteration from its last measured point, scaling by
/// n * d * (k + 8): the distance work plus a memory term that dominates at small k.
struct Predictor {
  double work = 0, seconds = 0;
  double predict(double w) const { return work > 0 ? seconds * w / work : 0; }
  void update(double w, double s) { work = w, seconds = s; }
};

template <class T>
void grid_point(Run& run, const Sweep& sw, std::int64_t n, std::int64_t d, int k,
                std::vector<Predictor>& pred, int iters, double budget) {
  const bool f64 = sizeof(T) == 8;
  const double work = static_cast<double>(n) * d * (k + 8);
  std::vector<Backend> backends;
  if (sw.gpu) {
    backends = {Backend::Cuda};
  } else {
    if (static_cast<double>(n) * k * d <= kReferenceMaxWork) backends.push_back(Backend::Reference);
    backends.push_back(Backend::Cpu);
  }
  // Memory: the data, the labels and distances, the centroid sums.
  const double data_bytes = static_cast<double>(n) * d * sizeof(T);
  const double need = data_bytes + 16.0 * n + 16.0 * k * d;
  const double avail = host_available_bytes();
  auto skip = [&](Backend b, const std::string& why) {
    std::printf("  %-24s %-7s %9s %5lld %6d  skipped: %s\n", backend_label(b).c_str(),
                f64 ? "float64" : "float32", fmt_count(n).c_str(), static_cast<long long>(d), k,
                why.c_str());
    Json j = point_json("grid", sw.name, b, f64, n, d, k);
    j.set("skipped", why);
    run.rows.push(j);
  };
  char buf[160];
  if (avail > 0 && need > kHostMemoryShare * avail) {
    std::snprintf(buf, sizeof buf, "needs %.1f GB of host memory, %.1f GB available", need * 1e-9,
                  avail * 1e-9);
    for (Backend b : backends) skip(b, buf);
    return;
  }
  std::vector<Backend> run_these;
  std::vector<int> iters_for;
  for (Backend b : backends) {
    const int slot = static_cast<int>(b) * 2 + (f64 ? 1 : 0);
    const double t = pred[slot].predict(work);
    if (b == Backend::Cuda && run.gpu.present &&
        need > kDeviceMemoryShare * run.gpu.free_mem_gb * 1e9) {
      std::snprintf(buf, sizeof buf, "needs %.1f GB of GPU memory, %.1f GB free", need * 1e-9,
                    run.gpu.free_mem_gb);
      skip(b, buf);
      continue;
    }
    if (t * kMinGridIters > 2 * budget) {
      std::snprintf(buf, sizeof buf, "predicted %.2g s/iter, over the %.3g s budget per point",
                    t, budget);
      skip(b, buf);
      continue;
    }
    run_these.push_back(b);
    iters_for.push_back(t > 0 ? std::clamp(static_cast<int>(budget / t), kMinGridIters, iters)
                              : iters);
  }
  if (run_these.empty()) return;
  const std::vector<T> x = grid_data<T>(n, d, std::min(k, 64), kDataSeed + n + 31 * d);
  const std::vector<T> init = take_rows(x.data(), d, distinct_rows(n, k, kInitSeed));
  std::vector<Measured> ours;
  for (std::size_t i = 0; i < run_these.size(); ++i) {
    const Backend b = run_these[i];
    const int slot = static_cast<int>(b) * 2 + (f64 ? 1 : 0);
    const double t = pred[slot].predict(work);
    // A warm-up fit only where it is cheap; the first fit's one-off costs are in `init`.
    const bool warm_up = t == 0 || t * 2 < budget / 4;
    Measured m = measure_ours(x.data(), n, d, init, k, iters_for[i], b, run.threads, 5, budget,
                              warm_up);
    if (m.ok) pred[slot].update(work, m.s_per_iter);
    print_and_record(run, point_json("grid", sw.name, b, f64, n, d, k), m, f64, n, d, k);
    ours.push_back(std::move(m));
  }
  if (run.peers) {
    const auto peers = run_peers_on(run, x.data(), n, d, init, k, iters, budget);
    print_and_record_peers(run, "grid", sw.name, peers, ours, f64, n, d, k);
  }
}

}  // namespace

void run_grid(Run& run) {
  const bool quick = run.opt.quick;
  const int iters = quick ? 5 : 10;
  const double budget = run.opt.budget > 0 ? run.opt.budget : (quick ? 0.3 : 3.0);
  const auto t0 = Clock::now();
  std::printf("\nScaling grid%s: %d iterations per fit (fewer where the budget of %.3g s per point "
              "needs), tol = 0, %d threads\n",
              quick ? " (quick)" : "", iters, budget, run.threads);
  std::printf("  bytes/iter = (n*d + k*d) * sizeof(T); flops/iter = 3*n*k*d; %%bw against the "
              "copy bandwidth, %%peak against the CPU's measured FMA rate (GPU: its nominal "
              "peak); phases: seconds of the median fit\n");
  // Slots indexed by Backend value x dtype.
  std::vector<Predictor> pred(8);
  for (const Sweep& sw : make_sweeps(quick, run.gpu.present)) {
    std::printf("\nsweep %s%s (", sw.name.c_str(), sw.gpu ? " (gpu)" : "");
    if (sw.name != "n") std::printf("n = %s", fmt_count(sw.n).c_str());
    if (sw.name != "d") std::printf("%sd = %lld", sw.name == "n" ? "" : ", ", static_cast<long long>(sw.d));
    if (sw.name != "k") std::printf(", k = %d", sw.k);
    std::printf(")\n");
    print_point_header();
    for (int f = 0; f < 2; ++f) {
      for (std::int64_t v : sw.values) {
        const std::int64_t n = sw.name == "n" ? v : sw.n;
        const std::int64_t d = sw.name == "d" ? v : sw.d;
        const int k = sw.name == "k" ? static_cast<int>(v) : sw.k;
        if (k > n) continue;
        if (f == 0)
          grid_point<float>(run, sw, n, d, k, pred, iters, budget);
        else
          grid_point<double>(run, sw, n, d, k, pred, iters, budget);
      }
    }
  }
  std::printf("\nGrid finished in %.1f s\n", seconds_since(t0));
}

}  // namespace bench
