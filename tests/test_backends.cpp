// SPDX-License-Identifier: Apache-2.0
// The fast CPU backend against the reference backend, on every instruction set this CPU runs,
// over many shapes (n not a multiple of any block, d = 1, d = 300, k = 1, k = n, duplicates).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "cpu_kernel.hpp"
#include "engine.hpp"
#include "kmeans/kmeans.hpp"
#include "test_data.hpp"
#include "test_helpers.hpp"

namespace {

using kmeans::Backend;
using kmeans::detail::Engine;
using kmeans_test::IsaScope;

// A label is accepted when its exact distance is within this margin of the true minimum,
// relative to the distance plus d (the data's spread is O(1) per feature): the CPU kernel
// ranks centroids by |c'|^2/2 - x'.c' on data centred at its mean, whose rounding error is
// O(eps * (|x'|^2 + |c'|^2)), so near-ties may go either way.
constexpr double kRelTolF32 = 1e-5;
constexpr double kRelTolF64 = 1e-12;
template <class T>
constexpr double rel_tol() {
  return sizeof(T) == 4 ? kRelTolF32 : kRelTolF64;
}

/// Deterministic pseudo-normal data: points around `clusters` random centres.
template <class T>
std::vector<T> make_data(std::int64_t n, std::int64_t d, int clusters, std::uint64_t seed,
                         double spread = 1.0) {
  std::uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
  auto u = [&]() {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<double>(s >> 11) * 0x1.0p-53;
  };
  auto normal = [&]() {  // Irwin-Hall approximation: good enough and portable
    double t = 0;
    for (int i = 0; i < 12; ++i) t += u();
    return t - 6;
  };
  std::vector<double> centres(static_cast<std::size_t>(clusters * d));
  for (auto& c : centres) c = 20 * u() - 10;
  std::vector<T> x(static_cast<std::size_t>(n * d));
  for (std::int64_t i = 0; i < n; ++i) {
    const int c = static_cast<int>(u() * clusters);
    for (std::int64_t j = 0; j < d; ++j)
      x[i * d + j] = static_cast<T>(centres[c * d + j] + spread * normal());
  }
  return x;
}

using kmeans_test::exact_dist;

struct Shape {
  std::int64_t n, d;
  int k;
  const char* what;
};

const Shape kShapes[] = {
    {1, 1, 1, "single point"},
    {7, 1, 3, "d = 1, tiny"},
    {1000, 1, 5, "d = 1"},
    {4097, 3, 4, "n = block + 1"},
    {8193, 2, 17, "k not a multiple of the tile"},
    {2000, 300, 7, "d = 300"},
    {2000, 5, 1, "k = 1"},
    {300, 2, 300, "k = n"},
    {64, 16, 64, "k = n, d = 16"},
    {10000, 8, 64, "the CPU target shape, scaled down"},
    {3001, 17, 33, "odd everything"},
    {1500, 4, 700, "large k"},
};

/// Every CPU kernel table this machine can run ("generic", "avx2", "avx512").
std::vector<std::string> isas() {
  const kmeans::detail::cpu::KernelTable* t[3];
  const int n = kmeans::detail::cpu::supported_kernels(t, 3);
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) out.push_back(t[i]->name);
  return out;
}

