// SPDX-License-Identifier: Apache-2.0
// The streamed fit's internals: chunks of whole blocks in the engine's units, and the Engine and
// DataOps that run the driver's phases over them (stream_engine.cpp, stream_ops.cpp).
#pragma once

#include <sys/mman.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "engine.hpp"
#include "internal.hpp"
#include "kmeans/stream.hpp"
#include "sphere.hpp"

namespace kmeans::detail::stream {

/// Rows per block: the engine's fixed reduction block (chunks are whole blocks).
constexpr std::int64_t kBlock = kReduceBlock;

/// The source's rows a chunk at a time (chunk_rows: kBlock times a power of two), on the unit
/// sphere when `sphere` (Metric::Cosine: normalise_rows, as the in-memory fit's copy), then
/// multiplied by 2^data_exp (Units) when that is not 0. A chunk is a view of the source when it
/// has one and neither applies, else a copy in one buffer of chunk_rows rows.
template <class T>
class Chunks {
 public:
  Chunks(RowSource<T>& src, std::int64_t chunk_rows, int data_exp, bool sphere = false,
         int n_threads = 0)
      : src_(src),
        n_(static_cast<std::int64_t>(src.rows())),
        d_(static_cast<std::int64_t>(src.cols())),
        chunk_rows_(chunk_rows),
        data_exp_(data_exp),
        sphere_(sphere),
        n_threads_(n_threads) {}
  Chunks(const Chunks&) = delete;
  Chunks& operator=(const Chunks&) = delete;
  ~Chunks() { src_.release_view(); }

  std::int64_t n() const { return n_; }
  std::int64_t d() const { return d_; }
  std::int64_t chunk_rows() const { return chunk_rows_; }
  std::int64_t n_chunks() const { return (n_ + chunk_rows_ - 1) / chunk_rows_; }

  /// Calls fn(first, rows, x) for every chunk in row order; x (rows x d, engine units) is valid
  /// during the call only.
  template <class F>
  void for_each(F&& fn) {
    for (std::int64_t first = 0; first < n_; first += chunk_rows_) {
      const std::int64_t rows = std::min(chunk_rows_, n_ - first);
      const T* x = load(first, rows);
      struct Release {
        RowSource<T>& s;
        ~Release() { s.release_view(); }
      } release{src_};
      fn(first, rows, x);
    }
  }

  /// Chunk `index` (rows [index * chunk_rows, + rows)) into out (rows x d, engine units), for
  /// a staging buffer: the source's view copied in parallel when it has one and neither
  /// applies, else read straight into out and transformed there. Returns rows.
  std::int64_t copy_chunk(std::int64_t index, T* out) {
    const std::int64_t first = index * chunk_rows_;
    const std::int64_t rows = std::min(chunk_rows_, n_ - first);
    const T* v = data_exp_ == 0 && !sphere_ ? src_.view(static_cast<std::size_t>(first),
                                                        static_cast<std::size_t>(rows))
                                            : nullptr;
    if (v) {
      struct Release {
        RowSource<T>& s;
        ~Release() { s.release_view(); }
      } release{src_};
      const std::int64_t total = rows * d_;
      constexpr std::int64_t kPiece = std::int64_t{1} << 18;  // values per memcpy
      const std::int64_t pieces = (total + kPiece - 1) / kPiece;
#pragma omp parallel for schedule(static) \
    num_threads(threads_for(n_threads_, static_cast<double>(total) / 64))
      for (std::int64_t b = 0; b < pieces; ++b) {
        const std::int64_t at = b * kPiece, m = std::min(kPiece, total - at);
        std::memcpy(out + at, v + at, static_cast<std::size_t>(m) * sizeof(T));
      }
      return rows;
    }
    src_.read(static_cast<std::size_t>(first), static_cast<std::size_t>(rows), out);
    to_sphere(out, first, rows);
    scale(out, rows * d_);
    return rows;
  }

  /// Rows idx[0, m) into out (m x d, engine units).
  void gather(const std::int64_t* idx, std::int64_t m, T* out) {
    for (std::int64_t c = 0; c < m; ++c) {
      T* o = out + c * d_;
      src_.read(static_cast<std::size_t>(idx[c]), 1, o);
      to_sphere(o, idx[c], 1);
      scale(o, d_);
    }
  }

  /// Frees the copy buffer (between phases).
  void trim() { std::vector<T>().swap(buf_); }

