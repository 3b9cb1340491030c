#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# The classic "loop vs vectorized" k-means study in Python, end to end, with this library added.
"""The classic k-means study, reproduced: 4 Gaussian blobs in 3-D (1000 points each), k = 4,
Lloyd's algorithm for at most 50 iterations, first as a plain Python loop, then vectorized with
NumPy, then with kmeans (cpu, reference and, where a GPU is usable, cuda). Prints the time per
iteration of each in one table (beside the original article's own figures) and draws the
article's figures: the data in 3-D, the SSE per iteration, the points coloured by cluster.

usage: classic_study.py [--out DIR] [--quick]
"""

import argparse
import os
import statistics
import sys
import time

import numpy as np

import kmeans

K, MAX_ITER = 4, 50
MEANS = np.array([[5, 5, 5], [4, 20, 20], [25, 20, 5], [30, 30, 30]], dtype=np.float64)
SDS = np.array([4.0, 3.0, 5.0, 5.0])
PER_BLOB = 1000
# The original study's figures, measured on its machine (not here): seconds per iteration.
ARTICLE = [
    ("article: Python loop (figure)", 0.053),
    ("article: NumPy vectorized (figure)", 0.00073),
]


def make_data(seed=2024):
    """The 4 blobs, drawn exactly as examples/classic_study.cpp draws them (splitmix64 uniforms,
    Box-Muller normals), so the C++ and Python examples cluster the same points."""
    count = 2 * PER_BLOB * 4 * 3  # two uniforms per normal
    i = np.arange(1, count + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = np.uint64(seed) + i * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    u = (z >> np.uint64(11)).astype(np.float64) * 2.0**-53
    u1, u2 = 1.0 - u[0::2], u[1::2]
    normal = np.sqrt(-2.0 * np.log(u1)) * np.cos(6.283185307179586 * u2)
    x = normal.reshape(4, PER_BLOB, 3) * SDS[:, None, None] + MEANS[:, None, :]
    x = x.reshape(-1, 3)
    init = x[[b * PER_BLOB + 17 for b in range(4)]].copy()  # one point of each blob's rows
    return x, init


def lloyd_loop(points, centroids, max_iter):
    """The article's first version: every distance in a Python loop, on lists."""
    centroids = [list(c) for c in centroids]
    labels, history = None, []
    for _ in range(max_iter):
        new_labels, sse = [], 0.0
        for p in points:
            best, best_d = 0, float("inf")
            for j, c in enumerate(centroids):
                d = (p[0] - c[0]) ** 2 + (p[1] - c[1]) ** 2 + (p[2] - c[2]) ** 2
                if d < best_d:
                    best, best_d = j, d
            new_labels.append(best)
            sse += best_d
        history.append(sse)
        if new_labels == labels:
            break
        labels = new_labels
        sums = [[0.0, 0.0, 0.0] for _ in centroids]
        counts = [0] * len(centroids)
        for p, j in zip(points, labels):
            counts[j] += 1
            for f in range(3):
                sums[j][f] += p[f]
        centroids = [
            [s / counts[j] for s in sums[j]] if counts[j] else centroids[j]
            for j in range(len(centroids))
        ]
    return labels, history


def lloyd_numpy(x, centroids, max_iter):
    """The article's second version: distances by broadcasting, updates by np.bincount."""
    c = centroids.copy()
    labels, history = None, []
    for _ in range(max_iter):
        d2 = ((x[:, None, :] - c[None, :, :]) ** 2).sum(axis=2)
        new_labels = d2.argmin(axis=1)
        history.append(d2[np.arange(len(x)), new_labels].sum())
        if labels is not None and np.array_equal(new_labels, labels):
            break
        labels = new_labels
        counts = np.bincount(labels, minlength=len(c))
        for f in range(x.shape[1]):
            sums = np.bincount(labels, weights=x[:, f], minlength=len(c))
            c[:, f] = np.where(counts > 0, sums / np.maximum(counts, 1), c[:, f])
    return labels, history


def per_iteration(run, repeats):
    """(median seconds per iteration, result of the last run) over `repeats` runs."""
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out, n_iter = run()
        times.append((time.perf_counter() - t0) / max(n_iter, 1))
    return statistics.median(times), out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="classic_study_out", help="folder for the table and figures")
    ap.add_argument("--quick", action="store_true", help="fewer repeats (a quick check)")
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    x, init = make_data()
    n = len(x)
    quick = args.quick
    rows = []  # (name, device, seconds per iteration, n_iter, final mean SSE)

    pts = x.tolist()

    def loop_run():
        r = lloyd_loop(pts, init, MAX_ITER)
        return r, len(r[1])

    def numpy_run():
        r = lloyd_numpy(x, init, MAX_ITER)
        return r, len(r[1])

    loop_s, (loop_labels, loop_hist) = per_iteration(loop_run, 1 if quick else 3)
    rows.append(("this machine: Python loop", "cpu", loop_s, len(loop_hist), loop_hist[-1] / n))
    np_s, (np_labels, np_hist) = per_iteration(numpy_run, 3 if quick else 21)
    rows.append(("this machine: NumPy vectorized", "cpu", np_s, len(np_hist), np_hist[-1] / n))

    backends = ["reference", "cpu"] + (["cuda"] if kmeans.cuda_available()[0] else [])
    histories = {"Python loop": loop_hist, "NumPy": np_hist}
    fitted = None
    for b in backends:

        def run(b=b):
            km = kmeans.KMeans(K, init=init, max_iter=MAX_ITER, tol=0, backend=b).fit(x)
            return km, km.n_iter_

        s, km = per_iteration(run, 5 if quick else (21 if b == "reference" else 101))
        rows.append(
            ("kmeans %s" % b, "gpu" if b == "cuda" else "cpu", s, km.n_iter_, km.inertia_ / n)
        )
        histories["kmeans " + b] = list(km.sse_history_)
        fitted = km if fitted is None or b == "cpu" else fitted
    # Every implementation runs the same algorithm from the same centroids: same clusters.
    assert list(np_labels) == loop_labels and np.array_equal(fitted.labels_, np_labels)

    lines = [
        "Classic k-means study: n = %d points in 3-D, k = %d, at most %d iterations, "
        "float64, same initial centroids for every row" % (n, K, MAX_ITER),
        "",
        "%-36s %-6s %12s %14s %7s %15s"
        % ("implementation", "device", "s/iteration", "vs Python loop", "n_iter", "final mean SSE"),
    ]
    for name, s in ARTICLE:
        lines.append(
            "%-36s %-6s %12.3e %13.1fx %7s %15s" % (name, "-", s, ARTICLE[0][1] / s, "-", "-")
        )
    for name, dev, s, it, sse in rows:
        lines.append("%-36s %-6s %12.3e %13.1fx %7d %15.6f" % (name, dev, s, loop_s / s, it, sse))
    lines.append("")
    lines.append(
        "(article rows: the original study's figures on its machine, compared with its "
        "own loop; the others were measured here, compared with the loop measured here)"
    )
    table = "\n".join(lines)
    print(table)
    with open(os.path.join(args.out, "classic_table.txt"), "w") as f:
        f.write(table + "\n")
    draw(args.out, x, fitted, histories)
    return 0


