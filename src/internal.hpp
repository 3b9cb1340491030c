// SPDX-License-Identifier: Apache-2.0
// Internal helpers shared by the driver, the initialisers and the host backends.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "kmeans/kmeans.hpp"
#include "cpu_pool.hpp"

namespace kmeans::detail {

using Clock = std::chrono::steady_clock;
/// Wall seconds since t (the driver's phase timings).
inline double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

/// Portable generator (splitmix64): the same seed gives the same stream on every platform.
class SplitMix64 {
 public:
  explicit SplitMix64(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next() {
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  /// Uniform in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  /// The current state: SplitMix64(state()) continues the stream from here.
  std::uint64_t state() const { return state_; }

 private:
  std::uint64_t state_;
};

/// Points per block of the fixed-order reductions: sums are formed per block and then added
/// in block order, so the result does not depend on the number of threads.
constexpr std::int64_t kReduceBlock = 4096;

/// Throws kmeans::Error unless (data, n, d) describe a usable host or device data set:
/// non-null, n >= 1, d >= 1, n * d fits in memory sizes.
void validate_shape(const void* data, std::size_t n, std::size_t d, const char* what);

/// Throws kmeans::Error naming the first NaN or Inf (row, column) of a host array.
template <class T>
void validate_finite(const T* x, std::int64_t n, std::int64_t d, const char* what, int n_threads);

/// Throws kmeans::Error naming the first NaN, Inf or value beyond max_abs_value<T>(d) (its row,
/// column, value and the allowed range) of host points or centroids (n x d): the one range rule
/// of the library, which the CUDA engine applies to device data too. Returns the largest |x|.
template <class T>
double validate_points(const T* x, std::int64_t n, std::int64_t d, const char* what,
                       int n_threads);

/// The exponent e such that points multiplied by 2^e (exactly: a power of two) have squared
/// distances in T clear of underflow: 0 (the common case) unless every |x| is below 2^-28
/// (float) or 2^-432 (double) and not all are 0; then max |x| * 2^e is in [1, 2). Points and
/// centroids of one call share e; results are scaled back exactly.
template <class T>
int data_scale_exponent(double max_abs);

/// The message of validate_points for x[row, col] (shared with the CUDA engine's check).
std::string point_error(const char* what, double value, std::int64_t row, std::int64_t col,
                        std::int64_t d, bool is_float);

/// Throws kmeans::Error unless a given (non-empty) `weights` view holds exactly n values.
template <class T>
void check_weights_view(ArrayView<T> weights, std::size_t n);

/// Throws kmeans::Error unless Params::init_centroids is usable for Init::Array: k x d host
/// values within max_abs_value<T>(d); checked before any work is done. Returns their largest
/// |c| (0 for the other inits).
template <class T>
double validate_init_centroids(const Params<T>& p, std::size_t d);

/// The largest weight and the total (in double, inf when it overflows) of valid weights.
struct WeightStats {
  double max = 0;
  double total = 0;
};

/// Throws kmeans::Error unless the host weights are finite, >= 0 and sum to more than 0.
template <class T>
WeightStats validate_weights(const T* w, std::int64_t n, int n_threads);

/// The exponent e such that weights divided by 2^e (exactly: a power of two) keep every weighted
/// sum of the fit finite and clear of subnormals: 0 (no rescaling, the common case) unless the
/// weights are double and total more than 2^64 or are all below 2^-64; then 2^e is the largest
/// weight's binade, so the largest rescaled weight is in [1, 2). Float weights never need it
/// (they are summed in double). Centroids do not change by rescaling, bit for bit; the
/// inertia, SSEs and cluster sizes are scaled back by 2^e.
template <class T>
int weight_scale_exponent(const WeightStats& w);

/// The exact power-of-two units of one call: the engine sees weights divided by 2^weight_exp
/// (weight_scale_exponent) and points multiplied by 2^data_exp (data_scale_exponent), held in
/// the copies below when they are not 0; results are converted back by these functions.
template <class T>
struct Units {
  std::vector<T> weights;  ///< the rescaled weights, when weight_exp != 0
  std::vector<T> points;   ///< the rescaled data, when data_exp != 0
  int weight_exp = 0;
  int data_exp = 0;
  /// Why Backend::Auto passed over a usable GPU (empty when it did not): a fit's warning.
  std::string gpu_passed_over;
  /// Params::device_labels_out on the CUDA engine: the number of points of each cluster in the
  /// returned labels (which are not on the host), for the empty-cluster warning.
  std::vector<std::int64_t> label_counts;
  /// A sum of weights (cluster sizes) in the caller's units.
  double size(double v) const { return weight_exp == 0 ? v : std::ldexp(v, weight_exp); }
  /// A (weighted) sum of squared distances in the caller's units.
  double sse(double v) const {
    const int e = weight_exp - 2 * data_exp;
    return e == 0 ? v : std::ldexp(v, e);
  }
  /// A sum of squared coordinate differences (the centre shift) in the caller's units.
  double squared(double v) const { return data_exp == 0 ? v : std::ldexp(v, -2 * data_exp); }
  /// Points or centroids into the engine's units (to_engine) and back (to_caller), in place.
  void to_engine(std::vector<T>& c) const {
    if (data_exp != 0)
      for (T& v : c) v = std::ldexp(v, data_exp);
  }
  void to_caller(std::vector<T>& c) const {
    if (data_exp != 0)
      for (T& v : c) v = std::ldexp(v, -data_exp);
  }
};

/// The number of distinct rows (by value: -0 equals 0) of host x (n x d), counted up to
/// `limit`: min(limit, distinct rows). One pass with a hash set; stops at `limit`.
template <class T>
std::int64_t count_distinct_rows(const T* x, std::int64_t n, std::int64_t d, std::int64_t limit);

/// Mean over features of the (population) variance of each feature: scikit-learn's tol scale.
template <class T>
double mean_feature_variance(const T* x, std::int64_t n, std::int64_t d, int n_threads);

/// mean_feature_variance's per-block partials over `rows` rows of x (n_threads threads): for
/// each block b of kReduceBlock rows (the first starting at row 0), part[b * d + j] = the sum in
/// row order of x_ij (mean null) or of (x_ij - mean_j)^2, in double. A streamed fit calls it
/// chunk by chunk with part offset to the chunk's first block: the same bits as one call.
template <class T>
void block_column_sums(const T* x, std::int64_t rows, std::int64_t d,
                       const std::vector<double>* mean, double* part, int n_threads);

/// mean_feature_variance's last steps (shared with the CUDA engine, so both give these bits):
/// column_means adds the per-block partial column sums part[b * d + j] in block order and
/// divides by n; mean_of is the plain mean of the values in order.
std::vector<double> column_means(const double* part, std::int64_t n_blocks, std::int64_t d,
                                 std::int64_t n);
double mean_of(const std::vector<double>& v);

template <class T>
class DataOps;

/// Initial centroids (k x d, host) by Init::Random, Init::KMeansPlusPlus or
/// Init::KMeansParallel. The draws are made on the host from the seed; the arithmetic on the
/// points (distances, sums over points) by `data` (init.cpp: host; cuda/data_ops.cu: GPU).
template <class T>
std::vector<T> init_random(DataOps<T>& data, int k, std::uint64_t seed);
template <class T>
std::vector<T> init_kmeans_plusplus(DataOps<T>& data, int k, std::uint64_t seed);

/// k-means|| (Bahmani et al.): a first point drawn by weight, then `rounds` rounds in which
/// every point joins the candidates independently with probability min(1, l w D^2 / phi)
/// (l = 2k), then greedy k-means++ on the candidates weighted by the weight they attract.
/// Per-point random numbers come from a counter-based hash, so results do not depend on the
/// number of threads.
template <class T>
std::vector<T> init_kmeans_parallel(DataOps<T>& data, int k, std::uint64_t seed, int n_threads);

/// Exact distances on the host with one point per SIMD lane (init.cpp): tiles of points are
/// converted to double and transposed (load_tile: xt[j * ld + r], ld = the tile's height), and
/// tile_squared_distances forms s[r] = sum_j (xt[j * ld + r] - c[j])^2 in feature order
/// (s = s + u * u, no fused multiply-add): the bits of every backend's exact distance
/// (Engine::distances), much faster than one point at a time (independent add chains).
void tile_squared_distances(const double* xt, std::int64_t ld, std::int64_t rows, std::int64_t d,
                            const float* c, double* s);
void tile_squared_distances(const double* xt, std::int64_t ld, std::int64_t rows, std::int64_t d,
                            const double* c, double* s);
template <class T>
void load_tile(const T* x, std::int64_t d, std::int64_t i0, std::int64_t rows, std::int64_t ld,
               double* xt);

/// Per-thread scratch of the tiled loops: a transposed tile of `rows` points (at most
/// kTileMaxRows, fewer when d is large so that the tile stays within 256 KiB, at least 1) and
/// its distances.
constexpr std::int64_t kTileMaxRows = 256;
struct TileScratch {
  std::int64_t rows;
  std::vector<double> xt, s;
  TileScratch(std::int64_t d, std::int64_t n)
      : rows(std::max<std::int64_t>(
            1, std::min<std::int64_t>({kTileMaxRows, n, (std::int64_t{256} << 10) / (8 * d)}))),
        xt(static_cast<std::size_t>(rows * d)), s(static_cast<std::size_t>(rows)) {}
};

/// Runs fn(ts, i0, rows) for every tile of points [i0, i0 + rows) of x (n x d), in parallel on
/// `threads` threads of the CPU backend's pool (cpu_pool.hpp: no OpenMP team left spinning
/// after it), with the tile already transposed into ts.xt (ts.rows is its stride). fn must not
/// throw.
template <class T, class Fn>
void for_each_tile(const T* x, std::int64_t n, std::int64_t d, int threads, Fn&& fn) {
  std::vector<TileScratch> scratch(1, TileScratch(d, n));
  const std::int64_t stride = scratch[0].rows;
  const std::int64_t n_tiles = (n + stride - 1) / stride;
  const int nt = static_cast<int>(std::min<std::int64_t>(std::max(threads, 1), n_tiles));
  scratch.resize(static_cast<std::size_t>(nt), scratch[0]);
  auto tile = [&](std::int64_t t, int slot) {
    TileScratch& ts = scratch[static_cast<std::size_t>(slot)];
    const std::int64_t i0 = t * stride, rows = std::min(stride, n - i0);
    load_tile(x, d, i0, rows, stride, ts.xt.data());
    fn(ts, i0, rows);
  };
  cpu::parallel_for(nt, n_tiles, tile);
}

/// The thread count to use: n_threads when positive, else the OpenMP default.
int resolve_threads(int n_threads);

/// Below this many element operations a parallel region costs more than it saves (and a
/// spinning team stalls badly when another process holds a core): run on one thread.
constexpr double kMinParallelWork = 1 << 20;

/// resolve_threads(n_threads), or 1 when `work` (element operations) is below kMinParallelWork.
int threads_for(int n_threads, double work);

}  // namespace kmeans::detail
