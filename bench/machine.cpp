// SPDX-License-Identifier: Apache-2.0
// The machine bench_kmeans runs on and its limits: CPU copy bandwidth and FMA peak, GPU memory
// bandwidth and fp32/fp64 peak, each measured or computed in the same run, with how.
#include "machine.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "cpu_probe.hpp"
#include "bench_util.hpp"
#include "kmeans/kmeans.hpp"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define KMEANS_BENCH_X86 1
#endif

#ifdef KMEANS_BENCH_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

namespace bench {
namespace {

/// The value of the first "key : value" line of /proc/cpuinfo, or empty.
std::string cpuinfo_field(const std::string& key) {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.compare(0, key.size(), key) != 0) continue;
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string v = line.substr(colon + 1);
    v.erase(0, v.find_first_not_of(" \t"));
    return v;
  }
  return {};
}


/// STREAM "copy" (b[i] = a[i]) over arrays meant to exceed the last-level cache (print_limits
/// warns when they do not), first-touched by the threads that copy them; bytes = read + write
/// (no write-allocate), best of the runs.
double measure_copy_gbps(int threads, bool quick, double* array_bytes) {
  const std::int64_t n = quick ? (std::int64_t{1} << 23) : (std::int64_t{1} << 25);
  std::unique_ptr<double[]> a(new double[n]), b(new double[n]);
#pragma omp parallel for schedule(static) num_threads(threads)
  for (std::int64_t i = 0; i < n; ++i) {
    a[i] = static_cast<double>(i);
    b[i] = 0;
  }
  double best = std::numeric_limits<double>::infinity();
  const int reps = quick ? 3 : 6;
  for (int rep = 0; rep < reps; ++rep) {
    const auto t0 = Clock::now();
    double* dst = b.get();
    const double* src = a.get();
#pragma omp parallel for schedule(static) num_threads(threads)
    for (std::int64_t i = 0; i < n; ++i) dst[i] = src[i];
    best = std::min(best, seconds_since(t0));
  }
  volatile double sink = b[n / 2];
  (void)sink;
  *array_bytes = static_cast<double>(n) * sizeof(double);
  return 2.0 * *array_bytes / best * 1e-9;
}

#ifdef KMEANS_BENCH_WITH_CUDA
/// FP32 and FP64 FMA lanes per SM by compute capability (NVIDIA's arithmetic-throughput table).
void fma_lanes_per_sm(int major, int minor, int* f32, int* f64, std::string* how) {
  *how = "per-SM FMA lanes for sm_" + std::to_string(major) + std::to_string(minor);
  if (major == 8 && minor == 0) {
    *f32 = 64, *f64 = 32;  // A100
  } else if (major == 8) {
    *f32 = 128, *f64 = 2;  // GA10x, AD10x
  } else if (major == 9 || major == 10) {
    *f32 = 128, *f64 = 64;  // H100/H200, B200
  } else if (major >= 11) {
    *f32 = 128, *f64 = 2;
    *how += " (assumed: consumer parts)";
  } else {
    *f32 = 64, *f64 = 32;
    *how += " (assumed: pre-Ampere)";
  }
}

std::string version_string(int v) {
  return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10);
}

/// "Kernel Module  550.54.15 ..." of /proc/driver/nvidia/version, or empty.
std::string nvidia_driver_version() {
  std::ifstream in("/proc/driver/nvidia/version");
  std::string line;
  if (!std::getline(in, line)) return {};
  const auto at = line.find("Kernel Module");
  if (at == std::string::npos) return {};
  std::istringstream ss(line.substr(at + 13));
  std::string v;
  ss >> v;
  if (v == "for") ss >> v >> v;  // "Kernel Module for x86_64  580.xx"
  return v;
}
#endif

}  // namespace

CpuLimits measure_cpu(int threads, bool quick) {
  CpuLimits c;
  c.threads = threads;
  c.model = cpuinfo_field("model name");
  if (c.model.empty()) c.model = "unknown";
  const std::string mhz = cpuinfo_field("cpu MHz");
  c.cpuinfo_ghz = mhz.empty() ? 0 : std::atof(mhz.c_str()) * 1e-3;

  c.isa = "sse2/scalar";
  c.lanes_f32 = 4;
#ifdef KMEANS_BENCH_X86
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) {
    c.isa = "avx512";
    c.lanes_f32 = 16;
  } else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    c.isa = "avx2";
    c.lanes_f32 = 8;
  }
