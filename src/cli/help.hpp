// SPDX-License-Identifier: Apache-2.0
// The usage and --help texts of the `kmeans` command-line tool.
#pragma once

#include <string>

namespace kmeans_cli {

/// Printed on stderr by a bare `kmeans` (exit code 2).
inline constexpr char kShortUsage[] =
    "usage: kmeans COMMAND DATA [options]   (DATA: a .npy or .csv file, or - for standard input)\n"
    "\n"
    "  kmeans fit DATA -k K [--centroids-out PATH] [--labels-out PATH] [--model-out PATH]\n"
    "                                                                    cluster the rows\n"
    "  kmeans predict DATA --centroids PATH|--model PATH [--labels-out PATH]  nearest centroid\n"
    "  kmeans transform DATA --centroids PATH|--model PATH [--out PATH]  distances to centroids\n"
    "  kmeans score DATA --centroids PATH|--model PATH                   negative inertia\n"
    "\n"
    "Most used options: -k/--k K, --init METHOD|FILE, --n-init N, --seed S, --backend B, --json\n"
    "Run `kmeans --help` for more, `kmeans COMMAND --help` for the options of a command.\n";

inline constexpr char kMainHelp[] =
    "usage: kmeans fit DATA --k K [options]\n"
    "       kmeans predict DATA --centroids PATH|--model PATH [options]\n"
    "       kmeans transform DATA --centroids PATH|--model PATH [options]\n"
    "       kmeans score DATA --centroids PATH|--model PATH [options]\n"
    "       kmeans --version | --help\n"
    "\n"
    "Lloyd k-means on .npy (float32/float64, 2-D, C order) and .csv files (comma-separated,\n"
    "optional header row). `fit` clusters, `predict` labels rows with their nearest centroid,\n"
    "`transform` writes the distances to every centroid, `score` prints the negative inertia.\n"
    "DATA may be - to read standard input (a .npy or CSV text, told apart by the content).\n"
    "`fit --model-out m.kmeans` saves the fitted model (a JSON file); `--model m.kmeans` serves\n"
    "predict, transform and score in place of --centroids.\n"
    "Run `kmeans COMMAND --help` for the options of each.\n"
    "\n"
    "Exit codes: 0 success; 1 bad data or run failure (unreadable or malformed file, NaN/Inf,\n"
    "k > n, shape mismatch, bad sample weights, unavailable backend, write error); 2 bad command\n"
    "line (unknown flag, missing or malformed value, k <= 0, n-init <= 0, negative max-iter,\n"
    "batch-size <= 0, an output that is also an input, ...). Errors are one line on stderr,\n"
    "`kmeans: error: ...`, and no output file is written. Ctrl-C (SIGINT), SIGTERM and SIGHUP\n"
    "remove the temporary files of outputs being written. `kmeans` alone prints a short usage\n"
    "(exit code 2).\n";

inline constexpr char kFitHelp[] =
    "usage: kmeans fit DATA --k K [options]\n"
    "\n"
    "Clusters the rows of DATA (.npy float32/float64 2-D C-order, or .csv) into K clusters.\n"
    "Defaults follow scikit-learn's KMeans(algorithm=\"lloyd\", n_init=1).\n"
    "\n"
    "  -k, --k K              number of clusters, 1 <= K <= n (may be left out with an init file:\n"
    "                         K is then its number of rows)\n"
    "  --init METHOD          k-means++ (default; also kmeans++), random, k-means|| (also kmeans||\n"
    "                         or k-means-parallel: scalable k-means, Bahmani et al.), or a\n"
    "                         .npy/.csv file of K x d initial centroids\n"
    "  --n-init N             initialisations to run, N >= 1 (default 1); the fit with the lowest\n"
    "                         inertia is kept, run i uses seed S + i (ignored, with a warning, for\n"
    "                         an init file, which runs once: the summary then says n_init 1)\n"
    "  --max-iter N           maximum Lloyd iterations, N >= 0 (default 300)\n"
    "  --tol T                relative tolerance on the centroid shift, T >= 0 (default 1e-4;\n"
    "                         0 with --batch-size, as scikit-learn's MiniBatchKMeans)\n"
    "  --batch-size N         mini-batch k-means (scikit-learn's MiniBatchKMeans): each step\n"
    "                         moves the centroids by a batch of N >= 1 rows drawn from the seed\n"
    "                         (N > n: n); --max-iter then counts epochs (max-iter * n / N steps),\n"
    "                         --tol bounds a step's squared centroid change; the labels and\n"
    "                         inertia are over all of DATA (default: Lloyd's algorithm)\n"
    "  --max-no-improvement N with --batch-size: stop after N steps without improvement of the\n"
    "                         smoothed batch inertia, N >= 0, 0 = never (default 10)\n"
    "  --reassignment-ratio R with --batch-size: move centroids whose count is below R times the\n"
    "                         largest to random batch rows, R >= 0, 0 = never (default 0.01)\n"
    "  --seed S               seed of the initialisation, 0 <= S < 2^64 (default 0)\n"
    "  --sample-weight PATH   n non-negative weights, not all 0: a 1-D (n,) or (n, 1) .npy, or a\n"
    "                         .csv with one value per line; converted to the fit dtype\n"
    "  --algorithm A          lloyd (default), elkan (bound-pruned: the same labels, centroids\n"
    "                         and inertia, faster where bounds prune; the cpu backend only, the\n"
    "                         others run lloyd and warn) or auto (elkan where measured faster)\n"
    "  --backend B            auto (default), cuda, cpu or reference\n"
    "  --dtype T              float32 or float64 (default: the .npy's dtype; float64 for .csv)\n"
    "  --centroids-out PATH   write the K x d centroids (.npy or .csv, in the fit dtype)\n"
    "  --labels-out PATH      write the n labels (.npy int32 or .csv)\n"
    "  --model-out PATH       write the fitted model: one JSON file (e.g. m.kmeans) with the\n"
    "                         centroids, dtype, params, inertia, n_iter, backend, ... (not .npy\n"
    "                         or .csv); read it with --model, KMeans::load or kmeans.KMeans.load\n"
    "  --threads N            CPU threads, 0 <= N <= 1024, 0 = all (default 0; the OpenMP default,\n"
    "                         at most 1024)\n"
    "  --verbose              one line per Lloyd iteration on stderr (of every --n-init run):\n"
    "                         `kmeans: iteration I: sse E, center shift S, T s` with I from 1,\n"
    "                         E the SSE of the iteration's assignment, S the total squared\n"
    "                         centroid movement; prefixed `init R/N, ` when N > 1\n"
    "  --header, --no-header  DATA (.csv) has / has no header line (default: line 1 is a header\n"
    "                         only if none of its fields is a number)\n"
    "  --json                 print one JSON object instead of the summary: algorithm (lloyd,\n"
    "                         elkan, auto or minibatch, which adds a \"minibatch\" object: batch_size,\n"
    "                         max_no_improvement, reassignment_ratio, n_steps), n, d, k, init, n_init,\n"
    "                         n_iter, converged, inertia, sse_history, n_empty_relocated,\n"
    "                         warnings, timings, seconds, ...\n"
    "  --help                 this text\n"
    "\n"
    "Warnings (e.g. fewer distinct clusters than K) go to stderr as `kmeans: warning: ...`, or\n"
    "into the JSON's \"warnings\" array with --json. stdout holds only the summary or the JSON.\n"
    "Outputs are written only after the fit succeeded (via temporary files renamed into place).\n"
    "Exit codes: 0 success; 1 bad data or run failure; 2 bad command line.\n";

inline constexpr char kPredictHelp[] =
    "usage: kmeans predict DATA --centroids PATH|--model PATH [options]\n"
    "\n"
    "Labels each row of DATA with its nearest centroid (ties to the lowest index).\n"
    "\n"
    "  --centroids PATH       K x d centroids (.npy or .csv), e.g. from `kmeans fit --centroids-out`\n"
    "  --model PATH           a model file from `kmeans fit --model-out` (instead of\n"
    "                         --centroids): its centroids, in its dtype (DATA is converted to it;\n"
    "                         a different --dtype is an error)\n"
    "  --backend B            auto (default), cuda, cpu or reference\n"
    "  --dtype T              float32 or float64 (default: DATA's dtype; float64 for .csv)\n"
    "  --labels-out PATH      write the n labels (.npy int32 or .csv)\n"
    "  --header, --no-header  DATA (.csv) has / has no header line (default: line 1 is a header\n"
    "                         only if none of its fields is a number)\n"
    "  --json                 print one JSON object instead of the summary\n"
    "  --help                 this text\n"
    "\n"
    "Exit codes: 0 success; 1 bad data or run failure; 2 bad command line.\n";

inline constexpr char kTransformHelp[] =
    "usage: kmeans transform DATA --centroids PATH|--model PATH [options]\n"
    "\n"
    "Euclidean (not squared) distances of each row of DATA to each centroid, as scikit-learn's\n"
    "KMeans.transform: an n x K matrix in the data dtype.\n"
    "\n"
    "  --centroids PATH       K x d centroids (.npy or .csv), e.g. from `kmeans fit --centroids-out`\n"
    "  --model PATH           a model file from `kmeans fit --model-out` (instead of\n"
    "                         --centroids): its centroids, in its dtype (DATA is converted to it;\n"
    "                         a different --dtype is an error)\n"
    "  --out PATH             write the n x K distances (.npy or .csv). Without it, the summary\n"
    "                         shows the first 5 rows only and nothing is written\n"
    "  --backend B            auto (default), cuda, cpu or reference\n"
    "  --dtype T              float32 or float64 (default: DATA's dtype; float64 for .csv)\n"
    "  --header, --no-header  DATA (.csv) has / has no header line (default: line 1 is a header\n"
    "                         only if none of its fields is a number)\n"
    "  --json                 print one JSON object (n, d, k, out, ...; never the matrix)\n"
    "  --help                 this text\n"
    "\n"
    "Exit codes: 0 success; 1 bad data or run failure; 2 bad command line.\n";

inline constexpr char kScoreHelp[] =
    "usage: kmeans score DATA --centroids PATH|--model PATH [options]\n"
    "\n"
    "The score of DATA against the centroids as scikit-learn's KMeans.score: the negative\n"
    "(weighted) sum of squared distances of each row to its nearest centroid.\n"
    "\n"
    "  --centroids PATH       K x d centroids (.npy or .csv), e.g. from `kmeans fit --centroids-out`\n"
    "  --model PATH           a model file from `kmeans fit --model-out` (instead of\n"
    "                         --centroids): its centroids, in its dtype (DATA is converted to it;\n"
    "                         a different --dtype is an error)\n"
    "  --sample-weight PATH   n non-negative weights, not all 0: a 1-D (n,) or (n, 1) .npy, or a\n"
    "                         .csv with one value per line\n"
    "  --backend B            auto (default), cuda, cpu or reference\n"
    "  --dtype T              float32 or float64 (default: DATA's dtype; float64 for .csv)\n"
    "  --header, --no-header  DATA (.csv) has / has no header line (default: line 1 is a header\n"
    "                         only if none of its fields is a number)\n"
    "  --json                 print one JSON object: score, n, d, k, ...\n"
    "  --help                 this text\n"
    "\n"
    "Exit codes: 0 success; 1 bad data or run failure; 2 bad command line.\n";

/// The --help text of a command ("fit", ...), or of the tool for anything else.
inline const char* help_of(const std::string& command) {
  if (command == "fit") return kFitHelp;
  if (command == "predict") return kPredictHelp;
  if (command == "transform") return kTransformHelp;
  if (command == "score") return kScoreHelp;
  return kMainHelp;
}

}  // namespace kmeans_cli
