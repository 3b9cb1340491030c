// SPDX-License-Identifier: Apache-2.0
// The CPU backend's kernel tables: how KMEANS_CPU_ISA names are checked.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "cpu_kernel.hpp"
#include "kmeans/kmeans.hpp"

namespace {

namespace cpu = kmeans::detail::cpu;

/// Sets KMEANS_CPU_ISA for the lifetime of the object.
class IsaScope {
 public:
  explicit IsaScope(const char* isa) { setenv("KMEANS_CPU_ISA", isa, 1); }
  ~IsaScope() { unsetenv("KMEANS_CPU_ISA"); }
  IsaScope(const IsaScope&) = delete;
  IsaScope& operator=(const IsaScope&) = delete;
};

TEST(CpuIsaName, UnknownNameSaysUnknownAndListsTheValidOnes) {
  IsaScope scope("sse");
  const float x[] = {1, 2, 3, 4};
  kmeans::Params p;
  p.k = 2;
  p.backend = kmeans::Backend::Cpu;
  try {
    kmeans::fit(x, 4, 1, p);
    ADD_FAILURE() << "an unknown KMEANS_CPU_ISA must be rejected";
  } catch (const kmeans::Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("KMEANS_CPU_ISA = sse is unknown"), std::string::npos) << m;
    EXPECT_NE(m.find("valid: generic, avx2, avx512"), std::string::npos) << m;
    EXPECT_EQ(m.find("not supported"), std::string::npos) << m;
  }
}

TEST(CpuIsaName, KnownNameTheCpuLacksSaysNotSupported) {
  // A CPU that runs only the generic table, asked for avx512.
  const cpu::KernelTable* generic_only[] = {&cpu::kernels_generic()};
  try {
    cpu::select_kernels_from("avx512", generic_only, 1);
    ADD_FAILURE() << "a table the CPU lacks must be rejected";
  } catch (const kmeans::Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("KMEANS_CPU_ISA = avx512 is not supported on this CPU (supported: generic)"),
              std::string::npos)
        << m;
  }
  EXPECT_EQ(&cpu::select_kernels_from("generic", generic_only, 1), &cpu::kernels_generic());
  EXPECT_EQ(&cpu::select_kernels_from(nullptr, generic_only, 1), &cpu::kernels_generic());
}

}  // namespace
