// SPDX-License-Identifier: Apache-2.0
// The one CUDA error path: every runtime call and every launch becomes a kmeans::Error naming
// the file, the line, the call's text and CUDA's own message.
#pragma once

#include <cuda_runtime.h>

#include <cstdio>
#include <string>

#include "kmeans/kmeans.hpp"

namespace kmeans::detail {

/// Builds the message of a failed CUDA call; the caller throws it.
inline std::string cuda_error_message(cudaError_t err, const char* call, const char* file,
                                      int line) {
  return std::string("CUDA error in ") + call + " at " + file + ":" + std::to_string(line) +
         ": " + cudaGetErrorName(err) + " (" + cudaGetErrorString(err) + ")";
}

[[noreturn]] inline void throw_cuda_error(cudaError_t err, const char* call, const char* file,
                                          int line) {
  // Reading the error clears it, so one failed call (out of memory, say) does not fail the next
  // unrelated call; a sticky error (a crashed kernel) stays and every later call reports it.
  (void)cudaGetLastError();
  throw Error(cuda_error_message(err, call, file, line));
}

}  // namespace kmeans::detail

/// Throws kmeans::Error unless `call` returns cudaSuccess.
#define KMEANS_CUDA_TRY(call)                                                 \
  do {                                                                        \
    const cudaError_t kmeans_err_ = (call);                                   \
    if (kmeans_err_ != cudaSuccess)                                           \
      ::kmeans::detail::throw_cuda_error(kmeans_err_, #call, __FILE__, __LINE__); \
  } while (0)

/// For destructors: a failure cannot be thrown, so it is written to stderr and cleared.
#define KMEANS_CUDA_TRY_NOTHROW(call)                                                  \
  do {                                                                                 \
    const cudaError_t kmeans_err_ = (call);                                            \
    if (kmeans_err_ != cudaSuccess) {                                                  \
      (void)cudaGetLastError();                                                        \
      std::fprintf(stderr, "kmeans: %s\n",                                             \
                   ::kmeans::detail::cuda_error_message(kmeans_err_, #call, __FILE__,  \
                                                        __LINE__).c_str());            \
    }                                                                                  \
  } while (0)

/// After every kernel launch: launch errors surface here; with KMEANS_CUDA_SYNC_DEBUG the
/// stream is synchronised too, so an error inside the kernel is reported at its launch.
#if defined(KMEANS_CUDA_SYNC_DEBUG)
#define KMEANS_CUDA_CHECK_LAUNCH(stream)              \
  do {                                                \
    KMEANS_CUDA_TRY(cudaGetLastError());              \
    KMEANS_CUDA_TRY(cudaStreamSynchronize(stream));   \
  } while (0)
#else
#define KMEANS_CUDA_CHECK_LAUNCH(stream) KMEANS_CUDA_TRY(cudaGetLastError())
#endif
