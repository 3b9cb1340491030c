// SPDX-License-Identifier: Apache-2.0
// Reading and writing .npy (C-order, little-endian) and .csv matrices for the CLI, the benchmark
// and the tests. Not part of the installed library. Every failure throws kmeans::Error naming
// the file and the problem.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kmeans/kmeans.hpp"

namespace kmeans::io {

enum class Dtype { Float32, Float64 };

/// A 2-D matrix read from a file; exactly one of f32 / f64 holds the rows * cols values.
struct Matrix {
  Dtype dtype = Dtype::Float64;
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::vector<float> f32;
  std::vector<double> f64;
};

/// Whether the first line of a .csv is a header. Auto: it is a header when none of its fields is
/// a number (a first line with one number is data, and a bad field in it is an error).
enum class CsvHeader { Auto, Present, Absent };

/// Reads a 2-D float32/float64 .npy (C order) or a .csv (optional header row, float64),
/// chosen by the file extension.
Matrix read_matrix(const std::string& path, CsvHeader header = CsvHeader::Auto);

/// Reads a matrix from bytes already in memory (e.g. standard input), the format chosen by the
/// content: a .npy when it starts with the .npy magic string, else .csv text. `name` names the
/// source in error messages.
Matrix read_matrix_bytes(std::string bytes, const std::string& name,
                         CsvHeader header = CsvHeader::Auto);

/// Reads n values, e.g. sample weights: a 1-D (n,) or column (n, 1) float32/float64 .npy, or a
/// .csv with one value per line (optional header row, float64). Returned as an n x 1 Matrix.
Matrix read_vector(const std::string& path);

/// Reads a .npy of any number of dimensions whose dtype is exactly T (float: '<f4', double:
/// '<f8', std::int32_t: '<i4'; little-endian, C order). `shape` receives the dimensions.
template <class T>  // float, double, std::int32_t
std::vector<T> read_npy(const std::string& path, std::vector<std::int64_t>& shape);

/// Reads rows [first, first + count) of a 2-D float32/float64 .npy (or, with as_vector, of a
/// 1-D (n,) / column (n, 1) one) by seeking past the others: a shard of a file that may not fit
/// in memory (kmeans fit --mpi). The whole file's rows and columns go to total_rows/total_cols
/// (when not null); count 0 only checks the file. The same checks as read_matrix.
Matrix read_npy_rows(const std::string& path, std::int64_t first, std::int64_t count,
                     bool as_vector = false, std::int64_t* total_rows = nullptr,
                     std::int64_t* total_cols = nullptr);

/// Converts in place to the requested dtype.
void convert(Matrix& m, Dtype to);

/// Writes a .npy file: 2-D (rows x cols) when cols > 0, 1-D (rows) when cols == 0.
template <class T>  // float, double, std::int32_t
void write_npy(const std::string& path, const T* data, std::int64_t rows, std::int64_t cols);

/// Writes a .csv file (no header): rows lines of cols comma-separated values (cols == 0: one
/// value per line). Floating-point values are written with enough digits to round-trip.
template <class T>  // float, double, std::int32_t
void write_csv(const std::string& path, const T* data, std::int64_t rows, std::int64_t cols);

/// write_npy or write_csv by the path's extension (.npy / .csv); anything else is an error.
/// Every writer goes through a temporary file beside `path` that is renamed over it at the end,
/// so a failed write never leaves a partial file at `path`.
template <class T>
void write_matrix(const std::string& path, const T* data, std::int64_t rows, std::int64_t cols);

/// True when the path ends in .npy or .csv (any case): the formats read_matrix / write_matrix know.
bool has_matrix_extension(const std::string& path);

/// True when `a` and `b` are the same file: std::filesystem::equivalent when both exist (other
/// spellings, symbolic and hard links), else the same weakly canonical path.
bool same_file(const std::string& a, const std::string& b);

/// Throws kmeans::Error unless a file can be created at `path`: its directory exists and is
/// writable and `path` is not a directory. Lets a caller fail before a long computation.
void check_writable(const std::string& path);

/// Several output files written all or nothing: add() writes each under a temporary name beside
/// its target, commit() renames them all into place; the destructor removes whatever was not
/// committed (after an error, nothing is left behind). SIGINT, SIGTERM and SIGHUP also remove
/// the temporaries before the process ends, and cannot split a commit() (see temp_files.cpp).
class StagedWrites {
 public:
  StagedWrites() = default;
  StagedWrites(const StagedWrites&) = delete;
  StagedWrites& operator=(const StagedWrites&) = delete;
  ~StagedWrites();

  /// Writes data (rows x cols, cols == 0: 1-D) in the format of `path`'s extension.
  template <class T>  // float, double, std::int32_t
  void add(const std::string& path, const T* data, std::int64_t rows, std::int64_t cols);

  /// Writes `text` as it is (e.g. a model file, KMeans::to_json()), whatever the extension.
  void add_text(const std::string& path, const std::string& text);

  /// Renames every temporary over its target.
  void commit();

 private:
  struct Staged {
    std::string temp;
    std::string target;
    int slot = -1;  ///< Its entry in the registry the signal handler cleans up.
  };
  std::vector<Staged> files_;
};

}  // namespace kmeans::io
