// SPDX-License-Identifier: Apache-2.0
// kmeans::fit over a RowSource: checks, the memory budget and its chunk size, then the driver's
// fit_bound on the stream engine (stream_engine.cpp) and DataOps (stream_ops.cpp).
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "driver.hpp"
#include "sphere.hpp"
#include "stream/chunks.hpp"
#include "stream/cuda_stream.hpp"

namespace kmeans {
namespace detail::stream {
namespace {

/// The process's resident memory now (Linux: /proc/self/statm), 0 when unknown.
std::size_t resident_bytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f) return 0;
  unsigned long long size = 0, resident = 0;
  const int got = std::fscanf(f, "%llu %llu", &size, &resident);
  std::fclose(f);
  if (got != 2) return 0;
  return static_cast<std::size_t>(resident) * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
}

std::string mib(std::size_t bytes) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%zu bytes (%.1f MiB)", bytes, bytes / 1048576.0);
  return buf;
}

/// The footprint for n x d with k, init and n_init; `weight_copy`: the weights need a rescaled
/// copy (Units::weight_exp != 0); `gpu`: the CUDA stream engine's host side per chunk row.
template <class T>
StreamFootprint footprint(std::size_t n, std::size_t d, const Params<T>& p, bool weight_copy,
                          bool gpu = false) {
  const double un = static_cast<double>(n), ud = static_cast<double>(d);
  const double k = std::max(1, p.k);
  const double t = sizeof(T);
  // Per point: the engine's labels (4) and, at the end of a run, the result's (4: the driver
  // sizes them before the engine hands its own over), the best run's while another runs (4).
  const double labels = (p.n_init > 1 && p.init != Init::Array ? 8.0 : 4.0) + 4.0;
  double init = 0;  // initialisation's per-point arrays (init.cpp), before the labels exist
  double init_rows = 0;  // and its rows held in memory
  switch (p.init) {
    case Init::Random: init = 16; break;  // (key, index) pairs
    case Init::KMeansParallel: {
      init = 8 + 1 + 8;  // closest, picked, nearest
      const double m = 12 * k + 1;  // candidates, generously (2k expected per round, 5 rounds)
      const double trials = 2 + std::floor(std::log(k));
      init_rows = m * ud * t + m * 8 * (3 + trials) + m * t;
      break;
    }
    case Init::KMeansPlusPlus: {  // closest; the candidates' rows and per-block sums
      const double trials = 2 + std::floor(std::log(k));
      init = 8;
      init_rows = trials * ud * t + trials * (un / kBlock + 1) * 8;
      break;
    }
    case Init::Array: break;
  }
  const double best_labels = p.n_init > 1 && p.init != Init::Array ? 4.0 : 0.0;
  const double per_point = std::max(labels, init + best_labels) + (weight_copy ? t : 0.0);
  // Whatever n: centroids, sums, the tree's node stack and their copies; per thread the chunk
  // engine's block scratch; the centroid tiles.
  const double stride = k * ud + k;
  const double threads = resolve_threads(p.n_threads);
  const double fixed = 80 * (stride + 1) * 8 + 4 * k * ud * t + threads * kBlock * (4 + t) +
                       (k + 64) * (ud + 1) * t + init_rows +
                       (std::size_t{1} << 20);  // the labels' copy window
  // Per row of a chunk: its values (mapped, or copied when rescaled), the chunk engine's
  // label, distance and copied label, and its share of the per-block partial sums (or the
  // bucket path's point order).
  // On the GPU: the rows (mapped, or read straight into staging), two pinned staging slots of
  // rows and weights, the chunk's downloaded labels and distances.
  const double per_row = gpu ? ud * t + 2 * (ud + 1) * t + 4 + t
                             : ud * t + 4 + t + 4 + std::max(stride * 8 / kBlock, 8.0);
  StreamFootprint f;
  f.fixed = static_cast<std::size_t>(std::ceil(un * per_point + fixed));
  f.per_row = static_cast<std::size_t>(std::ceil(per_row));
  return f;
}

template <class T>
void check_stream_params(const Params<T>& p) {
  if (p.batch_size > 0)
    throw Error("batch_size = " + std::to_string(p.batch_size) +
                ": a streamed fit runs Lloyd's algorithm (mini-batch is not supported)");
  if (p.backend != Backend::Auto && p.backend != Backend::Cpu && p.backend != Backend::Cuda)
    throw Error(std::string("backend = ") + to_string(p.backend) +
                ": a streamed fit runs on the CPU or CUDA backend (use Auto, Cpu or Cuda)");
}

}  // namespace

