// SPDX-License-Identifier: Apache-2.0
// Shared by bench_kmeans's modes: the options, the Run state, timing our backends, running the
// peers and printing/recording a measured row.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "bench_util.hpp"
#include "kmeans/kmeans.hpp"
#include "machine.hpp"
#include "peers.hpp"

#ifndef KMEANS_BENCH_PEERS_SCRIPT
#define KMEANS_BENCH_PEERS_SCRIPT "bench/peers.py"
#endif

namespace bench {

constexpr std::uint64_t kDataSeed = 20240611;
constexpr std::uint64_t kInitSeed = 7;
// The reference backend is a plain triple loop: run it only where n*k*d stays this small.
constexpr double kReferenceMaxWork = 5e7;
// Share of MemAvailable a grid point may use for its data and the library's buffers.
constexpr double kHostMemoryShare = 0.6;
constexpr double kDeviceMemoryShare = 0.7;


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
  bool stream = false;  ///< stream=1: the streamed CUDA fit from host memory (gpu_stream.cpp)
};

struct Options {
  bool grid = false;
  bool cpu_peers = false;
  bool minibatch = false;  ///< --minibatch: time to inertia (minibatch.cpp)
  bool elkan = false;  ///< --elkan
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

// ------------------------------------------------------------------------- the run

struct Run {
  Options opt;
  int threads = 1;
  bool peers = false;
  std::string python;
  std::string fallback_python;  ///< for a peer `python` lacks (fallback_python())
  CpuLimits cpu;
  GpuLimits gpu;
  Json rows = Json::array();
};

/// The modes (classic.cpp, grid.cpp, case.cpp, cpu_peers.cpp, minibatch.cpp).
void run_classic(Run& run);
/// --scaling (scaling_driver.cpp): kmeans::mpi under mpiexec; its own options and output.
int run_scaling(int argc, char** argv);
void run_grid(Run& run);
void run_case(Run& run);
void run_cpu_peers(Run& run);
void run_minibatch(Run& run);
void run_elkan(Run& run);  ///< elkan.cpp
/// --case ...,stream=1 (gpu_stream.cpp): the streamed CUDA fit of x (host memory) from `init`,
/// its time per pass and host-to-device rate against the measured pinned-copy rate.
template <class T>
void run_stream_case(Run& run, const CaseSpec& c, const std::vector<T>& x,
                     const std::vector<T>& init);

// ------------------------------------------------------------------------- measuring ours

struct Measured {
  bool ok = false;
  std::string error;
  kmeans::Backend backend = kmeans::Backend::Auto;
  double s_per_iter = NAN;  // the lower median of `runs`: a run that happened
  std::vector<double> runs;  // s/iter of each timed fit, in run order
  Spread spread;
  int n_iter = 0;
  int iters = 0;  // max_iter requested
  int repeats = 0;
  double inertia = NAN;
  int n_empty_relocated = 0;
  std::vector<double> sse_history;
  kmeans::Timings phases;  // of the median run
  double setup_cold_s = NAN;  // the first fit's bind + init: engine made (GPU: buffers, graphs)
  double setup_warm_s = NAN;  // the median run's bind + init: the engine reused
};

/// Repeats fit() (a callable returning the fit's const kmeans::Result<T>&) until max_repeats
/// fits or budget_s seconds, then fills m from the lower-median fit by (assign + update) /
/// n_iter: s_per_iter, its phases and warm set-up, every run's figure, the spread, and the last
/// fit's n_iter, inertia, relocations, SSE history and backend; setup_cold_s from the first fit
/// when still unset.
template <class T, class Fit>
void time_fits(Measured& m, int max_repeats, double budget_s, Fit&& fit) {
  std::vector<std::pair<double, kmeans::Timings>> runs;
  const auto start = Clock::now();
  do {
    const kmeans::Result<T>& r = fit();
    if (std::isnan(m.setup_cold_s)) m.setup_cold_s = r.timings.init;
    runs.emplace_back((r.timings.assign + r.timings.update) / std::max(1, r.n_iter), r.timings);
    m.runs.push_back(runs.back().first);
    m.n_iter = r.n_iter;
    m.inertia = r.inertia;
    m.n_empty_relocated = r.n_empty_relocated;
    m.sse_history = r.sse_history;
    m.backend = r.backend;
  } while (static_cast<int>(runs.size()) < max_repeats && seconds_since(start) < budget_s);
  std::sort(runs.begin(), runs.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  const auto& mid = runs[(runs.size() - 1) / 2];  // lower median: a run that happened
  m.s_per_iter = mid.first;
  m.phases = mid.second;
  m.setup_warm_s = mid.second.init;
  m.repeats = static_cast<int>(runs.size());
  m.spread = spread_of(m.runs, m.s_per_iter);
}

/// Times fits with tol = 0 and the given initial centroids, all on one kmeans::KMeans object
/// (so the engines, and on the GPU the buffers and graphs, are made once, by the first fit,
/// and reused: the steady state). Per iteration = (assign + update) / n_iter of a fit:
/// set-up (bind + init, cold and warm) and the final assignment are reported apart.
template <class T>
Measured measure_ours(const T* x, std::int64_t n, std::int64_t d, const std::vector<T>& init,
                      int k, int iters, kmeans::Backend b, int threads, int max_repeats,
                      double budget_s, bool warm_up);

Json phases_json(const kmeans::Timings& t);

/// Writes the data and initial centroids to a temporary directory and runs every peer on them.
template <class T>
std::vector<PeerResult> run_peers_on(const Run& run, const T* x, std::int64_t n, std::int64_t d,
                                     const std::vector<T>& init, int k, int iters,
                                     double budget_s);

/// Our row a peer compares with: the same device class.
const Measured* ours_for(const std::vector<Measured>& ours, const std::string& device);

// ------------------------------------------------------------------------- printing

/// "72.6x", "0.0051x": three significant digits, whatever the magnitude.
std::string fmt_ratio(double r);

std::string peer_label(const PeerResult& p);

std::vector<kmeans::Backend> available_backends(bool with_reference);

std::string backend_label(kmeans::Backend b);

/// One line naming the peers that ran on Debian's reference (netlib) BLAS: their distance
/// GEMMs are then far slower than with OpenBLAS or MKL, which the ratios must not hide.
void print_blas_notes(const std::vector<PeerResult>& peers);

/// CPU threads one of our backends was given: the reference loop runs one, cuda none (0); the
/// cpu backend uses one where a pass is too small to share.
int ours_threads(const Run& run, kmeans::Backend b);

/// "5 reps 1.10e-04..1.30e-04": a row's spread in a few characters.
std::string fmt_spread(const Spread& s);

/// The BLAS a peer ran on ("OpenBLAS 0.3.21", "netlib reference BLAS"), never empty.
std::string peer_blas(const PeerResult& p);

/// Empty when the peer's final SSE matches ours (relative 1e-5); else how it differs and the
/// reason we know of (FAISS repairs empty clusters by splitting one, and works in float32).
std::string sse_difference(const PeerResult& p, const Measured* ours, bool f64, std::int64_t n);

/// Records sse_difference in the JSON row and prints it under the row, indented.
void note_sse_difference(Json& j, const PeerResult& p, const Measured* ours, bool f64,
                         std::int64_t n, const char* indent);

/// One measured point's derived numbers.
struct PointMetrics {
  double points_per_s, gbytes_per_s, pct_bw, gflops, pct_peak;
};

PointMetrics point_metrics(const Run& run, kmeans::Backend b, std::int64_t n, std::int64_t d,
                           int k, std::size_t elem, double s_per_iter);

/// The column header of the grid and case tables.
void print_point_header();

Json point_json(const char* mode, const std::string& sweep, kmeans::Backend b, bool f64,
                std::int64_t n, std::int64_t d, int k);

/// Prints one of our grid/case rows and appends it to run.rows.
void print_and_record(Run& run, Json j, const Measured& m, bool f64, std::int64_t n,
                      std::int64_t d, int k);

/// Prints the peers' grid/case rows (with their ratio to ours) and appends them to run.rows.
void print_and_record_peers(Run& run, const char* mode, const std::string& sweep,
                            const std::vector<PeerResult>& peers,
                            const std::vector<Measured>& ours, bool f64, std::int64_t n,
                            std::int64_t d, int k);

}  // namespace bench