 private:
  const T* load(std::int64_t first, std::int64_t rows) {
    if (data_exp_ == 0 && !sphere_)
      if (const T* v = src_.view(static_cast<std::size_t>(first), static_cast<std::size_t>(rows)))
        return v;
    buf_.resize(static_cast<std::size_t>(chunk_rows_ * d_));
    src_.read(static_cast<std::size_t>(first), static_cast<std::size_t>(rows), buf_.data());
    to_sphere(buf_.data(), first, rows);
    scale(buf_.data(), rows * d_);
    return buf_.data();
  }
  /// Rows [first, first + rows) held in x onto the unit sphere, in place; a zero row is named
  /// by its row in the whole data set.
  void to_sphere(T* x, std::int64_t first, std::int64_t rows) const {
    if (!sphere_) return;
    try {
      normalise_rows(x, rows, d_, x, "data", n_threads_);
    } catch (const Error&) {
      for (std::int64_t r = 0; r < rows; ++r)
        if (std::all_of(x + r * d_, x + (r + 1) * d_, [](T v) { return v == T(0); }))
          throw Error(zero_row_error("data", first + r));
      throw;
    }
  }
  void scale(T* x, std::int64_t count) const {
    if (data_exp_ != 0)
      for (std::int64_t i = 0; i < count; ++i) x[i] = std::ldexp(x[i], data_exp_);
  }

  RowSource<T>& src_;
  std::int64_t n_, d_, chunk_rows_;
  int data_exp_;
  bool sphere_;
  int n_threads_;
  std::vector<T> buf_;
};

/// n values of T in anonymous pages that can be handed back a window at a time (the labels:
/// copied out at the end of a run, their pages freed behind the copy).
template <class T>
class PageArray {
 public:
  PageArray() = default;
  PageArray(const PageArray&) = delete;
  PageArray& operator=(const PageArray&) = delete;
  ~PageArray() { reset(); }
  /// n values, zero (fresh pages, resident only once written).
  void allocate(std::int64_t n) {
    reset();
    if (n <= 0) return;
    bytes_ = static_cast<std::size_t>(n) * sizeof(T);
    void* p = ::mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
      bytes_ = 0;
      throw Error("streamed fit: cannot allocate " + std::to_string(n * sizeof(T)) +
                  " bytes for the labels");
    }
    p_ = static_cast<T*>(p);
    n_ = n;
  }
  bool empty() const { return p_ == nullptr; }
  T* data() { return p_; }
  /// Copies the values into out, freeing the pages behind the copy as it goes; leaves the
  /// array empty.
  void move_out(T* out) {
    constexpr std::int64_t kWindow = (std::int64_t{1} << 20) / sizeof(T);  // 1 MiB (page multiple)
    for (std::int64_t i = 0; i < n_; i += kWindow) {
      const std::int64_t m = std::min(kWindow, n_ - i);
      std::memcpy(out + i, p_ + i, static_cast<std::size_t>(m) * sizeof(T));
      if (m == kWindow) ::madvise(p_ + i, static_cast<std::size_t>(m) * sizeof(T), MADV_DONTNEED);
    }
    reset();
  }
  void reset() {
    if (p_) ::munmap(p_, bytes_);
    p_ = nullptr;
    bytes_ = 0;
    n_ = 0;
  }

 private:
  T* p_ = nullptr;
  std::size_t bytes_ = 0;
  std::int64_t n_ = 0;
};

/// DataOps over chunks (stream_ops.cpp): the host DataOps' loops, chunk by chunk, same bits.
/// greedy_kmeanspp is refused (kmeans::Error). `w`: weights in engine units, or null.
template <class T>
std::unique_ptr<DataOps<T>> make_stream_data_ops(Chunks<T>& chunks, const T* w, int n_threads);

/// The largest |x| of the source's rows, checked against max_abs_value<T>(d) (the message of
/// validate_points, with the row's number in the whole data set): one pass over the chunks.
template <class T>
double validate_stream_points(Chunks<T>& chunks, int n_threads);

/// The CPU engine over chunks of 2^m blocks (stream_engine.cpp): a CPU shard engine bound to
/// each chunk in turn gives its canonical tree nodes, merged in block order (tree_sum.hpp).
/// `max_partial_doubles`: the shard engine's size rule (<= 0: the default; both of its paths
/// give the same bits). `ops` is its data_ops().
template <class T>
std::unique_ptr<Engine<T>> make_stream_engine(Chunks<T>& chunks, const T* w, int n_threads,
                                              std::int64_t max_partial_doubles, DataOps<T>* ops);

/// An in-memory fit handed to the streamed one (driver.cpp): the caller's host data (the
/// empty-cluster warning counts its distinct points, as the in-memory fit's does) and why it
/// streams (the start of a warning).
template <class T>
struct InMemoryRoute {
  const T* data = nullptr;
  std::string why;
};

/// The streamed fit with the CPU engine's size rule overridden (for tests, as make_cpu_engine's);
/// `route`: an in-memory fit streamed through the GPU (else null).
template <class T>
Result<T> fit(RowSource<T>& source, const Params<T>& p, const StreamOptions& s,
              std::int64_t max_partial_doubles, const InMemoryRoute<T>* route = nullptr);

}  // namespace kmeans::detail::stream
