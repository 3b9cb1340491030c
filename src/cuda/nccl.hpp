// SPDX-License-Identifier: Apache-2.0
// NCCL opened at run time (dlopen on first use), so neither the library nor anything linked to it
// needs libnccl to start; only kmeans::mpi's device combine (nccl_combine.cu) uses it.
#pragma once

#include <nccl.h>  // types and prototypes only: nothing here links against NCCL

#include <memory>
#include <string>

#include "kmeans/kmeans.hpp"

namespace kmeans::detail::cuda {

/// The NCCL entry points the combine calls, resolved from the shared library.
struct NcclApi {
  decltype(&ncclGetVersion) get_version;
  decltype(&ncclGetUniqueId) get_unique_id;
  decltype(&ncclCommInitRank) comm_init_rank;
  decltype(&ncclCommInitAll) comm_init_all;
  decltype(&ncclCommDestroy) comm_destroy;
  decltype(&ncclCommAbort) comm_abort;
  decltype(&ncclCommGetAsyncError) comm_get_async_error;
  decltype(&ncclGetErrorString) error_string;
  decltype(&ncclSend) send;
  decltype(&ncclRecv) recv;
  decltype(&ncclBroadcast) broadcast;
  decltype(&ncclGroupStart) group_start;
  decltype(&ncclGroupEnd) group_end;
};

/// The soname of the NCCL this was compiled against (same major version: same ABI).
const char* nccl_library_name();

/// The loaded API (loaded once, thread-safe), or null when NCCL cannot be opened; then `why`
/// receives the reason, e.g. "libnccl.so.2 could not be loaded (...)".
const NcclApi* nccl_api(std::string* why = nullptr);

/// nccl_api(), or a kmeans::Error saying why NCCL is unavailable.
const NcclApi& nccl();

/// For tests: loads `library` (a path or soname) afresh, not cached; null with `why` set when it
/// cannot be opened or lacks a symbol. The library stays loaded for the life of the process.
std::unique_ptr<NcclApi> load_nccl_from(const std::string& library, std::string* why);

/// Throws kmeans::Error naming the call and NCCL's message unless it returned ncclSuccess.
void check_nccl(ncclResult_t result, const char* call, const char* file, int line);

}  // namespace kmeans::detail::cuda

#define KMEANS_NCCL_TRY(call) ::kmeans::detail::cuda::check_nccl((call), #call, __FILE__, __LINE__)
