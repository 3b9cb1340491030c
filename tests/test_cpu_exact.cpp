// SPDX-License-Identifier: Apache-2.0
// The CPU backend's labels are the exact argmin of the direct formula sum((x - c)^2) in T
// (ties to the lowest index) on every kernel table, against a brute-force oracle; and how
// KMEANS_CPU_ISA names are checked.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "cpu_kernel.hpp"
#include "cpu_pool.hpp"
#include "engine.hpp"
#include "cpu_test_support.hpp"
#include "kmeans/kmeans.hpp"
#include "test_helpers.hpp"

namespace {

namespace cpu = kmeans::detail::cpu;
using kmeans_test::IsaScope;
using kmeans_test::cpu_tables;

/// The direct formula in T, coordinate order 0..d-1, in the table's form: fused
/// (s = fma(diff, diff, s)) or with every square rounded (the volatile keeps the compiler
/// from fusing it).
template <class T>
T direct(const T* a, const T* b, std::int64_t d, bool fused) {
  T s = 0;
  for (std::int64_t j = 0; j < d; ++j) {
    const T diff = a[j] - b[j];
    if (fused) {
      s = std::fma(diff, diff, s);
    } else {
      volatile T sq = diff * diff;
      s = s + sq;
    }
  }
  return s;
}

/// Deterministic uniform numbers in [0, 1).
struct Lcg {
  std::uint64_t s;
  double operator()() {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<double>(s >> 11) * 0x1.0p-53;
  }
};

/// x moved by `ulps` units in the last place (towards +inf for ulps > 0).
template <class T>
T nudge(T x, int ulps) {
  for (int i = 0; i < ulps; ++i) x = std::nextafter(x, static_cast<T>(INFINITY));
  for (int i = 0; i > ulps; --i) x = std::nextafter(x, static_cast<T>(-INFINITY));
  return x;
}

/// One assignment pass of the CPU engine on `table`, then every label against the oracle
/// (exact index) and the SSE against the oracle's distances.
template <class T>
void expect_exact(const cpu::KernelTable& table, const std::vector<T>& x, std::int64_t n,
                  std::int64_t d, const std::vector<T>& c, int k, const std::string& what) {
  SCOPED_TRACE(what + " isa=" + table.name + (sizeof(T) == 4 ? " float" : " double") +
               " n=" + std::to_string(n) + " d=" + std::to_string(d) + " k=" + std::to_string(k));
  IsaScope scope(table.name);
  kmeans::detail::DataView<T> v{x.data(), nullptr, n, d, 0};
  auto engine = kmeans::detail::make_cpu_engine(v);
  std::vector<double> sums(static_cast<std::size_t>(k * d)), w(static_cast<std::size_t>(k));
  const auto stats = engine->assign(c.data(), k, sums.data(), w.data());
  std::vector<std::int32_t> labels(static_cast<std::size_t>(n), -1);
  engine->labels(labels.data());
  double sse = 0;
  int wrong = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    int best = 0;
    T bd = direct(&x[i * d], &c[0], d, table.direct_fma);
    for (int j = 1; j < k; ++j) {
      const T dj = direct(&x[i * d], &c[j * d], d, table.direct_fma);
      if (dj < bd) {
        bd = dj;
        best = j;
      }
    }
    sse += static_cast<double>(bd);
    if (labels[i] != best && ++wrong <= 5)
      ADD_FAILURE() << "point " << i << ": label " << labels[i] << " (distance "
                    << direct(&x[i * d], &c[labels[i] * d], d, table.direct_fma)
                    << "), exact argmin " << best << " (distance " << bd << ")";
  }
  EXPECT_EQ(wrong, 0) << "labels that are not the exact argmin";
  EXPECT_NEAR(stats.sse, sse, 1e-12 * sse + 1e-300) << "the SSE sums the exact distances";
}

/// Tight clusters (spread `spread`) around `clusters` centres in [offset, offset + 100)^d:
/// far from the origin and wide compared with the gaps between neighbours, the case where
/// an expanded ranking |c|^2/2 - x.c loses the order.
template <class T>
std::vector<T> clustered(std::int64_t n, std::int64_t d, int clusters, double spread,
                         double offset, std::uint64_t seed) {
  Lcg u{seed};
  std::vector<double> centre(static_cast<std::size_t>(clusters * d));
  for (auto& v : centre) v = offset + 100 * u();
  std::vector<T> x(static_cast<std::size_t>(n * d));
  for (std::int64_t i = 0; i < n; ++i) {
    const int c = static_cast<int>(u() * clusters);
    for (std::int64_t j = 0; j < d; ++j)
      x[i * d + j] = static_cast<T>(centre[c * d + j] + spread * (u() - 0.5));
  }
  return x;
}

