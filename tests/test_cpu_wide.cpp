// SPDX-License-Identifier: Apache-2.0
// The CPU backend on wide rows and few blocks: the small-k kernel's centroid passes (sizes in
// [C, 2C)) and the centroid-lanes kernel give the direct formula's labels and distances, and
// the engine gives the same bits on 1, 2 and 3 threads when n spans one to three blocks of 4096
// points, with either kernel.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "cpu_kernel.hpp"
#include "cpu_test_support.hpp"
#include "engine.hpp"
#include "kmeans/kmeans.hpp"
#include "test_helpers.hpp"

namespace {

namespace cpu = kmeans::detail::cpu;
using kmeans_test::cpu_tables;
using kmeans_test::EnvScope;

struct Lcg {
  std::uint64_t s;
  double operator()() {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<double>(s >> 11) * 0x1.0p-53;
  }
};

enum class Kind {
  Blobs,       ///< clusters of spread 1 in [0, 100)^d, centroids sampled from the points
  Duplicates,  ///< three distinct rows, centroids repeated (exact ties: the lowest index wins)
  NearTies,    ///< points midway between centroid pairs (up to rounding)
  Empty,       ///< blobs, half the centroids far away (empty clusters)
  KEqualsN,    ///< every point its own centroid
};

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::Blobs: return "blobs";
    case Kind::Duplicates: return "duplicates";
    case Kind::NearTies: return "near-ties";
    case Kind::Empty: return "empty";
    default: return "k=n";
  }
}

template <class T>
struct Problem {
  std::int64_t n, d;
  int k;
  std::vector<T> x, c, w;
};

template <class T>
Problem<T> make_problem(Kind kind, std::int64_t n, std::int64_t d, int k, std::uint64_t seed) {
  Lcg u{seed};
  Problem<T> p{n, d, kind == Kind::KEqualsN ? static_cast<int>(n) : k, {}, {}, {}};
  const int clusters = kind == Kind::Duplicates ? 3 : (p.k > 1 ? p.k : 2);
  std::vector<double> centre(static_cast<std::size_t>(clusters * d));
  for (auto& v : centre) v = 100 * u();
  p.x.resize(static_cast<std::size_t>(n * d));
  for (std::int64_t i = 0; i < n; ++i) {
    const int c = static_cast<int>(u() * clusters);
    for (std::int64_t j = 0; j < d; ++j)
      p.x[i * d + j] =
          static_cast<T>(centre[c * d + j] + (kind == Kind::Duplicates ? 0.0 : u() - 0.5));
  }
  p.c.resize(static_cast<std::size_t>(p.k * d));
  if (kind == Kind::KEqualsN) {
    p.c = p.x;
  } else if (kind == Kind::NearTies) {
    for (int c = 0; c < p.k; ++c)
      for (std::int64_t j = 0; j < d; ++j)
        p.c[c * d + j] = static_cast<T>(centre[(c / 2 % clusters) * d + j] + (c % 2 ? 0.5 : -0.5));
    for (std::int64_t i = 0; i < n; ++i) {
      const int pair = static_cast<int>(u() * (p.k / 2 > 0 ? p.k / 2 : 1));
      for (std::int64_t j = 0; j < d; ++j) p.x[i * d + j] = static_cast<T>(centre[(pair % clusters) * d + j]);
    }
  } else {
    for (int c = 0; c < p.k; ++c) {
      const std::int64_t i = kind == Kind::Duplicates ? (c % 5) : static_cast<std::int64_t>(u() * n);
      const bool far = kind == Kind::Empty && c % 2 == 1;
      for (std::int64_t j = 0; j < d; ++j)
        p.c[c * d + j] = far ? static_cast<T>(1e4 + c) : p.x[i * d + j];
    }
  }
  p.w.resize(static_cast<std::size_t>(n));
  for (auto& v : p.w) v = static_cast<T>(0.25 + 2 * u());
  return p;
}

