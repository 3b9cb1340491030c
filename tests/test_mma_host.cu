// SPDX-License-Identifier: Apache-2.0
// Host emulation of the TF32 tensor-core assignment (kernels/mma_rank.cuh): the kernel's
// arithmetic (centring, TF32 rounding, bounds, candidate lists, exact recheck) run on the host
// with the same __host__ __device__ functions and a software mma in several accumulation
// orders, against the direct formula (labels and distances bit for bit) and against the proven
// bound. No CUDA runtime call: these run on machines without a GPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/assign.cuh"
#include "kernels/mma_rank.cuh"
#include "kernels/tuning.cuh"

namespace kmeans::detail {
namespace {

namespace tn = tuning;

float bits_to_float(std::uint32_t b) {
  float f;
  std::memcpy(&f, &b, sizeof f);
  return f;
}
std::uint32_t float_to_bits(float f) {
  std::uint32_t b;
  std::memcpy(&b, &f, sizeof b);
  return b;
}

/// The nearest TF32 value of v (10 fraction bits), ties away from zero, from first principles:
/// the two TF32 neighbours of v compared in double.
float tf32_reference(float v) {
  const std::uint32_t b = float_to_bits(v);
  const float down = bits_to_float(b & 0xFFFFE000u);  // towards zero
  const float away = bits_to_float((b & 0xFFFFE000u) + 0x2000u);
  const double dd = std::abs(static_cast<double>(v) - down);
  const double da = std::abs(static_cast<double>(away) - v);
  return da <= dd ? away : down;  // a tie goes away from zero
}

TEST(MmaHostTf32, RoundingIsNearestTiesAway) {
  EXPECT_EQ(tf32_round(1.0f), 1.0f);
  EXPECT_EQ(tf32_round(1.0f + 0x1p-11f), 1.0f + 0x1p-10f);    // tie: away
  EXPECT_EQ(tf32_round(-1.0f - 0x1p-11f), -1.0f - 0x1p-10f);  // tie: away (negative)
  EXPECT_EQ(tf32_round(1.0f + 0x1p-11f - 0x1p-23f), 1.0f);    // just below the tie
  EXPECT_EQ(tf32_round(2.0f - 0x1p-23f), 2.0f);               // carries into the exponent
  EXPECT_EQ(tf32_round(0.0f), 0.0f);
  std::mt19937 gen(1);
  std::uniform_int_distribution<std::uint32_t> bits(0, 0xFFFFFFFFu);
  int tested = 0;
  while (tested < 200000) {
    const float v = bits_to_float(bits(gen));
    if (!std::isfinite(v) || std::abs(v) > 1e38f) continue;
    ++tested;
    const float r = tf32_round(v);
    ASSERT_EQ(float_to_bits(r) & 0x1FFFu, 0u) << v;
    ASSERT_EQ(r, tf32_reference(v)) << v;
    if (std::abs(v) >= 0x1p-126f)  // normal: the unit roundoff the bound uses
      ASSERT_LE(std::abs(static_cast<double>(r) - v), 0x1p-11 * std::abs(static_cast<double>(v)));
  }
}

TEST(MmaHostBound, RoundUpIsTheSmallestFloatAbove) {
  std::mt19937_64 gen(2);
  std::uniform_real_distribution<double> u(-40, 40);
  for (int t = 0; t < 100000; ++t) {
    const double v = std::exp2(u(gen));
    const float f = mma_round_up(v);
    ASSERT_GE(static_cast<double>(f), v);
    ASSERT_LT(static_cast<double>(nextafterf(f, 0.f)), v);
  }
  EXPECT_EQ(mma_round_up(1.0), 1.0f);
}

/// The software mma's accumulation orders: the hardware's is unspecified, the bound must hold
/// for any. Products of TF32 values are exact in float.
enum class Order { Forward, Reverse, Blocked8, Truncating };
const Order kOrders[] = {Order::Forward, Order::Reverse, Order::Blocked8, Order::Truncating};

float product(const float* a, const float* b, std::int64_t dp, Order order) {
  float acc = 0;
  switch (order) {
    case Order::Forward:
      for (std::int64_t j = 0; j < dp; ++j) acc = fmaf(a[j], b[j], acc);
      break;
    case Order::Reverse:
      for (std::int64_t j = dp - 1; j >= 0; --j) acc = fmaf(a[j], b[j], acc);
      break;
    case Order::Blocked8:  // a k-step summed at once, then one rounding into the accumulator
      for (std::int64_t j0 = 0; j0 < dp; j0 += 8) {
        double block = 0;
        for (std::int64_t j = j0; j < j0 + 8 && j < dp; ++j)
          block += static_cast<double>(a[j]) * static_cast<double>(b[j]);
        acc = static_cast<float>(static_cast<double>(acc) + block);
      }
      break;
    case Order::Truncating:  // every addition rounded towards zero
      for (std::int64_t j = 0; j < dp; ++j) {
        const double s = static_cast<double>(acc) + static_cast<double>(a[j]) * b[j];
        float f = static_cast<float>(s);
        if (std::abs(static_cast<double>(f)) > std::abs(s)) f = nextafterf(f, 0.f);
        acc = f;
      }
      break;
  }
  return acc;
}

/// The kernel's lane-strided sums over 32 lanes followed by its xor butterfly.
template <class V>
V butterfly(std::vector<V> part) {
  for (int off = 16; off > 0; off /= 2) {
    std::vector<V> next(32);
    for (int l = 0; l < 32; ++l) next[l] = part[l] + part[l ^ off];
    part = next;
  }
  return part[0];
}

/// The centred operands and terms mma_centre_kernel writes and the point tile's, on the host.
struct Operands {
  std::int64_t d = 0, dp = 0;
  int k = 0, k_pad = 0;
  std::vector<float> centred;  // k_pad x dp
  std::vector<MmaTerms> terms;
};

Operands centre_centroids(const float* c, int k, std::int64_t d, const double* mean) {
  Operands o;
  o.d = d;
  o.dp = tn::mma_dim_pad(d);
  o.k = k;
  o.k_pad = static_cast<int>(tn::mma_k_pad(k));
  o.centred.assign(static_cast<std::size_t>(o.k_pad * o.dp), 0.f);
  o.terms.assign(static_cast<std::size_t>(o.k_pad), MmaTerms{});
  for (int j = 0; j < k; ++j) {
    std::vector<double> part(32, 0.0);
    for (int lane = 0; lane < 32; ++lane)
      mma_centre_part(c + j * d, mean, d, o.dp, lane, 32, o.centred.data() + j * o.dp, part[lane]);
    o.terms[j] = mma_centroid_terms(butterfly(part), d);
  }
  return o;
}

struct CentredPoint {
  std::vector<float> xt;  // dp, tf32(x')
  std::vector<float> xc;  // d, x' (unrounded)
  MmaRowTerms rt;
};

CentredPoint centre_point(const float* x, std::int64_t d, std::int64_t dp, const double* mean) {
  CentredPoint p;
  p.xt.assign(static_cast<std::size_t>(dp), 0.f);
  std::vector<float> part(32, 0.f);
  for (int lane = 0; lane < 32; ++lane)
    mma_point_part(x, mean, d, dp, lane, 32, p.xt.data(), part[lane]);
  p.rt = mma_row_terms(butterfly(part), d);
  p.xc.resize(static_cast<std::size_t>(d));
  for (std::int64_t j = 0; j < d; ++j) p.xc[j] = x[j] - static_cast<float>(mean[j]);
  return p;
}

struct EmuStats {
  std::int64_t rows = 0;
  std::int64_t listed = 0;      ///< list entries at the end (some may fail the final threshold)
  std::int64_t candidates = 0;  ///< entries rechecked exactly at the end (lo <= the threshold)
  std::int64_t flushes = 0;     ///< full lists flushed into the running exact argmin
  std::int64_t full_scans = 0;  ///< points with no candidate at all (every centroid checked)
};

/// One point through the kernel's steps: centroid tiles of kMmaCols, the running minimum and
/// threshold after each tile, each quad lane's list of kMmaCandidates (its columns 8 nt + 2 tq
/// + e of each tile, in that order) flushed when full, the exact recheck merged over the
/// lanes, the full scan when nothing was a candidate.
void emulate_point(const float* x, const float* c, const Operands& o, const double* mean,
                   Order order, int& label_out, float& dist_out, EmuStats& stats) {
  constexpr int kCap = tn::kMmaCandidates;
  const CentredPoint p = centre_point(x, o.d, o.dp, mean);
  float lo_list[4][kCap], min_up = positive_infinity<float>(), thr = positive_infinity<float>();
  int idx_list[4][kCap], count[4] = {0, 0, 0, 0};
  MmaBest lane_best[4];
  int flushes = 0;
  std::vector<MmaBounds> b(tn::kMmaCols);
  for (int c0 = 0; c0 < o.k_pad; c0 += tn::kMmaCols) {
    for (int q = 0; q < tn::kMmaCols; ++q) {
      const float g = product(p.xt.data(), o.centred.data() + (c0 + q) * o.dp, o.dp, order);
      b[q] = mma_bounds(o.terms[c0 + q], g, p.rt.x_norm);
      if (c0 + q < o.k) min_up = fminf(min_up, b[q].up);
    }
    thr = mma_threshold(min_up, p.rt.rho2);
    for (int tq = 0; tq < 4; ++tq)
      for (int nt = 0; nt < tn::kMmaCols / 8; ++nt)
        for (int e = 0; e < 2; ++e) {
          const int q = nt * 8 + 2 * tq + e;
          if (c0 + q < o.k && b[q].lo <= thr)
            mma_push(lo_list[tq], idx_list[tq], 1, count[tq], b[q].lo, c0 + q, thr, x, c, o.d,
                     lane_best[tq], flushes);
        }
  }
  stats.flushes += flushes;
  MmaBest merged;
  for (int tq = 0; tq < 4; ++tq) {
    stats.listed += count[tq];
    for (int q = 0; q < count[tq]; ++q) stats.candidates += lo_list[tq][q] <= thr ? 1 : 0;
    const MmaBest lb = mma_pick(lo_list[tq], idx_list[tq], 1, count[tq], thr, x, c, o.d,
                                lane_best[tq]);
    argmin_merge(lb.dist, lb.index, merged.dist, merged.index);
  }
  float best = merged.dist;
  int label = merged.index;
  if (label == INT_MAX) {
    ++stats.full_scans;
    for (int tq = 0; tq < 4; ++tq) {
      float lb = positive_infinity<float>();
      int ll = INT_MAX;
      for (int j = tq; j < o.k; j += 4) argmin_update(squared_distance(x, c + j * o.d, o.d), j, lb, ll);
      argmin_merge(lb, ll, best, label);
    }
  }
  if (label == INT_MAX) {
    label = 0;
    best = squared_distance(x, c, o.d);
  }
  ++stats.rows;
  label_out = label;
  dist_out = best;
}

/// The direct formula's argmin, ties to the lowest index.
void direct_argmin(const float* x, const float* c, int k, std::int64_t d, int& label, float& best) {
  best = positive_infinity<float>();
  label = 0;
  for (int j = 0; j < k; ++j) argmin_update(squared_distance(x, c + j * d, d), j, best, label);
}

/// The data mean in double, as column_means_kernel gives it (any fixed centre is exact).
std::vector<double> mean_of(const std::vector<float>& x, std::int64_t n, std::int64_t d) {
  std::vector<double> m(static_cast<std::size_t>(d), 0.0);
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < d; ++j) m[j] += x[i * d + j];
  for (auto& v : m) v /= static_cast<double>(n);
  return m;
}

enum class Data { Uniform, FarBlobs, NearTies, Duplicates };

struct Case {
  std::vector<float> x, c;
  std::int64_t n = 0, d = 0;
  int k = 0;
};

/// Points and centroids of one kind: uniform in [-1, 1]; blobs 1e4 from the origin; points on
/// the bisector of two close centroids (equidistant up to rounding), far from the origin; or
/// centroids repeated many times (exact ties, and lists that overflow).
Case make_case(Data kind, std::int64_t n, std::int64_t d, int k, std::uint32_t seed) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<double> u(-1, 1);
  std::normal_distribution<double> gn(0, 1);
  Case cs;
  cs.n = n;
  cs.d = d;
  cs.k = k;
  cs.x.resize(static_cast<std::size_t>(n * d));
  cs.c.resize(static_cast<std::size_t>(k) * d);
  switch (kind) {
    case Data::Uniform:
      for (auto& v : cs.x) v = static_cast<float>(u(gen));
      for (auto& v : cs.c) v = static_cast<float>(u(gen));
      break;
    case Data::FarBlobs: {
      const int blobs = std::max(1, k / 4);
      std::vector<double> ctr(static_cast<std::size_t>(blobs * d));
      for (auto& v : ctr) v = 1e4 + 3 * u(gen);
      for (std::int64_t i = 0; i < n; ++i)
        for (std::int64_t j = 0; j < d; ++j)
          cs.x[i * d + j] = static_cast<float>(ctr[(i % blobs) * d + j] + 0.3 * gn(gen));
      for (int q = 0; q < k; ++q)
        for (std::int64_t j = 0; j < d; ++j)
          cs.c[q * d + j] = static_cast<float>(ctr[(q % blobs) * d + j] + 0.1 * gn(gen));
      break;
    }
    case Data::NearTies: {
      for (auto& v : cs.c) v = static_cast<float>(1e3 + u(gen));
      for (std::int64_t i = 0; i < n; ++i) {
        const int a = static_cast<int>(i % k), b = static_cast<int>((i * 7 + 1) % k);
        for (std::int64_t j = 0; j < d; ++j) {
          // The midpoint of centroids a and b, nudged by a few float ulps.
          const double mid = 0.5 * (static_cast<double>(cs.c[a * d + j]) + cs.c[b * d + j]);
          cs.x[i * d + j] = static_cast<float>(mid + 1e-4 * u(gen));
        }
      }
      // Two centroids closer to every point than the rest, differing by tiny amounts.
      break;
    }
    case Data::Duplicates: {
      std::vector<float> one(static_cast<std::size_t>(d));
      for (auto& v : one) v = static_cast<float>(u(gen));
      for (int q = 0; q < k; ++q)
        for (std::int64_t j = 0; j < d; ++j)
          cs.c[q * d + j] = q % 3 == 2 ? static_cast<float>(u(gen) + 5) : one[j];
      for (std::int64_t i = 0; i < n; ++i)
        for (std::int64_t j = 0; j < d; ++j)
          cs.x[i * d + j] = one[j] + static_cast<float>(0.01 * u(gen));
      break;
    }
  }
  return cs;
}

