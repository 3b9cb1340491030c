// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: the model file reader (KMeans<T>::from_json) on arbitrary text.
// Any input must either load or throw kmeans::Error; a crash, a sanitizer report, another
// exception, or a loaded model that is inconsistent or does not save back to text that loads
// to the same centroids is a finding.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "kmeans/kmeans.hpp"

namespace {

template <class T>
void load(const std::string& text) {
  try {
    const kmeans::KMeans<T> m = kmeans::KMeans<T>::from_json(text, "fuzz");
    const kmeans::Result<T>& r = m.result();
    // The model's k is its centroid count: params().k is the next fit's k, which a model may
    // carry changed since its fit.
    const std::size_t d = m.n_features();
    if (!m.fitted() || d == 0 || r.centroids.empty() || r.centroids.size() % d != 0) std::abort();
    for (const T c : r.centroids)
      if (!std::isfinite(c)) std::abort();
    if (!r.labels.empty() || !(r.inertia >= 0)) std::abort();
    const kmeans::KMeans<T> back = kmeans::KMeans<T>::from_json(m.to_json(), "fuzz (saved again)");
    if (std::memcmp(back.result().centroids.data(), r.centroids.data(),
                    r.centroids.size() * sizeof(T)) != 0) {
      std::abort();
    }
  } catch (const kmeans::Error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  load<float>(text);
  load<double>(text);
  return 0;
}
