// SPDX-License-Identifier: Apache-2.0
// GPU tests of the CUDA GEMM path's one-pass argmin (ctest label gpu): labels exactly those of
// the direct formula (the tile kernel's arithmetic, computed here on the host), distances and
// SSE to match, in one chunk and in many (the two product buffers on two streams, direct and
// replayed from a captured graph), float and double. Each test skips without a usable device.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "engine.hpp"
#include "kernels/tuning.cuh"
#include "cuda_skip.hpp"
#include "direct_formula.hpp"
#include "kmeans/kmeans.hpp"

namespace kmeans {
namespace {

using detail::DataView;
using detail::StepStats;
using kmeans_test::direct_distance;

/// Blobs (spread 0.3 around 8 centres in [-10, 10]^d, shifted by `offset`) or 5 distinct points
/// repeated (duplicates: ties everywhere), and k centroids: data points plus noise 0.05, with
/// centroid 1 a copy of centroid 0 (an exact tie) when k > 1.
template <class T>
void make_case(std::int64_t n, std::int64_t d, int k, double offset, bool duplicates,
               std::uint32_t seed, std::vector<T>& x, std::vector<T>& c) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<double> u(-1, 1);
  std::normal_distribution<double> g(0, 1);
  const int centres = duplicates ? 5 : 8;
  std::vector<double> ctr(static_cast<std::size_t>(centres * d));
  for (auto& v : ctr) v = 10 * u(gen);
  x.resize(static_cast<std::size_t>(n * d));
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < d; ++j)
      x[i * d + j] = static_cast<T>(offset + ctr[(i % centres) * d + j] +
                                    (duplicates ? 0.0 : 0.3 * g(gen)));
  c.resize(static_cast<std::size_t>(k) * d);
  std::uniform_int_distribution<std::int64_t> pick(0, n - 1);
  for (int j = 0; j < k; ++j) {
    const std::int64_t p = pick(gen);
    for (std::int64_t f = 0; f < d; ++f)
      c[j * d + f] = static_cast<T>(static_cast<double>(x[p * d + f]) + 0.05 * g(gen));
  }
  if (k > 1) std::copy(c.begin(), c.begin() + d, c.begin() + d);
}

/// The direct formula's labels (strict argmin from label 0: ties to the lowest index) and
/// distances.
template <class T>
void direct_labels(const std::vector<T>& x, const std::vector<T>& c, std::int64_t n,
                   std::int64_t d, int k, std::vector<std::int32_t>& labels, std::vector<T>& dist) {
  labels.assign(static_cast<std::size_t>(n), 0);
  dist.assign(static_cast<std::size_t>(n), 0);
  for (std::int64_t i = 0; i < n; ++i) {
    T best = std::numeric_limits<T>::infinity();
    int label = 0;
    for (int j = 0; j < k; ++j) {
      const T v = direct_distance(x.data() + i * d, c.data() + j * d, d);
      if (v < best) {
        best = v;
        label = j;
      }
    }
    labels[i] = label;
    dist[i] = best;
  }
}

/// Restores the GEMM chunk size rule when a test ends, however it ends.
struct ChunkRows {
  explicit ChunkRows(std::int64_t rows) { detail::set_cuda_gemm_chunk_rows_for_testing(rows); }
  ~ChunkRows() { detail::set_cuda_gemm_chunk_rows_for_testing(0); }
  ChunkRows(const ChunkRows&) = delete;
  ChunkRows& operator=(const ChunkRows&) = delete;
};