/// The direct formula sum_j (x_j - c_j)^2 in T, in the table's form (with or without FMA).
template <class T>
T direct(const T* a, const T* b, std::int64_t d, bool fma) {
  T s = 0;
  for (std::int64_t j = 0; j < d; ++j) {
    const T diff = a[j] - b[j];
    s = fma ? std::fma(diff, diff, s) : s + diff * diff;
  }
  return s;
}

/// Labels (ties to the lowest index) and distances of the direct formula.
template <class T>
void oracle(const Problem<T>& p, bool fma, std::vector<std::int32_t>& lab, std::vector<T>& dist) {
  lab.assign(static_cast<std::size_t>(p.n), -1);
  dist.assign(static_cast<std::size_t>(p.n), T(0));
  for (std::int64_t i = 0; i < p.n; ++i) {
    T best = 0;
    for (int c = 0; c < p.k; ++c) {
      const T v = direct(p.x.data() + i * p.d, p.c.data() + static_cast<std::int64_t>(c) * p.d, p.d, fma);
      if (c == 0 || v < best) {
        best = v;
        lab[i] = c;
      }
    }
    dist[i] = best;
  }
}

template <class T>
cpu::AssignSmallKFn<T> small_k_of(const cpu::KernelTable& t) {
  if constexpr (sizeof(T) == 4)
    return t.assign_small_k_f;
  else
    return t.assign_small_k_d;
}

bool same_bits(const void* a, const void* b, std::size_t bytes) { return std::memcmp(a, b, bytes) == 0; }

/// run(table, labels, dist) on every table gives the direct formula's labels and the same bits of
/// its distances, into outputs poisoned first.
template <class T, class Run>
void expect_direct_formula(Kind kind, const Problem<T>& p, Run run) {
  for (const auto* table : cpu_tables()) {
    SCOPED_TRACE(std::string(kind_name(kind)) + " isa=" + table->name + (sizeof(T) == 4 ? " float" : " double") +
                 " n=" + std::to_string(p.n) + " d=" + std::to_string(p.d) + " k=" + std::to_string(p.k));
    std::vector<std::int32_t> want_lab;
    std::vector<T> want_dist;
    oracle(p, table->direct_fma, want_lab, want_dist);
    std::vector<std::int32_t> lab(static_cast<std::size_t>(p.n), -7);
    std::vector<T> dist(static_cast<std::size_t>(p.n), std::nan(""));  // poisoned
    run(*table, lab.data(), dist.data());
    EXPECT_EQ(lab, want_lab);
    EXPECT_TRUE(same_bits(dist.data(), want_dist.data(), dist.size() * sizeof(T))) << "distances differ";
  }
}

/// The small-k kernel on wide rows (the chunked path, d > 8) for k = 1..17 and larger: every
/// grouping of the centroid passes, and rows not a multiple of the group of points.
template <class T>
void small_k_kernel_case(Kind kind, std::int64_t n, std::int64_t d, int k) {
  const Problem<T> p = make_problem<T>(kind, n, d, k, 11 + n * 7 + d * 3 + k);
  expect_direct_formula(kind, p, [&](const cpu::KernelTable& t, std::int32_t* lab, T* dist) {
    small_k_of<T>(t)(p.x.data(), n, d, p.c.data(), p.k, lab, dist);
  });
}

TEST(CpuWide, SmallKKernelCentroidPassesGiveTheDirectFormulaFloat) {
  for (int k = 1; k <= 17; ++k) small_k_kernel_case<float>(Kind::Blobs, 77, 130, k);
  for (int k : {5, 10, 31, 33, 64}) small_k_kernel_case<float>(Kind::Blobs, 45, 784, k);
  for (int k : {7, 10, 32}) small_k_kernel_case<float>(Kind::Blobs, 33, 2048, k);
  // Rows a multiple of 4 KiB apart go through the staged transpose (cpu_kernel_small_k.inl).
  small_k_kernel_case<float>(Kind::NearTies, 37, 1024, 12);
  small_k_kernel_case<float>(Kind::Duplicates, 19, 3072, 9);
  for (int k : {6, 11}) small_k_kernel_case<float>(Kind::Blobs, 50, 9, k);
  small_k_kernel_case<float>(Kind::Duplicates, 70, 784, 10);
  small_k_kernel_case<float>(Kind::NearTies, 70, 784, 10);
  small_k_kernel_case<float>(Kind::NearTies, 40, 65, 14);
  small_k_kernel_case<float>(Kind::KEqualsN, 13, 784, 0);
}

