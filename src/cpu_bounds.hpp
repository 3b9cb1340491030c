// SPDX-License-Identifier: Apache-2.0
// Bound-pruned Lloyd passes of the CPU engine (Algorithm::Elkan): Hamerly-style per-point lower
// bounds that prove a point's label unchanged, so only the unproven points search all centroids.
#pragma once

#include <cstdint>
#include <vector>

#include "cpu_bounds_kernel.hpp"
#include "kmeans/kmeans.hpp"

namespace kmeans::detail::cpu {

/// Bound groups and lane groups per bound group for k centroids of T (GroupPass).
template <class T>
void bound_layout(int k, int* t, int* per_bound);

/// The spatial order of k centroids (k x d) for t bound groups of `span` positions each (the
/// last one may be short): recursive median splits, each along the feature of the widest
/// spread (in double), the left part taking whole groups, until one group is left; each group
/// lists its centroids in ascending index. out[p] = the centroid at position p (a permutation of
/// 0..k-1). Neighbouring centroids share a group, so a group's drop (its largest movement)
/// follows one region's centroids, not 16 random ones (Yinyang k-means' grouping, balanced so
/// that a group fills whole lane groups). Serial and a pure function of its input: the same
/// order whatever the thread count.
template <class T>
void spatial_order(const T* c, int k, std::int64_t d, int span, int t, std::int32_t* out);

/// Bytes of state the pruned passes keep for n points, k centroids of d features of T: the
/// lower bounds (4 t n: t = min(ceil(k / L), 32) bound groups, L = 16 float, 8 double), the
/// previous and the transposed centroids, the drops.
std::int64_t bound_bytes(std::int64_t n, std::int64_t d, int k, std::size_t elem_size);

/// Most bytes of bound state a fit may hold; beyond, the pruned algorithm falls back to Lloyd.
constexpr std::int64_t kMaxBoundBytes = std::int64_t{1} << 30;

/// Whether the pruned algorithm can run at all: Elkan or Auto, k >= 2, usable bounds that fit
/// kMaxBoundBytes.
bool bounds_possible(Algorithm a, std::int64_t n, std::int64_t d, int k, std::size_t elem_size,
                     bool usable);

/// Whether a pass with these parameters uses the pruned algorithm: Lloyd never; where
/// bounds_possible, Elkan once the fit has begun to settle: the bounds are live, or the last
/// pass changed at most n / kElkanStartDiv labels (`prev_changed`, -1 when unknown). Before
/// that the bounds would fail on most rows (a third of the labels change in a typical second
/// pass), and a pruned pass there costs 1.3-3x a Lloyd pass (its full searches, its tests;
/// bench/NOTES.md 2026-12-01 18:45): Lloyd's passes are the cheaper way through. Auto only
/// inside the range where whole fits
/// measured >= 1.1x faster with margin (auto_range: bench_kmeans --elkan, bench/NOTES.md
/// 2026-12-01, h-elkan2) and, since the first pruned passes cost more than Lloyd's, only once
/// the fit has settled: the bounds are live (`live`: the last pass was pruned), or at least
/// kAutoStartPasses passes ran (`passes`) and the last changed at most 1% of the labels
/// (`prev_changed`, -1 when unknown). The start costs about two Lloyd passes, so a fit that
/// stops right after it loses at most ~2 / 22 of its time; fits shorter than that run Lloyd's
/// passes throughout.
bool use_bounds(Algorithm a, std::int64_t n, std::int64_t d, int k, std::size_t elem_size,
                bool usable, bool live = false, std::int64_t prev_changed = -1,
                std::int64_t passes = 0);

/// An Elkan fit starts its bounds after a pass that changed at most n / 20 labels.
constexpr std::int64_t kElkanStartDiv = 20;

/// Passes an Auto fit runs as Lloyd before it may start the bounds.
constexpr std::int64_t kAutoStartPasses = 20;

/// The shapes where Auto may start the bounds: n >= 1e5, 16 <= d <= 128 (float64: 8 <= d;
/// elem_size = sizeof(T)), 128 <= k <= 512.
bool auto_range(std::int64_t n, std::int64_t d, int k, std::size_t elem_size);

/// After Lloyd's kernel labelled rows[0, m) (lab, dist; prev: the labels of the pass before):
/// each of a row's t bounds becomes the larger of what it still proves and sep[lab] - U, U an
/// upper bound on the distance to the label, rounded down (the old label's group, when the
/// label changed, only the latter).
template <class T>
void separation_bounds(const GroupPass<T>& gp, const std::int32_t* prev, const std::int32_t* lab,
                       const T* dist, const std::int64_t* rows, std::int64_t m, const double* sep,
                       float* lower);

/// A sub-block whose lane groups to search exceed this share of a full search is crowded: its
/// BlockPolicy then picks Lloyd's kernel or the blocked full search instead of the per-group
/// search (a searched row costs 1-2x the tiled kernel's row, 3-7x the small-k kernel's:
/// bench/NOTES.md). The choice changes only the time, never a bit of the result.
inline double search_share(bool small_k) { return small_k ? 0.2 : 0.5; }

/// Per block of points: whether the unproven rows of a sub-block where they are many (above
/// search_share) go through Lloyd's kernel (cheap, weak separation bounds) or the full search
/// (tight bounds). Lloyd's kernel while bounds keep failing, with a full search to retry after
/// 1, 2, 4, ... such passes (exponential back-off), so that data that never prunes costs about a
/// Lloyd pass and data that starts to prune finds out. Only the time depends on it.
struct BlockPolicy {
  std::int32_t wait = 0;     ///< Lloyd passes left before the next full search
  std::int32_t backoff = 1;
  bool tight = false;        ///< the block's failing rows were fully searched last pass
  bool crowded = false;      ///< this pass: some sub-block had many unproven rows
  /// This pass's choice for crowded sub-blocks: true = Lloyd's kernel.
  bool lloyd_when_crowded() const { return tight || wait > 0; }
  /// After the block's pass.
  void finish() {
    if (!crowded) {
      tight = true;
      backoff = 1;
      wait = 0;
    } else if (lloyd_when_crowded()) {
      if (tight) {
        wait = backoff;
        backoff = backoff < 64 ? 2 * backoff : 64;
      } else {
        --wait;
      }
      tight = false;
    } else {
      tight = true;
    }
    crowded = false;
  }
};

/// The engine's bound state between passes.
template <class T>
class Bounds {
 public:
  /// Prepares a pass against `centroids` (k x d): the movement drops since the last pruned pass
  /// (all bounds are dropped to nothing when `valid` is false: first pass, new k, rebind, or a
  /// Lloyd pass in between), the transposed centroids. n: the points.
  /// The bounds start on a settled fit (use_bounds): the first crowded pass searches fully
  /// (tight bounds at once) instead of running Lloyd's kernel first.
  void prepare(const T* centroids, int k, std::int64_t n, std::int64_t d, bool valid,
               int n_threads, BoundsSearchFn<T> search);
  const GroupPass<T>& pass() const { return gp_; }
  int lane_groups() const { return n_groups_; }
  /// The t bounds of point i.
  float* lower(std::int64_t i) { return lower_.data() + i * gp_.t; }
  /// sep[a] <= min over b != a of |c_a - c_b| (0 when not computed: k > n / 32).
  const double* separation() const { return sep_.data(); }
  /// The policy of block b (reset with the bounds).
  BlockPolicy& policy(std::int64_t b) { return policy_[static_cast<std::size_t>(b)]; }

 private:
  std::vector<float> lower_;
  std::vector<T> prev_;
  std::vector<T> ct_;
  std::vector<std::int32_t> order_;   ///< position -> centroid (spatial_order), kept with the bounds
  std::vector<LaneIdx<T>> perm_;      ///< the same, padded to whole lane groups
  std::vector<std::int32_t> group_;   ///< centroid -> bound group
  std::vector<double> drop1_, drop2_;
  std::vector<float> drop_f_;
  std::vector<std::int32_t> drop_arg_;
  GroupPass<T> gp_{};
  std::vector<double> sep_;
  std::vector<BlockPolicy> policy_;
  std::vector<std::int64_t> sep_idx_;
  std::vector<std::int32_t> sep_lab_;
  std::vector<T> sep_dist_;
  void separation(const T* c, int k, std::int64_t n, std::int64_t d, int n_threads,
                  BoundsSearchFn<T> search);
  BoundConsts bc_;
  int n_groups_ = 0;
};

}  // namespace kmeans::detail::cpu
