// SPDX-License-Identifier: Apache-2.0
// Loads NCCL with dlopen on first use (as cublas.cpp does cuBLAS) and turns its errors into
// kmeans::Error.
#include "cuda/nccl.hpp"

#include <cuda_runtime.h>
#include <dlfcn.h>

namespace kmeans::detail::cuda {
namespace {

#define KMEANS_NCCL_STR2(x) #x
#define KMEANS_NCCL_STR(x) KMEANS_NCCL_STR2(x)
constexpr const char* kNcclLibrary = "libnccl.so." KMEANS_NCCL_STR(NCCL_MAJOR);

template <class F>
bool resolve(void* lib, const std::string& library, const char* name, F& out, std::string& why) {
  out = reinterpret_cast<F>(dlsym(lib, name));
  if (out == nullptr) why = library + " has no symbol " + name;
  return out != nullptr;
}

struct Loaded {
  std::unique_ptr<NcclApi> api;
  std::string why;
};

Loaded load_default() {
  Loaded l;
  l.api = load_nccl_from(kNcclLibrary, &l.why);
  return l;
}

const Loaded& loaded() {
  static const Loaded l = load_default();  // thread-safe initialisation
  return l;
}

}  // namespace

const char* nccl_library_name() { return kNcclLibrary; }

std::unique_ptr<NcclApi> load_nccl_from(const std::string& library, std::string* why) {
  std::string reason;
  void* lib = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) {
    const char* err = dlerror();
    reason = library + " could not be loaded (" + (err ? err : "unknown") +
             "); install NCCL (it comes with the CUDA toolkit here) or add its folder to "
             "LD_LIBRARY_PATH";
    if (why) *why = reason;
    return nullptr;
  }
  auto a = std::make_unique<NcclApi>();
  const bool ok = resolve(lib, library, "ncclGetVersion", a->get_version, reason) &&
                  resolve(lib, library, "ncclGetUniqueId", a->get_unique_id, reason) &&
                  resolve(lib, library, "ncclCommInitRank", a->comm_init_rank, reason) &&
                  resolve(lib, library, "ncclCommInitAll", a->comm_init_all, reason) &&
                  resolve(lib, library, "ncclCommDestroy", a->comm_destroy, reason) &&
                  resolve(lib, library, "ncclCommAbort", a->comm_abort, reason) &&
                  resolve(lib, library, "ncclCommGetAsyncError", a->comm_get_async_error, reason) &&
                  resolve(lib, library, "ncclGetErrorString", a->error_string, reason) &&
                  resolve(lib, library, "ncclSend", a->send, reason) &&
                  resolve(lib, library, "ncclRecv", a->recv, reason) &&
                  resolve(lib, library, "ncclBroadcast", a->broadcast, reason) &&
                  resolve(lib, library, "ncclGroupStart", a->group_start, reason) &&
                  resolve(lib, library, "ncclGroupEnd", a->group_end, reason);
  if (!ok) {
    if (why) *why = reason;
    return nullptr;
  }
  return a;
}

const NcclApi* nccl_api(std::string* why) {
  const Loaded& l = loaded();
  if (!l.api && why) *why = l.why;
  return l.api.get();
}

const NcclApi& nccl() {
  std::string why;
  const NcclApi* api = nccl_api(&why);
  if (api == nullptr) throw Error("kmeans::mpi's NCCL combine needs NCCL: " + why);
  return *api;
}

void check_nccl(ncclResult_t result, const char* call, const char* file, int line) {
  if (result == ncclSuccess) return;
  (void)cudaGetLastError();
  const NcclApi* api = nccl_api();
  throw Error(std::string("NCCL error in ") + call + " at " + file + ":" + std::to_string(line) +
              ": " + (api ? api->error_string(result) : "unknown result") + " (" +
              std::to_string(static_cast<int>(result)) + ")");
}

}  // namespace kmeans::detail::cuda
