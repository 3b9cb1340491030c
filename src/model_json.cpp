// SPDX-License-Identifier: Apache-2.0
// The strict JSON subset reader and the exact-number writer of model files (model_json.hpp).
#include "model_json.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <system_error>

#include "kmeans/kmeans.hpp"

namespace kmeans::detail::json {

void Reader::fail(const std::string& what) const { fail_at(pos_, what); }

void Reader::fail_at(std::size_t pos, const std::string& what) const {
  if (pos >= text_.size()) {
    throw Error(name_ + ": truncated: the file ends (at byte " + std::to_string(text_.size()) +
                ") inside the JSON document; " + what);
  }
  throw Error(name_ + ": " + what + " at byte " + std::to_string(pos));
}

void Reader::ws() {
  while (pos_ < text_.size()) {
    const char c = text_[pos_];
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
    ++pos_;
  }
}

char Reader::peek() {
  ws();
  if (at_end()) fail("expected a value");
  return text_[pos_];
}

void Reader::expect(char c, const char* what) {
  ws();
  if (at_end() || text_[pos_] != c) fail(std::string("expected ") + what);
  ++pos_;
}

bool Reader::accept(char c) {
  ws();
  if (!at_end() && text_[pos_] == c) {
    ++pos_;
    return true;
  }
  return false;
}

namespace {

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void put_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

}  // namespace

std::string Reader::string() {
  expect('"', "a string");
  std::string out;
  auto hex4 = [&]() {
    if (text_.size() - pos_ < 4) {
      pos_ = text_.size();
      fail("expected 4 hex digits after \\u");
    }
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      const int h = hex_digit(text_[pos_]);
      if (h < 0) fail("expected 4 hex digits after \\u");
      v = v * 16 + static_cast<std::uint32_t>(h);
      ++pos_;
    }
    return v;
  };
  for (;;) {
    if (at_end()) fail("expected the end of the string");
    const char c = text_[pos_];
    if (c == '"') {
      ++pos_;
      return out;
    }
    if (static_cast<unsigned char>(c) < 0x20) fail("control character inside a string");
    if (c != '\\') {
      out += c;
      ++pos_;
      continue;
    }
    ++pos_;
    if (at_end()) fail("expected an escape after \\");
    const char e = text_[pos_++];
    switch (e) {
      case '"': out += '"'; break;
      case '\\': out += '\\'; break;
      case '/': out += '/'; break;
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 't': out += '\t'; break;
      case 'u': {
        std::uint32_t cp = hex4();
        if (cp >= 0xDC00 && cp <= 0xDFFF) fail("lone low surrogate in a \\u escape");
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          if (text_.size() - pos_ < 2 || text_[pos_] != '\\' || text_[pos_ + 1] != 'u') {
            fail("high surrogate not followed by a \\u low surrogate");
          }
          pos_ += 2;
          const std::uint32_t lo = hex4();
          if (lo < 0xDC00 || lo > 0xDFFF) fail("high surrogate not followed by a low surrogate");
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        }
        put_utf8(out, cp);
        break;
      }
      default:
        --pos_;
        fail(std::string("unknown escape \\") + e);
    }
  }
}

std::string_view Reader::number_token() {
  ws();
  const std::size_t start = pos_;
  auto digit = [&] { return !at_end() && text_[pos_] >= '0' && text_[pos_] <= '9'; };
  auto bad = [&](const char* what) {
    const std::string_view rest = text_.substr(start, 9);
    for (const char* word : {"NaN", "-NaN", "Infinity", "-Infinity", "nan", "inf", "-inf"}) {
      if (rest.substr(0, std::strlen(word)) == word) {
        fail_at(start, std::string(word) + " is not a JSON number (model files hold finite values)");
      }
    }
    fail(what);
  };
  if (!at_end() && text_[pos_] == '-') ++pos_;
  if (!digit()) bad("expected a number");
  if (text_[pos_] == '0') {
    ++pos_;
  } else {
    while (digit()) ++pos_;
  }
  if (!at_end() && text_[pos_] == '.') {
    ++pos_;
    if (!digit()) fail("expected a digit after the decimal point");
    while (digit()) ++pos_;
  }
  if (!at_end() && (text_[pos_] == 'e' || text_[pos_] == 'E')) {
    ++pos_;
    if (!at_end() && (text_[pos_] == '+' || text_[pos_] == '-')) ++pos_;
    if (!digit()) fail("expected a digit in the exponent");
    while (digit()) ++pos_;
  }
  return text_.substr(start, pos_ - start);
}

