// SPDX-License-Identifier: Apache-2.0
// Model files: KMeans<T>::save / load / to_json / from_json / from_result and model_dtype, and
// the reading side (a checked document, then the model). The format (README, "Model files") is
// one JSON object; model_write.cpp writes it, model_json.cpp reads and writes the JSON values.
#include <cerrno>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <initializer_list>
#include <map>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "internal.hpp"
#include "kmeans/kmeans.hpp"
#include "model_json.hpp"
#include "model_write.hpp"

namespace kmeans {
namespace {

namespace fs = std::filesystem;
using detail::json::Reader;

constexpr const char* kFormatName = "kmeans-model";
constexpr int kIntMax = std::numeric_limits<int>::max();
/// The threads limit of Params::n_threads (src/validate.cpp).
constexpr int kMaxThreads = 1024;

// ---------------------------------------------------------------------------------------------
// Reading

std::string read_file(const std::string& path) {
  const std::string what = "model file '" + path + "'";
  std::error_code ec;
  if (fs::is_directory(path, ec)) throw Error(what + " is a directory");
  errno = 0;
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open " + what + ": " + std::strerror(errno ? errno : ENOENT));
  std::ostringstream s;
  s << in.rdbuf();
  if (in.bad()) throw Error("cannot read " + what);
  return s.str();
}

/// A checked model document: the top-level members (name -> byte offset of the value, the
/// whole text checked as JSON), the format and version checked, the dtype read.
class Document {
 public:
  Document(std::string_view text, const std::string& name) : reader_(text, name) {
    Reader& r = reader_;
    r.ws();
    if (r.at_end() || r.peek() != '{') {
      throw Error(name + ": is not a kmeans model file (it does not start with a JSON object; "
                         "model files are written by kmeans fit --model-out or KMeans::save)");
    }
    r.expect('{', "'{'");
    if (!r.accept('}')) {
      do {
        r.ws();
        const std::size_t at = r.pos();
        std::string key = r.string();
        r.expect(':', "':' after a member name");
        if (members_.count(key)) r.fail_at(at, "member \"" + key + "\" appears twice");
        r.ws();
        members_[key] = r.pos();
        r.skip_value(1);
      } while (r.accept(','));
      r.expect('}', "',' or '}' in the top-level object");
    }
    r.ws();
    if (!r.at_end()) r.fail("unexpected text after the JSON document");
    if (!members_.count("format") || peek_char("format") != '"' || string("format") != kFormatName) {
      throw Error(name + ": is not a kmeans model file (a JSON object without \"format\": \"" +
                  kFormatName + "\")");
    }
    const std::int64_t v = integer("format_version", 1, std::numeric_limits<std::int64_t>::max());
    if (v > kModelFormatVersion) {
      throw Error(name + ": written by a newer kmeans (model format version " + std::to_string(v) +
                  "; this kmeans " + version() + " reads version " +
                  std::to_string(kModelFormatVersion) + "): upgrade kmeans to load it");
    }
    dtype_ = string("dtype");
    if (dtype_ != "float32" && dtype_ != "float64") {
      fail("dtype", "dtype \"" + dtype_ + "\" is not float32 or float64");
    }
  }

  const std::string& dtype() const { return dtype_; }
  const std::string& name() const { return reader_.name(); }

