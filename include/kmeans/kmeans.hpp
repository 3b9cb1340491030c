// SPDX-License-Identifier: Apache-2.0
// kmeans: Lloyd k-means on NVIDIA GPUs with a fast multithreaded CPU fallback.
//
// This is the whole public surface. It compiles with any C++17 compiler: no CUDA headers,
// no nvcc. Templates are declared here and instantiated for float and double in the library.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

/// Marks the public API: the only symbols the shared library exports (everything else,
/// kmeans::detail included, is hidden).
#if defined(__GNUC__) || defined(__clang__)
#define KMEANS_API __attribute__((visibility("default")))
#else
#define KMEANS_API
#endif

namespace kmeans {

/// Which engine does the arithmetic.
enum class Backend {
  Auto,       ///< CUDA when the CUDA backend is built and a usable device exists, else Cpu.
  Cuda,       ///< NVIDIA GPU. Requesting it without a usable device throws kmeans::Error.
  Cpu,        ///< Fast multithreaded CPU backend (OpenMP, SIMD chosen at run time).
  Reference,  ///< Plain textbook loops in double precision: the oracle for the others. Slow.
};

/// How the initial centroids are chosen.
enum class Init {
  Random,          ///< k distinct points drawn uniformly (weighted by sample weights if given).
  KMeansPlusPlus,  ///< Greedy k-means++ as scikit-learn does it (2 + floor(ln k) local trials).
  KMeansParallel,  ///< k-means|| (Bahmani et al.): oversampling l = 2k for 5 rounds, then weighted
                   ///< k-means++ on the candidates. The scalable choice for large n and k.
  Array,           ///< User centroids from Params::init_centroids (k x d, same dtype as data).
};

/// How distances are measured (README, "Spherical k-means").
enum class Metric {
  Euclidean,  ///< Squared Euclidean distance: Lloyd's k-means.
  Cosine,     ///< Spherical k-means: the library scales the data (and given centroids) onto the
              ///< unit sphere (a row of zeros is an error), assigns each point to the centroid of
              ///< largest dot product, re-normalises the centroids after every update and reports
              ///< cosine distances: inertia, SSEs and score sum w_i (1 - x_i . c), transform
              ///< gives 1 - cos. Every backend; mini-batch too.
};

/// Which form of Lloyd's algorithm runs (scikit-learn's KMeans(algorithm=...)). Every choice
/// gives the same labels, centroids and inertia from the same start: the pruned one only skips
/// distances that provably cannot change a label.
enum class Algorithm {
  Lloyd,  ///< Every point against every centroid each iteration.
  Elkan,  ///< Bound-pruned (Yinyang-style group bounds) on Backend::Cpu once a pass changed at
          ///< most n / 20 labels (Lloyd's passes before); the other backends run Lloyd.
  Auto,   ///< Lloyd, turning the bounds on mid-fit where whole fits measured faster (README).
};

/// The one exception type of the library. The message names the problem and the value.
class KMEANS_API Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Per-iteration report given to Params::on_iteration.
struct IterationInfo {
  int iteration;        ///< 0-based iteration index (mini-batch: step index).
  double sse;           ///< Sum of squared distances of the assignment step of this iteration
                        ///< (mini-batch: of the step's batch).
  double center_shift;  ///< Total squared centroid movement of this iteration's update.
  double seconds;       ///< Wall time of this iteration.
};

/// A read-only view of `size` elements of type T: how arrays enter Params and score. Made from
/// a std::vector<T> (an lvalue: the vector must outlive the call), a built-in array T[N], a
/// pointer and its length, or empty (the default, or nullptr) for "not given". There is
/// deliberately no constructor from a bare pointer and none from another element type, so a
/// float fit cannot be handed double weights or centroids: that does not compile.
template <class T>
class ArrayView {
 public:
  constexpr ArrayView() noexcept = default;
  constexpr ArrayView(std::nullptr_t) noexcept {}  // NOLINT: "not given"
  constexpr ArrayView(const T* data, std::size_t size) noexcept : data_(data), size_(size) {}
  ArrayView(const std::vector<T>& v) noexcept : data_(v.data()), size_(v.size()) {}  // NOLINT
  template <std::size_t N>
  constexpr ArrayView(const T (&a)[N]) noexcept : data_(a), size_(N) {}  // NOLINT
  ArrayView(std::vector<T>&&) = delete;  ///< a temporary vector would dangle
  constexpr const T* data() const noexcept { return data_; }
  constexpr std::size_t size() const noexcept { return size_; }
  /// True for "not given": no pointer and no length.
  constexpr bool empty() const noexcept { return data_ == nullptr && size_ == 0; }

