// SPDX-License-Identifier: Apache-2.0
// .npy and .csv reading and writing for the CLI, the benchmark and the tests: strict parsing
// (every malformed file is a kmeans::Error naming the file and the problem) and atomic writes.
#include "io.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <system_error>
#include <type_traits>

#if defined(_WIN32)
#include <io.h>
#include <process.h>
#define KMEANS_GETPID _getpid
#else
#include <unistd.h>
#define KMEANS_GETPID getpid
#endif

namespace kmeans::io {
namespace {

namespace fs = std::filesystem;

/// A .npy header longer than this is rejected before it is read: NumPy writes a few hundred
/// bytes at most, so a larger length means a corrupt or hostile file.
constexpr std::uint64_t kMaxNpyHeaderBytes = std::uint64_t{1} << 20;
/// Longest piece of file content quoted in an error message.
constexpr std::size_t kMaxQuoted = 40;

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw Error(path + ": " + what);
}

/// File content made safe for a one-line message: control bytes become '?', long text is cut.
std::string quoted(const std::string& s) {
  std::string out = "'";
  for (std::size_t i = 0; i < s.size() && i < kMaxQuoted; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    out += (c < 0x20 || c == 0x7f) ? '?' : static_cast<char>(c);
  }
  if (s.size() > kMaxQuoted) out += "...";
  return out + "'";
}

std::string lower_extension(const std::string& path) {
  std::string ext = fs::path(path).extension().string();
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ext;
}

std::string shape_string(const std::vector<std::int64_t>& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + (shape.size() == 1 ? ",)" : ")");
}

/// Opens a regular file for reading; directories, FIFOs and devices are refused so that a read
/// can neither fail obscurely nor block forever. Returns the file size.
std::uint64_t open_for_reading(const std::string& path, std::ifstream& in) {
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (ec || !fs::exists(st)) {
    fail(path, std::string("cannot open: ") +
                   (ec ? ec.message() : std::string(std::strerror(ENOENT))));
  }
  if (fs::is_directory(st)) fail(path, "is a directory, not a file");
  if (!fs::is_regular_file(st)) fail(path, "is not a regular file");
  const std::uintmax_t size = fs::file_size(path, ec);
  if (ec) fail(path, "cannot read the file size: " + ec.message());
  errno = 0;
  in.open(path, std::ios::binary);
  if (!in) fail(path, std::string("cannot open: ") + std::strerror(errno ? errno : EACCES));
  return static_cast<std::uint64_t>(size);
}

void read_exact(std::ifstream& in, const std::string& path, char* dst, std::uint64_t bytes) {
  // Chunks keep each read's count well inside std::streamsize on every platform.
  constexpr std::uint64_t kChunk = std::uint64_t{1} << 30;
  while (bytes > 0) {
    const std::uint64_t step = std::min(bytes, kChunk);
    in.read(dst, static_cast<std::streamsize>(step));
    if (static_cast<std::uint64_t>(in.gcount()) != step) fail(path, "read error (file changed?)");
    dst += step;
    bytes -= step;
  }
}

// ---------------------------------------------------------------------------------------------
// .npy reading

struct NpyHeader {
  std::string descr;               ///< As written, e.g. "<f8".
  char kind = 0;                   ///< 'f', 'i', ... after the byte-order character.
  int itemsize = 0;
  bool fortran_order = false;
  std::vector<std::int64_t> shape;
  std::uint64_t count = 1;         ///< Product of the shape.
  std::uint64_t data_offset = 0;   ///< Bytes before the array data.
};

/// The Python-literal dict of a .npy header: {'descr': '<f8', 'fortran_order': False,
/// 'shape': (3, 4), } with any whitespace, keys in any order, either quote style.
class NpyDictParser {
 public:
  NpyDictParser(const std::string& text, const std::string& path) : s_(text), path_(path) {}

