// SPDX-License-Identifier: Apache-2.0
// CPU microbenchmarks and identification for bench_kmeans's limits: the clock from dependent
// chains, cpuid's frequency, the last-level cache size and the FMA rate.
#include "cpu_probe.hpp"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <string>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define KMEANS_BENCH_X86 1
#include <cpuid.h>
#include <immintrin.h>

#include "bench_util.hpp"
#endif

namespace bench {
namespace {

// Two chains on different units must agree this closely to be believed.
constexpr double kClockAgreement = 0.10;

#ifdef KMEANS_BENCH_X86
// Enough independent accumulators to cover FMA latency (4-5 cycles) x 2 pipes.
constexpr int kFmaChains = 12;
// ~1.5 ms a run at 4 GHz, the best of kFmaRuns: short runs, so that some run has every thread
// on a core (on a loaded 2-core VM, 6 ms runs read a quarter of the rate).
constexpr std::int64_t kFmaLoops = 1'000'000;
constexpr int kFmaRuns = 20;

__attribute__((target("avx2,fma"))) float fma_loop_avx2(std::int64_t loops) {
  __m256 acc[kFmaChains];
  for (int c = 0; c < kFmaChains; ++c) acc[c] = _mm256_set1_ps(0.001f * static_cast<float>(c));
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  for (std::int64_t i = 0; i < loops; ++i)
    for (int c = 0; c < kFmaChains; ++c) acc[c] = _mm256_fmadd_ps(acc[c], a, b);
  __m256 s = acc[0];
  for (int c = 1; c < kFmaChains; ++c) s = _mm256_add_ps(s, acc[c]);
  alignas(32) float out[8];
  _mm256_store_ps(out, s);
  return out[0];
}

__attribute__((target("avx2,fma"))) double fma_loop_avx2_pd(std::int64_t loops) {
  __m256d acc[kFmaChains];
  for (int c = 0; c < kFmaChains; ++c) acc[c] = _mm256_set1_pd(0.001 * c);
  const __m256d a = _mm256_set1_pd(0.999999), b = _mm256_set1_pd(1e-7);
  for (std::int64_t i = 0; i < loops; ++i)
    for (int c = 0; c < kFmaChains; ++c) acc[c] = _mm256_fmadd_pd(acc[c], a, b);
  __m256d s = acc[0];
  for (int c = 1; c < kFmaChains; ++c) s = _mm256_add_pd(s, acc[c]);
  alignas(32) double out[4];
  _mm256_store_pd(out, s);
  return out[0];
}

__attribute__((target("avx512f"))) double fma_loop_avx512_pd(std::int64_t loops) {
  __m512d acc[kFmaChains];
  for (int c = 0; c < kFmaChains; ++c) acc[c] = _mm512_set1_pd(0.001 * c);
  const __m512d a = _mm512_set1_pd(0.999999), b = _mm512_set1_pd(1e-7);
  for (std::int64_t i = 0; i < loops; ++i)
    for (int c = 0; c < kFmaChains; ++c) acc[c] = _mm512_fmadd_pd(acc[c], a, b);
  __m512d s = acc[0];
  for (int c = 1; c < kFmaChains; ++c) s = _mm512_add_pd(s, acc[c]);
  alignas(64) double out[8];
  _mm512_store_pd(out, s);
  return out[0];
}

__attribute__((target("avx512f"))) float fma_loop_avx512(std::int64_t loops) {
  __m512 acc[kFmaChains];
  for (int c = 0; c < kFmaChains; ++c) acc[c] = _mm512_set1_ps(0.001f * static_cast<float>(c));
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
  for (std::int64_t i = 0; i < loops; ++i)
    for (int c = 0; c < kFmaChains; ++c) acc[c] = _mm512_fmadd_ps(acc[c], a, b);
  __m512 s = acc[0];
  for (int c = 1; c < kFmaChains; ++c) s = _mm512_add_ps(s, acc[c]);
  alignas(64) float out[16];
  _mm512_store_ps(out, s);  // not _mm512_reduce_add_ps: GCC 12 warns inside its header
  return out[0];
}
#endif

}  // namespace

/// The clock from two dependent chains the core cannot shortcut, each the best of 30 short runs
/// (about 1 ms each: on a shared or virtual machine a longer run is rarely left alone, and
/// 20 ms runs read 2.6-2.9 GHz on a 4.1 GHz core at load 2.5 on 2 cores):
/// register-operand adds (1 cycle each: unlike `add $1, reg`, which recent Intel cores fold at
/// rename and retire several per cycle) and 64-bit imuls (3 cycles each on every Intel core
/// since Nehalem and every AMD core since Zen). Both 0 off x86.
void measure_clock_ghz(double* add_ghz, double* imul_ghz) {
  *add_ghz = *imul_ghz = 0;
#ifdef KMEANS_BENCH_X86
  constexpr std::int64_t kLoops = 200'000;  // x 16 adds or x 8 imuls: ~1 ms at 4 GHz
  double best_add = std::numeric_limits<double>::infinity(), best_imul = best_add;
  for (int rep = 0; rep < 30; ++rep) {
    std::uint64_t x = 0, one = 1;
    auto t0 = Clock::now();
    for (std::int64_t i = 0; i < kLoops; ++i) {
      asm volatile(
          "add %1, %0\n\tadd %1, %0\n\tadd %1, %0\n\tadd %1, %0\n\t"
          "add %1, %0\n\tadd %1, %0\n\tadd %1, %0\n\tadd %1, %0\n\t"
          "add %1, %0\n\tadd %1, %0\n\tadd %1, %0\n\tadd %1, %0\n\t"
          "add %1, %0\n\tadd %1, %0\n\tadd %1, %0\n\tadd %1, %0"
          : "+r"(x)
          : "r"(one));
    }
    best_add = std::min(best_add, seconds_since(t0));
    std::uint64_t y = 3;
    t0 = Clock::now();
    for (std::int64_t i = 0; i < kLoops; ++i) {
      asm volatile(
          "imul %0, %0\n\timul %0, %0\n\timul %0, %0\n\timul %0, %0\n\t"
          "imul %0, %0\n\timul %0, %0\n\timul %0, %0\n\timul %0, %0"
          : "+r"(y));
    }
    best_imul = std::min(best_imul, seconds_since(t0));
  }
  *add_ghz = 16.0 * static_cast<double>(kLoops) / best_add * 1e-9;
  *imul_ghz = 3.0 * 8.0 * static_cast<double>(kLoops) / best_imul * 1e-9;
#endif
}

/// cpuid leaf 0x16 (base and maximum MHz; zero under most hypervisors) and the hypervisor bit.
void cpuid_frequency(double* base_ghz, double* max_ghz, bool* hypervisor) {
  *base_ghz = *max_ghz = 0;
  *hypervisor = false;
#ifdef KMEANS_BENCH_X86
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(0, &a, &b, &c, &d)) return;
  const unsigned max_leaf = a;
  if (__get_cpuid(1, &a, &b, &c, &d)) *hypervisor = (c >> 31) & 1;
  if (max_leaf >= 0x16) {
    __cpuid_count(0x16, 0, a, b, c, d);
    *base_ghz = (a & 0xffff) * 1e-3;
    *max_ghz = (b & 0xffff) * 1e-3;
  }
#endif
}