 private:
  const T* data_ = nullptr;
  std::size_t size_ = 0;
};

namespace detail {
/// T itself, in a context that template argument deduction ignores (C++20's std::type_identity):
/// score's weights convert to ArrayView<T> once T is deduced from the data.
template <class T>
struct type_identity {
  using type = T;
};
template <class T>
using NoDeduce = typename type_identity<T>::type;
}  // namespace detail

/// Every scalar knob of a fit, each with a default. Adding a field never breaks a caller.
struct Options {
  int k = 8;                           ///< Number of clusters, 1 <= k <= n.
  int max_iter = 300;                  ///< Maximum Lloyd iterations (>= 0; 0 = only the final assignment).
  double tol = 1e-4;                   ///< Relative tolerance: stop when the total squared centroid
                                       ///< shift <= tol * mean over features of the data's variance.
  Init init = Init::KMeansPlusPlus;    ///< Initialisation method.
  int n_init = 1;                      ///< Initialisations to run; the fit with the lowest inertia
                                       ///< is kept (ties: the earliest). Init::Array runs once.
  std::uint64_t seed = 0;              ///< Seed of the portable generator (splitmix64) used by init;
                                       ///< run i of n_init uses seed + i.
  Backend backend = Backend::Auto;     ///< Engine to use; see Backend.
  int n_threads = 0;                   ///< CPU threads (0 = OpenMP default).
  Algorithm algorithm = Algorithm::Lloyd;  ///< Lloyd (scikit-learn's default), Elkan or Auto.
  /// Mini-batch k-means (scikit-learn's MiniBatchKMeans) when > 0: each step assigns
  /// min(batch_size, n) rows drawn uniformly with replacement from the seed and moves every
  /// centre towards its batch mean with learning rate batch weight / its running count;
  /// max_iter then counts epochs (max_iter * n / batch_size steps), tol bounds the squared
  /// centre change of a step, and the labels and inertia are those of the whole data. 0 (the
  /// default) runs Lloyd's algorithm; scikit-learn's own default is 1024.
  int batch_size = 0;
  /// Mini-batch only: stop after this many steps without improvement of the smoothed batch
  /// inertia (0 disables the rule, scikit-learn's None).
  int max_no_improvement = 10;
  /// Mini-batch only: centres whose count falls below this fraction of the largest count are
  /// moved to random batch rows (0 disables).
  double reassignment_ratio = 0.01;
  /// Optional progress callback, called after every iteration; return false to stop early.
  /// A fit works on a copy of its Params taken when it starts, so the callback may change the
  /// caller's Params (or refit the same KMeans object) without disturbing the running fit.
  std::function<bool(const IterationInfo&)> on_iteration;
  /// Euclidean (k-means, the default) or Cosine (spherical k-means; see Metric).
  Metric metric = Metric::Euclidean;
  /// CUDA backend: the caller's CUDA stream (a cudaStream_t cast to void*; the header stays
  /// CUDA-free) after whose earlier work a fit reads device-resident data and weights, as if its
  /// work were queued on that stream. Null (the default): the legacy default stream, and so
  /// every blocking stream. The fit runs on the engine's own stream and is complete when it
  /// returns (results are host memory, unless Params::device_labels_out / device_centroids_out
  /// are given). Ignored by the host backends.
  void* cuda_stream = nullptr;
};

/// The parameters of a fit of data of type T: the scalar knobs plus the arrays, typed as the
/// data so that a mismatch does not compile, and sized so that their lengths are checked.
template <class T>
struct Params : Options {
  /// k x d centroids, row-major, host memory (Init::Array); the size must be k * d.
  ArrayView<T> init_centroids;
  /// Optional n non-negative weights (host memory, or device memory beside device data);
  /// the size must be n.
  ArrayView<T> sample_weight;
  /// Optional results that stay on the GPU (kmeans::fit and KMeans::fit; README, "Results on
  /// the device"): caller-allocated device memory (cudaMalloc, or managed memory) of the
  /// fit's device, k x d values for the centroids and n labels. Null (the default): not
  /// given. When given, the fit writes them before it returns (complete for the host, and
  /// ordered before later work on Options::cuda_stream, or on the legacy default stream when
  /// that is null); Result::centroids is filled as always, but with device_labels_out
  /// Result::labels is left empty. On the CUDA engine the labels go device to device (no
  /// n-sized copy to the host; a weighted fit copies them to the host once, only to sum the
  /// cluster sizes in point order); a fit that ran on the host (Backend::Cpu or Reference,
  /// Auto on the CPU, a fit streamed through the GPU) copies its host results in. With
  /// n_init > 1 the buffers receive the best run's results only. A pointer that is not device
  /// memory, or (CUDA engine) memory of another device, is a kmeans::Error naming the field.
  T* device_centroids_out = nullptr;
  std::int32_t* device_labels_out = nullptr;
};

/// Wall time of the phases of a fit, in seconds (host clock; GPU phases are synchronised).
struct Timings {
  double init = 0;          ///< Choosing the initial centroids (and binding the data).
  double assign = 0;        ///< All assignment passes of the iterations (distances, argmin, sums).
  double update = 0;        ///< Centroid updates, empty-cluster repair and convergence checks.
  double final_assign = 0;  ///< The final assignment against the returned centroids.
};

/// The outcome of a fit. Labels always belong to the returned centroids (a final assignment
/// is run after the last update).
template <class T>
struct Result {
  std::vector<T> centroids;          ///< k x d row-major.
  std::vector<std::int32_t> labels;  ///< n labels in [0, k); empty when the fit wrote them to
                                     ///< Params::device_labels_out.
  double inertia = 0;                ///< Sum of (weighted) squared distances to the assigned centroid.
  std::vector<double> sse_history;   ///< sse_history[i]: the SSE of iteration i's assignment step
                                     ///< (points against the centroids that iteration started from;
                                     ///< mini-batch: of step i's batch).
  int n_iter = 0;                    ///< Lloyd iterations run (mini-batch: epochs begun,
                                     ///< ceil(n_steps * batch_size / n), as scikit-learn).
  int n_steps = 0;                   ///< Mini-batch steps run (partial_fit: calls so far; Lloyd: 0).
  bool converged = false;            ///< True when labels stopped changing or the shift fell below tol.
  int n_empty_relocated = 0;         ///< Empty clusters moved to the farthest point, over all iterations.
  std::vector<double> cluster_sizes; ///< k values: the total sample weight (the point count when
                                     ///< unweighted) of each cluster in the final assignment.
  std::vector<double> imbalance_history; ///< imbalance_history[i]: FAISS's imbalance factor
                                     ///< k * sum_c size_c^2 / (sum_c size_c)^2 of iteration i's
                                     ///< assignment step (1 = perfectly balanced, k = one cluster).
  Backend backend = Backend::Auto;   ///< The engine that actually ran (never Auto).
  Timings timings;                   ///< Where the time went (all n_init runs).
  std::vector<std::string> warnings; ///< Non-fatal findings, e.g. fewer distinct clusters than k.
};

/// Clusters n points of d features (row-major) into p.k clusters with Lloyd's algorithm.
/// `data` (and Params::sample_weight) may be host memory or, with the CUDA backend, device
/// memory: device input is used in place and read after prior work on the default stream.
/// Params::init_centroids and the centroids given to predict/transform/score are host memory.
/// Throws kmeans::Error on bad input (null data, n or d of 0, k out of [1, n], NaN or Inf,
/// values beyond max_abs_value<T>(d), array lengths that do not match, sizes that overflow, an
/// unavailable backend). Deterministic: the same input, params and build give the same bits on
/// the same machine, whatever the thread count.
template <class T>
KMEANS_API Result<T> fit(const T* data, std::size_t n, std::size_t d, const Params<T>& p);

/// The largest magnitude accepted in data, initial centroids and the centroids given to
/// predict / transform / score with d features: sqrt(max(float) / (8 d)) for float, so that a
/// squared distance formed in float cannot overflow (with a factor 2 to spare for rounding),
/// and sqrt(max(double) / (8 d)) / 2^40 for double, so that weighted sums of squared
/// distances over up to 2^80 units of weight cannot overflow either; each rounded down to 3
/// significant digits. Larger values are rejected with a kmeans::Error naming the value, its
/// row and column and this range.
template <class T>
KMEANS_API double max_abs_value(std::size_t d);

/// Labels of n points against k given centroids (nearest centroid, ties to the lowest index).
/// When `used` is given it receives the engine that ran (never Auto); so for transform, score.
template <class T>
KMEANS_API std::vector<std::int32_t> predict(const T* data, std::size_t n, std::size_t d, const T* centroids,
                                  std::size_t k, Backend backend = Backend::Auto,
                                  Backend* used = nullptr);

/// Euclidean distances (not squared, as scikit-learn's transform) of n points to k centroids:
/// an n x k row-major matrix.
template <class T>
KMEANS_API std::vector<T> transform(const T* data, std::size_t n, std::size_t d, const T* centroids,
                         std::size_t k, Backend backend = Backend::Auto, Backend* used = nullptr);

/// Negative (weighted) inertia of n points against k centroids, as scikit-learn's score.
/// `sample_weight`, when given, holds n weights.
template <class T>
KMEANS_API double score(const T* data, std::size_t n, std::size_t d, const T* centroids, std::size_t k,
             detail::NoDeduce<ArrayView<T>> sample_weight = {}, Backend backend = Backend::Auto,
             Backend* used = nullptr);

/// predict, transform and score under a metric. Metric::Cosine scales the data and the
/// centroids onto the unit sphere first (a row of zeros is an error; rows already unit are used
/// as they are): labels by the largest cosine similarity, transform's n x k cosine distances
/// 1 - cos, score the negative sum of w_i (1 - cos). Metric::Euclidean is the calls above.
template <class T>
KMEANS_API std::vector<std::int32_t> predict(const T* data, std::size_t n, std::size_t d,
                                             const T* centroids, std::size_t k, Metric metric,
                                             Backend backend = Backend::Auto,
                                             Backend* used = nullptr);
template <class T>
KMEANS_API std::vector<T> transform(const T* data, std::size_t n, std::size_t d, const T* centroids,
                                    std::size_t k, Metric metric, Backend backend = Backend::Auto,
                                    Backend* used = nullptr);
template <class T>
KMEANS_API double score(const T* data, std::size_t n, std::size_t d, const T* centroids,
                        std::size_t k, Metric metric, detail::NoDeduce<ArrayView<T>> sample_weight = {},
                        Backend backend = Backend::Auto, Backend* used = nullptr);

/// predict (with `metric`) into device memory: the n labels are written to device_labels_out,
/// device memory of the GPU the call runs on (as Params::device_labels_out): device to device
/// on the CUDA engine, copied in from the host by a host backend; ordered on the legacy
/// default stream and complete when it returns. A null or host pointer, or (CUDA engine) one
/// of another device, is a kmeans::Error naming device_labels_out.
template <class T>
KMEANS_API void predict_to_device(const T* data, std::size_t n, std::size_t d,
                                  const T* centroids, std::size_t k,
                                  std::int32_t* device_labels_out,
                                  Metric metric = Metric::Euclidean,
                                  Backend backend = Backend::Auto, Backend* used = nullptr);

namespace detail {
/// Engines (and, on the GPU, device buffers, stream and captured graphs) kept between the calls
/// of one KMeans object. Opaque: defined inside the library, which also does all its handling.
template <class T>
class Workspace;
template <class T>
struct WorkspaceDeleter {
  void operator()(Workspace<T>* w) const noexcept;
};
template <class T>
using WorkspacePtr = std::unique_ptr<Workspace<T>, WorkspaceDeleter<T>>;

/// What KMeans::partial_fit carries from one call to the next (scikit-learn's _counts,
/// _n_since_last_reassign and random state).
struct StreamState {
  std::vector<double> counts;       ///< Per-centre weight seen so far; empty before the first call.
  std::uint64_t rng = 0;            ///< The state of the portable generator (reassignment draws).
  std::int64_t since_reassign = 0;  ///< Rows seen since the last reassignment check fired.
  int steps = 0;                    ///< partial_fit calls so far.
};
}  // namespace detail

/// An estimator in scikit-learn's shape: holds the parameters and, after fit, the result.
///
/// It also keeps the engines of its last calls: refitting data of the same shape (n, d), or
/// predicting / transforming / scoring batches of the same shape, reuses them. On the CUDA
/// backend that means the device buffers, the stream, the cuBLAS handle and the captured CUDA
/// graphs: such repeated calls allocate no device memory. Copies share nothing (a copy starts
/// with no engines). Like scikit-learn's estimators, one object must not be used from two
/// threads at once; distinct objects are independent.
///
/// Re-entry from Params::on_iteration is supported: a running fit holds its engines and a copy
/// of the params itself, so a call made from inside the callback on the same object (fit,
/// predict, release(), assignment, a change to params()) runs on engines of its own and does
/// not disturb it. When the outer fit returns, its result and engines replace whatever the
/// nested calls left. The one thing the callback must not do is destroy the object.
template <class T>
class KMEANS_API KMeans {
 public:
  explicit KMeans(Params<T> p = {});
  KMeans(const KMeans& o);
  KMeans& operator=(const KMeans& o);
  /// A moved-from object is unfitted (its methods throw as before the first fit).
  KMeans(KMeans&& o) noexcept;
  KMeans& operator=(KMeans&& o) noexcept;
  ~KMeans();