/// clustered() with every repeated row's first coordinate nudged until the rows are distinct.
template <class T>
std::vector<T> distinct_clustered(std::int64_t n, std::int64_t d, double spread, double offset) {
  auto x = clustered<T>(n, d, 40, spread, offset, 7 + n + d);
  std::vector<std::int64_t> order(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) order[i] = i;
  auto row_less = [&](std::int64_t a, std::int64_t b) {
    for (std::int64_t j = 0; j < d; ++j)
      if (x[a * d + j] != x[b * d + j]) return x[a * d + j] < x[b * d + j];
    return a < b;
  };
  for (bool again = true; again;) {
    again = false;
    std::sort(order.begin(), order.end(), row_less);
    for (std::int64_t q = 1; q < n; ++q) {
      const std::int64_t a = order[q - 1], b = order[q];
      bool same = true;
      for (std::int64_t j = 0; j < d && same; ++j) same = x[a * d + j] == x[b * d + j];
      if (same) {
        x[b * d] = nudge(x[b * d], 1 + static_cast<int>(q % 5));
        again = true;
      }
    }
  }
  return x;
}

/// k = n distinct points, each its own centroid: every label must be the point's own index
/// (distance 0; any other centroid is strictly farther).
template <class T>
void k_equals_n(std::int64_t n, std::int64_t d, double spread, double offset) {
  const auto x = distinct_clustered<T>(n, d, spread, offset);
  for (const auto* table : cpu_tables()) {
    SCOPED_TRACE(std::string("k = n, isa=") + table->name + (sizeof(T) == 4 ? " float" : " double") +
                 " n=" + std::to_string(n) + " d=" + std::to_string(d));
    IsaScope scope(table->name);
    kmeans::detail::DataView<T> v{x.data(), nullptr, n, d, 0};
    auto engine = kmeans::detail::make_cpu_engine(v);
    const auto stats = engine->assign(x.data(), static_cast<int>(n), nullptr, nullptr);
    std::vector<std::int32_t> labels(static_cast<std::size_t>(n), -1);
    engine->labels(labels.data());
    int wrong = 0;
    for (std::int64_t i = 0; i < n; ++i)
      if (labels[i] != i && ++wrong <= 5) ADD_FAILURE() << "point " << i << " labelled " << labels[i];
    EXPECT_EQ(wrong, 0);
    EXPECT_EQ(stats.sse, 0.0) << "every point is its own centroid";
  }
}

TEST(CpuExact, KEqualsNDistinctPointsFloat) {
  k_equals_n<float>(6000, 4, 0.01, 0);     // the tiled kernel, one cache chunk per pass
  k_equals_n<float>(3000, 3, 0.01, 1e4);   // offset by 1e4
  k_equals_n<float>(2000, 40, 0.05, 1e4);  // several cache chunks
}

TEST(CpuExact, KEqualsNDistinctPointsDouble) {
  k_equals_n<double>(6000, 4, 1e-9, 0);
  k_equals_n<double>(3000, 3, 1e-9, 1e4);
  k_equals_n<double>(2000, 40, 1e-8, 1e4);
}

TEST(CpuExact, KEqualsNThroughFitHasNoSpuriousEmptyClusters) {
  const std::int64_t n = 4000, d = 3;
  const auto x = distinct_clustered<float>(n, d, 0.01, 1e4);
  for (const auto* table : cpu_tables()) {
    SCOPED_TRACE(table->name);
    IsaScope scope(table->name);
    kmeans::Params<float> p;
    p.k = static_cast<int>(n);
    p.init = kmeans::Init::Array;
    p.init_centroids = x;
    p.max_iter = 3;
    p.backend = kmeans::Backend::Cpu;
    const auto r = kmeans::fit(x.data(), n, d, p);
    EXPECT_EQ(r.n_empty_relocated, 0);
    EXPECT_EQ(r.inertia, 0.0);
    for (std::int64_t i = 0; i < n; ++i) ASSERT_EQ(r.labels[i], i);
  }
}

