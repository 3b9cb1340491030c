// SPDX-License-Identifier: Apache-2.0
// Small helpers of bench_kmeans: a JSON value (write and parse), portable random data,
// statistics and number formatting.
#include "bench_util.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace bench {

// ---------------------------------------------------------------------------------- JSON

Json::Json(const std::vector<double>& v) : type_(Type::Array) {
  arr_.reserve(v.size());
  for (double x : v) arr_.emplace_back(x);
}

Json& Json::set(const std::string& key, Json value) {
  if (type_ == Type::Null) type_ = Type::Object;
  for (auto& m : obj_) {
    if (m.first == key) {
      m.second = std::move(value);
      return *this;
    }
  }
  obj_.emplace_back(key, std::move(value));
  return *this;
}

const Json& Json::get(const std::string& key) const {
  static const Json kNull;
  for (const auto& m : obj_)
    if (m.first == key) return m.second;
  return kNull;
}

Json& Json::push(Json value) {
  if (type_ == Type::Null) type_ = Type::Array;
  arr_.push_back(std::move(value));
  return *this;
}

namespace {

void dump_string(std::string& out, const std::string& s) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

void newline(std::string& out, int indent, int depth) {
  if (indent < 0) return;
  out += '\n';
  out.append(static_cast<std::size_t>(indent * depth), ' ');
}

class Parser {
 public:
  explicit Parser(const std::string& s) : s_(s) {}

  Json parse_document() {
    Json v = value();
    skip_ws();
    if (pos_ != s_.size()) fail("trailing characters");
    return v;
  }

 private:
  [[noreturn]] void fail(const char* what) const {
    throw std::runtime_error(std::string("malformed JSON at offset ") + std::to_string(pos_) +
                             ": " + what);
  }
  void skip_ws() {
    while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_;
  }
  bool consume(const char* word) {
    const std::size_t len = std::char_traits<char>::length(word);
    if (s_.compare(pos_, len, word) != 0) return false;
    pos_ += len;
    return true;
  }
  Json value() {
    skip_ws();
    if (pos_ >= s_.size()) fail("unexpected end");
    const char c = s_[pos_];
    if (c == '{') return object();
    if (c == '[') return array();
    if (c == '"') return Json(string());
    if (consume("true")) return Json(true);
    if (consume("false")) return Json(false);
    if (consume("null")) return Json();
    if (consume("NaN")) return Json(std::nan(""));  // Python's json.dumps default
    if (consume("Infinity")) return Json(HUGE_VAL);
    if (consume("-Infinity")) return Json(-HUGE_VAL);
    return number();
  }
  Json number() {
    const char* begin = s_.c_str() + pos_;
    char* end = nullptr;
    const double x = std::strtod(begin, &end);
    if (end == begin) fail("expected a value");
    pos_ += static_cast<std::size_t>(end - begin);
    return Json(x);
  }
  std::string string() {
    ++pos_;  // opening quote
    std::string out;
    while (pos_ < s_.size() && s_[pos_] != '"') {
      char c = s_[pos_++];
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos_ >= s_.size()) fail("unterminated escape");
      c = s_[pos_++];
      switch (c) {
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case 'r': out += '\r'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'u': {
          if (pos_ + 4 > s_.size()) fail("short \\u escape");
          const unsigned code = static_cast<unsigned>(std::stoul(s_.substr(pos_, 4), nullptr, 16));
          pos_ += 4;
          // Only what the peers emit matters here; non-ASCII becomes '?'.
          out += code < 0x80 ? static_cast<char>(code) : '?';
          break;
        }
        default: out += c;
      }
    }
    if (pos_ >= s_.size()) fail("unterminated string");
    ++pos_;
    return out;
  }
  Json array() {
    ++pos_;
    Json a = Json::array();
    skip_ws();
    if (pos_ < s_.size() && s_[pos_] == ']') {
      ++pos_;
      return a;
    }
    for (;;) {
      a.push(value());
      skip_ws();
      if (pos_ < s_.size() && s_[pos_] == ',') {
        ++pos_;
      } else if (pos_ < s_.size() && s_[pos_] == ']') {
        ++pos_;
        return a;
      } else {
        fail("expected , or ]");
      }
    }
  }
  Json object() {
    ++pos_;
    Json o = Json::object();
    skip_ws();
    if (pos_ < s_.size() && s_[pos_] == '}') {
      ++pos_;
      return o;
    }
    for (;;) {
      skip_ws();
      if (pos_ >= s_.size() || s_[pos_] != '"') fail("expected a key");
      std::string key = string();
      skip_ws();
      if (pos_ >= s_.size() || s_[pos_] != ':') fail("expected :");
      ++pos_;
      o.set(key, value());
      skip_ws();
      if (pos_ < s_.size() && s_[pos_] == ',') {
        ++pos_;
      } else if (pos_ < s_.size() && s_[pos_] == '}') {
        ++pos_;
        return o;
      } else {
        fail("expected , or }");
      }
    }
  }

