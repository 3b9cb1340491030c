// SPDX-License-Identifier: Apache-2.0
// GPU tests (ctest label gpu): a whole Backend::Cuda fit gives the Backend::Cpu fit's bits. Both
// label each point by the exact argmin of the direct formula with fused multiply-adds (the CPU
// tables that promise it: avx2, avx512), sum in the canonical order (src/cpu_accumulate.hpp,
// src/cuda/shard.hpp) and update by the one Lloyd step (src/lloyd_step.hpp), so labels,
// centroids, inertia, n_iter and sse_history must be equal, not close. Each test skips without a
// usable device, or without an FMA kernel table on this CPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "cpu_test_support.hpp"
#include "cuda_skip.hpp"
#include "cuda_test_support.hpp"
#include "kmeans/kmeans.hpp"
#include "test_helpers.hpp"

namespace kmeans {
namespace {

/// The name of a CPU kernel table whose direct formula uses fused multiply-adds, or "".
std::string fma_table() {
  for (const auto* t : kmeans_test::cpu_tables())
    if (t->direct_fma) return t->name;
  return "";
}

class CudaCpuBits : public ::testing::Test {
 protected:
  void SetUp() override {
    KMEANS_SKIP_WITHOUT_GPU();
    table_ = fma_table();
    if (table_.empty())
      GTEST_SKIP() << "no CPU kernel table with fused multiply-adds here (generic rounds each "
                      "square; CUDA fuses them), so the two backends' distances differ";
  }
  std::string table_;
};

bool same_bits(const void* a, const void* b, std::size_t bytes) {
  return std::memcmp(a, b, bytes) == 0;
}

struct Case {
  std::int64_t n, d;
  int k;
  Shape shape;
  bool weighted;
  Init init;
  const char* what;
};

const Case kCases[] = {
    {4000, 3, 4, Shape::Blobs, false, Init::KMeansPlusPlus, "the classic study (device loop)"},
    {5000, 8, 6, Shape::Blobs, true, Init::KMeansPlusPlus, "partials path, weighted"},
    {70000, 6, 12, Shape::Uniform, false, Init::Random, "partials path, many leaves"},
    {6000, 20, 100, Shape::Blobs, false, Init::KMeansPlusPlus, "sort path"},
    {6000, 40, 150, Shape::Blobs, true, Init::KMeansPlusPlus, "GEMM path, weighted"},
    {30000, 64, 128, Shape::Blobs, false, Init::KMeansPlusPlus, "GEMM or TF32 path"},
    {3001, 6, 10, Shape::Duplicates, false, Init::Random, "duplicates, empty clusters"},
    {1500, 1000, 3, Shape::Blobs, false, Init::KMeansPlusPlus, "wide rows"},
};

template <class T>
void check_case(const Case& cs, const std::string& table) {
  SCOPED_TRACE(std::string(cs.what) + " n=" + std::to_string(cs.n) + " d=" +
               std::to_string(cs.d) + " k=" + std::to_string(cs.k) +
               (sizeof(T) == 4 ? " float" : " double") + ", CPU table " + table);
  const auto x = make_data<T>(cs.n, cs.d, cs.shape, 17, cs.k);
  std::vector<T> w;
  std::mt19937_64 gen(3);
  std::uniform_real_distribution<double> u(0.25, 4.0);
  for (std::int64_t i = 0; i < (cs.weighted ? cs.n : 0); ++i) w.push_back(static_cast<T>(u(gen)));
  Params<T> p;
  p.k = cs.k;
  p.init = cs.init;
  p.seed = 5;
  p.max_iter = 30;
  p.tol = 0;
  if (cs.weighted) p.sample_weight = w;
  p.backend = Backend::Cuda;
  const Result<T> g = fit(x.data(), cs.n, cs.d, p);
  p.backend = Backend::Cpu;
  kmeans_test::IsaScope isa(table);
  const Result<T> c = fit(x.data(), cs.n, cs.d, p);
  ASSERT_EQ(g.backend, Backend::Cuda);
  EXPECT_EQ(g.n_iter, c.n_iter);
  // Where the two part first, to tell distances (labels, the first SSE) from sums (the later
  // SSEs, the centroids) from the update.
  const std::size_t n_hist = std::min(g.sse_history.size(), c.sse_history.size());
  for (std::size_t i = 0; i < n_hist; ++i)
    if (!same_bits(&g.sse_history[i], &c.sse_history[i], sizeof(double))) {
      ADD_FAILURE() << "sse_history first differs at iteration " << i << ": "
                    << g.sse_history[i] << " (cuda) vs " << c.sse_history[i] << " (cpu)";
      break;
    }
  EXPECT_EQ(g.sse_history.size(), c.sse_history.size());
  ASSERT_EQ(g.labels.size(), c.labels.size());
  std::int64_t label_diffs = 0, first_label = -1;
  for (std::size_t i = 0; i < g.labels.size(); ++i)
    if (g.labels[i] != c.labels[i] && label_diffs++ == 0) first_label = static_cast<std::int64_t>(i);
  EXPECT_EQ(label_diffs, 0) << "final labels differ at " << label_diffs << " points, first at "
                            << first_label;
  ASSERT_EQ(g.centroids.size(), c.centroids.size());
  for (std::size_t i = 0; i < g.centroids.size(); ++i)
    if (!same_bits(&g.centroids[i], &c.centroids[i], sizeof(T))) {
      ADD_FAILURE() << "centroids first differ at entry " << i << " (cluster " << i / cs.d
                    << "): " << g.centroids[i] << " (cuda) vs " << c.centroids[i] << " (cpu)";
      break;
    }
  EXPECT_TRUE(same_bits(&g.inertia, &c.inertia, sizeof(double)))
      << "inertia " << g.inertia << " (cuda) vs " << c.inertia << " (cpu)";
}

TEST_F(CudaCpuBits, WholeFitsGiveTheCpuBitsFloat) {
  for (const Case& cs : kCases) check_case<float>(cs, table_);
}

TEST_F(CudaCpuBits, WholeFitsGiveTheCpuBitsDouble) {
  for (const Case& cs : kCases) check_case<double>(cs, table_);
}

}  // namespace
}  // namespace kmeans
