// SPDX-License-Identifier: Apache-2.0
// Runs the peer implementations (scikit-learn, FAISS, PyTorch) through bench/peers.py on the
// same data, initial centroids, iteration count and thread count as our own rows.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bench_util.hpp"

namespace bench {

/// One peer's report (peers.py prints it as one JSON line).
struct PeerResult {
  std::string name;              ///< "sklearn", "sklearnex", "faiss", "faiss-gpu", "torch".
  std::string python;            ///< The interpreter that produced this row.
  bool ok = false;
  std::string error;             ///< Why there is no number (missing module, crash, ...).
  std::string device;            ///< "cpu" or "cuda".
  std::string version;
  std::string timing_how;        ///< How peers.py measured the time per iteration.
  double s_per_iter = 0;         ///< The median of s_per_iter_runs.
  std::vector<double> s_per_iter_runs;  ///< One per timed repeat, in run order.
  int repeats = 0;
  int threads = 0;               ///< Threads the peer ran with (as the peer itself reports).
  int n_iter = 0;
  double final_sse = 0;          ///< Sum of squared distances to the returned centroids.
  std::vector<double> sse_history;  ///< Per-iteration SSE sums when the peer exposes them.
  std::vector<std::string> blas;  ///< BLAS/LAPACK libraries the peer process had loaded.
  std::string blas_name;         ///< A reader's name for them: "OpenBLAS 0.3.21", ...
};

struct PeerRequest {
  std::string python;            ///< Interpreter (resolve_python).
  std::string fallback_python;   ///< Tried for a peer whose module `python` lacks (or empty).
  bool cpu_only = false;         ///< Leave out the GPU peers.
  std::string script;            ///< Path of peers.py.
  std::string data_path;         ///< n x d .npy (float32 or float64).
  std::string init_path;         ///< k x d .npy, same dtype.
  int iters = 0;
  int threads = 1;
  double budget_s = 10;          ///< Time each peer may spend on repeats (at least one run).
  int timeout_s = 900;           ///< Hard limit per peer process (when `timeout` exists).
};

/// Single-quotes a word for /bin/sh.
std::string shell_quote(const std::string& s);

/// Runs a shell command; returns its stdout and sets *status to the exit status (-1 when it
/// could not be started or did not exit normally).
std::string run_command(const std::string& cmd, int* status);

/// The peers in their display order.
const std::vector<std::string>& peer_names();

/// The first of (explicit | $KMEANS_PYTHON, the source tree's .venv/bin/python, python3 on PATH,
/// /usr/bin/python3) that can import numpy; an explicit choice is kept even when it cannot. Empty when none works; `log` says in
/// words which interpreter is used and why the ones before it were passed over.
std::string resolve_python(const std::string& explicit_python, std::string* log);

/// /usr/bin/python3 when it differs from `python` and imports numpy (Debian's packages: the
/// fallback for a peer the chosen interpreter lacks), else empty.
std::string fallback_python(const std::string& python);

/// Runs every peer in its own process (a crash or a clashing OpenMP runtime in one cannot take
/// the others down). Never throws for a peer's failure: its row carries the error instead.
std::vector<PeerResult> run_peers(const PeerRequest& req);

Json peer_json(const PeerResult& p);

}  // namespace bench