/// Three passes (the first runs directly, the second captures the graph, the third replays it)
/// with chunks of `chunk_rows` rows (0: the size rule): every label is the direct formula's,
/// the SSE is the sum of the direct distances (in another order: within 1e-12), the weights
/// count the labels, and the passes agree bit for bit. Returns the first pass's SSE.
template <class T>
double check_gemm_pass(std::int64_t n, std::int64_t d, int k, double offset, bool duplicates,
                       std::int64_t chunk_rows, bool weighted) {
  SCOPED_TRACE("n=" + std::to_string(n) + " d=" + std::to_string(d) + " k=" + std::to_string(k) +
               " offset=" + std::to_string(offset) + (duplicates ? " duplicates" : "") +
               " chunk_rows=" + std::to_string(chunk_rows) + " elem=" + std::to_string(sizeof(T)) +
               (weighted ? " weighted" : ""));
  EXPECT_TRUE(detail::tuning::use_gemm(k, d, sizeof(T)));  // the path under test
  std::vector<T> x, c;
  make_case(n, d, k, offset, duplicates, 101 + static_cast<std::uint32_t>(d + k), x, c);
  std::vector<T> w;
  if (weighted) {
    w.resize(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) w[i] = static_cast<T>(0.5 + (i % 7));
  }
  std::vector<std::int32_t> want;
  std::vector<T> want_dist;
  direct_labels(x, c, n, d, k, want, want_dist);
  double want_sse = 0;
  for (std::int64_t i = 0; i < n; ++i)
    want_sse += (weighted ? static_cast<double>(w[i]) : 1.0) * static_cast<double>(want_dist[i]);

  const ChunkRows chunks(chunk_rows);
  const DataView<T> view{x.data(), weighted ? w.data() : nullptr, n, d, 0};
  auto cuda = detail::make_cuda_engine(view);
  std::vector<double> sums(static_cast<std::size_t>(k) * d), weights(static_cast<std::size_t>(k));
  StepStats first;
  for (int pass = 0; pass < 3; ++pass) {
    const StepStats s = cuda->assign(c.data(), k, sums.data(), weights.data());
    std::vector<std::int32_t> labels(static_cast<std::size_t>(n));
    cuda->labels(labels.data());
    std::int64_t wrong = 0;
    for (std::int64_t i = 0; i < n; ++i) {
      if (labels[i] != want[i] && wrong++ < 5)
        ADD_FAILURE() << "pass " << pass << " point " << i << ": label " << labels[i]
                      << ", the direct formula's " << want[i];
    }
    EXPECT_EQ(wrong, 0) << "pass " << pass;
    if (pass == 0) {
      first = s;
      EXPECT_EQ(s.n_changed, n);
      EXPECT_NEAR(s.sse, want_sse, 1e-12 * want_sse + 1e-300);
      double total = 0;
      for (double v : weights) total += v;
      double want_total = 0;
      for (std::int64_t i = 0; i < n; ++i) want_total += weighted ? static_cast<double>(w[i]) : 1.0;
      EXPECT_NEAR(total, want_total, 1e-12 * want_total);
    } else {
      EXPECT_EQ(s.n_changed, 0) << "pass " << pass;
      EXPECT_EQ(s.sse, first.sse) << "pass " << pass << ": not the same bits";
    }
  }
  return first.sse;
}

class CudaGemmArgmin : public ::testing::Test {
 protected:
  void SetUp() override { KMEANS_SKIP_WITHOUT_GPU(); }
};

TEST_F(CudaGemmArgmin, LabelsAreTheDirectFormulasFloat) {
  check_gemm_pass<float>(5003, 32, 128, 0, false, 0, false);     // n not a multiple of a block
  check_gemm_pass<float>(3001, 64, 257, 0, false, 0, true);      // k not a multiple of 4
  check_gemm_pass<float>(4000, 32, 128, 1e4, false, 0, false);   // far from the origin
  check_gemm_pass<float>(3000, 32, 1000, 1e4, false, 0, false);  // ~k/8 candidates: overflow
  check_gemm_pass<float>(2500, 40, 200, 0, true, 0, false);      // duplicates: ties
  check_gemm_pass<float>(2000, 600, 5, 0, false, 0, false);      // d too large for the tile kernel
  check_gemm_pass<float>(1000, 1000, 1, 0, false, 0, false);     // k = 1
  check_gemm_pass<float>(300, 40, 300, 0, false, 0, false);      // k = n
  check_gemm_pass<float>(4096, 256, 2000, 0, false, 0, false);   // FAISS's d, many steps per row
}

TEST_F(CudaGemmArgmin, LabelsAreTheDirectFormulasDouble) {
  check_gemm_pass<double>(5003, 40, 150, 0, false, 0, false);
  check_gemm_pass<double>(4000, 40, 150, 1e4, false, 0, true);
  check_gemm_pass<double>(2500, 40, 200, 0, true, 0, false);
  check_gemm_pass<double>(1500, 1000, 3, 0, false, 0, false);
}

