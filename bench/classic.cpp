// SPDX-License-Identifier: Apache-2.0
// bench_kmeans's default mode: the classic "loop vs vectorized" k-means study (4 blobs in 3-D)
// on every backend, next to the original study's figures and the peers.
#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "measure.hpp"

namespace bench {
namespace {

using kmeans::Backend;

constexpr int kClassicIters = 50;
constexpr int kClassicK = 4;
// The original study's figures (not measured here): its Python loop and its NumPy version.
constexpr double kStudyLoopSeconds = 0.053;
constexpr double kStudyVectorizedSeconds = 0.00073;

/// One line of the table: every cell already formatted, so all rows share one layout.
struct Row {
  std::string name, device, s, min, max, reps, threads, vs_study, vs_loop, peer_over_ours, n_iter,
      mean_sse, blas;
};

void print_row(const Row& r) {
  std::printf("%-42s %-6s %9s %9s %9s %4s %3s %13s %11s %9s %6s %14s  %s\n", r.name.c_str(),
              r.device.c_str(), r.s.c_str(), r.min.c_str(), r.max.c_str(), r.reps.c_str(),
              r.threads.c_str(), r.vs_study.c_str(), r.vs_loop.c_str(), r.peer_over_ours.c_str(),
              r.n_iter.c_str(), r.mean_sse.c_str(), r.blas.c_str());
}

}  // namespace

void run_classic(Run& run) {
  const std::vector<double> x = classic_blobs(kDataSeed);
  const std::int64_t n = static_cast<std::int64_t>(x.size() / 3), d = 3;
  const std::vector<double> init = take_rows(x.data(), d, distinct_rows(n, kClassicK, kInitSeed));
  const bool quick = run.opt.quick;

  std::printf("\nClassic study: 4 Gaussian blobs in 3-D (n = %lld, d = 3), k = %d, at most %d "
              "iterations, tol = 0, float64, %d threads\n",
              static_cast<long long>(n), kClassicK, kClassicIters, run.threads);
  std::printf("Initial centroids: %d data points drawn with seed %llu (the same for every row)\n\n",
              kClassicK, static_cast<unsigned long long>(kInitSeed));

  std::vector<Measured> ours;
  for (Backend b : available_backends(true)) {
    // The reference loop is ~100x slower: a few repeats give a stable median.
    const bool ref = b == Backend::Reference;
    const int reps = ref ? (quick ? 3 : 5) : (quick ? 21 : 101);
    ours.push_back(measure_ours(x.data(), n, d, init, kClassicK, kClassicIters, b, run.threads,
                                reps, quick ? 1.0 : 3.0, true));
  }
  std::vector<PeerResult> peers;
  if (run.peers)
    peers = run_peers_on(run, x.data(), n, d, init, kClassicK, kClassicIters, quick ? 1.0 : 3.0);

  const Measured* loop = nullptr;
  for (const auto& m : ours)
    if (m.ok && m.backend == Backend::Reference) loop = &m;

  const double loop_s = loop ? loop->s_per_iter : NAN;
  print_row({"row", "device", "s/iter", "min", "max", "reps", "thr", "vs study loop",
             "vs our loop", "peer/ours", "n_iter", "final mean SSE", "BLAS"});
  for (const auto& st : {std::make_pair("Python loop", kStudyLoopSeconds),
                         std::make_pair("NumPy vectorized", kStudyVectorizedSeconds)}) {
    const double vs_study = kStudyLoopSeconds / st.second, vs_loop = loop_s / st.second;
    print_row({"original study: " + std::string(st.first) + " (figure)", "-", fmt_sci(st.second),
               "-", "-", "-", "-", fmt_ratio(vs_study), fmt_ratio(vs_loop), "-", "-", "-", "-"});
    Json j = Json::object();
    j.set("mode", "classic").set("kind", "study_figure").set("name", st.first)
        .set("s_per_iter", st.second).set("speedup_vs_study_loop", vs_study)
        .set("speedup_vs_reference", vs_loop);
    run.rows.push(j);
  }
  for (const auto& m : ours) {
    const std::string name = "ours: " + backend_label(m.backend);
    const char* device = m.backend == Backend::Cuda ? "gpu" : "cpu";
    Json j = Json::object();
    j.set("mode", "classic").set("kind", "ours").set("backend", kmeans::to_string(m.backend))
        .set("dtype", "float64").set("n", n).set("d", d).set("k", kClassicK)
        .set("iters", kClassicIters).set("threads", ours_threads(run, m.backend));
    if (!m.ok) {
      std::printf("%-42s %-6s  failed: %s\n", name.c_str(), device, m.error.c_str());
      j.set("error", m.error);
      run.rows.push(j);
      continue;
    }
    const double vs_study = kStudyLoopSeconds / m.s_per_iter, vs_loop = loop_s / m.s_per_iter;
    const int threads = ours_threads(run, m.backend);
    print_row({name, device, fmt_sci(m.s_per_iter), fmt_sci(m.spread.min), fmt_sci(m.spread.max),
               std::to_string(m.spread.repeats), threads > 0 ? std::to_string(threads) : "-",
               fmt_ratio(vs_study), fmt_ratio(vs_loop), "-", std::to_string(m.n_iter),
               fmt_fix(m.inertia / n, 6), "- (own kernels)"});
    std::vector<double> mean_hist;
    for (double s : m.sse_history) mean_hist.push_back(s / n);
    set_spread(j, m.spread, m.runs);
    j.set("s_per_iter", m.s_per_iter).set("speedup_vs_study_loop", vs_study)
        .set("speedup_vs_reference", vs_loop).set("n_iter", m.n_iter)
        .set("final_mean_sse", m.inertia / n).set("n_empty_relocated", m.n_empty_relocated)
        .set("mean_sse_history", Json(mean_hist)).set("phases", phases_json(m.phases))
        .set("setup_cold_s", m.setup_cold_s).set("setup_warm_s", m.setup_warm_s);
    run.rows.push(j);
  }
  for (const auto& p : peers) {
    const std::string name = "peer: " + peer_label(p) + (p.ok ? " " + p.version : "");
    Json j = peer_json(p);
    j.set("mode", "classic").set("kind", "peer").set("n", n).set("d", d).set("k", kClassicK)
        .set("iters", kClassicIters);
    if (!p.ok) {
      std::printf("%-42s %-6s  not run: %s\n", name.c_str(), "-", p.error.c_str());
      run.rows.push(j);
      continue;
    }
    const Measured* mine = ours_for(ours, p.device);
    const double ratio = mine ? p.s_per_iter / mine->s_per_iter : NAN;
    const double vs_study = kStudyLoopSeconds / p.s_per_iter, vs_loop = loop_s / p.s_per_iter;
    const Spread sp = spread_of(p.s_per_iter_runs, p.s_per_iter, p.repeats);
    print_row({name, p.device == "cuda" ? "gpu" : "cpu", fmt_sci(p.s_per_iter), fmt_sci(sp.min),
               fmt_sci(sp.max), sp.repeats > 0 ? std::to_string(sp.repeats) : "-",
               p.threads > 0 ? std::to_string(p.threads) : "-", fmt_ratio(vs_study),
               fmt_ratio(vs_loop), fmt_ratio(ratio), std::to_string(p.n_iter),
               fmt_fix(p.final_sse / n, 6), peer_blas(p)});
    std::vector<double> mean_hist;
    for (double s : p.sse_history) mean_hist.push_back(s / n);
    j.set("speedup_vs_study_loop", vs_study).set("speedup_vs_reference", vs_loop)
        .set("ratio_peer_over_ours", ratio).set("final_mean_sse", p.final_sse / n);
    if (!mean_hist.empty()) j.set("mean_sse_history", Json(mean_hist));
    note_sse_difference(j, p, mine, true, n, "    ");
    run.rows.push(j);
  }
  std::printf("\n  s/iter: median over the repeats (reps) after a warm-up, with the fastest (min) "
              "and slowest (max) repeat;\n"
              "    ours: (assign + update time) / n_iter of a fit, every fit on one reused "
              "KMeans object (engines made once); peers: timed inside peers.py.\n");
  for (const auto& m : ours)
    if (m.ok)
      std::printf("  set-up of ours, %s (bind + init, not in s/iter): first fit %s s (engine "
                  "made), later fits %s s (engine reused)\n",
                  backend_label(m.backend).c_str(), fmt_sci(m.setup_cold_s).c_str(),
                  fmt_sci(m.setup_warm_s).c_str());
  std::printf("  vs study loop: the original study's Python loop (%s s/iter, its own figure from "
              "its machine, not measured here) over the row's s/iter.\n",
              fmt_sci(kStudyLoopSeconds).c_str());
  std::printf("  vs our loop: our reference loop (%s s/iter, on this machine) over the row's "
              "s/iter.\n",
              fmt_sci(loop_s).c_str());
  std::printf("  peer/ours: the peer's s/iter over ours on the same device (> 1: we are faster). "
              "Fits stop early when labels stop changing.\n");
  std::printf("  thr: CPU threads (ours: as given; the reference loop runs one, the cpu backend "
              "one where a pass is too small to share); BLAS: what the peer's process loaded.\n");
  print_blas_notes(peers);
  std::string why;
  if (kmeans::cuda_available(&why)) {
    std::printf("GPU: used (the cuda row above; %s)\n", run.gpu.name.c_str());
  } else {
    std::printf("GPU: not used: %s\n", why.c_str());
  }
}

}  // namespace bench
