// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: the .npy readers on arbitrary bytes. Any input must either decode or throw
// kmeans::Error; a crash, a sanitizer report, another exception or an inconsistent matrix is a
// finding.
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "fuzz_input_file.hpp"
#include "io/io.hpp"

namespace {

void check(const kmeans::io::Matrix& m) {
  const auto count = static_cast<std::size_t>(m.rows) * static_cast<std::size_t>(m.cols);
  const std::size_t held = m.dtype == kmeans::io::Dtype::Float32 ? m.f32.size() : m.f64.size();
  if (m.rows < 0 || m.cols < 0 || held != count) std::abort();
}

template <class T>
void read_typed(const std::string& path) {
  try {
    std::vector<std::int64_t> shape;
    const std::vector<T> v = kmeans::io::read_npy<T>(path, shape);
    std::size_t count = 1;
    for (std::int64_t s : shape) {
      if (s < 0) std::abort();
      count *= static_cast<std::size_t>(s);
    }
    if (count != v.size()) std::abort();
  } catch (const kmeans::Error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string& path = kmeans_fuzz::write_input(data, size, ".npy");
  try {
    check(kmeans::io::read_matrix(path));
  } catch (const kmeans::Error&) {
  }
  try {
    check(kmeans::io::read_vector(path));
  } catch (const kmeans::Error&) {
  }
  read_typed<float>(path);
  read_typed<double>(path);
  read_typed<std::int32_t>(path);
  return 0;
}