TEST(CpuWide, SmallKKernelCentroidPassesGiveTheDirectFormulaDouble) {
  for (int k = 1; k <= 17; ++k) small_k_kernel_case<double>(Kind::Blobs, 77, 130, k);
  for (int k : {5, 10, 33}) small_k_kernel_case<double>(Kind::Blobs, 45, 784, k);
  small_k_kernel_case<double>(Kind::Blobs, 21, 2048, 10);
  small_k_kernel_case<double>(Kind::NearTies, 27, 512, 6);  // rows 4 KiB apart: staged
  small_k_kernel_case<double>(Kind::Duplicates, 70, 784, 10);
  small_k_kernel_case<double>(Kind::NearTies, 70, 100, 10);
  small_k_kernel_case<double>(Kind::KEqualsN, 13, 300, 0);
}

template <class T>
cpu::AssignCentroidLanesFn<T> lanes_of(const cpu::KernelTable& t) {
  if constexpr (sizeof(T) == 4)
    return t.assign_centroid_lanes_f;
  else
    return t.assign_centroid_lanes_d;
}

/// The centroid-lanes kernel from its transposed, +inf-padded layout: every count of vectors and
/// passes (k up to 70 crosses 1 to 5 passes on AVX-512 and more on narrower tables), rows not a
/// multiple of the group of points, rows with no whole cache line (d < 16) and tails.
template <class T>
void lanes_kernel_case(Kind kind, std::int64_t n, std::int64_t d, int k) {
  const Problem<T> p = make_problem<T>(kind, n, d, k, 5 + n * 3 + d * 7 + k);
  const std::int64_t kp = cpu::centroid_lanes_kp(p.k);
  ASSERT_EQ(kp % cpu::kCentroidLanesPad, 0);
  ASSERT_GE(kp, p.k);
  std::vector<T> storage(static_cast<std::size_t>(d * kp + 64 / sizeof(T)));
  T* ct = storage.data();
  while (reinterpret_cast<std::uintptr_t>(ct) % 64 != 0) ++ct;
  for (std::int64_t j = 0; j < d; ++j)
    for (std::int64_t c = 0; c < kp; ++c)
      ct[j * kp + c] = c < p.k ? p.c[c * d + j] : static_cast<T>(INFINITY);
  expect_direct_formula(kind, p, [&](const cpu::KernelTable& t, std::int32_t* lab, T* dist) {
    lanes_of<T>(t)(p.x.data(), n, d, ct, p.k, lab, dist);
  });
}

TEST(CpuWide, CentroidLanesKernelGivesTheDirectFormulaFloat) {
  for (int k = 1; k <= 17; ++k) lanes_kernel_case<float>(Kind::Blobs, 29, 130, k);
  for (int k : {24, 31, 32, 33, 48, 49, 64, 65, 70}) lanes_kernel_case<float>(Kind::Blobs, 31, 784, k);
  lanes_kernel_case<float>(Kind::Blobs, 13, 2048, 32);
  for (std::int64_t d : {1, 3, 15, 16, 17, 65}) lanes_kernel_case<float>(Kind::Blobs, 23, d, 20);
  lanes_kernel_case<float>(Kind::NearTies, 37, 1024, 12);
  lanes_kernel_case<float>(Kind::NearTies, 40, 200, 64);
  lanes_kernel_case<float>(Kind::Duplicates, 19, 300, 48);  // exact ties across passes
  lanes_kernel_case<float>(Kind::Empty, 33, 257, 40);
  lanes_kernel_case<float>(Kind::KEqualsN, 13, 784, 0);
  // Many passes (the ranking shapes it takes on AMD CPUs): k up to 600, narrow rows.
  for (int k : {100, 257, 600}) lanes_kernel_case<float>(Kind::Blobs, 21, 4, k);
  lanes_kernel_case<float>(Kind::NearTies, 30, 16, 256);
  lanes_kernel_case<float>(Kind::Duplicates, 25, 32, 130);
  lanes_kernel_case<float>(Kind::KEqualsN, 150, 8, 0);
}

