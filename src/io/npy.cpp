// SPDX-License-Identifier: Apache-2.0
// .npy reading: the magic string, the header dict (parsed strictly), the dtype and shape checks
// and the data; every malformed file is a kmeans::Error naming the file and the problem.
#include <charconv>
#include <limits>

#include "io/common.hpp"

namespace kmeans::io {
namespace detail {
namespace {

/// A .npy header longer than this is rejected before it is read: NumPy writes a few hundred
/// bytes at most, so a larger length means a corrupt or hostile file.
constexpr std::uint64_t kMaxNpyHeaderBytes = std::uint64_t{1} << 20;

struct NpyHeader {
  std::string descr;               ///< As written, e.g. "<f8".
  char kind = 0;                   ///< 'f', 'i', ... after the byte-order character.
  std::uint64_t itemsize = 0;     ///< Bytes per element (0: unparsable).
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

/// "float64" for ('f', 8); the bit count is formed in 64 bits and, past what fits, the size is
/// given in bytes instead, so that no item size read from a file can overflow.
std::string dtype_name(char kind, std::uint64_t itemsize) {
  auto sized = [itemsize](const char* base) {
    if (itemsize > std::numeric_limits<std::uint64_t>::max() / 8) {
      return std::string(base) + " of " + std::to_string(itemsize) + " bytes";
    }
    return base + std::to_string(itemsize * 8);
  };
  switch (kind) {
    case 'f': return sized("float");
    case 'i': return sized("int");
    case 'u': return sized("uint");
    case 'c': return sized("complex");
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
NpyHeader read_npy_header(std::istream& in, const std::string& path, std::uint64_t file_size) {
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
  std::uint64_t size = 0;  // out of range (more than 20 digits) reads as unparsable
  const auto r = std::from_chars(ds.data() + std::min(at, ds.size()), ds.data() + ds.size(), size);
  h.itemsize = (r.ec == std::errc() && r.ptr == ds.data() + ds.size()) ? size : 0;
  const std::string named = quoted(ds) + (h.itemsize > 0 || h.kind == 'O' || h.kind == 'b'
                                              ? " (" + dtype_name(h.kind, h.itemsize) + ")"
                                              : "");
  if (h.kind == 0 || (h.itemsize == 0 && h.kind != 'O')) fail(path, "unsupported dtype " + quoted(ds));
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
  if (h.count != 0 && h.itemsize > std::numeric_limits<std::uint64_t>::max() / h.count) {
    fail(path, "shape " + shape_string(h.shape) + " of " + quoted(h.descr) +
                   " overflows: the data size does not fit in 64 bits");
  }
  const std::uint64_t need = h.count * h.itemsize;
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

template <class T>
std::vector<T> read_npy_data(std::istream& in, const NpyHeader& h, const std::string& path) {
  std::vector<T> v(static_cast<std::size_t>(h.count));
  read_exact(in, path, reinterpret_cast<char*>(v.data()), h.count * sizeof(T));
  return v;
}

template <class T>
bool header_is(const NpyHeader& h) {
  return h.kind == npy_kind<T>() && h.itemsize == sizeof(T);
}

/// The checks both float readers make of a header: float32 or float64, a 2-D array (n, d) or,
/// with as_vector, a 1-D array or a column, and a file holding all of its data.
void check_float_matrix(const NpyHeader& h, const std::string& path, std::uint64_t size,
                        bool as_vector) {
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
}

}  // namespace

Matrix read_npy_floats(std::istream& in, const std::string& path, std::uint64_t size,
                       bool as_vector) {
  if (!host_is_little_endian()) fail(path, ".npy reading is implemented for little-endian hosts only");
  const NpyHeader h = read_npy_header(in, path, size);
  check_float_matrix(h, path, size, as_vector);
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

Matrix read_npy_floats(const std::string& path, bool as_vector) {
  std::ifstream in;
  const std::uint64_t size = open_for_reading(path, in);
  return read_npy_floats(in, path, size, as_vector);
}

}  // namespace detail

template <class T>
std::vector<T> read_npy(const std::string& path, std::vector<std::int64_t>& shape) {
  using namespace detail;
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

Matrix read_npy_rows(const std::string& path, std::int64_t first, std::int64_t count,
                     bool as_vector, std::int64_t* total_rows, std::int64_t* total_cols) {
  using namespace detail;
  if (!host_is_little_endian()) fail(path, ".npy reading is implemented for little-endian hosts only");
  std::ifstream in;
  const std::uint64_t size = open_for_reading(path, in);
  const NpyHeader h = read_npy_header(in, path, size);
  check_float_matrix(h, path, size, as_vector);
  const std::int64_t rows = h.shape[0], cols = as_vector ? 1 : h.shape[1];
  if (total_rows) *total_rows = rows;
  if (total_cols) *total_cols = cols;
  if (first < 0 || count < 0 || first > rows || count > rows - first) {
    fail(path, "rows [" + std::to_string(first) + ", " + std::to_string(first + count) +
                   ") are outside its " + std::to_string(rows) + " rows");
  }
  Matrix m;
  m.rows = count;
  m.cols = cols;
  m.dtype = h.itemsize == 4 ? Dtype::Float32 : Dtype::Float64;
  const auto values = static_cast<std::size_t>(count * cols);
  char* out = nullptr;
  if (m.dtype == Dtype::Float32) {
    m.f32.resize(values);
    out = reinterpret_cast<char*>(m.f32.data());
  } else {
    m.f64.resize(values);
    out = reinterpret_cast<char*>(m.f64.data());
  }
  in.seekg(static_cast<std::streamoff>(h.data_offset + static_cast<std::uint64_t>(first * cols) * h.itemsize));
  if (!in) fail(path, "cannot seek to row " + std::to_string(first));
  read_exact(in, path, out, values * h.itemsize);
  return m;
}

template std::vector<float> read_npy<float>(const std::string&, std::vector<std::int64_t>&);
template std::vector<double> read_npy<double>(const std::string&, std::vector<std::int64_t>&);
template std::vector<std::int32_t> read_npy<std::int32_t>(const std::string&,
                                                          std::vector<std::int64_t>&);

}  // namespace kmeans::io
