// SPDX-License-Identifier: Apache-2.0
// The small interface every backend implements; the Lloyd driver (driver.cpp) owns the algorithm.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kmeans/kmeans.hpp"

namespace kmeans::detail {

/// What one assignment pass reports.
struct StepStats {
  double sse = 0;             ///< Sum over points of w_i * ||x_i - c_{label_i}||^2.
  std::int64_t n_changed = 0; ///< Labels that differ from the previous pass (n on the first pass).
};

/// A point picked by Engine::farthest.
struct FarPoint {
  std::int64_t index;
  std::int32_t label;
  /// Its weight when the engine gives it (data spread over processes, kmeans::mpi), else -1:
  /// the driver reads DataOps::weights().
  double weight = -1;
};

/// What Engine::run_lloyd reports: per iteration the pass's SSE (engine units) and the imbalance
/// factor of its cluster weights (before repair), the iterations run, whether they converged and
/// the empty clusters repaired.
struct LloydTrace {
  std::vector<double> sse, imbalance;
  int n_iter = 0;
  bool converged = false;
  int n_empty_relocated = 0;
};

/// The data set an engine is bound to.
template <class T>
struct DataView {
  const T* data = nullptr;    ///< n x d row-major; host, or device for the CUDA backend.
  const T* weights = nullptr; ///< n weights or null (same memory space as data).
  std::int64_t n = 0;
  std::int64_t d = 0;
  int n_threads = 0;          ///< CPU threads, 0 = OpenMP default.
  /// CUDA: the stream (cudaStream_t) after whose work device data is read; null = the legacy
  /// default stream (Options::cuda_stream).
  void* stream = nullptr;
};

/// The arithmetic on the points that the driver needs beside the Lloyd passes: initialisation
/// (init.cpp), the tolerance scale and the rows moved by empty-cluster repair. The host
/// implementation works on host arrays; the CUDA engine on the device. Every distance is exact
/// (Engine::distances' formula, squared) and every sum is formed in the host's order, so all
/// implementations choose the same points from the same seed.
template <class T>
class DataOps {
 public:
  virtual ~DataOps() = default;
  virtual std::int64_t size() const = 0;  ///< n
  virtual std::int64_t dim() const = 0;   ///< d
  /// The per-point weights on the host, or null when every weight is 1.
  virtual const T* weights() = 0;
  /// Copies the points idx[0, m) into out (m x d, host).
  virtual void rows(const std::int64_t* idx, std::int64_t m, T* out) = 0;
  /// Greedy k-means++ (init.cpp explains it) with `trials` candidates per step. The draws use
  /// the uniforms u[0] (first centre) and u[1 + (s - 1) * trials + t] (step s, trial t).
  /// Returns the indices of the k chosen points.
  virtual std::vector<std::int64_t> greedy_kmeanspp(int k, int trials, const double* u) = 0;
  /// closest[i] = min(closest[i], min over c of |x_i - x_idx[c]|^2), closest on the host.
  virtual void lower_closest(const std::int64_t* idx, std::int64_t m, double* closest) = 0;
  /// out[i] = the c minimising |x_i - x_idx[c]|^2 (ties: the lowest c), out on the host.
  virtual void nearest(const std::int64_t* idx, std::int64_t m, std::int64_t* out) = 0;
  /// The mean over features of each feature's variance (the scale of Params::tol), with the
  /// host's mean_feature_variance's bits.
  virtual double mean_feature_variance() = 0;
};

/// DataOps over host arrays (w may be null). The arrays must outlive it.
template <class T>
std::unique_ptr<DataOps<T>> make_host_data_ops(const T* x, const T* w, std::int64_t n,
                                                 std::int64_t d, int n_threads);

/// A backend bound to one data set (n x d, row-major, weights optional). Backends own only
/// arithmetic and memory; init, empty-cluster repair and convergence live in the driver.
template <class T>
class Engine {
 public:
  virtual ~Engine() = default;

  /// The backend this engine implements (never Auto).
  virtual Backend kind() const = 0;

  /// One pass over the data against k centroids (k x d, host memory):
  /// label every point with its nearest centroid (ties to the lowest index), keep its squared
  /// distance, and, when `sums` is not null, accumulate per-cluster weighted coordinate sums
  /// (k x d) and weights (k) in double. The sums and weights are overwritten, not added to.
  virtual StepStats assign(const T* centroids, int k, double* sums, double* weights) = 0;

  /// Copies the labels of the last pass into out[n].
  virtual void labels(std::int32_t* out) = 0;

  /// The m points farthest from their centroid in the last pass (index and label), by
  /// decreasing distance, ties to the lowest index.
  virtual std::vector<FarPoint> farthest(std::int64_t m) = 0;

  /// The data on the host (row-major n x d). An engine whose data lives elsewhere makes a
  /// host copy on first call. Used by initialisation and empty-cluster repair.
  virtual const T* host_data() = 0;

