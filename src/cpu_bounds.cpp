// SPDX-License-Identifier: Apache-2.0
// The host half of the bound-pruned passes: the test's constants, the centroid movements and
// their drops, the transposed centroids, the kernel lookup and the rule that picks the algorithm.
#include "cpu_bounds.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

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
  b.tiny = 2 * 8 * (static_cast<double>(d) + 4) * denorm;
  b.inv_hi = (1 - 0x1p-48) / (1 + gamma_d);
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

std::int64_t bound_bytes(std::int64_t n, std::int64_t d, int k, std::size_t elem_size) {
  const std::int64_t groups = (k + 7) / 8 + 1;  // at most, over T
  return 8 * n + static_cast<std::int64_t>(elem_size) * d * (k + groups * 16) + 8 * k;
}

bool use_bounds(Algorithm a, std::int64_t n, std::int64_t d, int k, std::size_t elem_size,
                bool usable) {
  if (a == Algorithm::Lloyd || !usable || k < 2) return false;
  if (bound_bytes(n, d, k, elem_size) > kMaxBoundBytes) return false;
  if (a == Algorithm::Elkan) return true;
  return k >= kAutoMinK && d <= kAutoMaxD;
}

template <class T>
void Bounds<T>::prepare(const T* c, int k, std::int64_t n, std::int64_t d, bool valid) {
  constexpr int G = group_of<T>();
  bc_ = bound_consts<T>(d);
  lower_.resize(static_cast<std::size_t>(n));
  drop_.assign(static_cast<std::size_t>(k), 0.0);
  if (!valid || prev_.size() != static_cast<std::size_t>(k * d)) {
    std::fill(lower_.begin(), lower_.end(), 0.0);
  } else {
    // delta_c >= |c_new - c_old|: the differences and squares in double err by at most
    // (d + 3) u_d relatively, underflow by d halves of the smallest subnormal.
    double m1 = 0, m2 = 0;
    int arg = -1;
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
                            static_cast<double>(d) * 0x1p-1074) * (1 + 0x1p-50)
                : 0.0;
      if (delta > m1) {
        m2 = m1;
        m1 = delta;
        arg = ci;
      } else if (delta > m2) {
        m2 = delta;
      }
    }
    for (int ci = 0; ci < k; ++ci) drop_[ci] = ci == arg ? m2 : m1;
  }
  prev_.assign(c, c + k * d);
  n_groups_ = (k + G - 1) / G;
  ct_.resize(static_cast<std::size_t>(n_groups_) * d * G);
  for (int g = 0; g < n_groups_; ++g)
    for (std::int64_t j = 0; j < d; ++j)
      for (int l = 0; l < G; ++l) {
        const int ci = g * G + l;
        ct_[(static_cast<std::size_t>(g) * d + j) * G + l] =
            ci < k ? c[ci * d + j] : static_cast<T>(__builtin_inf());
      }
}

template class Bounds<float>;
template class Bounds<double>;

}  // namespace kmeans::detail::cpu
