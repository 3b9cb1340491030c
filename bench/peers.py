#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Peer k-means implementations timed on bench_kmeans's data (one peer per run).

bench_kmeans writes the data (n x d) and the initial centroids (k x d) as .npy files and runs
this script once per peer with the same iteration count and thread count as its own rows. The
script prints one JSON line on stdout:

  {"peer": ..., "ok": true, "device": "cpu"|"cuda", "version": ..., "s_per_iter": ...,
   "s_per_iter_runs": [one per repeat], "repeats": ..., "n_iter": ..., "final_sse": ...,
   "sse_history": [...], "timing": "how it was timed", "threads": ..., "blas": [paths],
   "blas_name": "OpenBLAS 0.3.21"}

or {"peer": ..., "ok": false, "error": "why"} when the peer cannot run (module missing, no GPU).
Times exclude imports, data loading and transfers: they are taken inside the script around
the fit only, after one warm-up fit, as the median of repeats that fit in --budget seconds;
every repeat's time is reported too, so a reader sees the spread, not a median alone.
"""

import argparse
import json
import os
import sys
import time
import warnings

PEERS = ("sklearn", "sklearnex", "faiss", "faiss-gpu", "torch")
MAX_REPEATS = 7


class Unavailable(Exception):
    """The peer cannot run here; the message says why."""


def median(values):
    v = sorted(values)
    m = len(v) // 2
    return v[m] if len(v) % 2 else 0.5 * (v[m - 1] + v[m])


def repeat(run_once, budget):
    """Runs run_once() at least once and again while the budget lasts; returns all results."""
    results = []
    start = time.perf_counter()
    while True:
        results.append(run_once())
        if len(results) >= MAX_REPEATS or time.perf_counter() - start > budget:
            return results


def loaded_blas():
    """BLAS/LAPACK libraries mapped into this process: a peer's speed depends on which one
    (Debian's reference netlib BLAS is an order of magnitude slower than OpenBLAS or MKL)."""
    found = []
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split()[-1]
                name = os.path.basename(path).lower()
                # The shared libraries themselves, not Python's cython wrappers around them.
                if not name.startswith("lib") or ".cpython-" in name:
                    continue
                if ("blas" in name or "mkl" in name or "lapack" in name) and path not in found:
                    found.append(path)
    except OSError:
        pass
    return found


def blas_name_of(path):
    """A reader's name for one mapped BLAS library, from its file or its Debian alternatives
    directory; None for LAPACK-only libraries."""
    low = path.lower()
    base = os.path.basename(low)
    if "mkl" in base:
        return "MKL"
    if "openblas" in low:
        return "OpenBLAS"
    if "blis" in low:
        return "BLIS"
    if "flexiblas" in low:
        return "FlexiBLAS"
    if "atlas" in low:
        return "ATLAS"
    if base.startswith("libblas") or base.startswith("libcblas"):
        # Debian's /usr/lib/<triplet>/blas/libblas.so.3 is the unoptimised netlib code.
        return "netlib reference BLAS"
    return None


def describe_blas(paths, versions=None, fallback=None):
    """The BLAS a peer ran on, e.g. "OpenBLAS 0.3.21" or "netlib reference BLAS"; versions maps
    a name to the version threadpoolctl reported; fallback names a BLAS that is not a separate
    library (MKL linked into torch)."""
    names = []
    for p in paths:
        name = blas_name_of(p)
        if name and name not in names:
            names.append(name)
    if not names:
        return fallback or "none loaded"
    versions = versions or {}
    return " + ".join(f"{n} {versions[n]}" if versions.get(n) else n for n in names)


def threadpool_versions(info):
    """{"OpenBLAS": "0.3.21", ...} from threadpoolctl's threadpool_info()."""
    known = {"openblas": "OpenBLAS", "mkl": "MKL", "blis": "BLIS", "flexiblas": "FlexiBLAS"}
    out = {}
    for lib in info:
        name = known.get(lib.get("internal_api"))
        if name and lib.get("version"):
            out[name] = lib["version"]
    return out


def median_per_iter(values):
    """The reported s_per_iter and the per-repeat list it is the median of."""
    return median(values), [float(v) for v in values]


def final_sse(np, x, c):
    """Sum of squared distances to the nearest of the returned centroids, in float64, so every
    peer's SSE is computed the same way (outside the timed region)."""
    x = np.asarray(x, dtype=np.float64)
    c = np.asarray(c, dtype=np.float64)
    c_sq = (c * c).sum(1)
    rows = max(1, (1 << 22) // c.shape[0])
    total = 0.0
    for s in range(0, x.shape[0], rows):
        xb = x[s:s + rows]
        # Expanded form for speed; float64 keeps the cancellation far below the SSE's precision.
        d2 = (xb * xb).sum(1)[:, None] - 2.0 * xb @ c.T + c_sq[None, :]
        total += float(np.maximum(d2.min(1), 0.0).sum())
    return total


def lloyd_steps_per_iter(module, fit, iters, budget):
    """Seconds per Lloyd iteration of scikit-learn's KMeans, timed step by step inside the fit.

    scikit-learn's Lloyd loop (_kmeans_single_lloyd) calls module.lloyd_iter_chunked_dense once
    per iteration (its E-step and M-step) and once more, as a final E-step, when the fit ran out
    of iterations. Timing those calls gives each iteration's own time, whatever the fit's fixed
    costs, wherever it stops and however uneven its iterations are (an empty cluster's repair
    makes one iteration several times the others); the per-iteration Python bookkeeping (one
    labels comparison, one sum of k shifts) is left out. Returns (per-repeat seconds per
    iteration, per-repeat whole fit / n_iter_, how, the last fitted estimator), or None when the
    loop is not the one described (the function is missing or called another number of times).
    """
    step = getattr(module, "lloyd_iter_chunked_dense", None)
    if step is None:
        return None
    calls = []

    def timed(*a, **kw):
        t0 = time.perf_counter()
        out = step(*a, **kw)
        calls.append(time.perf_counter() - t0)
        return out

    def one():
        calls.clear()
        t, km = fit(iters)
        n = int(km.n_iter_)
        if n < 1 or len(calls) not in (n, n + 1):
            return None
        return sum(calls[:n]) / n, t / n, km

    module.lloyd_iter_chunked_dense = timed
    try:
        if one() is None:  # warm-up (thread pools, page faults, first-call costs) and the check
            return None
        runs = repeat(one, budget)
    finally:
        module.lloyd_iter_chunked_dense = step
    if any(r is None for r in runs):
        return None
    how = ("median over repeats of the n_iter_ Lloyd steps' time (scikit-learn's "
           "lloyd_iter_chunked_dense: E-step + M-step, timed inside the fit) / n_iter_")
    return [r[0] for r in runs], [r[1] for r in runs], how, runs[-1][2]


def sklearn_per_iter(fit, iters, budget):
    """Seconds per Lloyd iteration of scikit-learn's KMeans, without its fixed per-fit costs.

    fit(max_iter) -> (seconds, fitted estimator). Returns (per-repeat seconds per iteration,
    per-repeat whole-fit seconds / n_iter_, how it was timed, the last fitted estimator).

    The difference of a longer fit and a one-iteration fit removes the fixed costs (validation,
    copies, the final E-step), as our own per-iteration time excludes ours. A fit that runs out
    of iterations ends with one more E-step; a fit that stops early (strict convergence: the
    labels repeat, which happens even with tol = 0) does not. So fit(n_iter_) - fit(1) would be
    n_iter_ - 1 iterations less one E-step, and dividing it by n_iter_ - 1 under-states an
    iteration (about 2x at n_iter_ = 3). When the fit stops early, the longer fit is
    fit(n_iter_ - 1), which runs out of iterations like fit(1). One method for every repeat: the
    difference only when it is positive in all of them, else the whole fit over n_iter_.
    """
    # Warm-up (thread pools, page faults, first-call costs); it also says where the fit stops.
    n_iter = int(fit(iters)[1].n_iter_)
    early = n_iter < iters
    longer = n_iter - 1 if early else iters

    def one_round():
        t_full, km = fit(iters)
        t_long = fit(longer)[0] if early else t_full
        t_one, _ = fit(1)
        return t_full, t_long, t_one, km

    runs = repeat(one_round, budget)
    km = runs[-1][3]
    whole = [r[0] / int(km.n_iter_) for r in runs]
    steps = longer - 1
    if steps >= 1 and all(r[1] > r[2] for r in runs):
        how = f"median over repeats of (fit(max_iter={longer}) - fit(max_iter=1)) / {steps}"
        if early:
            how += (f" (the fit stops early at n_iter_ = {n_iter}, without the final E-step "
                    "that fit(1) and the longer fit both run)")
        return [(r[1] - r[2]) / steps for r in runs], whole, how, km
    return whole, whole, "median over repeats of fit(max_iter=iters) / n_iter_", km


def run_sklearn(np, x, c, args, intelex=False):
    """scikit-learn's KMeans(lloyd); with intelex, scikit-learn-intelex's (Intel oneDAL)."""
    try:
        import sklearn
        from threadpoolctl import threadpool_info, threadpool_limits
        if intelex:
            import sklearnex
            from sklearnex.cluster import KMeans
        else:
            from sklearn.cluster import KMeans
    except ImportError as e:
        what = "scikit-learn-intelex" if intelex else "scikit-learn/threadpoolctl"
        raise Unavailable(f"{what} not importable with {sys.executable}: {e}")
    k = c.shape[0]
    fallbacks = []
    if intelex:  # sklearnex says per call whether oneDAL ran or it fell back to scikit-learn
        import logging

        class Seen(logging.Handler):
            def emit(self, record):
                if "fallback" in record.getMessage().lower():
                    fallbacks.append(record.getMessage())

        log = logging.getLogger("sklearnex")
        log.setLevel(logging.INFO)
        log.propagate = False
        log.addHandler(Seen())

    def fit(iters):
        km = KMeans(n_clusters=k, init=c, n_init=1, max_iter=iters, tol=0.0, algorithm="lloyd")
        t0 = time.perf_counter()
        km.fit(x)
        return time.perf_counter() - t0, km

    with warnings.catch_warnings(), threadpool_limits(limits=args.threads):
        warnings.simplefilter("ignore")
        timed = None
        if not intelex:  # oneDAL has its own loop: sklearnex is timed by differences of fits
            import sklearn.cluster._kmeans as lloyd_module
            timed = lloyd_steps_per_iter(lloyd_module, fit, args.iters, args.budget)
        per, whole, how, km = timed or sklearn_per_iter(fit, args.iters, args.budget)
        info = threadpool_info()  # inside the limits: the thread counts the fits ran with
    n_iter = int(km.n_iter_)  # sklearn stops early on strict convergence even with tol = 0
    s, per = median_per_iter(per)
    if intelex:
        how += ("; sklearnex fell back to scikit-learn: " + fallbacks[-1]) if fallbacks else \
            "; oneDAL (sklearnex reported no fallback)"
    threads = max([lib.get("num_threads") or 0 for lib in info] or [0]) or args.threads
    version = sklearn.__version__
    if intelex:
        try:
            from importlib.metadata import version as dist_version
            version = dist_version("scikit-learn-intelex") + " (on scikit-learn " + version + ")"
        except Exception:
            version = "? (on scikit-learn " + version + ")"
    return {
        "device": "cpu",
        "version": version,
        "s_per_iter": s,
        "s_per_iter_runs": per,
        "s_per_iter_whole_fit": median(whole),
        "n_iter": n_iter,
        "centroids": km.cluster_centers_,
        "timing": how,
        "repeats": len(per),
        "threads": threads,
        "blas_versions": threadpool_versions(info),
    }


def run_faiss(np, x, c, args, gpu):
    try:
        import faiss
    except ImportError as e:
        raise Unavailable(f"faiss not importable with {sys.executable}: {e}")
    if gpu and faiss.get_num_gpus() == 0:
        raise Unavailable("faiss sees no GPU (get_num_gpus() = 0: a CPU-only build or no device)")
    faiss.omp_set_num_threads(args.threads)
    # FAISS clusters float32 only.
    x32 = np.ascontiguousarray(x, dtype=np.float32)
    c32 = np.ascontiguousarray(c, dtype=np.float32)
    n, d = x32.shape
    k = c32.shape[0]

    def fit(iters):
        # max_points_per_centroid above n / k: FAISS would otherwise train on a subsample.
        km = faiss.Kmeans(d, k, niter=iters, verbose=False, gpu=bool(gpu), seed=1,
                          min_points_per_centroid=1, max_points_per_centroid=n // k + 1)
        t0 = time.perf_counter()
        km.train(x32, init_centroids=c32)
        return time.perf_counter() - t0, km

    fit(min(2, args.iters))

    def one():
        t, km = fit(args.iters)
        stats = km.iteration_stats
        # Cumulative per-iteration times: differences skip the set-up before the first one.
        if len(stats) > 1:
            s = (stats[-1]["time"] - stats[0]["time"]) / (len(stats) - 1)
        else:
            s = t / max(1, len(stats))
        return s, km

    runs = repeat(one, args.budget)
    s, per = median_per_iter([r[0] for r in runs])
    km = runs[-1][1]
    get_threads = getattr(faiss, "omp_get_max_threads", None)
    return {
        "device": "cuda" if gpu else "cpu",
        "version": getattr(faiss, "__version__", "unknown"),
        "s_per_iter": s,
        "s_per_iter_runs": per,
        "n_iter": len(km.iteration_stats),  # FAISS always runs niter iterations
        "centroids": km.centroids,
        "sse_history": [float(st["obj"]) for st in km.iteration_stats],
        "timing": "iteration_stats time: (last - first) / (niter - 1), float32, "
                  "median over repeats",
        "repeats": len(runs),
        "threads": int(get_threads()) if get_threads else args.threads,
    }


def run_torch(np, x, c, args):
    try:
        import torch
    except ImportError as e:
        raise Unavailable(f"torch not importable with {sys.executable}: {e}")
    torch.set_num_threads(args.threads)
    cuda = torch.cuda.is_available()
    dev = torch.device("cuda" if cuda else "cpu")
    xt = torch.from_numpy(np.ascontiguousarray(x)).to(dev)
    c0 = torch.from_numpy(np.ascontiguousarray(c)).to(dev)
    n, d = xt.shape
    k = c0.shape[0]
    # Rows per distance block, so the n x k matrix never exists whole. On the CPU, blocks sized
    # for L2 were 2-5x slower than 2^24-element ones: each torch op is a parallel region, and
    # many small ones spend their time in thread wake-ups (measured on 2 cores, bench/NOTES.md).
    rows = max(1, (1 << 26 if cuda else 1 << 24) // k)

    def sync():
        if cuda:
            torch.cuda.synchronize()

    def lloyd(iters):
        c = c0.clone()
        x_sq = (xt * xt).sum(1)
        labels = torch.empty(n, dtype=torch.long, device=dev)
        min_d = torch.empty(n, dtype=xt.dtype, device=dev)
        prev = None
        history = []
        sync()
        t0 = time.perf_counter()
        n_iter = 0
        for _ in range(iters):
            c_sq = (c * c).sum(1)
            for s in range(0, n, rows):
                xb = xt[s:s + rows]
                # ||x||^2 - 2 x.c + ||c||^2 as one GEMM; ||x||^2 is added after the argmin.
                dist = torch.addmm(c_sq, xb, c.t(), beta=1, alpha=-2)
                md, lab = dist.min(1)
                labels[s:s + rows] = lab
                min_d[s:s + rows] = md + x_sq[s:s + rows]
            history.append(min_d.clamp_min(0).sum(dtype=torch.float64))
            sums = torch.zeros(k, d, dtype=xt.dtype, device=dev).index_add_(0, labels, xt)
            counts = torch.bincount(labels, minlength=k)
            empty = (counts == 0).nonzero().flatten()
            if empty.numel():
                # sklearn's repair (as our driver does it): the i-th empty cluster takes the
                # i-th point farthest from its centroid, moved out of its old cluster's sums.
                far = torch.topk(min_d, empty.numel()).indices
                for e, i in zip(empty.tolist(), far.tolist()):
                    old = int(labels[i])
                    sums[old] -= xt[i]
                    counts[old] -= 1
                    sums[e] = xt[i]
                    counts[e] = 1
            c = sums / counts[:, None].to(xt.dtype)
            n_iter += 1
            # Strict convergence as sklearn and our driver: labels identical to the last pass.
            if prev is not None and torch.equal(labels, prev):
                break
            prev = labels.clone()
        sync()
        t = time.perf_counter() - t0
        return t / n_iter, n_iter, c, [float(h) for h in history]

    lloyd(min(2, args.iters))
    runs = repeat(lambda: lloyd(args.iters), args.budget)
    s, per = median_per_iter([r[0] for r in runs])
    _, n_iter, c_final, history = runs[-1]
    # torch's BLAS need not be a separate library (pip wheels link MKL in): its build says.
    config = torch.__config__.show() if hasattr(torch, "__config__") else ""
    built_in = None
    for item in config.replace(",", " ").split():
        if item.startswith("BLAS_INFO="):
            value = item.split("=", 1)[1]
            built_in = {"mkl": "MKL (built into torch)", "open": "OpenBLAS"}.get(value)
    return {
        "device": "cuda" if cuda else "cpu",
        "version": torch.__version__,
        "s_per_iter": s,
        "s_per_iter_runs": per,
        "n_iter": n_iter,
        "centroids": c_final.cpu().numpy(),
        "sse_history": history,
        "timing": "Lloyd loop (addmm + min + index_add_, sklearn's empty-cluster repair) / n_iter, "
                  "median over repeats" + (", synchronised" if cuda else ""),
        "repeats": len(runs),
        "threads": torch.get_num_threads(),
        "blas_built_in": built_in,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--peer", required=True, choices=PEERS)
    ap.add_argument("--data", required=True, help="n x d .npy (float32 or float64)")
    ap.add_argument("--init", required=True, help="k x d .npy initial centroids")
    ap.add_argument("--iters", type=int, required=True)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--budget", type=float, default=10.0,
                    help="seconds for repeats after the first timed run")
    args = ap.parse_args()
    if args.iters < 1 or args.threads < 1:
        ap.error("--iters and --threads must be at least 1")
    # Before numpy/torch/faiss load their thread pools.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)

    report = {"peer": args.peer, "ok": False}
    try:
        try:
            import numpy as np
        except ImportError as e:
            raise Unavailable(f"numpy not importable with {sys.executable}: {e}")
        x = np.load(args.data)
        c = np.load(args.init)
        if x.ndim != 2 or c.ndim != 2 or x.shape[1] != c.shape[1]:
            raise ValueError(f"shapes do not match: data {x.shape}, init {c.shape}")
        if args.peer in ("sklearn", "sklearnex"):
            r = run_sklearn(np, x, c, args, intelex=args.peer == "sklearnex")
        elif args.peer in ("faiss", "faiss-gpu"):
            r = run_faiss(np, x, c, args, gpu=args.peer == "faiss-gpu")
        else:
            r = run_torch(np, x, c, args)
        r["final_sse"] = final_sse(np, x, r.pop("centroids"))
        r.setdefault("threads", args.threads)
        r["blas"] = loaded_blas()
        r["blas_name"] = describe_blas(r["blas"], r.pop("blas_versions", None),
                                       r.pop("blas_built_in", None))
        report.update(r)
        report["ok"] = True
    except Unavailable as e:
        report["error"] = str(e)
    except Exception as e:  # a peer's crash becomes a row, not a failed benchmark
        report["error"] = f"{type(e).__name__}: {e}"
    sys.stdout.flush()
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