/// Centroid pairs one to a few ulps apart, exact duplicates, and points placed half-way
/// between partners (nudged by a few ulps either way): near-ties everywhere.
template <class T>
void near_ties(std::int64_t n, std::int64_t d, int k, double offset, std::uint64_t seed) {
  Lcg u{seed};
  std::vector<T> c(static_cast<std::size_t>(k * d));
  for (int j = 0; j < k; ++j) {
    if (j % 2 == 1) {  // partner of j - 1: one to three ulps off in one or two coordinates
      for (std::int64_t f = 0; f < d; ++f) c[j * d + f] = c[(j - 1) * d + f];
      c[j * d + (j / 2) % d] = nudge(c[j * d + (j / 2) % d], 1 + j % 3);
      if (d > 1 && j % 4 == 3) c[j * d + (j / 2 + 1) % d] = nudge(c[j * d + (j / 2 + 1) % d], -1);
    } else if (j % 10 == 4) {  // an exact duplicate of an earlier centroid: never chosen
      for (std::int64_t f = 0; f < d; ++f) c[j * d + f] = c[(j - 4) * d + f];
    } else {
      for (std::int64_t f = 0; f < d; ++f) c[j * d + f] = static_cast<T>(offset + 10 * u());
    }
  }
  std::vector<T> x(static_cast<std::size_t>(n * d));
  for (std::int64_t i = 0; i < n; ++i) {
    const int a = 2 * static_cast<int>(u() * (k / 2 > 0 ? k / 2 : 1));
    const int b = a + 1 < k ? a + 1 : a;
    const int kind = static_cast<int>(i % 4);
    for (std::int64_t f = 0; f < d; ++f) {
      const double ca = c[a * d + f], cb = c[b * d + f];
      T v;
      if (kind == 0) {
        v = static_cast<T>(offset + 10 * u());  // anywhere
      } else if (kind == 1) {
        v = c[a * d + f];  // on a centroid (duplicated centroids make exact ties)
      } else {
        // near a centroid pair, up to a few spreads away, the tie coordinates half-way
        const double mid = ca == cb ? ca + 0.3 * (u() - 0.5) : 0.5 * (ca + cb);
        v = nudge(static_cast<T>(mid), static_cast<int>(u() * 7) - 3);
      }
      x[i * d + f] = v;
    }
  }
  for (const auto* table : cpu_tables())
    expect_exact(*table, x, n, d, c, k, "near ties, offset " + std::to_string(offset));
}

TEST(CpuExact, NearTiesFloat) {
  near_ties<float>(4097, 1, 6, 0, 1);      // d = 1, small-k kernel, n = block + 1
  near_ties<float>(3001, 3, 40, 1e4, 2);   // small-k kernel (k * d small), offset
  near_ties<float>(2500, 17, 64, 1e4, 3);  // tiled kernel
  near_ties<float>(1200, 33, 301, 0, 4);   // k not a multiple of any tile, several chunks
  near_ties<float>(300, 600, 40, 1e4, 5);  // d > 512: centred on the fly, one tile a chunk
  near_ties<float>(500, 8, 1, 1e4, 6);     // k = 1
  near_ties<float>(333, 784, 10, 1e4, 7);  // small-k kernel, wide rows: chunks, transposes
  near_ties<float>(301, 65, 16, 0, 8);     // one feature past a chunk, k = the limit
  near_ties<float>(129, 131, 3, 1e4, 9);   // k below the centroids per pass, odd d
  near_ties<float>(200, 100, 64, 1e4, 10); // wide rows, k = the chunked limit
  near_ties<float>(1000, 40, 64, 1e4, 11); // one chunk, k = 64 (small-k with AVX-512 tiles)
}

TEST(CpuExact, NearTiesDouble) {
  near_ties<double>(4097, 1, 6, 0, 11);
  near_ties<double>(3001, 3, 40, 1e4, 12);
  near_ties<double>(2500, 17, 64, 1e4, 13);
  near_ties<double>(1200, 33, 301, 0, 14);
  near_ties<double>(300, 600, 40, 1e4, 15);
  near_ties<double>(500, 8, 1, 1e4, 16);
  near_ties<double>(333, 784, 10, 1e4, 17);
  near_ties<double>(301, 65, 16, 0, 18);
  near_ties<double>(129, 131, 3, 1e4, 19);
  near_ties<double>(200, 100, 41, 0, 20);
}