  const std::string& s_;
  std::size_t pos_ = 0;
};

}  // namespace

void Json::dump_to(std::string& out, int indent, int depth) const {
  switch (type_) {
    case Type::Null: out += "null"; break;
    case Type::Bool: out += bool_ ? "true" : "false"; break;
    case Type::Number: {
      if (!std::isfinite(num_)) {
        out += "null";
        break;
      }
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.17g", num_);
      out += buf;
      break;
    }
    case Type::String: dump_string(out, str_); break;
    case Type::Array: {
      out += '[';
      // Arrays of numbers stay on one line: SSE histories would otherwise take pages.
      bool flat = true;
      for (const auto& v : arr_) flat = flat && (v.type_ != Type::Array && v.type_ != Type::Object);
      for (std::size_t i = 0; i < arr_.size(); ++i) {
        if (i) out += flat ? ", " : ",";
        if (!flat) newline(out, indent, depth + 1);
        arr_[i].dump_to(out, indent, depth + 1);
      }
      if (!flat && !arr_.empty()) newline(out, indent, depth);
      out += ']';
      break;
    }
    case Type::Object: {
      out += '{';
      for (std::size_t i = 0; i < obj_.size(); ++i) {
        if (i) out += ',';
        newline(out, indent, depth + 1);
        dump_string(out, obj_[i].first);
        out += indent < 0 ? ":" : ": ";
        obj_[i].second.dump_to(out, indent, depth + 1);
      }
      if (!obj_.empty()) newline(out, indent, depth);
      out += '}';
      break;
    }
  }
}

std::string Json::dump(int indent) const {
  std::string out;
  dump_to(out, indent, 0);
  return out;
}

Json Json::parse(const std::string& text) { return Parser(text).parse_document(); }

// ---------------------------------------------------------------------------------- random

std::uint64_t Rng::next() {
  std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

std::uint64_t Rng::below(std::uint64_t m) {
  // Multiply-shift on 64 random bits: the bias is below 2^-64 * m, far under anything measured.
  return static_cast<std::uint64_t>((static_cast<unsigned __int128>(next()) * m) >> 64);
}

constexpr double kPi = 3.14159265358979323846;

double Rng::normal() {
  if (has_spare_) {
    has_spare_ = false;
    return spare_;
  }
  double u1 = uniform();
  while (u1 <= 0) u1 = uniform();  // log(0) is -inf
  const double u2 = uniform();
  const double r = std::sqrt(-2.0 * std::log(u1));
  const double theta = 2.0 * kPi * u2;
  spare_ = r * std::sin(theta);
  has_spare_ = true;
  return r * std::cos(theta);
}

std::vector<double> classic_blobs(std::uint64_t seed) {
  constexpr int kPerBlob = 1000;
  constexpr double kMeans[4][3] = {{5, 5, 5}, {4, 20, 20}, {25, 20, 5}, {30, 30, 30}};
  constexpr double kStd[4] = {4, 3, 5, 5};
  Rng rng(seed);
  std::vector<double> x;
  x.reserve(4 * kPerBlob * 3);
  for (int b = 0; b < 4; ++b)
    for (int i = 0; i < kPerBlob; ++i)
      for (int j = 0; j < 3; ++j) x.push_back(kMeans[b][j] + kStd[b] * rng.normal());
  // Fisher-Yates over rows, so the blobs are interleaved as in the original study.
  const std::int64_t n = 4 * kPerBlob;
  for (std::int64_t i = n - 1; i > 0; --i) {
    const auto j = static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(i + 1)));
    for (int f = 0; f < 3; ++f) std::swap(x[i * 3 + f], x[j * 3 + f]);
  }
  return x;
}

