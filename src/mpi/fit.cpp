// SPDX-License-Identifier: Apache-2.0
// kmeans::mpi::fit: shapes, validation and units agreed across ranks (one error for all), then
// the single-process driver (fit_bound) on the distributed engine.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "driver.hpp"
#include "internal.hpp"
#include "kmeans/mpi.hpp"
#include "mpi/comm.hpp"
#include "mpi/dist_engine.hpp"
#include "sphere.hpp"

namespace kmeans::mpi {

using detail::Comm;

Shard shard_rows(std::size_t n, int rank, int size) {
  if (size < 1 || rank < 0 || rank >= size)
    throw Error("shard_rows: rank " + std::to_string(rank) + " is not in [0, " +
                std::to_string(size) + ")");
  const std::size_t blocks = (n + kBlockRows - 1) / kBlockRows;
  const auto r = static_cast<std::size_t>(rank), p = static_cast<std::size_t>(size);
  const std::size_t b0 = blocks * r / p, b1 = blocks * (r + 1) / p;
  Shard s;
  s.offset = std::min(n, b0 * kBlockRows);
  s.rows = std::min(n, b1 * kBlockRows) - s.offset;
  return s;
}

void agree(MPI_Comm comm, const std::function<void()>& fn) {
  std::string msg;
  bool failed = false;
  try {
    fn();
  } catch (const std::exception& e) {
    failed = true;
    msg = e.what();
  } catch (...) {
    failed = true;
    msg = "unknown error";
  }
  const Comm c(comm);
  int mine = failed ? c.rank : c.size, first = c.size;
  MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, comm);
  if (first == c.size) return;
  int len = c.rank == first ? static_cast<int>(msg.size()) : 0;
  MPI_Bcast(&len, 1, MPI_INT, first, comm);
  msg.resize(static_cast<std::size_t>(len));
  MPI_Bcast(msg.data(), len, MPI_CHAR, first, comm);
  throw Error("rank " + std::to_string(first) + ": " + msg);
}

