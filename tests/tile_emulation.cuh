// SPDX-License-Identifier: Apache-2.0
// The tile kernel's per-point work run on the host (tests): ranking tiles from build_rank_tile,
// rank_tile per tile, the direct distance of the choice, the bound, and the warp's direct argmin
// (32 lanes, then the butterfly merge) when the bound leaves a rival - the device code's
// __host__ __device__ functions in the kernel's order, so the bits are the kernel's.
#pragma once

#include <climits>
#include <cstdint>
#include <vector>

#include "kernels/assign.cuh"
#include "kernels/tile_rank.cuh"
#include "kernels/tuning.cuh"

namespace kmeans::detail::test {

template <class T>
struct TilePointResult {
  T dist = 0;
  int label = -1;
  bool rechecked = false;  ///< the bound left a rival: the warp's direct argmin decided
  int ranked = -1;         ///< the ranking's choice
};

/// A ranking tile of k_tile centroids (16-byte aligned storage, as the kernel's shared memory).
template <class T>
class HostRankTile {
 public:
  HostRankTile(int k_tile, int d)
      : store_(static_cast<std::size_t>(k_tile) * (d + 1) * sizeof(T) / sizeof(float4) + 1) {}
  T* data() { return reinterpret_cast<T*>(store_.data()); }

 private:
  std::vector<float4> store_;
};

/// The kernel's answer for one point x (k x d centroids c, tiles of k_tile centroids).
template <class T>
TilePointResult<T> tile_kernel_point(const T* x, const T* c, int d, int k, int k_tile) {
  using R = TileRank<T>;
  const TileBound bound = tile_bound_terms<T>(d);
  const bool in_regs = d <= R::kRowRegs;
  T nx[R::kRowRegs];
  if (in_regs) load_centred_row(x, c, 0, d, nx);
  RankState<T> rank;
  HostRankTile<T> tile(k_tile, d);
  for (int c0 = 0; c0 < k; c0 += k_tile) {
    const int count = k - c0 < k_tile ? k - c0 : k_tile;
    build_rank_tile(tile.data(), c, c0, count, d, k_tile, 0, 1);
    rank_tile(nx, in_regs, x, c, tile.data(), d, c0, count, rank);
  }
  TilePointResult<T> r;
  r.ranked = rank.index;
  r.label = rank.index;
  r.dist = squared_distance(x, c + static_cast<std::int64_t>(r.label) * d, d);
  r.rechecked = tile_has_rival(bound, static_cast<double>(rank.best), static_cast<double>(r.dist),
                               static_cast<double>(rank.second));
  if (r.rechecked) {
    T v[32];
    int vi[32];
    for (int lane = 0; lane < 32; ++lane) {
      v[lane] = positive_infinity<T>();
      vi[lane] = INT_MAX;
      direct_argmin_part(x, c, k, d, lane, 32, v[lane], vi[lane]);
    }
    for (int off = 16; off > 0; off /= 2) {  // __shfl_xor_sync: every lane reads the old values
      T ov[32];
      int oi[32];
      for (int lane = 0; lane < 32; ++lane) {
        ov[lane] = v[lane ^ off];
        oi[lane] = vi[lane ^ off];
      }
      for (int lane = 0; lane < 32; ++lane) argmin_merge(ov[lane], oi[lane], v[lane], vi[lane]);
    }
    r.label = vi[0] == INT_MAX ? 0 : vi[0];
    r.dist = vi[0] == INT_MAX ? positive_infinity<T>() : v[0];
  }
  return r;
}

}  // namespace kmeans::detail::test
