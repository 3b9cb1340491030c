// SPDX-License-Identifier: Apache-2.0
// The `kmeans` command-line tool: fit, predict, transform and score on .npy / .csv files, a JSON
// or human summary on stdout, and exactly one `kmeans: error: ...` line on stderr for bad input.
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <limits>
#include <memory>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include "io/io.hpp"
#include "kmeans/kmeans.hpp"

namespace {

using kmeans::io::Dtype;
using kmeans::io::Matrix;

// Exit codes (documented in --help).
constexpr int kExitOk = 0;
constexpr int kExitDataError = 1;  ///< The files, the data or the run failed.
constexpr int kExitUsage = 2;      ///< The command line itself is wrong; nothing was read.

/// A mistake on the command line (exit code 2).
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

const char kMainHelp[] =
    "usage: kmeans fit DATA --k K [options]\n"
    "       kmeans predict DATA --centroids PATH [options]\n"
    "       kmeans transform DATA --centroids PATH [options]\n"
    "       kmeans score DATA --centroids PATH [options]\n"
    "       kmeans --version | --help\n"
    "\n"
    "Lloyd k-means on .npy (float32/float64, 2-D, C order) and .csv files (comma-separated,\n"
    "optional header row). `fit` clusters, `predict` labels rows with their nearest centroid,\n"
    "`transform` writes the distances to every centroid, `score` prints the negative inertia.\n"
    "Run `kmeans COMMAND --help` for the options of each.\n"
    "\n"
    "Exit codes: 0 success; 1 bad data or run failure (unreadable or malformed file, NaN/Inf,\n"
    "k > n, shape mismatch, bad sample weights, unavailable backend, write error); 2 bad command\n"
    "line (unknown flag, missing or malformed value, k <= 0, n-init <= 0, negative max-iter,\n"
    "...). Errors are one line on stderr, `kmeans: error: ...`, and no output file is written.\n";

const char kFitHelp[] =
    "usage: kmeans fit DATA --k K [options]\n"
    "\n"
    "Clusters the rows of DATA (.npy float32/float64 2-D C-order, or .csv) into K clusters.\n"
    "Defaults follow scikit-learn's KMeans(algorithm=\"lloyd\", n_init=1).\n"
    "\n"
    "  --k K                  number of clusters, 1 <= K <= n (may be left out with an init file:\n"
    "                         K is then its number of rows)\n"
    "  --init METHOD          k-means++ (default; also kmeans++), random, k-means|| (also kmeans||\n"
    "                         or k-means-parallel: scalable k-means, Bahmani et al.), or a\n"
    "                         .npy/.csv file of K x d initial centroids\n"
    "  --n-init N             initialisations to run, N >= 1 (default 1); the fit with the lowest\n"
    "                         inertia is kept, run i uses seed S + i (ignored, with a warning, for\n"
    "                         an init file)\n"
    "  --max-iter N           maximum Lloyd iterations, N >= 0 (default 300)\n"
    "  --tol T                relative tolerance on the centroid shift, T >= 0 (default 1e-4)\n"
    "  --seed S               seed of the initialisation, 0 <= S < 2^64 (default 0)\n"
    "  --sample-weight PATH   n non-negative weights, not all 0: a 1-D (n,) or (n, 1) .npy, or a\n"
    "                         .csv with one value per line; converted to the fit dtype\n"
    "  --backend B            auto (default), cuda, cpu or reference\n"
    "  --dtype T              float32 or float64 (default: the .npy's dtype; float64 for .csv)\n"
    "  --centroids-out PATH   write the K x d centroids (.npy or .csv, in the fit dtype)\n"
    "  --labels-out PATH      write the n labels (.npy int32 or .csv)\n"
    "  --threads N            CPU threads, 0 = all (default 0)\n"
    "  --verbose              one line per Lloyd iteration on stderr (of every --n-init run):\n"
    "                         `kmeans: iteration I: sse E, center shift S, T s` with I from 1,\n"
    "                         E the SSE of the iteration's assignment, S the total squared\n"
    "                         centroid movement; prefixed `init R/N, ` when N > 1\n"
    "  --json                 print one JSON object instead of the summary: n, d, k, init, n_init,\n"
    "                         n_iter, converged, inertia, sse_history, n_empty_relocated,\n"
    "                         warnings, timings, seconds, ...\n"
    "  --help                 this text\n"
    "\n"
    "Warnings (e.g. fewer distinct clusters than K) go to stderr as `kmeans: warning: ...`, or\n"
    "into the JSON's \"warnings\" array with --json. stdout holds only the summary or the JSON.\n"
    "Outputs are written only after the fit succeeded (via temporary files renamed into place).\n"
    "Exit codes: 0 success; 1 bad data or run failure; 2 bad command line.\n";

const char kPredictHelp[] =
    "usage: kmeans predict DATA --centroids PATH [options]\n"
    "\n"
    "Labels each row of DATA with its nearest centroid (ties to the lowest index).\n"
    "\n"
    "  --centroids PATH       K x d centroids (.npy or .csv), e.g. from `kmeans fit --centroids-out`\n"
    "  --backend B            auto (default), cuda, cpu or reference\n"
    "  --dtype T              float32 or float64 (default: DATA's dtype; float64 for .csv)\n"
    "  --labels-out PATH      write the n labels (.npy int32 or .csv)\n"
    "  --json                 print one JSON object instead of the summary\n"
    "  --help                 this text\n"
    "\n"
    "Exit codes: 0 success; 1 bad data or run failure; 2 bad command line.\n";

const char kTransformHelp[] =
    "usage: kmeans transform DATA --centroids PATH [options]\n"
    "\n"
    "Euclidean (not squared) distances of each row of DATA to each centroid, as scikit-learn's\n"
    "KMeans.transform: an n x K matrix in the data dtype.\n"
    "\n"
    "  --centroids PATH       K x d centroids (.npy or .csv), e.g. from `kmeans fit --centroids-out`\n"
    "  --out PATH             write the n x K distances (.npy or .csv). Without it, the summary\n"
    "                         shows the first 5 rows only and nothing is written\n"
    "  --backend B            auto (default), cuda, cpu or reference\n"
    "  --dtype T              float32 or float64 (default: DATA's dtype; float64 for .csv)\n"
    "  --json                 print one JSON object (n, d, k, out, ...; never the matrix)\n"
    "  --help                 this text\n"
    "\n"
    "Exit codes: 0 success; 1 bad data or run failure; 2 bad command line.\n";

const char kScoreHelp[] =
    "usage: kmeans score DATA --centroids PATH [options]\n"
    "\n"
    "The score of DATA against the centroids as scikit-learn's KMeans.score: the negative\n"
    "(weighted) sum of squared distances of each row to its nearest centroid.\n"
    "\n"
    "  --centroids PATH       K x d centroids (.npy or .csv), e.g. from `kmeans fit --centroids-out`\n"
    "  --sample-weight PATH   n non-negative weights, not all 0: a 1-D (n,) or (n, 1) .npy, or a\n"
    "                         .csv with one value per line\n"
    "  --backend B            auto (default), cuda, cpu or reference\n"
    "  --dtype T              float32 or float64 (default: DATA's dtype; float64 for .csv)\n"
    "  --json                 print one JSON object: score, n, d, k, ...\n"
    "  --help                 this text\n"
    "\n"
    "Exit codes: 0 success; 1 bad data or run failure; 2 bad command line.\n";

struct Options {
  std::string command;  // "fit", "predict", "transform" or "score"
  std::string data;
  std::optional<int> k;
  std::string init = "k-means++";
  int n_init = 1;
  int max_iter = 300;
  double tol = 1e-4;
  std::uint64_t seed = 0;
  kmeans::Backend backend = kmeans::Backend::Auto;
  std::optional<Dtype> dtype;
  std::string centroids_in;
  std::string centroids_out;
  std::string labels_out;
  std::string out;  // transform's distance matrix
  std::string sample_weight;
  int threads = 0;
  bool json = false;
  bool verbose = false;
  bool help = false;
};

// ---------------------------------------------------------------------------------------------
// Command-line parsing

template <class I>
I parse_integer(const std::string& flag, const std::string& text) {
  I v{};
  const char* b = text.data();
  const char* e = b + text.size();
  const auto r = std::from_chars(b, e, v);
  if (r.ec == std::errc::result_out_of_range) {
    throw UsageError(flag + " '" + text + "' is out of range");
  }
  if (text.empty() || r.ec != std::errc() || r.ptr != e) {
    throw UsageError(flag + " '" + text + "' is not an integer");
  }
  return v;
}

double parse_real(const std::string& flag, const std::string& text) {
  double v = 0;
  const char* b = text.data();
  const char* e = b + text.size();
  const auto r = std::from_chars(b, e, v);
  if (text.empty() || r.ec != std::errc() || r.ptr != e) {
    throw UsageError(flag + " '" + text + "' is not a number");
  }
  return v;
}

kmeans::Backend parse_backend(const std::string& text) {
  if (text == "auto") return kmeans::Backend::Auto;
  if (text == "cuda") return kmeans::Backend::Cuda;
  if (text == "cpu") return kmeans::Backend::Cpu;
  if (text == "reference") return kmeans::Backend::Reference;
  throw UsageError("--backend '" + text + "' is unknown: expected auto, cuda, cpu or reference");
}

Dtype parse_dtype(const std::string& text) {
  if (text == "float32") return Dtype::Float32;
  if (text == "float64") return Dtype::Float64;
  throw UsageError("--dtype '" + text + "' is unknown: expected float32 or float64");
}

void check_output_flag(const std::string& flag, const std::string& path) {
  if (!kmeans::io::has_matrix_extension(path)) {
    throw UsageError(flag + " '" + path + "': expected a file name ending in .npy or .csv");
  }
}

/// The built-in init methods by their command-line names; any other --init is a centroids file.
std::optional<kmeans::Init> init_method(const std::string& name) {
  if (name == "k-means++" || name == "kmeans++") return kmeans::Init::KMeansPlusPlus;
  if (name == "random") return kmeans::Init::Random;
  if (name == "k-means||" || name == "kmeans||" || name == "k-means-parallel") {
    return kmeans::Init::KMeansParallel;
  }
  return std::nullopt;
}

bool init_is_file(const Options& o) { return !init_method(o.init); }

/// The name reported in the JSON: one spelling per method.
const char* init_name(kmeans::Init init) {
  switch (init) {
    case kmeans::Init::Random: return "random";
    case kmeans::Init::KMeansPlusPlus: return "k-means++";
    case kmeans::Init::KMeansParallel: return "k-means||";
    case kmeans::Init::Array: return "array";
  }
  return "unknown";
}

/// The options taking a value, and the switches, of each command.
struct CommandFlags {
  std::vector<std::string> valued;
  std::vector<std::string> switches;
};

CommandFlags flags_of(const std::string& command) {
  if (command == "fit") {
    return {{"--k", "--init", "--n-init", "--max-iter", "--tol", "--seed", "--sample-weight",
             "--backend", "--dtype", "--centroids-out", "--labels-out", "--threads"},
            {"--json", "--verbose"}};
  }
  if (command == "predict") return {{"--centroids", "--backend", "--dtype", "--labels-out"}, {"--json"}};
  if (command == "transform") return {{"--centroids", "--out", "--backend", "--dtype"}, {"--json"}};
  return {{"--centroids", "--sample-weight", "--backend", "--dtype"}, {"--json"}};  // score
}

bool is_command(const std::string& c) {
  return c == "fit" || c == "predict" || c == "transform" || c == "score";
}

Options parse_args(int argc, char** argv) {
  Options o;
  const char* const kExpected = "expected fit, predict, transform, score, --help or --version";
  if (argc < 2) throw UsageError(std::string("missing command: ") + kExpected);
  o.command = argv[1];
  if (o.command == "--help" || o.command == "-h") {
    o.help = true;
    return o;
  }
  if (o.command == "--version") {
    if (argc > 2) throw UsageError(std::string("unexpected argument '") + argv[2] + "' after --version");
    return o;
  }
  if (!is_command(o.command)) throw UsageError("unknown command '" + o.command + "': " + kExpected);
  const bool fit = o.command == "fit";
  const CommandFlags flags = flags_of(o.command);
  auto known = [](const std::vector<std::string>& list, const std::string& a) {
    return std::find(list.begin(), list.end(), a) != list.end();
  };
  std::vector<std::string> seen;
  std::vector<std::string> positional;
  bool only_positional = false;
  for (int i = 2; i < argc; ++i) {
    std::string arg = argv[i];
    if (only_positional || arg.size() < 2 || arg[0] != '-') {
      positional.push_back(arg);
      continue;
    }
    if (arg == "--") {
      only_positional = true;
      continue;
    }
    if (arg == "--help" || arg == "-h") {
      o.help = true;
      return o;
    }
    if (known(flags.switches, arg)) {
      (arg == "--json" ? o.json : o.verbose) = true;
      continue;
    }
    std::optional<std::string> value;
    const std::size_t eq = arg.find('=');
    if (eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg.resize(eq);
    }
    if (!known(flags.valued, arg)) {
      throw UsageError("unknown option '" + arg + "' for kmeans " + o.command + " (see kmeans " +
                       o.command + " --help)");
    }
    if (known(seen, arg)) throw UsageError("option " + arg + " is given more than once");
    seen.push_back(arg);
    if (!value) {
      // A following "--flag" is the next option, not this one's value; "-1" is a value.
      if (i + 1 >= argc || std::string(argv[i + 1]).rfind("--", 0) == 0) {
        throw UsageError("option " + arg + " needs a value");
      }
      value = argv[++i];
    }
    const std::string& v = *value;
    if (arg == "--k") {
      o.k = parse_integer<int>(arg, v);
      if (*o.k < 1) throw UsageError("--k " + v + " must be at least 1");
    } else if (arg == "--init") {
      o.init = v;
      if (init_is_file(o) && !kmeans::io::has_matrix_extension(v)) {
        throw UsageError("--init '" + v + "' is unknown: expected k-means++ (kmeans++), random, "
                         "k-means|| (kmeans||, k-means-parallel) or a .npy/.csv file");
      }
    } else if (arg == "--n-init") {
      o.n_init = parse_integer<int>(arg, v);
      if (o.n_init < 1) throw UsageError("--n-init " + v + " must be at least 1");
    } else if (arg == "--max-iter") {
      o.max_iter = parse_integer<int>(arg, v);
      if (o.max_iter < 0) throw UsageError("--max-iter " + v + " must be >= 0");
    } else if (arg == "--tol") {
      o.tol = parse_real(arg, v);
      if (!std::isfinite(o.tol) || o.tol < 0) throw UsageError("--tol " + v + " must be finite and >= 0");
    } else if (arg == "--seed") {
      o.seed = parse_integer<std::uint64_t>(arg, v);
    } else if (arg == "--sample-weight") {
      if (!kmeans::io::has_matrix_extension(v)) {
        throw UsageError("--sample-weight '" + v + "': expected a .npy or .csv file");
      }
      o.sample_weight = v;
    } else if (arg == "--backend") {
      o.backend = parse_backend(v);
    } else if (arg == "--dtype") {
      o.dtype = parse_dtype(v);
    } else if (arg == "--centroids-out") {
      check_output_flag(arg, v);
      o.centroids_out = v;
    } else if (arg == "--labels-out") {
      check_output_flag(arg, v);
      o.labels_out = v;
    } else if (arg == "--out") {
      check_output_flag(arg, v);
      o.out = v;
    } else if (arg == "--centroids") {
      if (!kmeans::io::has_matrix_extension(v)) {
        throw UsageError("--centroids '" + v + "': expected a .npy or .csv file");
      }
      o.centroids_in = v;
    } else if (arg == "--threads") {
      o.threads = parse_integer<int>(arg, v);
      if (o.threads < 0) throw UsageError("--threads " + v + " must be >= 0 (0 = all)");
    }
  }
  if (positional.empty()) throw UsageError("missing DATA file: kmeans " + o.command + " DATA ...");
  if (positional.size() > 1) throw UsageError("unexpected extra argument '" + positional[1] + "'");
  o.data = positional[0];
  if (!kmeans::io::has_matrix_extension(o.data)) {
    throw UsageError("DATA '" + o.data + "': expected a .npy or .csv file");
  }
  if (fit && !o.k && !init_is_file(o)) throw UsageError("--k is required (the number of clusters)");
  if (!fit && o.centroids_in.empty()) throw UsageError("--centroids is required for " + o.command);
  if (!o.centroids_out.empty() && o.centroids_out == o.labels_out) {
    throw UsageError("--centroids-out and --labels-out name the same file '" + o.labels_out + "'");
  }
  return o;
}

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

/// Reads a matrix and converts it to the requested dtype; errors name the file.
Matrix load(const std::string& path, std::optional<Dtype> dtype) {
  Matrix m = kmeans::io::read_matrix(path);
  if (dtype) {
    try {
      kmeans::io::convert(m, *dtype);
    } catch (const kmeans::Error& e) {
      throw kmeans::Error(path + ": " + e.what());
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

/// Reads --centroids in the data's dtype and checks it against the data's d.
template <class T>
Matrix load_centroids(const Options& o, const Matrix& data) {
  Matrix c = load(o.centroids_in, data.dtype);
  check_matrix<T>(c, o.centroids_in);
  if (c.cols != data.cols) {
    throw kmeans::Error("--centroids " + o.centroids_in + " has d = " + std::to_string(c.cols) +
                        " features (shape " + shape_of(c) + ") but " + o.data + " has d = " +
                        std::to_string(data.cols));
  }
  return c;
}

// ---------------------------------------------------------------------------------------------
// Output

/// One JSON object built field by field; numbers with round-trip precision.
class Json {
 public:
  Json& field(const char* key, const std::string& v) { return raw(key, quote(v)); }
  Json& field(const char* key, const char* v) { return raw(key, quote(v)); }
  Json& field(const char* key, bool v) { return raw(key, v ? "true" : "false"); }
  Json& field(const char* key, std::int64_t v) { return raw(key, std::to_string(v)); }
  Json& field(const char* key, int v) { return raw(key, std::to_string(v)); }
  Json& field(const char* key, std::uint64_t v) { return raw(key, std::to_string(v)); }
  Json& field(const char* key, double v) { return raw(key, number(v)); }
  Json& field(const char* key, const std::vector<double>& v) {
    std::string s = "[";
    for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + number(v[i]);
    return raw(key, s + "]");
  }
  Json& field(const char* key, const std::vector<std::string>& v) {
    std::string s = "[";
    for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + quote(v[i]);
    return raw(key, s + "]");
  }
  Json& field(const char* key, const Json& inner) { return raw(key, inner.str()); }
  Json& null_or(const char* key, const std::string& v) {
    return v.empty() ? raw(key, "null") : field(key, v);
  }
  std::string str() const { return "{" + body_ + "}"; }

  static std::string number(double v) {
    if (!std::isfinite(v)) return "null";  // JSON has no NaN/Inf
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.17g", v);
    return buf;
  }
  static std::string quote(const std::string& s) {
    std::string out = "\"";
    for (const char ch : s) {
      const auto c = static_cast<unsigned char>(ch);
      if (c == '"' || c == '\\') {
        out += '\\';
        out += ch;
      } else if (c < 0x20) {
        char buf[8];
        std::snprintf(buf, sizeof(buf), "\\u%04x", c);
        out += buf;
      } else {
        out += ch;
      }
    }
    return out + "\"";
  }

 private:
  Json& raw(const char* key, const std::string& v) {
    if (!body_.empty()) body_ += ", ";
    body_ += quote(key) + ": " + v;
    return *this;
  }
  std::string body_;
};

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
  for (const std::string* path : {&o.centroids_out, &o.labels_out, &o.out}) {
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
Json json_header(const char* command, const char* backend, const Matrix& data, std::int64_t k) {
  Json j;
  j.field("command", command)
      .field("version", kmeans::version())
      .field("backend", backend)
      .field("dtype", dtype_name(data.dtype))
      .field("n", data.rows)
      .field("d", data.cols)
      .field("k", k);
  return j;
}

template <class T>
int run_fit(const Options& o, Matrix& data) {
  check_matrix<T>(data, o.data);
  kmeans::Params<T> p;
  p.max_iter = o.max_iter;
  p.tol = o.tol;
  p.seed = o.seed;
  p.n_init = o.n_init;
  p.backend = o.backend;
  p.n_threads = o.threads;
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
    weights = load_weights(o.sample_weight, data, o.data);
    p.sample_weight = values<T>(weights);
  }
  if (o.verbose) p.on_iteration = verbose_printer(p.init == kmeans::Init::Array ? 1 : p.n_init);

  const auto t0 = std::chrono::steady_clock::now();
  const kmeans::Result<T> r = run_with_weights(o.sample_weight, [&] {
    return kmeans::fit(values<T>(data).data(), static_cast<std::size_t>(data.rows),
                       static_cast<std::size_t>(data.cols), p);
  });
  const double seconds = seconds_since(t0);

  kmeans::io::StagedWrites out;
  if (!o.centroids_out.empty()) out.add(o.centroids_out, r.centroids.data(), p.k, data.cols);
  if (!o.labels_out.empty()) out.add(o.labels_out, r.labels.data(), data.rows, 0);
  out.commit();

  if (o.json) {
    Json timings;
    timings.field("init", r.timings.init)
        .field("assign", r.timings.assign)
        .field("update", r.timings.update)
        .field("final_assign", r.timings.final_assign);
    Json j = json_header("fit", kmeans::to_string(r.backend), data, p.k);
    j.field("init", init_name(p.init))
        .field("n_init", p.n_init)
        .field("max_iter", p.max_iter)
        .field("tol", p.tol)
        .field("seed", p.seed)
        .null_or("sample_weight", o.sample_weight)
        .field("n_iter", r.n_iter)
        .field("converged", r.converged)
        .field("inertia", r.inertia)
        .field("sse_history", r.sse_history)
        .field("n_empty_relocated", r.n_empty_relocated)
        .field("warnings", r.warnings)
        .field("seconds", seconds)
        .field("timings", timings)
        .null_or("centroids_out", o.centroids_out)
        .null_or("labels_out", o.labels_out);
    std::printf("%s\n", j.str().c_str());
  } else {
    std::printf("kmeans fit: n = %lld, d = %lld, k = %d (%s, backend %s, init %s, n_init %d%s)\n",
                static_cast<long long>(data.rows), static_cast<long long>(data.cols), p.k,
                dtype_name(data.dtype), kmeans::to_string(r.backend), init_name(p.init), p.n_init,
                o.sample_weight.empty() ? "" : ", weighted");
    std::printf("%s after %d iteration%s (max_iter %d)\n",
                r.converged ? "converged" : "stopped without converging", r.n_iter,
                r.n_iter == 1 ? "" : "s", p.max_iter);
    std::printf("inertia %s (mean squared distance %s), %d empty cluster%s relocated\n",
                fmt(r.inertia).c_str(), fmt(r.inertia / static_cast<double>(data.rows)).c_str(),
                r.n_empty_relocated, r.n_empty_relocated == 1 ? "" : "s");
    std::printf("fit time %s s (init %s, assign %s, update %s, final assign %s)\n",
                fmt(seconds).c_str(), fmt(r.timings.init).c_str(), fmt(r.timings.assign).c_str(),
                fmt(r.timings.update).c_str(), fmt(r.timings.final_assign).c_str());
    if (!o.centroids_out.empty()) std::printf("centroids written to %s\n", o.centroids_out.c_str());
    if (!o.labels_out.empty()) std::printf("labels written to %s\n", o.labels_out.c_str());
    // After the summary, so a terminal shows them last; stdout first keeps the order in a log.
    std::fflush(stdout);
    for (const std::string& w : r.warnings) std::fprintf(stderr, "kmeans: warning: %s\n", w.c_str());
  }
  return kExitOk;
}

template <class T>
int run_predict(const Options& o, Matrix& data) {
  check_matrix<T>(data, o.data);
  Matrix c = load_centroids<T>(o, data);
  const T* x = values<T>(data).data();
  const T* cent = values<T>(c).data();
  const auto t0 = std::chrono::steady_clock::now();
  kmeans::Backend used = kmeans::Backend::Auto;
  const std::vector<std::int32_t> labels =
      kmeans::predict(x, static_cast<std::size_t>(data.rows), static_cast<std::size_t>(data.cols),
                      cent, static_cast<std::size_t>(c.rows), o.backend, &used);
  const double seconds = seconds_since(t0);

  // The inertia of these labels, in double on the host (one cheap pass).
  double inertia = 0;
  for (std::int64_t i = 0; i < data.rows; ++i) {
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
    Json j = json_header("predict", backend, data, c.rows);
    j.field("inertia", inertia)
        .field("seconds", seconds)
        .null_or("labels_out", o.labels_out);
    std::printf("%s\n", j.str().c_str());
  } else {
    std::printf("kmeans predict: n = %lld, d = %lld, k = %lld (%s, backend %s)\n",
                static_cast<long long>(data.rows), static_cast<long long>(data.cols),
                static_cast<long long>(c.rows), dtype_name(data.dtype), backend);
    std::printf("inertia %s (mean squared distance %s), predict time %s s\n", fmt(inertia).c_str(),
                fmt(inertia / static_cast<double>(data.rows)).c_str(), fmt(seconds).c_str());
    if (!o.labels_out.empty()) std::printf("labels written to %s\n", o.labels_out.c_str());
  }
  return kExitOk;
}

/// Rows of the distance matrix shown by `kmeans transform` without --out.
constexpr std::int64_t kPreviewRows = 5;

template <class T>
int run_transform(const Options& o, Matrix& data) {
  check_matrix<T>(data, o.data);
  Matrix c = load_centroids<T>(o, data);
  const auto t0 = std::chrono::steady_clock::now();
  kmeans::Backend used = kmeans::Backend::Auto;
  const std::vector<T> dist =
      kmeans::transform(values<T>(data).data(), static_cast<std::size_t>(data.rows),
                        static_cast<std::size_t>(data.cols), values<T>(c).data(),
                        static_cast<std::size_t>(c.rows), o.backend, &used);
  const double seconds = seconds_since(t0);

  kmeans::io::StagedWrites out;
  if (!o.out.empty()) out.add(o.out, dist.data(), data.rows, c.rows);
  out.commit();

  const char* backend = kmeans::to_string(used);  // the engine that ran
  if (o.json) {
    Json j = json_header("transform", backend, data, c.rows);
    j.field("seconds", seconds)
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
  std::printf("distances to the centroids (row: centroid 0, 1, ...):\n");
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
  check_matrix<T>(data, o.data);
  Matrix c = load_centroids<T>(o, data);
  Matrix weights;
  if (!o.sample_weight.empty()) weights = load_weights(o.sample_weight, data, o.data);
  const kmeans::ArrayView<T> w =
      o.sample_weight.empty() ? kmeans::ArrayView<T>{} : kmeans::ArrayView<T>(values<T>(weights));
  const auto t0 = std::chrono::steady_clock::now();
  kmeans::Backend used = kmeans::Backend::Auto;
  const double score = run_with_weights(o.sample_weight, [&] {
    return kmeans::score(values<T>(data).data(), static_cast<std::size_t>(data.rows),
                         static_cast<std::size_t>(data.cols), values<T>(c).data(),
                         static_cast<std::size_t>(c.rows), w, o.backend, &used);
  });
  const double seconds = seconds_since(t0);

  const char* backend = kmeans::to_string(used);  // the engine that ran
  if (o.json) {
    Json j = json_header("score", backend, data, c.rows);
    j.field("score", score)
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

const char* help_of(const std::string& command) {
  if (command == "fit") return kFitHelp;
  if (command == "predict") return kPredictHelp;
  if (command == "transform") return kTransformHelp;
  if (command == "score") return kScoreHelp;
  return kMainHelp;
}

int run(int argc, char** argv) {
  const Options o = parse_args(argc, argv);
  if (o.help) {
    std::fputs(help_of(o.command), stdout);
    return kExitOk;
  }
  if (o.command == "--version") {
    std::printf("kmeans %s\n", kmeans::version());
    return kExitOk;
  }
  preflight(o);
  Matrix data = load(o.data, o.dtype);
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
