// SPDX-License-Identifier: Apache-2.0
// The streamed fit's .npy source: the header read once, rows through mmap windows or pread.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "kmeans/stream.hpp"

namespace kmeans {
namespace {

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw Error(path + ": " + what);
}

std::string errno_text() { return std::strerror(errno); }

/// An open file descriptor, closed on destruction.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

/// Reads exactly `size` bytes at `offset`; false at end of file.
bool pread_all(int fd, void* out, std::size_t size, std::uint64_t offset) {
  auto* p = static_cast<char*>(out);
  while (size > 0) {
    const ssize_t got = ::pread(fd, p, size, static_cast<off_t>(offset));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return false;
    p += got;
    size -= static_cast<std::size_t>(got);
    offset += static_cast<std::uint64_t>(got);
  }
  return true;
}

/// The value of `key` in the header's Python dict literal (the text after "'key':").
std::string dict_value(const std::string& header, const std::string& key,
                       const std::string& path) {
  const std::size_t k = header.find("'" + key + "'");
  if (k == std::string::npos) fail(path, "the .npy header has no '" + key + "' entry");
  std::size_t v = header.find(':', k);
  if (v == std::string::npos) fail(path, "malformed .npy header near '" + key + "'");
  ++v;
  while (v < header.size() && header[v] == ' ') ++v;
  return header.substr(v);
}

NpyInfo parse_npy(int fd, const std::string& path, std::uint64_t file_size) {
  char lead[12];
  if (file_size < 10 || !pread_all(fd, lead, 10, 0) || std::memcmp(lead, "\x93NUMPY", 6) != 0)
    fail(path, "not a .npy file (no \\x93NUMPY magic string)");
  const int major = static_cast<unsigned char>(lead[6]);
  std::uint64_t header_len = 0, prefix = 0;
  if (major == 1) {
    header_len = static_cast<unsigned char>(lead[8]) | (static_cast<unsigned char>(lead[9]) << 8);
    prefix = 10;
  } else if (major == 2 || major == 3) {
    if (!pread_all(fd, lead, 12, 0)) fail(path, "truncated .npy header");
    header_len = 0;
    for (int i = 0; i < 4; ++i)
      header_len |= static_cast<std::uint64_t>(static_cast<unsigned char>(lead[8 + i])) << (8 * i);
    prefix = 12;
  } else {
    fail(path, "unsupported .npy format version " + std::to_string(major));
  }
  if (prefix + header_len > file_size) fail(path, "truncated .npy header");
  std::string header(static_cast<std::size_t>(header_len), '\0');
  if (!pread_all(fd, header.data(), header.size(), prefix)) fail(path, "truncated .npy header");

  NpyInfo info;
  const std::string descr = dict_value(header, "descr", path);
  if (descr.rfind("'<f4'", 0) == 0)
    info.float32 = true;
  else if (descr.rfind("'<f8'", 0) == 0)
    info.float32 = false;
  else
    fail(path, "dtype " + descr.substr(0, descr.find_first_of(",}")) +
                   " is not supported by a streamed fit (float32 '<f4' or float64 '<f8')");
  const std::string order = dict_value(header, "fortran_order", path);
  if (order.rfind("False", 0) != 0)
    fail(path, "Fortran-order .npy files are not supported (save with C order)");
  const std::string shape = dict_value(header, "shape", path);
  if (shape.empty() || shape[0] != '(') fail(path, "malformed .npy shape");
  const std::size_t close = shape.find(')');
  if (close == std::string::npos) fail(path, "malformed .npy shape");
  std::vector<std::uint64_t> dims;
  std::size_t pos = 1;
  while (pos < close) {
    while (pos < close && (shape[pos] == ' ' || shape[pos] == ',')) ++pos;
    if (pos >= close) break;
    std::uint64_t v = 0;
    bool any = false;
    while (pos < close && shape[pos] >= '0' && shape[pos] <= '9') {
      if (v > (std::numeric_limits<std::uint64_t>::max() - 9) / 10) fail(path, "shape overflows");
      v = v * 10 + static_cast<std::uint64_t>(shape[pos++] - '0');
      any = true;
    }
    if (!any) fail(path, "malformed .npy shape " + shape.substr(0, close + 1));
    dims.push_back(v);
  }
  if (dims.size() == 1) dims.push_back(1);
  if (dims.size() != 2)
    fail(path, "a streamed fit needs a 1-D or 2-D array; the file has " +
                   std::to_string(dims.size()) + " dimensions");
  info.rows = static_cast<std::size_t>(dims[0]);
  info.cols = static_cast<std::size_t>(dims[1]);
  info.data_offset = static_cast<std::size_t>(prefix + header_len);
  const std::uint64_t item = info.float32 ? 4 : 8;
  if (dims[1] != 0 && dims[0] > std::numeric_limits<std::uint64_t>::max() / dims[1] / item)
    fail(path, "shape overflows");
  const std::uint64_t bytes = dims[0] * dims[1] * item;
  if (file_size - info.data_offset < bytes)
    fail(path, "the file holds " + std::to_string(file_size - info.data_offset) +
                   " data bytes but the shape needs " + std::to_string(bytes) + " (truncated?)");
  return info;
}

template <class T>
class NpySource final : public RowSource<T> {
 public:
  explicit NpySource(const std::string& path) : path_(path) {
    fd_.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_.fd < 0) fail(path, "cannot open: " + errno_text());
    struct stat st {};
    if (::fstat(fd_.fd, &st) != 0) fail(path, "cannot stat: " + errno_text());
    info_ = parse_npy(fd_.fd, path, static_cast<std::uint64_t>(st.st_size));
    if (info_.float32 != std::is_same<T, float>::value)
      fail(path, std::string("holds ") + (info_.float32 ? "float32" : "float64") +
                     " values, not " + (std::is_same<T, float>::value ? "float32" : "float64"));
    page_ = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  }
  ~NpySource() override { release_view(); }