template <class T>
Result<T> fit(RowSource<T>& source, const Params<T>& params, const StreamOptions& so,
              std::int64_t max_partial_doubles, const InMemoryRoute<T>* route) {
  const auto t_bind = Clock::now();
  Params<T> p = params;  // a copy: the callback may change the caller's
  const std::size_t n = source.rows(), d = source.cols();
  if (n == 0) throw Error("data has n = 0 samples");
  if (d == 0) throw Error("data has d = 0 features");
  if (d > std::numeric_limits<std::size_t>::max() / sizeof(T) / n)
    throw Error("data: n x d = " + std::to_string(n) + " x " + std::to_string(d) +
                " overflows the address space");
  validate_params(p, n);
  check_stream_params(p);
  if (p.device_centroids_out || p.device_labels_out)
    throw Error("device_centroids_out / device_labels_out are given, but a streamed fit "
                "(kmeans::fit of a RowSource) returns its results in host memory (device "
                "outputs: kmeans::fit of an array, KMeans::fit)");
  double init_max_abs = validate_init_centroids(p, d);
  const auto ni = static_cast<std::int64_t>(n), di = static_cast<std::int64_t>(d);
  // Metric::Cosine: every chunk is normalised as it is read, and the given centroids here, as
  // the in-memory fit normalises its copies (driver.cpp's run_fit).
  const bool sphere = p.metric == Metric::Cosine;
  std::vector<T> unit_init;
  if (sphere && p.init == Init::Array) {
    unit_init.resize(static_cast<std::size_t>(p.k) * d);
    normalise_rows(p.init_centroids.data(), p.k, di, unit_init.data(), "init_centroids",
                   p.n_threads);
    p.init_centroids = ArrayView<T>(unit_init);
    init_max_abs = std::min(init_max_abs, 1.0);
  }

  Units<T> u;
  check_weights_view(p.sample_weight, n);
  const T* w = p.sample_weight.data();
  if (w) {
    if (is_device_pointer(w)) throw Error("a streamed fit needs sample_weight in host memory");
    u.weight_exp = weight_scale_exponent<T>(validate_weights(w, ni, p.n_threads));
  }

  // The engine: the GPU for Backend::Cuda, and for Auto when the CUDA backend is usable and
  // one chunk fits in its free memory (cuda_stream.hpp: the device chunk rule).
  std::int64_t gpu_blocks = 0;
  if (p.backend == Backend::Cuda || p.backend == Backend::Auto) {
    const CudaStreamDevice dev = cuda_stream_device();
    std::string why = dev.why;
    if (dev.usable) {
      gpu_blocks = cuda_stream_chunk_blocks(ni, di, p.k, sizeof(T), w != nullptr, dev.free_bytes,
                                            dev.sm_count);
      if (gpu_blocks == 0) {
        std::ostringstream msg;
        msg << "not even one 4096-row chunk of d = " << d << ", k = " << p.k
            << " fits in the GPU's free memory (" << mib(dev.free_bytes) << ")";
        why = msg.str();
      }
    }
    if (gpu_blocks == 0 && p.backend == Backend::Cuda)
      throw Error("backend = cuda requested for a streamed fit, but " + why);
    if (gpu_blocks == 0 && dev.usable) u.gpu_passed_over = why + ": using the CPU backend";
  }
  const bool gpu = gpu_blocks > 0;

  // The budget: what is resident now, the per-point arrays, and chunks of whole blocks.
  const std::size_t limit = so.memory_limit ? so.memory_limit : default_memory_limit();
  const std::size_t now = resident_bytes();
  const StreamFootprint f = footprint<T>(n, d, p, u.weight_exp != 0, gpu);
  const std::size_t need_block = now + f.fixed + f.per_row * static_cast<std::size_t>(kBlock);
  if (limit < need_block) {
    std::ostringstream msg;
    msg << "memory_limit = " << mib(limit) << " is too small for a streamed fit of n = " << n
        << ", d = " << d << ", k = " << p.k << ": " << mib(now) << " resident already, "
        << mib(f.fixed) << " of per-point arrays and centroids, and one 4096-row chunk of "
        << mib(f.per_row * kBlock) << " need " << mib(need_block);
    throw Error(msg.str());
  }
  // Chunks of 2^m whole blocks (aligned to 2^m: each is one canonical tree node).
  std::int64_t chunk_blocks;
  if (so.chunk_rows) {
    const std::size_t b = so.chunk_rows / kBlock;
    if (so.chunk_rows % kBlock != 0 || (b & (b - 1)) != 0)
      throw Error("chunk_rows = " + std::to_string(so.chunk_rows) +
                  " is not 4096 times a power of two");
    chunk_blocks = static_cast<std::int64_t>(b);
  } else {
    const std::size_t fit_blocks = (limit - now - f.fixed) / f.per_row / kBlock;
    chunk_blocks = 1;
    while (static_cast<std::size_t>(chunk_blocks) * 2 <= fit_blocks) chunk_blocks *= 2;
  }
  if (gpu && !so.chunk_rows) chunk_blocks = std::min(chunk_blocks, gpu_blocks);
  const std::int64_t n_blocks = (ni + kBlock - 1) / kBlock;
  while (chunk_blocks / 2 >= n_blocks) chunk_blocks /= 2;  // no larger than the data needs
  const std::int64_t chunk_rows = chunk_blocks * kBlock;

  // The points' range check (one pass), then their units.
  double max_abs = 0;
  {
    Chunks<T> check(source, chunk_rows, 0, sphere, p.n_threads);
    max_abs = validate_stream_points(check, p.n_threads);
  }
  u.data_exp = data_scale_exponent<T>(std::max(max_abs, init_max_abs));
  if (w && u.weight_exp != 0) {
    u.weights.resize(n);
    for (std::size_t i = 0; i < n; ++i) u.weights[i] = std::ldexp(w[i], -u.weight_exp);
    w = u.weights.data();
  }

  Chunks<T> chunks(source, chunk_rows, u.data_exp, sphere, p.n_threads);
  std::unique_ptr<DataOps<T>> ops = make_stream_data_ops(chunks, w, p.n_threads);
  std::unique_ptr<Engine<T>> e =
      gpu ? make_cuda_stream_engine(chunks, w, p.n_threads, ops.get())
          : make_stream_engine(chunks, w, p.n_threads, max_partial_doubles, ops.get());
  std::unique_ptr<Engine<T>> held_batch;
  Result<T> r = fit_bound(*e, *ops, ni, di, p, u, seconds_since(t_bind), nullptr, held_batch,
                          nullptr);
  if (route && gpu)
    r.warnings.insert(r.warnings.begin(),
                      route->why + ": the data streams through the GPU in chunks of " +
                          std::to_string(chunk_rows) + " rows");
  // The empty-cluster warning of the in-memory fit; its distinct-points count only when the
  // data is in memory (route).
  std::vector<char> used(static_cast<std::size_t>(p.k), 0);
  for (auto l : r.labels) used[static_cast<std::size_t>(l)] = 1;
  const auto distinct = std::count(used.begin(), used.end(), 1);
  const std::int64_t points =
      distinct < p.k && route && route->data ? count_distinct_rows(route->data, ni, di, p.k) : p.k;
  if (points < p.k)
    r.warnings.push_back("number of distinct clusters (" + std::to_string(distinct) +
                         ") found smaller than k = " + std::to_string(p.k) +
                         ": the data has only " + std::to_string(points) + " distinct points");
  else if (distinct < p.k)
    r.warnings.push_back("number of distinct clusters (" + std::to_string(distinct) +
                         ") found smaller than k = " + std::to_string(p.k) + ": " +
                         std::to_string(p.k - distinct) +
                         " cluster(s) ended empty in the final assignment" +
                         (r.converged ? "" : " (the fit stopped before converging: raise max_iter)"));
  return r;
}

