// SPDX-License-Identifier: Apache-2.0
// The machine bench_kmeans runs on and its limits: CPU copy bandwidth and FMA peak, GPU memory
// bandwidth and fp32/fp64 peak, each measured or computed in the same run, with how.
#pragma once

#include <string>

#include "bench_util.hpp"

namespace bench {

struct CpuLimits {
  std::string model;          ///< /proc/cpuinfo "model name" (or "unknown").
  int threads = 1;            ///< Threads used by the library and the peers in this run.
  std::string isa;            ///< "avx512", "avx2" or "sse2/scalar": widest FMA set detected.
  int lanes_f32 = 4;          ///< SIMD lanes of that set for float (double: half).
  double clock_ghz = 0;       ///< The clock used for the nominal peak; 0 when none is credible.
  std::string clock_how;      ///< Where the clock came from (and why a measurement was refused).
  double clock_add_ghz = 0;   ///< Dependent register-operand add chain: adds per second.
  double clock_imul_ghz = 0;  ///< Dependent imul chain: 3 x imuls per second.
  bool clock_measured_ok = false;  ///< Both chains plausible and in agreement.
  double cpuinfo_ghz = 0;     ///< "cpu MHz" of /proc/cpuinfo, 0 when absent.
  double cpuid_base_ghz = 0;  ///< cpuid leaf 0x16 base and maximum frequency, 0 when not given.
  double cpuid_max_ghz = 0;
  bool hypervisor = false;    ///< cpuid leaf 1 ECX bit 31.
  double peak_gflops_f32 = 0; ///< Nominal: threads * clock * lanes * 2 FMA units * 2 flops (0:
  double peak_gflops_f64 = 0; ///< no credible clock).
  double fma_measured_gflops_f32 = 0;  ///< Independent-FMA microbenchmark: one thread's rate
  double fma_measured_gflops_f64 = 0;  ///< x threads (robust to other load, like the clock).
  double fma_all_threads_gflops_f32 = 0;  ///< The same loop on all threads at once (cross-check:
  double fma_all_threads_gflops_f64 = 0;  ///< low under other load or when threads share a core).
  double limit_gflops_f32 = 0;  ///< The %peak denominator: the measured FMA rate when there is
  double limit_gflops_f64 = 0;  ///< one, else the nominal peak.
  std::string limit_how;
  double copy_gbps = 0;       ///< STREAM-like copy, all threads: (read + write bytes) / time.
  double copy_bytes = 0;      ///< Size of each of the two copy arrays.
  double l3_bytes = 0;        ///< Last-level cache of cpu0 (sysfs), 0 when unknown.
};

struct GpuLimits {
  bool present = false;
  std::string why_not;        ///< Why there is no GPU row (from kmeans::cuda_available).
  std::string name;
  int cc_major = 0, cc_minor = 0;
  int sms = 0;
  double clock_ghz = 0;       ///< SM clock (cudaDevAttrClockRate).
  double mem_clock_ghz = 0;   ///< Memory clock (cudaDevAttrMemoryClockRate).
  int bus_width_bits = 0;
  double total_mem_gb = 0, free_mem_gb = 0;
  double peak_gbps = 0;       ///< 2 (double data rate) * memory clock * bus width / 8.
  double d2d_copy_gbps = 0;   ///< Measured cudaMemcpy device-to-device: (read + write) / time.
  /// Measured cudaMemcpyAsync of a pinned host buffer to the device (bytes / time): the line
  /// rate a streamed fit (host data through the GPU) can reach at best.
  double h2d_pinned_gbps = 0;
  double peak_gflops_f32 = 0; ///< SMs * clock * FP32 FMA lanes per SM * 2.
  double peak_gflops_f64 = 0;
  std::string fma_lanes_how;  ///< Which per-SM lane counts were used.
  std::string driver_version, runtime_version;
};

/// Measures the CPU limits (about a second; less with quick).
CpuLimits measure_cpu(int threads, bool quick);

/// Queries and measures the GPU when kmeans::cuda_available(); else fills why_not.
GpuLimits measure_gpu(bool quick);

/// Bytes of free host memory (MemAvailable), or 0 when unknown.
double host_available_bytes();

/// The first three fields of /proc/loadavg ("0.12 0.30 0.25"), or empty when unknown.
std::string load_average();

/// Prints the limits and how each was obtained.
void print_limits(const CpuLimits& c, const GpuLimits& g);

/// The machine description of the JSON file.
Json machine_json(const CpuLimits& c, const GpuLimits& g);

}  // namespace bench
