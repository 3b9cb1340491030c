// SPDX-License-Identifier: Apache-2.0
// The CPU engine's per-pass sums follow the canonical order it shares with the CUDA engine
// (src/cpu_accumulate.hpp): node values, bit for bit, equal the plain oracle of that order
// (canonical_oracle.hpp, the one the CUDA tests use) over the engine's own labels and distances,
// on every kernel table, every accumulation path (four sub-tiles at once, sub-tile scratch,
// bucket by label, bound-pruned passes), thread count and shard position. (Built with
// -ffp-contract=off: the oracle's products stay unfused.)
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "canonical_oracle.hpp"
#include "cpu_test_support.hpp"
#include "kmeans/kmeans.hpp"
#include "shard_engine.hpp"
#include "test_helpers.hpp"

namespace {

using kmeans::detail::DataView;
namespace tree = kmeans::detail::tree;

bool same_bits(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }

template <class T>
using Problem = kmeans_test::CanonProblem<T>;

/// Data whose sums depend on their order, optional duplicate rows, weights of varied
/// magnitudes (canonical_oracle.hpp), centroids drawn from the rows.
template <class T>
Problem<T> make_problem(std::int64_t n, std::int64_t d, int k, bool duplicates,
                        std::uint32_t seed) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<double> u(-1, 1);
  Problem<T> p = kmeans_test::order_sensitive_problem<T>(gen, n, d, k);
  if (duplicates)
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t j = 0; j < d; ++j) p.x[i * d + j] = p.x[(i % 7) * d + j];
  p.c.resize(static_cast<std::size_t>(k * d));
  for (int c = 0; c < k; ++c)
    for (std::int64_t j = 0; j < d; ++j)
      p.c[c * d + j] = p.x[((c * 7919) % n) * d + j] + static_cast<T>(0.01 * u(gen));
  return p;
}

struct Case {
  std::int64_t n, d;
  int k;
  bool duplicates;
  const char* what;
};

const Case kCases[] = {
    {4000, 3, 4, false, "the classic study's shape: four sub-tiles at once"},
    {7 * 4096 + 123, 3, 4, false, "several leaves, four sub-tiles at once"},
    {6 * 4096 + 1, 8, 5, false, "d = 8, four sub-tiles at once, a 1-row last leaf"},
    {5 * 4096 + 77, 1, 7, false, "d = 1"},
    {3 * 4096 + 5, 5, 6, false, "small d through the sub-tile scratch"},
    {2 * 4096 + 300, 40, 20, false, "the sub-tile scratch"},
    {9000, 130, 12, false, "kernel sub-blocks that cross sub-tiles"},
    {5000, 784, 10, false, "wide rows, 64-row sub-blocks"},
    {300, 2, 300, false, "k = n"},
    {4097, 16, 1, false, "k = 1"},
    {1, 3, 1, false, "n = 1"},
    {20000, 16, 300, false, "many clusters (ranking passes)"},
    {6000, 6, 700, false, "more than 512 clusters: only the touched clusters' scratch"},
    {3 * 4096 + 77, 32, 256, false, "whole sub-tiles sorted by cluster, no scratch"},
    {2 * 4096 + 19, 37, 200, false, "sorted sub-tiles, d not a multiple of the vector"},
    {2 * 4096 + 300, 9, 1000, false, "sorted sub-tiles beside the touched clusters' scratch"},
    {5000, 4, 9, true, "duplicate rows"},
};