  /// The per-point weights on the host, or null when every weight is 1.
  virtual const T* host_weights() = 0;

  /// Euclidean distances (not squared) of every point to k centroids (host, k x d) into `out`
  /// (host, n x k row-major). Each is the square root of sum_j (x_j - c_j)^2 formed in double,
  /// in feature order, without fused multiply-adds: every backend gives the same bits.
  virtual void distances(const T* centroids, int k, T* out) = 0;

  /// Binds the engine to another data set, keeping its buffers where it can, so that a
  /// KMeans object refitting (or predicting on) data of the same shape allocates nothing.
  /// The next pass counts every label as changed. Returns false, leaving the engine as it
  /// was, when the engine cannot take the data (the caller then makes a new one); the CUDA
  /// engine takes only the same n, d, device and memory space.
  virtual bool rebind(const DataView<T>& v) = 0;

  /// For an engine over data spread across processes (kmeans::mpi): this process's labels of
  /// the last pass into `labels` and the cluster sizes (the weights summed in point order over
  /// all n points) into `sizes` (k); false (the default) when the driver forms both from
  /// labels() and DataOps::weights() over all n points.
  virtual bool local_labels_and_sizes(int k, std::vector<std::int32_t>& labels,
                                      std::vector<double>& sizes) {
    (void)k, (void)labels, (void)sizes;
    return false;
  }

  /// The engine's own DataOps, or null: the driver then uses make_host_data_ops over
  /// host_data() and host_weights().
  virtual DataOps<T>* data_ops() { return nullptr; }

  /// The form of Lloyd's passes for the fits to come (Algorithm::Elkan / Auto: bound-pruned
  /// where the engine has it, with the same results). Engines without pruning ignore it.
  virtual void set_algorithm(Algorithm) {}
  /// True when set_algorithm(Elkan) makes this engine prune (the CPU engine over one data set;
  /// not the CUDA and reference engines, nor the streamed and distributed ones).
  virtual bool prunes() const { return false; }

  /// Points of the last pass that searched every centroid when that pass was bound-pruned,
  /// -1 when it was not (for tests and the benchmark).
  virtual std::int64_t last_pass_searched() const { return -1; }

  /// The driver's Lloyd loop (lloyd() in driver.cpp, its arithmetic in lloyd_step.hpp) run by
  /// the engine itself from `centroids` (k x d, host, engine units; the final ones on return)
  /// for at most max_iter iterations with absolute tolerance tol, with the host loop's bits
  /// (Euclidean metric, no iteration callback). Returns false, touching nothing, where the
  /// engine does not offer it (the default) or the fit is outside its size rule.
  virtual bool run_lloyd(T* centroids, int k, int max_iter, double tol, LloydTrace& out) {
    (void)centroids, (void)k, (void)max_iter, (void)tol, (void)out;
    return false;
  }

  /// Device memory the engine holds (0 for host engines).
  virtual std::size_t device_bytes() const { return 0; }

