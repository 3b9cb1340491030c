// SPDX-License-Identifier: Apache-2.0
// GPU tests of the canonical sum order (src/cuda/shard.hpp; ctest label gpu): the CUDA engine's
// sums, weights and SSE equal, bit for bit, a plain host oracle of that order over the engine's
// own labels and distances, on every path and for any forced grid; CUDA shard engines over rows
// [a, b), merged through tree::NodeStack, give the in-memory engine's bits. Each test skips
// without a usable device. (Built with -ffp-contract=off: the oracle's products stay unfused.)
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "canonical_oracle.hpp"
#include "cuda/shard.hpp"
#include "engine.hpp"
#include "kmeans/kmeans.hpp"
#include "cuda_skip.hpp"
#include "tree_sum.hpp"

namespace kmeans {
namespace {

using detail::DataView;
using detail::StepStats;
namespace tree = detail::tree;
constexpr std::int64_t kLeaf = 4096;

bool same_bits(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }

/// Sets an environment variable (a test hook of the engine) for the scope.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (!value.empty()) setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() { unsetenv(name_); }

 private:
  const char* name_;
};

template <class T>
using Problem = kmeans_test::CanonProblem<T>;

/// Data whose sums depend on the order (canonical_oracle.hpp), centroids in [-8, 8).
template <class T>
Problem<T> make_problem(std::int64_t n, std::int64_t d, int k, std::uint32_t seed) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<double> u(-1, 1);
  Problem<T> p = kmeans_test::order_sensitive_problem<T>(gen, n, d, k);
  p.c.resize(static_cast<std::size_t>(k * d));
  for (auto& v : p.c) v = static_cast<T>(8 * u(gen));
  return p;
}

/// The canonical order on the host, plain loops (canonical_oracle.hpp): first block fb.
template <class T>
tree::NodeStack oracle(const T* x, const T* w, const std::int32_t* labels, const T* dist,
                       std::int64_t n, std::int64_t d, int k, std::int64_t fb) {
  return kmeans_test::canonical_nodes(x, w, labels, dist, n, d, k, fb);
}

/// One pass of the in-memory engine (make_cuda_engine) with sums, its labels, and the
/// distances from a shard engine at block 0 over the same data (the same pass).
template <class T>
struct InMemory {
  std::vector<double> sums, weights;
  StepStats st;
  std::vector<std::int32_t> labels;
  std::vector<T> dist;
};

template <class T>
InMemory<T> in_memory_pass(const Problem<T>& p, bool weighted) {
  const DataView<T> v{p.x.data(), weighted ? p.w.data() : nullptr, p.n, p.d, 0};
  InMemory<T> r;
  auto e = detail::make_cuda_engine(v);
  r.sums.resize(static_cast<std::size_t>(p.k * p.d));
  r.weights.resize(static_cast<std::size_t>(p.k));
  r.st = e->assign(p.c.data(), p.k, r.sums.data(), r.weights.data());
  // The replayed graph gives the same bits.
  std::vector<double> sums2(r.sums.size()), weights2(r.weights.size());
  const StepStats st2 = e->assign(p.c.data(), p.k, sums2.data(), weights2.data());
  EXPECT_EQ(0, std::memcmp(sums2.data(), r.sums.data(), r.sums.size() * sizeof(double)));
  EXPECT_EQ(0, std::memcmp(weights2.data(), r.weights.data(), r.weights.size() * sizeof(double)));
  EXPECT_TRUE(same_bits(st2.sse, r.st.sse));
  EXPECT_EQ(st2.n_changed, 0);
  r.labels.resize(static_cast<std::size_t>(p.n));
  e->labels(r.labels.data());
  auto shard = detail::cuda::make_cuda_shard_engine(v, 0);
  std::vector<double> rows;
  shard->assign_nodes(p.c.data(), p.k, false, rows);
  r.dist.assign(shard->point_distances(), shard->point_distances() + p.n);
  return r;
}

