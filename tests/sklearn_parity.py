#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# Cross-checks the kmeans CLI against scikit-learn's Lloyd KMeans on data generated here with
# fixed seeds: `fit` from the same initial centroids (unweighted and with sample weights) gives
# identical labels and inertia within 1e-9 (float64) and close agreement in float32; `transform`
# and `score` match KMeans.transform / KMeans.score; --verbose reports every iteration; --n-init
# keeps the best of the runs it stands for; --batch-size finds MiniBatchKMeans' partition.
"""usage: sklearn_parity.py --kmeans PATH/TO/kmeans --workdir DIR [--backends cpu,reference]"""
import argparse
import json
import os
import re
import subprocess
import sys

import numpy as np
from sklearn.cluster import KMeans, MiniBatchKMeans

# float64: the CLI and scikit-learn run the same algorithm on the same numbers; only rounding
# (scikit-learn centres the data and uses the dot-product distance form) separates them.
REL_TOL_F64 = 1e-9
# float32: distances and centroids are rounded to 24 bits on both sides.
REL_TOL_F32 = 1e-4
MIN_LABEL_AGREEMENT_F32 = 0.999
# sse_history may rise by rounding only once the labels stop changing.
SSE_MONOTONE_SLACK = 1e-12
# transform against sqrt(sum (x - c)^2) in float64: the same formula, another summation order.
REL_TOL_DIRECT = 1e-12
# transform: float32 distances are rounded to 24 bits; sklearn computes them another way.
REL_TOL_TRANSFORM_F32 = 1e-5


class Case:
    def __init__(self, name, x, init, max_iter=300, tol=1e-4, min_relocated=0):
        self.name, self.x, self.init, self.max_iter, self.tol = name, x, init, max_iter, tol
        self.min_relocated = min_relocated  # empty clusters the fit must repair


def gaussian_blobs(rng, n, d, k, spread):
    centers = rng.uniform(-10.0, 10.0, size=(k, d))
    which = rng.integers(0, k, size=n)
    return centers[which] + rng.normal(0.0, spread, size=(n, d))


def pick_rows(rng, x, k):
    return x[rng.choice(x.shape[0], size=k, replace=False)].copy()


def classic_study(seed):
    """Four Gaussian blobs in 3-D, 1000 points each (the classic k-means study)."""
    rng = np.random.default_rng(seed)
    means = np.array([[5, 5, 5], [4, 20, 20], [25, 20, 5], [30, 30, 30]], dtype=np.float64)
    sds = np.array([4.0, 3.0, 5.0, 5.0])
    x = np.vstack([rng.normal(m, s, size=(1000, 3)) for m, s in zip(means, sds)])
    return x, pick_rows(rng, x, 4)


def float64_cases():
    cases = []
    for i, (n, d, k, spread, max_iter, tol) in enumerate([
            (300, 2, 3, 1.0, 300, 1e-4),
            (2000, 5, 8, 2.0, 300, 1e-4),
            (1500, 16, 10, 4.0, 300, 0.0),     # tol 0: runs until the labels stop changing
            (800, 1, 4, 3.0, 300, 1e-4),
            (1000, 3, 1, 1.0, 300, 1e-4),      # k = 1
            (60, 2, 60, 1.0, 300, 1e-4),       # k = n
            (3000, 8, 20, 6.0, 5, 1e-4),       # stopped by max_iter before converging
            (2500, 4, 12, 8.0, 300, 1e-6),     # heavily overlapping: many iterations
    ]):
        rng = np.random.default_rng(1000 + i)
        x = gaussian_blobs(rng, n, d, max(k, 1), spread)
        cases.append(Case("f64_n%d_d%d_k%d" % (n, d, k), x, pick_rows(rng, x, k), max_iter, tol))
    # Two identical initial centroids: the second starts empty and is relocated to the farthest
    # point, as scikit-learn does.
    rng = np.random.default_rng(77)
    x = gaussian_blobs(rng, 500, 2, 4, 1.5)
    init = pick_rows(rng, x, 4)
    init[2] = init[1]
    cases.append(Case("f64_empty_cluster", x, init, min_relocated=1))
    x, init = classic_study(2024)
    cases.append(Case("classic_four_blobs", x, init))
    return cases


