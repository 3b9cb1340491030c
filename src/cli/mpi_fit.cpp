// SPDX-License-Identifier: Apache-2.0
// `kmeans fit --mpi`: every rank reads its own row range of DATA (a .npy, by seeking) and of
// --sample-weight, kmeans::mpi::fit runs over all ranks, rank 0 gathers the labels, prints the
// summary or JSON and writes the outputs; errors on any rank become one message from rank 0.
#include "cli/mpi_fit.hpp"

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <new>
#include <string>
#include <vector>

#include "cli/fit_json.hpp"
#include "cli/json.hpp"
#include "io/io.hpp"
#include "kmeans/kmeans.hpp"

#if defined(KMEANS_CLI_MPI)
#include <mpi.h>

#include "kmeans/mpi.hpp"
#endif

namespace kmeans_cli {

#if !defined(KMEANS_CLI_MPI)

int run_fit_mpi(const Options&, int, char**) {
  throw UsageError("--mpi: this kmeans was built without MPI (install MPI, e.g. Debian's "
                   "libopenmpi-dev, and configure with KMEANS_ENABLE_MPI=ON)");
}

#else

namespace {

using kmeans::io::Matrix;

/// MPI_Init when the program has not, MPI_Finalize at the end (also after an error).
struct Session {
  bool mine = false;
  Session(int& argc, char**& argv) {
    int done = 0;
    MPI_Initialized(&done);
    if (!done) {
      MPI_Init(&argc, &argv);
      mine = true;
    }
  }
  ~Session() {
    if (mine) MPI_Finalize();
  }
};

bool is_npy(const std::string& path) {
  return path.size() >= 4 && (path.compare(path.size() - 4, 4, ".npy") == 0 ||
                              path.compare(path.size() - 4, 4, ".NPY") == 0);
}

template <class T>
std::vector<T>& values(Matrix& m);
template <>
std::vector<float>& values<float>(Matrix& m) { return m.f32; }
template <>
std::vector<double>& values<double>(Matrix& m) { return m.f64; }

const char* dtype_name(kmeans::io::Dtype t) {
  return t == kmeans::io::Dtype::Float32 ? "float32" : "float64";
}

struct Inputs {
  std::int64_t n = 0, d = 0;
  kmeans::mpi::Shard shard;
  Matrix data, weights, init;
};

template <class T>
int fit_typed(const Options& o, Inputs& in, int rank, int size) {
  MPI_Comm comm = MPI_COMM_WORLD;
  kmeans::Params<T> p;
  set_fit_options(o, p);
  if (init_is_file(o)) {
    p.k = static_cast<int>(in.init.rows);
    p.init = kmeans::Init::Array;
    p.init_centroids = values<T>(in.init);
  } else {
    p.k = *o.k;
    p.init = *init_method(o.init);
  }
  if (!o.sample_weight.empty()) p.sample_weight = values<T>(in.weights);
  if (o.verbose) {
    const int n_init = p.init == kmeans::Init::Array ? 1 : p.n_init;
    auto run = std::make_shared<int>(0);
    p.on_iteration = [run, n_init, rank](const kmeans::IterationInfo& it) {
      if (rank != 0) return true;  // every rank answers the same
      if (it.iteration == 0) ++*run;
      char prefix[48] = "";
      if (n_init > 1) std::snprintf(prefix, sizeof(prefix), "init %d/%d, ", *run, n_init);
      std::fprintf(stderr, "kmeans: %siteration %d: sse %.17g, center shift %.6g, %.6g s\n",
                   prefix, it.iteration + 1, it.sse, it.center_shift, it.seconds);
      return true;
    };
  }
  kmeans::mpi::CommStats st;
  const auto t0 = std::chrono::steady_clock::now();
  kmeans::Result<T> r =
      kmeans::mpi::fit(comm, values<T>(in.data).data(), in.shard.rows,
                       static_cast<std::size_t>(in.d), p, &st);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  // Every rank's labels on rank 0, in rank order; the traffic's largest per-rank figures.
  const int mine = static_cast<int>(r.labels.size());
  std::vector<int> counts(static_cast<std::size_t>(size)), displs(static_cast<std::size_t>(size));
  MPI_Gather(&mine, 1, MPI_INT, counts.data(), 1, MPI_INT, 0, comm);
  std::vector<std::int32_t> labels(rank == 0 ? static_cast<std::size_t>(in.n) : 0);
  for (int q = 1; q < size; ++q) displs[q] = displs[q - 1] + counts[q - 1];
  MPI_Gatherv(r.labels.data(), mine, MPI_INT32_T, labels.data(), counts.data(), displs.data(),
              MPI_INT32_T, 0, comm);
  double traffic[4] = {st.compute_seconds, st.comm_seconds, static_cast<double>(st.bytes_sent),
                       static_cast<double>(st.bytes_received)};
  MPI_Allreduce(MPI_IN_PLACE, traffic, 4, MPI_DOUBLE, MPI_MAX, comm);

  kmeans::mpi::agree(comm, [&] {
    if (rank != 0) return;
    r.labels = labels;
    kmeans::io::StagedWrites out;
    if (!o.centroids_out.empty()) out.add(o.centroids_out, r.centroids.data(), p.k, in.d);
    if (!o.labels_out.empty()) out.add(o.labels_out, labels.data(), in.n, 0);
    if (!o.model_out.empty())
      out.add_text(o.model_out,
                   kmeans::KMeans<T>::from_result(p, r, static_cast<std::size_t>(in.d)).to_json());
    out.commit();
  });
  if (rank != 0) return 0;
  const int n_init_ran = p.init == kmeans::Init::Array ? 1 : p.n_init;
  if (o.json) {
    Json timings, mpi;
    timings.field("init", r.timings.init)
        .field("assign", r.timings.assign)
        .field("update", r.timings.update)
        .field("final_assign", r.timings.final_assign);
    mpi.field("ranks", size)
        .field("combine", kmeans::mpi::to_string(st.combine_used))
        .field("passes", st.passes)
        .field("max_compute_seconds", traffic[0])
        .field("max_comm_seconds", traffic[1])
        .field("max_bytes_sent", static_cast<std::int64_t>(traffic[2]))
        .field("max_bytes_received", static_cast<std::int64_t>(traffic[3]));
    Json j;
    j.field("command", "fit")
        .field("version", kmeans::version())
        .field("backend", kmeans::to_string(r.backend))
        .field("dtype", dtype_name(in.data.dtype))
        .field("n", in.n)
        .field("d", in.d)
        .field("k", p.k)
        .field("metric", kmeans::to_string(p.metric));
    fit_members(j, o, p, r, n_init_ran, seconds, timings).field("mpi", mpi);
    std::printf("%s\n", j.str().c_str());
    return 0;
  }
  std::printf("kmeans fit: n = %lld, d = %lld, k = %d (%s, backend %s, init %s, n_init %d%s%s)\n",
              static_cast<long long>(in.n), static_cast<long long>(in.d), p.k,
              dtype_name(in.data.dtype), kmeans::to_string(r.backend), init_name(p.init),
              n_init_ran, o.sample_weight.empty() ? "" : ", weighted",
              p.metric == kmeans::Metric::Cosine ? ", metric cosine" : "");
  std::printf("%s after %d iteration%s (max_iter %d)\n",
              r.converged ? "converged" : "stopped without converging", r.n_iter,
              r.n_iter == 1 ? "" : "s", p.max_iter);
  std::printf("inertia %.6g (mean squared distance %.6g), %d empty cluster%s relocated\n",
              r.inertia, r.inertia / static_cast<double>(in.n), r.n_empty_relocated,
              r.n_empty_relocated == 1 ? "" : "s");
  std::printf("mpi: %d rank%s, %s combine, fit time %.6g s (largest per rank: compute %.6g s, "
              "communication %.6g s, %.0f bytes sent)\n",
              size, size == 1 ? "" : "s", kmeans::mpi::to_string(st.combine_used), seconds,
              traffic[0], traffic[1], traffic[2]);
  if (!o.centroids_out.empty()) std::printf("centroids written to %s\n", o.centroids_out.c_str());
  if (!o.labels_out.empty()) std::printf("labels written to %s\n", o.labels_out.c_str());
  if (!o.model_out.empty()) std::printf("model written to %s\n", o.model_out.c_str());
  std::fflush(stdout);
  for (const std::string& w : r.warnings) std::fprintf(stderr, "kmeans: warning: %s\n", w.c_str());
  return 0;
}

int fit_mpi(const Options& o, int rank, int size) {
  MPI_Comm comm = MPI_COMM_WORLD;
  Inputs in;
  kmeans::mpi::agree(comm, [&] {
    if (o.data == kStdin || !is_npy(o.data))
      throw kmeans::Error("--mpi reads DATA as a .npy file, each rank its own rows: " +
                          o.data_name + " is not a .npy path");
    if (o.batch_size > 0)
      throw kmeans::Error("--mpi runs Lloyd's algorithm: --batch-size is not supported");
    if (!o.sample_weight.empty() && !is_npy(o.sample_weight))
      throw kmeans::Error("--mpi reads --sample-weight as a .npy file: " + o.sample_weight +
                          " is not a .npy path");
    if (rank == 0)
      for (const std::string* path : {&o.centroids_out, &o.labels_out, &o.model_out})
        if (!path->empty()) kmeans::io::check_writable(*path);
    kmeans::io::read_npy_rows(o.data, 0, 0, false, &in.n, &in.d);
    if (in.n == 0) throw kmeans::Error(o.data_name + ": has n = 0 rows");
    if (in.d == 0) throw kmeans::Error(o.data_name + ": has d = 0 features");
  });
  in.shard = kmeans::mpi::shard_rows(static_cast<std::size_t>(in.n), rank, size);
  kmeans::mpi::agree(comm, [&] {
    in.data = kmeans::io::read_npy_rows(o.data, static_cast<std::int64_t>(in.shard.offset),
                                        static_cast<std::int64_t>(in.shard.rows));
    if (o.dtype) kmeans::io::convert(in.data, *o.dtype);
    if (!o.sample_weight.empty()) {
      std::int64_t wn = 0;
      in.weights = kmeans::io::read_npy_rows(o.sample_weight, 0, 0, true, &wn);
      if (wn != in.n)
        throw kmeans::Error("--sample-weight " + o.sample_weight + " has " + std::to_string(wn) +
                            " values but " + o.data_name + " has n = " + std::to_string(in.n) +
                            " rows");
      in.weights = kmeans::io::read_npy_rows(o.sample_weight,
                                             static_cast<std::int64_t>(in.shard.offset),
                                             static_cast<std::int64_t>(in.shard.rows), true);
      kmeans::io::convert(in.weights, in.data.dtype);
    }
    if (init_is_file(o)) {
      in.init = kmeans::io::read_matrix(o.init);
      kmeans::io::convert(in.init, in.data.dtype);
      const std::int64_t k = o.k ? *o.k : in.init.rows;
      if (in.init.rows != k || in.init.cols != in.d)
        throw kmeans::Error("--init " + o.init + " has shape (" + std::to_string(in.init.rows) +
                            ", " + std::to_string(in.init.cols) + "), but k = " +
                            std::to_string(k) + " and d = " + std::to_string(in.d) + " need (" +
                            std::to_string(k) + ", " + std::to_string(in.d) + ")");
    }
  });
  return in.data.dtype == kmeans::io::Dtype::Float32 ? fit_typed<float>(o, in, rank, size)
                                                     : fit_typed<double>(o, in, rank, size);
}

}  // namespace

int run_fit_mpi(const Options& o, int argc, char** argv) {
  Session session(argc, argv);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  std::string error;
  try {
    return fit_mpi(o, rank, size);
  } catch (const std::bad_alloc&) {
    error = "out of memory";
  } catch (const std::exception& e) {
    error = e.what();  // every rank holds the same message (agree)
  }
  // Rank 0 prints the one line (as main's report does) before any rank ends: mpirun ends the
  // job when a rank exits with an error, which could cut rank 0's line short. So the other
  // ranks wait for it and exit 0; rank 0's exit code 1 is mpirun's.
  if (rank == 0) {
    for (char& ch : error)
      if (static_cast<unsigned char>(ch) < 0x20) ch = ' ';
    std::fflush(stdout);
    std::fprintf(stderr, "kmeans: error: %s\n", error.c_str());
    std::fflush(stderr);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  return rank == 0 ? 1 : 0;
}

#endif

}  // namespace kmeans_cli
