// SPDX-License-Identifier: Apache-2.0
// bench_kmeans: the classic "loop vs vectorized" k-means study (no arguments), a scaling grid
// against the machine's limits (--grid) and one custom point (--case), with peers in the run.
#include <omp.h>
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "bench_util.hpp"
#include "io.hpp"
#include "kmeans/kmeans.hpp"
#include "machine.hpp"
#include "peers.hpp"

#ifndef KMEANS_BENCH_PEERS_SCRIPT
#define KMEANS_BENCH_PEERS_SCRIPT "bench/peers.py"
#endif
#ifndef KMEANS_BENCH_GIT_COMMIT
#define KMEANS_BENCH_GIT_COMMIT "unknown"
#endif
#ifndef KMEANS_BENCH_COMPILER
#define KMEANS_BENCH_COMPILER "unknown"
#endif

namespace bench {
namespace {

using kmeans::Backend;
using Clock = std::chrono::steady_clock;

constexpr std::uint64_t kDataSeed = 20240611;
constexpr std::uint64_t kInitSeed = 7;
constexpr int kClassicIters = 50;
constexpr int kClassicK = 4;
// The original study's figures (not measured here): its Python loop and its NumPy version.
constexpr double kStudyLoopSeconds = 0.053;
constexpr double kStudyVectorizedSeconds = 0.00073;
// The reference backend is a plain triple loop: run it only where n*k*d stays this small.
constexpr double kReferenceMaxWork = 5e7;
// Share of MemAvailable a grid point may use for its data and the library's buffers.
constexpr double kHostMemoryShare = 0.6;
constexpr double kDeviceMemoryShare = 0.7;
constexpr int kMinGridIters = 3;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

[[noreturn]] void usage_error(const std::string& msg) {
  std::fprintf(stderr, "bench_kmeans: error: %s (see --help)\n", msg.c_str());
  std::exit(2);
}

const char* kUsage =
    "usage: bench_kmeans [--grid [--quick] | --case SPEC] [options]\n"
    "\n"
    "With no mode: the classic loop-vs-vectorized study (4 blobs in 3-D, k = 4, 50 iterations)\n"
    "for every available backend, with the original study's figures and peers.\n"
    "\n"
    "modes:\n"
    "  --grid                 scaling sweeps over n, k and d in float32 and float64 against the\n"
    "                         machine's bandwidth and FMA limits (peers off unless --peers)\n"
    "  --quick                a small grid (well under a minute); also shortens the limits\n"
    "  --case SPEC            one point: n=1000000,d=8,k=64,dtype=float32[,iters=20]\n"
    "                         [,backend=cpu|cuda|reference|all][,seed=S]\n"
    "                         [,init=random|k-means++|k-means||]: also time that initialisation\n"
    "options:\n"
    "  --json FILE            write every row and a machine description as JSON\n"
    "  --peers / --no-peers   run scikit-learn, FAISS and PyTorch in the same run (default: on,\n"
    "                         except for --grid)\n"
    "  --peers-script PATH    peers.py to run (default: " KMEANS_BENCH_PEERS_SCRIPT ")\n"
    "  --python PATH          interpreter for the peers (default: $KMEANS_PYTHON, python3 or\n"
    "                         /usr/bin/python3, the first that imports numpy)\n"
    "  --threads N            CPU threads for our backends and the peers (default: OpenMP's)\n"
    "  --budget SECONDS       time per grid point and per peer for repeats (default 3, quick 0.3)\n"
    "  -h, --help             this text\n";

// ------------------------------------------------------------------------- options

struct CaseSpec {
  std::int64_t n = 1000000;
  std::int64_t d = 8;
  int k = 64;
  bool f64 = false;
  int iters = 20;
  std::string backend = "all";
  std::uint64_t seed = kDataSeed;
  std::string init;  ///< when set: also time this initialisation on each backend
};

struct Options {
  bool grid = false;
  bool quick = false;
  bool has_case = false;
  CaseSpec case_spec;
  int peers = -1;  // -1: the mode's default
  std::string json_path;
  std::string peers_script = KMEANS_BENCH_PEERS_SCRIPT;
  std::string python;
  int threads = 0;
  double budget = 0;  // 0: the mode's default
  std::string command_line;
};

/// An integer written plainly or as 1e6; false when not an integer in [lo, hi].
bool parse_integer(const std::string& s, double lo, double hi, double* out) {
  if (s.empty()) return false;
  char* end = nullptr;
  const double x = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size() || !std::isfinite(x) || x != std::floor(x)) return false;
  if (x < lo || x > hi) return false;
  *out = x;
  return true;
}

CaseSpec parse_case(const std::string& spec) {
  CaseSpec c;
  bool has_n = false, has_d = false, has_k = false;
  std::size_t pos = 0;
  while (pos <= spec.size()) {
    std::size_t comma = spec.find(',', pos);
    if (comma == std::string::npos) comma = spec.size();
    const std::string item = spec.substr(pos, comma - pos);
    pos = comma + 1;
    if (item.empty()) usage_error("--case: empty item in '" + spec + "'");
    const std::size_t eq = item.find('=');
    if (eq == std::string::npos) usage_error("--case: '" + item + "' is not key=value");
    const std::string key = item.substr(0, eq), value = item.substr(eq + 1);
    double x = 0;
    auto bad = [&](const char* want) {
      usage_error("--case: " + key + " = '" + value + "' must be " + want);
    };
    if (key == "n") {
      if (!parse_integer(value, 1, 9e15, &x)) bad("an integer >= 1");
      c.n = static_cast<std::int64_t>(x);
      has_n = true;
    } else if (key == "d") {
      if (!parse_integer(value, 1, 1e9, &x)) bad("an integer >= 1");
      c.d = static_cast<std::int64_t>(x);
      has_d = true;
    } else if (key == "k") {
      if (!parse_integer(value, 1, 2147483647, &x)) bad("an integer in [1, 2^31)");
      c.k = static_cast<int>(x);
      has_k = true;
    } else if (key == "iters") {
      if (!parse_integer(value, 1, 1e6, &x)) bad("an integer in [1, 1e6]");
      c.iters = static_cast<int>(x);
    } else if (key == "seed") {
      if (!parse_integer(value, 0, 9e15, &x)) bad("a non-negative integer");
      c.seed = static_cast<std::uint64_t>(x);
    } else if (key == "dtype") {
      if (value == "float32") {
        c.f64 = false;
      } else if (value == "float64") {
        c.f64 = true;
      } else {
        bad("float32 or float64");
      }
    } else if (key == "backend") {
      if (value != "cpu" && value != "cuda" && value != "reference" && value != "all")
        bad("cpu, cuda, reference or all");
      c.backend = value;
    } else if (key == "init") {
      if (value != "random" && value != "k-means++" && value != "k-means||")
        bad("random, k-means++ or k-means||");
      c.init = value;
    } else {
      usage_error("--case: unknown key '" + key +
                  "' (n, d, k, dtype, iters, backend, seed, init)");
    }
  }
  if (!has_n || !has_d || !has_k) usage_error("--case needs n, d and k: '" + spec + "'");
  if (c.k > c.n) {
    usage_error("--case: k = " + std::to_string(c.k) + " exceeds n = " + std::to_string(c.n));
  }
  if (c.n > INT64_MAX / c.d) usage_error("--case: n * d overflows");
  return c;
}

Options parse_options(int argc, char** argv) {
  Options o;
  for (int i = 0; i < argc; ++i) o.command_line += (i ? " " : "") + std::string(argv[i]);
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    std::string value;
    bool has_inline = false;
    if (flag.rfind("--", 0) == 0) {
      const auto eq = flag.find('=');
      if (eq != std::string::npos) {
        value = flag.substr(eq + 1);
        flag = flag.substr(0, eq);
        has_inline = true;
      }
    }
    auto take_value = [&]() -> std::string {
      if (has_inline) return value;
      if (i + 1 >= argc) usage_error(flag + " needs a value");
      return argv[++i];
    };
    auto no_value = [&]() {
      if (has_inline) usage_error(flag + " takes no value");
    };
    if (flag == "-h" || flag == "--help") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else if (flag == "--grid") {
      no_value();
      o.grid = true;
    } else if (flag == "--quick") {
      no_value();
      o.quick = true;
    } else if (flag == "--case") {
      o.case_spec = parse_case(take_value());
      o.has_case = true;
    } else if (flag == "--json") {
      o.json_path = take_value();
      if (o.json_path.empty()) usage_error("--json needs a file name");
    } else if (flag == "--peers") {
      no_value();
      o.peers = 1;
    } else if (flag == "--no-peers") {
      no_value();
      o.peers = 0;
    } else if (flag == "--peers-script") {
      o.peers_script = take_value();
    } else if (flag == "--python") {
      o.python = take_value();
      if (o.python.empty()) usage_error("--python needs a path");
    } else if (flag == "--threads") {
      const std::string v = take_value();
      double x = 0;
      if (!parse_integer(v, 1, 4096, &x)) usage_error("--threads = '" + v + "' must be in [1, 4096]");
      o.threads = static_cast<int>(x);
    } else if (flag == "--budget") {
      const std::string v = take_value();
      char* end = nullptr;
      o.budget = std::strtod(v.c_str(), &end);
      if (v.empty() || end != v.c_str() + v.size() || !(o.budget > 0) || o.budget > 3600)
        usage_error("--budget = '" + v + "' must be a number of seconds in (0, 3600]");
    } else {
      usage_error("unknown argument '" + std::string(argv[i]) + "'");
    }
  }
  if (o.grid && o.has_case) usage_error("--grid and --case are separate modes: choose one");
  return o;
}

