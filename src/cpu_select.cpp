// SPDX-License-Identifier: Apache-2.0
// Which CPU kernel table runs: the widest instruction set this CPU supports, or the one
// KMEANS_CPU_ISA names (an error naming the valid and the supported ones otherwise).
#include <cstdlib>
#include <cstring>
#include <string>

#include "cpu_kernel.hpp"
#include "kmeans/kmeans.hpp"

namespace kmeans::detail {
namespace cpu {

const KernelTable& select_kernels() {
  const KernelTable* all[3];
  const int n = supported_kernels(all, 3);
  return select_kernels_from(std::getenv("KMEANS_CPU_ISA"), all, n);
}

const KernelTable& select_kernels_from(const char* forced, const KernelTable* const* supported,
                                       int n) {
  if (forced == nullptr || *forced == '\0') return *supported[n - 1];
  for (int i = 0; i < n; ++i)
    if (std::strcmp(supported[i]->name, forced) == 0) return *supported[i];
  std::string names;
  for (int i = 0; i < n; ++i) names += std::string(i ? ", " : "") + supported[i]->name;
  static const char* const kKnown[] = {"generic", "avx2", "avx512"};
  for (const char* known : kKnown)
    if (std::strcmp(known, forced) == 0)
      throw Error(std::string("KMEANS_CPU_ISA = ") + forced +
                  " is not supported on this CPU (supported: " + names + ")");
  throw Error(std::string("KMEANS_CPU_ISA = ") + forced +
              " is unknown (valid: generic, avx2, avx512; supported on this CPU: " + names + ")");
}

int supported_kernels(const KernelTable** out, int max) {
  int n = 0;
  if (n < max) out[n++] = &kernels_generic();
#if defined(KMEANS_X86_KERNELS)
  __builtin_cpu_init();
  if (n < max && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    out[n++] = &kernels_avx2();
  if (n == 2 && n < max && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl"))
    out[n++] = &kernels_avx512();
#endif
  return n;
}

}  // namespace cpu

}  // namespace kmeans::detail