/// The largest cache of cpu0 in bytes (sysfs "491520K"), or 0 when unknown.
double last_level_cache_bytes() {
  double best = 0;
  for (int i = 0; i < 8; ++i) {
    std::ifstream in("/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(i) + "/size");
    std::string v;
    if (!(in >> v) || v.empty()) continue;
    const double scale = v.back() == 'K' ? 1024.0 : v.back() == 'M' ? 1048576.0 : 1.0;
    best = std::max(best, std::atof(v.c_str()) * scale);
  }
  return best;
}

/// Why a measured clock cannot be believed, or empty when it can.
std::string implausible_clock(double add_ghz, double imul_ghz, double cpuid_max_ghz) {
  char buf[200];
  for (double g : {add_ghz, imul_ghz}) {
    if (!(g >= kMinPlausibleGhz && g <= kMaxPlausibleGhz)) {
      std::snprintf(buf, sizeof buf, "%.2f GHz is outside [%.1f, %.1f] GHz", g, kMinPlausibleGhz,
                    kMaxPlausibleGhz);
      return buf;
    }
  }
  if (std::fabs(add_ghz - imul_ghz) > kClockAgreement * std::max(add_ghz, imul_ghz)) {
    std::snprintf(buf, sizeof buf, "the add chain (%.2f GHz) and the imul chain (%.2f GHz) "
                  "disagree by more than %.0f%%", add_ghz, imul_ghz, 100 * kClockAgreement);
    return buf;
  }
  const double mean = 0.5 * (add_ghz + imul_ghz);
  if (cpuid_max_ghz > 0 && mean > 1.15 * cpuid_max_ghz) {
    std::snprintf(buf, sizeof buf, "%.2f GHz is above cpuid's maximum of %.2f GHz", mean,
                  cpuid_max_ghz);
    return buf;
  }
  return {};
}

/// Achieved float (or double) FMA throughput of all threads, GFLOP/s; 0 when no FMA set is
/// detected.
double measure_fma_gflops(const std::string& isa, int threads, bool f64) {
#ifdef KMEANS_BENCH_X86
  if (isa == "sse2/scalar") return 0;
  const bool wide = isa == "avx512";
  const int lanes = (wide ? 16 : 8) / (f64 ? 2 : 1);
  volatile double sink = 0;
  double best = std::numeric_limits<double>::infinity();
  for (int rep = 0; rep < kFmaRuns; ++rep) {
    const auto t0 = Clock::now();
#pragma omp parallel num_threads(threads)
    {
      const double r = f64 ? (wide ? fma_loop_avx512_pd(kFmaLoops) : fma_loop_avx2_pd(kFmaLoops))
                           : (wide ? fma_loop_avx512(kFmaLoops) : fma_loop_avx2(kFmaLoops));
#pragma omp critical
      sink = sink + r;
    }
    best = std::min(best, seconds_since(t0));
  }
  (void)sink;
  return 2.0 * lanes * kFmaChains * static_cast<double>(kFmaLoops) * threads / best * 1e-9;
#else
  (void)isa;
  (void)threads;
  (void)f64;
  return 0;
#endif
}

}  // namespace bench
