// SPDX-License-Identifier: Apache-2.0
// bench_scaling: one run of kmeans::mpi::fit under mpirun (bench_kmeans --scaling starts it for
// P = 1, 2, ...): per Lloyd pass the compute, wait (a barrier before the combine) and
// communication seconds (the largest over ranks)
// and the bytes each rank sends and receives, for weak scaling (n per rank fixed) or strong
// scaling (n fixed). One JSON line on rank 0's stdout.
#include <mpi.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "kmeans/kmeans.hpp"
#include "kmeans/mpi.hpp"

namespace {

struct Args {
  std::int64_t n_per_rank = 1 << 20;  ///< weak scaling: rows per rank
  std::int64_t n = 0;                 ///< strong scaling when > 0: rows in all
  std::int64_t d = 8;
  int k = 64;
  int iters = 10;
  int threads = 1;
};

bool starts(const std::string& a, const char* p, std::string* v) {
  const std::string s(p);
  if (a.rfind(s, 0) != 0) return false;
  *v = a.substr(s.size());
  return true;
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string s = argv[i];
    std::string v;
    if (starts(s, "--n-per-rank=", &v)) a.n_per_rank = std::atoll(v.c_str());
    else if (starts(s, "--n=", &v)) a.n = std::atoll(v.c_str());
    else if (starts(s, "--d=", &v)) a.d = std::atoll(v.c_str());
    else if (starts(s, "--k=", &v)) a.k = std::atoi(v.c_str());
    else if (starts(s, "--iters=", &v)) a.iters = std::atoi(v.c_str());
    else if (starts(s, "--threads=", &v)) a.threads = std::atoi(v.c_str());
    else {
      std::fprintf(stderr, "bench_scaling: unknown argument %s (--n-per-rank=N --n=N --d=D "
                           "--k=K --iters=I --threads=T)\n", s.c_str());
      std::exit(2);
    }
  }
  return a;
}

/// This rank's rows of a deterministic data set: blobs around k/2 centres, each global row
/// drawn from its index, so any partition sees the same data.
std::vector<float> rows(std::int64_t first, std::int64_t count, std::int64_t d, int centres) {
  std::vector<float> x(static_cast<std::size_t>(count * d));
  for (std::int64_t i = 0; i < count; ++i) {
    std::uint64_t s = static_cast<std::uint64_t>(first + i) * 0x9E3779B97F4A7C15ull + 12345;
    auto u = [&]() {
      s = s * 6364136223846793005ull + 1442695040888963407ull;
      return static_cast<double>(s >> 11) * 0x1.0p-53;
    };
    const int c = static_cast<int>(u() * centres);
    for (std::int64_t j = 0; j < d; ++j)
      x[static_cast<std::size_t>(i * d + j)] =
          static_cast<float>((c * 7 + j * 3) % 11 + (u() + u() - 1.0));
  }
  return x;
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  const Args a = parse(argc, argv);
  // Weak scaling: whole blocks per rank, so every rank holds n_per_rank rows (rounded up).
  const auto B = static_cast<std::int64_t>(kmeans::mpi::kBlockRows);
  std::int64_t n, first, count;
  if (a.n > 0) {
    n = a.n;
    const auto sh = kmeans::mpi::shard_rows(static_cast<std::size_t>(n), rank, size);
    first = static_cast<std::int64_t>(sh.offset);
    count = static_cast<std::int64_t>(sh.rows);
  } else {
    count = (a.n_per_rank + B - 1) / B * B;
    n = count * size;
    first = count * rank;
  }
  const std::vector<float> x = rows(first, count, a.d, std::max(1, a.k / 2));
  kmeans::Params<float> p;
  p.k = a.k;
  p.init = kmeans::Init::Random;
  p.max_iter = a.iters;
  p.tol = 0;  // a fixed number of passes
  p.n_threads = a.threads;
  p.backend = kmeans::Backend::Cpu;
  kmeans::mpi::CommStats st;
  st.measure_wait = true;  // comm = the combine itself; the wait for slower ranks apart
  MPI_Barrier(MPI_COMM_WORLD);
  const double t0 = MPI_Wtime();
  const auto r = kmeans::mpi::fit(MPI_COMM_WORLD, x.data(), static_cast<std::size_t>(count),
                                  static_cast<std::size_t>(a.d), p, &st);
  const double wall = MPI_Wtime() - t0;
  const double passes = std::max(1, st.passes);
  double mine[7] = {st.compute_seconds / passes, st.comm_seconds / passes,
                    static_cast<double>(st.bytes_sent) / passes,
                    static_cast<double>(st.bytes_received) / passes, st.setup_seconds, wall,
                    st.wait_seconds / passes};
  double mx[7], sum[7];
  MPI_Reduce(mine, mx, 7, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
  MPI_Reduce(mine, sum, 7, MPI_DOUBLE, MPI_SUM, 0, MPI_COMM_WORLD);
  if (rank == 0) {
    std::printf("{\"mode\": \"%s\", \"ranks\": %d, \"n\": %lld, \"n_per_rank\": %lld, \"d\": %lld, "
                "\"k\": %d, \"threads\": %d, \"passes\": %d, \"n_iter\": %d, "
                "\"compute_s_per_pass_max\": %.6g, \"comm_s_per_pass_max\": %.6g, "
                "\"wait_s_per_pass_max\": %.6g, "
                "\"bytes_sent_per_pass_max\": %.0f, \"bytes_received_per_pass_max\": %.0f, "
                "\"bytes_per_pass_mean\": %.0f, \"setup_s_max\": %.6g, \"wall_s\": %.6g, "
                "\"inertia\": %.17g}\n",
                a.n > 0 ? "strong" : "weak", size, static_cast<long long>(n),
                static_cast<long long>(count), static_cast<long long>(a.d), a.k, a.threads,
                st.passes, r.n_iter, mx[0], mx[1], mx[6], mx[2], mx[3], (sum[2] + sum[3]) / size, mx[4],
                mx[5], r.inertia);
  }
  MPI_Finalize();
  return 0;
}
