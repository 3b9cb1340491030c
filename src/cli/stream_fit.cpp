// SPDX-License-Identifier: Apache-2.0
// `kmeans fit --stream`: the out-of-core fit of a .npy file (kmeans/stream.hpp) under
// --memory-limit, its outputs and its summary with the peak resident memory.
#include "cli/stream_fit.hpp"

#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "cli/fit_json.hpp"
#include "cli/json.hpp"
#include "io/io.hpp"
#include "kmeans/kmeans.hpp"
#include "kmeans/stream.hpp"

namespace kmeans_cli {
namespace {

/// VmHWM of /proc/self/status (the peak resident memory) in bytes, 0 when unknown.
std::size_t peak_resident_bytes() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmHWM:", 0) == 0) return static_cast<std::size_t>(std::stoull(line.substr(6))) * 1024;
  return 0;
}

std::string mib(std::size_t bytes) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / 1048576.0);
  return buf;
}

template <class T>
std::vector<T>& values(kmeans::io::Matrix& m);
template <>
std::vector<float>& values<float>(kmeans::io::Matrix& m) { return m.f32; }
template <>
std::vector<double>& values<double>(kmeans::io::Matrix& m) { return m.f64; }

/// Why Auto's streamed fit ran on the CPU (empty when it ran on the GPU or was not Auto).
std::string auto_reason(kmeans::Backend asked, kmeans::Backend ran) {
  if (asked != kmeans::Backend::Auto || ran == kmeans::Backend::Cuda) return "";
  std::string why;
  if (!kmeans::cuda_available(&why)) return why;
  return "one streamed chunk does not fit in the GPU's free memory (see warnings)";
}