/// One pass of a shard engine at block fb (threads, max partial doubles: 1 forces the bucket
/// path), checked against the oracle over its labels and distances.
template <class T>
void check_pass(kmeans::detail::ShardEngine<T>& e, const Problem<T>& p, const T* centroids,
                bool weighted, std::int64_t fb, const std::string& what) {
  std::vector<double> rows;
  const auto st = e.assign_nodes(centroids, p.k, true, rows);
  std::vector<std::int32_t> labels(static_cast<std::size_t>(p.n));
  e.labels(labels.data());
  const tree::NodeStack want =
      kmeans_test::canonical_nodes(p.x.data(), weighted ? p.w.data() : nullptr, labels.data(),
                                   e.point_distances(), p.n, p.d, p.k, fb);
  ASSERT_EQ(e.nodes(), want.nodes()) << what;
  const std::int64_t W = want.width();
  std::int64_t bad = 0;
  for (std::size_t j = 0; j < want.size(); ++j)
    for (std::int64_t c = 0; c < W; ++c) {
      const double got = rows[j * W + c], exp = want.values(j)[c];
      if (!same_bits(got, exp) && bad++ < 5)
        ADD_FAILURE() << what << ": node " << j << " column " << c << " (of " << W
                      << "): " << got << " vs " << exp;
    }
  EXPECT_EQ(bad, 0) << what;
  double total_sse = 0;
  {
    std::vector<double> total(static_cast<std::size_t>(W));
    want.total(total.data());
    total_sse = total[W - 1];
  }
  EXPECT_TRUE(same_bits(st.sse, total_sse)) << what << ": SSE " << st.sse << " vs " << total_sse;
}

template <class T>
void check_case(const Case& cs, std::uint32_t seed) {
  const Problem<T> p = make_problem<T>(cs.n, cs.d, cs.k, cs.duplicates, seed);
  const std::int64_t big = std::int64_t{1} << 40;
  for (const bool weighted : {false, true})
    for (const int threads : {1, 2, 3})
      for (const std::int64_t max_partials : {big, std::int64_t{1}})
        for (const std::int64_t fb : {std::int64_t{0}, std::int64_t{3}})
          for (const auto algorithm : {kmeans::Algorithm::Lloyd, kmeans::Algorithm::Elkan}) {
            if (threads == 3 && (fb != 0 || max_partials != big)) continue;  // enough coverage
            const std::string what =
                std::string(cs.what) + " n=" + std::to_string(cs.n) + " d=" +
                std::to_string(cs.d) + " k=" + std::to_string(cs.k) +
                (sizeof(T) == 4 ? " float" : " double") + (weighted ? " weighted" : "") +
                " threads=" + std::to_string(threads) +
                (max_partials == 1 ? " bucket path" : "") + " first_block=" + std::to_string(fb) +
                (algorithm == kmeans::Algorithm::Elkan ? " elkan" : "");
            const DataView<T> v{p.x.data(), weighted ? p.w.data() : nullptr, p.n, p.d, threads};
            auto e = kmeans::detail::make_cpu_shard_engine(v, fb, max_partials);
            e->set_algorithm(algorithm);
            // Four passes with centroids that move, each checked (Elkan's bounds start at the
            // third: after a pass that changed at most n / 20 labels, cpu_bounds.hpp).
            std::vector<T> c = p.c;
            for (int pass = 0; pass < 4; ++pass) {
              check_pass(*e, p, c.data(), weighted, fb, what + " pass " + std::to_string(pass));
              for (auto& v : c) v = static_cast<T>(v * 0.999 + 0.001);
            }
          }
}

class CpuCanonical : public ::testing::TestWithParam<std::string> {};

TEST_P(CpuCanonical, SumsFollowTheOrderSharedWithCudaFloat) {
  kmeans_test::IsaScope isa(GetParam());
  std::uint32_t seed = 100;
  for (const Case& cs : kCases) check_case<float>(cs, ++seed);
}

TEST_P(CpuCanonical, SumsFollowTheOrderSharedWithCudaDouble) {
  kmeans_test::IsaScope isa(GetParam());
  std::uint32_t seed = 200;
  for (const Case& cs : kCases) check_case<double>(cs, ++seed);
}

std::vector<std::string> table_names() {
  std::vector<std::string> names;
  for (const auto* t : kmeans_test::cpu_tables()) names.push_back(t->name);
  return names;
}

INSTANTIATE_TEST_SUITE_P(Tables, CpuCanonical, ::testing::ValuesIn(table_names()),
                         [](const auto& info) { return info.param; });

}  // namespace
