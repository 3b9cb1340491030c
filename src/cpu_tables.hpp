// SPDX-License-Identifier: Apache-2.0
// The typed entries of the CPU kernel tables (cpu_kernel.hpp, cpu_bounds.hpp): the function of
// a table for float or double, so that the engine (backend_cpu.cpp) is written once for T.
#pragma once

#include "cpu_bounds.hpp"
#include "cpu_kernel.hpp"

namespace kmeans::detail {

template <class T>
cpu::AssignFn<T> kernel_of(const cpu::KernelTable& t);
template <>
inline cpu::AssignFn<float> kernel_of<float>(const cpu::KernelTable& t) { return t.assign_f; }
template <>
inline cpu::AssignFn<double> kernel_of<double>(const cpu::KernelTable& t) { return t.assign_d; }

template <class T>
cpu::AssignFn<T> gemm_kernel_of(const cpu::KernelTable& t);
template <>
inline cpu::AssignFn<float> gemm_kernel_of<float>(const cpu::KernelTable& t) { return t.assign_gemm_f; }
template <>
inline cpu::AssignFn<double> gemm_kernel_of<double>(const cpu::KernelTable& t) { return t.assign_gemm_d; }

template <class T>
cpu::AssignSmallKFn<T> small_k_kernel_of(const cpu::KernelTable& t);
template <>
inline cpu::AssignSmallKFn<float> small_k_kernel_of<float>(const cpu::KernelTable& t) {
  return t.assign_small_k_f;
}
template <>
inline cpu::AssignSmallKFn<double> small_k_kernel_of<double>(const cpu::KernelTable& t) {
  return t.assign_small_k_d;
}

template <class T>
cpu::AssignCentroidLanesFn<T> centroid_lanes_kernel_of(const cpu::KernelTable& t);
template <>
inline cpu::AssignCentroidLanesFn<float> centroid_lanes_kernel_of<float>(const cpu::KernelTable& t) {
  return t.assign_centroid_lanes_f;
}
template <>
inline cpu::AssignCentroidLanesFn<double> centroid_lanes_kernel_of<double>(const cpu::KernelTable& t) {
  return t.assign_centroid_lanes_d;
}
/// Values of T per vector register of the table.
template <class T>
int simd_width_of(const cpu::KernelTable& t) {
  return sizeof(T) == 4 ? t.width_f : t.width_d;
}

template <class T>
cpu::AccumulateFn<T> accumulate_of(const cpu::KernelTable& t);
template <>
inline cpu::AccumulateFn<float> accumulate_of<float>(const cpu::KernelTable& t) { return t.accumulate_f; }
template <>
inline cpu::AccumulateFn<double> accumulate_of<double>(const cpu::KernelTable& t) { return t.accumulate_d; }

template <class T>
cpu::AccumulateLeafFn<T> accumulate_leaf_of(const cpu::KernelTable& t);
template <>
inline cpu::AccumulateLeafFn<float> accumulate_leaf_of<float>(const cpu::KernelTable& t) { return t.accumulate_leaf_f; }
template <>
inline cpu::AccumulateLeafFn<double> accumulate_leaf_of<double>(const cpu::KernelTable& t) { return t.accumulate_leaf_d; }

template <class T>
cpu::SubtileSumsFn<T> subtile_of(const cpu::KernelTable& t);
template <>
inline cpu::SubtileSumsFn<float> subtile_of<float>(const cpu::KernelTable& t) { return t.subtile_sums_f; }
template <>
inline cpu::SubtileSumsFn<double> subtile_of<double>(const cpu::KernelTable& t) { return t.subtile_sums_d; }

template <class T>
cpu::GroupsTestFn<T> bounds_test_of(const cpu::BoundsTable& t);
template <>
inline cpu::GroupsTestFn<float> bounds_test_of<float>(const cpu::BoundsTable& t) { return t.test_f; }
template <>
inline cpu::GroupsTestFn<double> bounds_test_of<double>(const cpu::BoundsTable& t) { return t.test_d; }
template <class T>
cpu::GroupsSearchFn<T> bounds_full_of(const cpu::BoundsTable& t);
template <>
inline cpu::GroupsSearchFn<float> bounds_full_of<float>(const cpu::BoundsTable& t) { return t.full_f; }
template <>
inline cpu::GroupsSearchFn<double> bounds_full_of<double>(const cpu::BoundsTable& t) { return t.full_d; }
template <class T>
cpu::GroupsSearchFn<T> bounds_groups_of(const cpu::BoundsTable& t);
template <>
inline cpu::GroupsSearchFn<float> bounds_groups_of<float>(const cpu::BoundsTable& t) { return t.groups_f; }
template <>
inline cpu::GroupsSearchFn<double> bounds_groups_of<double>(const cpu::BoundsTable& t) {
  return t.groups_d;
}
template <class T>
cpu::BoundsSearchFn<T> bounds_search_of(const cpu::BoundsTable& t);
template <>
inline cpu::BoundsSearchFn<float> bounds_search_of<float>(const cpu::BoundsTable& t) { return t.search_f; }
template <>
inline cpu::BoundsSearchFn<double> bounds_search_of<double>(const cpu::BoundsTable& t) {
  return t.search_d;
}

template <class T>
inline int tile_of(const cpu::KernelTable& t) {
  return sizeof(T) == sizeof(float) ? t.tile_f : t.tile_d;
}

}  // namespace kmeans::detail