#endif
  cpuid_frequency(&c.cpuid_base_ghz, &c.cpuid_max_ghz, &c.hypervisor);
  measure_clock_ghz(&c.clock_add_ghz, &c.clock_imul_ghz);
  const std::string refused =
      c.clock_add_ghz > 0 ? implausible_clock(c.clock_add_ghz, c.clock_imul_ghz, c.cpuid_max_ghz)
                          : "no x86 clock chains on this build";
  c.clock_measured_ok = refused.empty();
  if (c.clock_measured_ok) {
    c.clock_ghz = 0.5 * (c.clock_add_ghz + c.clock_imul_ghz);
    c.clock_how = "measured: dependent register-add chain " + fmt_fix(c.clock_add_ghz, 2) +
                  " GHz, dependent imul chain " + fmt_fix(c.clock_imul_ghz, 2) + " GHz";
  } else if (c.cpuid_max_ghz > 0) {
    c.clock_ghz = c.cpuid_max_ghz;
    c.clock_how = "cpuid's maximum frequency (measured clock refused: " + refused + ")";
  } else if (c.cpuinfo_ghz >= kMinPlausibleGhz && c.cpuinfo_ghz <= kMaxPlausibleGhz) {
    c.clock_ghz = c.cpuinfo_ghz;
    c.clock_how = "\"cpu MHz\" of /proc/cpuinfo (measured clock refused: " + refused + ")";
  } else {
    c.clock_how = "unknown (measured clock refused: " + refused + "; no cpuid or /proc/cpuinfo "
                  "frequency)";
  }
  // 2 FMA pipes per core and 2 flops per FMA: the nominal peak of every AVX2/AVX-512 core we
  // target. Cores with one 512-bit FMA unit, or that split 256-bit ops in two (AMD Zen 1),
  // reach half: the measured FMA rate below shows it, and it is the %peak denominator.
  c.peak_gflops_f32 = threads * c.clock_ghz * c.lanes_f32 * 2 * 2;
  c.peak_gflops_f64 = c.peak_gflops_f32 / 2;
  // One thread, scaled: a run on all threads at once needs every thread on a core for the whole
  // run, which a loaded machine rarely grants (on 2 cores at load 3: 67-479 GFLOP/s).
  c.fma_measured_gflops_f32 = threads * measure_fma_gflops(c.isa, 1, false);
  c.fma_measured_gflops_f64 = threads * measure_fma_gflops(c.isa, 1, true);
  c.fma_all_threads_gflops_f32 = measure_fma_gflops(c.isa, threads, false);
  c.fma_all_threads_gflops_f64 = measure_fma_gflops(c.isa, threads, true);
  if (c.fma_measured_gflops_f32 > 0 && c.fma_measured_gflops_f64 > 0) {
    c.limit_gflops_f32 = c.fma_measured_gflops_f32;
    c.limit_gflops_f64 = c.fma_measured_gflops_f64;
    c.limit_how = "measured FMA rate";
  } else {
    c.limit_gflops_f32 = c.peak_gflops_f32;
    c.limit_gflops_f64 = c.peak_gflops_f64;
    c.limit_how = c.peak_gflops_f32 > 0 ? "nominal peak (no FMA microbenchmark for " + c.isa + ")"
                                        : "none";
  }
  c.copy_gbps = measure_copy_gbps(threads, quick, &c.copy_bytes);
  c.l3_bytes = last_level_cache_bytes();
  return c;
}

#ifdef KMEANS_BENCH_WITH_CUDA
/// Pinned host -> device copies of 256 MiB (64 MiB with quick), timed with events on a stream
/// of our own after a warm-up: bytes / time in GB/s, 0 when a call fails.
static double measure_pinned_h2d_gbps(bool quick) {
  const std::size_t bytes = quick ? (std::size_t{64} << 20) : (std::size_t{256} << 20);
  void* host = nullptr;
  void* dev = nullptr;
  if (cudaMallocHost(&host, bytes) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  if (cudaMalloc(&dev, bytes) != cudaSuccess) {
    (void)cudaGetLastError();
    cudaFreeHost(host);
    return 0;
  }
  std::memset(host, 1, bytes);
  cudaStream_t stream = nullptr;
  cudaEvent_t start = nullptr, stop = nullptr;
  cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking);
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  cudaMemcpyAsync(dev, host, bytes, cudaMemcpyHostToDevice, stream);  // warm-up
  constexpr int kCopies = 10;
  cudaEventRecord(start, stream);
  for (int i = 0; i < kCopies; ++i)
    cudaMemcpyAsync(dev, host, bytes, cudaMemcpyHostToDevice, stream);
  cudaEventRecord(stop, stream);
  const cudaError_t e = cudaEventSynchronize(stop);
  float ms = 0;
  cudaEventElapsedTime(&ms, start, stop);
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  cudaStreamDestroy(stream);
  cudaFree(dev);
  cudaFreeHost(host);
  if (e != cudaSuccess || ms <= 0) {
    (void)cudaGetLastError();
    return 0;
  }
  return static_cast<double>(bytes) * kCopies / (ms * 1e-3) * 1e-9;
}
#endif

