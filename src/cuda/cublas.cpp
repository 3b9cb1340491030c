// SPDX-License-Identifier: Apache-2.0
// Loads cuBLAS with dlopen on first use and wraps the handle and the two GEMMs the engine runs.
#include "cuda/cublas.hpp"

#include <dlfcn.h>

#include <mutex>

namespace kmeans::detail::cuda {
namespace {

#define KMEANS_STR2(x) #x
#define KMEANS_STR(x) KMEANS_STR2(x)
/// The soname of the cuBLAS this was compiled against (same major version: same ABI).
constexpr const char* kCublasLibrary = "libcublas.so." KMEANS_STR(CUBLAS_VER_MAJOR);

struct Loaded {
  CublasApi api{};
  bool ok = false;
  std::string why;
};

template <class F>
bool resolve(void* lib, const char* name, F& out, std::string& why) {
  out = reinterpret_cast<F>(dlsym(lib, name));
  if (out == nullptr) why = std::string(kCublasLibrary) + " has no symbol " + name;
  return out != nullptr;
}

Loaded load() {
  Loaded l;
  void* lib = dlopen(kCublasLibrary, RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) {
    const char* err = dlerror();
    l.why = std::string(kCublasLibrary) + " could not be loaded (" + (err ? err : "unknown") +
            "); install the CUDA toolkit's cuBLAS or add its folder to LD_LIBRARY_PATH";
    return l;
  }
  CublasApi& a = l.api;
  l.ok = resolve(lib, "cublasCreate_v2", a.create, l.why) &&
         resolve(lib, "cublasDestroy_v2", a.destroy, l.why) &&
         resolve(lib, "cublasSetStream_v2", a.set_stream, l.why) &&
         resolve(lib, "cublasSetWorkspace_v2", a.set_workspace, l.why) &&
         resolve(lib, "cublasSetMathMode", a.set_math_mode, l.why) &&
         resolve(lib, "cublasSgemm_v2", a.sgemm, l.why) &&
         resolve(lib, "cublasDgemm_v2", a.dgemm, l.why) &&
         resolve(lib, "cublasGetStatusString", a.status_string, l.why);
  // The library stays loaded for the life of the process (handles may outlive any one engine).
  return l;
}

const Loaded& loaded() {
  static const Loaded l = load();  // thread-safe initialisation
  return l;
}

}  // namespace

const CublasApi* cublas_api(std::string* why) {
  const Loaded& l = loaded();
  if (!l.ok && why) *why = l.why;
  return l.ok ? &l.api : nullptr;
}

const CublasApi& cublas() {
  std::string why;
  const CublasApi* api = cublas_api(&why);
  if (api == nullptr) throw Error("the CUDA backend's GEMM path needs cuBLAS: " + why);
  return *api;
}

void check_cublas(cublasStatus_t status, const char* call, const char* file, int line) {
  if (status == CUBLAS_STATUS_SUCCESS) return;
  (void)cudaGetLastError();
  const CublasApi* api = cublas_api();
  throw Error(std::string("cuBLAS error in ") + call + " at " + file + ":" + std::to_string(line) +
              ": " + (api ? api->status_string(status) : "unknown status") + " (" +
              std::to_string(static_cast<int>(status)) + ")");
}

CublasHandle::~CublasHandle() {
  if (h_) (void)cublas_api()->destroy(h_);
}

void CublasHandle::create(cudaStream_t stream, void* workspace, std::size_t bytes) {
  if (h_) return;
  const CublasApi& api = cublas();
  KMEANS_CUBLAS_TRY(api.create(&h_));
  KMEANS_CUBLAS_TRY(api.set_stream(h_, stream));
  KMEANS_CUBLAS_TRY(api.set_workspace(h_, workspace, bytes));
  KMEANS_CUBLAS_TRY(api.set_math_mode(h_, CUBLAS_DEFAULT_MATH));
}

void gemm_tn(cublasHandle_t h, int m, int n, int k, const float* a, int lda, const float* b,
             int ldb, float* c, int ldc) {
  const float alpha = 1, beta = 0;
  KMEANS_CUBLAS_TRY(
      cublas().sgemm(h, CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, &alpha, a, lda, b, ldb, &beta, c, ldc));
}

void gemm_tn(cublasHandle_t h, int m, int n, int k, const double* a, int lda, const double* b,
             int ldb, double* c, int ldc) {
  const double alpha = 1, beta = 0;
  KMEANS_CUBLAS_TRY(
      cublas().dgemm(h, CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, &alpha, a, lda, b, ldb, &beta, c, ldc));
}

}  // namespace kmeans::detail::cuda