template <class T>
void expect_canonical(const Problem<T>& p, bool weighted, const InMemory<T>& r,
                      const std::string& what) {
  const tree::NodeStack want = oracle(p.x.data(), weighted ? p.w.data() : nullptr,
                                      r.labels.data(), r.dist.data(), p.n, p.d, p.k, 0);
  std::vector<double> total(static_cast<std::size_t>(want.width()));
  want.total(total.data());
  std::int64_t bad = 0;
  for (std::int64_t e = 0; e < p.k * p.d; ++e)
    if (!same_bits(r.sums[e], total[e]) && bad++ < 5)
      ADD_FAILURE() << what << ": sum " << e << ": " << r.sums[e] << " vs " << total[e];
  for (int c = 0; c < p.k; ++c)
    if (!same_bits(r.weights[c], total[p.k * p.d + c]) && bad++ < 5)
      ADD_FAILURE() << what << ": weight " << c << ": " << r.weights[c] << " vs "
                    << total[p.k * p.d + c];
  EXPECT_EQ(bad, 0) << what;
  EXPECT_TRUE(same_bits(r.st.sse, total[want.width() - 1]))
      << what << ": SSE " << r.st.sse << " vs " << total[want.width() - 1];
  EXPECT_EQ(r.st.n_changed, p.n) << what;
}

struct Case {
  std::int64_t n, d;
  int k;
  const char* path;
};

// partials (small k * d), sort (k * (d + 1) > 2048, k < 128), GEMM (k >= 128, d >= 32), d = 1,
// k = 1, k = n.
const Case kCases[] = {{15 * 4096 + 77, 3, 5, "partials"}, {20000 + 13, 40, 100, "sort"},
                       {9000, 40, 200, "gemm"},           {4097, 1, 1, "d1k1"},
                       {300, 2, 300, "k=n"},              {70000, 6, 12, "partials, many leaves"}};

class CudaCanonical : public ::testing::Test {
 protected:
  void SetUp() override { KMEANS_SKIP_WITHOUT_GPU(); }
};

template <class T>
void check_every_path_and_grid() {
  std::uint32_t seed = 40;
  for (const Case& cs : kCases)
    for (const bool weighted : {false, true}) {
      const Problem<T> p = make_problem<T>(cs.n, cs.d, cs.k, ++seed);
      const std::string what = std::string(cs.path) + " n=" + std::to_string(cs.n) +
                               " d=" + std::to_string(cs.d) + " k=" + std::to_string(cs.k) +
                               (sizeof(T) == 4 ? " float" : " double") +
                               (weighted ? " weighted" : "");
      const InMemory<T> base = in_memory_pass(p, weighted);
      expect_canonical(p, weighted, base, what);
      // Forced grids (sub-tiles per block; whole leaves with partials) and the sort path in
      // place of partials: the same labels and the same bits.
      for (const char* spb : {"1", "16", "48", "1000000"})
        for (const char* sort : {"", "1"}) {
          ScopedEnv e1("KMEANS_CUDA_TEST_SUBTILES_PER_BLOCK", spb);
          ScopedEnv e2("KMEANS_CUDA_TEST_SORT_PATH", sort);
          const InMemory<T> r = in_memory_pass(p, weighted);
          const std::string how = what + " spb=" + spb + (*sort ? " forced sort" : "");
          EXPECT_EQ(r.labels, base.labels) << how;
          EXPECT_EQ(0, std::memcmp(r.sums.data(), base.sums.data(), r.sums.size() * sizeof(double)))
              << how;
          EXPECT_EQ(0, std::memcmp(r.weights.data(), base.weights.data(),
                                   r.weights.size() * sizeof(double)))
              << how;
          EXPECT_TRUE(same_bits(r.st.sse, base.st.sse)) << how;
        }
    }
}

