// SPDX-License-Identifier: Apache-2.0
// Backend::Reference: the textbook loops, in double, written to be obviously right.
// It is the oracle every other backend is tested against; speed is not a goal.
#include <algorithm>
#include <cstdint>
#include <limits>
#include <memory>
#include <numeric>
#include <vector>

#include "engine.hpp"

namespace kmeans::detail {
namespace {

template <class T>
class ReferenceEngine final : public Engine<T> {
 public:
  explicit ReferenceEngine(const DataView<T>& v)
      : v_(v), labels_(static_cast<std::size_t>(v.n), -1), dist_(static_cast<std::size_t>(v.n)) {}

  Backend kind() const override { return Backend::Reference; }

  StepStats assign(const T* centroids, int k, double* sums, double* weights) override {
    const std::int64_t n = v_.n, d = v_.d;
    StepStats stats;
    if (sums) {
      std::fill(sums, sums + k * d, 0.0);
      std::fill(weights, weights + k, 0.0);
    }
    for (std::int64_t i = 0; i < n; ++i) {
      const T* x = v_.data + i * d;
      // Nearest centroid; a strictly smaller distance is needed to move past an earlier one,
      // so ties go to the lowest index.
      int best = 0;
      double best_dist = std::numeric_limits<double>::infinity();
      for (int c = 0; c < k; ++c) {
        double dist = 0;
        for (std::int64_t j = 0; j < d; ++j) {
          const double diff = static_cast<double>(x[j]) - static_cast<double>(centroids[c * d + j]);
          dist += diff * diff;
        }
        if (dist < best_dist) {
          best_dist = dist;
          best = c;
        }
      }
      if (labels_[i] != best) ++stats.n_changed;
      labels_[i] = best;
      dist_[i] = best_dist;
      const double w = v_.weights ? static_cast<double>(v_.weights[i]) : 1.0;
      stats.sse += w * best_dist;
      if (sums) {
        for (std::int64_t j = 0; j < d; ++j) sums[best * d + j] += w * static_cast<double>(x[j]);
        weights[best] += w;
      }
    }
    return stats;
  }

  void labels(std::int32_t* out) override { std::copy(labels_.begin(), labels_.end(), out); }

  std::vector<FarPoint> farthest(std::int64_t m) override {
    std::vector<std::int64_t> idx(static_cast<std::size_t>(v_.n));
    std::iota(idx.begin(), idx.end(), 0);
    std::stable_sort(idx.begin(), idx.end(),
                     [&](std::int64_t a, std::int64_t b) { return dist_[a] > dist_[b]; });
    std::vector<FarPoint> out;
    for (std::int64_t i = 0; i < std::min(m, v_.n); ++i) out.push_back({idx[i], labels_[idx[i]]});
    return out;
  }

  const T* host_data() override { return v_.data; }
  const T* host_weights() override { return v_.weights; }

  void distances(const T* centroids, int k, T* out) override {
    host_distances(v_.data, v_.n, v_.d, centroids, k, out, 1);
  }

  bool rebind(const DataView<T>& v) override {
    v_ = v;
    labels_.assign(static_cast<std::size_t>(v.n), -1);
    dist_.assign(static_cast<std::size_t>(v.n), 0.0);
    return true;
  }

 private:
  DataView<T> v_;
  std::vector<std::int32_t> labels_;
  std::vector<double> dist_;
};

}  // namespace

template <class T>
std::unique_ptr<Engine<T>> make_reference_engine(const DataView<T>& v) {
  return std::make_unique<ReferenceEngine<T>>(v);
}

template std::unique_ptr<Engine<float>> make_reference_engine(const DataView<float>&);
template std::unique_ptr<Engine<double>> make_reference_engine(const DataView<double>&);

}  // namespace kmeans::detail
