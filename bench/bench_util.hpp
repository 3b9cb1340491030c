// SPDX-License-Identifier: Apache-2.0
// Small helpers of bench_kmeans: a JSON value (write and parse), portable random data,
// statistics, number formatting and a wall clock.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace bench {

using Clock = std::chrono::steady_clock;
/// Wall seconds since t.
inline double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

/// A JSON value: enough for the result file and the one-line reports of peers.py.
class Json {
 public:
  enum class Type { Null, Bool, Number, String, Array, Object };

  Json() = default;
  Json(bool b) : type_(Type::Bool), bool_(b) {}                       // NOLINT implicit
  Json(double x) : type_(Type::Number), num_(x) {}                   // NOLINT implicit
  Json(int x) : type_(Type::Number), num_(x) {}                      // NOLINT implicit
  Json(std::int64_t x) : type_(Type::Number), num_(static_cast<double>(x)) {}  // NOLINT
  Json(const char* s) : type_(Type::String), str_(s) {}              // NOLINT implicit
  Json(std::string s) : type_(Type::String), str_(std::move(s)) {}   // NOLINT implicit
  Json(const std::vector<double>& v);                                 // NOLINT implicit

  static Json array() { Json j; j.type_ = Type::Array; return j; }
  static Json object() { Json j; j.type_ = Type::Object; return j; }

  Type type() const { return type_; }
  bool is_null() const { return type_ == Type::Null; }
  bool is_number() const { return type_ == Type::Number; }
  bool is_string() const { return type_ == Type::String; }

  /// Object member access; set() replaces an existing key.
  Json& set(const std::string& key, Json value);
  /// Null when absent (or when this is not an object).
  const Json& get(const std::string& key) const;
  /// Appends to an array.
  Json& push(Json value);

  double number(double fallback = 0) const { return type_ == Type::Number ? num_ : fallback; }
  bool boolean(bool fallback = false) const { return type_ == Type::Bool ? bool_ : fallback; }
  const std::string& string() const { return str_; }
  const std::vector<Json>& items() const { return arr_; }
  const std::vector<std::pair<std::string, Json>>& members() const { return obj_; }

  /// Compact JSON when indent < 0, else pretty-printed. NaN and Inf are written as null.
  std::string dump(int indent = -1) const;

  /// Parses a JSON text; throws std::runtime_error with the offset on malformed input.
  static Json parse(const std::string& text);

 private:
  void dump_to(std::string& out, int indent, int depth) const;

  Type type_ = Type::Null;
  bool bool_ = false;
  double num_ = 0;
  std::string str_;
  std::vector<Json> arr_;
  std::vector<std::pair<std::string, Json>> obj_;
};

/// splitmix64: the same stream on every platform (never std::normal_distribution, whose
/// output differs between standard libraries).
class Rng {
 public:
  explicit Rng(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next();
  /// Uniform in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  /// Uniform integer in [0, m) (m > 0), without modulo bias that matters at bench sizes.
  std::uint64_t below(std::uint64_t m);
  /// Standard normal by Box-Muller (the second value of each pair is kept for the next call).
  double normal();

 private:
  std::uint64_t state_;
  bool has_spare_ = false;
  double spare_ = 0;
};

/// The classic study's data: 4 Gaussian blobs in 3-D, 1000 points each, shuffled (n = 4000).
std::vector<double> classic_blobs(std::uint64_t seed);

/// n x d points around `n_centers` random centres in [0, 100)^d with unit noise, generated in
/// fixed blocks with their own seeds so the values do not depend on the thread count.
template <class T>
std::vector<T> grid_data(std::int64_t n, std::int64_t d, int n_centers, std::uint64_t seed);

/// k distinct row indices of [0, n), drawn with a seeded partial Fisher-Yates shuffle.
std::vector<std::int64_t> distinct_rows(std::int64_t n, int k, std::uint64_t seed);

/// Copies the given rows of an n x d matrix.
template <class T>
std::vector<T> take_rows(const T* x, std::int64_t d, const std::vector<std::int64_t>& rows);

double median(std::vector<double> v);

/// The spread of a row's per-repeat times: a median alone hides a run that jumped 60x.
struct Spread {
  double min = 0, median = 0, max = 0;  ///< 0 when unknown
  int repeats = 0;
};

/// The spread of `runs` around the median the row reports (ours: the lower median, a run
/// that happened; the peers: their own median). With no runs: that median, repeats as given.
Spread spread_of(const std::vector<double>& runs, double reported_median, int repeats = 0);

/// Sets s_per_iter_min / _median / _max, repeats and s_per_iter_runs on a JSON row.
void set_spread(Json& j, const Spread& s, const std::vector<double>& runs);

/// "1.23e-04"-style and fixed formatting helpers for the tables.
std::string fmt_sci(double x, int digits = 3);
std::string fmt_fix(double x, int decimals);
/// "1e6" for powers of ten, else the plain integer.
std::string fmt_count(std::int64_t x);

/// The whole text of a file, or empty when it cannot be read.
std::string read_text_file(const std::string& path);

}  // namespace bench