template <class T>
std::vector<T> grid_data(std::int64_t n, std::int64_t d, int n_centers, std::uint64_t seed) {
  constexpr std::int64_t kBlock = 1 << 14;  // rows per independently seeded block
  std::vector<double> centers(static_cast<std::size_t>(n_centers * d));
  Rng crng(seed);
  for (double& c : centers) c = 100.0 * crng.uniform();
  std::vector<T> x(static_cast<std::size_t>(n * d));
  const std::int64_t n_blocks = (n + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(dynamic, 4)
  for (std::int64_t b = 0; b < n_blocks; ++b) {
    Rng rng(seed ^ (0xD1B54A32D192ED03ull * static_cast<std::uint64_t>(b + 1)));
    const std::int64_t end = std::min(n, (b + 1) * kBlock);
    for (std::int64_t i = b * kBlock; i < end; ++i) {
      const auto c = static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(n_centers)));
      for (std::int64_t j = 0; j < d; ++j)
        x[i * d + j] = static_cast<T>(centers[c * d + j] + rng.normal());
    }
  }
  return x;
}

template std::vector<float> grid_data<float>(std::int64_t, std::int64_t, int, std::uint64_t);
template std::vector<double> grid_data<double>(std::int64_t, std::int64_t, int, std::uint64_t);

std::vector<std::int64_t> distinct_rows(std::int64_t n, int k, std::uint64_t seed) {
  Rng rng(seed);
  std::vector<std::int64_t> rows;
  rows.reserve(static_cast<std::size_t>(k));
  if (static_cast<std::int64_t>(k) * 4 < n) {
    // Rejection of repeats: cheap when k is small against n, and needs no n-sized array.
    std::vector<std::int64_t> seen;
    while (static_cast<int>(rows.size()) < k) {
      const auto r = static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(n)));
      auto it = std::lower_bound(seen.begin(), seen.end(), r);
      if (it != seen.end() && *it == r) continue;
      seen.insert(it, r);
      rows.push_back(r);
    }
    return rows;
  }
  std::vector<std::int64_t> perm(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) perm[i] = i;
  for (int i = 0; i < k; ++i) {
    const auto j = i + static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(n - i)));
    std::swap(perm[i], perm[j]);
    rows.push_back(perm[i]);
  }
  return rows;
}

template <class T>
std::vector<T> take_rows(const T* x, std::int64_t d, const std::vector<std::int64_t>& rows) {
  std::vector<T> out;
  out.reserve(rows.size() * static_cast<std::size_t>(d));
  for (std::int64_t r : rows) out.insert(out.end(), x + r * d, x + (r + 1) * d);
  return out;
}

template std::vector<float> take_rows<float>(const float*, std::int64_t,
                                             const std::vector<std::int64_t>&);
template std::vector<double> take_rows<double>(const double*, std::int64_t,
                                               const std::vector<std::int64_t>&);

// ---------------------------------------------------------------------------------- misc

double median(std::vector<double> v) {
  if (v.empty()) return std::nan("");
  std::sort(v.begin(), v.end());
  const std::size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

Spread spread_of(const std::vector<double>& runs, double reported_median, int repeats) {
  Spread s;
  s.median = reported_median;
  if (runs.empty()) {
    s.min = s.max = reported_median;
    s.repeats = repeats;
    return s;
  }
  const auto [lo, hi] = std::minmax_element(runs.begin(), runs.end());
  s.min = *lo;
  s.max = *hi;
  s.repeats = static_cast<int>(runs.size());
  return s;
}

void set_spread(Json& j, const Spread& s, const std::vector<double>& runs) {
  j.set("s_per_iter_min", s.min).set("s_per_iter_median", s.median).set("s_per_iter_max", s.max)
      .set("repeats", s.repeats);
  if (!runs.empty()) j.set("s_per_iter_runs", Json(runs));
}

std::string fmt_sci(double x, int digits) {
  if (!std::isfinite(x)) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*e", digits - 1, x);
  return buf;
}

std::string fmt_fix(double x, int decimals) {
  if (!std::isfinite(x)) return "-";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, x);
  return buf;
}

std::string fmt_count(std::int64_t x) {
  int e = 0;
  std::int64_t v = x;
  while (v >= 10 && v % 10 == 0) {
    v /= 10;
    ++e;
  }
  if (v == 1 && e >= 3) return "1e" + std::to_string(e);
  return std::to_string(x);
}

std::string read_text_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return {};
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace bench
