// SPDX-License-Identifier: Apache-2.0
// The members every `kmeans fit --json` object shares, whichever way the fit ran (in memory,
// streamed, MPI): from "algorithm" to "model_out", in one order.
#pragma once

#include "cli/json.hpp"
#include "cli/options.hpp"
#include "kmeans/kmeans.hpp"

namespace kmeans_cli {

/// The JSON's "algorithm": minibatch (batch_size > 0), else the requested Options::algorithm.
inline const char* algorithm_name(const kmeans::Options& p) {
  return p.batch_size > 0                          ? "minibatch"
         : p.algorithm == kmeans::Algorithm::Elkan ? "elkan"
         : p.algorithm == kmeans::Algorithm::Auto  ? "auto"
                                                   : "lloyd";
}

/// Adds algorithm, init, n_init (the runs made), max_iter, tol, seed, sample_weight, the
/// result's n_iter, converged, inertia, histories, sizes and warnings, seconds, timings and
/// the output paths to `j`.
template <class T>
Json& fit_members(Json& j, const Options& o, const kmeans::Params<T>& p,
                  const kmeans::Result<T>& r, int n_init_ran, double seconds,
                  const Json& timings) {
  return j.field("algorithm", algorithm_name(p))
      .field("init", init_name(p.init))
      .field("n_init", n_init_ran)
      .field("max_iter", p.max_iter)
      .field("tol", p.tol)
      .field("seed", p.seed)
      .null_or("sample_weight", o.sample_weight)
      .field("n_iter", r.n_iter)
      .field("converged", r.converged)
      .field("inertia", r.inertia)
      .field("sse_history", r.sse_history)
      .field("n_empty_relocated", r.n_empty_relocated)
      .field("cluster_sizes", r.cluster_sizes)
      .field("imbalance_history", r.imbalance_history)
      .field("warnings", r.warnings)
      .field("seconds", seconds)
      .field("timings", timings)
      .null_or("centroids_out", o.centroids_out)
      .null_or("labels_out", o.labels_out)
      .null_or("model_out", o.model_out);
}

}  // namespace kmeans_cli