GpuLimits measure_gpu(bool quick) {
  GpuLimits g;
  std::string why;
  if (!kmeans::cuda_available(&why)) {
    g.why_not = why;
    return g;
  }
#ifdef KMEANS_BENCH_WITH_CUDA
  auto fail = [&](const char* what, cudaError_t e) {
    g.present = false;
    g.why_not = std::string(what) + ": " + cudaGetErrorString(e);
    return g;
  };
  int dev = 0;
  cudaError_t e = cudaGetDevice(&dev);
  if (e != cudaSuccess) return fail("cudaGetDevice", e);
  cudaDeviceProp prop{};
  if ((e = cudaGetDeviceProperties(&prop, dev)) != cudaSuccess)
    return fail("cudaGetDeviceProperties", e);
  g.present = true;
  g.name = prop.name;
  g.cc_major = prop.major;
  g.cc_minor = prop.minor;
  g.sms = prop.multiProcessorCount;
  g.bus_width_bits = prop.memoryBusWidth;
  // CUDA 13 removed clockRate and memoryClockRate from cudaDeviceProp: ask the attributes.
  int clock_khz = 0, mem_clock_khz = 0;
  cudaDeviceGetAttribute(&clock_khz, cudaDevAttrClockRate, dev);
  cudaDeviceGetAttribute(&mem_clock_khz, cudaDevAttrMemoryClockRate, dev);
  g.clock_ghz = clock_khz * 1e-6;
  g.mem_clock_ghz = mem_clock_khz * 1e-6;
  g.peak_gbps = 2.0 * mem_clock_khz * 1e3 * (g.bus_width_bits / 8.0) * 1e-9;
  int f32 = 0, f64 = 0;
  fma_lanes_per_sm(g.cc_major, g.cc_minor, &f32, &f64, &g.fma_lanes_how);
  g.peak_gflops_f32 = g.sms * g.clock_ghz * f32 * 2;
  g.peak_gflops_f64 = g.sms * g.clock_ghz * f64 * 2;
  int v = 0;
  if (cudaDriverGetVersion(&v) == cudaSuccess) g.driver_version = "CUDA " + version_string(v);
  const std::string module = nvidia_driver_version();
  if (!module.empty()) g.driver_version = module + " (" + g.driver_version + ")";
  if (cudaRuntimeGetVersion(&v) == cudaSuccess) g.runtime_version = version_string(v);
  std::size_t free_b = 0, total_b = 0;
  cudaMemGetInfo(&free_b, &total_b);
  g.free_mem_gb = free_b * 1e-9;
  g.total_mem_gb = total_b * 1e-9;

  // Device-to-device copy of a buffer far larger than L2, timed with events on our own stream.
  std::size_t bytes = quick ? (std::size_t{256} << 20) : (std::size_t{1} << 30);
  bytes = std::min(bytes, free_b / 4);
  void* d_src = nullptr;
  void* d_dst = nullptr;
  cudaStream_t stream = nullptr;
  cudaEvent_t start = nullptr, stop = nullptr;
  if ((e = cudaMalloc(&d_src, bytes)) != cudaSuccess) return fail("cudaMalloc", e);
  if ((e = cudaMalloc(&d_dst, bytes)) != cudaSuccess) {
    cudaFree(d_src);
    return fail("cudaMalloc", e);
  }
  cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking);
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  cudaMemsetAsync(d_src, 1, bytes, stream);
  cudaMemcpyAsync(d_dst, d_src, bytes, cudaMemcpyDeviceToDevice, stream);  // warm-up
  constexpr int kCopies = 10;
  cudaEventRecord(start, stream);
  for (int i = 0; i < kCopies; ++i)
    cudaMemcpyAsync(d_dst, d_src, bytes, cudaMemcpyDeviceToDevice, stream);
  cudaEventRecord(stop, stream);
  e = cudaEventSynchronize(stop);
  float ms = 0;
  cudaEventElapsedTime(&ms, start, stop);
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  cudaStreamDestroy(stream);
  cudaFree(d_src);
  cudaFree(d_dst);
  if (e != cudaSuccess) return fail("device-to-device copy", e);
  g.d2d_copy_gbps = 2.0 * static_cast<double>(bytes) * kCopies / (ms * 1e-3) * 1e-9;
  g.h2d_pinned_gbps = measure_pinned_h2d_gbps(quick);