  /// Fits to n x d data; the result (centroids, labels, inertia, ...) is kept.
  KMeans& fit(const T* data, std::size_t n, std::size_t d);
  /// fit, then the labels of the same data.
  std::vector<std::int32_t> fit_predict(const T* data, std::size_t n, std::size_t d) {
    return fit(data, n, d).result_.labels;
  }
  /// One mini-batch step (scikit-learn's MiniBatchKMeans.partial_fit) over n x d rows that
  /// arrive in batches, weighted by params().sample_weight when given (n values). The first
  /// call on an object that fit() did not fit initialises from this batch (params().init,
  /// seed and init_centroids; one init) with zero counts; later calls continue from the
  /// current centroids and counts (after a fit(): counts = the fit's cluster_sizes). Each call
  /// needs k <= n rows of the first call's d. Afterwards result() holds the updated centroids,
  /// and the labels, inertia and cluster_sizes of this batch against them; n_steps counts the
  /// calls. Centres with counts below reassignment_ratio * the largest count are moved to rows
  /// of the batch as in fit (checked every 10 k rows, and whenever a count is 0).
  KMeans& partial_fit(const T* data, std::size_t n, std::size_t d);
  /// Labels of new data (n x d, the d of the fit), on the backend that ran the fit. predict,
  /// transform and score measure with params().metric.
  std::vector<std::int32_t> predict(const T* data, std::size_t n) const;
  /// predict into device memory: the n labels are written to device_labels_out (device memory
  /// of the engine's GPU, as Params::device_labels_out), device to device on the CUDA engine,
  /// copied in from the host otherwise; ordered on the legacy default stream and complete when
  /// it returns. A null or host pointer (or one of another device) is a kmeans::Error.
  void predict(const T* data, std::size_t n, std::int32_t* device_labels_out) const;
  /// n x k Euclidean distances (Metric::Cosine: cosine distances) of new data to the fitted
  /// centroids.
  std::vector<T> transform(const T* data, std::size_t n) const;
  /// Negative inertia of new data against the fitted centroids (sample_weight: n weights).
  double score(const T* data, std::size_t n, ArrayView<T> sample_weight = {}) const;