/// One assignment pass of the CPU engine against the reference engine. max_partials picks the
/// reduction path: the default size rule, or 0 to force the bucket-by-label path.
template <class T>
void check_one_pass(const Shape& s, const std::string& isa, std::int64_t max_partials) {
  SCOPED_TRACE(std::string(s.what) + " isa=" + isa + (sizeof(T) == 4 ? " float" : " double") +
               (max_partials == 0 ? " bucket path" : " partials path"));
  IsaScope scope(isa);
  const auto x = make_data<T>(s.n, s.d, std::max(1, s.k / 2), 11 + s.n + s.k);
  // Centroids: random data points plus a duplicate (an exact tie for every point).
  std::vector<T> c(static_cast<std::size_t>(s.k * s.d));
  for (int j = 0; j < s.k; ++j)
    for (std::int64_t f = 0; f < s.d; ++f)
      c[j * s.d + f] = x[((j * 7919) % s.n) * s.d + f];
  // Exact ties: these centroids copy centroid 1, so no point may take them. 2 shares its tile;
  // 17, 33 and 65 sit in the same SIMD lane of later tiles (tiles of 4 to 32); k - 1 is last.
  std::vector<int> copies;
  for (int j : {2, 17, 33, 65, s.k - 1})
    if (j >= 2 && j < s.k) copies.push_back(j);
  for (int j : copies)
    for (std::int64_t f = 0; f < s.d; ++f) c[j * s.d + f] = c[1 * s.d + f];

  kmeans::detail::DataView<T> v{x.data(), nullptr, s.n, s.d, 0};
  auto ref = kmeans::detail::make_reference_engine(v);
  auto cpu = kmeans::detail::make_cpu_engine(v, max_partials);
  std::vector<double> ref_sums(s.k * s.d), ref_w(s.k), sums(s.k * s.d, -1), w(s.k, -1);
  const auto rs = ref->assign(c.data(), s.k, ref_sums.data(), ref_w.data());
  const auto cs = cpu->assign(c.data(), s.k, sums.data(), w.data());
  std::vector<std::int32_t> rl(s.n), cl(s.n, -7);
  ref->labels(rl.data());
  cpu->labels(cl.data());

  EXPECT_EQ(cs.n_changed, s.n);  // first pass: every label is new
  double scale = 0;
  for (std::int64_t i = 0; i < s.n; ++i) {
    ASSERT_GE(cl[i], 0);
    ASSERT_LT(cl[i], s.k);
    const double best = exact_dist(&x[i * s.d], &c[rl[i] * s.d], s.d);
    const double mine = exact_dist(&x[i * s.d], &c[cl[i] * s.d], s.d);
    const double tol = rel_tol<T>() * (best + 1e-30) + rel_tol<T>() * s.d;
    ASSERT_LE(mine, best + tol) << "point " << i;
    for (int j : copies)
      ASSERT_NE(cl[i], j) << "point " << i << ": an exact tie with centroid 1 goes to index 1";
    scale += best;
  }
  EXPECT_NEAR(cs.sse, rs.sse, rel_tol<T>() * 10 * (scale + 1));

  // The sums are exactly those of the backend's own labels (recomputed here in double).
  std::vector<double> my_sums(s.k * s.d, 0.0), my_w(s.k, 0.0);
  for (std::int64_t i = 0; i < s.n; ++i) {
    for (std::int64_t f = 0; f < s.d; ++f) my_sums[cl[i] * s.d + f] += x[i * s.d + f];
    my_w[cl[i]] += 1;
  }
  for (int j = 0; j < s.k; ++j) {
    ASSERT_EQ(w[j], my_w[j]) << "cluster " << j;
    for (std::int64_t f = 0; f < s.d; ++f)
      ASSERT_NEAR(sums[j * s.d + f], my_sums[j * s.d + f], 1e-9 * (1 + std::abs(my_sums[j * s.d + f])));
  }

  // A second pass with the same centroids changes no label.
  EXPECT_EQ(cpu->assign(c.data(), s.k, nullptr, nullptr).n_changed, 0);
}

constexpr std::int64_t kDefaultRule = std::int64_t{1} << 40;
constexpr std::int64_t kForceBuckets = 0;

TEST(CpuVsReference, OnePassFloat) {
  for (const auto& isa : isas())
    for (const auto& s : kShapes)
      for (auto rule : {kDefaultRule, kForceBuckets}) check_one_pass<float>(s, isa, rule);
}

TEST(CpuVsReference, OnePassDouble) {
  for (const auto& isa : isas())
    for (const auto& s : kShapes)
      for (auto rule : {kDefaultRule, kForceBuckets}) check_one_pass<double>(s, isa, rule);
}

