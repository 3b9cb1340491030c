// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: fit, then predict / transform / score, on a problem decoded from the bytes
// (shape, dtype, backend, init, weights, values). Any input must either be refused with
// kmeans::Error or give a result that keeps the library's promises: labels in [0, k) that
// predict reproduces, finite centroids, finite non-negative inertia and distances.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "kmeans/kmeans.hpp"

namespace {

/// Reads the bytes as a stream of values; past the end it repeats them (or gives 0).
class Bytes {
 public:
  Bytes(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  std::uint8_t byte() { return size_ == 0 ? 0 : data_[pos_++ % size_]; }
  /// Raw bit patterns (NaN, Inf, subnormals, huge values) or, when `tame`, small values
  /// (multiples of 1/16 in [-8, 8)) that make real clusterings.
  template <class T>
  T value(bool tame) {
    if (tame) return static_cast<T>(static_cast<std::int8_t>(byte())) / T(16);
    unsigned char raw[sizeof(T)];
    for (auto& b : raw) b = byte();
    T v;
    std::memcpy(&v, raw, sizeof v);
    return v;
  }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

[[noreturn]] void finding(const char* what) {
  std::fprintf(stderr, "fuzz_fit: broken promise: %s\n", what);
  std::abort();
}

/// True when some values' squared differences can underflow in T at the call's scale, so that
/// the fit and a later predict (whose scale comes from other centroids) may evaluate them
/// differently (README, Semantics: value range). The library scales a call by 2^e (e from its
/// largest |value| when that is below 2^-28 for float, 2^-432 for double; else e = 0). After
/// that scaling, the difference of two neighbouring values of magnitude v squares to about
/// (v 2^-p)^2 (p = 23 or 52), which leaves T's normal range below v = 2^-40 (float) or 2^-459
/// (double); a margin of 2^4 is kept.
template <class T>
bool mixes_underflowing_values(const std::vector<T>& x, const std::vector<T>& c) {
  const bool f = sizeof(T) == 4;
  double max_abs = 0;
  for (const std::vector<T>* v : {&x, &c})
    for (T e : *v) max_abs = std::max(max_abs, std::fabs(static_cast<double>(e)));
  const double small = f ? 0x1p-28 : 0x1p-432;
  const int e = (max_abs > 0 && max_abs < small) ? -std::ilogb(max_abs) : 0;
  const double floor = f ? 0x1p-36 : 0x1p-455;
  for (const std::vector<T>* v : {&x, &c})
    for (T v_e : *v) {
      const double a = std::ldexp(std::fabs(static_cast<double>(v_e)), e);
      if (a > 0 && a < floor) return true;
    }
  return false;
}

template <class T>
void run(Bytes& in, std::uint8_t flags) {
  const bool tame = (flags & 0x40) != 0;
  const std::size_t n = 1 + in.byte() % 48;
  const std::size_t d = 1 + in.byte() % 6;
  const int k = 1 + static_cast<int>(in.byte() % n);
  kmeans::Params<T> p;
  p.k = k;
  p.max_iter = in.byte() % 12;
  p.tol = (flags & 0x80) ? 0.0 : 1e-4;
  p.seed = in.byte();
  p.n_init = 1 + in.byte() % 3;
  p.backend = (flags & 0x10) ? kmeans::Backend::Reference : kmeans::Backend::Cpu;
  p.n_threads = 1 + (flags >> 5 & 1);
  static const kmeans::Init inits[] = {kmeans::Init::Random, kmeans::Init::KMeansPlusPlus,
                                       kmeans::Init::KMeansParallel, kmeans::Init::Array};
  p.init = inits[flags >> 1 & 3];
  std::vector<T> x(n * d), w, c;
  for (T& v : x) v = in.value<T>(tame);
  if (flags & 0x08) {
    w.resize(n);
    for (T& v : w) v = tame ? std::fabs(in.value<T>(true)) : in.value<T>(false);
    p.sample_weight = w;
  }
  if (p.init == kmeans::Init::Array) {
    c.resize(static_cast<std::size_t>(k) * d);
    for (T& v : c) v = in.value<T>(tame);
    p.init_centroids = c;
  }
  if (std::getenv("KMEANS_FUZZ_VERBOSE")) {  // replaying a finding: show the problem
    std::fprintf(stderr, "n %zu d %zu k %d %s init %d max_iter %d n_init %d seed %llu threads %d\n",
                 n, d, k, sizeof(T) == 4 ? "float" : "double", static_cast<int>(p.init),
                 p.max_iter, p.n_init, static_cast<unsigned long long>(p.seed), p.n_threads);
    for (std::size_t i = 0; i < x.size(); ++i) std::fprintf(stderr, "x %.17g\n", double(x[i]));
    for (T v : w) std::fprintf(stderr, "w %.17g\n", double(v));
    for (T v : c) std::fprintf(stderr, "c %.17g\n", double(v));
  }
  kmeans::Result<T> r;
  try {
    r = kmeans::fit(x.data(), n, d, p);
  } catch (const kmeans::Error&) {
    return;  // refused with a message: fine
  }
  if (std::getenv("KMEANS_FUZZ_VERBOSE"))
    for (T v : r.centroids) std::fprintf(stderr, "centroid %.17g\n", double(v));
  if (r.labels.size() != n || r.centroids.size() != static_cast<std::size_t>(k) * d)
    finding("result sizes");
  for (std::int32_t l : r.labels)
    if (l < 0 || l >= k) finding("label out of range");
  for (T v : r.centroids)
    if (!std::isfinite(v)) finding("non-finite centroid");
  // An inertia beyond the largest double (huge weights times huge distances) reads inf, and
  // the result says so; anything else must be a finite, non-negative number.
  bool inertia_overflow = false;
  for (const std::string& w : r.warnings)
    inertia_overflow =
        inertia_overflow || w.find("exceeds the largest double") != std::string::npos;
  if (!(r.inertia >= 0) || (!std::isfinite(r.inertia) && !inertia_overflow))
    finding("inertia not finite and >= 0 (and no overflow warning)");
  for (double s : r.sse_history)
    if (!(s >= 0) || (!std::isfinite(s) && !inertia_overflow))
      finding("sse_history not finite and >= 0 (and no overflow warning)");
  // The returned labels belong to the returned centroids: predict on the same backend agrees.
  // Not where values span so many binades that their squared differences underflow at the
  // call's scale: one scale serves a call, and the fit's (data and initial centroids) and
  // predict's (data and final centroids) may differ there (README, Semantics: value range).
  const std::vector<std::int32_t> again =
      kmeans::predict(x.data(), n, d, r.centroids.data(), static_cast<std::size_t>(k), r.backend);
  if (again != r.labels && !mixes_underflowing_values(x, c))
    finding("predict disagrees with the fit's labels");
  const std::vector<T> dist =
      kmeans::transform(x.data(), n, d, r.centroids.data(), static_cast<std::size_t>(k), r.backend);
  if (dist.size() != n * static_cast<std::size_t>(k)) finding("transform size");
  for (T v : dist)
    if (!std::isfinite(v) || v < 0) finding("transform distance not finite and >= 0");
  const double s = w.empty() ? kmeans::score(x.data(), n, d, r.centroids.data(),
                                             static_cast<std::size_t>(k), {}, r.backend)
                             : kmeans::score(x.data(), n, d, r.centroids.data(),
                                             static_cast<std::size_t>(k), w, r.backend);
  if (!(s <= 0) || (!std::isfinite(s) && !inertia_overflow)) finding("score not finite and <= 0");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  Bytes in(data + 1, size - 1);
  const std::uint8_t flags = data[0];
  if (flags & 1)
    run<double>(in, flags);
  else
    run<float>(in, flags);
  return 0;
}
