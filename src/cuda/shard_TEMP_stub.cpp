// SPDX-License-Identifier: Apache-2.0
// TEMPORARY (h-nccl until h-canon lands): a throwing make_cuda_shard_engine so that the build
// links; delete this file when merging h-canon's definition (src/cuda/shard.hpp).
#include "cuda/shard.hpp"
#include "kmeans/kmeans.hpp"

namespace kmeans::detail::cuda {

template <class T>
std::unique_ptr<CudaShardEngine<T>> make_cuda_shard_engine(const DataView<T>&, std::int64_t, bool) {
  throw Error("the CUDA shard engine is not in this build yet (src/cuda/shard_TEMP_stub.cpp)");
}

template std::unique_ptr<CudaShardEngine<float>> make_cuda_shard_engine(const DataView<float>&,
                                                                        std::int64_t, bool);
template std::unique_ptr<CudaShardEngine<double>> make_cuda_shard_engine(const DataView<double>&,
                                                                         std::int64_t, bool);

}  // namespace kmeans::detail::cuda
