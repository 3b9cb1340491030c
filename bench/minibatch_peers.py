#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""scikit-learn's MiniBatchKMeans and KMeans fits for bench_kmeans --minibatch (time to inertia).

bench_kmeans writes the data (n x d) and the initial centroids (k x d) as .npy files and runs
this script once per method. Each fit is one complete fit() call from the given centroids
(n_init=1), timed with perf_counter around fit() only, and reports the inertia_ scikit-learn
computed over the whole data. The fits differ in their stopping knob only:

  minibatch: MiniBatchKMeans(batch_size=B, compute_labels=True) with each (max_iter,
             max_no_improvement) of --configs (null: the rule disabled)
  lloyd:     KMeans(algorithm="lloyd", tol=0) with each max_iter of --configs, stopping early
             once a fit converged before its max_iter or reached --stop-below

One warm-up fit (max_iter 1) runs first, untimed; then --passes (default 2) passes over the
fits, each point keeping its fastest time (seconds_other_pass: the slowest). The script prints
one JSON line:
  {"ok": true, "version": ..., "threads": ..., "points": [{"max_iter", "max_no_improvement",
   "seconds", "inertia", "n_iter", "n_steps"}, ...]}
or {"ok": false, "error": "why"}.
"""

import argparse
import json
import os
import sys
import time
import warnings


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--method", required=True, choices=("minibatch", "lloyd"))
    ap.add_argument("--data", required=True)
    ap.add_argument("--init", required=True)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--batch-size", type=int, default=1024)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--passes", type=int, default=2, help="runs of every fit; the fastest kept")
    ap.add_argument("--stop-below", type=float, default=0.0,
                    help="lloyd: stop the grid once a fit's inertia is at most this")
    ap.add_argument("--configs", required=True, help="JSON list: [max_iter, max_no_improvement]"
                    " pairs (minibatch) or max_iter values (lloyd)")
    args = ap.parse_args()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    try:
        import numpy as np
        import sklearn
        from sklearn.cluster import KMeans, MiniBatchKMeans
        from threadpoolctl import threadpool_limits
    except ImportError as e:
        print(json.dumps({"ok": False, "error": "%s: %s" % (sys.executable, e)}))
        return 0
    x = np.load(args.data)
    init = np.load(args.init)
    k = init.shape[0]
    configs = json.loads(args.configs)

    def make(max_iter, patience=None):
        if args.method == "minibatch":
            return MiniBatchKMeans(k, init=init, n_init=1, batch_size=args.batch_size,
                                   max_iter=max_iter, max_no_improvement=patience,
                                   random_state=args.seed, compute_labels=True)
        return KMeans(k, init=init, n_init=1, max_iter=max_iter, tol=0.0, algorithm="lloyd")

    points = []
    with warnings.catch_warnings(), threadpool_limits(limits=args.threads):
        warnings.simplefilter("ignore")
        make(1, 10).fit(x)  # warm-up: thread pools, first-touch
        for run in range(args.passes):
            for i, c in enumerate(configs):
                max_iter, patience = (c[0], c[1]) if args.method == "minibatch" else (c, None)
                est = make(max_iter, patience)
                t0 = time.perf_counter()
                est.fit(x)
                seconds = time.perf_counter() - t0
                if run > 0:  # the same fit again (fixed seed): keep the faster time
                    p = points[i]
                    p["seconds_other_pass"] = max(p["seconds"], seconds)
                    p["seconds"] = min(p["seconds"], seconds)
                    if i + 1 == len(points):
                        break
                    continue
                points.append({
                    "max_iter": max_iter,
                    "max_no_improvement": patience,
                    "seconds": seconds,
                    "inertia": float(est.inertia_),
                    "n_iter": int(est.n_iter_),
                    "n_steps": int(getattr(est, "n_steps_", 0)),
                })
                if args.method == "lloyd" and (est.n_iter_ < max_iter
                                               or est.inertia_ <= args.stop_below):
                    break  # converged (a larger max_iter gives the same fit), or close enough
    print(json.dumps({"ok": True, "version": sklearn.__version__, "threads": args.threads,
                      "python": sys.executable, "points": points}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
