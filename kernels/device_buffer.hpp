// SPDX-License-Identifier: Apache-2.0
// The only owner of raw CUDA allocations: a move-only buffer of device or pinned host memory.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <string>
#include <utility>

#include "kernels/cuda_check.hpp"

namespace kmeans::detail {

enum class MemorySpace { Device, Pinned };

/// What CudaBuffer::allocate throws when the device (or pinned host memory) is full: a
/// kmeans::Error, distinct so that a caller with a host fallback can take it for that only.
class OutOfDeviceMemory : public Error {
 public:
  using Error::Error;
};

/// Counts one allocation (cuda_allocation_count in src/engine.hpp; defined in src/cuda/availability.cu).
void count_cuda_allocation() noexcept;

/// `size` elements of T in device memory or page-locked host memory. Allocation failure
/// (out of memory included) throws kmeans::Error naming the buffer and the size, and leaves
/// the runtime usable. The destructor never throws.
template <class T, MemorySpace kSpace>
class CudaBuffer {
 public:
  CudaBuffer() = default;
  CudaBuffer(std::size_t size, const char* name) { allocate(size, name); }
  CudaBuffer(const CudaBuffer&) = delete;
  CudaBuffer& operator=(const CudaBuffer&) = delete;
  CudaBuffer(CudaBuffer&& o) noexcept : ptr_(std::exchange(o.ptr_, nullptr)),
                                        size_(std::exchange(o.size_, 0)) {}
  CudaBuffer& operator=(CudaBuffer&& o) noexcept {
    if (this != &o) {
      release();
      ptr_ = std::exchange(o.ptr_, nullptr);
      size_ = std::exchange(o.size_, 0);
    }
    return *this;
  }
  ~CudaBuffer() { release(); }

  /// Frees the old memory first, so a resize never needs room for both.
  void allocate(std::size_t size, const char* name) {
    release();
    if (size == 0) return;
    void* p = nullptr;
    const std::size_t bytes = size * sizeof(T);
    const cudaError_t err =
        kSpace == MemorySpace::Device ? cudaMalloc(&p, bytes) : cudaMallocHost(&p, bytes);
    if (err != cudaSuccess) {
      (void)cudaGetLastError();  // out-of-memory must not poison the next call
      std::size_t free_b = 0, total_b = 0;
      if (kSpace == MemorySpace::Device && cudaMemGetInfo(&free_b, &total_b) != cudaSuccess)
        (void)cudaGetLastError();
      std::string msg = std::string("CUDA ") +
                        (kSpace == MemorySpace::Device ? "device" : "pinned host") +
                        " allocation of " + std::to_string(bytes) + " bytes for " + name +
                        " failed: " + cudaGetErrorString(err);
      if (kSpace == MemorySpace::Device && total_b > 0)
        msg += " (free " + std::to_string(free_b) + " of " + std::to_string(total_b) + " bytes)";
      if (err == cudaErrorMemoryAllocation) throw OutOfDeviceMemory(msg);
      throw Error(msg);
    }
    ptr_ = static_cast<T*>(p);
    size_ = size;
    count_cuda_allocation();
  }

  void release() noexcept {
    if (ptr_ == nullptr) return;
    if (kSpace == MemorySpace::Device)
      KMEANS_CUDA_TRY_NOTHROW(cudaFree(ptr_));
    else
      KMEANS_CUDA_TRY_NOTHROW(cudaFreeHost(ptr_));
    ptr_ = nullptr;
    size_ = 0;
  }

  T* get() const noexcept { return ptr_; }
  std::size_t size() const noexcept { return size_; }
  std::size_t bytes() const noexcept { return size_ * sizeof(T); }

 private:
  T* ptr_ = nullptr;
  std::size_t size_ = 0;
};

template <class T>
using DeviceBuffer = CudaBuffer<T, MemorySpace::Device>;
template <class T>
using PinnedBuffer = CudaBuffer<T, MemorySpace::Pinned>;

}  // namespace kmeans::detail
