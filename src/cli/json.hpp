// SPDX-License-Identifier: Apache-2.0
// The one-line JSON object the `kmeans` tool prints with --json; numbers in the shortest form
// that reads back to the same value.
#pragma once

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace kmeans_cli {

/// One JSON object built field by field; numbers in the shortest round-trip form (std::to_chars).
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
    char buf[32];  // shortest text that reads back to v, as in the .csv outputs
    const auto r = std::to_chars(buf, buf + sizeof(buf), v);
    return std::string(buf, r.ptr);
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

}  // namespace kmeans_cli
