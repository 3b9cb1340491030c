// SPDX-License-Identifier: Apache-2.0
// `kmeans fit --mpi`: the fit run as one rank of an MPI job (mpi_fit.cpp).
#pragma once

#include "cli/options.hpp"

namespace kmeans_cli {

/// Runs `fit` with --mpi on this rank (initialising MPI when the program has not): each rank
/// reads its rows of DATA, rank 0 prints and writes. Returns the exit code: on an error rank 0
/// prints the one `kmeans: error:` line and returns 1, the others return 0 after it (mpirun
/// would otherwise end the job before the line is out). Without MPI in the build: a UsageError.
int run_fit_mpi(const Options& o, int argc, char** argv);

}  // namespace kmeans_cli
