// SPDX-License-Identifier: Apache-2.0
// The host half of the bound-pruned passes: the test's constants, the centroid movements and
// their drops, the transposed centroids, the kernel lookup and the rule that picks the algorithm.
#include "cpu_bounds.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>

#include "cpu_pool.hpp"
#include "internal.hpp"

namespace kmeans::detail::cpu {

template <class T>
BoundConsts bound_consts(std::int64_t d) {
  const double u = sizeof(T) == 4 ? 0x1p-24 : 0x1p-53;
  const double denorm = sizeof(T) == 4 ? 0x1p-149 : 0x1p-1074;
  BoundConsts b;
  const double nu = (static_cast<double>(d) + 2) * u;
  if (!(nu < 0.25)) return b;
  const double gamma_d = nu / (1 - nu);
  b.lo_fac = (1 - gamma_d) * (1 - 0x1p-48);
  b.hi_fac = 1 + 0x1p-48;
  // Twice the underflow allowance of the direct formula (half a subnormal per operation), so
  // that the rounding of the sum it is added to is covered as well.
  b.tiny = normal_allowance(2 * 8 * (static_cast<double>(d) + 4) * denorm);
  b.inv_hi = (1 - 0x1p-48) / (1 + gamma_d);
  b.inv_lo = (1 + 0x1p-48) / (1 - gamma_d);
  b.thr_fac = (1 / b.lo_fac) * (1 + 0x1p-52);  // each rounding <= 2^-53: the product >= 1 / lo_fac
  b.usable = true;
  return b;
}
template BoundConsts bound_consts<float>(std::int64_t);
template BoundConsts bound_consts<double>(std::int64_t);

const BoundsTable& bounds_table_for(const char* isa_name) {
#if defined(KMEANS_X86_KERNELS)
  if (std::strcmp(isa_name, "avx2") == 0) return bounds_kernels_avx2();
  if (std::strcmp(isa_name, "avx512") == 0) return bounds_kernels_avx512();
#endif
  (void)isa_name;
  return bounds_kernels_generic();
}

template <class T>
void bound_layout(int k, int* t, int* per_bound) {
  constexpr int L = group_of<T>();
  const int lanes = (k + L - 1) / L;
  *per_bound = (lanes + kMaxBoundGroups - 1) / kMaxBoundGroups;
  *t = (lanes + *per_bound - 1) / *per_bound;
}
template void bound_layout<float>(int, int*, int*);
template void bound_layout<double>(int, int*, int*);

template <class T>
void spatial_order(const T* c, int k, std::int64_t d, int span, int t, std::int32_t* out) {
  for (int i = 0; i < k; ++i) out[i] = i;
  struct Part {
    int begin, end, groups;
  };
  std::vector<Part> todo{{0, k, t}};
  std::vector<std::pair<double, std::int32_t>> key;
  while (!todo.empty()) {
    const Part p = todo.back();
    todo.pop_back();
    if (p.groups <= 1 || p.end - p.begin <= span) {
      std::sort(out + p.begin, out + p.end);
      continue;
    }
    std::int64_t best_j = 0;
    double best_w = -1;
    for (std::int64_t j = 0; j < d; ++j) {
      double lo = __builtin_inf(), hi = -__builtin_inf();
      for (int i = p.begin; i < p.end; ++i) {
        const double v = static_cast<double>(c[static_cast<std::int64_t>(out[i]) * d + j]);
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
      }
      if (hi - lo > best_w) {  // NaN spreads never win: feature 0 then
        best_w = hi - lo;
        best_j = j;
      }
    }
    key.clear();
    for (int i = p.begin; i < p.end; ++i) {
      const double v = static_cast<double>(c[static_cast<std::int64_t>(out[i]) * d + best_j]);
      key.emplace_back(v == v ? v : 0.0, out[i]);  // (value, index): a total order
    }
    std::sort(key.begin(), key.end());
    for (int i = p.begin; i < p.end; ++i) out[i] = key[static_cast<std::size_t>(i - p.begin)].second;
    const int gl = p.groups / 2;
    const int mid = std::min(p.end, p.begin + gl * span);
    todo.push_back({mid, p.end, p.groups - gl});
    todo.push_back({p.begin, mid, gl});
  }
}
template void spatial_order<float>(const float*, int, std::int64_t, int, int, std::int32_t*);
template void spatial_order<double>(const double*, int, std::int64_t, int, int, std::int32_t*);

std::int64_t bound_bytes(std::int64_t n, std::int64_t d, int k, std::size_t elem_size) {
  int t = 0, pb = 0;
  if (elem_size == 4)
    bound_layout<float>(k, &t, &pb);
  else
    bound_layout<double>(k, &t, &pb);
  const std::int64_t lanes = static_cast<std::int64_t>(t) * pb * static_cast<std::int64_t>(64 / elem_size);
  return 4 * t * n + static_cast<std::int64_t>(elem_size) * d * (k + lanes) + 24 * k;
}

bool auto_range(std::int64_t n, std::int64_t d, int k, std::size_t elem_size) {
  return n >= 100000 && d >= (elem_size == 8 ? 8 : 16) && d <= 128 && k >= 128 && k <= 512;
}

bool bounds_possible(Algorithm a, std::int64_t n, std::int64_t d, int k, std::size_t elem_size,
                     bool usable) {
  return a != Algorithm::Lloyd && usable && k >= 2 &&
         bound_bytes(n, d, k, elem_size) <= kMaxBoundBytes;
}

bool use_bounds(Algorithm a, std::int64_t n, std::int64_t d, int k, std::size_t elem_size,
                bool usable, bool live, std::int64_t prev_changed, std::int64_t passes) {
  if (!bounds_possible(a, n, d, k, elem_size, usable)) return false;
  if (a == Algorithm::Elkan)
    return live || (prev_changed >= 0 && prev_changed * kElkanStartDiv <= n);
  return auto_range(n, d, k, elem_size) &&
         (live || (passes >= kAutoStartPasses && prev_changed >= 0 && prev_changed * 100 <= n));
}

template <class T>
void Bounds<T>::prepare(const T* c, int k, std::int64_t n, std::int64_t d, bool valid,
                        int n_threads, BoundsSearchFn<T> search) {
  constexpr int G = group_of<T>();
  bc_ = bound_consts<T>(d);
  int t = 0, pb = 0;
  bound_layout<T>(k, &t, &pb);
  const std::size_t blocks = static_cast<std::size_t>((n + kReduceBlock - 1) / kReduceBlock);
  drop1_.assign(static_cast<std::size_t>(t), 0.0);
  drop2_.assign(static_cast<std::size_t>(t), 0.0);
  drop_arg_.assign(static_cast<std::size_t>(t), -1);
  if (!valid || prev_.size() != static_cast<std::size_t>(k * d) || gp_.t != t ||
      order_.size() != static_cast<std::size_t>(k) ||
      policy_.size() != blocks || lower_.size() != static_cast<std::size_t>(n * t)) {
    lower_.assign(static_cast<std::size_t>(n * t), 0.0f);
    policy_.assign(blocks, BlockPolicy{});  // a settled fit: tight bounds from the first pass
    // New bounds, a new grouping (it must stay while the bounds refer to it).
    order_.resize(static_cast<std::size_t>(k));
    spatial_order<T>(c, k, d, pb * G, t, order_.data());
  } else {
    // delta_c >= |c_new - c_old|: the differences and squares in double err by at most
    // (d + 3) u_d relatively, underflow by d halves of the smallest subnormal.
    for (int ci = 0; ci < k; ++ci) {
      double s = 0;
      bool moved = false;
      for (std::int64_t j = 0; j < d; ++j) {
        const double diff = static_cast<double>(c[ci * d + j]) - static_cast<double>(prev_[ci * d + j]);
        moved = moved || diff != 0;
        s += diff * diff;
      }
      const double delta =
          moved ? std::sqrt(s * (1 + (static_cast<double>(d) + 4) * 0x1p-52) +
                            normal_allowance(static_cast<double>(d) * 0x1p-1074)) *
                      (1 + 0x1p-50)
                : 0.0;
      const int g = group_[ci];
      if (delta > drop1_[g]) {
        drop2_[g] = drop1_[g];
        drop1_[g] = delta;
        drop_arg_[g] = ci;
      } else if (delta > drop2_[g]) {
        drop2_[g] = delta;
      }
    }
  }
  prev_.assign(c, c + k * d);
  n_groups_ = (k + G - 1) / G;
  perm_.resize(static_cast<std::size_t>(n_groups_) * G);
  group_.resize(static_cast<std::size_t>(k));
  for (int q = 0; q < n_groups_ * G; ++q) {
    perm_[q] = q < k ? order_[q] : k + q;
    if (q < k) group_[order_[q]] = q / (pb * G);
  }
  ct_.resize(static_cast<std::size_t>(n_groups_) * d * G);
  for (int g = 0; g < n_groups_; ++g)
    for (std::int64_t j = 0; j < d; ++j)
      for (int l = 0; l < G; ++l) {
        const int q = g * G + l;
        ct_[(static_cast<std::size_t>(g) * d + j) * G + l] =
            q < k ? c[static_cast<std::int64_t>(order_[q]) * d + j] : static_cast<T>(__builtin_inf());
      }
  drop_f_.resize(static_cast<std::size_t>(t));
  for (int g = 0; g < t; ++g) {  // rounded up: drop_f >= drop1 (+inf beyond float's range)
    float f = static_cast<float>(drop1_[g]);
    if (static_cast<double>(f) < drop1_[g]) f = std::nextafter(f, __builtin_inff());
    drop_f_[g] = f;
  }
  gp_ = GroupPass<T>{c,  k, d, ct_.data(), perm_.data(), group_.data(), pb, t, drop1_.data(),
                     drop2_.data(), drop_arg_.data(), drop_f_.data(), bc_};
  separation(c, k, n, d, n_threads, search);
}

template <class T>
void Bounds<T>::separation(const T* c, int k, std::int64_t n, std::int64_t d, int n_threads,
                           BoundsSearchFn<T> search) {
  // The full search with the centroids as the points: centroid a finds itself (distance 0, or
  // a duplicate of lower index) and its bound from the second smallest distance is
  // sep_[a] <= min over b != a of |c_a - c_b|. Only while its k^2 d stays small against a
  // pass's n k d (k <= n / 32): else 0, and the rows labelled by Lloyd's kernel get no bound.
  sep_.assign(static_cast<std::size_t>(k), 0.0);
  if (static_cast<std::int64_t>(k) * 32 > n) return;
  constexpr std::int64_t kChunk = 64;
  sep_idx_.resize(static_cast<std::size_t>(k));
  sep_lab_.resize(static_cast<std::size_t>(k));
  sep_dist_.resize(static_cast<std::size_t>(k));
  for (int a = 0; a < k; ++a) sep_idx_[a] = a;
  auto chunk = [&](std::int64_t q, int) {
    const std::int64_t a0 = q * kChunk, m = std::min<std::int64_t>(kChunk, k - a0);
    search(c, d, ct_.data(), perm_.data(), n_groups_, sep_idx_.data() + a0, m, bc_, sep_lab_.data(),
           sep_dist_.data(), sep_.data());
  };
  parallel_for(n_threads, (k + kChunk - 1) / kChunk, chunk);
}

template <class T>
void separation_bounds(const GroupPass<T>& gp, const std::int32_t* prev, const std::int32_t* lab,
                       const T* dist, const std::int64_t* rows, std::int64_t m, const double* sep,
                       float* lower) {
  const BoundConsts& bc = gp.bc;
  for (std::int64_t q = 0; q < m; ++q) {
    const std::int64_t r = rows[q];
    const std::int32_t a = prev[r], b = lab[r];
    const bool valid = bc.usable && a >= 0 && a < gp.k;
    // U >= |x - c_b| from D_b (cpu_bounds_kernel.hpp); l <= sep_b - U.
    const double ub = std::sqrt((static_cast<double>(dist[r]) + bc.tiny) * bc.inv_lo) * (1 + 0x1p-50);
    const double l = sep[b] * (1 - 0x1p-50) - ub * (1 + 0x1p-50);
    float ls = 0.0f;
    if (bc.usable && l > 1e-30) ls = l > 1e38 ? 1e38f : static_cast<float>(l * (1 - 0x1p-22));
    float* lr = lower + r * gp.t;
    for (int g = 0; g < gp.t; ++g) {
      // A bound that excluded the old label stays valid only if the label did not change
      // (the groups other than the old label's exclude neither label).
      const bool keep = valid && (a == b || g != gp.group[a]);
      const float old = keep ? lr[g] : 0.0f;
      lr[g] = old > ls ? old : ls;
    }
  }
}
template void separation_bounds<float>(const GroupPass<float>&, const std::int32_t*,
                                       const std::int32_t*, const float*, const std::int64_t*,
                                       std::int64_t, const double*, float*);
template void separation_bounds<double>(const GroupPass<double>&, const std::int32_t*,
                                        const std::int32_t*, const double*, const std::int64_t*,
                                        std::int64_t, const double*, float*);

template class Bounds<float>;
template class Bounds<double>;

}  // namespace kmeans::detail::cpu
