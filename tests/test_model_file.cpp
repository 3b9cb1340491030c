// SPDX-License-Identifier: Apache-2.0
// Model files: KMeans<T>::save / load round trips bit for bit, and every bad file is refused.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "kmeans/kmeans.hpp"
#include "model_json.hpp"
#include "test_data.hpp"
#include "test_helpers.hpp"

namespace {

namespace fs = std::filesystem;
using kmeans::Backend;
using kmeans_test::expect_error;

fs::path scratch(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("kmeans_model_test_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return dir / name;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void spit(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << text;
}

template <class T>
kmeans::KMeans<T> fitted(int per_blob = 50) {
  static std::vector<T> x;
  x = kmeans_test::four_blobs<T>(per_blob, 11, 3.0);
  kmeans::Params<T> p;
  p.k = 4;
  p.seed = 5;
  p.tol = 0;
  p.backend = Backend::Cpu;
  kmeans::KMeans<T> km(p);
  km.fit(x.data(), x.size() / 2, 2);
  return km;
}

template <class T>
void expect_same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  ASSERT_EQ(a.size(), b.size());
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(T)), 0);
}

template <class T>
void round_trip() {
  const kmeans::KMeans<T> km = fitted<T>();
  const fs::path path = scratch(std::string("m_") + (sizeof(T) == 4 ? "f32" : "f64") + ".kmeans");
  km.save(path.string());
  const kmeans::KMeans<T> back = kmeans::KMeans<T>::load(path.string());
  ASSERT_TRUE(back.fitted());
  const kmeans::Result<T>& a = km.result();
  const kmeans::Result<T>& b = back.result();
  expect_same_bits(a.centroids, b.centroids);
  EXPECT_EQ(a.inertia, b.inertia);
  EXPECT_EQ(a.n_iter, b.n_iter);
  EXPECT_EQ(a.converged, b.converged);
  EXPECT_EQ(a.backend, b.backend);
  EXPECT_EQ(a.sse_history, b.sse_history);
  EXPECT_EQ(a.imbalance_history, b.imbalance_history);
  EXPECT_EQ(a.cluster_sizes, b.cluster_sizes);
  EXPECT_EQ(a.n_empty_relocated, b.n_empty_relocated);
  EXPECT_TRUE(b.labels.empty());  // the training labels are not stored
  EXPECT_EQ(back.params().k, 4);
  EXPECT_EQ(back.params().seed, 5u);
  EXPECT_EQ(back.params().tol, 0.0);
  EXPECT_EQ(back.params().backend, Backend::Cpu);
  // A loaded model predicts, transforms and scores as the fitted one.
  const std::vector<T> q = kmeans_test::four_blobs<T>(10, 99, 3.0);
  EXPECT_EQ(km.predict(q.data(), q.size() / 2), back.predict(q.data(), q.size() / 2));
  expect_same_bits(km.transform(q.data(), q.size() / 2), back.transform(q.data(), q.size() / 2));
  EXPECT_EQ(km.score(q.data(), q.size() / 2), back.score(q.data(), q.size() / 2));
  // Saving the loaded model gives the same file.
  EXPECT_EQ(back.to_json(), km.to_json());
  EXPECT_EQ(kmeans::model_dtype(path.string()), sizeof(T) == 4 ? "float32" : "float64");
}

TEST(ModelFile, RoundTripFloatBitForBit) { round_trip<float>(); }
TEST(ModelFile, RoundTripDoubleBitForBit) { round_trip<double>(); }

TEST(ModelFile, ValuesReadBackBitForBitIncludingExtremes) {
  // Centroids of awkward values: subnormals, -0, the largest allowed, many random bit patterns.
  for (int is_float = 0; is_float < 2; ++is_float) {
    std::uint64_t s = 12345;
    auto next = [&] { return s = s * 6364136223846793005ull + 1442695040888963407ull; };
    const std::size_t d = 1;
    auto run = [&](auto zero) {
      using T = decltype(zero);
      std::vector<T> c = {T(0), -T(0), std::numeric_limits<T>::denorm_min(),
                          std::numeric_limits<T>::min(), T(0.1), T(1) / T(3),
                          -std::numeric_limits<T>::denorm_min()};
      const double bound = kmeans::max_abs_value<T>(d);
      T largest = static_cast<T>(bound);  // the largest T within the bound
      if (static_cast<double>(largest) > bound) largest = std::nextafter(largest, T(0));
      c.push_back(largest);
      c.push_back(-largest);
      while (c.size() < 4000) {
        T v;
        if constexpr (sizeof(T) == 4) {
          const auto bits = static_cast<std::uint32_t>(next() >> 32);
          std::memcpy(&v, &bits, 4);
        } else {
          const std::uint64_t bits = next();
          std::memcpy(&v, &bits, 8);
        }
        if (std::isfinite(v) && std::fabs(static_cast<double>(v)) <= bound) c.push_back(v);
      }
      kmeans::Params<T> p;
      p.k = static_cast<int>(c.size());
      kmeans::Result<T> r;
      r.centroids = c;
      r.backend = Backend::Cpu;
      const auto km = kmeans::KMeans<T>::from_result(p, r, d);
      const auto back = kmeans::KMeans<T>::from_json(km.to_json());
      expect_same_bits(c, back.result().centroids);
    };
    if (is_float) run(0.0f); else run(0.0);
  }
  // A float written with its shortest text, read as a double and rounded to float, is the
  // same float (what Python's json + numpy.float32 do).
  std::string t;
  kmeans::detail::json::put_float(t, 0.1f);
  EXPECT_EQ(t, "0.1");
}

