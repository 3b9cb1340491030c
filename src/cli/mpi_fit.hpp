// SPDX-License-Identifier: Apache-2.0
// `kmeans fit --mpi`: the fit run as one rank of an MPI job (mpi_fit.cpp).
#pragma once

#include "cli/options.hpp"

namespace kmeans_cli {

/// Runs `fit` with --mpi on this rank (initialising MPI when the program has not): each rank
/// reads its rows of DATA, rank 0 prints and writes. Returns the exit code; an error is thrown
/// on rank 0 (main prints it) and is a silent exit code 1 on the others. Without MPI in the
/// build: a UsageError.
int run_fit_mpi(const Options& o, int argc, char** argv);

}  // namespace kmeans_cli