template <class T>
void check_fit(const Shape& s, const std::string& isa) {
  SCOPED_TRACE(std::string(s.what) + " isa=" + isa + (sizeof(T) == 4 ? " float" : " double"));
  IsaScope scope(isa);
  const auto x = make_data<T>(s.n, s.d, std::max(1, s.k), 5 + s.n, 0.5);
  std::vector<T> c0(x.begin(), x.begin() + s.k * s.d);
  kmeans::Params<T> p;
  p.k = s.k;
  p.max_iter = 30;
  p.tol = 0;
  p.init = kmeans::Init::Array;
  p.init_centroids = c0;
  p.backend = Backend::Reference;
  const auto ref = kmeans::fit(x.data(), s.n, s.d, p);
  p.backend = Backend::Cpu;
  const auto cpu = kmeans::fit(x.data(), s.n, s.d, p);
  EXPECT_EQ(cpu.backend, Backend::Cpu);
  if (sizeof(T) == 8) {
    // Double: the same labels, iterations and (to rounding) the same inertia.
    EXPECT_EQ(cpu.labels, ref.labels);
    EXPECT_EQ(cpu.n_iter, ref.n_iter);
    EXPECT_NEAR(cpu.inertia, ref.inertia, 1e-9 * (1 + ref.inertia));
  } else {
    // Float: near-ties may flip a few labels along the way; the objective must agree.
    EXPECT_NEAR(cpu.inertia, ref.inertia, 1e-3 * (1 + ref.inertia));
    std::int64_t same = 0;
    for (std::int64_t i = 0; i < s.n; ++i) same += cpu.labels[i] == ref.labels[i];
    EXPECT_GE(static_cast<double>(same), 0.99 * s.n);
  }
  for (T c : cpu.centroids) EXPECT_TRUE(std::isfinite(static_cast<double>(c)));
  // Cluster sizes are the label counts; the imbalance factor one value per iteration.
  for (const auto* r : {&ref, &cpu}) {
    std::vector<double> counts(static_cast<std::size_t>(s.k), 0.0);
    for (auto l : r->labels) counts[static_cast<std::size_t>(l)] += 1;
    EXPECT_EQ(r->cluster_sizes, counts);
    ASSERT_EQ(r->imbalance_history.size(), static_cast<std::size_t>(r->n_iter));
    for (double f : r->imbalance_history) {
      EXPECT_GE(f, 1 - 1e-12);
      EXPECT_LE(f, s.k + 1e-12);
    }
  }
  if (sizeof(T) == 8) {
    EXPECT_EQ(cpu.cluster_sizes, ref.cluster_sizes);
    for (std::size_t i = 0; i < ref.imbalance_history.size() && i < cpu.imbalance_history.size(); ++i)
      EXPECT_NEAR(cpu.imbalance_history[i], ref.imbalance_history[i], 1e-12) << "iteration " << i;
  }
}

/// FAISS's imbalance factor of sizes: k * sum s^2 / (sum s)^2.
double imbalance_of(const std::vector<double>& sizes) {
  double total = 0, squares = 0;
  for (double v : sizes) {
    total += v;
    squares += v * v;
  }
  return static_cast<double>(sizes.size()) * squares / (total * total);
}

// Weighted fits: the sizes are the weight per cluster and the imbalance factor is that of the
// weights, the same on every backend as on the reference.
TEST(CpuVsReference, ClusterSizesAndImbalanceAreWeighted) {
  const std::int64_t n = 3000, d = 3;
  const int k = 6;
  const auto x = make_data<double>(n, d, k, 17, 0.4);
  std::vector<double> w(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) w[i] = 0.25 * static_cast<double>(1 + i % 7);
  kmeans::Params<double> p;
  p.k = k;
  p.seed = 2;
  p.sample_weight = w;
  p.backend = Backend::Reference;
  const auto ref = kmeans::fit(x.data(), n, d, p);
  ASSERT_TRUE(ref.converged);
  std::vector<double> sizes(k, 0.0);
  for (std::int64_t i = 0; i < n; ++i) sizes[ref.labels[i]] += w[i];
  EXPECT_EQ(ref.cluster_sizes, sizes);
  // Converged on unchanged labels: the last assignment step is the final assignment's.
  EXPECT_NEAR(ref.imbalance_history.back(), imbalance_of(sizes), 1e-12);
  for (const auto& isa : isas()) {
    IsaScope scope(isa);
    p.backend = Backend::Cpu;
    const auto cpu = kmeans::fit(x.data(), n, d, p);
    EXPECT_EQ(cpu.labels, ref.labels) << isa;
    EXPECT_EQ(cpu.cluster_sizes, ref.cluster_sizes) << isa;
    ASSERT_EQ(cpu.imbalance_history.size(), ref.imbalance_history.size()) << isa;
    for (std::size_t i = 0; i < ref.imbalance_history.size(); ++i)
      EXPECT_NEAR(cpu.imbalance_history[i], ref.imbalance_history[i], 1e-12) << isa << " " << i;
  }
}