TEST(ModelFile, FileIsPlainJsonWithTheDocumentedMembers) {
  const std::string text = fitted<float>().to_json();
  for (const char* member : {"\"format\": \"kmeans-model\"", "\"format_version\": 1",
                             "\"library_version\": ", "\"dtype\": \"float32\"", "\"k\": 4",
                             "\"d\": 2", "\"metric\": \"euclidean\"", "\"algorithm\": \"lloyd\"",
                             "\"params\": {\"k\": 4", "\"inertia\": ", "\"n_iter\": ",
                             "\"backend\": \"cpu\"", "\"centroids\": [\n    ["}) {
    EXPECT_NE(text.find(member), std::string::npos) << member << "\n" << text;
  }
}

TEST(ModelFile, SaveIsAtomicAndRefusesUnfitted) {
  const fs::path path = scratch("atomic.kmeans");
  spit(path, "old contents");
  expect_error([&] { kmeans::KMeans<double>().save(path.string()); }, "call fit() before");
  EXPECT_EQ(slurp(path), "old contents");  // a failed save leaves the file as it was
  expect_error([&] { fitted<double>().save((scratch("no_such_dir") / "m.kmeans").string()); },
               "cannot write model file");
  fitted<double>().save(path.string());
  EXPECT_EQ(kmeans::model_dtype(path.string()), "float64");
  for (const auto& e : fs::directory_iterator(path.parent_path())) {
    EXPECT_EQ(e.path().filename().string().find(".tmp-"), std::string::npos) << e.path();
  }
}

/// The error of loading `text` as a float64 model.
void expect_refused(const std::string& text, const std::string& needle) {
  expect_error([&] { kmeans::KMeans<double>::from_json(text, "m.kmeans"); }, needle);
}