template Result<float> fit<float>(RowSource<float>&, const Params<float>&, const StreamOptions&,
                                  std::int64_t, const InMemoryRoute<float>*);
template Result<double> fit<double>(RowSource<double>&, const Params<double>&,
                                    const StreamOptions&, std::int64_t,
                                    const InMemoryRoute<double>*);

}  // namespace detail::stream

std::size_t default_memory_limit() {
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page <= 0) return std::size_t{1} << 30;
  return static_cast<std::size_t>(pages) * static_cast<std::size_t>(page) / 2;
}

template <class T>
StreamFootprint stream_footprint(std::size_t n, std::size_t d, const Params<T>& p) {
  return detail::stream::footprint<T>(n, d, p, false);
}

template <class T>
Result<T> fit(RowSource<T>& source, const Params<T>& p, const StreamOptions& s) {
  return detail::stream::fit<T>(source, p, s, 0);
}

template KMEANS_API StreamFootprint stream_footprint<float>(std::size_t, std::size_t,
                                                            const Params<float>&);
template KMEANS_API StreamFootprint stream_footprint<double>(std::size_t, std::size_t,
                                                             const Params<double>&);
template KMEANS_API Result<float> fit<float>(RowSource<float>&, const Params<float>&,
                                             const StreamOptions&);
template KMEANS_API Result<double> fit<double>(RowSource<double>&, const Params<double>&,
                                               const StreamOptions&);

}  // namespace kmeans
