// SPDX-License-Identifier: Apache-2.0
// The CPU engine's per-pass sums in the canonical order it shares with the CUDA engine.
//
// The order (src/cuda/shard.hpp, kernels/canonical.cuh): a sub-tile is 256 consecutive points
// (global index a multiple of 256); its value for cluster c and column j is the sum, in point
// order from +0.0, of w_p * x_p[j] (j < d) or w_p (j = d) over its points labelled c, in double
// (w_p = 1 without weights; every product rounded on its own, never fused); a leaf is
// kReduceBlock = 4096 points, its value ((0 + S_0) + S_1) + ... + S_15; the total is
// tree_sum.hpp's dyadic tree over the leaves. The SSE has the same structure with w_p * dist_p.
// A sum that starts at +0.0 is never -0.0, so adding an absent sub-tile's +0.0 is exact: the
// clusters a sub-tile does not touch are skipped. With the same labels and distances, the CPU
// and CUDA engines therefore give the same bits.
#pragma once

#include <cstdint>
#include <vector>

#include "cpu_kernel.hpp"
#include "tree_sum.hpp"

namespace kmeans::detail::cpu {

constexpr std::int64_t kSubtileRows = 256;
constexpr int kSubtilesPerLeaf = 16;

/// The canonical SSE of rows [0, rows) of one leaf (from its first row): dist[i] (times w[i]
/// when w is not null) per row.
template <class T>
double leaf_sse(const T* dist, const T* w, std::int64_t rows);

/// The sub-tile values of a run of a leaf that another thread sums the start of (a leaf split
/// between threads): per sub-tile, in order, the clusters it touches and their d + 1 values.
struct SubtileRecord {
  std::vector<std::int32_t> clusters;
  std::vector<std::int64_t> ends;  ///< sub-tile t's clusters are [ends[t - 1], ends[t])
  std::vector<double> values;      ///< d + 1 per entry of clusters
  void clear() {
    clusters.clear();
    ends.clear();
    values.clear();
  }
};

/// Adds a record's sub-tiles to a leaf's values (k x d sums, then k weights), in order, for the
/// columns [j0, j1) of d + 1 (j = d: the weight).
void replay(const SubtileRecord& r, std::int64_t d, int k, double* leaf, std::int64_t j0,
            std::int64_t j1);

/// One thread's canonical sums of one leaf, for any shape: rows are added in increasing,
/// contiguous runs; the leaf's first sub-tile goes straight into the leaf value (0 + S_0 is
/// S_0), every later one into a scratch whose touched clusters are then added to the leaf (or
/// appended to a SubtileRecord, for a later part of a split leaf).
template <class T>
class LeafSums {
 public:
  /// Starts a leaf whose values (k x d sums, then k weights) are `leaf`, all +0.0. `subtile`
  /// (may be null): the table's scratch-free sum of one whole sub-tile, used where
  /// sorted_subtiles(d, k) holds for whole unweighted sub-tiles.
  void begin(double* leaf, std::int64_t d, int k, AddFn add, SubtileSumsFn<T> subtile = nullptr);
  /// Starts a later part of a leaf: its sub-tiles go to `record` (cleared first), for replay.
  /// `rows`: the part's rows, which bound the record's size (reserved at once: growing it by
  /// doubling cost the first pass copies and page faults).
  void begin_record(SubtileRecord* record, std::int64_t d, int k, AddFn add, std::int64_t rows);
  /// Adds `rows` rows starting at row r0 of the leaf (r0 = where the previous call ended, or 0):
  /// their data x, labels lab and weights w (null: unit weights, through the table's `unit`).
  void add(const T* x, const T* w, std::int64_t r0, std::int64_t rows, const std::int32_t* lab,
           AccumulateFn<T> unit);
  /// Completes the leaf (adds the open sub-tile).
  void end();

 private:
  void fold();
  void start(std::int64_t d, int k, AddFn add, SubtileSumsFn<T> subtile);
  AddFn add_ = nullptr;  ///< the kernel table's vector add (the dense fold)
  SubtileSumsFn<T> subtile_ = nullptr;  ///< set when whole sub-tiles skip the scratch
  std::vector<std::int32_t> sort_;      ///< its scratch
  double* leaf_ = nullptr;
  SubtileRecord* record_ = nullptr;
  std::int64_t d_ = 0;
  int k_ = 0;
  std::int64_t open_ = -1;  ///< the sub-tile being summed
  bool dense_ = false;      ///< few clusters: the whole scratch is zeroed and added
  std::vector<double> sub_store_;
  double* sub_ = nullptr;  ///< the sub-tile scratch (k x d sums, k weights) in sub_store_
  std::vector<std::int32_t> touched_;
  std::vector<unsigned char> mark_;
};

/// Whether whole unweighted sub-tiles are summed by the kernel table's SubtileSumsFn (sorted by
/// cluster, summed in registers) instead of through a zeroed k (d + 1) scratch. Measured in
/// bench/NOTES.md (2026-12-01 19:00): the scratch's zeroing, adds and fold cost more once it
/// outgrows L1 (k (d + 1) doubles), and the sort's O(k) histogram is small against the rows'
/// work up to about k = 1024.
bool sorted_subtiles(std::int64_t d, int k);

/// AccumulateLeafFn's scheme (four sub-tiles at once) with weights, for the shapes where
/// accumulate_interleaved holds: rows [0, rows) of one leaf into sums (k x d) and weights (k).
template <class T>
void accumulate_leaf_weighted(const T* x, const T* w, std::int64_t rows, std::int64_t d, int k,
                              const std::int32_t* lab, double* sums, double* weights);

/// The canonical leaf value of one cluster (d sums, then the weight: d + 1 values into val) from
/// its points order[lo, hi), increasing indices all in one leaf; `sub` is d + 1 doubles of
/// scratch (the open sub-tile's value).
template <class T>
void sorted_leaf(const T* x, const T* w, std::int64_t d, const std::int64_t* order,
                 std::int64_t lo, std::int64_t hi, double* val, double* sub);

/// Reusable scratch of bucket_sums: the points' order and per-thread stacks.
struct BucketScratch {
  std::vector<std::int64_t> order;
  /// A thread's leaf value, a sub-tile's (then the total), the stack of partials, its
  /// positions, and which nodes the cluster is present in.
  struct Slot {
    std::vector<double> leaf, acc, stack;
    std::vector<std::int64_t> pos;
    std::vector<char> present;
  };
  std::vector<Slot> slots;
};

/// The bucket path for large k x d: the points' indices sorted by label (counting sort,
/// stable), then each cluster forms the canonical leaf values of its points (sorted_leaf) and
/// combines them in the canonical tree over the shard's nodes (its absent leaves are +0.0,
/// the identity) with a stack of O(log B) partials; clusters spread over nt threads. Totals go
/// to sums (k x d) and weights (k), or, when `out` is not null, node values to its rows of
/// `width` (k x d sums then k weights; `out` holds zeros where a cluster is absent).
template <class T>
void bucket_sums(const T* x, const T* w, std::int64_t n, std::int64_t d, int k,
                 const std::int32_t* labels, const std::vector<tree::Node>& nodes,
                 std::int64_t first_block, int nt, BucketScratch& scratch, double* sums,
                 double* weights, double* out, std::int64_t width);

}  // namespace kmeans::detail::cpu
