// SPDX-License-Identifier: Apache-2.0
// .npy and .csv writing: every file goes through a temporary sibling renamed over the target
// (write_atomically, StagedWrites), so a failed write never leaves a partial file behind.
#include <charconv>
#include <limits>

#if defined(_WIN32)
#include <io.h>
#include <process.h>
#define KMEANS_GETPID _getpid
#else
#include <unistd.h>
#define KMEANS_GETPID getpid
#endif

#include "io/common.hpp"

namespace kmeans::io {
namespace {

using namespace detail;

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
  const auto width = static_cast<std::uint64_t>(cols > 0 ? cols : 1);
  if (rows > 0 && width > std::numeric_limits<std::uint64_t>::max() / 8 / static_cast<std::uint64_t>(rows)) {
    fail(path, "cannot write shape (" + std::to_string(rows) + ", " + std::to_string(cols) +
                   "): the data size overflows 64 bits");
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

/// Writes through `write_file(temp)` into a temporary sibling, then renames it over `path`:
/// readers never see a half-written file, and a failed write (or SIGINT / SIGTERM / SIGHUP)
/// leaves nothing behind.
template <class F>
void write_atomically(const std::string& path, F&& write_file) {
  const std::string temp = temp_name_for(path);
  const int slot = register_temp(temp);  // before the file exists
  try {
    write_file(temp);
    rename_over(temp, path);
  } catch (...) {
    std::error_code ec;
    fs::remove(temp, ec);
    unregister_temp(slot);
    throw;
  }
  unregister_temp(slot);
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

bool same_file(const std::string& a, const std::string& b) {
  std::error_code ea, eb;
  if (fs::exists(a, ea) && fs::exists(b, eb)) {
    std::error_code ec;
    const bool same = fs::equivalent(a, b, ec);
    if (!ec) return same;
  }
  // One does not exist yet (two outputs): compare the paths with links and ".." resolved.
  const fs::path ca = fs::weakly_canonical(fs::absolute(a, ea), ea);
  const fs::path cb = fs::weakly_canonical(fs::absolute(b, eb), eb);
  if (ea || eb) return fs::path(a).lexically_normal() == fs::path(b).lexically_normal();
  return ca == cb;
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
  for (const Staged& f : files_) {
    fs::remove(f.temp, ec);
    unregister_temp(f.slot);
  }
}

template <class T>
void StagedWrites::add(const std::string& path, const T* data, std::int64_t rows, std::int64_t cols) {
  const Format format = format_for_writing(path);
  Staged f{temp_name_for(path), path, -1};
  files_.reserve(files_.size() + 1);
  f.slot = register_temp(f.temp);  // before the file exists
  files_.push_back(f);  // registered first, so the destructor removes a half-written temporary
  if (format == Format::Npy) {
    write_npy_file(f.temp, path, data, rows, cols);
  } else {
    write_csv_file(f.temp, path, data, rows, cols);
  }
}

void StagedWrites::add_text(const std::string& path, const std::string& text) {
  Staged f{temp_name_for(path), path, -1};
  files_.reserve(files_.size() + 1);
  f.slot = register_temp(f.temp);
  files_.push_back(f);
  OutFile out(f.temp, path);
  out.write(text.data(), text.size());
  out.close();
}

void StagedWrites::commit() {
  // All renames, or (after a failed one) none of the rest: a signal cannot stop it half-way.
  CleanupSignalsBlocked blocked;
  for (Staged& f : files_) {
    rename_over(f.temp, f.target);
    unregister_temp(f.slot);
    f.slot = -1;
  }
  files_.clear();
}

#define KMEANS_IO_INSTANTIATE(T)                                                                \
  template void write_npy<T>(const std::string&, const T*, std::int64_t, std::int64_t);        \
  template void write_csv<T>(const std::string&, const T*, std::int64_t, std::int64_t);        \
  template void write_matrix<T>(const std::string&, const T*, std::int64_t, std::int64_t);     \
  template void StagedWrites::add<T>(const std::string&, const T*, std::int64_t, std::int64_t);
KMEANS_IO_INSTANTIATE(float)
KMEANS_IO_INSTANTIATE(double)
KMEANS_IO_INSTANTIATE(std::int32_t)
#undef KMEANS_IO_INSTANTIATE

}  // namespace kmeans::io