/// Every point of the case through the emulated kernel in every accumulation order: the
/// direct formula's label and distance bits.
void check_labels(const Case& cs, const std::string& what, EmuStats& stats) {
  SCOPED_TRACE(what + " n=" + std::to_string(cs.n) + " d=" + std::to_string(cs.d) +
               " k=" + std::to_string(cs.k));
  const std::vector<double> mean = mean_of(cs.x, cs.n, cs.d);
  const Operands o = centre_centroids(cs.c.data(), cs.k, cs.d, mean.data());
  for (const Order order : kOrders) {
    for (std::int64_t i = 0; i < cs.n; ++i) {
      const float* xi = cs.x.data() + i * cs.d;
      int label, want;
      float dist, want_dist;
      emulate_point(xi, cs.c.data(), o, mean.data(), order, label, dist, stats);
      direct_argmin(xi, cs.c.data(), cs.k, cs.d, want, want_dist);
      ASSERT_EQ(label, want) << "point " << i << " order " << static_cast<int>(order);
      ASSERT_EQ(float_to_bits(dist), float_to_bits(want_dist)) << "point " << i;
    }
  }
}

EmuStats check_labels(const Case& cs, const std::string& what) {
  EmuStats stats;
  check_labels(cs, what, stats);
  return stats;
}