  [[noreturn]] void fail(const std::string& key, const std::string& what) const {
    reader_.fail_at(members_.at(key), what);
  }
  /// A reader at the value of member `key`; a missing member is an error.
  Reader at(const std::string& key) const {
    auto it = members_.find(key);
    if (it == members_.end()) throw Error(name() + ": the member \"" + key + "\" is missing");
    Reader r = reader_;
    r.seek(it->second);
    return r;
  }
  bool has(const std::string& key) const { return members_.count(key) != 0; }
  char peek_char(const std::string& key) const { return at(key).peek(); }
  std::string string(const std::string& key) const {
    Reader r = at(key);
    if (r.peek() != '"') fail(key, "\"" + key + "\" must be a string");
    return r.string();
  }
  std::int64_t integer(const std::string& key, std::int64_t lo, std::int64_t hi) const {
    Reader r = at(key);
    r.ws();
    const std::size_t pos = r.pos();
    return detail::json::to_int(r, pos, r.number_token(), key, lo, hi);
  }
  double real(const std::string& key, bool allow_inf) const {
    Reader r = at(key);
    r.ws();
    const std::size_t pos = r.pos();
    return detail::json::to_double(r, pos, r.number_token(), key, allow_inf);
  }
  bool boolean(const std::string& key) const { return at(key).boolean(); }
  /// An array of numbers, each >= 0 (NaN never; +inf, written 1e999, when allow_inf).
  std::vector<double> reals(const std::string& key, bool allow_inf) const {
    Reader r = at(key);
    std::vector<double> v;
    r.expect('[', ("an array for \"" + key + "\"").c_str());
    if (r.accept(']')) return v;
    do {
      r.ws();
      const std::size_t pos = r.pos();
      const std::string what = key + "[" + std::to_string(v.size()) + "]";
      const double x = detail::json::to_double(r, pos, r.number_token(), what, allow_inf);
      if (!(x >= 0)) r.fail_at(pos, what + " = " + std::to_string(x) + " is negative");
      v.push_back(x);
    } while (r.accept(','));
    r.expect(']', "',' or ']'");
    return v;
  }
  std::vector<std::string> strings(const std::string& key) const {
    Reader r = at(key);
    std::vector<std::string> v;
    r.expect('[', ("an array for \"" + key + "\"").c_str());
    if (r.accept(']')) return v;
    do {
      v.push_back(r.string());
    } while (r.accept(','));
    r.expect(']', "',' or ']'");
    return v;
  }
  /// The k x d centroids: k arrays of d numbers, each finite and within max_abs_value<T>(d).
  template <class T>
  std::vector<T> centroids(std::size_t k, std::size_t d) const {
    Reader r = at("centroids");
    std::vector<T> c;
    // A file cannot hold more numbers than it has characters: a k and d that claim more are
    // refused below without reserving their product first (found by fuzz_model).
    c.reserve(std::min(k * d, r.text_size() / 2 + 1));
    const double bound = max_abs_value<T>(d);
    r.expect('[', "an array of k arrays for \"centroids\"");
    std::size_t rows = 0;
    if (!r.accept(']')) {
      do {
        r.ws();
        const std::size_t row_at = r.pos();
        if (rows == k) r.fail_at(row_at, "\"centroids\" has more than k = " + std::to_string(k) + " rows");
        r.expect('[', "an array of d numbers (a centroid)");
        std::size_t cols = 0;
        if (!r.accept(']')) {
          do {
            r.ws();
            const std::size_t pos = r.pos();
            const std::string what = "centroids[" + std::to_string(rows) + "][" + std::to_string(cols) + "]";
            if (cols == d) r.fail_at(pos, what + ": centroid " + std::to_string(rows) + " has more than d = " + std::to_string(d) + " values");
            const double x = detail::json::to_double(r, pos, r.number_token(), what, false);
            if (!(std::fabs(x) <= bound)) {
              r.fail_at(pos, detail::point_error("centroid", x, static_cast<std::int64_t>(rows),
                                                 static_cast<std::int64_t>(cols),
                                                 static_cast<std::int64_t>(d), sizeof(T) == 4));
            }
            c.push_back(static_cast<T>(x));
            ++cols;
          } while (r.accept(','));
          r.expect(']', "',' or ']' in a centroid");
        }
        if (cols != d) {
          r.fail_at(row_at, "centroid " + std::to_string(rows) + " has " + std::to_string(cols) +
                                " values but d = " + std::to_string(d));
        }
        ++rows;
      } while (r.accept(','));
      r.expect(']', "',' or ']' in \"centroids\"");
    }
    if (rows != k) {
      fail("centroids", "\"centroids\" has " + std::to_string(rows) + " rows (" +
                            std::to_string(rows * d) + " values) but k x d = " + std::to_string(k) +
                            " x " + std::to_string(d) + " needs " + std::to_string(k * d));
    }
    return c;
  }

