// SPDX-License-Identifier: Apache-2.0
// The GEMM-shaped ranking pass gives the tiled kernel's bits: labels and kept distances of the
// kernel itself (KernelTable::assign vs assign_gemm, every table), and labels, sums, weights, SSE
// and changed counts of the CPU engine forced to each (KMEANS_CPU_KERNEL) or left to the size
// rules, on 1, 2 and 3 threads, weighted and not, float and double.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "cpu_kernel.hpp"
#include "engine.hpp"
#include "cpu_test_support.hpp"
#include "kmeans/kmeans.hpp"
#include "test_helpers.hpp"

namespace {

namespace cpu = kmeans::detail::cpu;
using kmeans_test::EnvScope;
using kmeans_test::cpu_tables;

struct Lcg {
  std::uint64_t s;
  double operator()() {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<double>(s >> 11) * 0x1.0p-53;
  }
};

/// The kinds of data: the shapes the exactness scheme finds hardest.
enum class Kind {
  Blobs,       ///< clusters of spread 1 in [0, 100)^d, centroids sampled from the points
  FarOffset,   ///< tight clusters (spread 1e-3) far from the origin (offset 1e4): many re-checks
  NearTies,    ///< every point midway between two centroids (up to rounding)
  Duplicates,  ///< few distinct rows, repeated centroids (exact ties: the lowest index wins)
  KEqualsN,    ///< k = n, every point its own centroid
};

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::Blobs: return "blobs";
    case Kind::FarOffset: return "far-offset";
    case Kind::NearTies: return "near-ties";
    case Kind::Duplicates: return "duplicates";
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
  p.x.resize(static_cast<std::size_t>(n * d));
  const int clusters = kind == Kind::Duplicates ? 3 : (p.k > 1 ? p.k : 2);
  const double spread = kind == Kind::FarOffset ? 1e-3 : 1.0;
  const double offset = kind == Kind::FarOffset ? 1e4 : 0.0;
  std::vector<double> centre(static_cast<std::size_t>(clusters * d));
  for (auto& v : centre) v = offset + 100 * u();
  for (std::int64_t i = 0; i < n; ++i) {
    const int c = static_cast<int>(u() * clusters);
    for (std::int64_t j = 0; j < d; ++j)
      p.x[i * d + j] = static_cast<T>(centre[c * d + j] +
                                      (kind == Kind::Duplicates ? 0.0 : spread * (u() - 0.5)));
  }
  p.c.resize(static_cast<std::size_t>(p.k * d));
  if (kind == Kind::KEqualsN) {
    p.c = p.x;
  } else if (kind == Kind::NearTies) {
    // Centroids in pairs c, c + delta; every point at the midpoint of a pair (rounded).
    for (int c = 0; c < p.k; ++c)
      for (std::int64_t j = 0; j < d; ++j)
        p.c[c * d + j] = static_cast<T>(centre[(c / 2 % clusters) * d + j] + (c % 2 ? 0.5 : -0.5));
    for (std::int64_t i = 0; i < n; ++i) {
      const int pair = static_cast<int>(u() * (p.k / 2 > 0 ? p.k / 2 : 1));
      for (std::int64_t j = 0; j < d; ++j)
        p.x[i * d + j] = static_cast<T>(centre[(pair % clusters) * d + j]);
    }
  } else {
    for (int c = 0; c < p.k; ++c) {
      const std::int64_t i = kind == Kind::Duplicates ? (c % 5) : static_cast<std::int64_t>(u() * n);
      for (std::int64_t j = 0; j < d; ++j) p.c[c * d + j] = p.x[i * d + j];
    }
  }
  p.w.resize(static_cast<std::size_t>(n));
  for (auto& v : p.w) v = static_cast<T>(0.25 + 2 * u());
  return p;
}