  bool fitted() const { return fitted_; }
  /// The number of features d of the fitted model; throws kmeans::Error before the first fit.
  std::size_t n_features() const {
    check_fitted();
    return d_;
  }
  const Params<T>& params() const { return params_; }
  Params<T>& params() { return params_; }
  /// The last fit's result; throws kmeans::Error before the first fit.
  const Result<T>& result() const {
    check_fitted();
    return result_;
  }
  /// Releases the kept engines (device memory included); the fitted result stays. Called from
  /// inside on_iteration it releases only engines made inside the callback.
  void release() noexcept;

  // Model files (README, "Model files"): one JSON document holding the format version, the
  // library version, dtype, k, d, metric, algorithm, the scalar params, the result's inertia,
  // n_iter, converged, backend, histories, cluster sizes and warnings, and the k x d centroids
  // as exact decimal numbers (they read back bit for bit). Labels and timings are not stored.
  // A mini-batch model adds n_steps and, after partial_fit, what the next call continues from
  // (counts, generator state), so a loaded copy continues exactly as the saved object.

  /// Writes the fitted model to `path`: to a temporary file beside it, renamed over `path` when
  /// complete, so a failure never leaves a partial file. Throws kmeans::Error when unfitted or
  /// when the file cannot be written.
  void save(const std::string& path) const;
  /// The text save() writes.
  std::string to_json() const;
  /// Reads a model file written by save() (of this dtype: a float64 model loaded as
  /// KMeans<float> is an error, see model_dtype). Throws kmeans::Error naming the file and the
  /// problem for a truncated, foreign or newer-format file, an unknown metric or algorithm, or
  /// inconsistent contents (k, d, the centroid array, a NaN or out-of-range value). The loaded
  /// object is fitted: predict, transform and score work and run on params().backend (the
  /// stored one, usually Auto); result() holds what the file holds, result().labels is empty.
  /// params().init_centroids and sample_weight are empty (the arrays are not stored).
  static KMeans load(const std::string& path);
  /// load() from the text of a model file; `name` names it in error messages.
  static KMeans from_json(const std::string& text, const std::string& name = "model text");
  /// A fitted estimator from given parts (what load() builds after reading a file): `result`'s
  /// centroids are k x d values (k >= 1), finite and within max_abs_value<T>(d); its
  /// cluster_sizes are empty or k values. The params are kept as given (params.k is the next
  /// fit's k; it differs from k only when it was changed after the fit) but for the arrays,
  /// which would dangle; predict / transform / score run on params.backend.
  static KMeans from_result(Params<T> params, Result<T> result, std::size_t d);

