// SPDX-License-Identifier: Apache-2.0
// The format-neutral readers (read_matrix / read_vector, chosen by the file extension) and the
// float32 / float64 conversion.
#include <charconv>
#include <cmath>
#include <cstring>
#include <istream>
#include <sstream>
#include <streambuf>

#include "io/common.hpp"

namespace kmeans::io {

using detail::fail;
using detail::lower_extension;
using detail::quoted;

Matrix read_matrix(const std::string& path, CsvHeader header) {
  const std::string ext = lower_extension(path);
  if (ext == ".npy") return detail::read_npy_floats(path, false);
  if (ext == ".csv") return detail::read_csv_matrix(path, header);
  fail(path, "unknown input format " + quoted(ext) + ": expected a .npy or .csv file");
}

namespace {

/// A read-only stream over bytes in memory (no copy).
class MemoryBuf : public std::streambuf {
 public:
  MemoryBuf(char* b, std::size_t n) { setg(b, b, b + n); }
};

}  // namespace

Matrix read_matrix_bytes(std::string bytes, const std::string& name, CsvHeader header) {
  static const char kMagic[6] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};
  if (bytes.size() >= sizeof(kMagic) && std::memcmp(bytes.data(), kMagic, sizeof(kMagic)) == 0) {
    MemoryBuf buf(bytes.data(), bytes.size());
    std::istream in(&buf);
    return detail::read_npy_floats(in, name, bytes.size(), false);
  }
  return detail::parse_csv_text(std::move(bytes), name, header);
}

Matrix read_vector(const std::string& path) {
  const std::string ext = lower_extension(path);
  if (ext == ".npy") return detail::read_npy_floats(path, true);
  if (ext != ".csv") fail(path, "unknown input format " + quoted(ext) + ": expected a .npy or .csv file");
  Matrix m = detail::read_csv_matrix(path, CsvHeader::Auto);
  if (m.cols != 1) {
    fail(path, "has " + std::to_string(m.cols) + " columns; expected one value per line");
  }
  return m;
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

}  // namespace kmeans::io