TEST(CpuWide, CentroidLanesKernelGivesTheDirectFormulaDouble) {
  for (int k = 1; k <= 17; ++k) lanes_kernel_case<double>(Kind::Blobs, 29, 130, k);
  for (int k : {24, 32, 40, 64}) lanes_kernel_case<double>(Kind::Blobs, 31, 784, k);
  for (std::int64_t d : {1, 7, 8, 9}) lanes_kernel_case<double>(Kind::Blobs, 23, d, 12);
  lanes_kernel_case<double>(Kind::NearTies, 27, 512, 6);
  lanes_kernel_case<double>(Kind::Duplicates, 19, 300, 30);
  lanes_kernel_case<double>(Kind::KEqualsN, 13, 300, 0);
  lanes_kernel_case<double>(Kind::NearTies, 30, 16, 140);
  lanes_kernel_case<double>(Kind::KEqualsN, 90, 5, 0);
}

struct PassResult {
  std::vector<std::int32_t> labels;
  std::vector<double> sums, weights;
  std::vector<kmeans::detail::StepStats> stats;
};

/// Two passes of the CPU engine, the second from the first's means.
template <class T>
PassResult passes(const Problem<T>& p, int threads, bool weighted, bool bucket) {
  kmeans::detail::DataView<T> v{p.x.data(), weighted ? p.w.data() : nullptr, p.n, p.d, threads};
  auto engine = bucket ? kmeans::detail::make_cpu_engine(v, 0) : kmeans::detail::make_cpu_engine(v);
  PassResult r;
  std::vector<T> c = p.c;
  for (int pass = 0; pass < 2; ++pass) {
    std::vector<double> sums(static_cast<std::size_t>(p.k * p.d), std::nan(""));
    std::vector<double> w(static_cast<std::size_t>(p.k), std::nan(""));
    r.stats.push_back(engine->assign(c.data(), p.k, sums.data(), w.data()));
    r.sums.insert(r.sums.end(), sums.begin(), sums.end());
    r.weights.insert(r.weights.end(), w.begin(), w.end());
    for (int q = 0; q < p.k; ++q)
      if (w[q] > 0)
        for (std::int64_t j = 0; j < p.d; ++j) c[q * p.d + j] = static_cast<T>(sums[q * p.d + j] / w[q]);
  }
  r.labels.resize(static_cast<std::size_t>(p.n));
  engine->labels(r.labels.data());
  return r;
}