TEST(CpuVsReference, FullFitFloat) {
  for (const auto& isa : isas())
    for (const auto& s : kShapes) check_fit<float>(s, isa);
}

TEST(CpuVsReference, FullFitDouble) {
  for (const auto& isa : isas())
    for (const auto& s : kShapes) check_fit<double>(s, isa);
}

// Data far from the origin (offset 1e4, spread 1): the expanded distance form would lose every
// significant bit in float without centring; labels must still be the nearest centroid.
TEST(CpuVsReference, DataFarFromTheOrigin) {
  const std::int64_t n = 5000, d = 4;
  const int k = 20;
  auto x = make_data<float>(n, d, k, 21, 0.3);
  for (auto& v : x) v += 1e4f;
  std::vector<float> c(x.begin(), x.begin() + k * d);
  for (const auto& isa : isas()) {
    IsaScope scope(isa);
    kmeans::detail::DataView<float> v{x.data(), nullptr, n, d, 0};
    auto cpu = kmeans::detail::make_cpu_engine(v);
    cpu->assign(c.data(), k, nullptr, nullptr);
    std::vector<std::int32_t> cl(n);
    cpu->labels(cl.data());
    std::int64_t wrong = 0;
    for (std::int64_t i = 0; i < n; ++i) {
      double best = exact_dist(&x[i * d], &c[0], d);
      for (int j = 1; j < k; ++j) best = std::min(best, exact_dist(&x[i * d], &c[j * d], d));
      // float coordinates near 1e4 carry ~1e-3 absolute rounding: allow that much.
      wrong += exact_dist(&x[i * d], &c[cl[i] * d], d) > best + 1e-2;
    }
    EXPECT_EQ(wrong, 0) << isa;
  }
}

// Many duplicate points: every backend gives the same labels, and no NaN.
TEST(CpuVsReference, DuplicatePoints) {
  std::vector<double> x;
  for (int i = 0; i < 5000; ++i) x.insert(x.end(), {double(i % 4), double((i / 4) % 3)});
  kmeans::Params<double> p;
  p.k = 12;
  p.seed = 3;
  p.backend = Backend::Reference;
  const auto ref = kmeans::fit(x.data(), 5000, 2, p);
  for (const auto& isa : isas()) {
    IsaScope scope(isa);
    p.backend = Backend::Cpu;
    const auto cpu = kmeans::fit(x.data(), 5000, 2, p);
    EXPECT_EQ(cpu.labels, ref.labels) << isa;
    EXPECT_EQ(cpu.centroids, ref.centroids) << isa;
    EXPECT_NEAR(cpu.inertia, 0.0, 1e-12) << isa;
  }
}

