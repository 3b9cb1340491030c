// SPDX-License-Identifier: Apache-2.0
// kmeans::mpi's NCCL combine, the arithmetic part: the binomial tree of ranks (the host combine's
// schedule, dist_engine.cpp) planned on the host as slot operations, and the __host__ __device__
// column functions that apply them (tree_sum.hpp's NodeStack::push and right_fold, the same adds
// in the same order). The host tests run these functions against tree::NodeStack.
#pragma once

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "kernels/tuning.cuh"  // KMEANS_HD
#include "tree_sum.hpp"

namespace kmeans::detail::merge {

/// Slots of one merge step: the stack's rows plus the received rows. A stack holds the
/// canonical decomposition of a range of blocks (at most 2 log2(blocks) + 2 < 128 nodes for
/// blocks < 2^62), so two of them fit.
constexpr int kMaxSlots = 256;

/// One receive step on one rank: slots [0, m) are the stack's rows (stk + s * width), slots
/// [m, m + r) the received ones (in + (s - m) * width). The merges run in order, slot left[i] +=
/// slot right[i] (NodeStack::push's sibling merges); then row j of the stack is slot keep[j].
struct MergePlan {
  int m = 0;
  int r = 0;
  int n_ops = 0;
  int n_keep = 0;
  std::uint16_t left[kMaxSlots] = {};
  std::uint16_t right[kMaxSlots] = {};
  std::uint16_t keep[kMaxSlots] = {};
};

/// Plans NodeStack::push of every node of `in` onto `stack` (node lists of adjacent ranges) and
/// leaves in `stack` the merged list. Throws std::length_error past kMaxSlots (unreachable for
/// block indices below 2^62).
inline MergePlan plan_merge(std::vector<tree::Node>& stack, const std::vector<tree::Node>& in) {
  MergePlan p;
  p.m = static_cast<int>(stack.size());
  p.r = static_cast<int>(in.size());
  if (p.m + p.r > kMaxSlots)
    throw std::length_error("merge of " + std::to_string(p.m) + " + " + std::to_string(p.r) +
                            " tree nodes exceeds " + std::to_string(kMaxSlots) + " slots");
  std::vector<std::pair<tree::Node, int>> st;
  for (int s = 0; s < p.m; ++s) st.emplace_back(stack[static_cast<std::size_t>(s)], s);
  for (int j = 0; j < p.r; ++j) {
    st.emplace_back(in[static_cast<std::size_t>(j)], p.m + j);
    while (st.size() >= 2 && tree::siblings(st[st.size() - 2].first, st.back().first)) {
      auto& l = st[st.size() - 2];
      p.left[p.n_ops] = static_cast<std::uint16_t>(l.second);
      p.right[p.n_ops] = static_cast<std::uint16_t>(st.back().second);
      ++p.n_ops;
      l.first.size *= 2;
      st.pop_back();
    }
  }
  p.n_keep = static_cast<int>(st.size());
  stack.clear();
  for (int j = 0; j < p.n_keep; ++j) {
    p.keep[j] = static_cast<std::uint16_t>(st[static_cast<std::size_t>(j)].second);
    stack.push_back(st[static_cast<std::size_t>(j)].first);
  }
  return p;
}

KMEANS_HD inline double* slot_row(double* stk, double* in, const MergePlan& p, std::int64_t width,
                                  int s) {
  return s < p.m ? stk + s * width : in + (s - p.m) * width;
}

/// Column e of a merge step: the plan's adds, then the stack compacted in place (keep[j] >= j
/// and increasing: a row is read before any write reaches it). Columns are independent: one
/// thread per column gives NodeStack::push's bits.
KMEANS_HD inline void merge_column(double* stk, double* in, std::int64_t width,
                                   const MergePlan& p, std::int64_t e) {
  for (int i = 0; i < p.n_ops; ++i) {
    double* l = slot_row(stk, in, p, width, p.left[i]) + e;
    const double* r = slot_row(stk, in, p, width, p.right[i]) + e;
    *l = *l + *r;
  }
  for (int j = 0; j < p.n_keep; ++j) stk[j * width + e] = slot_row(stk, in, p, width, p.keep[j])[e];
}

/// The changed-label count that follows a stack's m rows (stk[m * width]) and a message's r rows
/// (in[r * width]): their sum, to be stored after the merged rows (stk[n_keep * width]). Read it
/// before merge_column(..., 0) runs: the compaction may overwrite stk[m * width].
KMEANS_HD inline double merged_changed(const double* stk, const double* in, std::int64_t width,
                                       const MergePlan& p) {
  return stk[p.m * width] + in[p.r * width];
}

/// Column e of the right fold of m rows (tree::right_fold): v_0 + (v_1 + (... + v_{m-1})).
KMEANS_HD inline double fold_column(const double* v, int m, std::int64_t width, std::int64_t e) {
  double acc = m > 0 ? v[(m - 1) * width + e] : 0.0;
  for (int j = m - 2; j >= 0; --j) acc = v[j * width + e] + acc;
  return acc;
}

/// One step of a rank in the binomial tree over ranks: at step h rank r (r % 2h == h) sends its
/// stack to r - h and is done; rank r (r % 2h == 0) receives ranks [r + h, r + 2h)'s merged stack
/// from r + h. Messages are the stack's rows followed by the changed-label count.
struct TreeStep {
  bool send = false;
  int peer = 0;
  int rows = 0;  ///< send: rows sent; receive: rows received
  MergePlan plan;  ///< receive only
};

/// A rank's whole part of one combine: its own rows, its steps, the rows it ends with (rank 0:
/// the canonical decomposition of all blocks) and the buffer sizes (rows) the steps need.
struct Schedule {
  int local_rows = 0;
  std::vector<TreeStep> steps;
  int final_rows = 0;
  int max_stack_rows = 0;  ///< stack rows at any point (the changed count goes after them)
  int max_in_rows = 0;     ///< rows of the largest message received
};

/// The schedule of rank `rank` of `size`, rank q holding blocks [first[q], end[q]) (first[q] ==
/// end[q] when it holds no rows; the ranges adjacent in rank order). The same pairs and the same
/// push order as the host combine (MpiEngine::assign).
inline Schedule tree_schedule(int rank, int size, const std::vector<std::int64_t>& first,
                              const std::vector<std::int64_t>& end) {
  const auto group_end = [&](int a, int b) {  // end block of ranks [a, b]
    std::int64_t e = first[static_cast<std::size_t>(a)];
    for (int q = a; q <= b; ++q) e = std::max(e, end[static_cast<std::size_t>(q)]);
    return e;
  };
  Schedule s;
  std::vector<tree::Node> stack =
      tree::decompose(first[static_cast<std::size_t>(rank)], end[static_cast<std::size_t>(rank)]);
  s.local_rows = static_cast<int>(stack.size());
  s.max_stack_rows = s.local_rows;
  for (int h = 1; h < size; h *= 2) {
    if (rank % (2 * h) == h) {
      TreeStep t;
      t.send = true;
      t.peer = rank - h;
      t.rows = static_cast<int>(stack.size());
      s.steps.push_back(t);
      break;
    }
    const int src = rank + h;
    if (rank % (2 * h) == 0 && src < size) {
      const int last = std::min(size, src + h) - 1;
      const auto in = tree::decompose(first[static_cast<std::size_t>(src)], group_end(src, last));
      TreeStep t;
      t.peer = src;
      t.rows = static_cast<int>(in.size());
      t.plan = plan_merge(stack, in);
      s.max_in_rows = std::max(s.max_in_rows, t.rows);
      s.max_stack_rows = std::max(s.max_stack_rows, static_cast<int>(stack.size()));
      s.steps.push_back(t);
    }
  }
  s.final_rows = static_cast<int>(stack.size());
  return s;
}

}  // namespace kmeans::detail::merge
