// SPDX-License-Identifier: Apache-2.0
// Params::device_centroids_out / device_labels_out without a GPU: host memory given as a
// device output is a kmeans::Error naming the field (on every backend, before any work), the
// streamed and distributed entry points refuse device outputs, and model parts drop them.
// The GPU side (the buffers' contents) is tests/test_cuda_device_out.cpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "kmeans/kmeans.hpp"
#include "kmeans/stream.hpp"
#include "test_helpers.hpp"

namespace {

using kmeans::Backend;

/// Runs f, which must throw kmeans::Error whose message contains every string of `parts`.
template <class F>
void expect_error(F&& f, const std::vector<std::string>& parts) {
  try {
    f();
    FAIL() << "no kmeans::Error thrown";
  } catch (const kmeans::Error& e) {
    const std::string msg = e.what();
    for (const std::string& part : parts)
      EXPECT_NE(msg.find(part), std::string::npos) << "message: " << msg << "\nmissing: " << part;
  }
}

template <class T>
class DeviceOutHost : public ::testing::Test {};
using Types = ::testing::Types<float, double>;
TYPED_TEST_SUITE(DeviceOutHost, Types);

TYPED_TEST(DeviceOutHost, HostLabelsBufferIsAnErrorNamingTheFieldOnEveryBackend) {
  using T = TypeParam;
  const std::vector<T> x = kmeans_test::blobs<T>(50, 7);  // 200 x 2
  const std::size_t n = x.size() / 2, d = 2;
  std::vector<std::int32_t> host_labels(n, -7);
  for (Backend b : {Backend::Auto, Backend::Cpu, Backend::Reference, Backend::Cuda}) {
    SCOPED_TRACE(kmeans::to_string(b));
    kmeans::Params<T> p;
    p.k = 4;
    p.backend = b;
    p.device_labels_out = host_labels.data();
    int iterations = 0;
    p.on_iteration = [&](const kmeans::IterationInfo&) { return ++iterations, true; };
    expect_error([&] { kmeans::fit(x.data(), n, d, p); },
                 {"device_labels_out", "is not device memory"});
    EXPECT_EQ(iterations, 0) << "the check comes before any work";
    for (std::int32_t l : host_labels) ASSERT_EQ(l, -7) << "the host buffer was written";
  }
}

TYPED_TEST(DeviceOutHost, HostCentroidsBufferIsAnErrorNamingTheField) {
  using T = TypeParam;
  const std::vector<T> x = kmeans_test::blobs<T>(50, 8);
  const std::size_t n = x.size() / 2, d = 2;
  std::vector<T> host_centroids(4 * d, T(-3));
  kmeans::Params<T> p;
  p.k = 4;
  p.backend = Backend::Cpu;
  p.device_centroids_out = host_centroids.data();
  expect_error([&] { kmeans::fit(x.data(), n, d, p); },
               {"device_centroids_out", "is not device memory"});
  for (T c : host_centroids) EXPECT_EQ(c, T(-3));
  // The estimator: the same check, and the object stays unfitted.
  kmeans::KMeans<T> km(p);
  expect_error([&] { km.fit(x.data(), n, d); }, {"device_centroids_out"});
  EXPECT_FALSE(km.fitted());
}

TYPED_TEST(DeviceOutHost, TheMessageNamesThePointerValue) {
  using T = TypeParam;
  const std::vector<T> x = kmeans_test::blobs<T>(20, 9);
  std::int32_t one = 0;
  kmeans::Params<T> p;
  p.k = 2;
  p.backend = Backend::Cpu;
  p.device_labels_out = &one;
  try {
    kmeans::fit(x.data(), x.size() / 2, 2, p);
    FAIL() << "no kmeans::Error thrown";
  } catch (const kmeans::Error& e) {
    // The value as operator<< prints a pointer ("0x..." with glibc).
    std::ostringstream want;
    want << static_cast<const void*>(&one);
    EXPECT_NE(std::string(e.what()).find(want.str()), std::string::npos) << e.what();
  }
}

TYPED_TEST(DeviceOutHost, StreamedAndMiniBatchEntryPoints) {
  using T = TypeParam;
  const std::vector<T> x = kmeans_test::blobs<T>(50, 10);
  const std::size_t n = x.size() / 2, d = 2;
  std::vector<std::int32_t> host_labels(n);
  kmeans::Params<T> p;
  p.k = 4;
  p.backend = Backend::Cpu;
  p.device_labels_out = host_labels.data();
  // A streamed fit (kmeans::fit of a RowSource) keeps its results on the host: refused.
  kmeans::CallbackSource<T> source(n, d, [&](std::size_t first, std::size_t count, T* out) {
    std::copy(x.begin() + first * d, x.begin() + (first + count) * d, out);
  });
  expect_error([&] { kmeans::fit(source, p); }, {"streamed fit", "device_labels_out"});
  // Mini-batch and partial_fit go through the same check as fit.
  p.batch_size = 64;
  expect_error([&] { kmeans::fit(x.data(), n, d, p); }, {"device_labels_out"});
  kmeans::KMeans<T> km(p);
  expect_error([&] { km.partial_fit(x.data(), n, d); }, {"device_labels_out"});
}

TYPED_TEST(DeviceOutHost, NullPointersMeanHostResults) {
  using T = TypeParam;
  const std::vector<T> x = kmeans_test::blobs<T>(50, 11);
  const std::size_t n = x.size() / 2, d = 2;
  kmeans::Params<T> p;
  p.k = 4;
  p.backend = Backend::Cpu;
  EXPECT_EQ(p.device_labels_out, nullptr);
  EXPECT_EQ(p.device_centroids_out, nullptr);
  const kmeans::Result<T> r = kmeans::fit(x.data(), n, d, p);
  EXPECT_EQ(r.labels.size(), n);
  EXPECT_EQ(r.centroids.size(), 4 * d);
}

TYPED_TEST(DeviceOutHost, FromResultDropsTheDevicePointers) {
  using T = TypeParam;
  const std::vector<T> x = kmeans_test::blobs<T>(50, 12);
  const std::size_t n = x.size() / 2, d = 2;
  kmeans::Params<T> p;
  p.k = 4;
  p.backend = Backend::Cpu;
  const kmeans::Result<T> r = kmeans::fit(x.data(), n, d, p);
  std::vector<std::int32_t> stale_labels(n);
  std::vector<T> stale_centroids(4 * d);
  kmeans::Params<T> q = p;
  q.device_labels_out = stale_labels.data();  // would dangle in a model kept for later
  q.device_centroids_out = stale_centroids.data();
  const kmeans::KMeans<T> km = kmeans::KMeans<T>::from_result(q, r, d);
  EXPECT_EQ(km.params().device_labels_out, nullptr);
  EXPECT_EQ(km.params().device_centroids_out, nullptr);
  EXPECT_EQ(km.predict(x.data(), n), r.labels);
}

TYPED_TEST(DeviceOutHost, PredictIntoHostMemoryIsAnError) {
  using T = TypeParam;
  const std::vector<T> x = kmeans_test::blobs<T>(50, 13);
  const std::size_t n = x.size() / 2, d = 2;
  kmeans::Params<T> p;
  p.k = 4;
  p.backend = Backend::Cpu;
  kmeans::KMeans<T> km(p);
  km.fit(x.data(), n, d);
  std::vector<std::int32_t> host_labels(n, -5);
  expect_error([&] { km.predict(x.data(), n, host_labels.data()); },
               {"device_labels_out", "is not device memory"});
  for (std::int32_t l : host_labels) ASSERT_EQ(l, -5);
  expect_error([&] { km.predict(x.data(), n, nullptr); }, {"device_labels_out", "null"});
  // The free function: the same checks.
  expect_error([&] {
    kmeans::predict_to_device(x.data(), n, d, km.result().centroids.data(), 4,
                              host_labels.data(), kmeans::Metric::Euclidean, Backend::Cpu);
  }, {"device_labels_out", "is not device memory"});
  for (std::int32_t l : host_labels) ASSERT_EQ(l, -5);
  // Before a fit: the usual error.
  kmeans::KMeans<T> unfitted(p);
  expect_error([&] { unfitted.predict(x.data(), n, host_labels.data()); }, {"fit()"});
}

}  // namespace