TEST_F(CudaCanonical, SumsFollowTheCanonicalOrderOnEveryPathAndGridFloat) {
  check_every_path_and_grid<float>();
}
TEST_F(CudaCanonical, SumsFollowTheCanonicalOrderOnEveryPathAndGridDouble) {
  check_every_path_and_grid<double>();
}

/// A whole fit under a forced grid gives the default grid's bits.
TEST_F(CudaCanonical, FitBitsDoNotDependOnTheGrid) {
  const Problem<float> p = make_problem<float>(50000, 4, 9, 77);
  Params<float> params;
  params.k = 9;
  params.seed = 5;
  params.backend = Backend::Cuda;
  const Result<float> want = fit(p.x.data(), p.n, p.d, params);
  for (const char* spb : {"16", "32", "160"}) {
    ScopedEnv e("KMEANS_CUDA_TEST_SUBTILES_PER_BLOCK", spb);
    const Result<float> got = fit(p.x.data(), p.n, p.d, params);
    EXPECT_EQ(got.labels, want.labels) << spb;
    EXPECT_EQ(got.centroids, want.centroids) << spb;
    EXPECT_TRUE(same_bits(got.inertia, want.inertia)) << spb;
  }
}

/// Shards [a, b) (whole blocks but the last, of non-power-of-two sizes), each a CUDA shard
/// engine, pushed through one NodeStack: the in-memory engine's totals, bit for bit; the same
/// labels; assign_nodes_device's rows equal assign_nodes'.
template <class T>
void check_shards(const Case& cs, bool weighted, bool device_rows) {
  const Problem<T> p = make_problem<T>(cs.n, cs.d, cs.k, 91);
  const std::string what = std::string(cs.path) + (weighted ? " weighted" : "") +
                           (device_rows ? " device data" : " host data");
  const InMemory<T> base = in_memory_pass(p, weighted);
  const std::int64_t B = (p.n + kLeaf - 1) / kLeaf;
  const std::vector<std::vector<std::int64_t>> cuts = {{0, B}, {0, 3, B}, {0, 3, 8, B},
                                                       {0, 1, 2, 7, B - 1, B}};
  const std::int64_t width = p.k * p.d + p.k + 1;
  for (const auto& cut : cuts) {
    tree::NodeStack stack(width), sse_stack(1);
    std::int64_t changed = 0;
    std::vector<std::int32_t> labels;
    for (std::size_t s = 0; s + 1 < cut.size(); ++s) {
      if (cut[s] >= cut[s + 1]) continue;
      const std::int64_t r0 = cut[s] * kLeaf, r1 = std::min(p.n, cut[s + 1] * kLeaf);
      const T* x = p.x.data() + r0 * p.d;
      const T* w = weighted ? p.w.data() + r0 : nullptr;
      T* dx = nullptr;
      T* dw = nullptr;
      if (device_rows) {
        ASSERT_CUDA(cudaMalloc(&dx, (r1 - r0) * p.d * sizeof(T)));
        ASSERT_CUDA(cudaMemcpy(dx, x, (r1 - r0) * p.d * sizeof(T), cudaMemcpyHostToDevice));
        if (w) {
          ASSERT_CUDA(cudaMalloc(&dw, (r1 - r0) * sizeof(T)));
          ASSERT_CUDA(cudaMemcpy(dw, w, (r1 - r0) * sizeof(T), cudaMemcpyHostToDevice));
        }
        x = dx;
        w = dw;
      }
      {
        const DataView<T> v{x, w, r1 - r0, p.d, 0};
        auto e = detail::cuda::make_cuda_shard_engine(v, cut[s], device_rows);
        ASSERT_EQ(e->nodes(), tree::decompose(cut[s], cut[s] + (r1 - r0 + kLeaf - 1) / kLeaf));
        std::vector<double> rows;
        const StepStats st = e->assign_nodes(p.c.data(), p.k, true, rows);
        ASSERT_EQ(rows.size(), e->nodes().size() * static_cast<std::size_t>(width));
        for (std::size_t j = 0; j < e->nodes().size(); ++j)
          stack.push(e->nodes()[j], rows.data() + j * width);
        changed += st.n_changed;
        std::vector<std::int32_t> lab(static_cast<std::size_t>(r1 - r0));
        e->labels(lab.data());
        labels.insert(labels.end(), lab.begin(), lab.end());
        // The same pass again, left on the device: the same rows.
        StepStats st_dev;
        const double* d_rows = e->assign_nodes_device(p.c.data(), p.k, true, &st_dev);
        std::vector<double> rows_dev(rows.size());
        ASSERT_CUDA(cudaMemcpy(rows_dev.data(), d_rows, rows.size() * sizeof(double),
                               cudaMemcpyDeviceToHost));
        EXPECT_EQ(0, std::memcmp(rows_dev.data(), rows.data(), rows.size() * sizeof(double)))
            << what;
        EXPECT_TRUE(same_bits(st_dev.sse, st.sse)) << what;
        EXPECT_EQ(st_dev.n_changed, 0) << what;
        // Without sums: the SSE nodes alone, the same values as the SSE column.
        std::vector<double> sse_rows;
        e->assign_nodes(p.c.data(), p.k, false, sse_rows);
        ASSERT_EQ(sse_rows.size(), e->nodes().size());
        for (std::size_t j = 0; j < e->nodes().size(); ++j) {
          EXPECT_TRUE(same_bits(sse_rows[j], rows[j * width + width - 1])) << what << " node " << j;
          sse_stack.push(e->nodes()[j], sse_rows.data() + j);
        }
        // The distances are those of the labels' centroids (within the float tolerance).
        const T* dist = e->point_distances();
        for (std::int64_t i = 0; i < r1 - r0; i += 97) {
          double ex = 0;
          for (std::int64_t j = 0; j < p.d; ++j) {
            const double df = static_cast<double>(p.x[(r0 + i) * p.d + j]) -
                              static_cast<double>(p.c[lab[i] * p.d + j]);
            ex += df * df;
          }
          EXPECT_NEAR(static_cast<double>(dist[i]), ex, 1e-4 * (1 + ex)) << what << " point " << i;
        }
      }
      if (dx) ASSERT_CUDA(cudaFree(dx));
      if (dw) ASSERT_CUDA(cudaFree(dw));
    }
    std::vector<double> total(static_cast<std::size_t>(width));
    stack.total(total.data());
    EXPECT_EQ(labels, base.labels) << what;
    EXPECT_EQ(changed, p.n) << what;
    for (std::int64_t e = 0; e < p.k * p.d; ++e)
      ASSERT_TRUE(same_bits(total[e], base.sums[e])) << what << " shards " << cut.size() - 1
                                                     << " sum " << e;
    for (int c = 0; c < p.k; ++c)
      ASSERT_TRUE(same_bits(total[p.k * p.d + c], base.weights[c])) << what << " weight " << c;
    EXPECT_TRUE(same_bits(total[width - 1], base.st.sse)) << what;
    double sse = 0;
    sse_stack.total(&sse);
    EXPECT_TRUE(same_bits(sse, base.st.sse)) << what;
  }
}