bool Reader::boolean() {
  ws();
  if (text_.substr(pos_, 4) == "true") {
    pos_ += 4;
    return true;
  }
  if (text_.substr(pos_, 5) == "false") {
    pos_ += 5;
    return false;
  }
  const std::string_view rest = text_.substr(pos_);
  if (!rest.empty() && (std::string_view("true").substr(0, rest.size()) == rest ||
                        std::string_view("false").substr(0, rest.size()) == rest)) {
    fail_at(text_.size(), "expected true or false");  // the text ends inside the word
  }
  fail("expected true or false");
}

void Reader::skip_value(int depth) {
  if (depth > kMaxDepth) fail("nested deeper than " + std::to_string(kMaxDepth) + " levels");
  const char c = peek();
  if (c == '{') {
    ++pos_;
    if (accept('}')) return;
    do {
      string();
      expect(':', "':' after a member name");
      skip_value(depth + 1);
    } while (accept(','));
    expect('}', "',' or '}' in an object");
  } else if (c == '[') {
    ++pos_;
    if (accept(']')) return;
    do {
      skip_value(depth + 1);
    } while (accept(','));
    expect(']', "',' or ']' in an array");
  } else if (c == '"') {
    string();
  } else if (c == 't' || c == 'f') {
    boolean();
  } else if (c == 'n') {
    const std::string_view rest = text_.substr(pos_, 4);
    if (rest != "null") {
      if (std::string_view("null").substr(0, rest.size()) == rest && pos_ + rest.size() == text_.size()) {
        fail_at(text_.size(), "expected null");
      }
      fail("expected a value");
    }
    pos_ += 4;
  } else if (c == '-' || (c >= '0' && c <= '9') || c == 'N' || c == 'I') {
    number_token();  // (NaN and Infinity get their own message there)
  } else {
    fail("expected a value");
  }
}

double to_double(const Reader& r, std::size_t pos, std::string_view token, const std::string& what,
                 bool allow_inf) {
  double v = 0;
  const auto res = std::from_chars(token.data(), token.data() + token.size(), v);
  if (res.ec == std::errc::result_out_of_range) {
    if (allow_inf && token == "1e999") return std::numeric_limits<double>::infinity();
    r.fail_at(pos, what + " = " + std::string(token) + " is out of the range of a double");
  }
  if (res.ec != std::errc() || res.ptr != token.data() + token.size()) {
    r.fail_at(pos, what + ": '" + std::string(token) + "' is not a number");
  }
  return v;
}

std::int64_t to_int(const Reader& r, std::size_t pos, std::string_view token, const std::string& what,
                    std::int64_t lo, std::int64_t hi) {
  std::int64_t v = 0;
  const auto res = std::from_chars(token.data(), token.data() + token.size(), v);
  if (res.ec == std::errc() && res.ptr != token.data() + token.size()) {
    r.fail_at(pos, what + " = " + std::string(token) + " is not an integer");
  }
  if (res.ec != std::errc() || v < lo || v > hi) {
    r.fail_at(pos, what + " = " + std::string(token) + " is out of range [" + std::to_string(lo) +
                       ", " + std::to_string(hi) + "]");
  }
  return v;
}

std::uint64_t to_uint64(const Reader& r, std::size_t pos, std::string_view token, const std::string& what) {
  std::uint64_t v = 0;
  const bool negative = !token.empty() && token[0] == '-';
  const auto res = std::from_chars(token.data(), token.data() + token.size(), v);
  if (!negative && res.ec == std::errc() && res.ptr != token.data() + token.size()) {
    r.fail_at(pos, what + " = " + std::string(token) + " is not an integer");
  }
  if (negative || res.ec != std::errc()) {
    r.fail_at(pos, what + " = " + std::string(token) + " is out of range [0, 2^64 - 1]");
  }
  return v;
}

void put_string(std::string& out, std::string_view s) {
  out += '"';
  for (const char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
      out += buf;
    } else {
      out += c;
    }
  }
  out += '"';
}

void put_double(std::string& out, double v) {
  if (std::isinf(v) && v > 0) {
    out += "1e999";
    return;
  }
  char buf[40];
  const auto res = std::to_chars(buf, buf + sizeof(buf), v);
  out.append(buf, res.ptr);
}

void put_float(std::string& out, float v) {
  char buf[40];
  auto res = std::to_chars(buf, buf + sizeof(buf), v);
  // The shortest float text, when reading it as a double and rounding to float gives v back
  // (almost always); otherwise the double's shortest text, which reads back exactly.
  double back = 0;
  std::from_chars(buf, res.ptr, back);
  const float f = static_cast<float>(back);
  if (std::memcmp(&f, &v, sizeof(f)) != 0) res = std::to_chars(buf, buf + sizeof(buf), static_cast<double>(v));
  out.append(buf, res.ptr);
}

}  // namespace kmeans::detail::json