// ------------------------------------------------------------------------- measuring ours

struct Measured {
  bool ok = false;
  std::string error;
  Backend backend = Backend::Auto;
  double s_per_iter = NAN;
  int n_iter = 0;
  int iters = 0;  // max_iter requested
  int repeats = 0;
  double inertia = NAN;
  int n_empty_relocated = 0;
  std::vector<double> sse_history;
  kmeans::Timings phases;  // of the median run
};

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
    if (warm_up) {
      kmeans::Params<T> w = p;
      w.max_iter = std::min(iters, 2);
      kmeans::fit(x, un, ud, w);
    }
    std::vector<std::pair<double, kmeans::Timings>> runs;
    const auto start = Clock::now();
    do {
      const kmeans::Result<T> r = kmeans::fit(x, un, ud, p);
      const double loop = r.timings.assign + r.timings.update;
      runs.emplace_back(loop / std::max(1, r.n_iter), r.timings);
      m.n_iter = r.n_iter;
      m.inertia = r.inertia;
      m.n_empty_relocated = r.n_empty_relocated;
      m.sse_history = r.sse_history;
      m.backend = r.backend;
    } while (static_cast<int>(runs.size()) < max_repeats && seconds_since(start) < budget_s);
    std::sort(runs.begin(), runs.end(),
              [](const auto& a, const auto& b2) { return a.first < b2.first; });
    const auto& mid = runs[(runs.size() - 1) / 2];  // lower median: a run that happened
    m.s_per_iter = mid.first;
    m.phases = mid.second;
    m.repeats = static_cast<int>(runs.size());
    m.ok = true;
  } catch (const kmeans::Error& e) {
    m.error = e.what();
  } catch (const std::bad_alloc&) {
    m.error = "out of host memory";
  }
  return m;
}