/// The engine on 1, 2 and 3 threads: the same bits; the first pass's labels
/// and its sums against the direct formula's labels (sums in row order, in double).
template <class T>
void engine_case(Kind kind, std::int64_t n, std::int64_t d, int k, bool bucket = false,
                 const char* kernel = "") {
  const Problem<T> p = make_problem<T>(kind, n, d, k, 3 + n + d * 5 + k);
  EnvScope forced("KMEANS_CPU_KERNEL", kernel);
  for (const auto* table : cpu_tables()) {
    EnvScope isa("KMEANS_CPU_ISA", table->name);
    std::vector<std::int32_t> want_lab;
    std::vector<T> want_dist;
    oracle(p, table->direct_fma, want_lab, want_dist);
    for (bool weighted : {false, true}) {
      const PassResult ref = passes(p, 1, weighted, bucket);
      // The first pass's sums and weights by the direct formula's labels, within rounding.
      std::vector<double> s(static_cast<std::size_t>(p.k * d), 0.0), w(static_cast<std::size_t>(p.k), 0.0);
      for (std::int64_t i = 0; i < n; ++i) {
        const double wi = weighted ? static_cast<double>(p.w[i]) : 1.0;
        for (std::int64_t j = 0; j < d; ++j) s[want_lab[i] * d + j] += wi * static_cast<double>(p.x[i * d + j]);
        w[want_lab[i]] += wi;
      }
      for (int c = 0; c < p.k; ++c) {
        ASSERT_NEAR(ref.weights[c], w[c], 1e-9 * (1 + w[c])) << "cluster " << c;
        for (std::int64_t j = 0; j < d; j += 97)
          ASSERT_NEAR(ref.sums[c * d + j], s[c * d + j], 1e-9 * (1 + std::fabs(s[c * d + j])));
      }
      for (int threads : {2, 3}) {
        SCOPED_TRACE(std::string(kind_name(kind)) + " isa=" + table->name +
                     (sizeof(T) == 4 ? " float" : " double") + " n=" + std::to_string(n) +
                     " d=" + std::to_string(d) + " k=" + std::to_string(p.k) +
                     " threads=" + std::to_string(threads) + (weighted ? " weighted" : "") +
                     (bucket ? " bucket" : "") + " kernel=" + kernel);
        const PassResult r = passes(p, threads, weighted, bucket);
        EXPECT_EQ(r.labels, ref.labels);
        EXPECT_TRUE(same_bits(r.sums.data(), ref.sums.data(), r.sums.size() * sizeof(double)))
            << "per-cluster sums differ";
        EXPECT_TRUE(same_bits(r.weights.data(), ref.weights.data(), r.weights.size() * sizeof(double)))
            << "per-cluster weights differ";
        ASSERT_EQ(r.stats.size(), ref.stats.size());
        for (std::size_t q = 0; q < r.stats.size(); ++q) {
          EXPECT_TRUE(same_bits(&r.stats[q].sse, &ref.stats[q].sse, sizeof(double)))
              << "pass " << q << " SSE " << r.stats[q].sse << " vs " << ref.stats[q].sse;
          EXPECT_EQ(r.stats[q].n_changed, ref.stats[q].n_changed) << "pass " << q;
        }
      }
    }
  }
}

TEST(CpuWide, FewBlocksGiveTheSameBitsOnAnyThreadCountFloat) {
  engine_case<float>(Kind::Blobs, 5000, 2048, 32);   // blocks of 4096 and 904 (centroid lanes)
  engine_case<float>(Kind::Blobs, 5000, 2048, 32, false, "small_k");
  engine_case<float>(Kind::NearTies, 4200, 96, 16);  // centroid lanes at d just over a chunk
  engine_case<float>(Kind::Blobs, 5000, 16, 256);    // centroid lanes for the ranking on AMD CPUs
  engine_case<float>(Kind::Blobs, 4097, 784, 10);    // a block and one row
  engine_case<float>(Kind::Blobs, 3001, 784, 10);    // one block
  engine_case<float>(Kind::Blobs, 9001, 784, 3);     // three blocks
  engine_case<float>(Kind::Empty, 5000, 300, 12);
  engine_case<float>(Kind::Duplicates, 4500, 257, 9);
  engine_case<float>(Kind::Blobs, 5000, 1, 300);     // d = 1, k * 2 too many to interleave
  engine_case<float>(Kind::KEqualsN, 700, 784, 0);
  engine_case<float>(Kind::Blobs, 5000, 2048, 1);
  engine_case<float>(Kind::Blobs, 6000, 600, 40, true);  // the bucket path for the sums
}

TEST(CpuWide, FewBlocksGiveTheSameBitsOnAnyThreadCountDouble) {
  engine_case<double>(Kind::Blobs, 5000, 1024, 20);
  engine_case<double>(Kind::Blobs, 5000, 1024, 20, false, "small_k");
  engine_case<double>(Kind::NearTies, 5000, 8, 256);  // centroid lanes for the ranking on AMD CPUs
  engine_case<double>(Kind::Blobs, 4097, 784, 10);
  engine_case<double>(Kind::Empty, 3001, 300, 12);
  engine_case<double>(Kind::Duplicates, 4500, 257, 9);
  engine_case<double>(Kind::Blobs, 5000, 1, 300);
  engine_case<double>(Kind::KEqualsN, 500, 300, 0);
  engine_case<double>(Kind::Blobs, 6000, 600, 40, true);
}

}  // namespace