TEST_F(CudaCanonical, ShardEnginesMergedThroughNodeStackGiveTheInMemoryBits) {
  const Case partials{11 * 4096 + 1000, 3, 6, "partials"};
  const Case sort{10 * 4096 + 5, 40, 60, "sort"};
  const Case gemm{9 * 4096 + 17, 40, 150, "gemm"};
  for (const bool device_rows : {false, true}) {
    check_shards<float>(partials, true, device_rows);
    check_shards<double>(partials, false, device_rows);
    check_shards<float>(sort, false, device_rows);
    check_shards<double>(sort, true, device_rows);
    check_shards<float>(gemm, true, device_rows);
  }
}

/// New data at the same device address: rebind keeps the engine (and its graphs) and gives a
/// fresh engine's bits; keep_centre (GEMM path) changes no result either.
template <class T>
void check_rebind_same_pointer(const Case& cs, bool keep_centre) {
  const Problem<T> p1 = make_problem<T>(cs.n, cs.d, cs.k, 5);
  Problem<T> p2 = make_problem<T>(cs.n, cs.d, cs.k, 6);
  p2.c = p1.c;
  const std::size_t bytes = p1.x.size() * sizeof(T);
  T* dx = nullptr;
  ASSERT_CUDA(cudaMalloc(&dx, bytes));
  ASSERT_CUDA(cudaMemcpy(dx, p1.x.data(), bytes, cudaMemcpyHostToDevice));
  const DataView<T> v{dx, nullptr, cs.n, cs.d, 0};
  {
    auto e = detail::cuda::make_cuda_shard_engine(v, 2);
    if (keep_centre) e->keep_centre();
    std::vector<double> rows1, rows2, want;
    for (int pass = 0; pass < 3; ++pass) e->assign_nodes(p1.c.data(), cs.k, true, rows1);
    ASSERT_CUDA(cudaMemcpy(dx, p2.x.data(), bytes, cudaMemcpyHostToDevice));
    ASSERT_TRUE(e->rebind(v));
    for (int pass = 0; pass < 3; ++pass) e->assign_nodes(p2.c.data(), cs.k, true, rows2);
    auto fresh = detail::cuda::make_cuda_shard_engine(v, 2);
    fresh->assign_nodes(p2.c.data(), cs.k, true, want);
    EXPECT_EQ(0, std::memcmp(rows2.data(), want.data(), want.size() * sizeof(double)))
        << cs.path << (keep_centre ? " keep_centre" : "");
  }
  ASSERT_CUDA(cudaFree(dx));
}