template <class T>
int run(const Options& o, const kmeans::NpyInfo& info, const std::string& why) {
  const std::size_t n = info.rows, d = info.cols;
  const char* dtype = info.float32 ? "float32" : "float64";
  if (o.dtype && (*o.dtype == Dtype::Float32) != info.float32)
    throw kmeans::Error(std::string("--dtype ") + (info.float32 ? "float64" : "float32") +
                        " but " + o.data + " holds " + dtype +
                        " values: a streamed fit reads them as they are (drop --dtype)");
  kmeans::Params<T> p;
  set_fit_options(o, p);
  kmeans::io::Matrix init;
  if (init_is_file(o)) {
    init = kmeans::io::read_matrix(o.init);
    kmeans::io::convert(init, info.float32 ? Dtype::Float32 : Dtype::Float64);
    const std::int64_t k = o.k ? *o.k : init.rows;
    if (init.rows != k || init.cols != static_cast<std::int64_t>(d) ||
        init.rows > std::numeric_limits<int>::max())
      throw kmeans::Error("--init " + o.init + " has shape (" + std::to_string(init.rows) + ", " +
                          std::to_string(init.cols) + "), but k = " + std::to_string(k) +
                          " and d = " + std::to_string(d) + " need (" + std::to_string(k) +
                          ", " + std::to_string(d) + ")");
    p.k = static_cast<int>(init.rows);
    p.init = kmeans::Init::Array;
    p.init_centroids = values<T>(init);
  } else {
    p.k = *o.k;
    p.init = *init_method(o.init);
  }
  kmeans::io::Matrix weights;
  if (!o.sample_weight.empty()) {
    weights = kmeans::io::read_vector(o.sample_weight);
    kmeans::io::convert(weights, info.float32 ? Dtype::Float32 : Dtype::Float64);
    if (weights.rows != static_cast<std::int64_t>(n))
      throw kmeans::Error("--sample-weight " + o.sample_weight + " has " +
                          std::to_string(weights.rows) + " values but " + o.data +
                          " has n = " + std::to_string(n) + " rows");
    p.sample_weight = values<T>(weights);
  }
  if (o.verbose) {
    p.on_iteration = [](const kmeans::IterationInfo& it) {
      std::fprintf(stderr, "kmeans: iteration %d: sse %.17g, center shift %.6g, %.6g s\n",
                   it.iteration + 1, it.sse, it.center_shift, it.seconds);
      return true;
    };
  }
  kmeans::StreamOptions so;
  so.memory_limit = o.memory_limit ? *o.memory_limit : kmeans::default_memory_limit();
  if (!why.empty())
    std::fprintf(stderr, "kmeans: %s: streaming it (as --stream) with --memory-limit %s\n",
                 why.c_str(), mib(so.memory_limit).c_str());
  auto source = kmeans::open_npy<T>(o.data);
  const auto t0 = std::chrono::steady_clock::now();
  kmeans::Result<T> r;
  try {
    r = kmeans::fit(*source, p, so);
  } catch (const kmeans::Error& e) {
    const std::string msg = e.what();
    if (!o.sample_weight.empty() && msg.rfind("sample_weight", 0) == 0)
      throw kmeans::Error("--sample-weight " + o.sample_weight + ": " + msg);
    throw;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const int n_init_ran = p.init == kmeans::Init::Array ? 1 : p.n_init;

  // The labels are written after the fit (the fit holds them for its changed-label counts).
  kmeans::io::StagedWrites out;
  if (!o.centroids_out.empty())
    out.add(o.centroids_out, r.centroids.data(), p.k, static_cast<std::int64_t>(d));
  if (!o.labels_out.empty())
    out.add(o.labels_out, r.labels.data(), static_cast<std::int64_t>(n), 0);
  std::vector<std::int32_t>().swap(r.labels);
  if (!o.model_out.empty())
    out.add_text(o.model_out, kmeans::KMeans<T>::from_result(p, r, d).to_json());
  out.commit();
  const std::size_t peak = peak_resident_bytes();

  if (o.json) {
    Json stream;
    stream.field("memory_limit", static_cast<std::uint64_t>(so.memory_limit))
        .field("peak_rss", static_cast<std::uint64_t>(peak))
        .field("automatic", !why.empty());
    Json timings;
    timings.field("init", r.timings.init)
        .field("assign", r.timings.assign)
        .field("update", r.timings.update)
        .field("final_assign", r.timings.final_assign);
    Json j;
    j.field("command", "fit")
        .field("version", kmeans::version())
        .field("backend", kmeans::to_string(r.backend))
        .null_or("backend_reason", auto_reason(o.backend, r.backend))
        .field("dtype", dtype)
        .field("n", static_cast<std::int64_t>(n))
        .field("d", static_cast<std::int64_t>(d))
        .field("k", p.k)
        .field("metric", kmeans::to_string(p.metric));
    fit_members(j, o, p, r, n_init_ran, seconds, timings).field("stream", stream);
    std::printf("%s\n", j.str().c_str());
  } else {
    std::printf("kmeans fit: n = %zu, d = %zu, k = %d (%s, backend %s, init %s, n_init %d%s%s, "
                "streamed)\n",
                n, d, p.k, dtype, kmeans::to_string(r.backend), init_name(p.init), n_init_ran,
                o.sample_weight.empty() ? "" : ", weighted",
                p.metric == kmeans::Metric::Cosine ? ", metric cosine" : "");
    std::printf("%s after %d iteration%s (max_iter %d)\n",
                r.converged ? "converged" : "stopped without converging", r.n_iter,
                r.n_iter == 1 ? "" : "s", p.max_iter);
    std::printf("inertia %.6g (mean %s distance %.6g), %d empty cluster%s relocated\n",
                r.inertia, p.metric == kmeans::Metric::Cosine ? "cosine" : "squared",
                r.inertia / static_cast<double>(n), r.n_empty_relocated,
                r.n_empty_relocated == 1 ? "" : "s");
    std::printf("fit time %.6g s; peak resident memory %s (--memory-limit %s)\n", seconds,
                mib(peak).c_str(), mib(so.memory_limit).c_str());
    if (!o.centroids_out.empty()) std::printf("centroids written to %s\n", o.centroids_out.c_str());
    if (!o.labels_out.empty()) std::printf("labels written to %s\n", o.labels_out.c_str());
    if (!o.model_out.empty()) std::printf("model written to %s\n", o.model_out.c_str());
    std::fflush(stdout);
    for (const std::string& w : r.warnings) std::fprintf(stderr, "kmeans: warning: %s\n", w.c_str());
  }
  return 0;
}

bool is_npy(const std::string& path) {
  if (path.size() < 4) return false;
  std::string ext = path.substr(path.size() - 4);
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ext == ".npy";
}

}  // namespace

bool use_stream(const Options& o, std::string& why) {
  why.clear();
  if (o.command != "fit") return false;
  if (o.stream) return true;
  if (o.data == kStdin || !is_npy(o.data)) return false;
  kmeans::NpyInfo info;
  try {
    info = kmeans::npy_info(o.data);
  } catch (const kmeans::Error&) {
    return false;  // not a streamable .npy: the in-memory reader says what is wrong with it
  }
  const double bytes = static_cast<double>(info.rows) * static_cast<double>(info.cols) *
                       (info.float32 ? 4.0 : 8.0);
  double threshold = static_cast<double>(kmeans::default_memory_limit());  // half the RAM
  const char* env = std::getenv("KMEANS_STREAM_AUTO_BYTES");  // the threshold, for tests
  if (env && *env) threshold = std::strtod(env, nullptr);
  if (bytes <= threshold) return false;
  why = o.data + " holds " + mib(static_cast<std::size_t>(bytes)) + " of data, more than " +
        (env && *env ? std::string("KMEANS_STREAM_AUTO_BYTES = ") + env
                     : "half the physical memory (" + mib(static_cast<std::size_t>(threshold)) + ")");
  return true;
}

int run_stream_fit(const Options& o, const std::string& why) {
  const kmeans::NpyInfo info = kmeans::npy_info(o.data);
  return info.float32 ? run<float>(o, info, why) : run<double>(o, info, why);
}

}  // namespace kmeans_cli
