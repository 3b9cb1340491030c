// SPDX-License-Identifier: Apache-2.0
// Stand-in for the CUDA stream engine in builds without the CUDA backend: no device to stream to.
#include <memory>
#include <string>

#include "stream/cuda_stream.hpp"

namespace kmeans::detail::stream {

CudaStreamDevice cuda_stream_device() {
  CudaStreamDevice out;
  (void)cuda_available(&out.why);
  return out;
}

template <class T>
std::unique_ptr<Engine<T>> make_cuda_stream_engine(Chunks<T>&, const T*, int, DataOps<T>*) {
  throw Error("backend = cuda requested, but the library was built without the CUDA backend");
}

template std::unique_ptr<Engine<float>> make_cuda_stream_engine(Chunks<float>&, const float*, int,
                                                                DataOps<float>*);
template std::unique_ptr<Engine<double>> make_cuda_stream_engine(Chunks<double>&, const double*,
                                                                 int, DataOps<double>*);

}  // namespace kmeans::detail::stream
