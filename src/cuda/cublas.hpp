// SPDX-License-Identifier: Apache-2.0
// cuBLAS opened at run time (dlopen on first use), so neither the library nor anything linked
// to it needs libcublas to start; only the GEMM path of the CUDA backend uses it.
#pragma once

#include <cublas_v2.h>  // types and prototypes only: nothing here links against cuBLAS

#include <cstddef>
#include <string>

#include "kmeans/kmeans.hpp"

namespace kmeans::detail::cuda {

/// The cuBLAS entry points the engine calls, resolved from the shared library.
struct CublasApi {
  decltype(&cublasCreate_v2) create;
  decltype(&cublasDestroy_v2) destroy;
  decltype(&cublasSetStream_v2) set_stream;
  decltype(&cublasSetWorkspace_v2) set_workspace;
  decltype(&cublasSetMathMode) set_math_mode;
  decltype(&cublasSgemm_v2) sgemm;
  decltype(&cublasDgemm_v2) dgemm;
  decltype(&cublasGetStatusString) status_string;
};

/// The loaded API (loaded once, thread-safe), or null when cuBLAS cannot be opened; then `why`
/// receives the reason, e.g. "libcublas.so.13 could not be loaded (...)".
const CublasApi* cublas_api(std::string* why = nullptr);

/// cublas_api(), or a kmeans::Error saying why cuBLAS is unavailable.
const CublasApi& cublas();

/// Throws kmeans::Error naming the call and cuBLAS's message unless it returned success.
void check_cublas(cublasStatus_t status, const char* call, const char* file, int line);

/// A cuBLAS handle bound to the engine's stream and to an explicit workspace.
class CublasHandle {
 public:
  CublasHandle() = default;
  ~CublasHandle();
  CublasHandle(const CublasHandle&) = delete;
  CublasHandle& operator=(const CublasHandle&) = delete;
  /// Creates the handle once, bound to `stream` and to `workspace` (graph capture must not let
  /// cuBLAS allocate), with plain FP32/FP64 arithmetic (TF32 would move near-tie labels).
  void create(cudaStream_t stream, void* workspace, std::size_t bytes);
  cublasHandle_t get() const { return h_; }

 private:
  cublasHandle_t h_ = nullptr;
};

/// products (m x n, column-major) = a^T b: a is k x m, b is k x n (column-major).
void gemm_tn(cublasHandle_t h, int m, int n, int k, const float* a, int lda, const float* b,
             int ldb, float* c, int ldc);
void gemm_tn(cublasHandle_t h, int m, int n, int k, const double* a, int lda, const double* b,
             int ldb, double* c, int ldc);

}  // namespace kmeans::detail::cuda

#define KMEANS_CUBLAS_TRY(call) ::kmeans::detail::cuda::check_cublas((call), #call, __FILE__, __LINE__)