/// The engine's centroid tiles (backend_cpu.cpp make_tiles) and centring vector (data_mean).
template <class T>
void make_tiles(const Problem<T>& p, int tile, std::vector<T>& mean, std::vector<T>& tiles,
                int& n_tiles) {
  const std::int64_t d = p.d;
  std::vector<double> m(static_cast<std::size_t>(d), 0.0);
  for (std::int64_t i = 0; i < p.n; ++i)
    for (std::int64_t j = 0; j < d; ++j) m[j] += static_cast<double>(p.x[i * d + j]);
  mean.resize(static_cast<std::size_t>(d));
  for (std::int64_t j = 0; j < d; ++j) mean[j] = static_cast<T>(m[j] / static_cast<double>(p.n));
  n_tiles = (p.k + tile - 1) / tile;
  tiles.assign(static_cast<std::size_t>(n_tiles) * (d + 1) * tile, T(0));
  for (int tt = 0; tt < n_tiles; ++tt) {
    T* t = tiles.data() + static_cast<std::int64_t>(tt) * (d + 1) * tile;
    for (int l = 0; l < tile; ++l) {
      const int ci = tt * tile + l;
      double norm = 0;
      for (std::int64_t j = 0; j < d; ++j) {
        const double cj = ci < p.k ? static_cast<double>(p.c[ci * d + j]) - mean[j] : 0.0;
        const T r = static_cast<T>(cj);
        t[(j + 1) * tile + l] = r;
        norm += static_cast<double>(r) * static_cast<double>(r);
      }
      t[l] = ci < p.k ? static_cast<T>(0.5 * norm) : static_cast<T>(INFINITY);
    }
  }
}

template <class T>
cpu::AssignFn<T> tiled_of(const cpu::KernelTable& t) {
  if constexpr (sizeof(T) == 4) return t.assign_f; else return t.assign_d;
}
template <class T>
cpu::AssignFn<T> gemm_of(const cpu::KernelTable& t) {
  if constexpr (sizeof(T) == 4) return t.assign_gemm_f; else return t.assign_gemm_d;
}

/// The direct formula in the table's form (as test_cpu_exact.cpp's oracle).
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

/// Both kernels on every table, rows in calls of at most 4096 (the engine's block) starting at
/// a row that is not a multiple of anything: labels and distances bit for bit, and the labels
/// against the oracle.
template <class T>
void expect_kernels_agree(Kind kind, std::int64_t n, std::int64_t d, int k) {
  const Problem<T> p = make_problem<T>(kind, n, d, k, 11 + n * 7 + d * 3 + k);
  for (const auto* table : cpu_tables()) {
    SCOPED_TRACE(std::string(kind_name(kind)) + " isa=" + table->name +
                 (sizeof(T) == 4 ? " float" : " double") + " n=" + std::to_string(n) +
                 " d=" + std::to_string(d) + " k=" + std::to_string(p.k));
    const int tile = sizeof(T) == 4 ? table->tile_f : table->tile_d;
    std::vector<T> mean, tiles;
    int n_tiles = 0;
    make_tiles(p, tile, mean, tiles, n_tiles);
    // A 64-byte aligned copy (the kernels load whole vectors).
    std::vector<T> buf(tiles.size() + 64);
    T* at = buf.data();
    while (reinterpret_cast<std::uintptr_t>(at) % 64) ++at;
    std::memcpy(at, tiles.data(), tiles.size() * sizeof(T));

    std::vector<std::int32_t> lab_t(static_cast<std::size_t>(n)), lab_g(static_cast<std::size_t>(n));
    std::vector<T> dist_t(static_cast<std::size_t>(n)), dist_g(static_cast<std::size_t>(n));
    std::vector<T> scratch(static_cast<std::size_t>(4096 + cpu::gemm_scratch(d)));
    const std::int64_t first = n > 7 ? 7 : n;  // an odd first call, then blocks of 4096
    for (std::int64_t r0 = 0; r0 < n;) {
      const std::int64_t rows = r0 == 0 ? first : (n - r0 < 4096 ? n - r0 : 4096);
      tiled_of<T>(*table)(p.x.data() + r0 * d, rows, d, p.c.data(), p.k, mean.data(), at,
                          n_tiles, lab_t.data() + r0, dist_t.data() + r0, scratch.data());
      gemm_of<T>(*table)(p.x.data() + r0 * d, rows, d, p.c.data(), p.k, mean.data(), at, n_tiles,
                         lab_g.data() + r0, dist_g.data() + r0, scratch.data());
      r0 += rows;
    }
    int wrong = 0;
    for (std::int64_t i = 0; i < n; ++i) {
      if ((lab_t[i] != lab_g[i] || std::memcmp(&dist_t[i], &dist_g[i], sizeof(T)) != 0) &&
          ++wrong <= 5)
        ADD_FAILURE() << "point " << i << ": tiled " << lab_t[i] << " (" << dist_t[i] << "), gemm "
                      << lab_g[i] << " (" << dist_g[i] << ")";
      int best = 0;
      T bd = direct(&p.x[i * d], &p.c[0], d, table->direct_fma);
      for (int c = 1; c < p.k; ++c) {
        const T dc = direct(&p.x[i * d], &p.c[c * d], d, table->direct_fma);
        if (dc < bd) {
          bd = dc;
          best = c;
        }
      }
      if ((lab_g[i] != best || std::memcmp(&dist_g[i], &bd, sizeof(T)) != 0) && ++wrong <= 5)
        ADD_FAILURE() << "point " << i << ": gemm " << lab_g[i] << " (" << dist_g[i]
                      << "), exact argmin " << best << " (" << bd << ")";
    }
    EXPECT_EQ(wrong, 0);
  }
}

