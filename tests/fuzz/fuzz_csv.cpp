// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: the .csv readers on arbitrary text. Any input must either decode into a
// consistent matrix or throw kmeans::Error; anything else is a finding.
#include <cstdint>
#include <cstdlib>

#include "fuzz_input_file.hpp"
#include "io/io.hpp"

namespace {

void check(const kmeans::io::Matrix& m) {
  const auto count = static_cast<std::size_t>(m.rows) * static_cast<std::size_t>(m.cols);
  const std::size_t held = m.dtype == kmeans::io::Dtype::Float32 ? m.f32.size() : m.f64.size();
  if (m.rows <= 0 || m.cols <= 0 || held != count) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string& path = kmeans_fuzz::write_input(data, size, ".csv");
  try {
    kmeans::io::Matrix m = kmeans::io::read_matrix(path);
    check(m);
    kmeans::io::convert(m, kmeans::io::Dtype::Float32);
    check(m);
  } catch (const kmeans::Error&) {
  }
  try {
    check(kmeans::io::read_vector(path));
  } catch (const kmeans::Error&) {
  }
  return 0;
}