 private:
  void check_fitted() const {
    if (!fitted_) throw Error("KMeans: call fit() before using the fitted model");
  }
  /// The number of fitted centroids; only after check_fitted() (d_ is 0 before the first fit).
  std::size_t k() const {
    check_fitted();
    return result_.centroids.size() / d_;
  }

  /// The engine predict / transform / score ask for: the fit's, or params_.backend for a
  /// model that was loaded (or made by from_result) rather than fitted here.
  Backend serving_backend() const { return loaded_ ? params_.backend : result_.backend; }

  Params<T> params_;
  Result<T> result_;
  std::size_t d_ = 0;
  bool fitted_ = false;
  bool loaded_ = false;
  mutable detail::WorkspacePtr<T> ws_;
  detail::StreamState stream_;  ///< partial_fit's counts and generator (reset by fit)
};

// Defined in the library (src/estimator.cpp), for float and double.
extern template class KMeans<float>;
extern template class KMeans<double>;

/// "auto", "cuda", "cpu" or "reference".
KMEANS_API const char* to_string(Backend b);
/// "euclidean" or "cosine".
KMEANS_API const char* to_string(Metric m);

/// True when the CUDA backend is compiled in and a device of compute capability >= 8.0 is usable.
/// When false and `why` is given, it receives the reason.
KMEANS_API bool cuda_available(std::string* why = nullptr);

/// The library version, "MAJOR.MINOR.PATCH".
KMEANS_API const char* version();

/// The dtype of the model file at `path`, "float32" or "float64": which of KMeans<float> /
/// KMeans<double>::load reads it. Checks the file as load() does up to its dtype (a JSON
/// document of this format, not a newer version); throws kmeans::Error otherwise.
KMEANS_API std::string model_dtype(const std::string& path);

/// The model file format version this build writes and the newest it reads.
inline constexpr int kModelFormatVersion = 1;

}  // namespace kmeans
