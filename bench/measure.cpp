// SPDX-License-Identifier: Apache-2.0
// Shared by bench_kmeans's modes: timing our backends, running the peers and printing/recording
// a measured row.
#include "measure.hpp"

#include <stdlib.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "io/io.hpp"

namespace bench {

using kmeans::Backend;

/// Times fits with tol = 0 and the given initial centroids. Per iteration = (assign + update)
/// / n_iter of a fit: initialisation and the final assignment are reported apart.
template <class T>
Measured measure_ours(const T* x, std::int64_t n, std::int64_t d, const std::vector<T>& init,
                      int k, int iters, Backend b, int threads, int max_repeats, double budget_s,
                      bool warm_up) {
  kmeans::Params<T> p;
  p.k = k;
  p.max_iter = iters;
  p.tol = 0;
  p.init = kmeans::Init::Array;
  p.init_centroids = init;
  p.backend = b;
  p.n_threads = threads;
  Measured m;
  m.backend = b;
  m.iters = iters;
  try {
    const auto un = static_cast<std::size_t>(n), ud = static_cast<std::size_t>(d);
    kmeans::KMeans<T> km(p);
    if (warm_up) {  // a short fit that makes the engines the timed fits reuse
      km.params().max_iter = std::min(iters, 2);
      km.fit(x, un, ud);
      m.setup_cold_s = km.result().timings.init;
      km.params().max_iter = iters;
    }
    time_fits<T>(m, max_repeats, budget_s,
                 [&]() -> const kmeans::Result<T>& { return km.fit(x, un, ud).result(); });
    m.ok = true;
  } catch (const kmeans::Error& e) {
    m.error = e.what();
  } catch (const std::bad_alloc&) {
    m.error = "out of host memory";
  }
  return m;
}

template Measured measure_ours<float>(const float*, std::int64_t, std::int64_t,
                                      const std::vector<float>&, int, int, Backend, int, int,
                                      double, bool);
template Measured measure_ours<double>(const double*, std::int64_t, std::int64_t,
                                       const std::vector<double>&, int, int, Backend, int, int,
                                       double, bool);

Json phases_json(const kmeans::Timings& t) {
  Json j = Json::object();
  j.set("init", t.init).set("assign", t.assign).set("update", t.update)
      .set("final_assign", t.final_assign);
  return j;
}

namespace {

/// A temporary directory removed with its files when the object dies.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string templ = std::string(base && *base ? base : "/tmp") + "/bench_kmeans.XXXXXX";
    std::vector<char> buf(templ.begin(), templ.end());
    buf.push_back('\0');
    if (!mkdtemp(buf.data())) throw kmeans::Error("cannot create a temporary directory " + templ);
    path_ = buf.data();
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace

template <class T>
std::vector<PeerResult> run_peers_on(const Run& run, const T* x, std::int64_t n, std::int64_t d,
                                     const std::vector<T>& init, int k, int iters,
                                     double budget_s) {
  std::vector<PeerResult> out;
  try {
    TempDir dir;
    PeerRequest req;
    req.python = run.python;
    req.fallback_python = run.fallback_python;
    req.cpu_only = run.opt.cpu_peers;
    req.script = run.opt.peers_script;
    req.data_path = dir.path() + "/data.npy";
    req.init_path = dir.path() + "/init.npy";
    req.iters = iters;
    req.threads = run.threads;
    req.budget_s = budget_s;
    req.timeout_s = static_cast<int>(std::max(120.0, 30 * budget_s));
    kmeans::io::write_npy(req.data_path, x, n, d);
    kmeans::io::write_npy(req.init_path, init.data(), k, d);
    out = run_peers(req);
  } catch (const kmeans::Error& e) {
    PeerResult r;
    r.name = "peers";
    r.error = e.what();
    out.push_back(r);
  }
  return out;
}

template std::vector<PeerResult> run_peers_on<float>(const Run&, const float*, std::int64_t,
                                                     std::int64_t, const std::vector<float>&,
                                                     int, int, double);
template std::vector<PeerResult> run_peers_on<double>(const Run&, const double*, std::int64_t,
                                                      std::int64_t, const std::vector<double>&,
                                                      int, int, double);

const Measured* ours_for(const std::vector<Measured>& ours, const std::string& device) {
  const Backend want = device == "cuda" ? Backend::Cuda : Backend::Cpu;
  for (const auto& m : ours)
    if (m.ok && m.backend == want) return &m;
  return nullptr;
}

std::string fmt_ratio(double r) {
  if (!std::isfinite(r)) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, r >= 100 ? "%.0fx" : "%.3gx", r);
  return buf;
}

std::string peer_label(const PeerResult& p) {
  if (p.name == "sklearn") return "scikit-learn lloyd";
  if (p.name == "faiss") return "FAISS Kmeans (cpu)";
  if (p.name == "faiss-gpu") return "FAISS Kmeans (gpu)";
  if (p.name == "torch") return "PyTorch Lloyd";
  return p.name;
}

std::vector<Backend> available_backends(bool with_reference) {
  std::vector<Backend> b;
  if (with_reference) b.push_back(Backend::Reference);
  b.push_back(Backend::Cpu);
  if (kmeans::cuda_available()) b.push_back(Backend::Cuda);
  return b;
}

std::string backend_label(Backend b) {
  return b == Backend::Reference ? "reference loop" : kmeans::to_string(b);
}

/// One line naming the peers that ran on Debian's reference (netlib) BLAS: their distance
/// GEMMs are then far slower than with OpenBLAS or MKL, which the ratios must not hide.
void print_blas_notes(const std::vector<PeerResult>& peers) {
  std::string names, netlib;
  for (const auto& p : peers) {
    for (const auto& lib : p.blas) {
      if (!p.ok || lib.find("/blas/libblas") == std::string::npos) continue;
      names += (names.empty() ? "" : ", ") + p.name;
      netlib = lib;
    }
  }
  if (!names.empty())
    std::printf("  note: %s loaded the reference (netlib) BLAS %s: unoptimised, often 10x slower "
                "than OpenBLAS or MKL\n",
                names.c_str(), netlib.c_str());
}

int ours_threads(const Run& run, Backend b) {
  return b == Backend::Cpu ? run.threads : b == Backend::Reference ? 1 : 0;
}

std::string fmt_spread(const Spread& s) {
  return std::to_string(s.repeats) + (s.repeats == 1 ? " rep " : " reps ") + fmt_sci(s.min) +
         ".." + fmt_sci(s.max);
}

std::string peer_blas(const PeerResult& p) {
  if (!p.blas_name.empty()) return p.blas_name;
  return p.blas.empty() ? "none loaded" : p.blas.front();
}

std::string sse_difference(const PeerResult& p, const Measured* ours, bool f64, std::int64_t n) {
  if (!ours || !p.ok || !(ours->inertia > 0) || !std::isfinite(p.final_sse)) return {};
  const double rel = (p.final_sse - ours->inertia) / ours->inertia;
  if (std::fabs(rel) <= 1e-5) return {};
  char head[160];
  std::snprintf(head, sizeof head, "final mean SSE %.6g vs ours %.6g (%+.3g%%): ", p.final_sse / n,
                ours->inertia / n, 100 * rel);
  std::string why;
  if (p.name.rfind("faiss", 0) == 0) {
    why = "FAISS computes in float32 and repairs an empty cluster by splitting a large one in "
          "two, where ours (" + std::to_string(ours->n_empty_relocated) +
          " relocations in this fit), scikit-learn's and the torch loop move the farthest point";
  } else if (p.n_iter < ours->n_iter) {
    why = "it stopped after " + std::to_string(p.n_iter) + " iterations, ours after " +
          std::to_string(ours->n_iter);
  } else if (!f64 && std::fabs(rel) < 1e-2) {
    why = "float32 sums: rounding can flip a near-tie between two centroids, and the fits then "
          "part ways";
  } else {
    why = "not explained (same data, initial centroids, iteration count and empty-cluster "
          "repair): worth a look";
  }
  return head + why;
}

void note_sse_difference(Json& j, const PeerResult& p, const Measured* ours, bool f64,
                         std::int64_t n, const char* indent) {
  const std::string why = sse_difference(p, ours, f64, n);
  if (why.empty()) return;
  std::printf("%s^ %s\n", indent, why.c_str());
  j.set("sse_differs", why);
}

PointMetrics point_metrics(const Run& run, Backend b, std::int64_t n, std::int64_t d, int k,
                           std::size_t elem, double s_per_iter) {
  // The bytes that must move: the data once and the centroids; the work: 3 flops per
  // coordinate per centroid (subtract, multiply, add).
  const double bytes = static_cast<double>(n * d + static_cast<std::int64_t>(k) * d) * elem;
  const double flops = 3.0 * static_cast<double>(n) * k * d;
  const bool gpu = b == Backend::Cuda;
  const double bw_limit = gpu ? run.gpu.peak_gbps : run.cpu.copy_gbps;
  // The CPU's limit is its measured FMA rate (the nominal peak only without one).
  const double peak = elem == 4 ? (gpu ? run.gpu.peak_gflops_f32 : run.cpu.limit_gflops_f32)
                                : (gpu ? run.gpu.peak_gflops_f64 : run.cpu.limit_gflops_f64);
  PointMetrics pm;
  pm.points_per_s = n / s_per_iter;
  pm.gbytes_per_s = bytes / s_per_iter * 1e-9;
  pm.gflops = flops / s_per_iter * 1e-9;
  pm.pct_bw = bw_limit > 0 ? 100 * pm.gbytes_per_s / bw_limit : NAN;
  pm.pct_peak = peak > 0 ? 100 * pm.gflops / peak : NAN;
  return pm;
}

void print_point_header() {
  std::printf("  %-24s %-7s %9s %5s %6s %4s %10s %9s %8s %6s %8s %6s %8s %8s %8s %8s\n", "backend",
              "dtype", "n", "d", "k", "it", "s/iter", "Mpts/s", "GB/s", "%bw", "GFLOP/s", "%peak",
              "init", "assign", "update", "final");
}

Json point_json(const char* mode, const std::string& sweep, Backend b, bool f64, std::int64_t n,
                std::int64_t d, int k) {
  Json j = Json::object();
  j.set("mode", mode);
  if (!sweep.empty()) j.set("sweep", sweep);
  j.set("kind", "ours").set("backend", kmeans::to_string(b)).set("dtype", f64 ? "float64" : "float32")
      .set("n", n).set("d", d).set("k", k);
  return j;
}

void print_and_record(Run& run, Json j, const Measured& m, bool f64, std::int64_t n, std::int64_t d,
                      int k) {
  const std::string label = backend_label(m.backend);
  if (!m.ok) {
    std::printf("  %-24s %-7s %9s %5lld %6d  failed: %s\n", label.c_str(),
                f64 ? "float64" : "float32", fmt_count(n).c_str(), static_cast<long long>(d), k,
                m.error.c_str());
    j.set("error", m.error);
    run.rows.push(j);
    return;
  }
  const PointMetrics pm =
      point_metrics(run, m.backend, n, d, k, f64 ? sizeof(double) : sizeof(float), m.s_per_iter);
  std::printf("  %-24s %-7s %9s %5lld %6d %4d %10s %9.2f %8.2f %6.1f %8.2f %6.1f %8.3f %8.3f "
              "%8.3f %8.3f  %s\n",
              label.c_str(), f64 ? "float64" : "float32", fmt_count(n).c_str(),
              static_cast<long long>(d), k, m.n_iter, fmt_sci(m.s_per_iter).c_str(),
              pm.points_per_s * 1e-6, pm.gbytes_per_s, pm.pct_bw, pm.gflops, pm.pct_peak,
              m.phases.init, m.phases.assign, m.phases.update, m.phases.final_assign,
              fmt_spread(m.spread).c_str());
  set_spread(j, m.spread, m.runs);
  j.set("iters", m.iters).set("n_iter", m.n_iter).set("threads", ours_threads(run, m.backend))
      .set("s_per_iter", m.s_per_iter).set("points_per_s", pm.points_per_s)
      .set("gbytes_per_s", pm.gbytes_per_s).set("pct_bw", pm.pct_bw).set("gflops", pm.gflops)
      .set("pct_peak", pm.pct_peak).set("final_mean_sse", m.inertia / n)
      .set("n_empty_relocated", m.n_empty_relocated).set("phases", phases_json(m.phases));
  run.rows.push(j);
}

void print_and_record_peers(Run& run, const char* mode, const std::string& sweep,
                            const std::vector<PeerResult>& peers, const std::vector<Measured>& ours,
                            bool f64, std::int64_t n, std::int64_t d, int k) {
  for (const auto& p : peers) {
    Json j = peer_json(p);
    j.set("mode", mode);
    if (!sweep.empty()) j.set("sweep", sweep);
    j.set("kind", "peer").set("dtype", f64 ? "float64" : "float32").set("n", n).set("d", d)
        .set("k", k);
    const std::string label = "peer " + p.name;
    if (!p.ok) {
      std::printf("  %-24s not run: %s\n", label.c_str(), p.error.c_str());
      run.rows.push(j);
      continue;
    }
    const Measured* mine = ours_for(ours, p.device);
    const double ratio = mine ? p.s_per_iter / mine->s_per_iter : NAN;
    const Backend as = p.device == "cuda" ? Backend::Cuda : Backend::Cpu;
    const PointMetrics pm =
        point_metrics(run, as, n, d, k, f64 ? sizeof(double) : sizeof(float), p.s_per_iter);
    std::printf("  %-24s %-7s %9s %5lld %6d %4d %10s %9.2f %8.2f %6.1f %8.2f %6.1f   "
                "peer/ours %s (%s, final mean SSE %.6g)  %s; %s, %d threads\n",
                label.c_str(), f64 ? "float64" : "float32", fmt_count(n).c_str(),
                static_cast<long long>(d), k, p.n_iter, fmt_sci(p.s_per_iter).c_str(),
                pm.points_per_s * 1e-6, pm.gbytes_per_s, pm.pct_bw, pm.gflops, pm.pct_peak,
                fmt_ratio(ratio).c_str(), p.device.c_str(), p.final_sse / n,
                fmt_spread(spread_of(p.s_per_iter_runs, p.s_per_iter, p.repeats)).c_str(),
                peer_blas(p).c_str(), p.threads);
    j.set("ratio_peer_over_ours", ratio).set("points_per_s", pm.points_per_s)
        .set("gbytes_per_s", pm.gbytes_per_s).set("pct_bw", pm.pct_bw).set("gflops", pm.gflops)
        .set("pct_peak", pm.pct_peak).set("final_mean_sse", p.final_sse / n);
    note_sse_difference(j, p, mine, f64, n, "      ");
    run.rows.push(j);
  }
  print_blas_notes(peers);
}

}  // namespace bench
