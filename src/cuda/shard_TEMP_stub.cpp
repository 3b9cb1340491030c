// SPDX-License-Identifier: Apache-2.0
// TEMPORARY (h-gpustream): a throwing make_cuda_shard_engine so the CUDA stream engine links until
// h-canon's definition is merged; delete this file then (and its line in CMakeLists.txt).
#include <memory>

#include "cuda/shard.hpp"

namespace kmeans::detail::cuda {

template <class T>
std::unique_ptr<CudaShardEngine<T>> make_cuda_shard_engine(const DataView<T>&, std::int64_t,
                                                           bool) {
  throw Error("the CUDA shard engine is not built yet (h-canon; src/cuda/shard_TEMP_stub.cpp)");
}

template std::unique_ptr<CudaShardEngine<float>> make_cuda_shard_engine(const DataView<float>&,
                                                                        std::int64_t, bool);
template std::unique_ptr<CudaShardEngine<double>> make_cuda_shard_engine(const DataView<double>&,
                                                                         std::int64_t, bool);

}  // namespace kmeans::detail::cuda