#else
  (void)quick;
  g.why_not = "bench_kmeans was built without CUDA, so it cannot query the GPU limits";
#endif
  return g;
}

double host_available_bytes() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  double kb = 0;
  std::string unit;
  while (in >> key >> kb >> unit) {
    if (key == "MemAvailable:") return kb * 1024.0;
  }
  return 0;
}

std::string load_average() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  if (!(in >> a >> b >> c)) return {};
  return a + " " + b + " " + c;
}

void print_limits(const CpuLimits& c, const GpuLimits& g) {
  std::printf("CPU: %s, %d threads, widest FMA set %s (__builtin_cpu_supports)\n", c.model.c_str(),
              c.threads, c.isa.c_str());
  if (c.clock_ghz > 0)
    std::printf("  clock %.2f GHz, %s\n", c.clock_ghz, c.clock_how.c_str());
  else
    std::printf("  clock %s\n", c.clock_how.c_str());
  // The cross-checks, said plainly: a VM's "cpu MHz" is the host's nominal (TSC) rate.
  std::printf("  cross-check: /proc/cpuinfo says ");
  if (c.cpuinfo_ghz > 0)
    std::printf("%.0f MHz", c.cpuinfo_ghz * 1e3);
  else
    std::printf("nothing");
  if (c.cpuid_max_ghz > 0)
    std::printf(", cpuid 0x16 says base %.0f / max %.0f MHz", c.cpuid_base_ghz * 1e3,
                c.cpuid_max_ghz * 1e3);
  else
    std::printf(", cpuid 0x16 gives no frequency");
  if (c.hypervisor) std::printf(" (under a hypervisor: both are nominal figures, not the clock)");
  std::printf("\n");
  if (c.fma_measured_gflops_f32 > 0) {
    std::printf("  FMA rate measured (independent %s FMAs, one thread's best x %d threads): %.1f "
                "GFLOP/s f32, %.1f f64: the %%peak denominator\n",
                c.isa.c_str(), c.threads, c.fma_measured_gflops_f32, c.fma_measured_gflops_f64);
    const double all = c.fma_all_threads_gflops_f32 / c.fma_measured_gflops_f32;
    std::printf("    all %d threads at once: %.1f GFLOP/s f32 (%.0f%% of that)%s\n", c.threads,
                c.fma_all_threads_gflops_f32, 100 * all,
                all < 0.85 ? ": other load, or threads sharing a core" : "");
  }
  if (c.peak_gflops_f32 > 0) {
    std::printf("  nominal peak = %d threads x %.2f GHz x %d f32 lanes x 2 FMA units x 2 flops = "
                "%.1f GFLOP/s f32, %.1f f64",
                c.threads, c.clock_ghz, c.lanes_f32, c.peak_gflops_f32, c.peak_gflops_f64);
    if (c.fma_measured_gflops_f32 > 0) {
      const double pct = 100 * c.fma_measured_gflops_f32 / c.peak_gflops_f32;
      std::printf("; measured = %.0f%% of it%s", pct,
                  pct > 115   ? " (above the nominal peak: the clock is too low or the core has "
                                "more FMA units)"
                  : pct < 60 ? " (one FMA unit per core, split wide ops, or other load)"
                             : "");
    }
    std::printf("\n");
  }
  std::printf("  copy bandwidth %.1f GB/s (STREAM-like copy of 2 x %.0f MiB, all threads, "
              "read + write bytes, best run)\n",
              c.copy_gbps, c.copy_bytes / (1 << 20));
  // Both arrays together under twice the cache: some of the copy can stay in it.
  if (c.l3_bytes > 0 && c.copy_bytes < c.l3_bytes) {
    std::printf("    the arrays are not well above the %.0f MiB last-level cache (sysfs): this may "
                "be partly cache bandwidth\n",
                c.l3_bytes / (1 << 20));
  }
  if (!g.present) {
    std::printf("GPU: none (%s)\n", g.why_not.c_str());
    return;
  }
  std::printf("GPU: %s, sm_%d%d, %d SMs at %.2f GHz, %.1f GB (%.1f GB free), driver %s, "
              "runtime %s\n",
              g.name.c_str(), g.cc_major, g.cc_minor, g.sms, g.clock_ghz, g.total_mem_gb,
              g.free_mem_gb, g.driver_version.c_str(), g.runtime_version.c_str());
  std::printf("  memory peak = 2 x %.3f GHz x %d bits / 8 = %.0f GB/s; measured device-to-device "
              "copy %.0f GB/s (read + write)\n",
              g.mem_clock_ghz, g.bus_width_bits, g.peak_gbps, g.d2d_copy_gbps);
  std::printf("  host-to-device copy of pinned memory %.1f GB/s (cudaMemcpyAsync; a streamed fit's "
              "line rate)\n",
              g.h2d_pinned_gbps);
  std::printf("  FMA peak = SMs x clock x lanes x 2: %.0f GFLOP/s f32, %.0f f64 (%s)\n",
              g.peak_gflops_f32, g.peak_gflops_f64, g.fma_lanes_how.c_str());
}