def run_cli(kmeans, args):
    p = subprocess.run([kmeans] + args, capture_output=True, text=True, timeout=300)
    if p.returncode != 0 or p.stderr:
        raise AssertionError("kmeans %s: exit %d, stderr %r" % (" ".join(args), p.returncode, p.stderr))
    return json.loads(p.stdout)


def fit_cli(kmeans, workdir, case, backend, data_path, extra=()):
    init_path = os.path.join(workdir, case.name + "_init.npy")
    np.save(init_path, case.init)
    labels_path = os.path.join(workdir, case.name + "_labels.npy")
    centroids_path = os.path.join(workdir, case.name + "_centroids.npy")
    out = run_cli(kmeans, ["fit", data_path, "--k", str(case.init.shape[0]), "--init", init_path,
                           "--max-iter", str(case.max_iter), "--tol", repr(case.tol),
                           "--backend", backend, "--json", "--labels-out", labels_path,
                           "--centroids-out", centroids_path] + list(extra))
    return out, np.load(labels_path), np.load(centroids_path)


def fit_sklearn(x, case):
    km = KMeans(n_clusters=case.init.shape[0], init=case.init.astype(x.dtype), n_init=1,
                algorithm="lloyd", max_iter=case.max_iter, tol=case.tol)
    km.fit(x)
    return km


def rel_diff(a, b):
    return abs(a - b) / max(abs(b), np.finfo(np.float64).tiny)


def check_consistency(out, x, labels, centroids, k, rel_tol):
    """What the CLI reports must agree with what it wrote."""
    n, d = x.shape
    assert labels.dtype == np.int32 and labels.shape == (n,), (labels.dtype, labels.shape)
    assert labels.min() >= 0 and labels.max() < k, (labels.min(), labels.max())
    assert centroids.shape == (k, d), centroids.shape
    assert (out["n"], out["d"], out["k"]) == (n, d, k), out
    hist = out["sse_history"]
    assert out["n_iter"] == len(hist), (out["n_iter"], len(hist))
    for a, b in zip(hist, hist[1:]):
        assert b <= a * (1 + SSE_MONOTONE_SLACK), "sse_history rises: %r" % hist
    xd = x.astype(np.float64)
    inertia = float(((xd - centroids.astype(np.float64)[labels]) ** 2).sum())
    assert rel_diff(out["inertia"], inertia) <= rel_tol, (out["inertia"], inertia)
    assert out["seconds"] >= 0 and set(out["timings"]) >= {"init", "assign", "update", "final_assign"}


def check_f64(kmeans, workdir, case, backend, data_path=None, label=""):
    x = case.x
    if data_path is None:
        data_path = os.path.join(workdir, case.name + ".npy")
        np.save(data_path, x)
    out, labels, centroids = fit_cli(kmeans, workdir, case, backend, data_path)
    km = fit_sklearn(x, case)
    k = case.init.shape[0]
    assert out["dtype"] == "float64", out["dtype"]
    check_consistency(out, x, labels, centroids, k, REL_TOL_F64)
    mismatched = int((labels != km.labels_).sum())
    assert mismatched == 0, "%d labels differ from scikit-learn" % mismatched
    assert rel_diff(out["inertia"], km.inertia_) <= REL_TOL_F64, (out["inertia"], km.inertia_)
    assert out["n_iter"] == km.n_iter_, (out["n_iter"], km.n_iter_)
    assert out["n_empty_relocated"] >= case.min_relocated, out["n_empty_relocated"]
    scale = max(1.0, float(np.abs(x).max()))
    assert np.allclose(centroids, km.cluster_centers_, rtol=REL_TOL_F64, atol=REL_TOL_F64 * scale)
    return "n_iter %d, inertia %.17g (sklearn %.17g), mean SSE %.9g%s" % (
        out["n_iter"], out["inertia"], km.inertia_, out["inertia"] / x.shape[0], label)