namespace {

using Clock = std::chrono::steady_clock;

/// Init::Random over the shards, with init_random's bits: its generator (one uniform per global
/// row from SplitMix64(seed), whose state after m draws is seed + m * its increment, so each
/// rank starts at its first row), its keys log(1 - u) / w, every rank's k largest merged with
/// its order. O(n_r + P k) per rank instead of a key per global row. `w`: this rank's weights
/// in the engine's units, or null. Returns the centroids in the engine's units.
template <class T>
std::vector<T> distributed_random(const Comm& c, const detail::Layout& l, const T* w, int k,
                                  std::uint64_t seed, kmeans::detail::DataOps<T>& ops) {
  const std::int64_t n_r = l.rows(c.rank), off = l.offset[c.rank];
  kmeans::detail::SplitMix64 rng(seed + static_cast<std::uint64_t>(off) * 0x9E3779B97F4A7C15ull);
  std::vector<std::pair<double, std::int64_t>> keys;
  keys.reserve(static_cast<std::size_t>(n_r));
  for (std::int64_t i = 0; i < n_r; ++i) {
    const double u = rng.uniform();
    const double wi = w ? static_cast<double>(w[i]) : 1.0;
    if (wi > 0) keys.emplace_back(std::log1p(-u) / wi, off + i);
  }
  std::int64_t positive = static_cast<std::int64_t>(keys.size());
  MPI_Allreduce(MPI_IN_PLACE, &positive, 1, MPI_INT64_T, MPI_SUM, c.comm);
  if (positive < k)
    throw Error("init: only " + std::to_string(positive) +
                " points have a positive weight, fewer than k = " + std::to_string(k));
  auto by_key = [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  };
  const std::size_t mine = std::min(keys.size(), static_cast<std::size_t>(k));
  std::partial_sort(keys.begin(), keys.begin() + static_cast<std::ptrdiff_t>(mine), keys.end(),
                    by_key);
  std::vector<double> packed;  // (key, index): indices below 2^53 are exact in double
  for (std::size_t j = 0; j < mine; ++j) {
    packed.push_back(keys[j].first);
    packed.push_back(static_cast<double>(keys[j].second));
  }
  const std::vector<double> all =
      detail::allgatherv(c, packed.data(), static_cast<std::int64_t>(packed.size()), "init keys");
  std::vector<std::pair<double, std::int64_t>> merged;
  for (std::size_t j = 0; j + 1 < all.size(); j += 2)
    merged.emplace_back(all[j], static_cast<std::int64_t>(all[j + 1]));
  std::partial_sort(merged.begin(), merged.begin() + k, merged.end(), by_key);
  std::vector<std::int64_t> idx(static_cast<std::size_t>(k));
  for (int j = 0; j < k; ++j) idx[static_cast<std::size_t>(j)] = merged[static_cast<std::size_t>(j)].second;
  std::vector<T> centroids(static_cast<std::size_t>(k) * static_cast<std::size_t>(l.d));
  ops.rows(idx.data(), k, centroids.data());
  return centroids;
}

template <class T>
Result<T> run(MPI_Comm comm, const T* x, std::size_t local_n, std::size_t d_in,
              const Params<T>& params, CommStats* stats) {
  int initialised = 0, finalised = 0;
  MPI_Initialized(&initialised);
  MPI_Finalized(&finalised);
  if (!initialised || finalised) throw Error("kmeans::mpi::fit: MPI is not initialised (call MPI_Init first)");
  const auto t_setup = Clock::now();
  const Comm c(comm);
  const Params<T> p = params;  // a copy, as kmeans::fit (the callback may change the caller's)
  if (stats) {
    const bool wait = stats->measure_wait;
    const Combine combine = stats->combine;
    *stats = CommStats{};
    stats->measure_wait = wait;
    stats->combine = combine;
  }

  // Shapes: every rank's (n, d) first, so that every later check runs on every rank.
  std::int64_t mine[2] = {static_cast<std::int64_t>(local_n), static_cast<std::int64_t>(d_in)};
  std::vector<std::int64_t> shapes(2 * static_cast<std::size_t>(c.size));
  MPI_Allgather(mine, 2, MPI_INT64_T, shapes.data(), 2, MPI_INT64_T, comm);
  detail::Layout layout;
  layout.offset.assign(static_cast<std::size_t>(c.size) + 1, 0);
  for (int r = 0; r < c.size; ++r) layout.offset[r + 1] = layout.offset[r] + shapes[2 * r];
  layout.d = shapes[1];
  const std::int64_t n = layout.n(), d = layout.d;
  const bool weighted_here = p.sample_weight.size() > 0;
  int weighted_int = weighted_here ? 1 : 0;
  MPI_Allreduce(MPI_IN_PLACE, &weighted_int, 1, MPI_INT, MPI_MAX, comm);
  const bool weighted = weighted_int != 0;

  // Phase 1: each rank checks its own inputs.
  double max_abs = 0, init_max_abs = 0;
  kmeans::detail::WeightStats ws;
  kmeans::detail::SphereData<T> unit_data;  // Metric::Cosine: this rank's rows on the sphere
  agree(comm, [&] {
    if (static_cast<std::int64_t>(d_in) != d)
      throw Error("d = " + std::to_string(d_in) + " differs from rank 0's d = " + std::to_string(d));
    if (d < 1) throw Error("d = 0: the data must have at least one feature");
    if (n < 1) throw Error("the ranks hold n = 0 rows in all");
    if (local_n > 0 && x == nullptr) throw Error("local data is a null pointer with local_n = " + std::to_string(local_n));
    const std::int64_t after = n - layout.offset[c.rank + 1];
    if (local_n % kBlockRows != 0 && after > 0)
      throw Error("local_n = " + std::to_string(local_n) + " is not a multiple of " +
                  std::to_string(kBlockRows) +
                  " rows, and later ranks hold rows: every shard but the last must be whole "
                  "blocks (kmeans::mpi::shard_rows gives such a partition)");
    if (p.backend == Backend::Reference)
      throw Error(std::string("backend = ") + to_string(p.backend) +
                  ": kmeans::mpi runs the CPU or the CUDA engine on every rank (use Backend::Auto, "
                  "Cpu or Cuda)");
    if (local_n > 0 && kmeans::detail::is_device_pointer(x))
      throw Error("local data is in GPU memory: kmeans::mpi::fit takes host data (each rank's "
                  "engine copies its rows to its GPU)");
    if (p.batch_size > 0)
      throw Error("batch_size = " + std::to_string(p.batch_size) +
                  ": mini-batch k-means is not supported by kmeans::mpi (Lloyd only)");
    kmeans::detail::validate_params(p, static_cast<std::size_t>(n));
    if (p.device_centroids_out || p.device_labels_out)
      throw Error("device_centroids_out / device_labels_out are given, but kmeans::mpi::fit "
                  "returns its results in host memory (device outputs: kmeans::fit, KMeans::fit)");
    if ((p.init == Init::KMeansPlusPlus || p.init == Init::KMeansParallel) &&
        static_cast<double>(n) * d * sizeof(T) > static_cast<double>(kGatherInitLimitBytes))
      throw Error(std::string("init = ") + (p.init == Init::KMeansPlusPlus ? "k-means++" : "k-means||") +
                  " gathers the data to every rank, but n x d = " + std::to_string(n) + " x " +
                  std::to_string(d) + " exceeds kmeans::mpi::kGatherInitLimitBytes (" +
                  std::to_string(kGatherInitLimitBytes) + " bytes): use Init::Random or Init::Array");
    if (c.rank == 0 && p.init == Init::Array) {
      init_max_abs = kmeans::detail::validate_init_centroids(p, static_cast<std::size_t>(d));
      if (p.metric == Metric::Cosine) {  // zero rows are an error here, before any work
        std::vector<T> unit(p.init_centroids.size());
        kmeans::detail::normalise_rows(p.init_centroids.data(), p.k, d, unit.data(),
                                       "init_centroids", p.n_threads);
        init_max_abs = std::min(init_max_abs, 1.0);
      }
    }
    if (local_n > 0 && p.metric == Metric::Cosine) {  // run_fit's normalisation, per row
      try {
        x = kmeans::detail::to_sphere(x, static_cast<std::int64_t>(local_n), d, "data",
                                      p.n_threads, unit_data);
      } catch (const Error& e) {
        throw Error(std::string(e.what()) + " (the row of this rank's rows; they start at global row " +
                    std::to_string(layout.offset[c.rank]) + ")");
      }
    }
    if (local_n > 0) {
      try {
        max_abs = kmeans::detail::validate_points(x, static_cast<std::int64_t>(local_n), d,
                                                  "data", p.n_threads);
      } catch (const Error&) {  // the same message with the global row
        const double bound = max_abs_value<T>(static_cast<std::size_t>(d));
        std::int64_t i = 0;
        while (std::fabs(static_cast<double>(x[i])) <= bound) ++i;
        throw Error(kmeans::detail::point_error("data", static_cast<double>(x[i]),
                                                layout.offset[c.rank] + i / d, i % d, d,
                                                sizeof(T) == sizeof(float)));
      }
    }
    if (weighted) {
      if (!weighted_here && local_n > 0)
        throw Error("sample_weight is missing here but given on other ranks");
      kmeans::detail::check_weights_view(p.sample_weight, local_n);
      const T* w = p.sample_weight.data();
      kmeans::detail::validate_finite(w, static_cast<std::int64_t>(local_n), 1, "sample_weight",
                                      p.n_threads);
      for (std::size_t i = 0; i < local_n; ++i) {
        if (w[i] < 0)
          throw Error("sample_weight[" + std::to_string(i) + "] (global row " +
                      std::to_string(layout.offset[c.rank] + static_cast<std::int64_t>(i)) +
                      ") = " + std::to_string(static_cast<double>(w[i])) + " is negative");
        ws.total += w[i];
        ws.max = std::max(ws.max, static_cast<double>(w[i]));
      }
    }
  });

  // Phase 2: the global units (the single-process rules on the global maxima).
  double maxima[3] = {max_abs, init_max_abs, ws.max};
  MPI_Allreduce(MPI_IN_PLACE, maxima, 3, MPI_DOUBLE, MPI_MAX, comm);
  std::vector<double> totals(static_cast<std::size_t>(c.size));
  MPI_Allgather(&ws.total, 1, MPI_DOUBLE, totals.data(), 1, MPI_DOUBLE, comm);
  kmeans::detail::WeightStats global_ws;
  global_ws.max = maxima[2];
  for (double t : totals) global_ws.total += t;  // rank order (the threshold test only)
  kmeans::detail::Units<T> u;
  std::vector<T> init_c;
  agree(comm, [&] {
    if (weighted && !(global_ws.max > 0))
      throw Error("sample_weight sums to 0: at least one weight must be positive");
    if (weighted && !(global_ws.total <= std::numeric_limits<double>::max()))
      throw Error("sample_weight sums to more than the largest double: scale the weights down");
    u.data_exp = kmeans::detail::data_scale_exponent<T>(std::max(maxima[0], maxima[1]));
    if (weighted) u.weight_exp = kmeans::detail::weight_scale_exponent<T>(global_ws);
  });
  const T* data = x;
  if (u.data_exp != 0) {
    u.points.assign(x, x + local_n * static_cast<std::size_t>(d));
    for (T& v : u.points) v = std::ldexp(v, u.data_exp);
    data = u.points.data();
  }
  const T* w = weighted && local_n > 0 ? p.sample_weight.data() : nullptr;
  if (w && u.weight_exp != 0) {
    u.weights.resize(local_n);
    for (std::size_t i = 0; i < local_n; ++i) u.weights[i] = std::ldexp(w[i], -u.weight_exp);
    w = u.weights.data();
  }
  // Init::Array: rank 0's centroids on every rank.
  Params<T> pr = p;
  if (p.init == Init::Array) {
    init_c.resize(static_cast<std::size_t>(p.k) * static_cast<std::size_t>(d));
    if (c.rank == 0) std::copy(p.init_centroids.data(), p.init_centroids.data() + init_c.size(), init_c.begin());
    MPI_Bcast(init_c.data(), detail::count_of(static_cast<std::int64_t>(init_c.size()), "init_centroids"),
              detail::type_of<T>(), 0, comm);
    if (p.metric == Metric::Cosine) {  // run_fit's normalisation (checked on rank 0 above)
      std::vector<T> unit(init_c.size());
      kmeans::detail::normalise_rows(init_c.data(), p.k, d, unit.data(), "init_centroids",
                                     p.n_threads);
      init_c = std::move(unit);
    }
    pr.init_centroids = ArrayView<T>(init_c.data(), init_c.size());
  }
  pr.sample_weight = ArrayView<T>();

  // The engine on every rank: CPU, or CUDA (Auto: when every rank has a usable GPU), combining
  // over MPI on the host or over NCCL on the GPUs.
  const detail::GpuPlan gpu =
      detail::plan_gpus(c, p.backend, stats ? stats->combine : Combine::Auto,
                        static_cast<std::int64_t>(local_n), d, p.k, sizeof(T));
  detail::Distributed<T> dist =
      detail::make_distributed(c, layout, data, w, weighted, p.n_threads, gpu, p.k, stats);
  const double setup = std::chrono::duration<double>(Clock::now() - t_setup).count();
  if (stats) stats->setup_seconds = setup;
  std::unique_ptr<kmeans::detail::Engine<T>> held_batch;
  // Past the checks every rank takes the same steps: a kmeans::Error raised in them (from the
  // data, e.g. too few positive weights for init) is raised on every rank alike. Anything else
  // (out of memory on one rank) would leave the others waiting in a collective: end the job.
  Result<T> r;
  try {
    if (p.init != Init::Random) {
      r = kmeans::detail::fit_bound(*dist.engine, *dist.ops, n, d, pr, u, setup, nullptr,
                                    held_batch, nullptr);
    } else {
      // fit_bound's n_init loop with the draws distributed: each run starts from its centroids
      // as Init::Array (in the caller's units, exactly), the lowest inertia kept (the earliest
      // on ties).
      Timings total;
      for (int run = 0; run < p.n_init; ++run) {
        const auto t_init = Clock::now();
        std::vector<T> start = distributed_random(c, layout, w, p.k,
                                                  p.seed + static_cast<std::uint64_t>(run),
                                                  *dist.ops);
        u.to_caller(start);
        Params<T> pa = pr;
        pa.init = Init::Array;
        pa.n_init = 1;
        pa.init_centroids = ArrayView<T>(start.data(), start.size());
        Result<T> one = kmeans::detail::fit_bound(*dist.engine, *dist.ops, n, d, pa, u, 0.0,
                                                  nullptr, held_batch, nullptr);
        one.timings.init += std::chrono::duration<double>(Clock::now() - t_init).count() -
                            one.timings.assign - one.timings.update - one.timings.final_assign;
        total.init += one.timings.init;
        total.assign += one.timings.assign;
        total.update += one.timings.update;
        total.final_assign += one.timings.final_assign;
        if (run == 0 || one.inertia < r.inertia) r = std::move(one);
      }
      r.timings = total;
      r.timings.init += setup;
    }
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kmeans::mpi::fit: rank %d: %s: aborting the job\n", c.rank, e.what());
    MPI_Abort(comm, 1);
    throw;
  }
  // r.labels are this rank's. The empty-cluster warning without the data hint (the data is
  // spread), from every rank's used clusters.
  std::vector<int> used(static_cast<std::size_t>(p.k), 0);
  for (auto l : r.labels) used[static_cast<std::size_t>(l)] = 1;
  MPI_Allreduce(MPI_IN_PLACE, used.data(), p.k, MPI_INT, MPI_MAX, comm);
  const auto distinct = std::count(used.begin(), used.end(), 1);
  if (distinct < p.k)
    r.warnings.push_back("number of distinct clusters (" + std::to_string(distinct) +
                         ") found smaller than k = " + std::to_string(p.k) + ": " +
                         std::to_string(p.k - distinct) +
                         " cluster(s) ended empty in the final assignment");
  return r;
}

}  // namespace

template <class T>
Result<T> fit(MPI_Comm comm, const T* local_data, std::size_t local_n, std::size_t d,
              const Params<T>& p, CommStats* stats) {
  return run<T>(comm, local_data, local_n, d, p, stats);
}

template Result<float> fit<float>(MPI_Comm, const float*, std::size_t, std::size_t,
                                  const Params<float>&, CommStats*);
template Result<double> fit<double>(MPI_Comm, const double*, std::size_t, std::size_t,
                                    const Params<double>&, CommStats*);

}  // namespace kmeans::mpi
