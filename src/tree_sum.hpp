// SPDX-License-Identifier: Apache-2.0
// The canonical, partition-independent order of the per-pass sums: a dyadic tree over blocks.
//
// Every per-pass total (per-cluster sums and weights, the SSE) is a sum over the fixed blocks of
// kReduceBlock points. Its canonical value is a dyadic tree over the blocks: the value of the
// interval [i 2^s, (i + 1) 2^s) is (value of its left half) + (value of its right half), the
// leaves being the per-block partials; the total over blocks [0, B) is the tree over
// [0, 2^ceil(log2 B)) in which an absent right child leaves the left value unchanged. That is
// the same as the right fold n_0 + (n_1 + (... + n_{m-1})) of the canonical decomposition of
// [0, B) into maximal aligned dyadic intervals (decompose below). A shard holding blocks [a, b)
// sends its O(log B) node values (the decomposition of [a, b)); merging the lists of adjacent
// shards in any grouping (NodeStack) gives the decomposition of the union with the same bits, so
// the total does not depend on how the blocks are partitioned (threads, MPI ranks, streamed
// chunks).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace kmeans::detail::tree {

/// The aligned dyadic interval of blocks [start, start + size): size is a power of two and
/// start a multiple of it.
struct Node {
  std::int64_t start = 0;
  std::int64_t size = 0;
  bool operator==(const Node& o) const { return start == o.start && size == o.size; }
};

/// The canonical decomposition of blocks [a, b): the maximal aligned dyadic intervals inside it,
/// in order (greedy: at each position the largest aligned interval that fits). At most
/// 2 log2(b - a) + 2 nodes.
inline std::vector<Node> decompose(std::int64_t a, std::int64_t b) {
  std::vector<Node> out;
  while (a < b) {
    std::int64_t s = 1;
    while ((a & (2 * s - 1)) == 0 && a + 2 * s <= b) s *= 2;
    out.push_back({a, s});
    a += s;
  }
  return out;
}

/// True when `right` is the right sibling of `left` (together: one aligned interval).
inline bool siblings(const Node& left, const Node& right) {
  return left.size == right.size && (left.start & (2 * left.size - 1)) == 0 &&
         right.start == left.start + left.size;
}

/// The value of a complete node from its leaves, in place: rows v + i * stride (i in [0, size),
/// size a power of two) hold the per-block partials; entries [e0, e1) of row 0 receive the
/// node's value (left half + right half, recursively). The other rows are overwritten.
inline void reduce_node(double* v, std::int64_t size, std::int64_t stride, std::int64_t e0,
                        std::int64_t e1) {
  for (std::int64_t h = 1; h < size; h *= 2)
    for (std::int64_t i = 0; i + h < size; i += 2 * h) {
      double* __restrict__ l = v + i * stride;
      const double* __restrict__ r = v + (i + h) * stride;
      for (std::int64_t e = e0; e < e1; ++e) l[e] = l[e] + r[e];
    }
}

/// The right fold of m node values (rows v + j * stride, entries [e0, e1)) into out[e0, e1):
/// out = n_0 + (n_1 + (... + n_{m-1})); zero when m = 0.
inline void right_fold(const double* v, std::int64_t m, std::int64_t stride, std::int64_t e0,
                       std::int64_t e1, double* out) {
  for (std::int64_t e = e0; e < e1; ++e) {
    double acc = m > 0 ? v[(m - 1) * stride + e] : 0.0;
    for (std::int64_t j = m - 2; j >= 0; --j) acc = v[j * stride + e] + acc;
    out[e] = acc;
  }
}

/// Node lists of adjacent ranges, merged: push the nodes of [a, b), then those of [b, c), ...
/// in order; siblings are combined as they meet (left + right), so the stack always holds the
/// canonical decomposition of the range pushed so far, with the canonical values.
class NodeStack {
 public:
  explicit NodeStack(std::int64_t width) : width_(width) {}
  std::int64_t width() const { return width_; }
  std::size_t size() const { return nodes_.size(); }
  const std::vector<Node>& nodes() const { return nodes_; }
  /// Node j's values (width entries).
  const double* values(std::size_t j) const { return values_.data() + j * width_; }
  const double* data() const { return values_.data(); }

  /// Appends node `n` with `width` values; it must start where the range pushed so far ends.
  void push(const Node& n, const double* v) {
    nodes_.push_back(n);
    values_.insert(values_.end(), v, v + width_);
    while (nodes_.size() >= 2 && siblings(nodes_[nodes_.size() - 2], nodes_.back())) {
      const std::size_t l = nodes_.size() - 2;
      double* lv = values_.data() + l * width_;
      const double* rv = lv + width_;
      for (std::int64_t e = 0; e < width_; ++e) lv[e] = lv[e] + rv[e];
      nodes_[l].size *= 2;
      nodes_.pop_back();
      values_.resize(values_.size() - static_cast<std::size_t>(width_));
    }
  }
  /// Pushes every node of another stack (the range right after this one's).
  void push_all(const NodeStack& o) {
    for (std::size_t j = 0; j < o.size(); ++j) push(o.nodes()[j], o.values(j));
  }
  /// The total of the range pushed so far (right_fold of the nodes) into out[width].
  void total(double* out) const {
    right_fold(values_.data(), static_cast<std::int64_t>(nodes_.size()), width_, 0, width_, out);
  }
  void clear() {
    nodes_.clear();
    values_.clear();
  }

 private:
  std::int64_t width_;
  std::vector<Node> nodes_;
  std::vector<double> values_;
};

}  // namespace kmeans::detail::tree