  std::size_t rows() const override { return info_.rows; }
  std::size_t cols() const override { return info_.cols; }

  void read(std::size_t first, std::size_t count, T* out) override {
    check_range(first, count);
    const std::size_t row = info_.cols * sizeof(T);
    if (!pread_all(fd_.fd, out, count * row, info_.data_offset + first * row))
      fail(path_, "read of rows " + std::to_string(first) + " to " +
                      std::to_string(first + count) + " failed: " + errno_text());
  }

  const T* view(std::size_t first, std::size_t count) override {
    check_range(first, count);
    release_view();
    if (info_.data_offset % sizeof(T) != 0) return nullptr;  // misaligned rows: read() instead
    const std::size_t row = info_.cols * sizeof(T);
    const std::size_t begin = info_.data_offset + first * row;
    const std::size_t aligned = begin / page_ * page_;
    map_len_ = begin + count * row - aligned;
    void* p = ::mmap(nullptr, map_len_, PROT_READ, MAP_PRIVATE, fd_.fd, static_cast<off_t>(aligned));
    if (p == MAP_FAILED) {
      map_len_ = 0;
      fail(path_, "mmap of rows " + std::to_string(first) + " to " +
                      std::to_string(first + count) + " failed: " + errno_text());
    }
    map_ = p;
    ::madvise(map_, map_len_, MADV_SEQUENTIAL);
    return reinterpret_cast<const T*>(static_cast<const char*>(map_) + (begin - aligned));
  }

  void release_view() override {
    if (!map_) return;
    ::madvise(map_, map_len_, MADV_DONTNEED);
    ::munmap(map_, map_len_);
    map_ = nullptr;
    map_len_ = 0;
  }

 private:
  void check_range(std::size_t first, std::size_t count) const {
    if (first > info_.rows || count > info_.rows - first)
      fail(path_, "rows " + std::to_string(first) + " to " + std::to_string(first + count) +
                      " are beyond its " + std::to_string(info_.rows) + " rows");
  }

  std::string path_;
  Fd fd_;
  NpyInfo info_;
  std::size_t page_ = 4096;
  void* map_ = nullptr;
  std::size_t map_len_ = 0;
};

}  // namespace

NpyInfo npy_info(const std::string& path) {
  Fd fd;
  fd.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd.fd < 0) fail(path, "cannot open: " + errno_text());
  struct stat st {};
  if (::fstat(fd.fd, &st) != 0) fail(path, "cannot stat: " + errno_text());
  return parse_npy(fd.fd, path, static_cast<std::uint64_t>(st.st_size));
}

template <class T>
std::unique_ptr<RowSource<T>> open_npy(const std::string& path) {
  return std::make_unique<NpySource<T>>(path);
}

template KMEANS_API std::unique_ptr<RowSource<float>> open_npy<float>(const std::string&);
template KMEANS_API std::unique_ptr<RowSource<double>> open_npy<double>(const std::string&);

}  // namespace kmeans
