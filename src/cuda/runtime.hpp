// SPDX-License-Identifier: Apache-2.0
// RAII for the CUDA runtime objects the engine holds (device scope, events, streams, graphs),
// graph capture, and the few device queries it makes; every call goes through KMEANS_CUDA_TRY.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <utility>

#include "kernels/cuda_check.hpp"

namespace kmeans::detail::cuda {

/// Makes `device` current for a scope and restores the caller's device after.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device) {
    KMEANS_CUDA_TRY(cudaGetDevice(&previous_));
    if (previous_ == device)
      previous_ = -1;
    else
      KMEANS_CUDA_TRY(cudaSetDevice(device));
  }
  ~DeviceGuard() {
    if (previous_ >= 0) KMEANS_CUDA_TRY_NOTHROW(cudaSetDevice(previous_));
  }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = -1;
};

/// The last member of an engine to go: gives the caller back the device the destructor
/// switched from.
struct DeviceRestore {
  int previous = -1;
  ~DeviceRestore() {
    if (previous >= 0) KMEANS_CUDA_TRY_NOTHROW(cudaSetDevice(previous));
  }
};

/// A timing-free event, recorded once and destroyed (the runtime keeps it until it completes).
class Event {
 public:
  Event() { KMEANS_CUDA_TRY(cudaEventCreateWithFlags(&e_, cudaEventDisableTiming)); }
  ~Event() {
    if (e_) KMEANS_CUDA_TRY_NOTHROW(cudaEventDestroy(e_));
  }
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  cudaEvent_t get() const { return e_; }

 private:
  cudaEvent_t e_ = nullptr;
};

/// The engine's own non-blocking stream (never the legacy default stream).
class Stream {
 public:
  Stream() { KMEANS_CUDA_TRY(cudaStreamCreateWithFlags(&s_, cudaStreamNonBlocking)); }
  ~Stream() {
    if (s_) KMEANS_CUDA_TRY_NOTHROW(cudaStreamDestroy(s_));
  }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  cudaStream_t get() const { return s_; }

 private:
  cudaStream_t s_ = nullptr;
};

/// An instantiated CUDA graph.
class GraphExec {
 public:
  GraphExec() = default;
  explicit GraphExec(cudaGraphExec_t g) : g_(g) {}
  GraphExec(GraphExec&& o) noexcept : g_(std::exchange(o.g_, nullptr)) {}
  GraphExec& operator=(GraphExec&& o) noexcept {
    if (this != &o) {
      reset();
      g_ = std::exchange(o.g_, nullptr);
    }
    return *this;
  }
  ~GraphExec() { reset(); }
  void reset() noexcept {
    if (g_) KMEANS_CUDA_TRY_NOTHROW(cudaGraphExecDestroy(g_));
    g_ = nullptr;
  }
  cudaGraphExec_t get() const { return g_; }
  explicit operator bool() const { return g_ != nullptr; }

 private:
  cudaGraphExec_t g_ = nullptr;
};

/// Captures what enqueue() queues on stream s into an instantiated graph (thread-local capture
/// mode). A failure mid-capture ends the capture cleanly (the partial graph destroyed, the error
/// state cleared) before the exception goes on.
template <class F>
GraphExec capture_graph(cudaStream_t s, F&& enqueue) {
  KMEANS_CUDA_TRY(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
  try {
    enqueue();
  } catch (...) {
    cudaGraph_t broken = nullptr;
    (void)cudaStreamEndCapture(s, &broken);
    if (broken) (void)cudaGraphDestroy(broken);
    (void)cudaGetLastError();
    throw;
  }
  cudaGraph_t graph = nullptr;
  KMEANS_CUDA_TRY(cudaStreamEndCapture(s, &graph));
  cudaGraphExec_t exec = nullptr;
  const cudaError_t err = cudaGraphInstantiate(&exec, graph, 0);
  KMEANS_CUDA_TRY_NOTHROW(cudaGraphDestroy(graph));
  KMEANS_CUDA_TRY(err);
  return GraphExec(exec);
}

inline int device_attribute(cudaDeviceAttr attr, int device) {
  int value = 0;
  KMEANS_CUDA_TRY(cudaDeviceGetAttribute(&value, attr, device));
  return value;
}

inline std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }

/// The device an engine for `data` runs on: the one holding device data, else the current one.
inline int device_for(const void* data, bool on_device) {
  int device = 0;
  if (on_device) {
    cudaPointerAttributes attr{};
    KMEANS_CUDA_TRY(cudaPointerGetAttributes(&attr, data));
    device = attr.device;
  } else {
    KMEANS_CUDA_TRY(cudaGetDevice(&device));
  }
  return device;
}

}  // namespace kmeans::detail::cuda
