// SPDX-License-Identifier: Apache-2.0
// Out-of-core fits on the CPU or through the GPU: data read in chunks (a memory-mapped .npy file
// or a callback) under a memory budget, with the bits of the in-memory kmeans::fit.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "kmeans/kmeans.hpp"

namespace kmeans {

/// n rows of d values of T (row-major), delivered a range of rows at a time.
template <class T>
class RowSource {
 public:
  virtual ~RowSource() = default;
  virtual std::size_t rows() const = 0;  ///< n
  virtual std::size_t cols() const = 0;  ///< d
  /// Copies rows [first, first + count) into out (count x d). May throw kmeans::Error.
  virtual void read(std::size_t first, std::size_t count, T* out) = 0;
  /// Rows [first, first + count) in place (no copy), valid until release_view(); or null when
  /// the source has no such view (then read() fills a buffer). At most one view at a time.
  virtual const T* view(std::size_t first, std::size_t count) {
    (void)first;
    (void)count;
    return nullptr;
  }
  /// Gives back the memory of the current view (a mapped window is unmapped).
  virtual void release_view() {}
};

/// A source over a callback: rows(first, count, out) writes rows [first, first + count) into
/// out (count x d). The streamed fit calls it in increasing order of `first` for its passes,
/// and with count = 1 at any row for the rows it gathers (initial and moved centroids).
template <class T>
class CallbackSource final : public RowSource<T> {
 public:
  using Fn = std::function<void(std::size_t first, std::size_t count, T* out)>;
  CallbackSource(std::size_t n, std::size_t d, Fn rows) : n_(n), d_(d), rows_(std::move(rows)) {}
  std::size_t rows() const override { return n_; }
  std::size_t cols() const override { return d_; }
  void read(std::size_t first, std::size_t count, T* out) override { rows_(first, count, out); }

 private:
  std::size_t n_, d_;
  Fn rows_;
};

/// A source over n x d values of T already in host memory (row-major), read in place: for data
/// that fit in memory but should be fitted within a memory budget or streamed through the GPU
/// (the in-memory kmeans::fit does this itself when its working set exceeds the GPU's memory).
/// The array must outlive the fit.
template <class T>
class ArraySource final : public RowSource<T> {
 public:
  ArraySource(const T* x, std::size_t n, std::size_t d) : x_(x), n_(n), d_(d) {}
  std::size_t rows() const override { return n_; }
  std::size_t cols() const override { return d_; }
  void read(std::size_t first, std::size_t count, T* out) override {
    std::memcpy(out, x_ + first * d_, count * d_ * sizeof(T));
  }
  const T* view(std::size_t first, std::size_t) override { return x_ + first * d_; }

 private:
  const T* x_;
  std::size_t n_, d_;
};

/// What a .npy file holds: its dtype ('<f4' float32: true; '<f8' float64: false), its shape
/// (rows, cols; a 1-D file is rows x 1) and where the data starts.
struct NpyInfo {
  bool float32 = false;
  std::size_t rows = 0;
  std::size_t cols = 0;
  std::size_t data_offset = 0;
};

/// Reads the header of a 2-D (or 1-D) little-endian C-order float32 / float64 .npy file; throws
/// kmeans::Error naming the file and the problem (Fortran order, another dtype, a short file).
KMEANS_API NpyInfo npy_info(const std::string& path);

/// A .npy file of T (float: '<f4', double: '<f8') read through memory-mapped windows: each
/// view maps just its rows and release_view() unmaps them, so resident memory stays within
/// the window; read() uses pread. Throws kmeans::Error when the dtype is not T.
template <class T>
KMEANS_API std::unique_ptr<RowSource<T>> open_npy(const std::string& path);

/// How a streamed fit uses memory.
struct StreamOptions {
  /// Bound in bytes on the process's peak resident memory during the fit, counting what is
  /// resident when the fit starts (the program, the caller's arrays); 0: default_memory_limit().
  /// The fit sizes its chunks to stay inside it and throws kmeans::Error, naming both figures,
  /// when even one 4096-row block does not fit beside the per-point arrays (README, Streamed
  /// fits).
  std::size_t memory_limit = 0;
  /// Rows per chunk: 4096 times a power of two (chunks are aligned nodes of the sums' tree);
  /// 0: the largest the budget allows.
  std::size_t chunk_rows = 0;
};

/// Half the physical memory (sysconf): the default StreamOptions::memory_limit.
KMEANS_API std::size_t default_memory_limit();

/// What a streamed fit of n x d values of T with params p needs: `fixed` bytes whatever the
/// chunk size (the per-point arrays: labels, init's arrays, rescaled weights) and `per_row`
/// bytes per row of a chunk. Lets a caller size memory_limit; fit() uses the same figures.
struct StreamFootprint {
  std::size_t fixed = 0;
  std::size_t per_row = 0;
};
template <class T>
KMEANS_API StreamFootprint stream_footprint(std::size_t n, std::size_t d, const Params<T>& p);

/// Lloyd k-means over a RowSource: every phase (validation, initialisation, the passes,
/// empty-cluster repair, the final labels) reads the rows in chunks of 2^m whole 4096-row blocks,
/// so the result (centroids, labels, inertia, n_iter, sse_history, cluster_sizes) is bitwise
/// the in-memory kmeans::fit's on the same backend. Backend::Cpu: the passes on the CPU.
/// Backend::Cuda (and Auto when a GPU is usable and one chunk fits in its free memory): the
/// passes on the GPU, each chunk copied through pinned staging while the previous one is
/// computed (README, GPU streaming); else Auto runs on the CPU (Result::warnings says why when a
/// GPU was usable). Every Init works; initialisation reads the chunks on the host, and
/// Init::KMeansPlusPlus reads the data twice per greedy step (2k - 1 passes; Init::KMeansParallel
/// needs 7). Mini-batch params (batch_size > 0) and Backend::Reference are refused
/// (kmeans::Error).
/// Params::sample_weight (n values) stays in memory. Metric::Cosine normalises each chunk as it
/// is read, as the in-memory fit normalises its copy.
template <class T>
KMEANS_API Result<T> fit(RowSource<T>& source, const Params<T>& p, const StreamOptions& s = {});

}  // namespace kmeans