TEST_F(CudaCanonical, RebindAtTheSamePointerGivesAFreshEnginesBits) {
  check_rebind_same_pointer<float>({3 * 4096 + 5, 3, 5, "partials"}, false);
  check_rebind_same_pointer<float>({3 * 4096 + 5, 40, 60, "sort"}, false);
  check_rebind_same_pointer<float>({3 * 4096 + 5, 40, 150, "gemm"}, false);
  check_rebind_same_pointer<float>({3 * 4096 + 5, 40, 150, "gemm"}, true);
}

TEST_F(CudaCanonical, ShardEngineArgumentsAreChecked) {
  const std::vector<float> x(8 * 2, 1.0f);
  const DataView<float> v{x.data(), nullptr, 8, 2, 0};
  EXPECT_THROW(detail::cuda::make_cuda_shard_engine(v, -1), Error);
  const DataView<float> empty{x.data(), nullptr, 0, 2, 0};
  EXPECT_THROW(detail::cuda::make_cuda_shard_engine(empty, 0), Error);
  // `validated` skips the device-input checks: NaN device data is refused only without it.
  std::vector<float> bad(x);
  bad[3] = std::nanf("");
  float* dx = nullptr;
  ASSERT_CUDA(cudaMalloc(&dx, bad.size() * sizeof(float)));
  ASSERT_CUDA(cudaMemcpy(dx, bad.data(), bad.size() * sizeof(float), cudaMemcpyHostToDevice));
  const DataView<float> dv{dx, nullptr, 8, 2, 0};
  EXPECT_THROW(detail::cuda::make_cuda_shard_engine(dv, 0, false), Error);
  EXPECT_NO_THROW(detail::cuda::make_cuda_shard_engine(dv, 0, true));
  ASSERT_CUDA(cudaFree(dx));
  auto e = detail::cuda::make_cuda_shard_engine(v, 0);
  int current = -1;
  ASSERT_CUDA(cudaGetDevice(&current));
  EXPECT_EQ(e->device(), current);
  EXPECT_NE(e->stream(), nullptr);
}

}  // namespace
}  // namespace kmeans