def check_f32(kmeans, workdir, case, backend, convert_flag):
    """float32 data: read as float32 .npy, or float64 .npy converted with --dtype float32."""
    x32 = case.x.astype(np.float32)
    data_path = os.path.join(workdir, case.name + (".npy" if convert_flag else "_f32.npy"))
    np.save(data_path, case.x if convert_flag else x32)
    f32_case = Case(case.name + "_f32", x32, case.init.astype(np.float32), case.max_iter, case.tol)
    extra = ["--dtype", "float32"] if convert_flag else []
    out, labels, centroids = fit_cli(kmeans, workdir, f32_case, backend, data_path, extra)
    km = fit_sklearn(x32, f32_case)
    assert out["dtype"] == "float32" and centroids.dtype == np.float32, (out["dtype"], centroids.dtype)
    check_consistency(out, x32, labels, centroids, case.init.shape[0], REL_TOL_F32)
    agreement = float((labels == km.labels_).mean())
    assert agreement >= MIN_LABEL_AGREEMENT_F32, "label agreement %.5f" % agreement
    assert rel_diff(out["inertia"], km.inertia_) <= REL_TOL_F32, (out["inertia"], km.inertia_)
    return "label agreement %.5f, inertia rel. diff %.2e" % (agreement, rel_diff(out["inertia"], km.inertia_))