def draw(out, x, km, histories):
    import matplotlib  # noqa: PLC0415 - only needed for the figures

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415
    import matplotlib.ticker  # noqa: PLC0415

    fig = plt.figure(figsize=(6, 5))
    ax = fig.add_subplot(projection="3d")
    ax.scatter(x[:, 0], x[:, 1], x[:, 2], s=4, alpha=0.5, color="tab:gray")
    ax.set(title="The data: 4 Gaussian blobs, 1000 points each", xlabel="x", ylabel="y", zlabel="z")
    fig.savefig(os.path.join(out, "classic_data.png"), dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    for (name, h), style in zip(histories.items(), ["-", "--", ":", "-.", "-"]):
        ax.plot(range(len(h)), np.asarray(h) / len(x), style, marker="o", ms=3, label=name)
    ax.set(
        title="SSE per iteration (mean over points)",
        xlabel="iteration",
        ylabel="mean squared distance to centroid",
    )
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(out, "classic_sse.png"), dpi=110)
    plt.close(fig)

    fig = plt.figure(figsize=(6, 5))
    ax = fig.add_subplot(projection="3d", computed_zorder=False)  # centroids drawn on top
    ax.scatter(
        x[:, 0], x[:, 1], x[:, 2], s=4, alpha=0.6, c=km.labels_, cmap="tab10", vmin=0, vmax=9
    )
    c = km.cluster_centers_
    ax.scatter(
        c[:, 0],
        c[:, 1],
        c[:, 2],
        s=160,
        marker="X",
        color="black",
        edgecolor="white",
        depthshade=False,
        zorder=10,
        label="centroids",
    )
    ax.set(
        title="Clusters found by kmeans (%s backend)" % km.backend_,
        xlabel="x",
        ylabel="y",
        zlabel="z",
    )
    ax.legend()
    fig.savefig(os.path.join(out, "classic_clusters.png"), dpi=110)
    plt.close(fig)
    print(
        "figures: %s"
        % ", ".join(
            os.path.join(out, f)
            for f in ("classic_data.png", "classic_sse.png", "classic_clusters.png")
        )
    )


if __name__ == "__main__":
    sys.exit(main())
