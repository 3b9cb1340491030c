// SPDX-License-Identifier: Apache-2.0
// Model files' writing side (model_write.cpp), for model_file.cpp: the JSON text of a model and
// the atomic save.
#pragma once

#include <cstddef>
#include <string>

#include "internal.hpp"
#include "kmeans/kmeans.hpp"

namespace kmeans::detail {

/// The model file's "dtype" for T.
template <class T>
constexpr const char* model_dtype_name() {
  return sizeof(T) == 4 ? "float32" : "float64";
}

/// The model file's text (one JSON object) for params `p`, result `r` of d features and, for a
/// mini-batch model, its streaming state.
template <class T>
std::string model_text(const Options& p, const Result<T>& r, std::size_t d,
                       const StreamState& stream);

/// Writes `text` to `path` through a temporary file beside it, renamed over it when complete;
/// throws kmeans::Error naming the file and the reason (the target is left as it was).
void write_atomically(const std::string& path, const std::string& text);

}  // namespace kmeans::detail
