// SPDX-License-Identifier: Apache-2.0
// The distributed Engine and DataOps: the local CPU shard engine plus a timing-independent
// combination of every rank's canonical tree nodes (dist_engine.cpp).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "engine.hpp"
#include "mpi/comm.hpp"
#include "mpi/gpu_plan.hpp"

namespace kmeans::mpi::detail {

/// The global rows of every rank: rank r holds [offset[r], offset[r + 1]).
struct Layout {
  std::vector<std::int64_t> offset;  ///< size + 1 entries
  std::int64_t d = 0;
  std::int64_t n() const { return offset.back(); }
  std::int64_t rows(int r) const { return offset[r + 1] - offset[r]; }
  /// Rank r's blocks [first_block(r), end_block(r)).
  std::int64_t first_block(int r) const { return offset[r] / static_cast<std::int64_t>(kBlockRows); }
  std::int64_t end_block(int r) const {
    const auto b = static_cast<std::int64_t>(kBlockRows);
    return rows(r) == 0 ? first_block(r) : (offset[r + 1] + b - 1) / b;
  }
  /// The rank holding global row i.
  int owner(std::int64_t i) const;
};

template <class T>
struct Distributed {
  std::unique_ptr<kmeans::detail::DataOps<T>> ops;
  std::unique_ptr<kmeans::detail::Engine<T>> engine;  ///< uses *ops as its data_ops()
};

/// The engine and DataOps over this rank's shard x (rows x d, already in the engine's units;
/// weights w likewise, null when unweighted or the rank holds no rows) of the global data
/// `layout`; `weighted`: whether the fit is (on every rank). `gpu`: the local engine (CPU or
/// CUDA on gpu.device) and the combine (host or NCCL, for passes of k clusters). Collective:
/// an error on any rank throws on every rank. `stats` may be null.
template <class T>
Distributed<T> make_distributed(const Comm& c, const Layout& layout, const T* x, const T* w,
                                bool weighted, int n_threads, const GpuPlan& gpu, int k,
                                CommStats* stats);

}  // namespace kmeans::mpi::detail