TEST(MmaHostEmulation, LabelsAreTheDirectFormulasOnManyShapes) {
  std::uint32_t seed = 10;
  for (const std::int64_t d : {1, 2, 7, 8, 16, 31, 33, 64, 100, 128, 129, 256, 300}) {
    for (const int k : {1, 2, 5, 63, 64, 65, 130, 700, 2000}) {
      const std::int64_t n = std::max<std::int64_t>(8, std::min<std::int64_t>(150, 400000 / (k * d)));
      for (const Data kind : {Data::Uniform, Data::FarBlobs}) {
        check_labels(make_case(kind, n, d, k, ++seed), kind == Data::Uniform ? "uniform" : "far");
        if (HasFatalFailure()) return;
      }
    }
  }
}

TEST(MmaHostEmulation, NearTiesGetTheDirectFormulasLabels) {
  std::uint32_t seed = 100;
  for (const std::int64_t d : {1, 3, 16, 64, 128, 256}) {
    for (const int k : {2, 3, 64, 200}) {
      check_labels(make_case(Data::NearTies, 300, d, k, ++seed), "near ties");
      if (HasFatalFailure()) return;
    }
  }
}

TEST(MmaHostEmulation, KEqualsNAndOnePoint) {
  for (const std::int64_t d : {1, 16, 129}) {
    Case cs = make_case(Data::Uniform, 300, d, 300, 7);
    cs.c = cs.x;  // every point is a centroid: distance 0, its own index (or a lower duplicate)
    check_labels(cs, "k = n");
    Case one = make_case(Data::Uniform, 1, d, 70, 8);
    check_labels(one, "n = 1");
  }
}