  /// The CUDA device whose memory holds the labels of the last pass, -1 (the default) for an
  /// engine without them (host engines, the streamed and distributed ones): then
  /// labels_to_device is not called.
  virtual int labels_device() const { return -1; }
  /// Params::device_labels_out (src/cuda/device_out.cu): the labels of the last pass copied
  /// device to device into out[n] (memory of labels_device()) on the engine's stream, the
  /// caller's stream (DataView::stream, null: the legacy default stream) made to wait for the
  /// copy, and the number of points of each label into counts[k] (exact integers, formed on
  /// the device); complete when it returns.
  virtual void labels_to_device(std::int32_t* out, int k, std::vector<std::int64_t>& counts) {
    (void)out, (void)k, (void)counts;
    throw Error("internal: labels_to_device on an engine without device labels");
  }
};


template <class T>
std::unique_ptr<Engine<T>> make_reference_engine(const DataView<T>& v);
template <class T>
std::unique_ptr<Engine<T>> make_cpu_engine(const DataView<T>& v);
/// The CPU engine with its size rule overridden: per-block partial sums are used while
/// blocks * (k * d + k) <= max_partial_doubles, else the bucket-by-label path (for tests).
template <class T>
std::unique_ptr<Engine<T>> make_cpu_engine(const DataView<T>& v, std::int64_t max_partial_doubles);
/// Throws kmeans::Error when the CUDA backend is not built or no device is usable.
template <class T>
std::unique_ptr<Engine<T>> make_cuda_engine(const DataView<T>& v);

/// True when the CUDA backend is usable and the working set of a fit (n x d data of elem_size
/// bytes, unless already on the device, plus k centroids and all scratch, plus extra_bytes,
/// e.g. initialisation's) fits in free device memory plus held_bytes (memory an engine that
/// would be replaced already holds). Backend::Auto uses the GPU only then; when false, `why`
/// receives the reason.
bool cuda_working_set_fits(std::int64_t n, std::int64_t d, int k, std::size_t elem_size,
                           bool data_on_device, std::string* why, std::size_t extra_bytes = 0,
                           std::size_t held_bytes = 0);

/// Test hook: caps the free device memory that Auto's working-set rule (cuda_working_set_fits)
/// and the streamed fit's device chunk rule see, so a small fit can be made to stream through
/// the GPU; 0 (the default) removes the cap. Not thread-safe against fits running meanwhile.
void set_cuda_free_memory_cap(std::size_t bytes);
std::size_t cuda_free_memory_cap();

/// Device memory the CUDA engine's initialisation keeps for `init` with k clusters over n
/// points (kept for reuse until the engine goes).
std::size_t cuda_init_bytes(Init init, std::int64_t n, int k);

/// True when `p` points to device memory (always false without the CUDA backend).
bool is_device_pointer(const void* p);

/// The CUDA device of device (or managed) memory at `p`, -1 for host memory or null (always -1
/// without the CUDA backend).
int device_of_pointer(const void* p);

/// Copies `bytes` of host memory at `src` to device memory at `dst` on `stream` (a cudaStream_t;
/// null: the legacy default stream) and waits for the copy (Params::device_centroids_out, and
/// the labels of a fit that ran on the host). Throws without the CUDA backend.
void copy_host_to_device(void* dst, const void* src, std::size_t bytes, void* stream);

/// Device (and pinned host) allocations made by the CUDA backend since the process started
/// (0 without it): lets tests check that a reused engine allocates nothing.
std::int64_t cuda_allocation_count();

/// Test hook: CUDA engines configured after the call split the GEMM path's products into chunks
/// of `rows` rows (rounded up to a whole argmin block), so small data runs many chunks through
/// the two product buffers; 0 restores the size rule. No effect without the CUDA backend.
void set_cuda_gemm_chunk_rows_for_testing(std::int64_t rows);

/// A named range around a scope for profilers: an NVTX range (Nsight Systems) when the CUDA
/// backend is built, nothing otherwise. Costs a few nanoseconds when no profiler listens.
class ProfileRange {
 public:
  explicit ProfileRange(const char* name);
  ~ProfileRange();
  ProfileRange(const ProfileRange&) = delete;
  ProfileRange& operator=(const ProfileRange&) = delete;
};

/// Distances as Engine::distances from host data (n x d), in parallel over points.
template <class T>
void host_distances(const T* x, std::int64_t n, std::int64_t d, const T* centroids, int k, T* out,
                    int n_threads);

/// Engines kept between calls by a kmeans::KMeans object: one bound to the fit data, one to
/// the data of predict / transform / score.
template <class T>
class Workspace {
 public:
  std::unique_ptr<Engine<T>> fit_engine;
  std::unique_ptr<Engine<T>> predict_engine;
  std::unique_ptr<Engine<T>> batch_engine;  ///< mini-batch fits' engine over one batch
  std::int64_t engines_made = 0;  ///< Engines constructed for this workspace (for tests).
  std::int64_t rebinds = 0;       ///< Calls that reused an engine (for tests).
};

/// kmeans::fit / predict / transform / score reusing the engines held by `ws` (created on
/// first use): what KMeans<T> calls (src/estimator.cpp, src/driver.cpp). fit with `stream`
/// is KMeans::partial_fit's one mini-batch step over the data (src/minibatch.cpp).
template <class T>
Result<T> fit(WorkspacePtr<T>& ws, const T* data, std::size_t n, std::size_t d,
              const Params<T>& p, StreamState* stream = nullptr);
/// `metric`: as kmeans::predict / transform / score's overloads with a Metric.
template <class T>
std::vector<std::int32_t> predict(WorkspacePtr<T>& ws, const T* data, std::size_t n,
                                  std::size_t d, const T* centroids, std::size_t k,
                                  Backend backend, Metric metric = Metric::Euclidean);
/// predict's labels into device memory device_labels_out[n] (KMeans::predict's overload).
template <class T>
void predict_to_device(WorkspacePtr<T>& ws, const T* data, std::size_t n, std::size_t d,
                       const T* centroids, std::size_t k, Backend backend, Metric metric,
                       std::int32_t* device_labels_out);
template <class T>
std::vector<T> transform(WorkspacePtr<T>& ws, const T* data, std::size_t n, std::size_t d,
                         const T* centroids, std::size_t k, Backend backend,
                         Metric metric = Metric::Euclidean);
template <class T>
double score(WorkspacePtr<T>& ws, const T* data, std::size_t n, std::size_t d,
             const T* centroids, std::size_t k, ArrayView<T> sample_weight, Backend backend,
             Metric metric = Metric::Euclidean);

}  // namespace kmeans::detail