// Results do not depend on the number of threads: bitwise identical, on every kernel (small-k
// with narrow and wide rows, tiled, bucketed sums) and with weights.
template <class T>
void same_bits_for_any_thread_count(std::int64_t n, std::int64_t d, int k, bool weighted,
                                    std::int64_t max_partial_doubles) {
  SCOPED_TRACE("n=" + std::to_string(n) + " d=" + std::to_string(d) + " k=" + std::to_string(k) +
               (weighted ? " weighted" : "") + (sizeof(T) == 4 ? " float" : " double"));
  const auto x = make_data<T>(n, d, k, 1);
  std::vector<T> w;
  for (std::int64_t i = 0; i < (weighted ? n : 0); ++i) w.push_back(static_cast<T>(0.5 + (i % 7) * 0.25));
  kmeans::detail::DataView<T> v{x.data(), weighted ? w.data() : nullptr, n, d, 1};
  std::vector<T> c(x.begin(), x.begin() + k * d);
  std::vector<double> sums0, w0;
  std::vector<std::int32_t> lab0;
  kmeans::detail::StepStats st0;
  for (int threads : {1, 2, 3}) {
    v.n_threads = threads;
    auto e = kmeans::detail::make_cpu_engine(v, max_partial_doubles);
    std::vector<double> sums(static_cast<std::size_t>(k * d)), ws(static_cast<std::size_t>(k));
    const auto st = e->assign(c.data(), k, sums.data(), ws.data());
    std::vector<std::int32_t> lab(static_cast<std::size_t>(n));
    e->labels(lab.data());
    if (threads == 1) {
      sums0 = sums, w0 = ws, lab0 = lab, st0 = st;
      continue;
    }
    EXPECT_EQ(sums, sums0) << threads;
    EXPECT_EQ(ws, w0) << threads;
    EXPECT_EQ(lab, lab0) << threads;
    EXPECT_EQ(st.sse, st0.sse) << threads;
    EXPECT_EQ(st.n_changed, st0.n_changed) << threads;
  }
}

TEST(CpuDeterminism, SameBitsForAnyThreadCount) {
  const auto x = make_data<float>(50000, 6, 10, 1);
  kmeans::Params<float> p;
  p.k = 10;
  p.seed = 9;
  p.backend = Backend::Cpu;
  p.n_threads = 1;
  const auto a = kmeans::fit(x.data(), 50000, 6, p);
  p.n_threads = 2;
  const auto b = kmeans::fit(x.data(), 50000, 6, p);
  p.n_threads = 3;
  const auto c = kmeans::fit(x.data(), 50000, 6, p);
  for (const auto* r : {&b, &c}) {
    EXPECT_EQ(r->centroids, a.centroids);
    EXPECT_EQ(r->labels, a.labels);
    EXPECT_EQ(r->inertia, a.inertia);
    EXPECT_EQ(r->sse_history, a.sse_history);
  }
  const std::int64_t big = std::int64_t{1} << 40;
  for (bool wt : {false, true}) {
    same_bits_for_any_thread_count<float>(20001, 3, 4, wt, big);     // small-k, d = 3
    same_bits_for_any_thread_count<double>(20001, 1, 7, wt, big);    // small-k, d = 1
    same_bits_for_any_thread_count<float>(9000, 200, 10, wt, big);   // small-k, wide rows
    same_bits_for_any_thread_count<double>(9000, 70, 16, wt, big);   // small-k, two chunks
    same_bits_for_any_thread_count<float>(9000, 130, 50, wt, big);   // small-k, wide, k > 16
    same_bits_for_any_thread_count<float>(9000, 32, 48, wt, big);    // small-k on AVX-512 only
    same_bits_for_any_thread_count<float>(12289, 16, 100, wt, big);  // tiled
    same_bits_for_any_thread_count<double>(12289, 16, 100, wt, 1);   // tiled, bucketed sums
  }
}

TEST(CpuIsa, UnknownOrUnsupportedIsaIsAnError) {
  IsaScope scope("sse9");
  const float x[] = {1, 2, 3, 4};
  kmeans::Params<float> p;
  p.k = 2;
  p.backend = Backend::Cpu;
  try {
    kmeans::fit(x, 4, 1, p);
    ADD_FAILURE() << "an unknown KMEANS_CPU_ISA must be rejected";
  } catch (const kmeans::Error& e) {
    EXPECT_NE(std::string(e.what()).find("KMEANS_CPU_ISA = sse9"), std::string::npos) << e.what();
  }
}

}  // namespace