Json phases_json(const kmeans::Timings& t) {
  Json j = Json::object();
  j.set("init", t.init).set("assign", t.assign).set("update", t.update)
      .set("final_assign", t.final_assign);
  return j;
}

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

// ------------------------------------------------------------------------- the run

struct Run {
  Options opt;
  int threads = 1;
  bool peers = false;
  std::string python;
  CpuLimits cpu;
  GpuLimits gpu;
  Json rows = Json::array();
};

template <class T>
std::vector<PeerResult> run_peers_on(const Run& run, const T* x, std::int64_t n, std::int64_t d,
                                     const std::vector<T>& init, int k, int iters,
                                     double budget_s) {
  std::vector<PeerResult> out;
  try {
    TempDir dir;
    PeerRequest req;
    req.python = run.python;
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

/// Our row a peer compares with: the same device class.
const Measured* ours_for(const std::vector<Measured>& ours, const std::string& device) {
  const Backend want = device == "cuda" ? Backend::Cuda : Backend::Cpu;
  for (const auto& m : ours)
    if (m.ok && m.backend == want) return &m;
  return nullptr;
}

/// "72.6x", "0.0051x": three significant digits, whatever the magnitude.
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
    std::printf("  note: %s loaded the reference (netlib) BLAS %s\n", names.c_str(), netlib.c_str());
}

// ------------------------------------------------------------------------- classic

void run_classic(Run& run) {
  const std::vector<double> x = classic_blobs(kDataSeed);
  const std::int64_t n = static_cast<std::int64_t>(x.size() / 3), d = 3;
  const std::vector<double> init = take_rows(x.data(), d, distinct_rows(n, kClassicK, kInitSeed));
  const bool quick = run.opt.quick;

  std::printf("\nClassic study: 4 Gaussian blobs in 3-D (n = %lld, d = 3), k = %d, at most %d "
              "iterations, tol = 0, float64, %d threads\n",
              static_cast<long long>(n), kClassicK, kClassicIters, run.threads);
  std::printf("Initial centroids: %d data points drawn with seed %llu (the same for every row)\n\n",
              kClassicK, static_cast<unsigned long long>(kInitSeed));

  std::vector<Measured> ours;
  for (Backend b : available_backends(true)) {
    // The reference loop is ~100x slower: a few repeats give a stable median.
    const bool ref = b == Backend::Reference;
    const int reps = ref ? (quick ? 3 : 5) : (quick ? 21 : 101);
    ours.push_back(measure_ours(x.data(), n, d, init, kClassicK, kClassicIters, b, run.threads,
                                reps, quick ? 1.0 : 3.0, true));
  }
  std::vector<PeerResult> peers;
  if (run.peers)
    peers = run_peers_on(run, x.data(), n, d, init, kClassicK, kClassicIters, quick ? 1.0 : 3.0);

  const Measured* loop = nullptr;
  for (const auto& m : ours)
    if (m.ok && m.backend == Backend::Reference) loop = &m;

  std::printf("%-42s %-6s %11s %12s %10s %7s %15s\n", "row", "device", "s/iter", "vs loop",
              "peer/ours", "n_iter", "final mean SSE");
  std::printf("%-42s %-6s %11s %12s %10s %7s %15s\n", "original study: Python loop (figure)",
              "-", fmt_sci(kStudyLoopSeconds).c_str(), "1.0x *", "-", "-", "-");
  std::printf("%-42s %-6s %11s %12s %10s %7s %15s\n", "original study: NumPy vectorized (figure)",
              "-", fmt_sci(kStudyVectorizedSeconds).c_str(),
              (fmt_fix(kStudyLoopSeconds / kStudyVectorizedSeconds, 1) + "x *").c_str(), "-", "-",
              "-");
  for (const auto& st : {std::make_pair("Python loop", kStudyLoopSeconds),
                         std::make_pair("NumPy vectorized", kStudyVectorizedSeconds)}) {
    Json j = Json::object();
    j.set("mode", "classic").set("kind", "study_figure").set("name", st.first)
        .set("s_per_iter", st.second).set("speedup_vs_study_loop", kStudyLoopSeconds / st.second);
    run.rows.push(j);
  }
  for (const auto& m : ours) {
    const std::string name = "ours: " + backend_label(m.backend);
    Json j = Json::object();
    j.set("mode", "classic").set("kind", "ours").set("backend", kmeans::to_string(m.backend))
        .set("dtype", "float64").set("n", n).set("d", d).set("k", kClassicK)
        .set("iters", kClassicIters);
    if (!m.ok) {
      std::printf("%-42s %-6s  failed: %s\n", name.c_str(),
                  m.backend == Backend::Cuda ? "gpu" : "cpu", m.error.c_str());
      j.set("error", m.error);
      run.rows.push(j);
      continue;
    }
    const double speedup = loop ? loop->s_per_iter / m.s_per_iter : NAN;
    std::printf("%-42s %-6s %11s %12s %10s %7d %15.6f\n", name.c_str(),
                m.backend == Backend::Cuda ? "gpu" : "cpu", fmt_sci(m.s_per_iter).c_str(),
                fmt_ratio(speedup).c_str(), "-", m.n_iter, m.inertia / n);
    std::vector<double> mean_hist;
    for (double s : m.sse_history) mean_hist.push_back(s / n);
    j.set("s_per_iter", m.s_per_iter).set("speedup_vs_reference", speedup)
        .set("n_iter", m.n_iter).set("repeats", m.repeats).set("final_mean_sse", m.inertia / n)
        .set("n_empty_relocated", m.n_empty_relocated)
        .set("mean_sse_history", Json(mean_hist)).set("phases", phases_json(m.phases));
    run.rows.push(j);
  }
  for (const auto& p : peers) {
    const std::string name = "peer: " + peer_label(p) + (p.ok ? " " + p.version : "");
    Json j = peer_json(p);
    j.set("mode", "classic").set("kind", "peer").set("n", n).set("d", d).set("k", kClassicK)
        .set("iters", kClassicIters);
    if (!p.ok) {
      std::printf("%-42s %-6s  not run: %s\n", name.c_str(), "-", p.error.c_str());
      run.rows.push(j);
      continue;
    }
    const Measured* mine = ours_for(ours, p.device);
    const double ratio = mine ? p.s_per_iter / mine->s_per_iter : NAN;
    const double speedup = loop ? loop->s_per_iter / p.s_per_iter : NAN;
    std::printf("%-42s %-6s %11s %12s %10s %7d %15.6f\n", name.c_str(),
                p.device == "cuda" ? "gpu" : "cpu", fmt_sci(p.s_per_iter).c_str(),
                fmt_ratio(speedup).c_str(), fmt_ratio(ratio).c_str(), p.n_iter,
                p.final_sse / n);
    std::vector<double> mean_hist;
    for (double s : p.sse_history) mean_hist.push_back(s / n);
    j.set("speedup_vs_reference", speedup).set("ratio_peer_over_ours", ratio)
        .set("final_mean_sse", p.final_sse / n);
    if (!mean_hist.empty()) j.set("mean_sse_history", Json(mean_hist));
    run.rows.push(j);
  }
  std::printf("\n* relative to the original study's own Python loop; both figures are from the "
              "original study, not measured here.\n");
  std::printf("  s/iter: median over repeats after a warm-up of (assign + update time) / n_iter "
              "(ours), timed inside the script (peers).\n");
  std::printf("  peer/ours: the peer's s/iter over ours on the same device (> 1: we are faster). "
              "Fits stop early when labels stop changing.\n");
  print_blas_notes(peers);
  std::string why;
  if (kmeans::cuda_available(&why)) {
    std::printf("GPU: used (the cuda row above; %s)\n", run.gpu.name.c_str());
  } else {
    std::printf("GPU: not used: %s\n", why.c_str());
  }
}

// ------------------------------------------------------------------------- grid and case

/// One measured point's derived numbers.
struct PointMetrics {
  double points_per_s, gbytes_per_s, pct_bw, gflops, pct_peak;
};

PointMetrics point_metrics(const Run& run, Backend b, std::int64_t n, std::int64_t d, int k,
                           std::size_t elem, double s_per_iter) {
  // The bytes that must move: the data once and the centroids; the work: 3 flops per
  // coordinate per centroid (subtract, multiply, add).
  const double bytes = static_cast<double>(n * d + static_cast<std::int64_t>(k) * d) * elem;
  const double flops = 3.0 * static_cast<double>(n) * k * d;
  const bool gpu = b == Backend::Cuda;
  const double bw_limit = gpu ? run.gpu.peak_gbps : run.cpu.copy_gbps;
  const double peak = elem == 4 ? (gpu ? run.gpu.peak_gflops_f32 : run.cpu.peak_gflops_f32)
                                : (gpu ? run.gpu.peak_gflops_f64 : run.cpu.peak_gflops_f64);
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
              "%8.3f %8.3f\n",
              label.c_str(), f64 ? "float64" : "float32", fmt_count(n).c_str(),
              static_cast<long long>(d), k, m.n_iter, fmt_sci(m.s_per_iter).c_str(),
              pm.points_per_s * 1e-6, pm.gbytes_per_s, pm.pct_bw, pm.gflops, pm.pct_peak,
              m.phases.init, m.phases.assign, m.phases.update, m.phases.final_assign);
  j.set("iters", m.iters).set("n_iter", m.n_iter).set("repeats", m.repeats)
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
                "peer/ours %s (%s, final mean SSE %.6g)\n",
                label.c_str(), f64 ? "float64" : "float32", fmt_count(n).c_str(),
                static_cast<long long>(d), k, p.n_iter, fmt_sci(p.s_per_iter).c_str(),
                pm.points_per_s * 1e-6, pm.gbytes_per_s, pm.pct_bw, pm.gflops, pm.pct_peak,
                fmt_ratio(ratio).c_str(), p.device.c_str(), p.final_sse / n);
    j.set("ratio_peer_over_ours", ratio).set("points_per_s", pm.points_per_s)
        .set("gbytes_per_s", pm.gbytes_per_s).set("pct_bw", pm.pct_bw).set("gflops", pm.gflops)
        .set("pct_peak", pm.pct_peak).set("final_mean_sse", p.final_sse / n);
    run.rows.push(j);
  }
  print_blas_notes(peers);
}

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

