// SPDX-License-Identifier: Apache-2.0
// Private helpers shared by the .npy / .csv readers and the writers of src/io (not installed).
#pragma once

#include <algorithm>
#include <csignal>
#if !defined(_WIN32)
#include <signal.h>
#endif
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <istream>
#include <limits>
#include <string>
#include <system_error>
#include <type_traits>
#include <vector>

#include "io/io.hpp"

namespace kmeans::io::detail {

namespace fs = std::filesystem;

/// Longest piece of file content quoted in an error message.
constexpr std::size_t kMaxQuoted = 40;

[[noreturn]] inline void fail(const std::string& path, const std::string& what) {
  throw Error(path + ": " + what);
}

/// File content made safe for a one-line message: control bytes become '?', long text is cut.
inline std::string quoted(const std::string& s) {
  std::string out = "'";
  for (std::size_t i = 0; i < s.size() && i < kMaxQuoted; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    out += (c < 0x20 || c == 0x7f) ? '?' : static_cast<char>(c);
  }
  if (s.size() > kMaxQuoted) out += "...";
  return out + "'";
}

inline std::string lower_extension(const std::string& path) {
  std::string ext = fs::path(path).extension().string();
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ext;
}

inline std::string shape_string(const std::vector<std::int64_t>& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + (shape.size() == 1 ? ",)" : ")");
}


/// Opens a regular file for reading; directories, FIFOs and devices are refused so that a read
/// can neither fail obscurely nor block forever. Returns the file size.
inline std::uint64_t open_for_reading(const std::string& path, std::ifstream& in) {
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
  if (size > std::numeric_limits<std::size_t>::max()) {
    fail(path, "is " + std::to_string(size) + " bytes, too large to read on this platform");
  }
  errno = 0;
  in.open(path, std::ios::binary);
  if (!in) fail(path, std::string("cannot open: ") + std::strerror(errno ? errno : EACCES));
  return static_cast<std::uint64_t>(size);
}

inline void read_exact(std::istream& in, const std::string& path, char* dst, std::uint64_t bytes) {
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

inline bool host_is_little_endian() {
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


/// A float32/float64 .npy as a Matrix: a 2-D (n, d) array, or with `as_vector` a 1-D (n,) or
/// column (n, 1) array read as n x 1 (npy.cpp). The stream form reads `size` bytes from `in`,
/// `name` naming the source in errors.
Matrix read_npy_floats(const std::string& path, bool as_vector);
Matrix read_npy_floats(std::istream& in, const std::string& name, std::uint64_t size,
                       bool as_vector);

/// A .csv as an n x d float64 Matrix (csv.cpp); parse_csv_text parses text already in memory.
Matrix read_csv_matrix(const std::string& path, CsvHeader header);
Matrix parse_csv_text(std::string text, const std::string& name, CsvHeader header);

/// Staged temporaries (temp_files.cpp). register_temp records a temporary's path before the file
/// is created, so that SIGINT, SIGTERM or SIGHUP (when their action was the default) remove it
/// before the process ends with the usual signal status; unregister_temp forgets it once it was
/// renamed or removed. Throws kmeans::Error when the path is too long or too many are staged.
int register_temp(const std::string& path);
void unregister_temp(int slot);

/// Blocks SIGINT, SIGTERM and SIGHUP in this thread for its lifetime, so that several renames
/// happen all together; a signal that arrives meanwhile takes effect afterwards.
class CleanupSignalsBlocked {
 public:
  CleanupSignalsBlocked();
  ~CleanupSignalsBlocked();
  CleanupSignalsBlocked(const CleanupSignalsBlocked&) = delete;
  CleanupSignalsBlocked& operator=(const CleanupSignalsBlocked&) = delete;

 private:
#if !defined(_WIN32)
  sigset_t old_;
  bool active_ = false;
#endif
};

}  // namespace kmeans::io::detail
