// SPDX-License-Identifier: Apache-2.0
// Command-line parsing of the `kmeans` tool: flags and values, their ranges, and the checks that
// outputs are distinct files from the inputs and from each other.
#include "cli/options.hpp"

#include <algorithm>
#include <charconv>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <limits>
#include <system_error>
#include <type_traits>
#include <vector>

namespace kmeans_cli {
namespace {

// ---------------------------------------------------------------------------------------------
// Command-line parsing

/// An integer flag's value in [lo, hi]; the messages state the accepted range.
template <class I>
I parse_integer(const std::string& flag, const std::string& text, I lo, I hi) {
  const std::string range = ": expected an integer from " + std::to_string(lo) + " to " +
                            std::to_string(hi);
  I v{};
  const char* b = text.data();
  const char* e = b + text.size();
  const auto r = std::from_chars(b, e, v);
  // "-5" for an unsigned flag is a number out of range, not a non-number.
  const bool negative_unsigned = std::is_unsigned_v<I> && text.size() > 1 && text[0] == '-' &&
                                 std::all_of(text.begin() + 1, text.end(),
                                             [](char c) { return c >= '0' && c <= '9'; });
  if (r.ec == std::errc::result_out_of_range || negative_unsigned ||
      (r.ec == std::errc() && r.ptr == e && (v < lo || v > hi))) {
    throw UsageError(flag + " '" + text + "' is out of range" + range);
  }
  if (text.empty() || r.ec != std::errc() || r.ptr != e) {
    throw UsageError(flag + " '" + text + "' is not an integer" + range);
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

kmeans::Algorithm parse_algorithm(const std::string& text) {
  if (text == "lloyd") return kmeans::Algorithm::Lloyd;
  if (text == "elkan") return kmeans::Algorithm::Elkan;
  if (text == "auto") return kmeans::Algorithm::Auto;
  throw UsageError("--algorithm '" + text + "' is unknown: expected lloyd, elkan or auto");
}

kmeans::Backend parse_backend(const std::string& text) {
  if (text == "auto") return kmeans::Backend::Auto;
  if (text == "cuda") return kmeans::Backend::Cuda;
  if (text == "cpu") return kmeans::Backend::Cpu;
  if (text == "reference") return kmeans::Backend::Reference;
  throw UsageError("--backend '" + text + "' is unknown: expected auto, cuda, cpu or reference");
}

kmeans::Metric parse_metric(const std::string& text) {
  if (text == "euclidean") return kmeans::Metric::Euclidean;
  if (text == "cosine") return kmeans::Metric::Cosine;
  throw UsageError("--metric '" + text + "' is unknown: expected euclidean or cosine");
}

Dtype parse_dtype(const std::string& text) {
  if (text == "float32") return Dtype::Float32;
  if (text == "float64") return Dtype::Float64;
  throw UsageError("--dtype '" + text + "' is unknown: expected float32 or float64");
}

/// A byte count: digits with an optional K, M, G or T (powers of 1024; KiB, MiB, ... too).
std::size_t parse_memory(const std::string& flag, const std::string& text) {
  const std::string what = flag + " '" + text + "'";
  const std::string expected = ": expected a byte count such as 24M, 512K, 2G or 1048576";
  std::size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0) throw UsageError(what + " is not a byte count" + expected);
  std::string unit = text.substr(digits);
  if (unit.size() > 1 && (unit.substr(1) == "iB" || unit.substr(1) == "B")) unit.resize(1);
  int shift = 0;
  if (unit == "K" || unit == "k") shift = 10;
  else if (unit == "M" || unit == "m") shift = 20;
  else if (unit == "G" || unit == "g") shift = 30;
  else if (unit == "T" || unit == "t") shift = 40;
  else if (!unit.empty()) throw UsageError(what + " has an unknown unit '" + unit + "'" + expected);
  std::uint64_t v = 0;
  const auto r = std::from_chars(text.data(), text.data() + digits, v);
  if (r.ec != std::errc() || v > (std::numeric_limits<std::uint64_t>::max() >> shift) ||
      (v << shift) > std::numeric_limits<std::size_t>::max())
    throw UsageError(what + " is out of range" + expected);
  if (v == 0) throw UsageError(what + " must be more than 0" + expected);
  return static_cast<std::size_t>(v << shift);
}

void check_output_flag(const std::string& flag, const std::string& path) {
  if (!kmeans::io::has_matrix_extension(path)) {
    throw UsageError(flag + " '" + path + "': expected a file name ending in .npy or .csv");
  }
}

}  // namespace

std::optional<kmeans::Init> init_method(const std::string& name) {
  if (name == "k-means++" || name == "kmeans++") return kmeans::Init::KMeansPlusPlus;
  if (name == "random") return kmeans::Init::Random;
  if (name == "k-means||" || name == "kmeans||" || name == "k-means-parallel") {
    return kmeans::Init::KMeansParallel;
  }
  return std::nullopt;
}

void set_fit_options(const Options& o, kmeans::Options& p) {
  p.max_iter = o.max_iter;
  p.tol = o.tol;
  p.seed = o.seed;
  p.n_init = o.n_init;
  p.backend = o.backend;
  p.metric = o.metric.value_or(kmeans::Metric::Euclidean);
  p.algorithm = o.algorithm;
  p.n_threads = o.threads;
  p.batch_size = o.batch_size;
  if (o.max_no_improvement) p.max_no_improvement = *o.max_no_improvement;
  if (o.reassignment_ratio) p.reassignment_ratio = *o.reassignment_ratio;
}

const char* init_name(kmeans::Init init) {
  switch (init) {
    case kmeans::Init::Random: return "random";
    case kmeans::Init::KMeansPlusPlus: return "k-means++";
    case kmeans::Init::KMeansParallel: return "k-means||";
    case kmeans::Init::Array: return "array";
  }
  return "unknown";
}

namespace {

/// The options taking a value, and the switches, of each command.
struct CommandFlags {
  std::vector<std::string> valued;
  std::vector<std::string> switches;
};

CommandFlags flags_of(const std::string& command) {
  if (command == "fit") {
    return {{"--k", "--init", "--n-init", "--max-iter", "--tol", "--seed", "--sample-weight",
             "--backend", "--dtype", "--centroids-out", "--labels-out", "--model-out", "--threads",
             "--batch-size", "--max-no-improvement", "--reassignment-ratio", "--metric",
             "--memory-limit", "--algorithm"},
            {"--json", "--verbose", "--header", "--no-header", "--mpi", "--stream"}};
  }
  const std::vector<std::string> switches = {"--json", "--header", "--no-header"};
  if (command == "predict") {
    return {{"--centroids", "--model", "--backend", "--dtype", "--labels-out", "--metric"}, switches};
  }
  if (command == "transform") {
    return {{"--centroids", "--model", "--out", "--backend", "--dtype", "--metric"}, switches};
  }
  return {{"--centroids", "--model", "--sample-weight", "--backend", "--dtype", "--metric"},
          switches};  // score
}

bool is_command(const std::string& c) {
  return c == "fit" || c == "predict" || c == "transform" || c == "score";
}

/// Refuses an output that is an input, or two outputs that are one file, under any spelling
/// (./x, a/../x, a symbolic or hard link): writing it would destroy the input or the other output.
void check_distinct_files(const Options& o) {
  struct Named {
    const char* what;
    std::string path;
  };
  std::vector<Named> inputs, outputs;
  if (o.data != kStdin) inputs.push_back({"DATA", o.data});
  if (init_is_file(o)) inputs.push_back({"--init", o.init});
  inputs.push_back({"--centroids", o.centroids_in});
  inputs.push_back({"--model", o.model_in});
  inputs.push_back({"--sample-weight", o.sample_weight});
  outputs.push_back({"--centroids-out", o.centroids_out});
  outputs.push_back({"--labels-out", o.labels_out});
  outputs.push_back({"--out", o.out});
  outputs.push_back({"--model-out", o.model_out});
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    const Named& out = outputs[i];
    if (out.path.empty()) continue;
    for (const Named& in : inputs) {
      if (!in.path.empty() && kmeans::io::same_file(out.path, in.path)) {
        throw UsageError(std::string(out.what) + " '" + out.path + "' is the same file as " +
                         in.what + " '" + in.path + "': an output may not overwrite an input");
      }
    }
    for (std::size_t j = 0; j < i; ++j) {
      const Named& other = outputs[j];
      if (!other.path.empty() && kmeans::io::same_file(out.path, other.path)) {
        throw UsageError(std::string(other.what) + " '" + other.path + "' and " + out.what +
                         " '" + out.path + "' name the same file");
      }
    }
  }
}

}  // namespace

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
  std::optional<std::string> header_flag;
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
    // -k K, -k=K and -kK are --k K.
    if (arg.rfind("-k", 0) == 0) arg = arg.size() == 2 || arg[2] == '=' ? "-" + arg : "--k=" + arg.substr(2);
    if (known(flags.switches, arg)) {
      if (arg == "--header" || arg == "--no-header") {
        if (header_flag && *header_flag != arg) throw UsageError("--header and --no-header contradict each other");
        header_flag = arg;
        o.header = arg == "--header" ? kmeans::io::CsvHeader::Present : kmeans::io::CsvHeader::Absent;
      } else if (arg == "--mpi") {
        o.mpi = true;
      } else if (arg == "--stream") {
        o.stream = true;
      } else {
        (arg == "--json" ? o.json : o.verbose) = true;
      }
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
      o.k = parse_integer<int>(arg, v, 1, std::numeric_limits<int>::max());
    } else if (arg == "--init") {
      o.init = v;
      if (init_is_file(o) && !kmeans::io::has_matrix_extension(v)) {
        throw UsageError("--init '" + v + "' is unknown: expected k-means++ (kmeans++), random, "
                         "k-means|| (kmeans||, k-means-parallel) or a .npy/.csv file");
      }
    } else if (arg == "--n-init") {
      o.n_init = parse_integer<int>(arg, v, 1, std::numeric_limits<int>::max());
    } else if (arg == "--max-iter") {
      o.max_iter = parse_integer<int>(arg, v, 0, std::numeric_limits<int>::max());
    } else if (arg == "--tol") {
      o.tol = parse_real(arg, v);
      if (!std::isfinite(o.tol) || o.tol < 0) throw UsageError("--tol " + v + " must be finite and >= 0");
    } else if (arg == "--seed") {
      o.seed = parse_integer<std::uint64_t>(arg, v, 0, std::numeric_limits<std::uint64_t>::max());
    } else if (arg == "--sample-weight") {
      if (!kmeans::io::has_matrix_extension(v)) {
        throw UsageError("--sample-weight '" + v + "': expected a .npy or .csv file");
      }
      o.sample_weight = v;
    } else if (arg == "--backend") {
      o.backend = parse_backend(v);
    } else if (arg == "--metric") {
      o.metric = parse_metric(v);
    } else if (arg == "--algorithm") {
      o.algorithm = parse_algorithm(v);
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
    } else if (arg == "--batch-size") {
      o.batch_size = parse_integer<int>(arg, v, 1, std::numeric_limits<int>::max());
    } else if (arg == "--max-no-improvement") {
      o.max_no_improvement = parse_integer<int>(arg, v, 0, std::numeric_limits<int>::max());
    } else if (arg == "--reassignment-ratio") {
      o.reassignment_ratio = parse_real(arg, v);
      if (!std::isfinite(*o.reassignment_ratio) || *o.reassignment_ratio < 0)
        throw UsageError("--reassignment-ratio " + v + " must be finite and >= 0");
    } else if (arg == "--model-out") {
      if (kmeans::io::has_matrix_extension(v)) {
        throw UsageError("--model-out '" + v + "': a model file is JSON, not a matrix; name it "
                         "e.g. model.kmeans (.npy and .csv are for --centroids-out)");
      }
      if (v.empty()) throw UsageError("--model-out needs a file name");
      o.model_out = v;
    } else if (arg == "--model") {
      if (v.empty()) throw UsageError("--model needs a file name");
      o.model_in = v;
    } else if (arg == "--memory-limit") {
      o.memory_limit = parse_memory(arg, v);
    } else if (arg == "--threads") {
      o.threads = parse_integer<int>(arg, v, 0, kMaxThreads);  // 0 = all
    }
  }
  if (positional.empty()) throw UsageError("missing DATA file: kmeans " + o.command + " DATA ...");
  if (positional.size() > 1) throw UsageError("unexpected extra argument '" + positional[1] + "'");
  o.data = positional[0];
  o.data_name = o.data == kStdin ? kStdinName : o.data;
  if (o.data != kStdin && !kmeans::io::has_matrix_extension(o.data)) {
    throw UsageError("DATA '" + o.data + "': expected a .npy or .csv file, or - for standard input");
  }
  // scikit-learn's MiniBatchKMeans defaults to tol = 0 (its KMeans to 1e-4).
  if (o.batch_size > 0 && !known(seen, "--tol")) o.tol = 0;
  if (o.batch_size == 0 && (o.max_no_improvement || o.reassignment_ratio)) {
    throw UsageError(std::string(o.max_no_improvement ? "--max-no-improvement" : "--reassignment-ratio") +
                     " applies to mini-batch k-means only: give --batch-size N too");
  }
  if (fit && !o.k && !init_is_file(o)) throw UsageError("--k is required (the number of clusters)");
  if (!fit && o.centroids_in.empty() && o.model_in.empty()) {
    throw UsageError("--centroids or --model is required for " + o.command);
  }
  if (!o.centroids_in.empty() && !o.model_in.empty()) {
    throw UsageError("--centroids and --model both give the centroids: use one of them");
  }
  if (o.mpi && (o.stream || o.memory_limit))
    throw UsageError(std::string(o.stream ? "--stream" : "--memory-limit") +
                     " does not combine with --mpi: each rank already reads only its own rows");
  if (o.stream && o.data == kStdin)
    throw UsageError("--stream reads DATA in chunks from a .npy file, not from standard input");
  std::string ext = o.data.size() >= 4 ? o.data.substr(o.data.size() - 4) : "";
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (o.stream && ext != ".npy")
    throw UsageError("--stream reads DATA in chunks from a .npy file; '" + o.data + "' is not one");
  check_distinct_files(o);
  return o;
}

}  // namespace kmeans_cli
