// SPDX-License-Identifier: Apache-2.0
// CPU microbenchmarks and identification for bench_kmeans's limits: the clock from dependent
// chains, cpuid's frequency, the last-level cache size and the FMA rate.
#pragma once

#include <string>

namespace bench {

// The fastest x86 cores shipped run below 6.5 GHz; nothing runs k-means below 0.3 GHz.
constexpr double kMinPlausibleGhz = 0.3;
constexpr double kMaxPlausibleGhz = 6.5;

/// The clock from a dependent register-add chain and a dependent imul chain (both 0 off x86).
void measure_clock_ghz(double* add_ghz, double* imul_ghz);

/// cpuid leaf 0x16 (base and maximum MHz; zero under most hypervisors) and the hypervisor bit.
void cpuid_frequency(double* base_ghz, double* max_ghz, bool* hypervisor);

/// The largest cache of cpu0 in bytes (sysfs "491520K"), or 0 when unknown.
double last_level_cache_bytes();

/// Why a measured clock cannot be believed, or empty when it can.
std::string implausible_clock(double add_ghz, double imul_ghz, double cpuid_max_ghz);

/// Achieved float (or double) FMA throughput of `threads` threads at once, GFLOP/s (the best
/// of many short runs); 0 when no FMA set is detected.
double measure_fma_gflops(const std::string& isa, int threads, bool f64);

}  // namespace bench
