// SPDX-License-Identifier: Apache-2.0
// bench_kmeans --case ...,stream=1: host data streamed through the GPU (kmeans::fit over a
// RowSource, Backend::Cuda): time per pass and the host-to-device rate it reaches against the
// measured pinned-copy rate (machine.cpp).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "kmeans/stream.hpp"
#include "measure.hpp"

namespace bench {

template <class T>
void run_stream_case(Run& run, const CaseSpec& c, const std::vector<T>& x,
                     const std::vector<T>& init) {
  const bool f64 = sizeof(T) == 8;
  const double budget = run.opt.budget > 0 ? run.opt.budget : (run.opt.quick ? 1.0 : 10.0);
  const double bytes_per_pass = static_cast<double>(c.n) * c.d * sizeof(T);
  std::printf("\nStreamed through the GPU from host memory (kmeans::fit over a RowSource, "
              "backend cuda): %.2f GB per pass\n",
              bytes_per_pass * 1e-9);
  kmeans::Params<T> p;
  p.k = c.k;
  p.max_iter = c.iters;
  p.tol = 0;
  p.init = kmeans::Init::Array;
  p.init_centroids = init;
  p.backend = kmeans::Backend::Cuda;
  p.n_threads = run.threads;
  Measured m;
  m.backend = kmeans::Backend::Cuda;
  m.iters = c.iters;
  try {
    kmeans::ArraySource<T> src(x.data(), static_cast<std::size_t>(c.n),
                               static_cast<std::size_t>(c.d));
    kmeans::Result<T> last;
    // Every fit makes its engine (pinned staging, device chunks): set-up is timings.init.
    time_fits<T>(m, 3, budget, [&]() -> const kmeans::Result<T>& {
      last = kmeans::fit(src, p);
      if (last.backend != kmeans::Backend::Cuda)
        throw kmeans::Error(std::string("the streamed fit ran on ") +
                            kmeans::to_string(last.backend));
      return last;
    });
    m.ok = true;
  } catch (const kmeans::Error& e) {
    m.error = e.what();
  } catch (const std::bad_alloc&) {
    m.error = "out of host memory";
  }
  Json j = point_json("case", "stream", kmeans::Backend::Cuda, f64, c.n, c.d, c.k);
  j.set("streamed", true).set("pinned_h2d_gbps", run.gpu.h2d_pinned_gbps);
  double rate = 0;
  if (m.ok) {
    // The pass's assign phase moves every chunk host -> device once (the update is on the host).
    const double assign_s = m.phases.assign / std::max(1, m.n_iter);
    rate = assign_s > 0 ? bytes_per_pass / assign_s * 1e-9 : 0;
    j.set("h2d_gbps", rate).set("assign_s_per_pass", assign_s);
    if (run.gpu.h2d_pinned_gbps > 0) j.set("h2d_share", rate / run.gpu.h2d_pinned_gbps);
  }
  print_point_header();
  print_and_record(run, j, m, f64, c.n, c.d, c.k);
  if (m.ok)
    std::printf("  streamed: %s s per pass (assign + update), host-to-device %.1f GB/s = %.0f%% "
                "of the measured pinned copy (%.1f GB/s); set-up (validation pass, buffers) "
                "%.3f s per fit\n",
                fmt_sci(m.s_per_iter).c_str(), rate,
                run.gpu.h2d_pinned_gbps > 0 ? 100 * rate / run.gpu.h2d_pinned_gbps : 0.0,
                run.gpu.h2d_pinned_gbps, m.setup_warm_s);
}

template void run_stream_case<float>(Run&, const CaseSpec&, const std::vector<float>&,
                                     const std::vector<float>&);
template void run_stream_case<double>(Run&, const CaseSpec&, const std::vector<double>&,
                                      const std::vector<double>&);

}  // namespace bench
