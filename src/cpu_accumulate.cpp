// SPDX-License-Identifier: Apache-2.0
// The CPU engine's per-pass sums in the canonical order shared with CUDA (cpu_accumulate.hpp).
// Compiled with -ffp-contract=off: every product w_p * x_p is rounded before it is added.
#include "cpu_accumulate.hpp"

#include "cpu_pool.hpp"
#include "internal.hpp"

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <vector>

namespace kmeans::detail::cpu {

namespace {
constexpr std::int64_t kGroup = 4 * kSubtileRows;  ///< four sub-tiles summed at once
/// Up to this many clusters a sub-tile's scratch is zeroed and added whole (no per-row
/// bookkeeping of the clusters it touches, whose branches cost more: 200k x 16 k = 256, one
/// thread, 1.13x the time per pass of the old order with that bookkeeping, 1.045x without);
/// above it only the touched clusters' rows (a sub-tile touches at most 256).
constexpr int kDenseMaxK = 512;
/// sorted_subtiles' range: at most this many clusters (the sort's histogram is O(k) per
/// sub-tile), more than this many sums (below, the scratch stays in L1 and costs little).
constexpr int kSortedMaxK = 1024;
constexpr std::int64_t kSortedMinSums = 6144;  // 48 KB of doubles: an L1 data cache
}  // namespace

/// The SSE sums of Q sub-tiles [q0, q0 + Q) of a leaf, `len` rows each, at once: Q chains held
/// in registers, row r of each in turn (each chain in row order from +0.0).
template <int Q, class T>
inline void sse_chains(const T* dist, const T* w, int q0, std::int64_t len, double* out) {
  double s[Q] = {};
  const T* dq = dist + q0 * kSubtileRows;
  const T* wq = w ? w + q0 * kSubtileRows : nullptr;
  if (wq) {
    for (std::int64_t r = 0; r < len; ++r)
      for (int q = 0; q < Q; ++q)
        s[q] = s[q] + static_cast<double>(wq[r + q * kSubtileRows]) *
                          static_cast<double>(dq[r + q * kSubtileRows]);
  } else {
    for (std::int64_t r = 0; r < len; ++r)
      for (int q = 0; q < Q; ++q) s[q] = s[q] + static_cast<double>(dq[r + q * kSubtileRows]);
  }
  for (int q = 0; q < Q; ++q) out[q0 + q] = s[q];
}

/// The SSE sums of the leaf's last Q full sub-tiles [q0, q0 + Q) and, when tail > 0, of the
/// partial sub-tile q0 + Q of `tail` rows after them, at once (Q + 1 chains, then Q).
template <int Q, bool kW, class T>
inline void sse_ragged(const T* dq, const T* wq, std::int64_t tail, double* out) {
  double s[Q + 1] = {};
  auto term = [&](std::int64_t i) {
    return kW ? static_cast<double>(wq[i]) * static_cast<double>(dq[i]) : static_cast<double>(dq[i]);
  };
  std::int64_t r = 0;
  for (; r < tail; ++r)
    for (int q = 0; q <= Q; ++q) s[q] = s[q] + term(r + q * kSubtileRows);
  for (; r < kSubtileRows; ++r)
    for (int q = 0; q < Q; ++q) s[q] = s[q] + term(r + q * kSubtileRows);
  for (int q = 0; q < Q; ++q) out[q] = s[q];
  if (tail > 0) out[Q] = s[Q];
}

template <int Q, class T>
inline void sse_rest(const T* dist, const T* w, int q0, std::int64_t tail, double* out) {
  const T* dq = dist + q0 * kSubtileRows;
  if (w)
    sse_ragged<Q, true>(dq, w + q0 * kSubtileRows, tail, out + q0);
  else
    sse_ragged<Q, false>(dq, static_cast<const T*>(nullptr), tail, out + q0);
}

template <class T>
double leaf_sse(const T* dist, const T* w, std::int64_t rows) {
  constexpr int kSubs = static_cast<int>(kReduceBlock / kSubtileRows);
  double s[kSubs] = {};
  const int full = static_cast<int>(rows / kSubtileRows);
  const std::int64_t tail = rows % kSubtileRows;
  int q = 0;
  for (; q + 8 <= full; q += 8) sse_chains<8>(dist, w, q, kSubtileRows, s);
  switch (full - q) {  // the rest, with the partial sub-tile, as one group of chains
    case 0: sse_rest<0>(dist, w, q, tail, s); break;
    case 1: sse_rest<1>(dist, w, q, tail, s); break;
    case 2: sse_rest<2>(dist, w, q, tail, s); break;
    case 3: sse_rest<3>(dist, w, q, tail, s); break;
    case 4: sse_rest<4>(dist, w, q, tail, s); break;
    case 5: sse_rest<5>(dist, w, q, tail, s); break;
    case 6: sse_rest<6>(dist, w, q, tail, s); break;
    default: sse_rest<7>(dist, w, q, tail, s); break;
  }
  const int nq = full + (tail > 0 ? 1 : 0);
  double leaf = 0;
  for (int i = 0; i < nq; ++i) leaf = leaf + s[i];
  return leaf;
}

void replay(const SubtileRecord& r, std::int64_t d, int k, double* leaf, std::int64_t j0,
            std::int64_t j1) {
  const std::int64_t kd = k * d, jd = std::min(j1, d);
  std::size_t e = 0;
  for (std::size_t t = 0; t < r.ends.size(); ++t)
    for (; e < static_cast<std::size_t>(r.ends[t]); ++e) {
      const std::int32_t c = r.clusters[e];
      const double* v = r.values.data() + e * static_cast<std::size_t>(d + 1);
      double* l = leaf + c * d;
      for (std::int64_t j = j0; j < jd; ++j) l[j] = l[j] + v[j];
      if (j1 > d) leaf[kd + c] = leaf[kd + c] + v[d];
    }
}

bool sorted_subtiles(std::int64_t d, int k) {
  return d >= 8 && k <= kSortedMaxK && static_cast<std::int64_t>(k) * (d + 1) > kSortedMinSums;
}

template <class T>
void LeafSums<T>::begin(double* leaf, std::int64_t d, int k, AddFn add, SubtileSumsFn<T> subtile) {
  leaf_ = leaf;
  record_ = nullptr;
  start(d, k, add, subtile && sorted_subtiles(d, k) ? subtile : nullptr);
}

template <class T>
void LeafSums<T>::begin_record(SubtileRecord* record, std::int64_t d, int k, AddFn add,
                               std::int64_t rows) {
  leaf_ = nullptr;
  record_ = record;
  record->clear();
  // At most one entry per cluster and sub-tile, and no more entries than rows.
  const std::int64_t subtiles = (rows + kSubtileRows - 1) / kSubtileRows;
  const auto entries = static_cast<std::size_t>(std::min<std::int64_t>(subtiles * k, rows));
  record->clusters.reserve(entries);
  record->ends.reserve(static_cast<std::size_t>(subtiles));
  record->values.reserve(entries * static_cast<std::size_t>(d + 1));
  start(d, k, add, nullptr);
}

template <class T>
void LeafSums<T>::start(std::int64_t d, int k, AddFn add, SubtileSumsFn<T> subtile) {
  add_ = add;
  subtile_ = subtile;
  if (subtile_ && sort_.size() < static_cast<std::size_t>(k + 1 + kSubtileRows))
    sort_.resize(static_cast<std::size_t>(k + 1 + kSubtileRows));
  d_ = d;
  k_ = k;
  open_ = -1;
  dense_ = k <= kDenseMaxK;
  const auto entries = static_cast<std::size_t>(k * d + k);
  if (sub_store_.size() < entries + 8) sub_store_.resize(entries + 8);
  // 64-byte aligned, as the leaf rows are: the table's vector adds then touch whole lines.
  const auto addr = reinterpret_cast<std::uintptr_t>(sub_store_.data());
  sub_ = sub_store_.data() + ((64 - addr % 64) % 64) / sizeof(double);
  if (mark_.size() != static_cast<std::size_t>(k)) mark_.assign(static_cast<std::size_t>(k), 0);
  touched_.clear();
}

template <class T>
void LeafSums<T>::add(const T* x, const T* w, std::int64_t r0, std::int64_t rows,
                      const std::int32_t* lab, AccumulateFn<T> unit) {
  const std::int64_t d = d_, kd = k_ * d_;
  while (rows > 0) {
    const std::int64_t s = r0 / kSubtileRows;
    const std::int64_t n = std::min(rows, (s + 1) * kSubtileRows - r0);
    if (subtile_ && !w && n == kSubtileRows) {  // a whole sub-tile: no scratch
      fold();
      open_ = -1;
      subtile_(x, n, d, k_, lab, leaf_, leaf_ + kd, sort_.data());
      x += n * d;
      lab += n;
      r0 += n;
      rows -= n;
      continue;
    }
    const bool scratch = s > 0 || record_;  // else the leaf's first sub-tile, into the leaf
    if (s != open_) {
      fold();
      open_ = s;
      if (scratch && dense_) std::fill(sub_, sub_ + kd + k_, 0.0);
    }
    double* sums = scratch ? sub_ : leaf_;
    if (scratch && !dense_) {  // from +0.0, for the clusters it touches
      for (std::int64_t r = 0; r < n; ++r) {
        const std::int32_t c = lab[r];
        if (mark_[c]) continue;
        mark_[c] = 1;
        touched_.push_back(c);
        double* a = sums + c * d;
        for (std::int64_t j = 0; j < d; ++j) a[j] = 0.0;
        sums[kd + c] = 0.0;
      }
    }
    if (w) {
      for (std::int64_t r = 0; r < n; ++r) {
        const std::int32_t c = lab[r];
        const double wr = static_cast<double>(w[r]);
        double* a = sums + c * d;
        const T* xr = x + r * d;
        for (std::int64_t j = 0; j < d; ++j) a[j] = a[j] + wr * static_cast<double>(xr[j]);
        sums[kd + c] = sums[kd + c] + wr;
      }
      w += n;
    } else {
      unit(x, n, d, k_, lab, sums, sums + kd);
    }
    x += n * d;
    lab += n;
    r0 += n;
    rows -= n;
  }
}

template <class T>
void LeafSums<T>::end() {
  fold();
  open_ = -1;
}

template <class T>
void LeafSums<T>::fold() {
  const std::int64_t d = d_, kd = k_ * d_;
  const bool scratch = open_ > 0 || (record_ && open_ >= 0);
  if (!scratch) return;
  if (dense_) {  // every cluster (an untouched one adds +0.0: exact)
    touched_.resize(static_cast<std::size_t>(k_));
    std::iota(touched_.begin(), touched_.end(), 0);
  }
  if (record_) {
    for (const std::int32_t c : touched_) {
      record_->clusters.push_back(c);
      const double* a = sub_ + c * d;
      record_->values.insert(record_->values.end(), a, a + d);
      record_->values.push_back(sub_[kd + c]);
      mark_[c] = 0;
    }
    record_->ends.push_back(static_cast<std::int64_t>(record_->clusters.size()));
  } else if (dense_) {
    add_(leaf_, sub_, kd + k_);
  } else {
    for (const std::int32_t c : touched_) {
      double* l = leaf_ + c * d;
      const double* a = sub_ + c * d;
      for (std::int64_t j = 0; j < d; ++j) l[j] = l[j] + a[j];
      leaf_[kd + c] = leaf_[kd + c] + sub_[kd + c];
      mark_[c] = 0;
    }
  }
  touched_.clear();
}

template <class T>
void accumulate_leaf_weighted(const T* x, const T* w, std::int64_t rows, std::int64_t d, int k,
                              const std::int32_t* lab, double* sums, double* weights) {
  const std::int64_t S = d + 1;
  double acc[4][kAccumulateSmallMax];
  auto add_row = [&](double* a, std::int64_t i) {
    const double wi = static_cast<double>(w[i]);
    a += lab[i] * S;
    for (std::int64_t j = 0; j < d; ++j) a[j] = a[j] + wi * static_cast<double>(x[i * d + j]);
    a[d] = a[d] + wi;
  };
  for (std::int64_t g0 = 0; g0 < rows; g0 += kGroup) {
    for (auto& a : acc) std::fill(a, a + k * S, 0.0);
    if (rows - g0 >= kGroup) {
      for (std::int64_t r = g0; r < g0 + kSubtileRows; ++r)
        for (int q = 0; q < 4; ++q) add_row(acc[q], r + q * kSubtileRows);
    } else {
      for (int q = 0; q < 4; ++q)
        for (std::int64_t i = g0 + q * kSubtileRows; i < std::min(rows, g0 + (q + 1) * kSubtileRows);
             ++i)
          add_row(acc[q], i);
    }
    for (int c = 0; c < k; ++c)
      for (std::int64_t j = 0; j <= d; ++j) {
        const std::int64_t e = c * S + j;
        double& v = j < d ? sums[c * d + j] : weights[c];
        v = (((v + acc[0][e]) + acc[1][e]) + acc[2][e]) + acc[3][e];
      }
  }
}

template <class T>
void sorted_leaf(const T* x, const T* w, std::int64_t d, const std::int64_t* order,
                 std::int64_t lo, std::int64_t hi, double* val, double* sub) {
  std::fill(val, val + d + 1, 0.0);
  std::int64_t cur = -1;
  for (std::int64_t q = lo; q < hi; ++q) {
    const std::int64_t i = order[q];
    const std::int64_t st = i / kSubtileRows;
    if (st != cur) {
      if (cur >= 0)
        for (std::int64_t j = 0; j <= d; ++j) val[j] = val[j] + sub[j];
      std::fill(sub, sub + d + 1, 0.0);
      cur = st;
    }
    const T* xi = x + i * d;
    if (w) {
      const double wi = static_cast<double>(w[i]);
      for (std::int64_t j = 0; j < d; ++j) sub[j] = sub[j] + wi * static_cast<double>(xi[j]);
      sub[d] = sub[d] + wi;
    } else {
      for (std::int64_t j = 0; j < d; ++j) sub[j] = sub[j] + static_cast<double>(xi[j]);
      sub[d] = sub[d] + 1.0;
    }
  }
  if (cur >= 0)
    for (std::int64_t j = 0; j <= d; ++j) val[j] = val[j] + sub[j];
}

namespace {
/// Combines the top two partials of a bucket slot's stack (left + right) into the lower one.
void pop_into(BucketScratch::Slot& bs, std::int64_t& depth, std::int64_t S) {
  double* l = bs.stack.data() + (depth - 2) * S;
  const double* r = l + S;
  for (std::int64_t f = 0; f < S; ++f) l[f] = l[f] + r[f];
  --depth;
}
}  // namespace

template <class T>
void bucket_sums(const T* x, const T* w, std::int64_t n, std::int64_t d, int k,
                 const std::int32_t* labels, const std::vector<tree::Node>& nodes,
                 std::int64_t first_block, int nt, BucketScratch& scratch, double* sums,
                 double* weights, double* out, std::int64_t width) {
  const std::int64_t S = d + 1;
  std::vector<std::int64_t>& order = scratch.order;
  std::vector<std::int64_t> start(static_cast<std::size_t>(k) + 1, 0);
  for (std::int64_t i = 0; i < n; ++i) ++start[labels[i] + 1];
  std::partial_sum(start.begin(), start.end(), start.begin());
  order.resize(static_cast<std::size_t>(n));
  std::vector<std::int64_t> fill(start.begin(), start.end() - 1);
  for (std::int64_t i = 0; i < n; ++i) order[fill[labels[i]]++] = i;
  const auto m = static_cast<std::int64_t>(nodes.size());
  if (scratch.slots.size() < static_cast<std::size_t>(nt))
    scratch.slots.resize(static_cast<std::size_t>(nt));
  auto cluster = [&](std::int64_t c, int slot) {
    BucketScratch::Slot& bs = scratch.slots[static_cast<std::size_t>(slot)];
    bs.acc.resize(static_cast<std::size_t>(S));
    bs.leaf.resize(static_cast<std::size_t>(S));
    bs.stack.resize(static_cast<std::size_t>((66 + m) * S));
    bs.pos.resize(66);
    double* node_val = bs.stack.data() + 66 * S;  // m node values
    std::vector<char>& present = bs.present;
    present.assign(static_cast<std::size_t>(m), 0);
    std::int64_t q = start[c];
    const std::int64_t q_end = start[c + 1];
    for (std::int64_t j = 0; j < m; ++j) {
      const std::int64_t hi =
          std::min(n, (nodes[j].start - first_block + nodes[j].size) * kReduceBlock);
      std::int64_t depth = 0;  // the stack: partials of disjoint subtrees, by position
      while (q < q_end && order[q] < hi) {
        const std::int64_t b = order[q] / kReduceBlock;
        double* val = bs.leaf.data();  // this block's partial
        std::int64_t q1 = q;
        while (q1 < q_end && order[q1] / kReduceBlock == b) ++q1;
        sorted_leaf(x, w, d, order.data(), q, q1, val, bs.acc.data());
        q = q1;
        // Before the next leaf: combine the top two partials while their smallest common
        // subtree cannot hold it (then it is complete: left part + right part).
        const std::int64_t at = b - (nodes[j].start - first_block);  // within the node
        while (depth >= 2) {
          const std::int64_t pa = bs.pos[static_cast<std::size_t>(depth - 2)];
          const std::int64_t pb = bs.pos[static_cast<std::size_t>(depth - 1)];
          const int level = 64 - __builtin_clzll(static_cast<unsigned long long>(pa ^ pb));
          if ((at >> level) == (pa >> level)) break;
          pop_into(bs, depth, S);
        }
        std::copy(val, val + S, bs.stack.data() + depth * S);
        bs.pos[static_cast<std::size_t>(depth)] = at;
        ++depth;
      }
      while (depth >= 2) pop_into(bs, depth, S);
      if (depth == 1) {
        present[static_cast<std::size_t>(j)] = 1;
        std::copy(bs.stack.data(), bs.stack.data() + S, node_val + j * S);
      }
    }
    if (out) {
      for (std::int64_t j = 0; j < m; ++j) {
        if (!present[static_cast<std::size_t>(j)]) continue;  // out holds zeros
        double* row = out + j * width;
        std::copy(node_val + j * S, node_val + j * S + d, row + c * d);
        row[k * d + c] = node_val[j * S + d];
      }
      return;
    }
    // The right fold of the nodes; absent ones are zeros, the identity.
    double* total = bs.acc.data();
    std::fill(total, total + S, 0.0);
    bool any = false;
    for (std::int64_t j = m - 1; j >= 0; --j) {
      if (!present[static_cast<std::size_t>(j)]) continue;
      const double* v = node_val + j * S;
      for (std::int64_t f = 0; f < S; ++f) total[f] = any ? v[f] + total[f] : v[f];
      any = true;
    }
    std::copy(total, total + d, sums + c * d);
    weights[c] = total[d];
  };
  parallel_for(nt, k, cluster);
}

template double leaf_sse(const float*, const float*, std::int64_t);
template double leaf_sse(const double*, const double*, std::int64_t);
template class LeafSums<float>;
template class LeafSums<double>;
template void accumulate_leaf_weighted(const float*, const float*, std::int64_t, std::int64_t, int,
                                       const std::int32_t*, double*, double*);
template void accumulate_leaf_weighted(const double*, const double*, std::int64_t, std::int64_t,
                                       int, const std::int32_t*, double*, double*);
template void sorted_leaf(const float*, const float*, std::int64_t, const std::int64_t*,
                          std::int64_t, std::int64_t, double*, double*);
template void sorted_leaf(const double*, const double*, std::int64_t, const std::int64_t*,
                          std::int64_t, std::int64_t, double*, double*);
template void bucket_sums(const float*, const float*, std::int64_t, std::int64_t, int,
                          const std::int32_t*, const std::vector<tree::Node>&, std::int64_t, int,
                          BucketScratch&, double*, double*, double*, std::int64_t);
template void bucket_sums(const double*, const double*, std::int64_t, std::int64_t, int,
                          const std::int32_t*, const std::vector<tree::Node>&, std::int64_t, int,
                          BucketScratch&, double*, double*, double*, std::int64_t);

}  // namespace kmeans::detail::cpu