TEST(MmaHostEmulation, DuplicateCentroidsFlushTheLists) {
  // 2 of every 3 centroids are one point: every point ties among ~130 centroids, far more than
  // the 4 x kMmaCandidates slots, so the lists flush into the exact argmin, which keeps the
  // lowest index.
  const Case cs = make_case(Data::Duplicates, 100, 40, 200, 9);
  const EmuStats s = check_labels(cs, "duplicates");
  EXPECT_GE(s.flushes, 4 * s.rows);  // several per point, in every order
  EXPECT_EQ(s.full_scans, 0);
  // A handful of exact duplicates stays within the lists: no overflow.
  Case few = make_case(Data::Uniform, 200, 24, 90, 11);
  for (int q = 1; q < 4; ++q)
    for (std::int64_t j = 0; j < few.d; ++j) few.c[(q * 20) * few.d + j] = few.c[j];
  const EmuStats s2 = check_labels(few, "few duplicates");
  EXPECT_EQ(s2.flushes, 0);
  EXPECT_EQ(s2.full_scans, 0);
}

TEST(MmaHostEmulation, CandidateListsStaySmallOnUniformData) {
  // The issue's compute-bound shape scaled down (d = 128, k = 1024): the TF32 window leaves few
  // candidates per point and no overflow. (Not a timing: a count.)
  const Case cs = make_case(Data::Uniform, 60, 128, 1024, 12);
  const EmuStats s = check_labels(cs, "uniform d = 128, k = 1024");
  const double per_point = static_cast<double>(s.candidates) / static_cast<double>(s.rows);
  std::printf("uniform d=128 k=1024: %.2f candidates rechecked and %.2f listed per point, "
              "%lld flushes in %lld rows\n",
              per_point, static_cast<double>(s.listed) / static_cast<double>(s.rows),
              static_cast<long long>(s.flushes), static_cast<long long>(s.rows));
  EXPECT_EQ(s.flushes, 0);
  EXPECT_EQ(s.full_scans, 0);
  EXPECT_LT(per_point, 4.0);
}

