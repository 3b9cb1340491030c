// SPDX-License-Identifier: Apache-2.0
// Small typed wrappers over the MPI calls the distributed fit makes, with traffic accounting.
#pragma once

#include <mpi.h>

#include <climits>
#include <cstdint>
#include <string>
#include <vector>

#include "kmeans/kmeans.hpp"
#include "kmeans/mpi.hpp"

namespace kmeans::mpi::detail {

template <class T>
MPI_Datatype type_of();
template <>
inline MPI_Datatype type_of<float>() { return MPI_FLOAT; }
template <>
inline MPI_Datatype type_of<double>() { return MPI_DOUBLE; }
template <>
inline MPI_Datatype type_of<std::int32_t>() { return MPI_INT32_T; }
template <>
inline MPI_Datatype type_of<std::int64_t>() { return MPI_INT64_T; }

/// A communicator with its rank and size.
struct Comm {
  MPI_Comm comm = MPI_COMM_NULL;
  int rank = 0;
  int size = 1;
  explicit Comm(MPI_Comm c) : comm(c) {
    MPI_Comm_rank(c, &rank);
    MPI_Comm_size(c, &size);
  }
};

/// An element count as MPI's int, or a kmeans::Error naming what overflows.
inline int count_of(std::int64_t n, const char* what) {
  if (n < 0 || n > INT_MAX)
    throw Error(std::string(what) + ": " + std::to_string(n) +
                " elements exceed MPI's int count (2^31 - 1) in this version");
  return static_cast<int>(n);
}

/// Every rank's `mine` (count elements, different per rank) concatenated in rank order into
/// every rank's result.
template <class T>
std::vector<T> allgatherv(const Comm& c, const T* mine, std::int64_t count, const char* what) {
  int n = count_of(count, what);
  std::vector<int> counts(static_cast<std::size_t>(c.size)), displs(static_cast<std::size_t>(c.size));
  MPI_Allgather(&n, 1, MPI_INT, counts.data(), 1, MPI_INT, c.comm);
  std::int64_t total = 0;
  for (int r = 0; r < c.size; ++r) {
    displs[static_cast<std::size_t>(r)] = count_of(total, what);
    total += counts[static_cast<std::size_t>(r)];
  }
  count_of(total, what);
  std::vector<T> out(static_cast<std::size_t>(total));
  MPI_Allgatherv(mine, n, type_of<T>(), out.data(), counts.data(), displs.data(), type_of<T>(),
                 c.comm);
  return out;
}

}  // namespace kmeans::mpi::detail
