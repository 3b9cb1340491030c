// SPDX-License-Identifier: Apache-2.0
// bench_kmeans --scaling: runs bench_scaling (scaling.cpp) under mpiexec for P = 1 .. max ranks
// and prints, per P, a Lloyd pass's compute and communication time (largest over ranks) and the
// bytes per rank per pass, with each run's JSON line.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace bench {

namespace {

/// The number after "key": in a JSON line, or -1.
double number_of(const std::string& line, const std::string& key) {
  const std::string k = "\"" + key + "\": ";
  const auto at = line.find(k);
  return at == std::string::npos ? -1 : std::atof(line.c_str() + at + k.size());
}

}  // namespace

int run_scaling(int argc, char** argv) {
#if !defined(KMEANS_BENCH_SCALING_EXE)
  (void)argc;
  (void)argv;
  std::fprintf(stderr, "bench_kmeans: error: --scaling needs kmeans::mpi: this build has no MPI "
                       "(install e.g. libopenmpi-dev openmpi-bin and reconfigure)\n");
  return 2;
#else
  int max_ranks = 4;
  std::string args;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--scaling") continue;
    if (a.rfind("--max-ranks=", 0) == 0) {
      max_ranks = std::atoi(a.c_str() + 12);
      if (max_ranks < 1 || max_ranks > 4096) {
        std::fprintf(stderr, "bench_kmeans: error: --max-ranks=%s must be in [1, 4096]\n", a.c_str() + 12);
        return 2;
      }
      continue;
    }
    if (a == "-h" || a == "--help") {
      std::printf("usage: bench_kmeans --scaling [--max-ranks=P] [--n-per-rank=N | --n=N] [--d=D]\n"
                  "                    [--k=K] [--iters=I] [--threads=T]\n"
                  "kmeans::mpi::fit under %s for 1 .. P ranks (default 4): weak scaling with N rows\n"
                  "per rank (default 2^20), or strong scaling over N rows in all with --n; d = 8,\n"
                  "k = 64, float32, Init::Random, I = 10 iterations, T = 1 thread per rank.\n",
                  KMEANS_BENCH_MPIEXEC);
      return 0;
    }
    if (a.find_first_of("'\"\\ ;|&$`") != std::string::npos) {
      std::fprintf(stderr, "bench_kmeans: error: unexpected characters in '%s'\n", a.c_str());
      return 2;
    }
    args += " " + a;
  }
  std::printf("kmeans::mpi scaling (%s; ranks share this machine's cores: beyond them the ranks "
              "are oversubscribed)\n", KMEANS_BENCH_MPIEXEC);
  std::printf("%5s %12s %12s %16s %13s %13s %12s %12s %9s\n", "ranks", "n", "n/rank",
              "compute ms/pass", "wait ms/pass", "comm ms/pass", "sent B/pass", "recv B/pass",
              "wall s");
  std::vector<std::string> lines;
  for (int p = 1; p <= max_ranks; ++p) {
    const std::string cmd = std::string(KMEANS_BENCH_MPIEXEC) + " " KMEANS_BENCH_MPIEXEC_FLAGS
                            " -np " + std::to_string(p) + " '" KMEANS_BENCH_SCALING_EXE "'" + args;
    FILE* f = popen(cmd.c_str(), "r");
    if (!f) {
      std::fprintf(stderr, "bench_kmeans: error: cannot run %s\n", cmd.c_str());
      return 1;
    }
    std::string out;
    char buf[4096];
    while (std::fgets(buf, sizeof buf, f)) out += buf;
    const int rc = pclose(f);
    const auto brace = out.find('{');
    if (rc != 0 || brace == std::string::npos) {
      std::fprintf(stderr, "bench_kmeans: error: %s failed (status %d): %s\n", cmd.c_str(), rc,
                   out.c_str());
      return 1;
    }
    const std::string line = out.substr(brace, out.find('\n', brace) - brace);
    lines.push_back(line);
    std::printf("%5d %12.0f %12.0f %16.4f %13.4f %13.4f %12.0f %12.0f %9.3f\n", p,
                number_of(line, "n"), number_of(line, "n_per_rank"),
                1e3 * number_of(line, "compute_s_per_pass_max"),
                1e3 * number_of(line, "wait_s_per_pass_max"),
                1e3 * number_of(line, "comm_s_per_pass_max"),
                number_of(line, "bytes_sent_per_pass_max"),
                number_of(line, "bytes_received_per_pass_max"), number_of(line, "wall_s"));
    std::fflush(stdout);
  }
  for (const auto& l : lines) std::printf("%s\n", l.c_str());
  return 0;
#endif
}

}  // namespace bench