 private:
  Reader reader_;
  std::map<std::string, std::size_t> members_;
  std::string dtype_;
};

Backend backend_named(const Document& doc, const std::string& key, const std::string& s) {
  if (s == "auto") return Backend::Auto;
  if (s == "cuda") return Backend::Cuda;
  if (s == "cpu") return Backend::Cpu;
  if (s == "reference") return Backend::Reference;
  doc.fail(key, key + " \"" + s + "\" is not auto, cuda, cpu or reference");
}

/// Walks the JSON object member `name` of the document: each member's key must appear once;
/// `member(r, key, what, pos)` reads a known member's value at pos (what = "name.key") and
/// returns false for an unknown one, which is skipped (a member a later 1.x writer added); every
/// key of `required` must be present.
template <class F>
void read_members(const Document& doc, const char* name,
                  std::initializer_list<const char*> required, F member) {
  Reader r = doc.at(name);
  const std::string quoted_name = std::string("\"") + name + "\"";
  if (r.peek() != '{') doc.fail(name, quoted_name + " must be an object");
  const std::size_t start = r.pos();
  std::map<std::string, bool> seen;
  r.expect('{', "'{'");
  if (!r.accept('}')) {
    do {
      r.ws();
      const std::size_t at = r.pos();
      const std::string key = r.string();
      const std::string what = std::string(name) + "." + key;
      r.expect(':', "':' after a member name");
      if (seen[key]) r.fail_at(at, "member \"" + what + "\" appears twice");
      seen[key] = true;
      r.ws();
      if (!member(r, key, what, r.pos())) r.skip_value(2);
    } while (r.accept(','));
    r.expect('}', ("',' or '}' in " + quoted_name).c_str());
  }
  for (const char* key : required) {
    if (!seen[key]) r.fail_at(start, quoted_name + " has no member \"" + key + "\"");
  }
}

/// The optional "partial_fit" object (what KMeans::partial_fit carries between calls): steps
/// >= 1, rng, since_reassign >= 0 and k counts, each finite and >= 0.
detail::StreamState read_stream(const Document& doc, std::size_t k) {
  detail::StreamState st;
  read_members(doc, "partial_fit", {"steps", "rng", "since_reassign", "counts"},
               [&](Reader& r, const std::string& key, const std::string& what, std::size_t pos) {
    if (key == "steps") {
      st.steps = static_cast<int>(detail::json::to_int(r, pos, r.number_token(), what, 1, kIntMax));
    } else if (key == "rng") {
      st.rng = detail::json::to_uint64(r, pos, r.number_token(), what);
    } else if (key == "since_reassign") {
      st.since_reassign = detail::json::to_int(r, pos, r.number_token(), what, 0,
                                               std::numeric_limits<std::int64_t>::max());
    } else if (key == "counts") {
      r.expect('[', "an array for \"partial_fit.counts\"");
      if (!r.accept(']')) {
        do {
          r.ws();
          const std::size_t vpos = r.pos();
          const std::string vwhat = what + "[" + std::to_string(st.counts.size()) + "]";
          const double x = detail::json::to_double(r, vpos, r.number_token(), vwhat, false);
          if (!(x >= 0)) r.fail_at(vpos, vwhat + " is negative");
          st.counts.push_back(x);
        } while (r.accept(','));
        r.expect(']', "',' or ']'");
      }
      if (st.counts.size() != k) {
        r.fail_at(pos, "\"partial_fit.counts\" has " + std::to_string(st.counts.size()) +
                           " values but k = " + std::to_string(k));
      }
    } else {
      return false;
    }
    return true;
  });
  return st;
}

/// The params object: every member of Options but on_iteration.
Options read_params(const Document& doc) {
  Options p;
  read_members(doc, "params", {"k", "max_iter", "tol", "init", "n_init", "seed", "backend", "n_threads"},
               [&](Reader& r, const std::string& key, const std::string& what, std::size_t pos) {
    if (key == "k") {
      p.k = static_cast<int>(detail::json::to_int(r, pos, r.number_token(), what, 1, kIntMax));
    } else if (key == "max_iter") {
      p.max_iter = static_cast<int>(detail::json::to_int(r, pos, r.number_token(), what, 0, kIntMax));
    } else if (key == "tol") {
      p.tol = detail::json::to_double(r, pos, r.number_token(), what, false);
      if (!(p.tol >= 0)) r.fail_at(pos, what + " must be >= 0");
    } else if (key == "init") {
      const std::string s = r.peek() == '"' ? r.string() : std::string();
      if (s == "random") p.init = Init::Random;
      else if (s == "k-means++") p.init = Init::KMeansPlusPlus;
      else if (s == "k-means||") p.init = Init::KMeansParallel;
      else if (s == "array") p.init = Init::Array;
      else r.fail_at(pos, what + " must be \"random\", \"k-means++\", \"k-means||\" or \"array\"");
    } else if (key == "n_init") {
      p.n_init = static_cast<int>(detail::json::to_int(r, pos, r.number_token(), what, 1, kIntMax));
    } else if (key == "seed") {
      p.seed = detail::json::to_uint64(r, pos, r.number_token(), what);
    } else if (key == "backend") {
      if (r.peek() != '"') r.fail_at(pos, what + " must be a string");
      const std::string s = r.string();
      if (s == "auto") p.backend = Backend::Auto;
      else if (s == "cuda") p.backend = Backend::Cuda;
      else if (s == "cpu") p.backend = Backend::Cpu;
      else if (s == "reference") p.backend = Backend::Reference;
      else r.fail_at(pos, what + " \"" + s + "\" is not auto, cuda, cpu or reference");
    } else if (key == "n_threads") {
      p.n_threads = static_cast<int>(detail::json::to_int(r, pos, r.number_token(), what, 0, kMaxThreads));
    } else if (key == "batch_size") {
      p.batch_size = static_cast<int>(detail::json::to_int(r, pos, r.number_token(), what, 0, kIntMax));
    } else if (key == "max_no_improvement") {
      p.max_no_improvement = static_cast<int>(detail::json::to_int(r, pos, r.number_token(), what, 0, kIntMax));
    } else if (key == "reassignment_ratio") {
      p.reassignment_ratio = detail::json::to_double(r, pos, r.number_token(), what, false);
      if (!(p.reassignment_ratio >= 0)) r.fail_at(pos, what + " must be >= 0");
    } else {
      return false;
    }
    return true;
  });
  return p;
}

template <class T>
KMeans<T> model_from_text(const std::string& text, const std::string& name,
                          detail::StreamState& stream) {
  const Document doc(text, name);
  if (doc.dtype() != detail::model_dtype_name<T>()) {
    doc.fail("dtype", "the model holds " + doc.dtype() + " centroids; load it as KMeans<" +
                          (doc.dtype() == "float32" ? "float" : "double") + "> (this is KMeans<" +
                          (sizeof(T) == 4 ? "float" : "double") + ">)");
  }
  const std::string metric = doc.string("metric");
  if (metric != "euclidean" && metric != "cosine") {
    doc.fail("metric", "metric \"" + metric + "\" is not known to this kmeans " + version() +
                           " (it knows \"euclidean\" and \"cosine\")");
  }
  const std::string algorithm = doc.string("algorithm");
  if (algorithm != "lloyd" && algorithm != "elkan" && algorithm != "auto" &&
      algorithm != "minibatch") {
    doc.fail("algorithm", "algorithm \"" + algorithm + "\" is not known to this kmeans " +
                              version() + " (it knows \"lloyd\", \"elkan\", \"auto\", \"minibatch\")");
  }
  const auto k = static_cast<std::size_t>(doc.integer("k", 1, kIntMax));
  // d: k * d values must be addressable (and k * d * 8 bytes).
  const auto d = static_cast<std::size_t>(doc.integer("d", 1, std::numeric_limits<std::int64_t>::max() / 8));
  if (d > static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max() / 8) / k) {
    doc.fail("d", "k x d = " + std::to_string(k) + " x " + std::to_string(d) + " overflows");
  }
  Params<T> p;
  static_cast<Options&>(p) = read_params(doc);  // params.k may differ from k (changed after the fit)
  p.metric = metric == "cosine" ? Metric::Cosine : Metric::Euclidean;
  if ((algorithm == "minibatch") != (p.batch_size > 0)) {
    doc.fail("algorithm", "algorithm \"" + algorithm + "\" does not match params.batch_size = " +
                              std::to_string(p.batch_size) +
                              " (a mini-batch model has batch_size >= 1, a Lloyd model none)");
  }
  p.algorithm = algorithm == "elkan" ? Algorithm::Elkan
                : algorithm == "auto"  ? Algorithm::Auto
                                       : Algorithm::Lloyd;
  Result<T> r;
  r.inertia = doc.real("inertia", true);
  if (!(r.inertia >= 0)) doc.fail("inertia", "inertia must be >= 0");
  r.n_iter = static_cast<int>(doc.integer("n_iter", 0, kIntMax));
  if (doc.has("n_steps")) r.n_steps = static_cast<int>(doc.integer("n_steps", 0, kIntMax));
  r.converged = doc.boolean("converged");
  r.n_empty_relocated = static_cast<int>(doc.integer("n_empty_relocated", 0, kIntMax));
  r.backend = backend_named(doc, "backend", doc.string("backend"));
  r.sse_history = doc.reals("sse_history", true);
  r.imbalance_history = doc.reals("imbalance_history", false);
  r.cluster_sizes = doc.reals("cluster_sizes", false);
  if (!r.cluster_sizes.empty() && r.cluster_sizes.size() != k) {
    doc.fail("cluster_sizes", "\"cluster_sizes\" has " + std::to_string(r.cluster_sizes.size()) +
                                  " values but k = " + std::to_string(k));
  }
  r.warnings = doc.strings("warnings");
  r.centroids = doc.centroids<T>(k, d);
  stream = doc.has("partial_fit") ? read_stream(doc, k) : detail::StreamState{};
  return KMeans<T>::from_result(std::move(p), std::move(r), d);
}

}  // namespace