Json machine_json(const CpuLimits& c, const GpuLimits& g) {
  Json cpu = Json::object();
  cpu.set("model", c.model)
      .set("threads", c.threads)
      .set("isa", c.isa)
      .set("lanes_f32", c.lanes_f32)
      .set("clock_ghz", c.clock_ghz)
      .set("clock_how", c.clock_how)
      .set("clock_add_chain_ghz", c.clock_add_ghz)
      .set("clock_imul_chain_ghz", c.clock_imul_ghz)
      .set("clock_measured_ok", c.clock_measured_ok)
      .set("cpuinfo_ghz", c.cpuinfo_ghz)
      .set("cpuid_base_ghz", c.cpuid_base_ghz)
      .set("cpuid_max_ghz", c.cpuid_max_ghz)
      .set("hypervisor", c.hypervisor)
      .set("peak_gflops_f32", c.peak_gflops_f32)
      .set("peak_gflops_f64", c.peak_gflops_f64)
      .set("fma_measured_gflops_f32", c.fma_measured_gflops_f32)
      .set("fma_measured_gflops_f64", c.fma_measured_gflops_f64)
      .set("fma_measured_how", "one thread's best run x threads")
      .set("fma_all_threads_gflops_f32", c.fma_all_threads_gflops_f32)
      .set("fma_all_threads_gflops_f64", c.fma_all_threads_gflops_f64)
      .set("limit_gflops_f32", c.limit_gflops_f32)
      .set("limit_gflops_f64", c.limit_gflops_f64)
      .set("limit_how", c.limit_how)
      .set("copy_gbps", c.copy_gbps)
      .set("copy_how", "STREAM-like copy, all threads, read + write bytes, best run")
      .set("copy_array_bytes", c.copy_bytes)
      .set("last_level_cache_bytes", c.l3_bytes);
  Json gpu = Json::object();
  gpu.set("present", g.present);
  if (g.present) {
    gpu.set("name", g.name)
        .set("compute_capability", std::to_string(g.cc_major) + "." + std::to_string(g.cc_minor))
        .set("sms", g.sms)
        .set("clock_ghz", g.clock_ghz)
        .set("mem_clock_ghz", g.mem_clock_ghz)
        .set("bus_width_bits", g.bus_width_bits)
        .set("total_mem_gb", g.total_mem_gb)
        .set("peak_gbps", g.peak_gbps)
        .set("d2d_copy_gbps", g.d2d_copy_gbps)
        .set("h2d_pinned_gbps", g.h2d_pinned_gbps)
        .set("peak_gflops_f32", g.peak_gflops_f32)
        .set("peak_gflops_f64", g.peak_gflops_f64)
        .set("fma_lanes_how", g.fma_lanes_how)
        .set("driver", g.driver_version)
        .set("cuda_runtime", g.runtime_version);
  } else {
    gpu.set("why_not", g.why_not);
  }
  Json m = Json::object();
  m.set("cpu", cpu).set("gpu", gpu);
  return m;
}

}  // namespace bench