def weights_for(name, n, seed):
    """Fixed-seed weights: positive reals, some exact zeros, or small integers."""
    rng = np.random.default_rng(seed)
    if name == "uniform":
        return rng.uniform(0.1, 5.0, size=n)
    if name == "with_zeros":
        w = rng.uniform(0.5, 2.0, size=n)
        w[rng.choice(n, size=n // 10, replace=False)] = 0.0
        return w
    return rng.integers(1, 4, size=n).astype(np.float64)  # "integers"


def save_weights(workdir, stem, w, layout):
    """The three accepted weight files: 1-D .npy, (n, 1) .npy, one-column .csv."""
    if layout == "npy":
        path = os.path.join(workdir, stem + "_w.npy")
        np.save(path, w)
    elif layout == "column_npy":
        path = os.path.join(workdir, stem + "_wcol.npy")
        np.save(path, w.reshape(-1, 1))
    else:
        path = os.path.join(workdir, stem + "_w.csv")
        with open(path, "w") as f:
            f.write("weight\n" + "".join(repr(float(v)) + "\n" for v in w))
    return path


def check_weighted(kmeans, workdir, case, backend, weights_name, layout):
    """fit --sample-weight vs KMeans.fit(X, sample_weight=w) from the same initial centroids."""
    x = case.x
    data_path = os.path.join(workdir, case.name + ".npy")
    np.save(data_path, x)
    w = weights_for(weights_name, x.shape[0], 500 + x.shape[0])
    stem = "%s_%s_%s" % (case.name, weights_name, layout)
    w_path = save_weights(workdir, stem, w, layout)
    wcase = Case(stem, x, case.init, case.max_iter, case.tol)
    out, labels, centroids = fit_cli(kmeans, workdir, wcase, backend, data_path,
                                     ["--sample-weight", w_path])
    km = KMeans(n_clusters=case.init.shape[0], init=case.init, n_init=1, algorithm="lloyd",
                max_iter=case.max_iter, tol=case.tol).fit(x, sample_weight=w)
    assert out["sample_weight"] == w_path, out["sample_weight"]
    assert out["n_iter"] == len(out["sse_history"]), out
    # The reported inertia is the weighted one of the written labels and centroids.
    inertia = float((w * ((x - centroids[labels]) ** 2).sum(axis=1)).sum())
    assert rel_diff(out["inertia"], inertia) <= REL_TOL_F64, (out["inertia"], inertia)
    mismatched = int((labels != km.labels_).sum())
    assert mismatched == 0, "%d labels differ from scikit-learn" % mismatched
    assert rel_diff(out["inertia"], km.inertia_) <= REL_TOL_F64, (out["inertia"], km.inertia_)
    assert out["n_iter"] == km.n_iter_, (out["n_iter"], km.n_iter_)
    scale = max(1.0, float(np.abs(x).max()))
    assert np.allclose(centroids, km.cluster_centers_, rtol=REL_TOL_F64, atol=REL_TOL_F64 * scale)
    return "n_iter %d, weighted inertia %.17g (sklearn %.17g)" % (out["n_iter"], out["inertia"], km.inertia_)


def check_integer_weights_duplicate_rows(kmeans, workdir, case, backend):
    """Integer weights are the same fit as the data with each row repeated w times."""
    x = case.x
    w = weights_for("integers", x.shape[0], 900)
    data_path = os.path.join(workdir, case.name + ".npy")
    np.save(data_path, x)
    w_path = save_weights(workdir, case.name + "_int", w, "npy")
    out_w, labels_w, cent_w = fit_cli(kmeans, workdir, Case(case.name + "_int", x, case.init, case.max_iter, case.tol),
                                      backend, data_path, ["--sample-weight", w_path])
    rep = np.repeat(x, w.astype(int), axis=0)
    rep_path = os.path.join(workdir, case.name + "_repeated.npy")
    np.save(rep_path, rep)
    out_r, labels_r, cent_r = fit_cli(kmeans, workdir, Case(case.name + "_rep", rep, case.init, case.max_iter, case.tol),
                                      backend, rep_path)
    assert np.array_equal(np.repeat(labels_w, w.astype(int)), labels_r), "labels differ"
    assert rel_diff(out_w["inertia"], out_r["inertia"]) <= REL_TOL_F64, (out_w["inertia"], out_r["inertia"])
    scale = max(1.0, float(np.abs(x).max()))
    assert np.allclose(cent_w, cent_r, rtol=REL_TOL_F64, atol=REL_TOL_F64 * scale)
    return "inertia %.17g (repeated rows %.17g)" % (out_w["inertia"], out_r["inertia"])


def fitted_sklearn(workdir, case):
    """A scikit-learn fit of the case and its centroids saved for the CLI."""
    km = fit_sklearn(case.x, case)
    path = os.path.join(workdir, case.name + "_sk_centroids.npy")
    np.save(path, km.cluster_centers_)
    return km, path


def max_rel_diff(a, b):
    return float((np.abs(a - b) / np.maximum(np.abs(b), np.finfo(np.float64).tiny)).max())


def check_transform(kmeans, workdir, case, backend):
    """transform vs KMeans.transform on the fitted centroids: float64, then float32 data."""
    km, c_path = fitted_sklearn(workdir, case)
    x = case.x
    data_path = os.path.join(workdir, case.name + ".npy")
    np.save(data_path, x)
    npy_out = os.path.join(workdir, case.name + "_dist.npy")
    csv_out = os.path.join(workdir, case.name + "_dist.csv")
    out = run_cli(kmeans, ["transform", data_path, "--centroids", c_path, "--backend", backend,
                           "--out", npy_out, "--json"])
    k = km.cluster_centers_.shape[0]
    assert (out["n"], out["d"], out["k"], out["out"]) == (x.shape[0], x.shape[1], k, npy_out), out
    dist = np.load(npy_out)
    assert dist.dtype == np.float64 and dist.shape == (x.shape[0], k), (dist.dtype, dist.shape)
    expected = km.transform(x)
    # scikit-learn expands |x|^2 - 2 x.c + |c|^2, which cancels for points near a centroid: its
    # own error there is absolute, of order eps * |x|^2 / distance, hence the absolute floor.
    scale = max(1.0, float(np.abs(x).max()))
    assert np.allclose(dist, expected, rtol=REL_TOL_F64, atol=REL_TOL_F64 * scale), \
        "max relative difference %.3g" % max_rel_diff(dist, expected)
    # The direct form sqrt(sum (x - c)^2) in float64 differs only by summation order.
    direct = np.sqrt(((x[:, None, :] - km.cluster_centers_[None, :, :]) ** 2).sum(axis=2))
    rel = max_rel_diff(dist, direct)
    assert rel <= REL_TOL_DIRECT, "max relative difference to the direct form %.3g" % rel
    # The .csv holds the same numbers (round-trip digits).
    run_cli(kmeans, ["transform", data_path, "--centroids", c_path, "--backend", backend, "--out", csv_out, "--json"])
    assert np.array_equal(np.loadtxt(csv_out, delimiter=",", ndmin=2), dist)
    # float32: the same matrix within float32 rounding.
    x32_path = os.path.join(workdir, case.name + "_f32.npy")
    np.save(x32_path, x.astype(np.float32))
    run_cli(kmeans, ["transform", x32_path, "--centroids", c_path, "--backend", backend, "--out", npy_out, "--json"])
    dist32 = np.load(npy_out)
    assert dist32.dtype == np.float32, dist32.dtype
    assert np.allclose(dist32, expected, rtol=REL_TOL_TRANSFORM_F32, atol=REL_TOL_TRANSFORM_F32 * scale)
    return "n x k = %d x %d, max rel. diff %.2e to sklearn, %.2e to the direct form" % (
        x.shape[0], k, max_rel_diff(dist, expected), rel)


def check_score(kmeans, workdir, case, backend):
    """score vs KMeans.score, unweighted and weighted, on the fitted data and on new data."""
    km, c_path = fitted_sklearn(workdir, case)
    rng = np.random.default_rng(4242)
    new = case.x + rng.normal(0.0, 0.5, size=case.x.shape)  # points the fit never saw
    w = weights_for("with_zeros", case.x.shape[0], 31)
    results = []
    for tag, x in (("fit", case.x), ("new", new)):
        data_path = os.path.join(workdir, "%s_score_%s.npy" % (case.name, tag))
        np.save(data_path, x)
        w_path = save_weights(workdir, "%s_score_%s" % (case.name, tag), w, "csv")
        for weights in (None, w):
            args = ["score", data_path, "--centroids", c_path, "--backend", backend, "--json"]
            if weights is not None:
                args += ["--sample-weight", w_path]
            out = run_cli(kmeans, args)
            expected = km.score(x, sample_weight=weights)
            assert (out["n"], out["d"], out["k"]) == (x.shape[0], x.shape[1], case.init.shape[0]), out
            assert out["score"] <= 0 and rel_diff(out["score"], expected) <= REL_TOL_F64, (out["score"], expected)
            results.append(out["score"])
    return "scores %s" % ", ".join("%.10g" % v for v in results)


VERBOSE_LINE = re.compile(r"^kmeans: (?:init (\d+)/(\d+), )?iteration (\d+): sse ([^,]+), "
                          r"center shift ([^,]+), (\S+) s$")


def run_cli_verbose(kmeans, args):
    p = subprocess.run([kmeans] + args + ["--verbose", "--json"], capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        raise AssertionError("kmeans %s: exit %d, stderr %r" % (" ".join(args), p.returncode, p.stderr))
    lines = p.stderr.splitlines()
    parsed = [VERBOSE_LINE.match(line) for line in lines]
    bad = [line for line, m in zip(lines, parsed) if m is None]
    assert not bad, "unexpected stderr lines: %r" % bad[:3]
    return json.loads(p.stdout), parsed


def check_verbose(kmeans, workdir, case, backend):
    """--verbose: one line per iteration, numbered from 1, whose SSE is sse_history's."""
    data_path = os.path.join(workdir, case.name + ".npy")
    np.save(data_path, case.x)
    init_path = os.path.join(workdir, case.name + "_init.npy")
    np.save(init_path, case.init)
    out, lines = run_cli_verbose(kmeans, ["fit", data_path, "--init", init_path, "--backend", backend,
                                          "--max-iter", str(case.max_iter), "--tol", repr(case.tol)])
    assert len(lines) == out["n_iter"], (len(lines), out["n_iter"])
    assert [int(m.group(3)) for m in lines] == list(range(1, out["n_iter"] + 1))
    assert all(m.group(1) is None for m in lines), "no init prefix with n_init = 1"
    sse = [float(m.group(4)) for m in lines]
    assert sse == out["sse_history"], "verbose SSE %r != sse_history %r" % (sse[:3], out["sse_history"][:3])
    assert all(float(m.group(5)) >= 0 and float(m.group(6)) >= 0 for m in lines)
    return "%d iterations, %d lines" % (out["n_iter"], len(lines))


def check_n_init(kmeans, workdir, case, backend, init):
    """--n-init R --seed S keeps the lowest-inertia of the single runs with seeds S .. S+R-1."""
    data_path = os.path.join(workdir, case.name + ".npy")
    np.save(data_path, case.x)
    k, seed, runs = case.init.shape[0], 11, 3
    base = ["fit", data_path, "--k", str(k), "--init", init, "--backend", backend]
    singles = []
    for r in range(runs):
        labels_path = os.path.join(workdir, "%s_single%d.npy" % (case.name, r))
        out, lines = run_cli_verbose(kmeans, base + ["--seed", str(seed + r), "--labels-out", labels_path])
        assert out["n_init"] == 1 and len(lines) == out["n_iter"], out
        singles.append((out, np.load(labels_path)))
    labels_path = os.path.join(workdir, "%s_best.npy" % case.name)
    out, lines = run_cli_verbose(kmeans, base + ["--seed", str(seed), "--n-init", str(runs), "--labels-out", labels_path])
    canonical = "k-means||" if init in ("k-means||", "kmeans||", "k-means-parallel") else init
    assert out["n_init"] == runs and out["init"] == canonical, out
    # Deterministic: the best run is reproduced bit for bit (ties: the earliest run).
    best = min(range(runs), key=lambda r: (singles[r][0]["inertia"], r))
    assert out["inertia"] == singles[best][0]["inertia"], (out["inertia"], [s[0]["inertia"] for s in singles])
    assert out["n_iter"] == singles[best][0]["n_iter"]
    assert np.array_equal(np.load(labels_path), singles[best][1])
    # --verbose covers every run: one block per run, prefixed "init r/R".
    assert len(lines) == sum(s[0]["n_iter"] for s in singles), (len(lines), [s[0]["n_iter"] for s in singles])
    assert [int(m.group(1)) for m in lines] == [r + 1 for r in range(runs) for _ in range(singles[r][0]["n_iter"])]
    assert all(int(m.group(2)) == runs for m in lines)
    return "best of %d: run %d, inertia %.10g" % (runs, best + 1, out["inertia"])


def check_minibatch(kmeans, workdir, backend, dtype):
    """Mini-batch k-means (--batch-size) against MiniBatchKMeans with the same parameters from
    the same centroids, on well-separated blobs: the batches differ (another generator), so the
    check is the outcome: both give the blobs' partition (labels identical), inertias within 0.1%,
    and the reported steps and epochs follow scikit-learn's formulas."""
    rng = np.random.default_rng(31)
    n, d, k, batch = 6000, 5, 6, 256
    centers = rng.uniform(-20.0, 20.0, size=(k, d))
    which = np.arange(n) % k
    x = (centers[which] + rng.normal(0.0, 0.5, size=(n, d))).astype(dtype)
    init = (centers + rng.normal(0.0, 0.5, size=(k, d))).astype(dtype)
    stem = os.path.join(workdir, "minibatch_%s_%s" % (backend, np.dtype(dtype).name))
    np.save(stem + "_x.npy", x)
    np.save(stem + "_init.npy", init)
    out = run_cli(kmeans, ["fit", stem + "_x.npy", "--init", stem + "_init.npy", "--batch-size", str(batch),
                           "--seed", "4", "--backend", backend, "--json", "--labels-out", stem + "_labels.npy"])
    labels = np.load(stem + "_labels.npy")
    km = MiniBatchKMeans(n_clusters=k, init=init, n_init=1, batch_size=batch, random_state=4).fit(x)
    assert out["algorithm"] == "minibatch" and out["tol"] == 0, out
    assert np.array_equal(labels, which) and np.array_equal(km.labels_, which)
    assert rel_diff(out["inertia"], km.inertia_) <= 1e-3, (out["inertia"], km.inertia_)
    steps = out["minibatch"]["n_steps"]
    assert 1 <= steps <= 300 * n // batch and len(out["sse_history"]) == steps, out
    assert out["n_iter"] == -(-steps * batch // n), (out["n_iter"], steps)
    return "inertia %.8g (sklearn %.8g), %d steps (sklearn %d)" % (out["inertia"], km.inertia_, steps, km.n_steps_)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kmeans", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--backends", default="cpu,reference")
    args = ap.parse_args()
    os.makedirs(args.workdir, exist_ok=True)

    checks = []
    cases = float64_cases()
    for backend in args.backends.split(","):
        for case in cases:
            checks.append(("%s [%s]" % (case.name, backend),
                           lambda c=case, b=backend: check_f64(args.kmeans, args.workdir, c, b)))
        for case in cases[:3] + cases[-1:]:
            checks.append(("%s float32 [%s]" % (case.name, backend),
                           lambda c=case, b=backend: check_f32(args.kmeans, args.workdir, c, b, False)))
            checks.append(("%s --dtype float32 [%s]" % (case.name, backend),
                           lambda c=case, b=backend: check_f32(args.kmeans, args.workdir, c, b, True)))
    # CSV input: values written with repr() read back exactly, so float64 parity holds as well.
    csv_case = cases[1]
    csv_path = os.path.join(args.workdir, csv_case.name + ".csv")
    with open(csv_path, "w") as f:
        f.write(",".join("f%d" % j for j in range(csv_case.x.shape[1])) + "\n")
        for row in csv_case.x:
            f.write(",".join(repr(float(v)) for v in row) + "\n")
    checks.append(("%s from .csv [cpu]" % csv_case.name,
                   lambda: check_f64(args.kmeans, args.workdir, csv_case, "cpu", csv_path)))

    # Estimator features: sample weights, transform, score, --verbose, --n-init.
    for backend in args.backends.split(","):
        for case in cases[:3]:
            for weights_name, layout in (("uniform", "npy"), ("with_zeros", "column_npy"), ("integers", "csv")):
                checks.append(("%s weights %s %s [%s]" % (case.name, weights_name, layout, backend),
                               lambda c=case, b=backend, w=weights_name, l=layout:
                               check_weighted(args.kmeans, args.workdir, c, b, w, l)))
        checks.append(("%s integer weights = repeated rows [%s]" % (cases[0].name, backend),
                       lambda b=backend: check_integer_weights_duplicate_rows(args.kmeans, args.workdir, cases[0], b)))
        for case in (cases[0], cases[1], cases[3], cases[-1]):
            checks.append(("%s transform [%s]" % (case.name, backend),
                           lambda c=case, b=backend: check_transform(args.kmeans, args.workdir, c, b)))
            checks.append(("%s score [%s]" % (case.name, backend),
                           lambda c=case, b=backend: check_score(args.kmeans, args.workdir, c, b)))
        for case in (cases[2], cases[6], cases[7]):
            checks.append(("%s --verbose [%s]" % (case.name, backend),
                           lambda c=case, b=backend: check_verbose(args.kmeans, args.workdir, c, b)))
        for init in ("k-means||", "k-means++", "random"):
            checks.append(("%s --init %s --n-init [%s]" % (cases[1].name, init, backend),
                           lambda i=init, b=backend: check_n_init(args.kmeans, args.workdir, cases[1], b, i)))

    for backend in args.backends.split(","):
        for dtype in (np.float64, np.float32):
            checks.append(("minibatch %s [%s]" % (np.dtype(dtype).name, backend),
                           lambda b=backend, t=dtype: check_minibatch(args.kmeans, args.workdir, b, t)))

    failures = 0
    for name, check in checks:
        try:
            print("PASS %-45s %s" % (name, check()))
        except Exception as e:  # report every failing case, not just the first
            failures += 1
            print("FAIL %-45s %s: %s" % (name, type(e).__name__, e))
    print("%d of %d parity checks failed" % (failures, len(checks)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