  NpyHeader parse() {
    NpyHeader h;
    bool seen_descr = false, seen_fortran = false, seen_shape = false;
    skip_ws();
    expect('{');
    for (;;) {
      skip_ws();
      if (eat('}')) break;
      const std::string key = string_literal();
      skip_ws();
      expect(':');
      skip_ws();
      if (key == "descr") {
        if (seen_descr) bad("key 'descr' appears twice");
        seen_descr = true;
        if (peek() == '[') {
          fail(path_, "unsupported dtype: structured arrays (a list descr) are not supported; "
                      "expected float32 '<f4' or float64 '<f8'");
        }
        h.descr = string_literal();
      } else if (key == "fortran_order") {
        if (seen_fortran) bad("key 'fortran_order' appears twice");
        seen_fortran = true;
        h.fortran_order = boolean();
      } else if (key == "shape") {
        if (seen_shape) bad("key 'shape' appears twice");
        seen_shape = true;
        h.shape = int_tuple();
      } else {
        bad("unexpected key " + quoted(key));
      }
      skip_ws();
      if (eat('}')) break;
      expect(',');
    }
    // NumPy pads with spaces and ends with '\n'; tolerate NUL padding from other writers.
    for (; pos_ < s_.size(); ++pos_) {
      if (!std::isspace(static_cast<unsigned char>(s_[pos_])) && s_[pos_] != '\0')
        bad("unexpected text after the closing '}'");
    }
    if (!seen_descr) bad("key 'descr' is missing");
    if (!seen_fortran) bad("key 'fortran_order' is missing");
    if (!seen_shape) bad("key 'shape' is missing");
    return h;
  }

 private:
  [[noreturn]] void bad(const std::string& what) {
    fail(path_, "malformed .npy header: " + what + " (at header byte " + std::to_string(pos_) +
                    ")");
  }
  char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  void skip_ws() {
    while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_;
  }
  bool eat(char c) {
    if (peek() != c || pos_ >= s_.size()) return false;
    ++pos_;
    return true;
  }
  void expect(char c) {
    if (!eat(c)) bad(std::string("expected '") + c + "'");
  }
  std::string string_literal() {
    const char q = peek();
    if (q != '\'' && q != '"') bad("expected a quoted string");
    ++pos_;
    const std::size_t end = s_.find(q, pos_);
    if (end == std::string::npos) bad("unterminated string");
    std::string out = s_.substr(pos_, end - pos_);
    pos_ = end + 1;
    return out;
  }
  bool boolean() {
    if (s_.compare(pos_, 4, "True") == 0) {
      pos_ += 4;
      return true;
    }
    if (s_.compare(pos_, 5, "False") == 0) {
      pos_ += 5;
      return false;
    }
    bad("expected True or False");
  }
  std::vector<std::int64_t> int_tuple() {
    std::vector<std::int64_t> v;
    expect('(');
    for (;;) {
      skip_ws();
      if (eat(')')) break;
      if (!std::isdigit(static_cast<unsigned char>(peek()))) bad("expected a non-negative integer in 'shape'");
      std::int64_t x = 0;
      const char* first = s_.data() + pos_;
      const auto r = std::from_chars(first, s_.data() + s_.size(), x);
      if (r.ec != std::errc()) bad("a dimension of 'shape' does not fit in 64 bits");
      pos_ += static_cast<std::size_t>(r.ptr - first);
      if (peek() == 'L') ++pos_;  // Python 2 long literal
      v.push_back(x);
      skip_ws();
      if (eat(')')) break;
      expect(',');
    }
    return v;
  }

