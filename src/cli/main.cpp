// SPDX-License-Identifier: Apache-2.0
// The `kmeans` command-line tool: fit, predict, transform and score on .npy / .csv files, a JSON
// or human summary on stdout, and exactly one `kmeans: error: ...` line on stderr for bad input.
// The command line is parsed in options.cpp, the help texts are in help.hpp.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <limits>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <vector>

#if !defined(_WIN32)
#include <unistd.h>
#endif

#include "io/io.hpp"
#include "kmeans/kmeans.hpp"

#include "cli/help.hpp"
#include "cli/json.hpp"
#include "cli/mpi_fit.hpp"
#include "cli/options.hpp"
#include "cli/fit_json.hpp"
#include "cli/stream_fit.hpp"

namespace {

using namespace kmeans_cli;
using kmeans::io::Matrix;

// Exit codes (documented in --help).
constexpr int kExitOk = 0;
constexpr int kExitDataError = 1;  ///< The files, the data or the run failed.
constexpr int kExitUsage = 2;      ///< The command line itself is wrong; nothing was read.

// ---------------------------------------------------------------------------------------------
// Data checks

template <class T>
std::vector<T>& values(Matrix& m);
template <>
std::vector<float>& values<float>(Matrix& m) {
  return m.f32;
}
template <>
std::vector<double>& values<double>(Matrix& m) {
  return m.f64;
}

std::string shape_of(const Matrix& m) {
  return "(" + std::to_string(m.rows) + ", " + std::to_string(m.cols) + ")";
}

/// Rejects empty matrices and NaN/Inf, naming the file and the first bad (row, column).
template <class T>
void check_matrix(Matrix& m, const std::string& path) {
  if (m.rows == 0) throw kmeans::Error(path + ": has n = 0 rows (shape " + shape_of(m) + ")");
  if (m.cols == 0) throw kmeans::Error(path + ": has d = 0 features (shape " + shape_of(m) + ")");
  const std::vector<T>& x = values<T>(m);
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (!std::isfinite(x[i])) {
      const auto row = static_cast<std::int64_t>(i) / m.cols;
      const auto col = static_cast<std::int64_t>(i) % m.cols;
      throw kmeans::Error(path + ": " + (std::isnan(x[i]) ? "NaN" : "Inf") + " at row " +
                          std::to_string(row) + ", column " + std::to_string(col) +
                          " (0-based data row and column)");
    }
  }
}

/// All of standard input, for DATA "-"; a terminal is refused rather than waited on.
std::string read_stdin() {
#if !defined(_WIN32)
  if (::isatty(STDIN_FILENO)) {
    throw kmeans::Error(std::string("DATA - reads standard input, but it is a terminal: pipe or "
                                    "redirect a .npy or .csv into it"));
  }
#endif
  std::string bytes;
  char buf[1 << 16];
  for (;;) {
    const std::size_t got = std::fread(buf, 1, sizeof(buf), stdin);
    bytes.append(buf, got);
    if (got < sizeof(buf)) break;
  }
  if (std::ferror(stdin)) throw kmeans::Error(std::string(kStdinName) + ": read error");
  return bytes;
}

/// Reads a matrix ("-": standard input, by content) and converts it to the requested dtype;
/// errors name the file. `header`: whether a .csv's first line is a header.
Matrix load(const std::string& path, std::optional<Dtype> dtype,
            kmeans::io::CsvHeader header = kmeans::io::CsvHeader::Auto) {
  Matrix m = path == kStdin ? kmeans::io::read_matrix_bytes(read_stdin(), kStdinName, header)
                            : kmeans::io::read_matrix(path, header);
  if (dtype) {
    try {
      kmeans::io::convert(m, *dtype);
    } catch (const kmeans::Error& e) {
      throw kmeans::Error((path == kStdin ? std::string(kStdinName) : path) + ": " + e.what());
    }
  }
  return m;
}

/// Reads --sample-weight: n values converted to the data's dtype. Negative, NaN and all-zero
/// weights are left to the library, whose message run_with_weights() ties to the file.
Matrix load_weights(const std::string& path, const Matrix& data, const std::string& data_path) {
  Matrix w = kmeans::io::read_vector(path);
  try {
    kmeans::io::convert(w, data.dtype);
  } catch (const kmeans::Error& e) {
    throw kmeans::Error(path + ": " + e.what());
  }
  if (w.rows != data.rows) {
    throw kmeans::Error("--sample-weight " + path + " has " + std::to_string(w.rows) +
                        " values but " + data_path + " has n = " + std::to_string(data.rows) +
                        " rows");
  }
  return w;
}