TEST(CpuExact, ClusteredDataOffsetFarFromTheOrigin) {
  // Ordinary Lloyd-like inputs: centroids are data points, data offset by 1e4.
  for (std::int64_t d : {2, 16, 70}) {
    const std::int64_t n = 3000;
    const int k = 96;
    const auto xf = clustered<float>(n, d, 12, 0.5, 1e4, 21 + d);
    const auto xd = clustered<double>(n, d, 12, 0.5, 1e4, 21 + d);
    std::vector<float> cf(static_cast<std::size_t>(k * d));
    std::vector<double> cd(static_cast<std::size_t>(k * d));
    for (int j = 0; j < k; ++j)
      for (std::int64_t f = 0; f < d; ++f) {
        cf[j * d + f] = xf[((j * 31) % n) * d + f];
        cd[j * d + f] = xd[((j * 31) % n) * d + f];
      }
    for (const auto* table : cpu_tables()) {
      expect_exact(*table, xf, n, d, cf, k, "clustered, offset 1e4");
      expect_exact(*table, xd, n, d, cd, k, "clustered, offset 1e4");
    }
  }
}

// The pool runs every item exactly once, with slots below the thread count, also when called
// nested (then on the caller) and from two threads at once (one of them then runs alone).
TEST(CpuPool, EveryItemOnceAnySlotBelowThreads) {
  for (int threads : {1, 2, 3, 5}) {
    for (std::int64_t n : {0, 1, 2, 7, 1000}) {
      std::vector<std::atomic<int>> hits(static_cast<std::size_t>(n));
      std::atomic<int> bad_slot{0};
      auto f = [&](std::int64_t i, int slot) {
        hits[static_cast<std::size_t>(i)].fetch_add(1);
        if (slot < 0 || slot >= threads) bad_slot.fetch_add(1);
        if (i == 3) {  // nested: runs on this thread, slot 0
          int inner = 0;
          auto g = [&](std::int64_t, int s) { inner += s == 0; };
          cpu::parallel_for(threads, 4, g);
          if (inner != 4) bad_slot.fetch_add(1);
        }
      };
      cpu::parallel_for(threads, n, f);
      for (std::int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << threads << " " << i;
      EXPECT_EQ(bad_slot.load(), 0);
    }
  }
  std::vector<std::atomic<int>> a(5000), b(5000);
  auto fa = [&](std::int64_t i, int) { a[static_cast<std::size_t>(i)].fetch_add(1); };
  auto fb = [&](std::int64_t i, int) { b[static_cast<std::size_t>(i)].fetch_add(1); };
  std::thread other([&] {
    for (int r = 0; r < 50; ++r) cpu::parallel_for(3, 100, fb);
  });
  for (int r = 0; r < 50; ++r) cpu::parallel_for(3, 100, fa);
  other.join();
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(a[i].load(), 50);
    EXPECT_EQ(b[i].load(), 50);
  }
}

TEST(CpuIsaName, UnknownNameSaysUnknownAndListsTheValidOnes) {
  IsaScope scope("sse");
  const float x[] = {1, 2, 3, 4};
  kmeans::Params<float> p;
  p.k = 2;
  p.backend = kmeans::Backend::Cpu;
  try {
    kmeans::fit(x, 4, 1, p);
    ADD_FAILURE() << "an unknown KMEANS_CPU_ISA must be rejected";
  } catch (const kmeans::Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("KMEANS_CPU_ISA = sse is unknown"), std::string::npos) << m;
    EXPECT_NE(m.find("valid: generic, avx2, avx512"), std::string::npos) << m;
    EXPECT_EQ(m.find("not supported"), std::string::npos) << m;
  }
}

TEST(CpuIsaName, KnownNameTheCpuLacksSaysNotSupported) {
  // A CPU that runs only the generic table, asked for avx512.
  const cpu::KernelTable* generic_only[] = {&cpu::kernels_generic()};
  try {
    cpu::select_kernels_from("avx512", generic_only, 1);
    ADD_FAILURE() << "a table the CPU lacks must be rejected";
  } catch (const kmeans::Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("KMEANS_CPU_ISA = avx512 is not supported on this CPU (supported: generic)"),
              std::string::npos)
        << m;
  }
  EXPECT_EQ(&cpu::select_kernels_from("generic", generic_only, 1), &cpu::kernels_generic());
  EXPECT_EQ(&cpu::select_kernels_from(nullptr, generic_only, 1), &cpu::kernels_generic());
}

}  // namespace
