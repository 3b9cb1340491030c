// SPDX-License-Identifier: Apache-2.0
// The CPU kernel tables (instruction sets) this machine can run, for tests that run each one.
#pragma once

#include <vector>

#include "cpu_kernel.hpp"

namespace kmeans_test {

/// Every CPU kernel table this machine can run (generic, AVX2, AVX-512 where supported).
inline std::vector<const kmeans::detail::cpu::KernelTable*> cpu_tables() {
  const kmeans::detail::cpu::KernelTable* t[3];
  const int n = kmeans::detail::cpu::supported_kernels(t, 3);
  return std::vector<const kmeans::detail::cpu::KernelTable*>(t, t + n);
}

}  // namespace kmeans_test