/// Runs a library call that reads the sample weights; a complaint about them names the file.
template <class F>
auto run_with_weights(const std::string& weights_path, F&& call) {
  try {
    return call();
  } catch (const kmeans::Error& e) {
    const std::string msg = e.what();
    if (weights_path.empty() || msg.rfind("sample_weight", 0) != 0) throw;
    throw kmeans::Error("--sample-weight " + weights_path + ": " + msg);
  }
}

/// The centroids of --model (a model file of the data's dtype: run() converts DATA to it) as a
/// matrix, checked against the data's d; `metric` receives the model's metric (a different
/// --metric is an error).
template <class T>
Matrix model_centroids(const Options& o, const Matrix& data, kmeans::Metric& metric) {
  const kmeans::KMeans<T> model = kmeans::KMeans<T>::load(o.model_in);
  metric = model.params().metric;
  if (o.metric && *o.metric != metric) {
    throw kmeans::Error(std::string("--metric ") + kmeans::to_string(*o.metric) + " but --model " +
                        o.model_in + " is a " + kmeans::to_string(metric) +
                        " model (leave --metric out to use the model's)");
  }
  const std::vector<T>& cent = model.result().centroids;
  Matrix c;
  c.dtype = data.dtype;
  c.cols = static_cast<std::int64_t>(model.n_features());
  c.rows = static_cast<std::int64_t>(cent.size()) / c.cols;
  values<T>(c) = cent;
  if (c.cols != data.cols) {
    throw kmeans::Error("--model " + o.model_in + " has d = " + std::to_string(c.cols) +
                        " features (k = " + std::to_string(c.rows) + ") but " + o.data_name +
                        " has d = " + std::to_string(data.cols));
  }
  return c;
}

/// Reads --centroids in the data's dtype (or --model's centroids) and checks it against the
/// data's d; `metric` receives the metric to serve with (--model's, else --metric, else
/// euclidean).
template <class T>
Matrix load_centroids(const Options& o, const Matrix& data, kmeans::Metric& metric) {
  if (!o.model_in.empty()) return model_centroids<T>(o, data, metric);
  metric = o.metric.value_or(kmeans::Metric::Euclidean);
  Matrix c = load(o.centroids_in, data.dtype);
  check_matrix<T>(c, o.centroids_in);
  if (c.cols != data.cols) {
    throw kmeans::Error("--centroids " + o.centroids_in + " has d = " + std::to_string(c.cols) +
                        " features (shape " + shape_of(c) + ") but " + o.data_name + " has d = " +
                        std::to_string(data.cols));
  }
  return c;
}

// ---------------------------------------------------------------------------------------------
// Output

const char* dtype_name(Dtype t) { return t == Dtype::Float32 ? "float32" : "float64"; }

std::string fmt(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.6g", v);
  return buf;
}

// ---------------------------------------------------------------------------------------------
// Commands

