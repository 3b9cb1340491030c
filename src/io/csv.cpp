// SPDX-License-Identifier: Apache-2.0
// .csv reading: comma-separated numbers, an optional header row, strict locale-free parsing;
// every malformed file is a kmeans::Error naming the file, the line and the field.
#include <charconv>

#include "io/common.hpp"

namespace kmeans::io::detail {
namespace {

bool is_blank(const std::string& s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; });
}

std::string trim(const std::string& s, std::size_t b, std::size_t e) {
  while (b < e && (s[b] == ' ' || s[b] == '\t')) ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t')) --e;
  return s.substr(b, e - b);
}

std::vector<std::string> split_fields(const std::string& line) {
  std::vector<std::string> fields;
  std::size_t b = 0;
  for (;;) {
    const std::size_t e = line.find(',', b);
    fields.push_back(trim(line, b, e == std::string::npos ? line.size() : e));
    if (e == std::string::npos) break;
    b = e + 1;
  }
  return fields;
}

enum class ParseStatus { Ok, Empty, NotANumber, OutOfRange };

/// A whole field as a double: decimal or scientific notation, an optional sign, nan and inf
/// (rejected later by the finiteness check, which names the row and column). Locale-free.
ParseStatus parse_double(const std::string& f, double& out) {
  if (f.empty()) return ParseStatus::Empty;
  const char* b = f.data();
  const char* e = f.data() + f.size();
  bool negative = false;
  if (*b == '+' || *b == '-') {
    negative = *b == '-';
    ++b;
    if (b == e || *b == '+' || *b == '-') return ParseStatus::NotANumber;
  }
  double v = 0;
  const auto r = std::from_chars(b, e, v, std::chars_format::general);
  if (r.ec == std::errc::result_out_of_range && r.ptr == e) return ParseStatus::OutOfRange;
  if (r.ec != std::errc() || r.ptr != e) return ParseStatus::NotANumber;
  out = negative ? -v : v;
  return ParseStatus::Ok;
}

}  // namespace

Matrix parse_csv_text(std::string text, const std::string& path, CsvHeader header_mode) {
  if (text.empty()) fail(path, "is empty (0 bytes)");
  if (text.compare(0, 3, "\xEF\xBB\xBF") == 0) text.erase(0, 3);  // UTF-8 byte-order mark
  if (text.find('\0') != std::string::npos) fail(path, "contains NUL bytes: not a text .csv file");
  // Blank lines at the end (a trailing newline, editors' extra lines) are not rows.
  std::size_t end = text.size();
  while (end > 0 && std::isspace(static_cast<unsigned char>(text[end - 1]))) --end;
  if (end == 0) fail(path, "is empty: no rows");

  Matrix m;
  m.dtype = Dtype::Float64;
  std::size_t cols = 0, header_fields = 0, line_no = 0, first_data_line = 0;
  bool header = false;
  std::string line1_number;  // Auto: the numeric field that made line 1 data, for the message
  // Lines end in "\n", "\r\n" or a lone "\r" (classic Mac OS files): all three are read.
  for (std::size_t b = 0; b < end;) {
    const std::size_t e = std::min(text.find_first_of("\r\n", b), end);
    ++line_no;
    const std::string line = text.substr(b, e - b);
    b = e + 1;
    if (e < end && text[e] == '\r' && b < end && text[b] == '\n') ++b;
    const std::string where = "line " + std::to_string(line_no);
    if (is_blank(line)) fail(path, where + " is empty (blank lines are allowed only at the end)");
    const std::vector<std::string> fields = split_fields(line);
    if (line_no == 1) {
      // Auto: line 1 is a header only when none of its fields is a number, so that a typo in
      // the first data row ("1,2O") is an error, not a silently dropped row.
      if (header_mode == CsvHeader::Auto) {
        header = true;
        for (std::size_t j = 0; j < fields.size() && header; ++j) {
          double v;
          const ParseStatus st = parse_double(fields[j], v);
          if (st == ParseStatus::Ok || st == ParseStatus::OutOfRange) {
            header = false;
            line1_number = "column " + std::to_string(j + 1) + " " + quoted(fields[j]);
          }
        }
      } else {
        header = header_mode == CsvHeader::Present;
      }
      if (header) {
        header_fields = fields.size();
        continue;
      }
    }
    if (first_data_line == 0) {
      first_data_line = line_no;
      cols = fields.size();
      if (header && header_fields != cols) {
        fail(path, "the header (line 1) has " + std::to_string(header_fields) + " fields but " +
                       where + " has " + std::to_string(cols));
      }
    } else if (fields.size() != cols) {
      fail(path, where + " has " + std::to_string(fields.size()) + " fields, expected " +
                     std::to_string(cols) + " as on line " + std::to_string(first_data_line) +
                     " (ragged rows)");
    }
    for (std::size_t j = 0; j < fields.size(); ++j) {
      double v = 0;
      const std::string at = where + ", column " + std::to_string(j + 1);
      // Why line 1 was taken as data, when that was a guess.
      const std::string why = line_no == 1 && !line1_number.empty()
                                  ? " (line 1 is read as data, not as a header, because its " +
                                        line1_number + " is a number)"
                                  : "";
      switch (parse_double(fields[j], v)) {
        case ParseStatus::Ok: break;
        case ParseStatus::Empty: fail(path, at + ": empty field" + why);
        case ParseStatus::NotANumber:
          fail(path, at + ": " + quoted(fields[j]) + " is not a number" + why);
        case ParseStatus::OutOfRange:
          fail(path, at + ": " + quoted(fields[j]) + " is out of the float64 range");
      }
      m.f64.push_back(v);
    }
    ++m.rows;
  }
  if (m.rows == 0) fail(path, "has a header row but no data rows");
  m.cols = static_cast<std::int64_t>(cols);
  return m;
}

Matrix read_csv_matrix(const std::string& path, CsvHeader header) {
  std::ifstream in;
  const std::uint64_t size = open_for_reading(path, in);
  std::string text(static_cast<std::size_t>(size), '\0');
  read_exact(in, path, text.data(), size);
  return parse_csv_text(std::move(text), path, header);
}

}  // namespace kmeans::io::detail