struct Shape {
  Kind kind;
  std::int64_t n, d;
  int k;
};

// n not a multiple of 12, 16 or 4096; d = 1, around the chunk of 64 and the rule's 48, wide;
// k = 1, around the tile sizes (8, 16, 32), large.
const Shape kShapes[] = {
    {Kind::Blobs, 301, 1, 1},        {Kind::Blobs, 301, 1, 40},      {Kind::Blobs, 517, 3, 33},
    {Kind::Blobs, 517, 47, 17},      {Kind::Blobs, 517, 48, 64},     {Kind::Blobs, 4099, 64, 100},
    {Kind::Blobs, 333, 65, 31},      {Kind::Blobs, 333, 129, 77},    {Kind::Blobs, 90, 2048, 1},
    {Kind::Blobs, 150, 2048, 40},    {Kind::FarOffset, 601, 8, 50},  {Kind::FarOffset, 601, 96, 50},
    {Kind::FarOffset, 97, 2048, 20}, {Kind::NearTies, 403, 2, 30},   {Kind::NearTies, 403, 70, 34},
    {Kind::NearTies, 61, 2048, 10},  {Kind::Duplicates, 257, 50, 40}, {Kind::Duplicates, 257, 1, 9},
    {Kind::KEqualsN, 150, 1, 0},     {Kind::KEqualsN, 130, 50, 0},   {Kind::KEqualsN, 70, 700, 0},
};

TEST(CpuGemm, KernelLabelsAndDistancesEqualTheTiledKernelsFloat) {
  for (const auto& s : kShapes) expect_kernels_agree<float>(s.kind, s.n, s.d, s.k);
}

TEST(CpuGemm, KernelLabelsAndDistancesEqualTheTiledKernelsDouble) {
  for (const auto& s : kShapes) expect_kernels_agree<double>(s.kind, s.n, s.d, s.k);
}

struct PassResult {
  std::vector<std::int32_t> labels;
  std::vector<double> sums, weights;
  std::vector<kmeans::detail::StepStats> stats;
};

/// Two passes of the CPU engine (the second from the first's means) with KMEANS_CPU_KERNEL =
/// `mode` ("" = the size rules).
template <class T>
PassResult passes(const Problem<T>& p, const char* mode, int threads, bool weighted) {
  EnvScope scope("KMEANS_CPU_KERNEL", mode);
  kmeans::detail::DataView<T> v{p.x.data(), weighted ? p.w.data() : nullptr, p.n, p.d, threads};
  auto engine = kmeans::detail::make_cpu_engine(v);
  PassResult r;
  std::vector<T> c = p.c;
  for (int pass = 0; pass < 2; ++pass) {
    std::vector<double> sums(static_cast<std::size_t>(p.k * p.d)), w(static_cast<std::size_t>(p.k));
    r.stats.push_back(engine->assign(c.data(), p.k, sums.data(), w.data()));
    r.sums.insert(r.sums.end(), sums.begin(), sums.end());
    r.weights.insert(r.weights.end(), w.begin(), w.end());
    for (int q = 0; q < p.k; ++q)
      if (w[q] > 0)
        for (std::int64_t j = 0; j < p.d; ++j)
          c[q * p.d + j] = static_cast<T>(sums[q * p.d + j] / w[q]);
  }
  r.labels.resize(static_cast<std::size_t>(p.n));
  engine->labels(r.labels.data());
  return r;
}

