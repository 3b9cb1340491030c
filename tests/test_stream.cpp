// SPDX-License-Identifier: Apache-2.0
// Streamed fits (include/kmeans/stream.hpp) against the in-memory kmeans::fit, bit for bit, on
// many shapes and chunk sizes; the .npy source; the refusals and the budget's messages.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "driver.hpp"
#include "engine.hpp"
#include "kmeans/kmeans.hpp"
#include "kmeans/stream.hpp"
#include "stream/chunks.hpp"
#include "stream_test_support.hpp"
#include "test_helpers.hpp"

namespace {

using kmeans::Init;
using kmeans_test::expect_error;

using kmeans_test::clustered;
using kmeans_test::same_bits;

/// Every result field but the timings and warnings, bit for bit.
template <class T>
void expect_same(const kmeans::Result<T>& mem, const kmeans::Result<T>& st) {
  kmeans_test::expect_same_result(mem, st);
  EXPECT_TRUE(same_bits(mem.imbalance_history, st.imbalance_history));
  EXPECT_EQ(st.backend, kmeans::Backend::Cpu);
}

/// A callback source over x that counts its calls.
template <class T>
kmeans::CallbackSource<T> source_of(const std::vector<T>& x, std::int64_t d, int* calls = nullptr) {
  const std::size_t n = x.size() / static_cast<std::size_t>(d);
  return kmeans::CallbackSource<T>(n, static_cast<std::size_t>(d),
                                   [&x, d, calls](std::size_t first, std::size_t count, T* out) {
                                     if (calls) ++*calls;
                                     std::memcpy(out, x.data() + first * d, count * d * sizeof(T));
                                   });
}

struct Case {
  std::int64_t n, d;
  int k;
  Init init;
  std::size_t chunk_rows;
  bool weighted;
  double tol;
  int n_init;
};

template <class T>
void check_case(const Case& c, std::uint64_t seed) {
  SCOPED_TRACE("n = " + std::to_string(c.n) + ", d = " + std::to_string(c.d) + ", k = " +
               std::to_string(c.k) + ", init " + std::to_string(static_cast<int>(c.init)) +
               ", chunk_rows " + std::to_string(c.chunk_rows) + (c.weighted ? ", weighted" : "") +
               ", n_init " + std::to_string(c.n_init));
  const std::vector<T> x = clustered<T>(c.n, c.d, std::max(1, c.k), seed);
  std::vector<T> w;
  if (c.weighted) {
    std::mt19937_64 g(seed + 1);
    for (std::int64_t i = 0; i < c.n; ++i) w.push_back(static_cast<T>((g() % 5) * 0.75));
    w[0] = 1;
  }
  std::vector<T> init;
  kmeans::Params<T> p;
  p.k = c.k;
  p.init = c.init;
  p.max_iter = 30;
  p.tol = c.tol;
  p.n_init = c.n_init;
  p.seed = seed;
  p.backend = kmeans::Backend::Cpu;
  if (c.init == Init::Array) {
    init.assign(x.begin(), x.begin() + c.k * c.d);
    p.init_centroids = init;
  }
  if (c.weighted) p.sample_weight = w;
  const kmeans::Result<T> mem = kmeans::fit(x.data(), c.n, c.d, p);
  auto src = source_of(x, c.d);
  kmeans::StreamOptions so;
  so.chunk_rows = c.chunk_rows;
  so.memory_limit = std::size_t{1} << 40;
  const kmeans::Result<T> st = kmeans::fit(src, p, so);
  expect_same(mem, st);
}

template <class T>
void run_cases() {
  const std::int64_t odd = 4096 * 5 + 123;  // not a multiple of the block or of the chunks
  const Case cases[] = {
      {odd, 5, 7, Init::Random, 4096, false, 0, 1},
      {odd, 5, 7, Init::KMeansPlusPlus, 8192, false, 0, 1},
      {odd, 4, 9, Init::KMeansPlusPlus, 4096, true, 1e-4, 2},
      {odd, 1, 5, Init::KMeansPlusPlus, 4096, false, 0, 1},
      {9000, 130, 12, Init::KMeansPlusPlus, 4096, false, 0, 1},
      {200, 3, 200, Init::KMeansPlusPlus, 0, false, 0, 1},        // k = n, one partial block
      {odd, 5, 7, Init::KMeansParallel, 8192, false, 0, 1},
      {odd, 5, 7, Init::Array, 16384, false, 0, 1},
      {odd, 5, 7, Init::KMeansParallel, 4096, true, 1e-4, 1},
      {odd, 3, 4, Init::Random, 8192, true, 0, 3},
      {odd, 1, 3, Init::KMeansParallel, 4096, false, 0, 1},     // d = 1
      {9000, 130, 20, Init::KMeansParallel, 4096, false, 0, 1},  // wide rows, tiled kernel
      {9000, 8, 1, Init::Random, 4096, false, 0, 1},             // k = 1
      {3000, 4, 40, Init::KMeansParallel, 0, false, 0, 2},       // one partial block
      {8192, 16, 50, Init::Random, 4096, false, 1e-3, 1},        // n a multiple of the chunk
  };
  for (const Case& c : cases) check_case<T>(c, 42 + static_cast<std::uint64_t>(c.n + c.d + c.k));
}

TEST(Stream, EqualsInMemoryFitFloat) { run_cases<float>(); }
TEST(Stream, EqualsInMemoryFitDouble) { run_cases<double>(); }

TEST(Stream, CosineEqualsInMemoryFit) {
  // Metric::Cosine: chunks are normalised as they are read (read, not mapped), init centroids
  // once, as the in-memory fit normalises its copies; unit rows (already normalised) too.
  const std::int64_t n = 4096 * 3 + 57, d = 6;
  for (Init init : {Init::Random, Init::KMeansPlusPlus, Init::KMeansParallel, Init::Array})
    for (bool weighted : {false, true}) {
      std::vector<double> x = clustered<double>(n, d, 5, 17);
      for (std::int64_t j = 0; j < d; ++j) x[7 * d + j] = j == 0 ? 1.0 : 0.0;  // a unit row
      std::vector<double> w(static_cast<std::size_t>(n));
      for (std::int64_t i = 0; i < n; ++i) w[i] = 1.0 + static_cast<double>(i % 5);
      std::vector<double> c0(x.begin(), x.begin() + 5 * d);
      kmeans::Params<double> p;
      p.k = 5;
      p.init = init;
      p.metric = kmeans::Metric::Cosine;
      p.tol = 1e-4;
      p.backend = kmeans::Backend::Cpu;
      if (init == Init::Array) p.init_centroids = c0;
      if (weighted) p.sample_weight = w;
      const auto mem = kmeans::fit(x.data(), n, d, p);
      auto src = source_of(x, d);
      kmeans::StreamOptions so;
      so.chunk_rows = 4096;
      expect_same(mem, kmeans::fit(src, p, so));
    }
  // float data, tiny chunks
  const std::vector<float> xf = clustered<float>(n, 3, 4, 19);
  kmeans::Params<float> pf;
  pf.k = 4;
  pf.init = Init::KMeansParallel;
  pf.metric = kmeans::Metric::Cosine;
  pf.backend = kmeans::Backend::Cpu;
  auto src = source_of(xf, 3);
  kmeans::StreamOptions so;
  so.chunk_rows = 4096;
  expect_same(kmeans::fit(xf.data(), n, 3, pf), kmeans::fit(src, pf, so));
}

TEST(Stream, CosineZeroRowNamedByItsRow) {
  const std::int64_t n = 4096 * 2 + 10, d = 3;
  std::vector<float> x = clustered<float>(n, d, 2, 23);
  std::fill(x.begin() + 5000 * d, x.begin() + 5001 * d, 0.0f);
  kmeans::Params<float> p;
  p.k = 2;
  p.init = Init::Random;
  p.metric = kmeans::Metric::Cosine;
  auto src = source_of(x, d);
  kmeans::StreamOptions so;
  so.chunk_rows = 4096;
  std::string in_memory;
  try {
    kmeans::fit(x.data(), n, d, p);
  } catch (const kmeans::Error& e) {
    in_memory = e.what();
  }
  ASSERT_NE(in_memory.find("row 5000"), std::string::npos) << in_memory;
  expect_error([&] { kmeans::fit(src, p, so); }, in_memory);
  // A NaN before it is named first, as in memory.
  x[4100 * d] = std::nanf("");
  expect_error([&] { kmeans::fit(src, p, so); }, "row 4100");
}

TEST(Stream, KEqualsNAndDuplicates) {
  // k = n with duplicate rows: clusters end empty, repair moves the farthest points.
  std::vector<double> x = clustered<double>(60, 3, 4, 7);
  for (int i = 0; i < 20; ++i) std::copy(x.begin(), x.begin() + 3, x.begin() + 3 * (40 + i));
  for (Init init : {Init::Random, Init::KMeansParallel, Init::KMeansPlusPlus}) {
    kmeans::Params<double> p;
    p.k = 60;
    p.init = init;
    p.backend = kmeans::Backend::Cpu;
    const auto mem = kmeans::fit(x.data(), 60, 3, p);
    auto src = source_of(x, 3);
    const auto st = kmeans::fit(src, p, {});
    expect_same(mem, st);
  }
}

TEST(Stream, ArraySourceReadsTheArrayInPlace) {
  // kmeans::ArraySource over host rows: viewed in place (no copy), chunk by chunk, with the
  // in-memory fit's bits.
  const std::int64_t n = 3 * 4096 + 77, d = 5;
  const std::vector<float> x = clustered<float>(n, d, 6, 11);
  kmeans::ArraySource<float> src(x.data(), static_cast<std::size_t>(n), static_cast<std::size_t>(d));
  EXPECT_EQ(src.view(4096, 4096), x.data() + 4096 * d);
  kmeans::Params<float> p;
  p.k = 6;
  p.init = Init::KMeansParallel;
  p.backend = kmeans::Backend::Cpu;
  kmeans::StreamOptions so;
  so.chunk_rows = 4096;
  expect_same(kmeans::fit(x.data(), n, d, p), kmeans::fit(src, p, so));
}

TEST(Stream, EmptyClusterRepairAcrossChunks) {
  // Centroids far from every point leave clusters empty on the first pass: the farthest points
  // come from several chunks (farthest() merges per-chunk candidates); unweighted and weighted.
  for (std::size_t chunk : {std::size_t{4096}, std::size_t{8192}, std::size_t{0}})
  for (bool weighted : {false, true}) {
    const std::int64_t n = 4096 * 4 + 77, d = 6;
    const std::vector<float> x = clustered<float>(n, d, 3, 11);
    std::vector<float> init(static_cast<std::size_t>(9 * d));
    for (int c = 0; c < 9; ++c)
      for (int j = 0; j < d; ++j) init[c * d + j] = c < 3 ? x[c * 997 * d + j] : 500.0f + c;
    std::vector<float> w(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) w[i] = static_cast<float>(1 + i % 4) * 0.5f;
    kmeans::Params<float> p;
    p.k = 9;
    p.init = Init::Array;
    p.init_centroids = init;
    p.backend = kmeans::Backend::Cpu;
    if (weighted) p.sample_weight = w;
    const auto mem = kmeans::fit(x.data(), n, d, p);
    ASSERT_GT(mem.n_empty_relocated, 0);
    auto src = source_of(x, d);
    kmeans::StreamOptions so;
    so.chunk_rows = chunk;
    expect_same(mem, kmeans::fit(src, p, so));
  }
}

TEST(Stream, RescaledDataAndWeights) {
  // Tiny values (data_exp != 0: chunks are copied and scaled) and huge double weights
  // (weight_exp != 0).
  const std::int64_t n = 4096 * 2 + 5, d = 3;
  std::vector<float> xf = clustered<float>(n, d, 3, 5);
  for (float& v : xf) v *= 1e-36f;
  std::vector<double> xd = clustered<double>(n, d, 3, 6);
  std::vector<double> w(static_cast<std::size_t>(n), 1e300);
  {
    kmeans::Params<float> p;
    p.k = 3;
    p.init = Init::KMeansParallel;
    p.backend = kmeans::Backend::Cpu;
    const auto mem = kmeans::fit(xf.data(), n, d, p);
    auto src = source_of(xf, d);
    kmeans::StreamOptions so;
    so.chunk_rows = 4096;
    expect_same(mem, kmeans::fit(src, p, so));
  }
  {
    kmeans::Params<double> p;
    p.k = 3;
    p.init = Init::Random;
    p.sample_weight = w;
    p.backend = kmeans::Backend::Cpu;
    const auto mem = kmeans::fit(xd.data(), n, d, p);
    auto src = source_of(xd, d);
    kmeans::StreamOptions so;
    so.chunk_rows = 4096;
    expect_same(mem, kmeans::fit(src, p, so));
  }
}

TEST(Stream, BucketSumsBeyondThePartialRule) {
  // Above the CPU engine's size rule the sums go by label (the bucket path); the chunk engines
  // made with that rule must still give the in-memory engine's bits.
  const std::int64_t n = 4096 * 3 + 9, d = 4;
  const int k = 5;
  const std::vector<double> x = clustered<double>(n, d, k, 9);
  std::vector<double> w(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) w[i] = 0.5 + static_cast<double>(i % 3);
  for (bool weighted : {false, true}) {
    kmeans::Params<double> p;
    p.k = k;
    p.init = Init::Random;
    p.backend = kmeans::Backend::Cpu;
    if (weighted) p.sample_weight = w;
    const std::int64_t rule = 2 * (k * d + k);  // 2 blocks' partials: the data has 4
    kmeans::detail::DataView<double> v{x.data(), weighted ? w.data() : nullptr, n, d, 0};
    auto e = kmeans::detail::make_cpu_engine(v, rule);
    auto ops = kmeans::detail::make_host_data_ops(x.data(), v.weights, n, d, 0);
    kmeans::detail::Units<double> u;
    std::unique_ptr<kmeans::detail::Engine<double>> batch;
    const auto mem = kmeans::detail::fit_bound(*e, *ops, n, d, p, u, 0.0, nullptr, batch, nullptr);
    auto src = source_of(x, d);
    kmeans::StreamOptions so;
    so.chunk_rows = 8192;
    const auto st = kmeans::detail::stream::fit(src, p, so, rule);
    expect_same(mem, st);
    // The tree makes both paths one: the default rule (partials) gives the same bits.
    expect_same(kmeans::fit(x.data(), n, d, p), st);
  }
}

TEST(Stream, ThreadCountDoesNotChangeBits) {
  const std::int64_t n = 4096 * 3 + 1, d = 7;
  const std::vector<float> x = clustered<float>(n, d, 6, 3);
  kmeans::Params<float> p;
  p.k = 6;
  p.init = Init::KMeansParallel;
  std::vector<kmeans::Result<float>> r;
  for (int threads : {1, 2, 3}) {
    p.n_threads = threads;
    auto src = source_of(x, d);
    kmeans::StreamOptions so;
    so.chunk_rows = 8192;
    r.push_back(kmeans::fit(src, p, so));
  }
  expect_same(r[0], r[1]);
  expect_same(r[0], r[2]);
}

TEST(Stream, ElkanRunsLloydAndSaysSo) {
  // A streamed fit rebinds its engine chunk by chunk, so it keeps no bounds: algorithm = Elkan
  // gives Lloyd's fit (the same bits as the in-memory Elkan fit, which prunes) and a warning.
  const std::int64_t n = 4096 * 2 + 77, d = 9;
  const std::vector<double> x = clustered<double>(n, d, 5, 8);
  kmeans::Params<double> p;
  p.k = 5;
  p.init = Init::Random;
  p.algorithm = kmeans::Algorithm::Elkan;
  p.backend = kmeans::Backend::Cpu;
  const kmeans::Result<double> mem = kmeans::fit(x.data(), n, d, p);
  auto src = source_of(x, d);
  kmeans::StreamOptions so;
  so.chunk_rows = 4096;
  const kmeans::Result<double> st = kmeans::fit(src, p, so);
  expect_same(mem, st);
  ASSERT_FALSE(st.warnings.empty());
  EXPECT_EQ(st.warnings.back(),
            "algorithm = Elkan: a streamed or distributed fit runs Lloyd's algorithm (the same "
            "results)");
  for (const auto& w : mem.warnings) EXPECT_EQ(w.find("algorithm = Elkan"), std::string::npos) << w;
}

/// Writes a 2-D C-order .npy of T.
template <class T>
void write_npy(const std::string& path, const std::vector<T>& x, std::int64_t n, std::int64_t d) {
  std::string dict = std::string("{'descr': '") + (sizeof(T) == 4 ? "<f4" : "<f8") +
                     "', 'fortran_order': False, 'shape': (" + std::to_string(n) + ", " +
                     std::to_string(d) + "), }";
  while ((10 + dict.size() + 1) % 64 != 0) dict += ' ';
  dict += '\n';
  std::ofstream f(path, std::ios::binary);
  f.write("\x93NUMPY\x01\x00", 8);
  const unsigned char len[2] = {static_cast<unsigned char>(dict.size() & 0xff),
                                static_cast<unsigned char>(dict.size() >> 8)};
  f.write(reinterpret_cast<const char*>(len), 2);
  f << dict;
  f.write(reinterpret_cast<const char*>(x.data()), static_cast<std::streamsize>(x.size() * sizeof(T)));
}

std::string temp_path(const char* name) {
  return (::testing::TempDir() + "kmeans_stream_" + std::to_string(::getpid()) + "_") + name;
}

TEST(Stream, NpyFileSource) {
  const std::int64_t n = 4096 * 3 + 500, d = 9;
  const std::vector<float> x = clustered<float>(n, d, 5, 21);
  const std::string path = temp_path("a.npy");
  write_npy(path, x, n, d);
  const kmeans::NpyInfo info = kmeans::npy_info(path);
  EXPECT_TRUE(info.float32);
  EXPECT_EQ(info.rows, static_cast<std::size_t>(n));
  EXPECT_EQ(info.cols, static_cast<std::size_t>(d));
  auto src = kmeans::open_npy<float>(path);
  kmeans::Params<float> p;
  p.k = 5;
  p.init = Init::KMeansParallel;
  p.backend = kmeans::Backend::Cpu;
  kmeans::StreamOptions so;
  so.chunk_rows = 4096;
  const auto st = kmeans::fit(*src, p, so);
  expect_same(kmeans::fit(x.data(), n, d, p), st);
  expect_error([&] { kmeans::open_npy<double>(path); }, "holds float32 values, not float64");
  std::remove(path.c_str());
  expect_error([&] { kmeans::npy_info(path); }, "cannot open");
}

TEST(Stream, NpyFileErrors) {
  const std::string path = temp_path("bad.npy");
  {
    std::ofstream f(path, std::ios::binary);
    f << "not a npy file at all";
  }
  expect_error([&] { kmeans::npy_info(path); }, "not a .npy file");
  std::vector<double> x(30, 1.0);
  write_npy(path, x, 10, 3);
  {  // cut the data short
    std::string bytes;
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
    in.close();
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size() - 8));
  }
  expect_error([&] { kmeans::npy_info(path); }, "(truncated?)");
  std::remove(path.c_str());
}

