// SPDX-License-Identifier: Apache-2.0
// A strict reader and a small writer of the JSON subset model files use (src/model_file.cpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kmeans::detail::json {

/// The deepest nesting the reader accepts (objects and arrays); deeper is an error, so a
/// hostile file cannot exhaust the stack.
inline constexpr int kMaxDepth = 32;

/// Reads JSON text (RFC 8259: no comments, no trailing commas, no NaN / Infinity, strings with
/// their escapes, no control characters inside strings). Every failure throws kmeans::Error
/// "NAME: ..." naming the byte offset; input that ends early says "truncated".
class Reader {
 public:
  Reader(std::string_view text, std::string name) : text_(text), name_(std::move(name)) {}

  /// Skips whitespace.
  void ws();
  bool at_end() const { return pos_ >= text_.size(); }
  std::size_t pos() const { return pos_; }
  /// Moves to byte `pos` (an offset this reader reported before).
  void seek(std::size_t pos) { pos_ = pos; }
  /// The next character after whitespace (fails at the end of the text).
  char peek();
  /// Consumes `c` (after whitespace) or fails: "expected WHAT".
  void expect(char c, const char* what);
  /// Consumes `c` (after whitespace) when it is next.
  bool accept(char c);
  /// A string (after whitespace), unescaped to UTF-8.
  std::string string();
  /// The text of a number (after whitespace), checked against JSON's number grammar. NaN,
  /// Infinity and -Infinity (which some writers emit) fail with a message that names them.
  std::string_view number_token();
  /// true / false.
  bool boolean();
  /// Skips one value of any type, checking it (at most kMaxDepth levels below `depth`).
  void skip_value(int depth = 0);

  /// Throws kmeans::Error "NAME: WHAT at byte N" (or "NAME: truncated ..." at the end).
  [[noreturn]] void fail(const std::string& what) const;
  [[noreturn]] void fail_at(std::size_t pos, const std::string& what) const;
  const std::string& name() const { return name_; }

 private:
  std::string_view text_;
  std::string name_;
  std::size_t pos_ = 0;
};

/// The value of a number token as a double. "1e999" (how an infinite value is written) gives
/// +inf when `allow_inf`; any other out-of-range token fails, naming `what`.
double to_double(const Reader& r, std::size_t pos, std::string_view token, const std::string& what,
                 bool allow_inf);
/// The value of an integer token (no fraction or exponent) in [lo, hi]; fails naming `what`.
std::int64_t to_int(const Reader& r, std::size_t pos, std::string_view token, const std::string& what,
                    std::int64_t lo, std::int64_t hi);
std::uint64_t to_uint64(const Reader& r, std::size_t pos, std::string_view token, const std::string& what);

/// Appends `s` as a JSON string (quotes and escapes).
void put_string(std::string& out, std::string_view s);
/// Appends the shortest decimal that reads back as `v` (finite; +inf is written 1e999).
void put_double(std::string& out, double v);
/// Appends the shortest decimal whose value, read as a double and rounded to float, is `v`
/// (bit for bit, -0 included).
void put_float(std::string& out, float v);

}  // namespace kmeans::detail::json