TEST(MmaHostEmulation, CandidateListsOnTheBenchmarksData) {
  // bench_kmeans --case's data (grid_data): 1024 centres uniform in [0, 100]^d, unit noise, the
  // first centroids k distinct rows. At d = 128 the TF32 window (~1e-3 |x'| |c'| ~ 100 in
  // squared-distance units) holds the centroids of a point's own blob and no other: a few
  // candidates, and lists that (almost) never overflow.
  const std::int64_t d = 128, rows = 3000, n = 120;
  const int k = 1024;
  std::mt19937_64 gen(21);
  std::uniform_real_distribution<double> u(0, 100);
  std::normal_distribution<double> g(0, 1);
  std::uniform_int_distribution<int> pick(0, k - 1);
  std::vector<double> centres(static_cast<std::size_t>(k * d));
  for (auto& v : centres) v = u(gen);
  Case cs;
  cs.n = n;
  cs.d = d;
  cs.k = k;
  std::vector<float> pool(static_cast<std::size_t>(rows * d));
  for (std::int64_t i = 0; i < rows; ++i) {
    const int b = pick(gen);
    for (std::int64_t j = 0; j < d; ++j)
      pool[i * d + j] = static_cast<float>(centres[b * d + j] + g(gen));
  }
  cs.x.assign(pool.begin(), pool.begin() + n * d);
  cs.c.assign(pool.end() - static_cast<std::ptrdiff_t>(k * d), pool.end());  // distinct rows
  const EmuStats s = check_labels(cs, "benchmark data");
  const double per_point = static_cast<double>(s.candidates) / static_cast<double>(s.rows);
  std::printf("benchmark data d=128 k=1024: %.2f candidates rechecked and %.2f listed per point, "
              "%lld flushes in %lld rows\n",
              per_point, static_cast<double>(s.listed) / static_cast<double>(s.rows),
              static_cast<long long>(s.flushes), static_cast<long long>(s.rows));
  EXPECT_LE(s.flushes * 20, s.rows);  // lists rarely fill
  EXPECT_EQ(s.full_scans, 0);
  EXPECT_LT(per_point, 4.0);
}