template <class T>
KMeans<T> KMeans<T>::from_result(Params<T> params, Result<T> result, std::size_t d) {
  if (d == 0) throw Error("KMeans::from_result: d = 0 (a model needs d >= 1 features)");
  const std::size_t size = result.centroids.size();
  if (size == 0 || size % d != 0) {
    throw Error("KMeans::from_result: " + std::to_string(size) + " centroid values are not k x d for d = " +
                std::to_string(d) + " and some k >= 1");
  }
  const std::size_t k = size / d;
  if (k > static_cast<std::size_t>(kIntMax)) {
    throw Error("KMeans::from_result: k = " + std::to_string(k) + " centroids exceed the largest int");
  }
  if (params.k < 1) throw Error("KMeans::from_result: params.k = " + std::to_string(params.k) + " must be >= 1");
  if (!result.cluster_sizes.empty() && result.cluster_sizes.size() != k) {
    throw Error("KMeans::from_result: cluster_sizes has " + std::to_string(result.cluster_sizes.size()) +
                " values but k = " + std::to_string(k));
  }
  detail::validate_points(result.centroids.data(), static_cast<std::int64_t>(k),
                          static_cast<std::int64_t>(d), "centroids", params.n_threads);
  params.init_centroids = {};
  params.sample_weight = {};
  params.device_centroids_out = nullptr;
  params.device_labels_out = nullptr;
  KMeans<T> m(std::move(params));
  m.result_ = std::move(result);
  m.d_ = d;
  m.fitted_ = true;
  m.loaded_ = true;
  return m;
}

