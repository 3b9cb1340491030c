// SPDX-License-Identifier: Apache-2.0
// The driver's entry points: for the public fit (fit_entry.cpp) and for engines bound outside it
// (MPI shards, streamed data).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine.hpp"
#include "internal.hpp"

namespace kmeans::detail {

/// Checks the scalar params of a fit of n points (k in [1, n], max_iter, tol, n_init, the
/// mini-batch knobs); throws kmeans::Error naming the value.
void validate_params(const Options& p, std::size_t n);

/// A device output (Params::device_labels_out, ...; `field` names it): null is "not given";
/// otherwise it must be device memory, and of CUDA device `device` when that is >= 0. Throws
/// kmeans::Error naming the field, the pointer and the devices.
void check_device_output(const void* ptr, const char* field, int device = -1);

/// Checks the data (n x d, host or device) and weights and binds an engine to them: the
/// engine in `slot` when it can take the data (Engine::rebind), else a new one of `backend`
/// stored there (Auto: the GPU when usable and the working set fits). Host data and weights
/// that need it are rescaled into `u` (data_scale_exponent over the data and
/// `centroid_max_abs`, the largest |c| of the centroids the call will use;
/// weight_scale_exponent), which must outlive the engine's use. `extra_bytes`: device memory
/// the call needs beyond a pass's working set (initialisation); `stream`: the caller's CUDA
/// stream (Options::cuda_stream). Defined in driver.cpp.
template <class T>
Engine<T>& bind_engine(const T* data, std::size_t n, std::size_t d, ArrayView<T> weights_view,
                       int k, Backend backend, int n_threads, std::unique_ptr<Engine<T>>& slot,
                       Workspace<T>* ws, std::size_t extra_bytes, double centroid_max_abs,
                       Units<T>& u, void* stream = nullptr);

/// The workspace of a KMeans object, created on first use.
template <class T>
Workspace<T>* workspace(WorkspacePtr<T>& ws);

/// The fit proper on an engine already bound to n x d data (validated, in the engine's units
/// `u`): n_init initialisations through `ops` and Lloyd's iterations (or mini-batch steps when
/// p.batch_size > 0 or `stream` is given), then the final assignment. The result is in the
/// caller's units. `bind_seconds` is added to timings.init; `held_batch` keeps mini-batch's
/// batch engine; `engines_made` (may be null) counts the engines it makes.
/// p.metric == Metric::Cosine: the engine's data (and p.init_centroids) must already be on the
/// unit sphere (sphere.hpp: to_sphere, normalise_rows), as run_fit arranges; fit_bound then
/// re-normalises the centroids after each update and reports cosine distances.
template <class T>
Result<T> fit_bound(Engine<T>& e, DataOps<T>& ops, std::int64_t n, std::int64_t d,
                    const Params<T>& p, Units<T>& u, double bind_seconds, StreamState* stream,
                    std::unique_ptr<Engine<T>>& held_batch, std::int64_t* engines_made);

/// The engine's own DataOps (the GPU's), or one over its host data kept in `holder`.
template <class T>
DataOps<T>& data_ops_of(Engine<T>& e, std::unique_ptr<DataOps<T>>& holder, std::int64_t n,
                        std::int64_t d, int n_threads);

/// The warnings about clusters left empty by the final assignment: the data hint only when the
/// data really has fewer distinct points than k (counted on host data). `counts`: the points
/// per cluster when the labels are not on the host (Params::device_labels_out), else empty.
template <class T>
void warn_empty_clusters(const T* data, std::int64_t n, std::int64_t d, const Result<T>& r,
                         int k, std::vector<std::string>& warnings,
                         const std::vector<std::int64_t>& counts = {});

}  // namespace kmeans::detail
