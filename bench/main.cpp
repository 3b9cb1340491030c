// SPDX-License-Identifier: Apache-2.0
// bench_kmeans: parses the command line, measures the machine and runs the chosen mode (the
// classic study, --grid or --case), then writes the --json file.
#include <omp.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <string>

#include "measure.hpp"

#include "bench_commit.h"  // KMEANS_BENCH_GIT_COMMIT, written at build time
#ifndef KMEANS_BENCH_GIT_COMMIT
#define KMEANS_BENCH_GIT_COMMIT "unknown"
#endif
#ifndef KMEANS_BENCH_COMPILER
#define KMEANS_BENCH_COMPILER "unknown"
#endif

namespace bench {
namespace {

[[noreturn]] void usage_error(const std::string& msg) {
  std::fprintf(stderr, "bench_kmeans: error: %s (see --help)\n", msg.c_str());
  std::exit(2);
}

const char* kUsage =
    "usage: bench_kmeans [--grid [--quick] | --case SPEC | --cpu-peers [--quick] |\n"
    "                     --minibatch [--quick] | --elkan [--quick]] [options]\n"
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
    "                         [,stream=1]: the data streamed from host memory through the GPU\n"
    "                         (backend=cuda): time per pass, host-to-device rate vs pinned copy\n"
    "  --scaling              kmeans::mpi under mpiexec for 1..4 ranks: per pass the compute\n"
    "                         and communication time and the bytes per rank (--scaling --help)\n"
    "  --cpu-peers            our cpu backend against every CPU peer (scikit-learn,\n"
    "                         scikit-learn-intelex, FAISS, PyTorch) on a fixed list of shapes, each\n"
    "                         shape's share of its limit, and the busy-core case (another process\n"
    "                         spinning: default threads over 1 thread); --quick: the first six\n"
    "  --minibatch            time to inertia: Lloyd against mini-batch k-means (batch 1024\n"
    "                         and 8192), ours and scikit-learn's MiniBatchKMeans / KMeans, from\n"
    "                         the same centroids on 1e6 x 16 float32 blobs, k = 256 (minutes);\n"
    "                         --quick: 1e5 x 16, k = 64\n"
    "  --elkan                whole fits with algorithm = elkan and auto against lloyd on the cpu\n"
    "                         backend (k >= 256 clustered, Auto's boundaries), interleaved;\n"
    "                         --quick: smaller n\n"
    "options:\n"
    "  --json FILE            write every row and a machine description as JSON\n"
    "  --peers / --no-peers   run the peers in the same run (default: on,\n"
    "                         except for --grid)\n"
    "  --peers-script PATH    peers.py to run (default: " KMEANS_BENCH_PEERS_SCRIPT ")\n"
    "  --python PATH          interpreter for the peers (default: $KMEANS_PYTHON, the source\n"
    "                         tree's .venv/bin/python, python3 or /usr/bin/python3, the first\n"
    "                         that imports numpy; a peer it lacks runs with /usr/bin/python3)\n"
    "  --threads N            CPU threads for our backends and the peers (default: OpenMP's)\n"
    "  --budget SECONDS       time per grid point and per peer for repeats (default 3, quick 0.3)\n"
    "  -h, --help             this text\n";

// ------------------------------------------------------------------------- options

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
    } else if (key == "stream") {
      if (value != "0" && value != "1") bad("0 or 1");
      c.stream = value == "1";
    } else if (key == "init") {
      if (value != "random" && value != "k-means++" && value != "k-means||")
        bad("random, k-means++ or k-means||");
      c.init = value;
    } else {
      usage_error("--case: unknown key '" + key +
                  "' (n, d, k, dtype, iters, backend, seed, init, stream)");
    }
  }
  if (!has_n || !has_d || !has_k) usage_error("--case needs n, d and k: '" + spec + "'");
  if (c.k > c.n) {
    usage_error("--case: k = " + std::to_string(c.k) + " exceeds n = " + std::to_string(c.n));
  }
  if (c.n > INT64_MAX / c.d) usage_error("--case: n * d overflows");
  if (c.stream && c.backend != "cuda") usage_error("--case: stream=1 needs backend=cuda");
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
    } else if (flag == "--cpu-peers") {
      o.cpu_peers = true;
    } else if (flag == "--minibatch") {
      no_value();
      o.minibatch = true;
    } else if (flag == "--elkan") {
      no_value();
      o.elkan = true;
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
  if (int(o.grid) + int(o.has_case) + int(o.cpu_peers) + int(o.minibatch) + int(o.elkan) > 1)
    usage_error("--grid, --case, --cpu-peers, --minibatch and --elkan are separate modes: choose one");
  return o;
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
  // --scaling: its own runs under mpiexec (scaling_driver.cpp), nothing else.
  for (int i = 1; i < argc; ++i)
    if (std::string(argv[i]) == "--scaling") return run_scaling(argc, argv);
  Run run;
  run.opt = parse_options(argc, argv);
  const Options& o = run.opt;
  run.threads = o.threads > 0 ? o.threads : omp_get_max_threads();
  run.peers = o.peers >= 0 ? o.peers == 1 : !o.grid && !o.elkan;

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
  run.cpu = measure_cpu(run.threads, o.quick || o.minibatch || o.elkan ||
                                         (!o.grid && !o.has_case && !o.cpu_peers));
  run.gpu = measure_gpu(o.quick);
  print_limits(run.cpu, run.gpu);
  if (run.peers) {
    std::string log;
    run.python = resolve_python(o.python, &log);
    run.fallback_python = fallback_python(run.python);
    std::printf("peers: %s via %s; python: %s%s\n",
                "scikit-learn, scikit-learn-intelex, FAISS, PyTorch", o.peers_script.c_str(),
                log.c_str(),
                run.fallback_python.empty()
                    ? ""
                    : ("; a peer it lacks: " + run.fallback_python).c_str());
  }

  if (o.minibatch) {
    run_minibatch(run);
  } else if (o.cpu_peers) {
    run_cpu_peers(run);
  } else if (o.elkan) {
    run_elkan(run);
  } else if (o.grid) {
    run_grid(run);
  } else if (o.has_case) {
    run_case(run);
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
        .set("mode", o.minibatch ? "minibatch" : o.cpu_peers ? "cpu-peers" : o.elkan ? "elkan"
                     : o.grid ? "grid" : o.has_case ? "case" : "classic")
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
