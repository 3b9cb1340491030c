// SPDX-License-Identifier: Apache-2.0
// Tests of the .npy/.csv readers (src/io/): round trips, header variations, files written by
// NumPy, and every malformed file giving a kmeans::Error that names the problem.
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "io_test_support.hpp"

namespace {

using namespace kmeans_io_test;

// --- round trips ---------------------------------------------------------------------------------

TEST_F(IoTest, NpyFloat64RoundTripIsExact) {
  const std::vector<double> x = random_values(7 * 5, 1);
  kmeans::io::write_npy(path("a.npy"), x.data(), 7, 5);
  const Matrix m = kmeans::io::read_matrix(path("a.npy"));
  EXPECT_EQ(m.dtype, Dtype::Float64);
  EXPECT_EQ(m.rows, 7);
  EXPECT_EQ(m.cols, 5);
  EXPECT_EQ(m.f64, x);  // bit-exact: no arithmetic between writing and reading
  EXPECT_TRUE(m.f32.empty());
}

TEST_F(IoTest, NpyFloat32RoundTripIsExact) {
  const std::vector<double> x64 = random_values(4 * 3, 2);
  const std::vector<float> x(x64.begin(), x64.end());
  kmeans::io::write_npy(path("a.npy"), x.data(), 4, 3);
  const Matrix m = kmeans::io::read_matrix(path("a.npy"));
  EXPECT_EQ(m.dtype, Dtype::Float32);
  EXPECT_EQ(m.rows, 4);
  EXPECT_EQ(m.cols, 3);
  EXPECT_EQ(m.f32, x);
}

TEST_F(IoTest, NpyInt32OneAndTwoDimensions) {
  const std::vector<std::int32_t> labels = {0, 3, -7, 2147483647, -2147483647 - 1, 5};
  std::vector<std::int64_t> shape;
  kmeans::io::write_npy(path("l1.npy"), labels.data(), 6, 0);
  EXPECT_EQ(kmeans::io::read_npy<std::int32_t>(path("l1.npy"), shape), labels);
  EXPECT_EQ(shape, (std::vector<std::int64_t>{6}));
  kmeans::io::write_npy(path("l2.npy"), labels.data(), 2, 3);
  EXPECT_EQ(kmeans::io::read_npy<std::int32_t>(path("l2.npy"), shape), labels);
  EXPECT_EQ(shape, (std::vector<std::int64_t>{2, 3}));
  // The 2-D int32 file is not a float matrix.
  expect_read_error(path("l2.npy"), {"unsupported dtype '<i4' (int32)"});
}

TEST_F(IoTest, NpyFloat1DReadsWithShape) {
  const std::vector<float> v = {1.0f, -0.5f, 3.0f};
  kmeans::io::write_npy(path("v.npy"), v.data(), 3, 0);
  std::vector<std::int64_t> shape;
  EXPECT_EQ(kmeans::io::read_npy<float>(path("v.npy"), shape), v);
  EXPECT_EQ(shape, (std::vector<std::int64_t>{3}));
  expect_read_error(path("v.npy"), {"1-D with shape (3,)", "expected a 2-D array"});
}

/// Expects read_vector(path) to throw kmeans::Error whose message has every given substring.
void expect_vector_error(const std::string& path, const std::vector<std::string>& parts) {
  try {
    kmeans::io::read_vector(path);
    ADD_FAILURE() << "read_vector(" << path << ") did not throw";
  } catch (const kmeans::Error& e) {
    const std::string msg = e.what();
    for (const std::string& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << msg << "\n  lacks: " << p;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << "one line: " << msg;
  }
}

TEST_F(IoTest, VectorsReadFromOneAndTwoDimensionalNpyAndCsv) {
  const std::vector<double> w = random_values(5, 3);
  kmeans::io::write_npy(path("w1.npy"), w.data(), 5, 0);  // (5,)
  kmeans::io::write_npy(path("w2.npy"), w.data(), 5, 1);  // (5, 1)
  kmeans::io::write_csv(path("w.csv"), w.data(), 5, 0);   // one value per line
  for (const char* name : {"w1.npy", "w2.npy", "w.csv"}) {
    SCOPED_TRACE(name);
    const Matrix m = kmeans::io::read_vector(path(name));
    EXPECT_EQ(m.dtype, Dtype::Float64);
    EXPECT_EQ(m.rows, 5);
    EXPECT_EQ(m.cols, 1);
    EXPECT_EQ(m.f64, w);  // bit-exact, the .csv included (round-trip digits)
  }
  const std::vector<float> w32(w.begin(), w.end());
  kmeans::io::write_npy(path("w32.npy"), w32.data(), 5, 0);
  const Matrix m32 = kmeans::io::read_vector(path("w32.npy"));
  EXPECT_EQ(m32.dtype, Dtype::Float32);
  EXPECT_EQ(m32.f32, w32);
  write_bytes("header.csv", "weight\n1.5\n2\n");
  EXPECT_EQ(kmeans::io::read_vector(path("header.csv")).f64, (std::vector<double>{1.5, 2.0}));
}

TEST_F(IoTest, VectorsOfTheWrongShapeOrTypeAreErrors) {
  kmeans::io::write_npy(path("m.npy"), kSix.data(), 3, 2);
  expect_vector_error(path("m.npy"), {"m.npy", "2-D with shape (3, 2)", "expected a 1-D array (n,) or a column (n, 1)"});
  const std::vector<double> cube(8, 1.0);
  write_bytes("cube.npy", npy("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2, 2), }",
                              bytes_of(cube)));
  expect_vector_error(path("cube.npy"), {"3-D with shape (2, 2, 2)"});
  const std::vector<std::int32_t> ints = {1, 2, 3};
  kmeans::io::write_npy(path("i.npy"), ints.data(), 3, 0);
  expect_vector_error(path("i.npy"), {"unsupported dtype '<i4' (int32)"});
  kmeans::io::write_csv(path("two.csv"), kSix.data(), 3, 2);
  expect_vector_error(path("two.csv"), {"two.csv", "has 2 columns; expected one value per line"});
  write_bytes("ragged.csv", "1\n2\n3,4\n");
  expect_vector_error(path("ragged.csv"), {"line 3 has 2 fields, expected 1"});
  write_bytes("w.txt", "1\n2\n");
  expect_vector_error(path("w.txt"), {"unknown input format '.txt'"});
  expect_vector_error(path("missing.npy"), {"missing.npy", "cannot open"});
}

TEST_F(IoTest, NpyHeaderIsVersion1AlignedTo64Bytes) {
  kmeans::io::write_npy(path("a.npy"), kSix.data(), 3, 2);
  std::ifstream in(path("a.npy"), std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_GE(bytes.size(), 10u);
  EXPECT_EQ(bytes.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
  const std::size_t header_len = static_cast<unsigned char>(bytes[8]) |
                                 (static_cast<std::size_t>(static_cast<unsigned char>(bytes[9])) << 8);
  EXPECT_EQ((10 + header_len) % 64, 0u);
  EXPECT_EQ(bytes[10 + header_len - 1], '\n');
  EXPECT_EQ(bytes.size(), 10 + header_len + kSix.size() * sizeof(double));
  EXPECT_NE(bytes.find("'shape': (3, 2)"), std::string::npos);
}

TEST_F(IoTest, EmptyShapesRoundTrip) {
  // Reading does not judge emptiness (the CLI and the library report n = 0 or d = 0).
  kmeans::io::write_npy<double>(path("e.npy"), nullptr, 0, 3);
  const Matrix e = kmeans::io::read_matrix(path("e.npy"));
  EXPECT_EQ(e.rows, 0);
  EXPECT_EQ(e.cols, 3);
  write_bytes("z.npy", npy("{'descr': '<f8', 'fortran_order': False, 'shape': (5, 0), }\n", ""));
  const Matrix m = kmeans::io::read_matrix(path("z.npy"));
  EXPECT_EQ(m.rows, 5);
  EXPECT_EQ(m.cols, 0);
  EXPECT_TRUE(m.f64.empty());
}

TEST_F(IoTest, CsvRoundTripIsExactForFloat64AndFloat32) {
  std::vector<double> x = random_values(6 * 3, 3);
  x[0] = 5e-324;  // denormal
  x[1] = -0.0;
  x[2] = std::numeric_limits<double>::max();
  x[3] = 0.1;
  kmeans::io::write_csv(path("a.csv"), x.data(), 6, 3);
  Matrix m = kmeans::io::read_matrix(path("a.csv"));
  EXPECT_EQ(m.dtype, Dtype::Float64);
  EXPECT_EQ(m.rows, 6);
  EXPECT_EQ(m.cols, 3);
  EXPECT_EQ(m.f64, x);
  EXPECT_TRUE(std::signbit(m.f64[1]));

  const std::vector<float> xf(x.begin() + 3, x.end());
  kmeans::io::write_matrix(path("f.CSV"), xf.data(), 5, 3);  // extension in any case
  m = kmeans::io::read_matrix(path("f.CSV"));
  ASSERT_EQ(m.f64.size(), xf.size());
  for (std::size_t i = 0; i < xf.size(); ++i) EXPECT_EQ(static_cast<float>(m.f64[i]), xf[i]);
}

TEST_F(IoTest, CsvLabelsOnePerLine) {
  const std::vector<std::int32_t> labels = {2, 0, 1};
  kmeans::io::write_matrix(path("l.csv"), labels.data(), 3, 0);
  std::ifstream in(path("l.csv"));
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, "2\n0\n1\n");
}

TEST_F(IoTest, WriteMatrixChoosesTheFormatByExtension) {
  kmeans::io::write_matrix(path("a.npy"), kSix.data(), 2, 3);
  EXPECT_EQ(kmeans::io::read_matrix(path("a.npy")).f64, kSix);
  try {
    kmeans::io::write_matrix(path("a.txt"), kSix.data(), 2, 3);
    ADD_FAILURE() << "no error for .txt";
  } catch (const kmeans::Error& e) {
    EXPECT_NE(std::string(e.what()).find("unknown output format '.txt'"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(path("a.txt")));
}

TEST_F(IoTest, ConvertBetweenDtypes) {
  Matrix m;
  m.rows = 2;
  m.cols = 3;
  m.f64 = kSix;
  kmeans::io::convert(m, Dtype::Float32);
  EXPECT_EQ(m.dtype, Dtype::Float32);
  EXPECT_TRUE(m.f64.empty());
  kmeans::io::convert(m, Dtype::Float64);
  EXPECT_EQ(m.f64, kSix);  // these values are exact in float32

  m.f64[4] = 1e300;
  try {
    kmeans::io::convert(m, Dtype::Float32);
    ADD_FAILURE() << "1e300 converted to float32 without an error";
  } catch (const kmeans::Error& e) {
    EXPECT_NE(std::string(e.what()).find("1e+300 at row 1, column 1 is out of the float32 range"),
              std::string::npos)
        << e.what();
  }
}

// --- header variations ---------------------------------------------------------------------------

TEST_F(IoTest, NpyHeaderVariationsAreAccepted) {
  const std::string data = bytes_of(kSix);
  const std::vector<std::string> dicts = {
      "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2), }",
      "{'shape': (3, 2), 'fortran_order': False, 'descr': '<f8'}",           // any key order
      "{\"descr\": \"<f8\", \"fortran_order\": False, \"shape\": (3,2)}",   // double quotes
      "  {  'descr' :'=f8' ,\n 'fortran_order':False,'shape':( 3 , 2 , ) }  \n",  // spacing, '='
      "{'descr': '|f8', 'fortran_order': False, 'shape': (3, 2)}\0\0",      // '|', NUL padding
      "{'descr': '<f8', 'fortran_order': False, 'shape': (3L, 2L), }",       // Python 2 longs
  };
  for (std::size_t i = 0; i < dicts.size(); ++i) {
    write_bytes("h.npy", npy(dicts[i], data));
    const Matrix m = kmeans::io::read_matrix(path("h.npy"));
    EXPECT_EQ(m.rows, 3) << dicts[i];
    EXPECT_EQ(m.cols, 2) << dicts[i];
    EXPECT_EQ(m.f64, kSix) << dicts[i];
  }
  // Format versions 2.0 and 3.0 have a 4-byte header length.
  for (int major : {2, 3}) {
    write_bytes("v.npy", npy("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }\n", data, major));
    const Matrix m = kmeans::io::read_matrix(path("v.npy"));
    EXPECT_EQ(m.rows, 2);
    EXPECT_EQ(m.f64, kSix);
  }
  // Fortran order is harmless for 1-D arrays.
  write_bytes("f1.npy", npy("{'descr': '<f8', 'fortran_order': True, 'shape': (6,), }", data));
  std::vector<std::int64_t> shape;
  EXPECT_EQ(kmeans::io::read_npy<double>(path("f1.npy"), shape), kSix);
}

TEST(IoNumpyFiles, FilesWrittenByNumpyAreRead) {
  // make_data.py: (arange(12) * 0.5 - 1.25).reshape(4, 3), in format versions 1.0, 2.0, 3.0.
  std::vector<double> expected(12);
  for (int i = 0; i < 12; ++i) expected[static_cast<std::size_t>(i)] = i * 0.5 - 1.25;
  for (const char* name : {"numpy_v1_f8.npy", "numpy_v3_f8.npy"}) {
    const Matrix m = kmeans::io::read_matrix((kDataDir / name).string());
    EXPECT_EQ(m.dtype, Dtype::Float64) << name;
    EXPECT_EQ(m.rows, 4) << name;
    EXPECT_EQ(m.cols, 3) << name;
    EXPECT_EQ(m.f64, expected) << name;
  }
  const Matrix m = kmeans::io::read_matrix((kDataDir / "numpy_v2_f4.npy").string());
  EXPECT_EQ(m.dtype, Dtype::Float32);
  ASSERT_EQ(m.f32.size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) EXPECT_EQ(static_cast<double>(m.f32[i]), expected[i]);
  std::vector<std::int64_t> shape;
  EXPECT_EQ(kmeans::io::read_npy<std::int32_t>((kDataDir / "numpy_i4_1d.npy").string(), shape),
            (std::vector<std::int32_t>{3, -1, 7, 0}));
}

// --- malformed .npy files ------------------------------------------------------------------------

TEST_F(IoTest, MalformedNpyFilesAreErrors) {
  const std::string data = bytes_of(kSix);
  const std::string good_dict = "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2), }";
  const std::string good = npy(good_dict, data);
  struct Case {
    std::string name, bytes;
    std::vector<std::string> parts;
  };
  auto with = [&](const std::string& dict, const std::string& payload = "") {
    return npy(dict, payload.empty() ? data : payload);
  };
  const std::vector<Case> cases = {
      {"empty.npy", "", {"empty.npy", "is empty"}},
      {"short.npy", std::string("\x93NUM", 4), {"truncated .npy file"}},
      {"magic.npy", "PK\x03\x04 this is a zip file", {"bad magic string"}},
      {"version.npy", std::string("\x93NUMPY\x04\x00", 8) + "\x10\x00" + good_dict, {"version 4.0"}},
      {"no_len.npy", std::string("\x93NUMPY\x02\x00\x10", 9), {"header length is cut off"}},
      {"truncated_header.npy", good.substr(0, 30), {"truncated .npy header", "header length"}},
      {"huge_header.npy", std::string("\x93NUMPY\x02\x00", 8) + std::string("\xff\xff\xff\x7f", 4) + "{}",
       {"header length 2147483647 bytes exceeds the limit"}},
      {"int64.npy", with("{'descr': '<i8', 'fortran_order': False, 'shape': (3, 2), }"),
       {"unsupported dtype '<i8' (int64)", "expected float32 '<f4' or float64 '<f8'"}},
      {"float16.npy", with("{'descr': '<f2', 'fortran_order': False, 'shape': (3, 2), }"),
       {"'<f2' (float16)"}},
      {"complex.npy", with("{'descr': '<c16', 'fortran_order': False, 'shape': (3, 1), }"),
       {"'<c16' (complex128)"}},
      {"big_endian.npy", with("{'descr': '>f8', 'fortran_order': False, 'shape': (3, 2), }"),
       {"big-endian dtype '>f8'"}},
      {"fortran.npy", with("{'descr': '<f8', 'fortran_order': True, 'shape': (3, 2), }"),
       {"Fortran-order", "fortran_order is True"}},
      {"object.npy", with("{'descr': '|O', 'fortran_order': False, 'shape': (3, 2), }"),
       {"'|O' (object)", "object arrays are not supported"}},
      {"structured.npy", with("{'descr': [('a', '<f8')], 'fortran_order': False, 'shape': (6,), }"),
       {"structured arrays"}},
      {"bad_descr.npy", with("{'descr': 'xyz', 'fortran_order': False, 'shape': (3, 2), }"),
       {"unsupported dtype 'xyz'"}},
      {"one_d.npy", with("{'descr': '<f8', 'fortran_order': False, 'shape': (6,), }"),
       {"1-D with shape (6,)"}},
      {"three_d.npy", with("{'descr': '<f8', 'fortran_order': False, 'shape': (3, 1, 2), }"),
       {"3-D with shape (3, 1, 2)"}},
      {"scalar.npy", with("{'descr': '<f8', 'fortran_order': False, 'shape': (), }", data.substr(0, 8)),
       {"0-D with shape ()"}},
      {"truncated_data.npy", good.substr(0, good.size() - 1),
       {"truncated data: shape (3, 2) of '<f8' needs 48 bytes but only 47 follow the header"}},
      {"extra_data.npy", good + "x", {"extra data", "needs 48 bytes but 49 follow"}},
      {"overflow.npy", with("{'descr': '<f8', 'fortran_order': False, 'shape': (4611686018427387904, 4), }"),
       {"shape (4611686018427387904, 4) overflows"}},
      {"dim_too_big.npy", with("{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999999999999, 1), }"),
       {"does not fit in 64 bits"}},
      {"negative.npy", with("{'descr': '<f8', 'fortran_order': False, 'shape': (-3, 2), }"),
       {"expected a non-negative integer in 'shape'"}},
      {"huge_shape_small_file.npy", with("{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000, 1000), }"),
       {"truncated data"}},
      {"missing_key.npy", with("{'descr': '<f8', 'fortran_order': False, }"), {"key 'shape' is missing"}},
      {"unknown_key.npy", with("{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2), 'x': 1}"),
       {"unexpected key 'x'"}},
      {"duplicate_key.npy", with("{'descr': '<f8', 'descr': '<f8', 'fortran_order': False, 'shape': (3, 2)}"),
       {"'descr' appears twice"}},
      {"not_a_dict.npy", with("['descr', '<f8']"), {"malformed .npy header", "expected '{'"}},
      {"bad_bool.npy", with("{'descr': '<f8', 'fortran_order': 0, 'shape': (3, 2), }"),
       {"expected True or False"}},
      {"unterminated.npy", with("{'descr': '<f8"), {"unterminated string"}},
      {"trailing.npy", with("{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2)} junk"),
       {"unexpected text after the closing '}'"}},
      {"no_close.npy", with("{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2)"),
       {"malformed .npy header"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    write_bytes(c.name, c.bytes);
    std::vector<std::string> parts = c.parts;
    parts.push_back(c.name);  // every message names the file
    expect_read_error(path(c.name), parts);
  }
}

TEST_F(IoTest, ReadNpyChecksTheElementType) {
  kmeans::io::write_npy(path("a.npy"), kSix.data(), 3, 2);
  std::vector<std::int64_t> shape;
  try {
    kmeans::io::read_npy<std::int32_t>(path("a.npy"), shape);
    ADD_FAILURE() << "no error";
  } catch (const kmeans::Error& e) {
    EXPECT_NE(std::string(e.what()).find("'<f8' (float64) is not the expected '<i4'"), std::string::npos)
        << e.what();
  }
}

TEST_F(IoTest, MissingFilesDirectoriesAndUnknownExtensions) {
  expect_read_error(path("none.npy"), {"none.npy", "cannot open", "No such file"});
  expect_read_error(path("none.csv"), {"none.csv", "cannot open"});
  fs::create_directories(path("dir.npy"));
  expect_read_error(path("dir.npy"), {"is a directory"});
  write_bytes("a.txt", "1,2\n");
  expect_read_error(path("a.txt"), {"unknown input format '.txt'"});
}

// --- .csv ----------------------------------------------------------------------------------------

TEST_F(IoTest, CsvVariationsAreAccepted) {
  const std::vector<double> expected = {1.5, -2.0, 3.0, 400.0, 0.001, 6.0};
  const std::vector<std::string> texts = {
      "1.5,-2\n3,4e2\n1e-3,6\n",                    // no header
      "x,y\n1.5,-2\n3,4e2\n1e-3,6\n",               // header
      "\"a b\", c\r\n1.5 , -2\r\n3,\t400\r\n0.001,+6\r\n",  // quoted header, CRLF, spaces, '+'
      "1.5,-2\n3,400\n0.001,6",                     // no final newline
      "1.5,-2\n3,400\n0.001,6\n\n  \n\r\n",         // blank lines at the end
      "\xEF\xBB\xBFx,y\n1.5,-2\n3,400\n0.001,6\n",  // UTF-8 byte-order mark
      "x,y\r1.5,-2\r3,400\r0.001,6\r",                // CR-only line endings (classic Mac OS)
      "1.5,-2\r\n3,400\r0.001,6\n",                  // mixed line endings
      "x,\n1.5,-2\n3,400\n0.001,6\n",                // a header field may be empty
  };
  for (const std::string& t : texts) {
    write_bytes("v.csv", t);
    const Matrix m = kmeans::io::read_matrix(path("v.csv"));
    EXPECT_EQ(m.dtype, Dtype::Float64) << t;
    EXPECT_EQ(m.rows, 3) << t;
    EXPECT_EQ(m.cols, 2) << t;
    EXPECT_EQ(m.f64, expected) << t;
  }
  write_bytes("one.csv", "7\n8\n");
  const Matrix one = kmeans::io::read_matrix(path("one.csv"));
  EXPECT_EQ(one.rows, 2);
  EXPECT_EQ(one.cols, 1);
  // nan and inf parse; the callers' finiteness check rejects them with the row and column.
  write_bytes("nan.csv", "1,nan\n-inf,2\n");
  const Matrix nan = kmeans::io::read_matrix(path("nan.csv"));
  ASSERT_EQ(nan.f64.size(), 4u);
  EXPECT_TRUE(std::isnan(nan.f64[1]));
  EXPECT_TRUE(std::isinf(nan.f64[2]) && nan.f64[2] < 0);
}

TEST_F(IoTest, MalformedCsvFilesAreErrors) {
  struct Case {
    std::string name, text;
    std::vector<std::string> parts;
  };
  const std::vector<Case> cases = {
      {"empty.csv", "", {"is empty (0 bytes)"}},
      {"blank.csv", " \n\r\n\n", {"is empty: no rows"}},
      {"header_only.csv", "x,y\n", {"header row but no data rows"}},
      {"ragged.csv", "1,2\n3,4\n5\n", {"line 3 has 1 fields, expected 2 as on line 1"}},
      {"ragged_long.csv", "x,y\n1,2\n3,4,5\n", {"line 3 has 3 fields, expected 2 as on line 2"}},
      {"header_width.csv", "x,y,z\n1,2\n", {"header (line 1) has 3 fields but line 2 has 2"}},
      {"empty_field.csv", "1,2\n3,\n", {"line 2, column 2: empty field"}},
      {"leading_comma.csv", "1,2\n,3\n", {"line 2, column 1: empty field"}},
      {"text.csv", "a,b\n1,2\n3,abc\n", {"line 3, column 2: 'abc' is not a number"}},
      {"suffix.csv", "1,2\n3,4x\n", {"line 2, column 2: '4x' is not a number"}},
      {"double_sign.csv", "1,2\n3,+-4\n", {"'+-4' is not a number"}},
      {"hex.csv", "1,2\n3,0x10\n", {"'0x10' is not a number"}},
      {"semicolons.csv", "1;2\n3;4\n", {"line 2, column 1: '3;4' is not a number"}},
      {"blank_middle.csv", "1,2\n\n3,4\n", {"line 2 is empty"}},
      {"blank_first.csv", "\n1,2\n", {"line 1 is empty"}},
      {"range.csv", "1,2\n1e999,4\n", {"line 2, column 1: '1e999' is out of the float64 range"}},
      {"nul.csv", std::string("1,2\n3,\0\n", 8), {"NUL bytes"}},
      {"long_field.csv", "1,2\n3," + std::string(100, 'z') + "\n", {"'zzzz", "...' is not a number"}},
      // A first line with a number is data, not a header: its bad field is an error, named.
      {"typo_first_row.csv", "1,2O\n3,4\n5,6\n",
       {"line 1, column 2: '2O' is not a number (line 1 is read as data, not as a header, because "
        "its column 1 '1' is a number)"}},
      {"typo_first_field.csv", "x,2\n3,4\n", {"line 1, column 1: 'x' is not a number", "column 2 '2'"}},
      {"first_row_out_of_range.csv", "y,1e999\n3,4\n", {"line 1, column 1: 'y' is not a number",
                                                          "column 2 '1e999' is a number"}},
      {"cr_ragged.csv", "1,2\r3\r", {"line 2 has 1 fields, expected 2 as on line 1"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    write_bytes(c.name, c.text);
    std::vector<std::string> parts = c.parts;
    parts.push_back(c.name);
    expect_read_error(path(c.name), parts);
  }
}

TEST_F(IoTest, CsvHeaderCanBeForcedEitherWay) {
  using kmeans::io::CsvHeader;
  write_bytes("numeric_header.csv", "1,2\n3,4\n5,6\n");
  const Matrix forced = kmeans::io::read_matrix(path("numeric_header.csv"), CsvHeader::Present);
  EXPECT_EQ(forced.rows, 2);
  EXPECT_EQ(forced.f64, (std::vector<double>{3, 4, 5, 6}));
  EXPECT_EQ(kmeans::io::read_matrix(path("numeric_header.csv"), CsvHeader::Auto).rows, 3);
  EXPECT_EQ(kmeans::io::read_matrix(path("numeric_header.csv"), CsvHeader::Absent).rows, 3);
  write_bytes("typo.csv", "1,2O\n3,4\n5,6\n");
  EXPECT_EQ(kmeans::io::read_matrix(path("typo.csv"), CsvHeader::Present).rows, 2);
  write_bytes("text_header.csv", "x,y\n3,4\n");
  EXPECT_EQ(kmeans::io::read_matrix(path("text_header.csv")).rows, 1);
  try {
    kmeans::io::read_matrix(path("text_header.csv"), CsvHeader::Absent);
    ADD_FAILURE() << "a forced data line 'x,y' must be an error";
  } catch (const kmeans::Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("line 1, column 1: 'x' is not a number"), std::string::npos) << msg;
    EXPECT_EQ(msg.find("read as data"), std::string::npos) << "no guess was made: " << msg;
  }
  write_bytes("one_line.csv", "1,2\n");
  EXPECT_THROW(kmeans::io::read_matrix(path("one_line.csv"), CsvHeader::Present), kmeans::Error);
}

TEST_F(IoTest, MatricesAreReadFromBytesByContent) {
  const std::string npy_bytes =
      npy("{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2), }", bytes_of(kSix));
  const Matrix a = kmeans::io::read_matrix_bytes(npy_bytes, "<stdin>");
  EXPECT_EQ(a.dtype, Dtype::Float64);
  EXPECT_EQ(a.rows, 3);
  EXPECT_EQ(a.f64, kSix);
  const Matrix b = kmeans::io::read_matrix_bytes("x,y\n1.5,-2\n3.25,4\n-5.5,6\n", "<stdin>");
  EXPECT_EQ(b.rows, 3);
  EXPECT_EQ(b.f64, kSix);
  EXPECT_EQ(kmeans::io::read_matrix_bytes("1,2\n3,4\n", "<stdin>", kmeans::io::CsvHeader::Present).rows, 1);
  for (const std::string& bad : {std::string(), npy_bytes.substr(0, npy_bytes.size() - 3),
                                 std::string("\x93NUMPY\x01", 7), std::string("1,2\n3\n")}) {
    try {
      kmeans::io::read_matrix_bytes(bad, "<stdin>");
      ADD_FAILURE() << "no error for " << bad.size() << " bytes";
    } catch (const kmeans::Error& e) {
      EXPECT_EQ(std::string(e.what()).rfind("<stdin>: ", 0), 0u) << e.what();
    }
  }
}

TEST_F(IoTest, HugeNpyItemSizesAreNamedWithoutOverflow) {
  // '<f300000000': 300000000 * 8 bits does not fit in an int (it printed "float-1894967296").
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"<f300000000", "'<f300000000' (float2400000000)"},
      {"<i2147483648", "'<i2147483648' (int17179869184)"},
      {"<f2305843009213693952", "(float of 2305843009213693952 bytes)"},  // 8x overflows 64 bits
      {"<u18446744073709551615", "(uint of 18446744073709551615 bytes)"},
      {"<f99999999999999999999", "unsupported dtype '<f99999999999999999999'"},  // > 64 bits
  };
  for (const auto& [descr, expected] : cases) {
    SCOPED_TRACE(descr);
    write_bytes("big.npy", npy("{'descr': '" + descr + "', 'fortran_order': False, 'shape': (3, 2), }",
                               bytes_of(kSix)));
    expect_read_error(path("big.npy"), {expected});
    std::vector<std::int64_t> shape;
    EXPECT_THROW(kmeans::io::read_npy<float>(path("big.npy"), shape), kmeans::Error);
    EXPECT_THROW(kmeans::io::read_vector(path("big.npy")), kmeans::Error);
  }
  // A big-endian huge item size: the suggested conversion quotes the size, in 64 bits.
  write_bytes("big_be.npy", npy("{'descr': '>f300000000', 'fortran_order': False, 'shape': (3, 2), }",
                                bytes_of(kSix)));
  expect_read_error(path("big_be.npy"), {"big-endian dtype '>f300000000' (float2400000000)",
                                         "a.astype('<f300000000')"});
}

}  // namespace
