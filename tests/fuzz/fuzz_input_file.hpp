// SPDX-License-Identifier: Apache-2.0
// Helper of the reader fuzzers: the readers take a path, so each input is written to one file
// (per process, reused) under the temporary folder before it is read.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace kmeans_fuzz {

/// Writes data[0, size) to a file ending in `extension` and returns its path.
inline const std::string& write_input(const std::uint8_t* data, std::size_t size,
                                      const char* extension) {
  static const std::string path = [extension] {
    const char* tmp = std::getenv("TMPDIR");
    return std::string(tmp && *tmp ? tmp : "/tmp") + "/kmeans_fuzz_" +
           std::to_string(static_cast<long>(getpid())) + extension;
  }();
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) std::abort();  // the harness itself is broken: stop loudly
  if (size > 0 && std::fwrite(data, 1, size, f) != size) std::abort();
  std::fclose(f);
  return path;
}

}  // namespace kmeans_fuzz