TEST(Stream, RefusalsAndBadInput) {
  const std::int64_t n = 5000, d = 2;
  std::vector<float> x = clustered<float>(n, d, 3, 1);
  auto src = source_of(x, d);
  kmeans::Params<float> p;
  p.k = 3;
  p.init = Init::Random;
  p.batch_size = 100;
  expect_error([&] { kmeans::fit(src, p); }, "batch_size = 100: a streamed fit runs Lloyd");
  p.batch_size = 0;
  p.backend = kmeans::Backend::Reference;
  expect_error([&] { kmeans::fit(src, p); }, "backend = reference: a streamed fit runs on the CPU");
  p.backend = kmeans::Backend::Auto;
  p.k = 5001;
  expect_error([&] { kmeans::fit(src, p); }, "k = 5001 exceeds the number of samples n = 5000");
  p.k = 3;
  kmeans::StreamOptions so;
  so.chunk_rows = 1000;
  expect_error([&] { kmeans::fit(src, p, so); }, "chunk_rows = 1000 is not 4096 times a power of two");
  so.chunk_rows = 3 * 4096;
  expect_error([&] { kmeans::fit(src, p, so); }, "chunk_rows = 12288 is not 4096 times");
  so.chunk_rows = 0;
  so.memory_limit = 1000;
  expect_error([&] { kmeans::fit(src, p, so); }, "memory_limit = 1000 bytes (0.0 MiB) is too small");
  // A NaN in the second chunk is named by its row in the whole data set.
  x[4500 * d + 1] = std::nanf("");
  so.memory_limit = 0;
  so.chunk_rows = 4096;
  expect_error([&] { kmeans::fit(src, p, so); }, "row 4500");
  kmeans::CallbackSource<float> empty(0, 2, [](std::size_t, std::size_t, float*) {});
  expect_error([&] { kmeans::fit(empty, p); }, "n = 0");
  kmeans::CallbackSource<float> failing(5000, 2, [](std::size_t, std::size_t, float*) {
    throw kmeans::Error("the source failed");
  });
  expect_error([&] { kmeans::fit(failing, p); }, "the source failed");
}