void run_grid(Run& run) {
  const bool quick = run.opt.quick;
  const int iters = quick ? 5 : 10;
  const double budget = run.opt.budget > 0 ? run.opt.budget : (quick ? 0.3 : 3.0);
  const auto t0 = Clock::now();
  std::printf("\nScaling grid%s: %d iterations per fit (fewer where the budget of %.3g s per point "
              "needs), tol = 0, %d threads\n",
              quick ? " (quick)" : "", iters, budget, run.threads);
  std::printf("  bytes/iter = (n*d + k*d) * sizeof(T); flops/iter = 3*n*k*d; %%bw and %%peak "
              "against the limits above; phases: seconds of the median fit\n");
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

Json point_json(const char* mode, const std::string& sweep, Backend b, bool f64, std::int64_t n,
                std::int64_t d, int k);

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

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

int bench_main(int argc, char** argv) {
  Run run;
  run.opt = parse_options(argc, argv);
  const Options& o = run.opt;
  run.threads = o.threads > 0 ? o.threads : omp_get_max_threads();
  run.peers = o.peers >= 0 ? o.peers == 1 : !o.grid;

  // Fail before a long run, not after it, when the JSON file cannot be written.
  if (!o.json_path.empty()) {
    const bool existed = std::filesystem::exists(o.json_path);
    const bool writable = static_cast<bool>(std::ofstream(o.json_path, std::ios::app));
    if (!existed) {
      std::error_code ec;
      std::filesystem::remove(o.json_path, ec);
    }
    if (!writable) {
      std::fprintf(stderr, "bench_kmeans: error: cannot write --json file '%s'\n",
                   o.json_path.c_str());
      return 2;
    }
  }

  std::printf("bench_kmeans %s (commit %s, %s)\n", kmeans::version(), KMEANS_BENCH_GIT_COMMIT,
              KMEANS_BENCH_COMPILER);
  // Other processes on the cores make every OpenMP barrier wait for a descheduled thread:
  // say so, since the numbers then measure the machine's load as much as the code.
  const std::string load_start = load_average();
  if (!load_start.empty()) {
    const double load1 = std::atof(load_start.c_str());
    std::printf("load average %s%s\n", load_start.c_str(),
                load1 > 0.5 ? " (other processes are running: multi-threaded timings will be "
                              "noisy)"
                            : "");
  }
  run.cpu = measure_cpu(run.threads, o.quick || (!o.grid && !o.has_case));
  run.gpu = measure_gpu(o.quick);
  print_limits(run.cpu, run.gpu);
  if (run.peers) {
    std::string log;
    run.python = resolve_python(o.python, &log);
    std::printf("peers: %s via %s, python %s\n", "scikit-learn, FAISS, PyTorch",
                o.peers_script.c_str(), log.c_str());
  }

  if (o.grid) {
    run_grid(run);
  } else if (o.has_case) {
    if (o.case_spec.f64)
      run_case_typed<double>(run, o.case_spec);
    else
      run_case_typed<float>(run, o.case_spec);
  } else {
    run_classic(run);
  }

  if (!o.json_path.empty()) {
    Json doc = Json::object();
    doc.set("tool", "bench_kmeans")
        .set("library_version", kmeans::version())
        .set("git_commit", KMEANS_BENCH_GIT_COMMIT)
        .set("compiler", KMEANS_BENCH_COMPILER)
        .set("date_utc", utc_now())
        .set("command", o.command_line)
        .set("mode", o.grid ? "grid" : o.has_case ? "case" : "classic")
        .set("quick", o.quick)
        .set("threads", run.threads)
        .set("load_average_start", load_start)
        .set("load_average_end", load_average())
        .set("machine", machine_json(run.cpu, run.gpu))
        .set("rows", run.rows);
    std::ofstream out(o.json_path, std::ios::trunc);
    out << doc.dump(1) << '\n';
    if (!out) {
      std::fprintf(stderr, "bench_kmeans: error: writing '%s' failed\n", o.json_path.c_str());
      return 1;
    }
    std::printf("\nwrote %s\n", o.json_path.c_str());
  }
  return 0;
}

}  // namespace
}  // namespace bench

int main(int argc, char** argv) {
  try {
    return bench::bench_main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_kmeans: error: %s\n", e.what());
    return 1;
  }
}