  const std::string& s_;
  const std::string& path_;
  std::size_t pos_ = 0;
};

std::string dtype_name(char kind, int itemsize) {
  switch (kind) {
    case 'f': return "float" + std::to_string(itemsize * 8);
    case 'i': return "int" + std::to_string(itemsize * 8);
    case 'u': return "uint" + std::to_string(itemsize * 8);
    case 'c': return "complex" + std::to_string(itemsize * 8);
    case 'b': return "bool";
    case 'O': return "object";
    case 'U': return "unicode string";
    case 'S': case 'a': return "byte string";
    case 'V': return "void/raw";
    case 'M': return "datetime64";
    case 'm': return "timedelta64";
    default: return "unknown";
  }
}

/// Reads and checks the magic string and header dict; leaves `in` at the first data byte.
NpyHeader read_npy_header(std::ifstream& in, const std::string& path, std::uint64_t file_size) {
  static const char kMagic[6] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};
  if (file_size == 0) fail(path, "is empty (0 bytes), not a .npy file");
  char pre[8];
  if (file_size < sizeof(pre)) fail(path, "truncated .npy file: " + std::to_string(file_size) + " bytes, too short for the magic string and version");
  read_exact(in, path, pre, sizeof(pre));
  if (std::memcmp(pre, kMagic, sizeof(kMagic)) != 0) fail(path, "not a .npy file (bad magic string)");
  const int major = static_cast<unsigned char>(pre[6]);
  const int minor = static_cast<unsigned char>(pre[7]);
  if (major < 1 || major > 3 || minor != 0) {
    fail(path, "unsupported .npy format version " + std::to_string(major) + "." +
                   std::to_string(minor) + " (supported: 1.0, 2.0, 3.0)");
  }
  const std::uint64_t len_bytes = major == 1 ? 2 : 4;
  if (file_size < sizeof(pre) + len_bytes) fail(path, "truncated .npy file: the header length is cut off");
  unsigned char lb[4] = {0, 0, 0, 0};
  read_exact(in, path, reinterpret_cast<char*>(lb), len_bytes);
  std::uint64_t header_len = 0;
  for (std::uint64_t i = len_bytes; i-- > 0;) header_len = (header_len << 8) | lb[i];
  const std::uint64_t prefix = sizeof(pre) + len_bytes;
  if (header_len > kMaxNpyHeaderBytes) {
    fail(path, "header length " + std::to_string(header_len) + " bytes exceeds the limit of " +
                   std::to_string(kMaxNpyHeaderBytes) + " bytes (corrupt file?)");
  }
  if (header_len > file_size - prefix) {
    fail(path, "truncated .npy header: header length " + std::to_string(header_len) +
                   " bytes but only " + std::to_string(file_size - prefix) +
                   " bytes follow in the file");
  }
  std::string text(static_cast<std::size_t>(header_len), '\0');
  read_exact(in, path, text.data(), header_len);
  NpyHeader h = NpyDictParser(text, path).parse();
  h.data_offset = prefix + header_len;

  // descr: byte order + kind + item size. '=' (native) and '|' (not applicable) are accepted as
  // little-endian: this code only runs on little-endian hosts (checked below).
  const std::string& ds = h.descr;
  const char order = ds.empty() ? '\0' : ds[0];
  std::size_t at = (order == '<' || order == '>' || order == '=' || order == '|') ? 1 : 0;
  if (at < ds.size()) h.kind = ds[at++];
  int size = 0;
  const auto r = std::from_chars(ds.data() + std::min(at, ds.size()), ds.data() + ds.size(), size);
  h.itemsize = (r.ec == std::errc() && r.ptr == ds.data() + ds.size()) ? size : 0;
  const std::string named = quoted(ds) + (h.itemsize > 0 || h.kind == 'O' || h.kind == 'b'
                                              ? " (" + dtype_name(h.kind, h.itemsize) + ")"
                                              : "");
  if (h.kind == 0 || (h.itemsize <= 0 && h.kind != 'O')) fail(path, "unsupported dtype " + quoted(ds));
  if (order == '>' && h.itemsize > 1) {
    fail(path, "big-endian dtype " + named + " is not supported; convert with "
               "a.astype('<" + std::string(1, h.kind) + std::to_string(h.itemsize) + "')");
  }
  if (h.kind == 'O') fail(path, "unsupported dtype " + named + ": object arrays are not supported");
  if (h.fortran_order && h.shape.size() > 1) {
    fail(path, "Fortran-order (column-major) arrays are not supported: fortran_order is True; "
               "save with np.ascontiguousarray(a)");
  }
  for (std::int64_t dim : h.shape) {
    if (dim != 0 && h.count > std::numeric_limits<std::uint64_t>::max() / 16 / static_cast<std::uint64_t>(dim)) {
      fail(path, "shape " + shape_string(h.shape) + " overflows: too many elements");
    }
    h.count *= static_cast<std::uint64_t>(dim);
  }
  return h;
}