bool same_bits(const std::vector<double>& a, const std::vector<double>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0;
}

template <class T>
void expect_engines_agree(Kind kind, std::int64_t n, std::int64_t d, int k) {
  const Problem<T> p = make_problem<T>(kind, n, d, k, 5 + n + d + k);
  for (const auto* table : cpu_tables()) {
    EnvScope isa("KMEANS_CPU_ISA", table->name);
    for (bool weighted : {false, true}) {
      const PassResult ref = passes(p, "tiled", 1, weighted);
      for (const char* mode : {"tiled", "gemm", ""})
        for (int threads : {1, 2, 3}) {
          SCOPED_TRACE(std::string(kind_name(kind)) + " isa=" + table->name +
                       (sizeof(T) == 4 ? " float" : " double") + " n=" + std::to_string(n) +
                       " d=" + std::to_string(d) + " k=" + std::to_string(p.k) + " mode=" +
                       (*mode ? mode : "rules") + " threads=" + std::to_string(threads) +
                       (weighted ? " weighted" : ""));
          const PassResult r = passes(p, mode, threads, weighted);
          EXPECT_EQ(r.labels, ref.labels);
          EXPECT_TRUE(same_bits(r.sums, ref.sums)) << "per-cluster sums differ";
          EXPECT_TRUE(same_bits(r.weights, ref.weights)) << "per-cluster weights differ";
          ASSERT_EQ(r.stats.size(), ref.stats.size());
          for (std::size_t q = 0; q < r.stats.size(); ++q) {
            EXPECT_EQ(std::memcmp(&r.stats[q].sse, &ref.stats[q].sse, sizeof(double)), 0)
                << "pass " << q << " SSE " << r.stats[q].sse << " vs " << ref.stats[q].sse;
            EXPECT_EQ(r.stats[q].n_changed, ref.stats[q].n_changed) << "pass " << q;
          }
        }
    }
  }
}

TEST(CpuGemm, EngineBitsEqualTheTiledKernelsOnAnyThreadCountFloat) {
  expect_engines_agree<float>(Kind::Blobs, 9001, 64, 70);  // three blocks of 4096, the last short
  expect_engines_agree<float>(Kind::FarOffset, 1500, 2048, 33);
  expect_engines_agree<float>(Kind::Duplicates, 4500, 1, 40);
  expect_engines_agree<float>(Kind::NearTies, 4200, 100, 36);
}

TEST(CpuGemm, EngineBitsEqualTheTiledKernelsOnAnyThreadCountDouble) {
  expect_engines_agree<double>(Kind::Blobs, 9001, 64, 70);
  expect_engines_agree<double>(Kind::FarOffset, 4300, 700, 20);
  expect_engines_agree<double>(Kind::KEqualsN, 300, 49, 0);
}

TEST(CpuGemm, UnknownKernelNameIsAnError) {
  EnvScope scope("KMEANS_CPU_KERNEL", "blas");
  const std::vector<float> x(8, 1.0f);
  kmeans::detail::DataView<float> v{x.data(), nullptr, 4, 2, 1};
  try {
    kmeans::detail::make_cpu_engine(v);
    ADD_FAILURE() << "an unknown KMEANS_CPU_KERNEL must be rejected";
  } catch (const kmeans::Error& e) {
    EXPECT_NE(std::string(e.what()).find("KMEANS_CPU_KERNEL = blas is unknown (valid: tiled, gemm, small_k)"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
