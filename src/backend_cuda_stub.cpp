// SPDX-License-Identifier: Apache-2.0
// Stand-in for the CUDA backend in builds configured without CUDA (KMEANS_ENABLE_CUDA=OFF or no
// nvcc): the CUDA backend reports itself unavailable and Auto falls back to the CPU.
#include <memory>
#include <string>

#include "engine.hpp"
#include "sphere.hpp"

namespace kmeans {

bool cuda_available(std::string* why) {
  if (why) *why = "the library was built without the CUDA backend";
  return false;
}

namespace detail {

bool is_device_pointer(const void*) { return false; }
int device_of_pointer(const void*) { return -1; }
void copy_host_to_device(void*, const void*, std::size_t, void*) {
  throw Error("device outputs, but the library was built without the CUDA backend");
}

std::int64_t cuda_allocation_count() { return 0; }

void set_cuda_free_memory_cap(std::size_t) {}
std::size_t cuda_free_memory_cap() { return 0; }
void set_cuda_gemm_chunk_rows_for_testing(std::int64_t) {}

ProfileRange::ProfileRange(const char*) {}
ProfileRange::~ProfileRange() = default;

bool cuda_working_set_fits(std::int64_t, std::int64_t, int, std::size_t, bool, std::string* why,
                           std::size_t, std::size_t) {
  return cuda_available(why);
}

template <class T>
std::unique_ptr<Engine<T>> make_cuda_engine(const DataView<T>&) {
  throw Error("backend = cuda requested, but the library was built without the CUDA backend");
}

template std::unique_ptr<Engine<float>> make_cuda_engine(const DataView<float>&);
template std::unique_ptr<Engine<double>> make_cuda_engine(const DataView<double>&);

template <class T>
std::shared_ptr<void> normalise_rows_device(const T*, std::int64_t, std::int64_t, const char*,
                                            void*) {
  throw Error("metric = cosine on GPU data, but the library was built without the CUDA backend");
}

template std::shared_ptr<void> normalise_rows_device(const float*, std::int64_t, std::int64_t,
                                                     const char*, void*);
template std::shared_ptr<void> normalise_rows_device(const double*, std::int64_t, std::int64_t,
                                                     const char*, void*);

}  // namespace detail
}  // namespace kmeans