TEST(MmaHostEmulation, ManyCentroidsPerBlobFlushWithoutFullScans) {
  // FAISS's shape in miniature (bench_faiss: d = 256, k = 20000 centroids over 1024 blobs, ~20
  // per blob): every centroid of a point's blob lies within the TF32 window, more than the
  // lists hold. They flush into the exact argmin; no point scans every centroid.
  const std::int64_t d = 256, n = 24;
  const int k = 2000, blobs = 100;
  std::mt19937_64 gen(22);
  std::uniform_real_distribution<double> u(0, 100);
  std::normal_distribution<double> g(0, 1);
  std::vector<double> centres(static_cast<std::size_t>(blobs * d));
  for (auto& v : centres) v = u(gen);
  Case cs;
  cs.n = n;
  cs.d = d;
  cs.k = k;
  cs.x.resize(static_cast<std::size_t>(n * d));
  cs.c.resize(static_cast<std::size_t>(k * d));
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < d; ++j)
      cs.x[i * d + j] = static_cast<float>(centres[(i % blobs) * d + j] + g(gen));
  for (int q = 0; q < k; ++q)
    for (std::int64_t j = 0; j < d; ++j)
      cs.c[q * d + j] = static_cast<float>(centres[(q % blobs) * d + j] + g(gen));
  const EmuStats s = check_labels(cs, "many centroids per blob");
  std::printf("20 centroids per blob, d=256: %.2f flushes per point, %lld full scans\n",
              static_cast<double>(s.flushes) / static_cast<double>(s.rows),
              static_cast<long long>(s.full_scans));
  EXPECT_GT(s.flushes, 0);
  EXPECT_EQ(s.full_scans, 0);
}

TEST(MmaHostListPrune, FullListDropsWhatTheThresholdExcludesThenFlushes) {
  constexpr int kCap = tn::kMmaCandidates;
  // Centroids on a line, the point at 0: centroid j at distance^2 (j + 1)^2 * d.
  const std::int64_t d = 2;
  std::vector<float> c(static_cast<std::size_t>(200 * d));
  for (int j = 0; j < 200; ++j) c[j * d] = c[j * d + 1] = static_cast<float>(j + 1);
  const float x[2] = {0.f, 0.f};
  float lo[kCap];
  int idx[kCap];
  int count = 0, flushes = 0;
  MmaBest best;
  for (int q = 0; q < kCap; ++q)
    mma_push(lo, idx, 1, count, static_cast<float>(q), 10 + q, 100.f, x, c.data(), d, best, flushes);
  ASSERT_EQ(count, kCap);
  // Threshold 1.5 keeps entries 0 and 1, then the new one.
  mma_push(lo, idx, 1, count, 1.25f, 99, 1.5f, x, c.data(), d, best, flushes);
  ASSERT_EQ(count, 3);
  EXPECT_EQ(idx[0], 10);
  EXPECT_EQ(idx[1], 11);
  EXPECT_EQ(idx[2], 99);
  EXPECT_EQ(lo[2], 1.25f);
  EXPECT_EQ(flushes, 0);
  EXPECT_EQ(best.index, INT_MAX);
  mma_push(lo, idx, 1, count, 1.0f, 100, 1.5f, x, c.data(), d, best, flushes);
  ASSERT_EQ(count, kCap);
  // Nothing to drop: the four (10, 11, 99, 100) are evaluated exactly and the list restarts.
  mma_push(lo, idx, 1, count, 1.0f, 5, 1.5f, x, c.data(), d, best, flushes);
  EXPECT_EQ(flushes, 1);
  EXPECT_EQ(count, 1);
  EXPECT_EQ(idx[0], 5);
  EXPECT_EQ(best.index, 10);                  // the nearest of the flushed four
  EXPECT_EQ(best.dist, 2.f * 11.f * 11.f);    // its direct distance
  const MmaBest last = mma_pick(lo, idx, 1, count, 1.5f, x, c.data(), d, best);
  EXPECT_EQ(last.index, 5);                   // centroid 5 is nearer than 10
  EXPECT_EQ(last.dist, 2.f * 6.f * 6.f);
  EXPECT_EQ(mma_pick(lo, idx, 1, count, 0.5f, x, c.data(), d, best).index, 10);  // 5 fails
}

