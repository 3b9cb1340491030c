#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Turns bench_kmeans --json files into PNG charts (matplotlib, Agg backend).

  plot.py results/a.json [results/b.json ...] [--out DIR] [--labels A,B]

Charts (each written only when some file has the rows it needs):
  classic_sse.png      mean SSE per iteration of the classic study, one line per backend/peer
  classic_time.png     the study's own chart: time per iteration of each implementation (log
                       scale), the original study's figures beside ours and the peers', with
                       each row's fastest-to-slowest repeat as an error bar
  grid_time_vs_n.png   time per iteration against n (the n sweep), per backend and dtype
  grid_pct_vs_kd.png   % of the FMA limit (CPU: the measured FMA rate; GPU: the nominal peak) and
                       % of the bandwidth limit against k*d (k and d sweeps)
  case_time.png        time per iteration of each backend and peer for --case runs (with spread)
Several files (commits, machines) are drawn on the same axes, labelled by --labels or by
their git commit and machine.
"""

import argparse
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)


def load(paths, labels):
    runs = []
    for i, path in enumerate(paths):
        try:
            with open(path) as f:
                doc = json.load(f)
        except (OSError, ValueError) as e:
            sys.exit(f"plot.py: error: cannot read {path}: {e}")
        if not isinstance(doc, dict) or "rows" not in doc:
            sys.exit(f"plot.py: error: {path} is not a bench_kmeans --json file (no 'rows')")
        if labels:
            label = labels[i]
        elif len(paths) == 1:
            label = ""
        else:
            gpu = doc.get("machine", {}).get("gpu", {})
            where = gpu.get("name") if gpu.get("present") else doc.get("machine", {}).get(
                "cpu", {}).get("model", "?")
            label = f"{doc.get('git_commit', '?')} {where}"
        runs.append((label, doc))
    return runs


def row_name(row):
    if row.get("kind") == "peer":
        return f"{row.get('peer')} ({row.get('device', '?')})"
    return row.get("backend", row.get("name", "?"))


def prefixed(label, text):
    return f"{label}: {text}" if label else text


def plot_classic(runs, out):
    fig, ax = plt.subplots(figsize=(8, 5))
    drawn = 0
    for label, doc in runs:
        for row in doc["rows"]:
            hist = row.get("mean_sse_history")
            if row.get("mode") != "classic" or not hist:
                continue
            style = "--" if row.get("kind") == "peer" else "-"
            ax.plot(range(1, len(hist) + 1), hist, style, marker=".",
                    label=prefixed(label, row_name(row)))
            drawn += 1
    if not drawn:
        plt.close(fig)
        return None
    ax.set_xlabel("iteration")
    ax.set_ylabel("mean SSE (sum / n) of the assignment step")
    ax.set_title("Classic study: 4 blobs in 3-D, k = 4")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return save(fig, out, "classic_sse.png")


def classic_bar_name(row):
    if row.get("kind") == "study_figure":
        return f"original study: {row.get('name', '?')} (figure)"
    name = row_name(row)
    if row.get("kind") == "peer" and row.get("version"):
        name += f" {row['version']}"
    return name


def plot_classic_time(runs, out):
    bars = []  # (name, seconds, low error, high error, kind)
    for label, doc in runs:
        for row in doc["rows"]:
            s = row.get("s_per_iter")
            if row.get("mode") != "classic" or not s:
                continue
            lo = row.get("s_per_iter_min") or s
            hi = row.get("s_per_iter_max") or s
            bars.append((prefixed(label, classic_bar_name(row)), s, max(0.0, s - lo),
                         max(0.0, hi - s), row.get("kind")))
    if not bars:
        return None
    colors = {"study_figure": "tab:gray", "ours": "tab:blue", "peer": "tab:orange"}
    fig, ax = plt.subplots(figsize=(9, 1.4 + 0.45 * len(bars)))
    ys = list(range(len(bars)))[::-1]
    ax.barh(ys, [b[1] for b in bars], xerr=[[b[2] for b in bars], [b[3] for b in bars]],
            color=[colors.get(b[4], "tab:gray") for b in bars], capsize=3)
    for y, b in zip(ys, bars):
        ax.annotate(f"{b[1]:.2e}", (b[1] + b[3], y), xytext=(4, 0), textcoords="offset points",
                    va="center", fontsize=7)
    ax.set_yticks(ys)
    ax.set_yticklabels([b[0] for b in bars], fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("seconds per iteration (log); error bars: fastest to slowest repeat")
    ax.set_title("Classic study: time per iteration (gray: the original study's figures, "
                 "blue: ours, orange: peers)", fontsize=9)
    ax.grid(True, axis="x", which="both", alpha=0.3)
    return save(fig, out, "classic_time.png")


def series(runs, predicate, x_of, y_of):
    """{(label, name, dtype): [(x, y), ...]} over the rows that pass predicate."""
    groups = {}
    for label, doc in runs:
        for row in doc["rows"]:
            if not predicate(row):
                continue
            y = y_of(row)
            if y is None:
                continue
            key = (label, row_name(row), row.get("dtype", "?"), row.get("sweep", ""))
            groups.setdefault(key, []).append((x_of(row), y))
    return {k: sorted(v) for k, v in groups.items()}


def measured(row):
    return row.get("mode") == "grid" and row.get("s_per_iter") is not None


def plot_time_vs_n(runs, out):
    groups = series(runs, lambda r: measured(r) and r.get("sweep") == "n",
                    lambda r: r["n"], lambda r: r["s_per_iter"])
    if not groups:
        return None
    fig, ax = plt.subplots(figsize=(8, 5))
    fixed = ""
    for (label, name, dtype, _), pts in groups.items():
        xs, ys = zip(*pts)
        ax.loglog(xs, ys, "--" if dtype == "float64" else "-", marker="o",
                  label=prefixed(label, f"{name} {dtype}"))
    for _, doc in runs:
        for row in doc["rows"]:
            if measured(row) and row.get("sweep") == "n":
                fixed = f" (d = {row['d']}, k = {row['k']})"
                break
    ax.set_xlabel("n (points)")
    ax.set_ylabel("seconds per iteration")
    ax.set_title("Time per Lloyd iteration against n" + fixed)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return save(fig, out, "grid_time_vs_n.png")


def plot_pct_vs_kd(runs, out):
    pred = lambda r: measured(r) and r.get("sweep") in ("k", "d")  # noqa: E731
    peak = series(runs, pred, lambda r: r["k"] * r["d"], lambda r: r.get("pct_peak"))
    bw = series(runs, pred, lambda r: r["k"] * r["d"], lambda r: r.get("pct_bw"))
    if not peak:
        return None
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 7))
    for ax, groups, what in ((ax1, peak, "% of the FMA limit (CPU: measured rate)"),
                             (ax2, bw, "% of the bandwidth limit")):
        for (label, name, dtype, sweep), pts in groups.items():
            xs, ys = zip(*pts)
            ax.semilogx(xs, ys, "--" if dtype == "float64" else "-",
                        marker="o" if sweep == "k" else "s",
                        label=prefixed(label, f"{name} {dtype}, sweep {sweep}"))
        ax.set_xlabel("k * d")
        ax.set_ylabel(what)
        ax.grid(True, which="both", alpha=0.3)
    ax1.set_title("Compute: 3*n*k*d flops per iteration")
    ax2.set_title("Memory: (n*d + k*d) * sizeof(T) bytes per iteration")
    # One legend under both panels: inside either one it hides the points.
    handles, names = ax1.get_legend_handles_labels()
    rows = (len(names) + 1) // 2
    fig.legend(handles, names, loc="lower center", ncol=2, fontsize=8)
    fig.tight_layout(rect=(0, min(0.5, 0.045 * rows + 0.02), 1, 1))
    return save(fig, out, "grid_pct_vs_kd.png", layout=False)


def plot_case(runs, out):
    bars = []
    for label, doc in runs:
        for row in doc["rows"]:
            if row.get("mode") == "case" and row.get("s_per_iter"):
                shape = f"n={row['n']} d={row['d']} k={row['k']} {row.get('dtype', '')}"
                s = row["s_per_iter"]
                lo, hi = row.get("s_per_iter_min") or s, row.get("s_per_iter_max") or s
                bars.append((prefixed(label, row_name(row)), shape, s,
                             row.get("kind") == "peer", max(0.0, s - lo), max(0.0, hi - s)))
    if not bars:
        return None
    shapes = sorted({b[1] for b in bars})
    # Horizontal bars: the names stay readable however many rows the files hold.
    names = [b[0] if len(shapes) == 1 else f"{b[0]} [{b[1]}]" for b in bars]
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.45 * len(bars)))
    ys = list(range(len(bars)))[::-1]
    ax.barh(ys, [b[2] for b in bars], xerr=[[b[4] for b in bars], [b[5] for b in bars]],
            color=["tab:gray" if b[3] else "tab:blue" for b in bars], capsize=3)
    ax.set_yticks(ys)
    ax.set_yticklabels(names, fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("seconds per iteration (log); error bars: fastest to slowest repeat")
    title = "--case: ours (blue) and peers (gray)"
    if len(shapes) == 1:
        title += f", {shapes[0]}"
    ax.set_title(title)
    ax.grid(True, axis="x", which="both", alpha=0.3)
    return save(fig, out, "case_time.png")


def save(fig, out, name, layout=True):
    path = os.path.join(out, name)
    if layout:
        fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main():
    ap = argparse.ArgumentParser(description="bench_kmeans JSON -> PNG charts")
    ap.add_argument("files", nargs="+", help="bench_kmeans --json outputs")
    ap.add_argument("--out", default=".", help="directory for the PNG files (default: .)")
    ap.add_argument("--labels", help="comma-separated label per file")
    args = ap.parse_args()
    labels = args.labels.split(",") if args.labels else None
    if labels and len(labels) != len(args.files):
        ap.error(f"--labels has {len(labels)} names for {len(args.files)} files")
    os.makedirs(args.out, exist_ok=True)
    runs = load(args.files, labels)
    written = [p for p in (plot_classic(runs, args.out), plot_classic_time(runs, args.out),
                           plot_time_vs_n(runs, args.out),
                           plot_pct_vs_kd(runs, args.out), plot_case(runs, args.out)) if p]
    if not written:
        sys.exit("plot.py: error: no rows to plot in " + ", ".join(args.files))
    for p in written:
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