/// A valid float64 model's text with `from` replaced by `to` (which must occur).
std::string edited(const std::string& from, const std::string& to) {
  std::string text = fitted<double>().to_json();
  const std::size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

TEST(ModelFile, TruncatedFileIsRefusedAtEveryLength) {
  const std::string text = fitted<double>(5).to_json();
  const std::string trimmed = text.substr(0, text.find_last_not_of("\n") + 1);
  for (std::size_t n = 1; n < trimmed.size(); ++n) {
    try {
      kmeans::KMeans<double>::from_json(trimmed.substr(0, n), "m.kmeans");
      ADD_FAILURE() << "a file truncated to " << n << " bytes was accepted";
    } catch (const kmeans::Error& e) {
      EXPECT_NE(std::string(e.what()).find("m.kmeans: truncated"), std::string::npos)
          << n << ": " << e.what();
    }
  }
  const fs::path path = scratch("truncated.kmeans");
  spit(path, text.substr(0, text.size() / 2));
  expect_error([&] { kmeans::KMeans<double>::load(path.string()); },
               "model file '" + path.string() + "': truncated");
  expect_error([&] { kmeans::model_dtype(path.string()); }, "truncated");
}

TEST(ModelFile, ForeignFilesAreRefused) {
  expect_refused("", "is not a kmeans model file");
  expect_refused("\x93NUMPY\x01\x00", "is not a kmeans model file (it does not start with a JSON object");
  expect_refused("[1, 2, 3]", "is not a kmeans model file");
  expect_refused("{\"name\": \"some package\", \"version\": \"1.0\"}",
                 "is not a kmeans model file (a JSON object without \"format\": \"kmeans-model\")");
  expect_refused("{\"format\": \"other\"}", "is not a kmeans model file");
  expect_refused(edited("\"format\": \"kmeans-model\"", "\"format\": 1"), "is not a kmeans model file");
  expect_error([] { kmeans::KMeans<double>::load("/no/such/model.kmeans"); },
               "cannot open model file '/no/such/model.kmeans'");
}

TEST(ModelFile, NewerFormatVersionIsRefused) {
  expect_refused(edited("\"format_version\": 1", "\"format_version\": 2"),
                 "m.kmeans: written by a newer kmeans (model format version 2; this kmeans");
  expect_refused(edited("\"format_version\": 1", "\"format_version\": 0"), "format_version = 0 is out of range");
  // A newer version is reported even when its other members would not read.
  expect_refused("{\"format\": \"kmeans-model\", \"format_version\": 7, \"dtype\": \"float128\"}",
                 "written by a newer kmeans (model format version 7");
}

TEST(ModelFile, WrongDtypeIsRefused) {
  const std::string f32 = fitted<float>().to_json();
  expect_refused(f32, "the model holds float32 centroids; load it as KMeans<float> (this is KMeans<double>)");
  expect_error([&] { kmeans::KMeans<float>::from_json(fitted<double>().to_json()); },
               "the model holds float64 centroids; load it as KMeans<double>");
  expect_refused(edited("\"dtype\": \"float64\"", "\"dtype\": \"int8\""), "dtype \"int8\" is not float32 or float64");
}

TEST(ModelFile, NonFiniteAndOutOfRangeValuesAreRefused) {
  const std::string text = fitted<double>().to_json();
  const std::size_t row = text.find("[", text.find("\"centroids\"") + 14);
  auto with_first_centroid_value = [&](const std::string& v) {
    std::string t = text;
    const std::size_t end = t.find_first_of(",]", row + 1);
    t.replace(row + 1, end - row - 1, v);
    return t;
  };
  expect_refused(with_first_centroid_value("NaN"), "NaN is not a JSON number");
  expect_refused(with_first_centroid_value("-Infinity"), "-Infinity is not a JSON number");
  expect_refused(with_first_centroid_value("1e999"), "centroids[0][0] = 1e999 is out of the range of a double");
  expect_refused(with_first_centroid_value("1e300"), "centroid value 1e+300 at row 0, column 0 is outside the supported range");
  expect_refused(with_first_centroid_value("\"1\""), "expected a number");
  expect_refused(with_first_centroid_value("01"), "expected ',' or ']' in an array");
  expect_error([&] {
    std::string t = fitted<float>().to_json();
    const std::size_t r = t.find("[", t.find("\"centroids\"") + 14);
    t.replace(r + 1, t.find_first_of(",]", r + 1) - r - 1, "1e30");  // fine as double, not float32
    kmeans::KMeans<float>::from_json(t);
  }, "for float32 with d = 2");
  expect_refused(edited("\"inertia\": ", "\"inertia\": -"), "inertia must be >= 0");
}

TEST(ModelFile, CentroidCountMustBeKTimesD) {
  const std::string text = fitted<double>().to_json();
  expect_refused(edited("\"k\": 4,", "\"k\": 5,"), "\"cluster_sizes\" has 4 values but k = 5");
  std::string k5 = edited("\"k\": 4,", "\"k\": 5,");
  k5.replace(k5.find("\"cluster_sizes\": ["), 18, "\"cluster_sizes\": [0, ");
  expect_refused(k5, "\"centroids\" has 4 rows (8 values) but k x d = 5 x 2 needs 10");
  expect_refused(edited("\"d\": 2", "\"d\": 3"), "centroid 0 has 2 values but d = 3");
  expect_refused(edited("\"d\": 2", "\"d\": 1"), "centroid 0 has more than d = 1 values");
  expect_refused(edited("\"d\": 2", "\"d\": 0"), "d = 0 is out of range");
  expect_refused(edited("\"k\": 4,", "\"k\": 2.5,"), "k = 2.5 is not an integer");
  expect_refused(edited("\"d\": 2", "\"d\": 1152921504606846975"), "overflows");
  // A k x d far beyond what the file holds is refused, not allocated first (fuzz_model: a
  // d of 27777777777 asked for 222 GB before any value was read).
  expect_refused(edited("\"d\": 2", "\"d\": 27777777777"),
                 "centroid 0 has 2 values but d = 27777777777");
}

TEST(ModelFile, UnknownMetricOrAlgorithmIsRefused) {
  expect_refused(edited("\"metric\": \"euclidean\"", "\"metric\": \"manhattan\""),
                 "metric \"manhattan\" is not known to this kmeans");
  expect_refused(edited("\"algorithm\": \"lloyd\"", "\"algorithm\": \"hamerly\""),
                 "algorithm \"hamerly\" is not known to this kmeans");
}

TEST(ModelFile, MalformedJsonIsRefused) {
  expect_refused(edited("\"n_iter\"", "\"n_iter\" \"n_iter\""), "expected ':' after a member name");
  expect_refused(edited("\"warnings\": [", "\"warnings\": [,"), "expected a value");
  expect_refused(edited("\n}\n", "\n},\n"), "unexpected text after the JSON document");
  expect_refused(edited("\"converged\"", "\"n_iter\": 1, \"converged\""), "member \"n_iter\" appears twice");
  expect_refused(edited("\"converged\": ", "\"converged\": 1, \"x\": "), "expected true or false");
  expect_refused(edited("\"warnings\": [", "\"warnings\": [\"a\x01\""), "control character inside a string");
  std::string deep = edited("\"format\"", "\"extra\": " + std::string(100, '[') + std::string(100, ']') + ", \"format\"");
  expect_refused(deep, "nested deeper than 32 levels");
  // Unknown members are ignored (a later 1.x writer may add some); missing ones are errors.
  EXPECT_NO_THROW(kmeans::KMeans<double>::from_json(
      edited("\"n_iter\"", "\"note\": {\"a\": [1, true, null, \"\\u00e9\\ud83d\\ude00\"]}, \"n_iter\"")));
  expect_refused(edited("\"n_iter\"", "\"n_iterx\""), "the member \"n_iter\" is missing");
  expect_refused(edited(", \"seed\": 5", ""), "\"params\" has no member \"seed\"");
  expect_refused(edited("\"seed\": 5", "\"seed\": -1"), "params.seed = -1 is out of range");
}

TEST(ModelFile, LoadedModelServesOnItsParamsBackendAndCanBeRefit) {
  kmeans::KMeans<double> km = kmeans::KMeans<double>::from_json(fitted<double>().to_json());
  km.params().backend = Backend::Reference;
  const std::vector<double> q = kmeans_test::four_blobs<double>(5, 3, 3.0);
  EXPECT_EQ(km.predict(q.data(), q.size() / 2).size(), q.size() / 2);
  EXPECT_EQ(km.result().backend, Backend::Cpu);  // which engine fitted it
  km.fit(q.data(), q.size() / 2, 2);             // a refit replaces the loaded result
  EXPECT_EQ(km.result().backend, Backend::Reference);
  EXPECT_EQ(km.result().labels.size(), q.size() / 2);
}

TEST(ModelFile, LoadedModelDoesNotServeOnTheStoredFitBackend) {
  // Fitted on a GPU, served where there may be none: predict runs on params().backend (Cpu
  // here), not on result().backend (Cuda), so it works on a machine without CUDA too.
  const std::string text = edited("\"backend\": \"cpu\",\n", "\"backend\": \"cuda\",\n");
  const auto km = kmeans::KMeans<double>::from_json(text);
  EXPECT_EQ(km.result().backend, Backend::Cuda);
  EXPECT_EQ(km.params().backend, Backend::Cpu);
  const std::vector<double> q = kmeans_test::four_blobs<double>(5, 3, 3.0);
  EXPECT_EQ(km.predict(q.data(), q.size() / 2), fitted<double>().predict(q.data(), q.size() / 2));
}

TEST(ModelFile, FromResultChecksItsParts) {
  kmeans::Params<double> p;
  p.k = 2;
  kmeans::Result<double> r;
  r.centroids = {1, 2, 3};
  expect_error([&] { kmeans::KMeans<double>::from_result(p, r, 2); }, "3 centroid values are not k x d for d = 2");
  r.centroids = {1, 2, 3, 4};
  expect_error([&] { kmeans::KMeans<double>::from_result(p, r, 0); }, "d = 0");
  // params.k is the next fit's k: kept as given (a model whose params changed after its fit).
  const auto km = kmeans::KMeans<double>::from_result(p, r, 1);
  EXPECT_EQ(km.params().k, 2);
  EXPECT_EQ(km.result().centroids.size(), 4u);
  EXPECT_EQ(km.n_features(), 1u);
  EXPECT_EQ(kmeans::KMeans<double>::from_json(km.to_json()).params().k, 2);
  p.k = 0;
  expect_error([&] { kmeans::KMeans<double>::from_result(p, r, 1); }, "params.k = 0 must be >= 1");
  p.k = 2;
  r.centroids[1] = std::nan("");
  expect_error([&] { kmeans::KMeans<double>::from_result(p, r, 2); }, "centroids contains NaN at row 0, column 1");
}

}  // namespace