/// Fails early, before any file is read, when outputs cannot be written or CUDA is unusable.
void preflight(const Options& o) {
  if (o.backend == kmeans::Backend::Cuda) {
    std::string why;
    if (!kmeans::cuda_available(&why)) throw kmeans::Error("--backend cuda is not usable: " + why);
  }
  for (const std::string* path : {&o.centroids_out, &o.labels_out, &o.out, &o.model_out}) {
    if (!path->empty()) kmeans::io::check_writable(*path);
  }
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

/// --verbose: one stderr line per Lloyd iteration. A new n_init run starts at iteration 0.
std::function<bool(const kmeans::IterationInfo&)> verbose_printer(int n_init) {
  auto run = std::make_shared<int>(0);
  return [run, n_init](const kmeans::IterationInfo& it) {
    if (it.iteration == 0) ++*run;
    char prefix[48] = "";
    if (n_init > 1) std::snprintf(prefix, sizeof(prefix), "init %d/%d, ", *run, n_init);
    std::fprintf(stderr, "kmeans: %siteration %d: sse %.17g, center shift %.6g, %.6g s\n", prefix,
                 it.iteration + 1, it.sse, it.center_shift, it.seconds);
    return true;
  };
}

/// The fields every command's JSON starts with.
/// Why --backend auto ran on the CPU: the reason the GPU is not usable (empty when the GPU ran,
/// when another backend was asked for, or when a usable GPU was passed over: then the result's
/// warnings say why).
std::string auto_reason(kmeans::Backend asked, kmeans::Backend ran) {
  if (asked != kmeans::Backend::Auto || ran == kmeans::Backend::Cuda) return "";
  std::string why;
  return kmeans::cuda_available(&why) ? std::string() : why;
}

Json json_header(const char* command, kmeans::Backend asked, kmeans::Backend ran,
                 const Matrix& data, std::int64_t k, kmeans::Metric metric) {
  Json j;
  j.field("command", command)
      .field("version", kmeans::version())
      .field("backend", kmeans::to_string(ran))
      .null_or("backend_reason", auto_reason(asked, ran))
      .field("dtype", dtype_name(data.dtype))
      .field("n", data.rows)
      .field("d", data.cols)
      .field("k", k)
      .field("metric", kmeans::to_string(metric));
  return j;
}

template <class T>
int run_fit(const Options& o, Matrix& data) {
  check_matrix<T>(data, o.data_name);
  kmeans::Params<T> p;
  set_fit_options(o, p);
  Matrix init;
  if (init_is_file(o)) {
    init = load(o.init, data.dtype);
    check_matrix<T>(init, o.init);
    const std::int64_t k = o.k ? *o.k : init.rows;
    if (init.rows != k || init.cols != data.cols) {
      throw kmeans::Error("--init " + o.init + " has shape " + shape_of(init) + ", but k = " +
                          std::to_string(k) + " and d = " + std::to_string(data.cols) +
                          " need (" + std::to_string(k) + ", " + std::to_string(data.cols) + ")");
    }
    if (init.rows > std::numeric_limits<int>::max()) throw kmeans::Error("--init " + o.init + " has too many rows");
    p.k = static_cast<int>(init.rows);
    p.init = kmeans::Init::Array;
    p.init_centroids = values<T>(init);
  } else {
    p.k = *o.k;
    p.init = *init_method(o.init);
  }
  Matrix weights;
  if (!o.sample_weight.empty()) {
    weights = load_weights(o.sample_weight, data, o.data_name);
    p.sample_weight = values<T>(weights);
  }
  // Mini-batch: the steps of one run follow the n_init initialisations (no per-run prefix).
  if (o.verbose)
    p.on_iteration = verbose_printer(p.init == kmeans::Init::Array || p.batch_size > 0 ? 1 : p.n_init);

  const auto t0 = std::chrono::steady_clock::now();
  const kmeans::Result<T> r = run_with_weights(o.sample_weight, [&] {
    return kmeans::fit(values<T>(data).data(), static_cast<std::size_t>(data.rows),
                       static_cast<std::size_t>(data.cols), p);
  });
  const double seconds = seconds_since(t0);
  if (o.verbose) {
    const std::string why = auto_reason(o.backend, r.backend);
    if (!why.empty())
      std::fprintf(stderr, "kmeans: backend auto ran on %s: the GPU is not usable: %s\n",
                   kmeans::to_string(r.backend), why.c_str());
  }
  // What ran: explicit centroids are one starting point, so --n-init is ignored (with a warning).
  const int n_init_ran = p.init == kmeans::Init::Array ? 1 : p.n_init;

  kmeans::io::StagedWrites out;
  if (!o.centroids_out.empty()) out.add(o.centroids_out, r.centroids.data(), p.k, data.cols);
  if (!o.labels_out.empty()) out.add(o.labels_out, r.labels.data(), data.rows, 0);
  if (!o.model_out.empty()) {
    out.add_text(o.model_out, kmeans::KMeans<T>::from_result(p, r, static_cast<std::size_t>(data.cols)).to_json());
  }
  out.commit();

  if (o.json) {
    Json timings;
    timings.field("init", r.timings.init)
        .field("assign", r.timings.assign)
        .field("update", r.timings.update)
        .field("final_assign", r.timings.final_assign);
    Json j = json_header("fit", o.backend, r.backend, data, p.k, p.metric);
    fit_members(j, o, p, r, n_init_ran, seconds, timings);
    if (p.batch_size > 0) {
      Json mb;
      mb.field("batch_size", p.batch_size)
          .field("max_no_improvement", p.max_no_improvement)
          .field("reassignment_ratio", p.reassignment_ratio)
          .field("n_steps", r.n_steps);
      j.field("minibatch", mb);
    }
    std::printf("%s\n", j.str().c_str());
  } else {
    std::printf("kmeans fit: n = %lld, d = %lld, k = %d (%s, backend %s, init %s, n_init %d%s%s)\n",
                static_cast<long long>(data.rows), static_cast<long long>(data.cols), p.k,
                dtype_name(data.dtype), kmeans::to_string(r.backend), init_name(p.init), n_init_ran,
                o.sample_weight.empty() ? "" : ", weighted",
                p.metric == kmeans::Metric::Cosine ? ", metric cosine" : "");
    if (p.batch_size > 0) {
      std::printf("mini-batch k-means (batch_size %d): %s after %d step%s, %d epoch%s (max_iter %d)\n",
                  p.batch_size, r.converged ? "converged" : "stopped without converging",
                  r.n_steps, r.n_steps == 1 ? "" : "s", r.n_iter, r.n_iter == 1 ? "" : "s",
                  p.max_iter);
    } else {
      std::printf("%s after %d iteration%s (max_iter %d)\n",
                  r.converged ? "converged" : "stopped without converging", r.n_iter,
                  r.n_iter == 1 ? "" : "s", p.max_iter);
    }
    std::printf("inertia %s (mean %s distance %s), %d empty cluster%s relocated\n",
                fmt(r.inertia).c_str(), p.metric == kmeans::Metric::Cosine ? "cosine" : "squared",
                fmt(r.inertia / static_cast<double>(data.rows)).c_str(),
                r.n_empty_relocated, r.n_empty_relocated == 1 ? "" : "s");
    std::printf("fit time %s s (init %s, assign %s, update %s, final assign %s)\n",
                fmt(seconds).c_str(), fmt(r.timings.init).c_str(), fmt(r.timings.assign).c_str(),
                fmt(r.timings.update).c_str(), fmt(r.timings.final_assign).c_str());
    if (!o.centroids_out.empty()) std::printf("centroids written to %s\n", o.centroids_out.c_str());
    if (!o.labels_out.empty()) std::printf("labels written to %s\n", o.labels_out.c_str());
    if (!o.model_out.empty()) std::printf("model written to %s\n", o.model_out.c_str());
    // After the summary, so a terminal shows them last; stdout first keeps the order in a log.
    std::fflush(stdout);
    for (const std::string& w : r.warnings) std::fprintf(stderr, "kmeans: warning: %s\n", w.c_str());
  }
  return kExitOk;
}

template <class T>
int run_predict(const Options& o, Matrix& data) {
  check_matrix<T>(data, o.data_name);
  kmeans::Metric metric = kmeans::Metric::Euclidean;
  Matrix c = load_centroids<T>(o, data, metric);
  const T* x = values<T>(data).data();
  const T* cent = values<T>(c).data();
  const auto t0 = std::chrono::steady_clock::now();
  kmeans::Backend used = kmeans::Backend::Auto;
  const auto n = static_cast<std::size_t>(data.rows), d = static_cast<std::size_t>(data.cols);
  const std::vector<std::int32_t> labels =
      kmeans::predict(x, n, d, cent, static_cast<std::size_t>(c.rows), metric, o.backend, &used);
  const double seconds = seconds_since(t0);

  // The inertia of these labels, in double on the host (one cheap pass); cosine: the library's
  // sum of cosine distances (score, on the same engine).
  double inertia = 0;
  if (metric == kmeans::Metric::Cosine)
    inertia = -kmeans::score(x, n, d, cent, static_cast<std::size_t>(c.rows), metric, {}, used);
  for (std::int64_t i = 0; metric == kmeans::Metric::Euclidean && i < data.rows; ++i) {
    const T* xi = x + i * data.cols;
    const T* ci = cent + static_cast<std::int64_t>(labels[static_cast<std::size_t>(i)]) * data.cols;
    for (std::int64_t j = 0; j < data.cols; ++j) {
      const double diff = static_cast<double>(xi[j]) - static_cast<double>(ci[j]);
      inertia += diff * diff;
    }
  }

  kmeans::io::StagedWrites out;
  if (!o.labels_out.empty()) out.add(o.labels_out, labels.data(), data.rows, 0);
  out.commit();

  const char* backend = kmeans::to_string(used);  // the engine that ran
  if (o.json) {
    Json j = json_header("predict", o.backend, used, data, c.rows, metric);
    j.null_or("model", o.model_in)
        .field("inertia", inertia)
        .field("seconds", seconds)
        .null_or("labels_out", o.labels_out);
    std::printf("%s\n", j.str().c_str());
  } else {
    std::printf("kmeans predict: n = %lld, d = %lld, k = %lld (%s, backend %s)\n",
                static_cast<long long>(data.rows), static_cast<long long>(data.cols),
                static_cast<long long>(c.rows), dtype_name(data.dtype), backend);
    std::printf("inertia %s (mean %s distance %s), predict time %s s\n", fmt(inertia).c_str(),
                metric == kmeans::Metric::Cosine ? "cosine" : "squared",
                fmt(inertia / static_cast<double>(data.rows)).c_str(), fmt(seconds).c_str());
    if (!o.labels_out.empty()) std::printf("labels written to %s\n", o.labels_out.c_str());
  }
  return kExitOk;
}

/// Rows of the distance matrix shown by `kmeans transform` without --out.
constexpr std::int64_t kPreviewRows = 5;

template <class T>
int run_transform(const Options& o, Matrix& data) {
  check_matrix<T>(data, o.data_name);
  kmeans::Metric metric = kmeans::Metric::Euclidean;
  Matrix c = load_centroids<T>(o, data, metric);
  const auto t0 = std::chrono::steady_clock::now();
  kmeans::Backend used = kmeans::Backend::Auto;
  const std::vector<T> dist =
      kmeans::transform(values<T>(data).data(), static_cast<std::size_t>(data.rows),
                        static_cast<std::size_t>(data.cols), values<T>(c).data(),
                        static_cast<std::size_t>(c.rows), metric, o.backend, &used);
  const double seconds = seconds_since(t0);

  kmeans::io::StagedWrites out;
  if (!o.out.empty()) out.add(o.out, dist.data(), data.rows, c.rows);
  out.commit();

  const char* backend = kmeans::to_string(used);  // the engine that ran
  if (o.json) {
    Json j = json_header("transform", o.backend, used, data, c.rows, metric);
    j.null_or("model", o.model_in)
        .field("seconds", seconds)
        .null_or("out", o.out);
    std::printf("%s\n", j.str().c_str());
    return kExitOk;
  }
  std::printf("kmeans transform: n = %lld, d = %lld, k = %lld (%s, backend %s), %s s\n",
              static_cast<long long>(data.rows), static_cast<long long>(data.cols),
              static_cast<long long>(c.rows), dtype_name(data.dtype), backend, fmt(seconds).c_str());
  if (!o.out.empty()) {
    std::printf("%lld x %lld distances written to %s\n", static_cast<long long>(data.rows),
                static_cast<long long>(c.rows), o.out.c_str());
    return kExitOk;
  }
  const std::int64_t shown = std::min(data.rows, kPreviewRows);
  std::printf("%sdistances to the centroids (row: centroid 0, 1, ...):\n",
              metric == kmeans::Metric::Cosine ? "cosine " : "");
  for (std::int64_t i = 0; i < shown; ++i) {
    std::printf("%lld:", static_cast<long long>(i));
    for (std::int64_t j = 0; j < c.rows; ++j) {
      std::printf(" %s", fmt(static_cast<double>(dist[static_cast<std::size_t>(i * c.rows + j)])).c_str());
    }
    std::printf("\n");
  }
  if (shown < data.rows) {
    std::printf("... %lld more rows; use --out PATH to write all of them\n",
                static_cast<long long>(data.rows - shown));
  }
  return kExitOk;
}

template <class T>
int run_score(const Options& o, Matrix& data) {
  check_matrix<T>(data, o.data_name);
  kmeans::Metric metric = kmeans::Metric::Euclidean;
  Matrix c = load_centroids<T>(o, data, metric);
  Matrix weights;
  if (!o.sample_weight.empty()) weights = load_weights(o.sample_weight, data, o.data_name);
  const kmeans::ArrayView<T> w =
      o.sample_weight.empty() ? kmeans::ArrayView<T>{} : kmeans::ArrayView<T>(values<T>(weights));
  const auto t0 = std::chrono::steady_clock::now();
  kmeans::Backend used = kmeans::Backend::Auto;
  const double score = run_with_weights(o.sample_weight, [&] {
    return kmeans::score(values<T>(data).data(), static_cast<std::size_t>(data.rows),
                         static_cast<std::size_t>(data.cols), values<T>(c).data(),
                         static_cast<std::size_t>(c.rows), metric, w, o.backend, &used);
  });
  const double seconds = seconds_since(t0);

  const char* backend = kmeans::to_string(used);  // the engine that ran
  if (o.json) {
    Json j = json_header("score", o.backend, used, data, c.rows, metric);
    j.null_or("model", o.model_in)
        .field("score", score)
        .null_or("sample_weight", o.sample_weight)
        .field("seconds", seconds);
    std::printf("%s\n", j.str().c_str());
  } else {
    std::printf("kmeans score: n = %lld, d = %lld, k = %lld (%s, backend %s%s)\n",
                static_cast<long long>(data.rows), static_cast<long long>(data.cols),
                static_cast<long long>(c.rows), dtype_name(data.dtype), backend,
                o.sample_weight.empty() ? "" : ", weighted");
    std::printf("score %.17g (the negative inertia), %s s\n", score, fmt(seconds).c_str());
  }
  return kExitOk;
}

int run(int argc, char** argv) {
  if (argc < 2) {  // a bare `kmeans`: what it can do, not a one-line error
    std::fputs(kShortUsage, stderr);
    return kExitUsage;
  }
  const Options o = parse_args(argc, argv);
  if (o.help) {
    std::fputs(help_of(o.command), stdout);
    return kExitOk;
  }
  if (o.command == "--version") {
    std::printf("kmeans %s\n", kmeans::version());
    return kExitOk;
  }
  if (o.mpi) return run_fit_mpi(o, argc, argv);  // its own reading, outputs and errors
  preflight(o);
  std::string stream_why;  // fit --stream, or a .npy too large for memory: stream_fit.cpp
  if (use_stream(o, stream_why)) return run_stream_fit(o, stream_why);
  std::optional<Dtype> dtype = o.dtype;
  if (!o.model_in.empty()) {  // the model's dtype is the computation's: DATA is converted to it
    const Dtype model = kmeans::model_dtype(o.model_in) == "float32" ? Dtype::Float32 : Dtype::Float64;
    if (o.dtype && *o.dtype != model) {
      throw kmeans::Error(std::string("--dtype ") + dtype_name(*o.dtype) + " but --model " +
                          o.model_in + " is a " + dtype_name(model) + " model");
    }
    dtype = model;
  }
  Matrix data = load(o.data, dtype, o.header);
  const bool f32 = data.dtype == Dtype::Float32;
  if (o.command == "fit") return f32 ? run_fit<float>(o, data) : run_fit<double>(o, data);
  if (o.command == "predict") return f32 ? run_predict<float>(o, data) : run_predict<double>(o, data);
  if (o.command == "transform") {
    return f32 ? run_transform<float>(o, data) : run_transform<double>(o, data);
  }
  return f32 ? run_score<float>(o, data) : run_score<double>(o, data);
}

/// The one stderr line: control characters (a newline inside a message) would split it.
int report(int code, const char* what) {
  std::string line = what;
  for (char& c : line)
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  std::fflush(stdout);
  std::fprintf(stderr, "kmeans: error: %s\n", line.c_str());
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const int code = run(argc, argv);
    if (std::fflush(stdout) != 0) return report(kExitDataError, "cannot write to stdout");
    return code;
  } catch (const UsageError& e) {
    return report(kExitUsage, e.what());
  } catch (const kmeans::Error& e) {
    return report(kExitDataError, e.what());
  } catch (const std::bad_alloc&) {
    return report(kExitDataError, "out of memory");
  } catch (const std::exception& e) {
    return report(kExitDataError, e.what());
  } catch (...) {
    return report(kExitDataError, "unknown failure");
  }
}
