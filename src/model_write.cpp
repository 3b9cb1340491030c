// SPDX-License-Identifier: Apache-2.0
// Model files, the writing side: the model's JSON text (model_text, the format of README "Model
// files") and the save through a temporary file renamed over the target (write_atomically).
#include "model_write.hpp"

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#if defined(_WIN32)
#include <process.h>
#define KMEANS_GETPID _getpid
#else
#include <unistd.h>
#define KMEANS_GETPID getpid
#endif

#include "model_json.hpp"

namespace kmeans::detail {
namespace {

namespace fs = std::filesystem;

/// The model file's "algorithm" (scikit-learn's names).
const char* algorithm_text(Algorithm a) {
  return a == Algorithm::Elkan ? "elkan" : a == Algorithm::Auto ? "auto" : "lloyd";
}

const char* init_text(Init i) {
  switch (i) {
    case Init::Random: return "random";
    case Init::KMeansPlusPlus: return "k-means++";
    case Init::KMeansParallel: return "k-means||";
    case Init::Array: return "array";
  }
  return "unknown";
}

template <class T>
void put_value(std::string& out, T v) {
  if constexpr (sizeof(T) == 4) {
    detail::json::put_float(out, v);
  } else {
    detail::json::put_double(out, v);
  }
}

void put_doubles(std::string& out, const std::vector<double>& v) {
  out += '[';
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (i) out += ", ";
    detail::json::put_double(out, v[i]);
  }
  out += ']';
}

/// The model's "algorithm": "minibatch" for a mini-batch model (batch_size > 0), else
/// Options::algorithm's name.
const char* algorithm_text(const Options& p) {
  return p.batch_size > 0 ? "minibatch" : algorithm_text(p.algorithm);
}

}  // namespace

template <class T>
std::string model_text(const Options& p, const Result<T>& r, std::size_t d,
                       const StreamState& stream) {
  using detail::json::put_double;
  using detail::json::put_string;
  const std::size_t k = r.centroids.size() / d;
  std::string o = "{\n  \"format\": \"kmeans-model\",\n  \"format_version\": ";
  o += std::to_string(kModelFormatVersion);
  o += ",\n  \"library_version\": ";
  put_string(o, version());
  o += ",\n  \"dtype\": \"";
  o += model_dtype_name<T>();
  o += "\",\n  \"k\": " + std::to_string(k) + ",\n  \"d\": " + std::to_string(d);
  o += ",\n  \"metric\": \"";
  o += to_string(p.metric);  // "euclidean" or "cosine"
  o += "\",\n  \"algorithm\": \"";
  o += algorithm_text(p);
  o += "\",\n  \"params\": {\"k\": ";
  o += std::to_string(p.k) + ", \"max_iter\": " + std::to_string(p.max_iter) + ", \"tol\": ";
  put_double(o, p.tol);
  o += ", \"init\": \"";
  o += init_text(p.init);
  o += "\", \"n_init\": " + std::to_string(p.n_init) + ", \"seed\": " + std::to_string(p.seed);
  o += ", \"backend\": \"";
  o += to_string(p.backend);
  o += "\", \"n_threads\": " + std::to_string(p.n_threads);
  if (p.batch_size > 0) {  // mini-batch's own params (a Lloyd model's file is as before)
    o += ", \"batch_size\": " + std::to_string(p.batch_size) +
         ", \"max_no_improvement\": " + std::to_string(p.max_no_improvement) +
         ", \"reassignment_ratio\": ";
    put_double(o, p.reassignment_ratio);
  }
  o += "},\n  \"inertia\": ";
  put_double(o, r.inertia);
  o += ",\n  \"n_iter\": " + std::to_string(r.n_iter);
  if (p.batch_size > 0 || r.n_steps > 0) o += ",\n  \"n_steps\": " + std::to_string(r.n_steps);
  if (stream.steps > 0) {  // what a later partial_fit continues from (absent: from cluster_sizes)
    o += ",\n  \"partial_fit\": {\"steps\": " + std::to_string(stream.steps) +
         ", \"rng\": " + std::to_string(stream.rng) +
         ", \"since_reassign\": " + std::to_string(stream.since_reassign) + ", \"counts\": ";
    put_doubles(o, stream.counts);
    o += '}';
  }
  o += ",\n  \"converged\": ";
  o += r.converged ? "true" : "false";
  o += ",\n  \"n_empty_relocated\": " + std::to_string(r.n_empty_relocated);
  o += ",\n  \"backend\": \"";
  o += to_string(r.backend);
  o += "\",\n  \"sse_history\": ";
  put_doubles(o, r.sse_history);
  o += ",\n  \"imbalance_history\": ";
  put_doubles(o, r.imbalance_history);
  o += ",\n  \"cluster_sizes\": ";
  put_doubles(o, r.cluster_sizes);
  o += ",\n  \"warnings\": [";
  for (std::size_t i = 0; i < r.warnings.size(); ++i) {
    if (i) o += ", ";
    put_string(o, r.warnings[i]);
  }
  o += "],\n  \"centroids\": [";
  for (std::size_t c = 0; c < k; ++c) {
    o += c ? ",\n    [" : "\n    [";
    for (std::size_t j = 0; j < d; ++j) {
      if (j) o += ", ";
      put_value(o, r.centroids[c * d + j]);
    }
    o += ']';
  }
  o += "\n  ]\n}\n";
  return o;
}

/// Writes `text` to `path` through a temporary file beside it, renamed over it when complete.
void write_atomically(const std::string& path, const std::string& text) {
  static std::atomic<int> counter{0};  // distinct temporaries for saves from several threads
  const std::string what = "model file '" + path + "'";
  if (path.empty()) throw Error("model file path is empty");
  std::error_code ec;
  if (fs::is_directory(path, ec)) throw Error(what + " is a directory; expected a file name");
  const fs::path target(path);
  const std::string temp = (target.parent_path() / ("." + target.filename().string() + ".tmp-" +
                                                    std::to_string(KMEANS_GETPID()) + "-" +
                                                    std::to_string(++counter))).string();
  {
    errno = 0;
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    if (!out) throw Error("cannot write " + what + ": " + std::strerror(errno ? errno : EACCES));
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    out.close();
    if (!out) {
      const int e = errno ? errno : EIO;
      fs::remove(temp, ec);
      throw Error("cannot write " + what + ": " + std::strerror(e));
    }
  }
  fs::rename(temp, target, ec);
  if (ec) {
    std::error_code ignored;
    fs::remove(temp, ignored);
    throw Error("cannot write " + what + ": " + ec.message());
  }
}


template std::string model_text<float>(const Options&, const Result<float>&, std::size_t,
                                       const StreamState&);
template std::string model_text<double>(const Options&, const Result<double>&, std::size_t,
                                        const StreamState&);

}  // namespace kmeans::detail