template <class T>
std::string KMeans<T>::to_json() const {
  check_fitted();
  return detail::model_text<T>(params_, result_, d_, stream_);
}

template <class T>
void KMeans<T>::save(const std::string& path) const {
  detail::write_atomically(path, to_json());
}

template <class T>
KMeans<T> KMeans<T>::from_json(const std::string& text, const std::string& name) {
  detail::StreamState stream;
  KMeans<T> m = model_from_text<T>(text, name, stream);
  m.stream_ = std::move(stream);
  return m;
}

template <class T>
KMeans<T> KMeans<T>::load(const std::string& path) {
  return from_json(read_file(path), "model file '" + path + "'");
}

std::string model_dtype(const std::string& path) {
  return Document(read_file(path), "model file '" + path + "'").dtype();
}

template KMeans<float> KMeans<float>::from_result(Params<float>, Result<float>, std::size_t);
template KMeans<double> KMeans<double>::from_result(Params<double>, Result<double>, std::size_t);
template std::string KMeans<float>::to_json() const;
template std::string KMeans<double>::to_json() const;
template void KMeans<float>::save(const std::string&) const;
template void KMeans<double>::save(const std::string&) const;
template KMeans<float> KMeans<float>::from_json(const std::string&, const std::string&);
template KMeans<double> KMeans<double>::from_json(const std::string&, const std::string&);
template KMeans<float> KMeans<float>::load(const std::string&);
template KMeans<double> KMeans<double>::load(const std::string&);

}  // namespace kmeans