/// For every (point, centroid): the emulated bounds enclose t_c = D_c / 2 - |x'|^2 / 2 within
/// rho (lo <= t + rho2 / 2, up >= t - rho2 / 2), computed in long double; returns the largest
/// |s - t| / (e + rho2 / 2) seen (<= 1 by the proof).
void check_bound(const Case& cs, const std::vector<double>& mean, const std::string& what,
                 double& worst) {
  SCOPED_TRACE(what + " d=" + std::to_string(cs.d) + " k=" + std::to_string(cs.k));
  const Operands o = centre_centroids(cs.c.data(), cs.k, cs.d, mean.data());
  worst = 0;
  for (const Order order : kOrders) {
    for (std::int64_t i = 0; i < cs.n; ++i) {
      const float* xi = cs.x.data() + i * cs.d;
      const CentredPoint p = centre_point(xi, cs.d, o.dp, mean.data());
      long double xx = 0;  // |x'|^2: float squares are exact in long double
      for (const float v : p.xc) xx += static_cast<long double>(v) * v;
      for (int j = 0; j < cs.k; ++j) {
        const float g = product(p.xt.data(), o.centred.data() + j * o.dp, o.dp, order);
        const MmaBounds b = mma_bounds(o.terms[j], g, p.rt.x_norm);
        const long double t =
            static_cast<long double>(squared_distance(xi, cs.c.data() + j * cs.d, cs.d)) / 2 -
            xx / 2;
        const long double rho = static_cast<long double>(p.rt.rho2) / 2;
        ASSERT_LE(static_cast<long double>(b.lo), t + rho) << "point " << i << " centroid " << j;
        ASSERT_GE(static_cast<long double>(b.up), t - rho) << "point " << i << " centroid " << j;
        const long double s = o.terms[j].bias - static_cast<long double>(g);
        const long double e = (static_cast<long double>(b.up) - b.lo) / 2;
        worst = std::max(worst, static_cast<double>(std::abs(s - t) / (e + rho)));
      }
    }
  }
}

TEST(MmaHostBound, BoundsEncloseTheDirectFormulaOnRandomData) {
  std::uint32_t seed = 200;
  for (const std::int64_t d : {1, 5, 16, 64, 128, 256, 300}) {
    for (const Data kind : {Data::Uniform, Data::FarBlobs, Data::NearTies}) {
      const Case cs = make_case(kind, 40, d, 50, ++seed);
      double worst = 0;
      check_bound(cs, mean_of(cs.x, cs.n, cs.d), "random", worst);
      if (HasFatalFailure()) return;
      EXPECT_LE(worst, 1.0);
    }
  }
}

