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

  std::printf("%-42s %-6s %11s %12s %10s %7s %15s\n", "row", "device", "s/iter", "vs loop",
              "peer/ours", "n_iter", "final mean SSE");
  std::printf("%-42s %-6s %11s %12s %10s %7s %15s\n", "original study: Python loop (figure)",
              "-", fmt_sci(kStudyLoopSeconds).c_str(), "1.0x *", "-", "-", "-");
  std::printf("%-42s %-6s %11s %12s %10s %7s %15s\n", "original study: NumPy vectorized (figure)",
              "-", fmt_sci(kStudyVectorizedSeconds).c_str(),
              (fmt_fix(kStudyLoopSeconds / kStudyVectorizedSeconds, 1) + "x *").c_str(), "-", "-",
              "-");
  for (const auto& st : {std::make_pair("Python loop", kStudyLoopSeconds),
                         std::make_pair("NumPy vectorized", kStudyVectorizedSeconds)}) {
    Json j = Json::object();
    j.set("mode", "classic").set("kind", "study_figure").set("name", st.first)
        .set("s_per_iter", st.second).set("speedup_vs_study_loop", kStudyLoopSeconds / st.second);
    run.rows.push(j);
  }
  for (const auto& m : ours) {
    const std::string name = "ours: " + backend_label(m.backend);
    Json j = Json::object();
    j.set("mode", "classic").set("kind", "ours").set("backend", kmeans::to_string(m.backend))
        .set("dtype", "float64").set("n", n).set("d", d).set("k", kClassicK)
        .set("iters", kClassicIters);
    if (!m.ok) {
      std::printf("%-42s %-6s  failed: %s\n", name.c_str(),
                  m.backend == Backend::Cuda ? "gpu" : "cpu", m.error.c_str());
      j.set("error", m.error);
      run.rows.push(j);
      continue;
    }
    const double speedup = loop ? loop->s_per_iter / m.s_per_iter : NAN;
    std::printf("%-42s %-6s %11s %12s %10s %7d %15.6f\n", name.c_str(),
                m.backend == Backend::Cuda ? "gpu" : "cpu", fmt_sci(m.s_per_iter).c_str(),
                fmt_ratio(speedup).c_str(), "-", m.n_iter, m.inertia / n);
    std::vector<double> mean_hist;
    for (double s : m.sse_history) mean_hist.push_back(s / n);
    j.set("s_per_iter", m.s_per_iter).set("speedup_vs_reference", speedup)
        .set("n_iter", m.n_iter).set("repeats", m.repeats).set("final_mean_sse", m.inertia / n)
        .set("n_empty_relocated", m.n_empty_relocated)
        .set("mean_sse_history", Json(mean_hist)).set("phases", phases_json(m.phases));
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
    const double speedup = loop ? loop->s_per_iter / p.s_per_iter : NAN;
    std::printf("%-42s %-6s %11s %12s %10s %7d %15.6f\n", name.c_str(),
                p.device == "cuda" ? "gpu" : "cpu", fmt_sci(p.s_per_iter).c_str(),
                fmt_ratio(speedup).c_str(), fmt_ratio(ratio).c_str(), p.n_iter,
                p.final_sse / n);
    std::vector<double> mean_hist;
    for (double s : p.sse_history) mean_hist.push_back(s / n);
    j.set("speedup_vs_reference", speedup).set("ratio_peer_over_ours", ratio)
        .set("final_mean_sse", p.final_sse / n);
    if (!mean_hist.empty()) j.set("mean_sse_history", Json(mean_hist));
    run.rows.push(j);
  }
  std::printf("\n* relative to the original study's own Python loop; both figures are from the "
              "original study, not measured here.\n");
  std::printf("  s/iter: median over repeats after a warm-up of (assign + update time) / n_iter "
              "(ours), timed inside the script (peers).\n");
  std::printf("  peer/ours: the peer's s/iter over ours on the same device (> 1: we are faster). "
              "Fits stop early when labels stop changing.\n");
  print_blas_notes(peers);
  std::string why;
  if (kmeans::cuda_available(&why)) {
    std::printf("GPU: used (the cuda row above; %s)\n", run.gpu.name.c_str());
  } else {
    std::printf("GPU: not used: %s\n", why.c_str());
  }
}

}  // namespace bench