TEST(Stream, ChunksFollowTheBudget) {
  // With a budget, the chunk is the largest multiple of 4096 rows that fits: reading is in
  // whole chunks (callback calls = passes x chunks, plus single rows gathered).
  const std::int64_t n = 4096 * 8, d = 64;
  const std::vector<float> x = clustered<float>(n, d, 4, 2);
  kmeans::Params<float> p;
  p.k = 4;
  p.init = Init::Random;
  p.max_iter = 3;
  p.tol = 0;
  const kmeans::StreamFootprint f = kmeans::stream_footprint<float>(n, d, p);
  EXPECT_GT(f.fixed, static_cast<std::size_t>(n) * 8);  // the labels at least
  EXPECT_GE(f.per_row, static_cast<std::size_t>(d) * sizeof(float));
  int calls = 0;
  auto src = source_of(x, d, &calls);
  kmeans::StreamOptions so;
  // The resident memory now, plus the footprint and 3 blocks: chunks of 2 blocks (the largest
  // power of two), whatever the resident memory does meanwhile within one block.
  std::size_t resident = 0;
  {
    std::ifstream statm("/proc/self/statm");
    std::size_t size = 0, pages = 0;
    statm >> size >> pages;
    resident = pages * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  }
  so.memory_limit = resident + f.fixed + f.per_row * 4096 * 3;
  const auto st = kmeans::fit(src, p, so);
  // validation + (passes + final) x 4 chunks of 2 blocks, + k gathered rows of random init;
  // the passes run at most 3 (+1 final)
  ASSERT_EQ(st.n_empty_relocated, 0);
  const int chunks = 4;
  const int passes = st.n_iter + 1;
  EXPECT_EQ(calls, chunks * (1 + passes) + p.k) << "n_iter " << st.n_iter;
  expect_same(kmeans::fit(x.data(), n, d, p), st);
}

}  // namespace