void check_npy_data_size(const NpyHeader& h, const std::string& path, std::uint64_t file_size) {
  const std::uint64_t need = h.count * static_cast<std::uint64_t>(h.itemsize);
  const std::uint64_t have = file_size - h.data_offset;
  if (have < need) {
    fail(path, "truncated data: shape " + shape_string(h.shape) + " of " + quoted(h.descr) +
                   " needs " + std::to_string(need) + " bytes but only " + std::to_string(have) +
                   " follow the header");
  }
  if (have > need) {
    fail(path, "unexpected extra data: shape " + shape_string(h.shape) + " of " +
                   quoted(h.descr) + " needs " + std::to_string(need) + " bytes but " +
                   std::to_string(have) + " follow the header");
  }
}

bool host_is_little_endian() {
  const std::uint16_t probe = 1;
  unsigned char first;
  std::memcpy(&first, &probe, 1);
  return first == 1;
}

template <class T>
constexpr char npy_kind() {
  return std::is_floating_point_v<T> ? 'f' : 'i';
}

template <class T>
std::string npy_descr() {
  return std::string("<") + npy_kind<T>() + std::to_string(sizeof(T));
}

/// Reads the data of a checked header into a vector of T (the header's dtype must be T).
template <class T>
std::vector<T> read_npy_data(std::ifstream& in, const NpyHeader& h, const std::string& path) {
  std::vector<T> v(static_cast<std::size_t>(h.count));
  read_exact(in, path, reinterpret_cast<char*>(v.data()), h.count * sizeof(T));
  return v;
}

template <class T>
bool header_is(const NpyHeader& h) {
  return h.kind == npy_kind<T>() && h.itemsize == static_cast<int>(sizeof(T));
}

/// A float32/float64 .npy as a Matrix: a 2-D (n, d) array, or with `as_vector` a 1-D (n,) or
/// column (n, 1) array read as n x 1.
Matrix read_npy_floats(const std::string& path, bool as_vector) {
  if (!host_is_little_endian()) fail(path, ".npy reading is implemented for little-endian hosts only");
  std::ifstream in;
  const std::uint64_t size = open_for_reading(path, in);
  const NpyHeader h = read_npy_header(in, path, size);
  if (!header_is<float>(h) && !header_is<double>(h)) {
    fail(path, "unsupported dtype " + quoted(h.descr) + " (" + dtype_name(h.kind, h.itemsize) +
                   "); expected float32 '<f4' or float64 '<f8'");
  }
  const std::size_t ndim = h.shape.size();
  if (as_vector && !(ndim == 1 || (ndim == 2 && h.shape[1] == 1))) {
    fail(path, "is " + std::to_string(ndim) + "-D with shape " + shape_string(h.shape) +
                   "; expected a 1-D array (n,) or a column (n, 1)");
  }
  if (!as_vector && ndim != 2) {
    fail(path, "is " + std::to_string(ndim) + "-D with shape " + shape_string(h.shape) +
                   "; expected a 2-D array (n, d)");
  }
  check_npy_data_size(h, path, size);
  Matrix m;
  m.rows = h.shape[0];
  m.cols = as_vector ? 1 : h.shape[1];
  if (h.kind == 'f' && h.itemsize == 4) {
    m.dtype = Dtype::Float32;
    m.f32 = read_npy_data<float>(in, h, path);
  } else {
    m.dtype = Dtype::Float64;
    m.f64 = read_npy_data<double>(in, h, path);
  }
  return m;
}

