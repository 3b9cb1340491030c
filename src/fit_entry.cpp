// SPDX-License-Identifier: Apache-2.0
// The public fit's way in (kmeans::fit and the KMeans object's fits): the shape, parameter and
// device-output checks, the choice to stream a too-large in-memory fit through the GPU,
// Metric::Cosine's unit-sphere copies, the workspace's engine (bind_engine), then the driver's
// fit_bound (driver.cpp), and the device outputs written back.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "driver.hpp"
#include "engine.hpp"
#include "internal.hpp"
#include "minibatch.hpp"
#include "sphere.hpp"
#include "stream/chunks.hpp"
#include "stream/cuda_stream.hpp"

namespace kmeans {
namespace detail {

namespace {

/// True when an in-memory fit streams through the GPU instead (why: the reason): Backend::Auto
/// or Cuda, a usable GPU, host data, a full-batch fit (not mini-batch, not partial_fit), a
/// passes' working set that does not fit its free memory plus
/// what a kept GPU engine of `ws` holds, and a streamed chunk that does (the device chunk
/// rule). Auto ran on the CPU there before; Cuda failed.
template <class T>
bool gpu_streams(Workspace<T>* ws, const T* data, std::size_t n, std::size_t d,
                 const Params<T>& p, std::string& why) {
  if (p.backend != Backend::Auto && p.backend != Backend::Cuda) return false;
  if (p.batch_size > 0 || !cuda_available() || is_device_pointer(data)) return false;
  if (p.sample_weight.data() && is_device_pointer(p.sample_weight.data())) return false;
  const std::size_t held = ws && ws->fit_engine && ws->fit_engine->kind() == Backend::Cuda
                               ? ws->fit_engine->device_bytes()
                               : 0;
  const auto ni = static_cast<std::int64_t>(n), di = static_cast<std::int64_t>(d);
  // The passes' working set alone: initialisation's device arrays have their own host
  // fallbacks (Auto may still choose the CPU for them, as before).
  if (cuda_working_set_fits(ni, di, p.k, sizeof(T), false, &why, 0, held)) return false;
  // And one chunk fits (else the old rule: Auto on the CPU with its warning, Cuda's error).
  const stream::CudaStreamDevice dev = stream::cuda_stream_device();
  return dev.usable && stream::cuda_stream_chunk_blocks(ni, di, p.k, sizeof(T),
                                                        p.sample_weight.data() != nullptr,
                                                        dev.free_bytes + held, dev.sm_count) > 0;
}

/// Params::device_centroids_out / device_labels_out (check_device_output): device memory,
/// and, when the fit's engine holds its labels on a device (`device` >= 0: the CUDA engine),
/// memory of that device.
template <class T>
void check_device_outputs(const Params<T>& p, int device = -1) {
  check_device_output(p.device_centroids_out, "device_centroids_out", device);
  check_device_output(p.device_labels_out, "device_labels_out", device);
}

/// The fit's results into Params::device_centroids_out / device_labels_out: the centroids
/// from the host result (k x d values), and the labels from the host when the engine left them
/// there (a fit that ran on the host or streamed), then Result::labels is emptied; the CUDA
/// engine's labels are already there (device_labels_and_sizes). On Options::cuda_stream (null:
/// the legacy default stream), complete when it returns.
template <class T>
void write_device_outputs(const Params<T>& p, Result<T>& r) {
  if (p.device_centroids_out)
    copy_host_to_device(p.device_centroids_out, r.centroids.data(),
                        r.centroids.size() * sizeof(T), p.cuda_stream);
  if (p.device_labels_out && !r.labels.empty()) {
    copy_host_to_device(p.device_labels_out, r.labels.data(),
                        r.labels.size() * sizeof(std::int32_t), p.cuda_stream);
    r.labels.clear();
    r.labels.shrink_to_fit();
  }
}

/// `stream`: partial_fit's state (minibatch.hpp), or null for a fit.
template <class T>
Result<T> run_fit(Workspace<T>* ws, const T* data, std::size_t n, std::size_t d,
                  const Params<T>& params, StreamState* stream = nullptr) {
  ProfileRange fit_range("kmeans::fit");
  // A copy: the callback may change the caller's params (or refit a KMeans object) meanwhile.
  Params<T> p = params;
  validate_shape(data, n, d, "data");
  validate_params(p, n);
  check_device_outputs(p);
  if (std::string why; !stream && gpu_streams(ws, data, n, d, p, why)) {
    // Auto or Cuda, host data, and the in-memory working set does not fit the GPU: the data
    // streams through it in chunks (stream/cuda_stream_engine.cpp), the in-memory CUDA
    // fit's bits. A kept GPU engine frees its memory first.
    if (ws) ws->fit_engine.reset();
    ArraySource<T> source(data, n, d);
    stream::InMemoryRoute<T> route{data, why};
    // Auto: the streamed fit's own rule may still choose the CPU (not even one chunk fits).
    StreamOptions so;
    so.memory_limit = std::numeric_limits<std::size_t>::max() / 2;  // the data is in memory
    // Device outputs: written here from the host result (the streamed engine keeps no labels
    // on the device).
    Params<T> host_out = p;
    host_out.device_centroids_out = nullptr;
    host_out.device_labels_out = nullptr;
    Result<T> r = stream::fit<T>(source, host_out, so, 0, &route);
    write_device_outputs(p, r);
    return r;
  }
  double init_max_abs = validate_init_centroids(p, d);
  // Metric::Cosine: the fit runs on copies of the data and the given centroids scaled onto
  // the unit sphere (they must outlive the engine's use: this call).
  SphereData<T> unit_data;
  std::vector<T> unit_init;
  const auto n64 = static_cast<std::int64_t>(n), d64 = static_cast<std::int64_t>(d);
  if (p.metric == Metric::Cosine) {
    data = to_sphere(data, n64, d64, "data", p.n_threads, unit_data, p.cuda_stream);
    if (p.init == Init::Array) {
      unit_init.resize(static_cast<std::size_t>(p.k) * d);
      normalise_rows(p.init_centroids.data(), p.k, d64, unit_init.data(), "init_centroids",
                     p.n_threads);
      p.init_centroids = ArrayView<T>(unit_init);
      init_max_abs = std::min(init_max_abs, 1.0);
    }
  }
  const auto t_bind = Clock::now();
  // The fit holds the workspace's engine while it runs (and gives it back however it ends):
  // a nested fit on the same workspace, from on_iteration, makes an engine of its own.
  std::unique_ptr<Engine<T>> held = ws ? std::move(ws->fit_engine) : nullptr;
  std::unique_ptr<Engine<T>> held_batch = ws ? std::move(ws->batch_engine) : nullptr;
  struct GiveBack {
    Workspace<T>* ws;
    std::unique_ptr<Engine<T>>& held;
    std::unique_ptr<Engine<T>>& held_batch;
    ~GiveBack() {
      if (!ws) return;
      ws->fit_engine = std::move(held);
      ws->batch_engine = std::move(held_batch);
    }
  } give_back{ws, held, held_batch};
  Units<T> u;
  Engine<T>& e = bind_engine(data, n, d, p.sample_weight, p.k, p.backend, p.n_threads, held, ws,
                             cuda_init_bytes(p.init, static_cast<std::int64_t>(n), p.k),
                             init_max_abs, u, p.cuda_stream);
  if (e.labels_device() >= 0) check_device_outputs(p, e.labels_device());
  const auto ni = static_cast<std::int64_t>(n), di = static_cast<std::int64_t>(d);
  std::unique_ptr<DataOps<T>> host_ops;
  DataOps<T>& ops = data_ops_of(e, host_ops, ni, di, p.n_threads);
  Result<T> best = fit_bound(e, ops, ni, di, p, u, seconds_since(t_bind), stream, held_batch,
                             ws ? &ws->engines_made : nullptr);
  if (!stream) warn_empty_clusters(data, ni, di, best, p.k, best.warnings, u.label_counts);
  write_device_outputs(p, best);
  return best;
}

}  // namespace

/// The workspace of a KMeans object, created on first use.
template <class T>
Workspace<T>* workspace(WorkspacePtr<T>& ws) {
  if (!ws) ws.reset(new Workspace<T>());
  return ws.get();
}

template <class T>
void WorkspaceDeleter<T>::operator()(Workspace<T>* w) const noexcept {
  delete w;
}

template <class T>
Result<T> fit(WorkspacePtr<T>& ws, const T* data, std::size_t n, std::size_t d,
              const Params<T>& p, StreamState* stream) {
  return run_fit(workspace(ws), data, n, d, p, stream);
}
#define KMEANS_INSTANTIATE(T)                                                                   \
  template struct WorkspaceDeleter<T>;                                                          \
  template Workspace<T>* workspace<T>(WorkspacePtr<T>&);                                        \
  template Result<T> fit<T>(WorkspacePtr<T>&, const T*, std::size_t, std::size_t,             \
                            const Params<T>&, StreamState*);
KMEANS_INSTANTIATE(float)
KMEANS_INSTANTIATE(double)
#undef KMEANS_INSTANTIATE

}  // namespace detail

template <class T>
Result<T> fit(const T* data, std::size_t n, std::size_t d, const Params<T>& p) {
  return detail::run_fit<T>(nullptr, data, n, d, p);
}

template Result<float> fit<float>(const float*, std::size_t, std::size_t, const Params<float>&);
template Result<double> fit<double>(const double*, std::size_t, std::size_t,
                                    const Params<double>&);
}  // namespace kmeans
