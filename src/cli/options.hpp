// SPDX-License-Identifier: Apache-2.0
// The parsed command line of the `kmeans` tool (Options) and its parser; every mistake is a
// UsageError (exit code 2) naming the flag and the value.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>

#include "io/io.hpp"
#include "kmeans/kmeans.hpp"

namespace kmeans_cli {

using kmeans::io::Dtype;

/// A mistake on the command line (exit code 2).
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Options {
  std::string command;  // "fit", "predict", "transform" or "score"
  std::string data;       // the DATA argument; "-" is standard input
  std::string data_name;  // DATA in messages
  std::optional<int> k;
  std::string init = "k-means++";
  int n_init = 1;
  int max_iter = 300;
  double tol = 1e-4;
  int batch_size = 0;  // > 0: mini-batch k-means
  std::optional<int> max_no_improvement;
  std::optional<double> reassignment_ratio;
  std::uint64_t seed = 0;
  kmeans::Backend backend = kmeans::Backend::Auto;
  std::optional<kmeans::Metric> metric;  // --metric; unset: euclidean, or --model's metric
  kmeans::Algorithm algorithm = kmeans::Algorithm::Lloyd;  // fit --algorithm
  std::optional<Dtype> dtype;
  std::string centroids_in;
  std::string model_in;   // --model: a model file serving predict / transform / score
  std::string model_out;  // fit --model-out
  std::string centroids_out;
  std::string labels_out;
  std::string out;  // transform's distance matrix
  std::string sample_weight;
  int threads = 0;
  kmeans::io::CsvHeader header = kmeans::io::CsvHeader::Auto;  // DATA's, when a .csv
  bool json = false;
  bool verbose = false;
  bool help = false;
  bool mpi = false;  // fit --mpi: one rank of an MPI job (src/cli/mpi_fit.cpp)
  bool stream = false;                      // fit --stream: out-of-core (src/cli/stream_fit.cpp)
  std::optional<std::size_t> memory_limit;  // fit --memory-limit, bytes
};

/// DATA "-": standard input.
inline constexpr const char* kStdin = "-";
/// The name of standard input in messages.
inline constexpr const char* kStdinName = "<stdin>";

/// The limit of --threads: the library's bound on Params::n_threads (src/validate.cpp).
inline constexpr int kMaxThreads = 1024;

/// The built-in init methods by their command-line names; any other --init is a centroids file.
std::optional<kmeans::Init> init_method(const std::string& name);
inline bool init_is_file(const Options& o) { return !init_method(o.init); }
/// The name reported in the JSON: one spelling per method.
const char* init_name(kmeans::Init init);

/// The fit's scalar knobs from the command line (max_iter, tol, seed, n_init, backend, metric,
/// algorithm, threads and the mini-batch ones) into `p`: one mapping for the in-memory,
/// streamed and MPI fits, which then refuse what they do not support. k, init and the arrays
/// are the caller's.
void set_fit_options(const Options& o, kmeans::Options& p);

/// Parses argv[1..] (argc >= 2): a command and its options, or --help / --version. Checks
/// everything that needs no file contents, including that no output is also an input or
/// another output (under any spelling or link).
Options parse_args(int argc, char** argv);

}  // namespace kmeans_cli