TEST_F(CudaGemmArgmin, ManyChunksThroughTwoBuffersMatchOneChunk) {
  // 16 rows (one argmin block) per chunk: 313 chunks alternating between the two product
  // buffers; 48 rows: an odd count (105). Same labels and the same SSE bits as one chunk, as
  // the per-block partials do not depend on the chunking. The far float case overflows its
  // candidate lists (host emulation: ~k/8 candidates per row), so rows are rescanned.
  for (const std::int64_t rows : {16, 48}) {
    const double one_far = check_gemm_pass<float>(3000, 32, 1000, 1e4, false, 0, false);
    const double many_far = check_gemm_pass<float>(3000, 32, 1000, 1e4, false, rows, false);
    EXPECT_EQ(one_far, many_far) << rows << " rows per chunk";
    const double one = check_gemm_pass<float>(5003, 32, 128, 0, false, 0, true);
    const double many = check_gemm_pass<float>(5003, 32, 128, 0, false, rows, true);
    EXPECT_EQ(one, many) << rows << " rows per chunk";
    const double one_d = check_gemm_pass<double>(5003, 40, 150, 1e4, false, 0, false);
    const double many_d = check_gemm_pass<double>(5003, 40, 150, 1e4, false, rows, false);
    EXPECT_EQ(one_d, many_d) << rows << " rows per chunk";
  }
}

TEST_F(CudaGemmArgmin, FloatDistanceTiesFollowTheDirectFormula) {
  // Points (+-1000, 0, ...) (mean 0), centroid 1 = (1e-5, 0, ...) exactly nearer than centroid
  // 0 = (0, 1e-5, 0, ...) by 2e-2 (far beyond the products' bound), yet both float distances
  // are 1e6: the direct formula's label is 0 (tests/test_cuda_gemm_host.cu,
  // TheDirectDistancesOwnRoundingIsCovered). The other centroids are far away.
  const std::int64_t n = 256, d = 32;
  const int k = 128;
  std::vector<float> x(static_cast<std::size_t>(n * d), 0.0f), c(static_cast<std::size_t>(k * d), 0.0f);
  for (std::int64_t i = 0; i < n; ++i) x[i * d] = i % 2 ? -1000.0f : 1000.0f;
  c[1] = 1e-5f;
  c[d] = 1e-5f;
  for (int j = 2; j < k; ++j) c[j * d + 2] = 5000.0f + static_cast<float>(j);
  std::vector<std::int32_t> want;
  std::vector<float> want_dist;
  direct_labels(x, c, n, d, k, want, want_dist);
  ASSERT_EQ(want[0], 0);
  const DataView<float> view{x.data(), nullptr, n, d, 0};
  auto cuda = detail::make_cuda_engine(view);
  std::vector<double> sums(static_cast<std::size_t>(k) * d), weights(static_cast<std::size_t>(k));
  cuda->assign(c.data(), k, sums.data(), weights.data());
  std::vector<std::int32_t> labels(static_cast<std::size_t>(n));
  cuda->labels(labels.data());
  EXPECT_EQ(labels, want);
}

TEST_F(CudaGemmArgmin, ChunkedFitMatchesTheReference) {
  // A whole fit with small chunks (double: the reference's labels exactly).
  const ChunkRows chunks(32);
  std::vector<double> x, c;
  const std::int64_t n = 6000, d = 40;
  const int k = 150;
  make_case(n, d, k, 0, false, 7, x, c);
  Params<double> p;
  p.k = k;
  p.init = Init::Array;
  p.init_centroids = c;
  p.max_iter = 20;
  p.backend = Backend::Cuda;
  const Result<double> rc = fit(x.data(), n, d, p);
  p.backend = Backend::Reference;
  const Result<double> rr = fit(x.data(), n, d, p);
  EXPECT_EQ(rc.labels, rr.labels);
  EXPECT_EQ(rc.n_iter, rr.n_iter);
  EXPECT_NEAR(rc.inertia, rr.inertia, 1e-10 * rr.inertia);
}

}  // namespace
}  // namespace kmeans