// ---------------------------------------------------------------------------------------------
// .csv reading

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

Matrix read_csv_matrix(const std::string& path) {
  std::ifstream in;
  const std::uint64_t size = open_for_reading(path, in);
  if (size == 0) fail(path, "is empty (0 bytes)");
  std::string text(static_cast<std::size_t>(size), '\0');
  read_exact(in, path, text.data(), size);
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
  for (std::size_t b = 0; b < end;) {
    std::size_t e = std::min(text.find('\n', b), end);
    ++line_no;
    std::string line = text.substr(b, e - b);
    b = e + 1;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const std::string where = "line " + std::to_string(line_no);
    if (is_blank(line)) fail(path, where + " is empty (blank lines are allowed only at the end)");
    const std::vector<std::string> fields = split_fields(line);
    if (line_no == 1) {
      // A first row that is not all numbers is a header.
      double v;
      for (const std::string& f : fields)
        if (parse_double(f, v) != ParseStatus::Ok) header = true;
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
      switch (parse_double(fields[j], v)) {
        case ParseStatus::Ok: break;
        case ParseStatus::Empty: fail(path, at + ": empty field");
        case ParseStatus::NotANumber: fail(path, at + ": " + quoted(fields[j]) + " is not a number");
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

// ---------------------------------------------------------------------------------------------
// Writing

enum class Format { Npy, Csv };

Format format_for_writing(const std::string& path) {
  const std::string ext = lower_extension(path);
  if (ext == ".npy") return Format::Npy;
  if (ext == ".csv") return Format::Csv;
  fail(path, "unknown output format " + quoted(ext) + ": expected a .npy or .csv file name");
}

void check_dims(const std::string& path, std::int64_t rows, std::int64_t cols) {
  if (rows < 0 || cols < 0) {
    fail(path, "cannot write a negative shape (" + std::to_string(rows) + ", " +
                   std::to_string(cols) + ")");
  }
}

/// A stream whose failures become kmeans::Error naming the target path.
class OutFile {
 public:
  OutFile(const std::string& temp, const std::string& target) : target_(target) {
    errno = 0;
    out_.open(temp, std::ios::binary | std::ios::trunc);
    if (!out_) fail(target_, std::string("cannot write: ") + std::strerror(errno ? errno : EACCES));
  }
  void write(const char* p, std::size_t bytes) {
    out_.write(p, static_cast<std::streamsize>(bytes));
    if (!out_) fail(target_, std::string("write error: ") + std::strerror(errno ? errno : EIO));
  }
  void close() {
    out_.close();
    if (!out_) fail(target_, std::string("write error on close: ") + std::strerror(errno ? errno : EIO));
  }

 private:
  std::ofstream out_;
  std::string target_;
};

template <class T>
void write_npy_file(const std::string& temp, const std::string& target, const T* data,
                    std::int64_t rows, std::int64_t cols) {
  check_dims(target, rows, cols);
  const std::string shape = cols > 0 ? "(" + std::to_string(rows) + ", " + std::to_string(cols) + ")"
                                     : "(" + std::to_string(rows) + ",)";
  std::string dict = "{'descr': '" + npy_descr<T>() + "', 'fortran_order': False, 'shape': " +
                     shape + ", }";
  // Version 1.0; NumPy pads the header with spaces and a final '\n' so the data start on a
  // 64-byte boundary.
  constexpr std::size_t kPrefix = 10, kAlign = 64;
  const std::size_t total = ((kPrefix + dict.size() + 1 + kAlign - 1) / kAlign) * kAlign;
  dict.append(total - kPrefix - dict.size() - 1, ' ');
  dict += '\n';
  const std::size_t header_len = dict.size();
  const char prefix[kPrefix] = {'\x93', 'N', 'U', 'M', 'P', 'Y', 1, 0,
                                static_cast<char>(header_len & 0xff),
                                static_cast<char>((header_len >> 8) & 0xff)};
  OutFile out(temp, target);
  out.write(prefix, kPrefix);
  out.write(dict.data(), dict.size());
  const std::uint64_t count = static_cast<std::uint64_t>(rows) * static_cast<std::uint64_t>(cols > 0 ? cols : 1);
  if (count > 0) out.write(reinterpret_cast<const char*>(data), count * sizeof(T));
  out.close();
}

template <class T>
void write_csv_file(const std::string& temp, const std::string& target, const T* data,
                    std::int64_t rows, std::int64_t cols) {
  check_dims(target, rows, cols);
  const std::int64_t width = cols > 0 ? cols : 1;
  OutFile out(temp, target);
  std::string buf;
  char num[64];
  for (std::int64_t i = 0; i < rows; ++i) {
    for (std::int64_t j = 0; j < width; ++j) {
      // to_chars without a precision gives the shortest text that reads back to the same value.
      const auto r = std::to_chars(num, num + sizeof(num), data[i * width + j]);
      if (j > 0) buf += ',';
      buf.append(num, r.ptr);
    }
    buf += '\n';
    if (buf.size() > (std::size_t{1} << 20)) {
      out.write(buf.data(), buf.size());
      buf.clear();
    }
  }
  out.write(buf.data(), buf.size());
  out.close();
}

std::string temp_name_for(const std::string& target) {
  static unsigned counter = 0;
  return target + ".tmp-" + std::to_string(KMEANS_GETPID()) + "-" + std::to_string(counter++);
}

void rename_over(const std::string& temp, const std::string& target) {
  std::error_code ec;
  fs::rename(temp, target, ec);
  if (ec) {
    fs::remove(temp, ec);
    fail(target, "cannot rename the finished temporary file into place: " + ec.message());
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Public functions

Matrix read_matrix(const std::string& path) {
  const std::string ext = lower_extension(path);
  if (ext == ".npy") return read_npy_floats(path, false);
  if (ext == ".csv") return read_csv_matrix(path);
  fail(path, "unknown input format " + quoted(ext) + ": expected a .npy or .csv file");
}

Matrix read_vector(const std::string& path) {
  const std::string ext = lower_extension(path);
  if (ext == ".npy") return read_npy_floats(path, true);
  if (ext != ".csv") fail(path, "unknown input format " + quoted(ext) + ": expected a .npy or .csv file");
  Matrix m = read_csv_matrix(path);
  if (m.cols != 1) {
    fail(path, "has " + std::to_string(m.cols) + " columns; expected one value per line");
  }
  return m;
}

template <class T>
std::vector<T> read_npy(const std::string& path, std::vector<std::int64_t>& shape) {
  if (!host_is_little_endian()) fail(path, ".npy reading is implemented for little-endian hosts only");
  std::ifstream in;
  const std::uint64_t size = open_for_reading(path, in);
  const NpyHeader h = read_npy_header(in, path, size);
  if (!header_is<T>(h)) {
    fail(path, "dtype " + quoted(h.descr) + " (" + dtype_name(h.kind, h.itemsize) +
                   ") is not the expected " + quoted(npy_descr<T>()));
  }
  check_npy_data_size(h, path, size);
  shape = h.shape;
  return read_npy_data<T>(in, h, path);
}

void convert(Matrix& m, Dtype to) {
  if (m.dtype == to) return;
  if (to == Dtype::Float64) {
    m.f64.assign(m.f32.begin(), m.f32.end());
    std::vector<float>().swap(m.f32);
  } else {
    m.f32.resize(m.f64.size());
    for (std::size_t i = 0; i < m.f64.size(); ++i) {
      const double v = m.f64[i];
      m.f32[i] = static_cast<float>(v);
      // A finite value that does not fit in float32 would silently become Inf.
      if (std::isfinite(v) && !std::isfinite(m.f32[i])) {
        char num[32];
        const auto r = std::to_chars(num, num + sizeof(num), v);  // shortest round-trip text
        std::ostringstream msg;
        const std::int64_t cols = m.cols > 0 ? m.cols : 1;
        msg << "value " << std::string(num, r.ptr) << " at row " << static_cast<std::int64_t>(i) / cols << ", column "
            << static_cast<std::int64_t>(i) % cols << " is out of the float32 range";
        throw Error(msg.str());
      }
    }
    std::vector<double>().swap(m.f64);
  }
  m.dtype = to;
}

/// Writes through `write_file(temp)` into a temporary sibling, then renames it over `path`:
/// readers never see a half-written file, and a failed write leaves nothing behind.
template <class F>
void write_atomically(const std::string& path, F&& write_file) {
  const std::string temp = temp_name_for(path);
  try {
    write_file(temp);
  } catch (...) {
    std::error_code ec;
    fs::remove(temp, ec);
    throw;
  }
  rename_over(temp, path);
}

template <class T>
void write_npy(const std::string& path, const T* data, std::int64_t rows, std::int64_t cols) {
  write_atomically(path, [&](const std::string& temp) { write_npy_file(temp, path, data, rows, cols); });
}

template <class T>
void write_csv(const std::string& path, const T* data, std::int64_t rows, std::int64_t cols) {
  write_atomically(path, [&](const std::string& temp) { write_csv_file(temp, path, data, rows, cols); });
}

template <class T>
void write_matrix(const std::string& path, const T* data, std::int64_t rows, std::int64_t cols) {
  if (format_for_writing(path) == Format::Npy) {
    write_npy(path, data, rows, cols);
  } else {
    write_csv(path, data, rows, cols);
  }
}

bool has_matrix_extension(const std::string& path) {
  const std::string ext = lower_extension(path);
  return ext == ".npy" || ext == ".csv";
}

void check_writable(const std::string& path) {
  std::error_code ec;
  if (path.empty()) throw Error("output path is empty");
  if (fs::is_directory(path, ec)) fail(path, "is a directory; expected a file name");
  fs::path dir = fs::path(path).parent_path();
  if (dir.empty()) dir = ".";
  if (!fs::exists(dir, ec)) fail(path, "cannot write: directory " + quoted(dir.string()) + " does not exist");
  if (!fs::is_directory(dir, ec)) fail(path, "cannot write: " + quoted(dir.string()) + " is not a directory");
#if !defined(_WIN32)
  if (::access(dir.c_str(), W_OK) != 0) {
    fail(path, "cannot write in directory " + quoted(dir.string()) + ": " + std::strerror(errno));
  }
#endif
}

StagedWrites::~StagedWrites() {
  std::error_code ec;
  for (const Staged& f : files_) fs::remove(f.temp, ec);
}

template <class T>
void StagedWrites::add(const std::string& path, const T* data, std::int64_t rows, std::int64_t cols) {
  const Format format = format_for_writing(path);
  Staged f{temp_name_for(path), path};
  files_.push_back(f);  // registered first, so the destructor removes a half-written temporary
  if (format == Format::Npy) {
    write_npy_file(f.temp, path, data, rows, cols);
  } else {
    write_csv_file(f.temp, path, data, rows, cols);
  }
}

void StagedWrites::commit() {
  for (const Staged& f : files_) rename_over(f.temp, f.target);
  files_.clear();
}

#define KMEANS_IO_INSTANTIATE(T)                                                                \
  template std::vector<T> read_npy<T>(const std::string&, std::vector<std::int64_t>&);          \
  template void write_npy<T>(const std::string&, const T*, std::int64_t, std::int64_t);        \
  template void write_csv<T>(const std::string&, const T*, std::int64_t, std::int64_t);        \
  template void write_matrix<T>(const std::string&, const T*, std::int64_t, std::int64_t);     \
  template void StagedWrites::add<T>(const std::string&, const T*, std::int64_t, std::int64_t);
KMEANS_IO_INSTANTIATE(float)
KMEANS_IO_INSTANTIATE(double)
KMEANS_IO_INSTANTIATE(std::int32_t)
#undef KMEANS_IO_INSTANTIATE

}  // namespace kmeans::io
