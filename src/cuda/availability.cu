// SPDX-License-Identifier: Apache-2.0
// Whether and where the CUDA backend can run: the driver probe (libcuda opened before the
// runtime is touched, so a machine without a driver gets a plain message), the device and
// build checks, the working-set estimate Auto uses, device-pointer detection, the engine
// factories (in memory, and the shard engine of src/cuda/shard.hpp), the NVTX ranges and the allocation counter the tests read.
#include <cuda_runtime.h>
#include <dlfcn.h>
#include <nvtx3/nvToolsExt.h>

#include <atomic>
#include <cstdio>
#include <memory>
#include <string>

#include "cuda/engine.cuh"
#include "engine.hpp"
#include "kernels/tuning.cuh"

namespace kmeans {
namespace detail {
namespace {

namespace tn = tuning;

/// Tells cuda_available whether this build has code for the device.
__global__ void probe_kernel() {}

/// Opens the driver library once. The static CUDA runtime would open it too, but its message
/// when it is missing ("CUDA driver version is insufficient for CUDA runtime version") misleads.
bool driver_loadable(std::string* why) {
  static const std::string failure = [] {
    if (dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD) != nullptr) return std::string();
    if (dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL) != nullptr) return std::string();
    const char* err = dlerror();
    return std::string("no NVIDIA driver found (libcuda.so.1 could not be loaded: ") +
           (err ? err : "unknown error") + ")";
  }();
  if (!failure.empty() && why) *why = failure;
  return failure.empty();
}

std::atomic<std::int64_t> g_cuda_allocations{0};

}  // namespace

void count_cuda_allocation() noexcept { g_cuda_allocations.fetch_add(1, std::memory_order_relaxed); }

std::int64_t cuda_allocation_count() { return g_cuda_allocations.load(std::memory_order_relaxed); }

ProfileRange::ProfileRange(const char* name) { nvtxRangePushA(name); }
ProfileRange::~ProfileRange() { nvtxRangePop(); }

bool is_device_pointer(const void* p) {
  if (p == nullptr || !driver_loadable(nullptr)) return false;
  cudaPointerAttributes attr{};
  if (cudaPointerGetAttributes(&attr, p) != cudaSuccess) {
    (void)cudaGetLastError();  // no device: not device memory, and no sticky error
    return false;
  }
  return attr.type == cudaMemoryTypeDevice || attr.type == cudaMemoryTypeManaged;
}

bool cuda_working_set_fits(std::int64_t n, std::int64_t d, int k, std::size_t elem,
                           bool data_on_device, std::string* why, std::size_t extra_bytes,
                           std::size_t held_bytes) {
  if (!cuda_available(why)) return false;
  if (n > tn::kMaxPoints) {
    if (why)
      *why = "n = " + std::to_string(n) + " exceeds the CUDA backend's limit of " +
             std::to_string(tn::kMaxPoints) + " points";
    return false;
  }
  int device = 0, sms = 0;
  std::size_t free_b = 0, total_b = 0;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) != cudaSuccess ||
      cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) {
    const cudaError_t err = cudaGetLastError();
    if (why) *why = std::string("cannot query device memory: ") + cudaGetErrorString(err);
    return false;
  }
  const std::size_t need =
      tn::working_set_bytes(n, d, k, elem, data_on_device, sms) + tn::kWorkingSetMarginBytes +
      extra_bytes;
  if (need > free_b + held_bytes) {
    if (why) {
      const auto gib = [](std::size_t b) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.2f", static_cast<double>(b) / (1u << 30));
        return std::string(buf);
      };
      *why = "the working set (" + gib(need) + " GiB) does not fit in the GPU's free memory (" +
             gib(free_b + held_bytes) + " GiB)";
    }
    return false;
  }
  return true;
}

template <class T>
std::unique_ptr<Engine<T>> make_cuda_engine(const DataView<T>& v) {
  std::string why;
  if (!cuda_available(&why)) throw Error("backend = cuda requested, but " + why);
  const bool on_device = is_device_pointer(v.data);
  const int device = cuda::device_for(v.data, on_device);
  cuda::DeviceGuard guard(device);
  return std::make_unique<cuda::CudaEngine<T>>(v, device, on_device);
}

template std::unique_ptr<Engine<float>> make_cuda_engine(const DataView<float>&);
template std::unique_ptr<Engine<double>> make_cuda_engine(const DataView<double>&);

namespace cuda {

template <class T>
std::unique_ptr<CudaShardEngine<T>> make_cuda_shard_engine(const DataView<T>& v,
                                                           std::int64_t first_block,
                                                           bool validated) {
  std::string why;
  if (!cuda_available(&why)) throw Error("a CUDA shard engine was requested, but " + why);
  const bool on_device = is_device_pointer(v.data);
  const int device = device_for(v.data, on_device);
  DeviceGuard guard(device);
  return std::make_unique<CudaEngine<T>>(v, device, on_device, first_block, validated);
}

template std::unique_ptr<CudaShardEngine<float>> make_cuda_shard_engine(const DataView<float>&,
                                                                        std::int64_t, bool);
template std::unique_ptr<CudaShardEngine<double>> make_cuda_shard_engine(const DataView<double>&,
                                                                         std::int64_t, bool);

}  // namespace cuda

}  // namespace detail

bool cuda_available(std::string* why) {
  if (!detail::driver_loadable(why)) return false;
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    (void)cudaGetLastError();
    if (why) *why = std::string("no usable CUDA device: ") + cudaGetErrorString(err);
    return false;
  }
  if (count == 0) {
    if (why) *why = "no CUDA device found";
    return false;
  }
  int device = 0, major = 0, minor = 0;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess ||
      cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device) != cudaSuccess) {
    err = cudaGetLastError();
    if (why) *why = std::string("cannot query the CUDA device: ") + cudaGetErrorString(err);
    return false;
  }
  // Only a refusal names the GPU (cudaGetDeviceProperties is too slow for every fit).
  const auto gpu = [device] {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, device) != cudaSuccess) {
      (void)cudaGetLastError();
      return "GPU " + std::to_string(device);
    }
    return "GPU " + std::to_string(device) + " (" + prop.name + ")";
  };
  const std::string cc = std::to_string(major) + "." + std::to_string(minor);
  if (major < 8) {
    if (why) *why = gpu() + " has compute capability " + cc + "; the CUDA backend needs 8.0";
    return false;
  }
  cudaFuncAttributes attr{};
  err = cudaFuncGetAttributes(&attr, detail::probe_kernel);
  if (err != cudaSuccess) {
    (void)cudaGetLastError();
    if (why)
      *why = "this build has no kernels for " + gpu() + " (compute capability " + cc +
             "): " + cudaGetErrorString(err);
    return false;
  }
  return true;
}

}  // namespace kmeans