TEST(MmaHostBound, AdversarialRoundingComesCloseButStaysInside) {
  // Every coordinate just below a TF32 rounding tie (1 + 0.999 * 2^-11 times a power of two),
  // all of one sign, centre 0: each operand rounds up by almost 2^-11 of itself, the errors of
  // the d products add coherently, and |g - x'.c'| approaches (2^-10 + 2^-22) |x'| |c'|, the
  // operand part of gamma_t.
  for (const std::int64_t d : {8, 64, 128, 256}) {
    Case cs;
    cs.n = 4;
    cs.d = d;
    cs.k = 4;
    const float near_tie = 1.0f + 0.999f * 0x1p-11f;
    cs.x.assign(static_cast<std::size_t>(cs.n * d), near_tie);
    cs.c.assign(static_cast<std::size_t>(cs.k * d), near_tie);
    for (std::int64_t j = 0; j < d; ++j) {
      cs.x[j] *= 2;          // other binades, same relative position
      cs.c[d + j] *= 0.5f;
      cs.c[2 * d + j] *= 4;
    }
    const std::vector<double> zero(static_cast<std::size_t>(d), 0.0);
    double worst = 0;
    check_bound(cs, zero, "adversarial", worst);
    if (HasFatalFailure()) return;
    std::printf("adversarial d=%lld: |s - t| reaches %.3f of the bound\n",
                static_cast<long long>(d), worst);
    EXPECT_LE(worst, 1.0);
    EXPECT_GT(worst, 0.85);  // the data does hit the TF32 rounding the bound is made of
  }
}

TEST(MmaHostBound, ConstantsAreTheDocumentedOnes) {
  // d = 128: gamma_t = 2^-10 + 2^-22 + (1 + 2^-11)^2 gamma_137(2^-22) ~ 1.01e-3.
  EXPECT_NEAR(mma_product_gamma(128), 0x1p-10 + 0x1p-22 + 137 * 0x1p-22, 1e-7);
  EXPECT_NEAR(mma_kappa(128), 130 * 0x1p-24 + 2 * 0x1p-24, 1e-9);
  const MmaTerms t = mma_centroid_terms(4.0, 128);  // |c'| = 2
  EXPECT_EQ(t.bias, 2.0f);
  EXPECT_GE(static_cast<double>(t.slope), (mma_product_gamma(128) + 0x1p-21) * 2);
  EXPECT_GE(static_cast<double>(t.base), (mma_kappa(128) + 0x1p-22) * 4);
  const MmaRowTerms r = mma_row_terms(9.0f, 128);
  EXPECT_GE(static_cast<double>(r.x_norm), 3.0);
  EXPECT_LE(static_cast<double>(r.x_norm), 3.0 * (1 + 1e-5));
  EXPECT_GE(static_cast<double>(r.rho2), 2 * mma_kappa(128) * 9);
}

TEST(MmaHostRules, TheTensorCorePathTakesTheComputeBoundShapes) {
  EXPECT_TRUE(tn::use_mma(1024, 128, 4));     // 1M x 128, k = 1024 (bench_fma)
  EXPECT_TRUE(tn::use_mma(20000, 256, 4));    // 1M x 256, k = 20000 (bench_faiss)
  EXPECT_FALSE(tn::use_mma(16, 16, 4));       // 10M x 16, k = 16: the fused tile kernel
  EXPECT_FALSE(tn::use_mma(4, 3, 8));         // the classic study
  EXPECT_FALSE(tn::use_mma(1024, 128, 8));    // double keeps the exact paths
  EXPECT_FALSE(tn::use_mma(63, 128, 4));
  EXPECT_TRUE(tn::use_mma(64, 16, 4));
  EXPECT_FALSE(tn::use_mma(64, 15, 4));
  EXPECT_FALSE(tn::use_mma(1024, 257, 4));    // the point tile would not fit: GEMM path
  EXPECT_TRUE(tn::use_gemm(1024, 257, 4));
  for (std::int64_t k : {1, 63, 64, 100, 128, 1000}) {
    for (std::int64_t d : {1, 15, 16, 32, 256, 257}) {
      EXPECT_FALSE(tn::use_mma(k, d, 4) && tn::use_partials(k, d, 4)) << k << " " << d;
    }
  }
  // Shared memory: the largest d within the 227 KiB a block may opt into; two blocks per SM
  // (228 KiB, 1 KiB reserved each) at d = 128.
  EXPECT_LE(tn::mma_smem_bytes(tn::kMmaMaxD), std::size_t{227} * 1024);
  EXPECT_LE(2 * (tn::mma_smem_bytes(128) + 1024), std::size_t{228} * 1024);
}

}  // namespace
}  // namespace kmeans::detail
