#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# GPU peers for bench/gpu_suite.sh: our kmeans CLI, PyTorch Lloyd, flash-kmeans and fastkmeans on
# the same card, the same data and the same initial centroids; s/iteration and final inertia.
"""usage: gpu_peers.py --kmeans CLI --out OUT.json --work DIR [--wheels DIR] [--case N,D,K,ITERS]...
                    [--deadline SECONDS] [--seed S] [--device cuda|cpu]
       gpu_peers.py --check --wheels DIR [--out OUT.json]

Each case: float32 Gaussian blobs from numpy's default_rng(seed), written to DIR/data.npy; the
initial centroids are rows torch.randperm(n)[:k] after torch.manual_seed(seed) -- exactly the
rows fastkmeans draws for FastKMeans(seed=seed), which has no way to take given centroids (the
run checks that it did draw them). Our side is `kmeans fit --init DIR/init.npy --backend cuda`
(its JSON timings: (assign + update) / n_iter); PyTorch Lloyd (torch.cdist + argmin + index_add_,
float32, TF32 off), flash-kmeans (batch_kmeans_Euclid with init_centroids) and fastkmeans
(FastKMeans.train on the numpy array, its documented API: it streams the data from the host
every iteration) are timed after a warm-up that compiles their Triton kernels. Every final
inertia is evaluated the same way here: labels by an exact float32 argmin pass against the
returned centroids, distances summed in float64.

--check (no GPU needed): the wheels are present and their sources define the API used here.
--device cpu: the same run on the CPU (our cpu backend; flash-kmeans, which needs CUDA, skipped),
to test this script on a machine without a GPU.
"""
import argparse
import ast
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile

T0 = time.time()
FLASH = "flash_kmeans"
FAST = "fastkmeans"
# (package, module file inside the wheel, function or class, parameters this runner passes)
API = [
    (FLASH, "flash_kmeans/kmeans_triton_impl.py", "batch_kmeans_Euclid",
     ["x", "n_clusters", "max_iters", "tol", "init_centroids"]),
    (FAST, "fastkmeans/kmeans.py", "FastKMeans.__init__",
     ["d", "k", "niter", "tol", "gpu", "seed", "dtype"]),
    (FAST, "fastkmeans/kmeans.py", "FastKMeans.train", ["data"]),
]


def log(msg):
    print(f"[gpu_peers {time.time() - T0:6.1f}s] {msg}", flush=True)


def find_wheels(wheels_dir):
    """{package: wheel path} for flash_kmeans, fastkmeans and tqdm (flash-kmeans imports it)."""
    found = {}
    if wheels_dir and os.path.isdir(wheels_dir):
        for name in sorted(os.listdir(wheels_dir)):
            if name.endswith(".whl"):
                pkg = name.split("-")[0].lower()
                found[pkg] = os.path.join(wheels_dir, name)
    return found


def check_api(wheels):
    """Problems with the wheels' API (empty when all is there), read from their sources."""
    problems = []
    for pkg, member, qualname, params in API:
        whl = wheels.get(pkg)
        if not whl:
            problems.append(f"no {pkg} wheel")
            continue
        try:
            src = zipfile.ZipFile(whl).read(member).decode()
        except (KeyError, zipfile.BadZipFile) as e:
            problems.append(f"{os.path.basename(whl)}: cannot read {member}: {e}")
            continue
        tree = ast.parse(src)
        parts = qualname.split(".")
        scope = tree.body
        node = None
        for part in parts:
            node = next((n for n in scope if isinstance(n, (ast.FunctionDef, ast.ClassDef))
                         and n.name == part), None)
            if node is None:
                break
            scope = node.body
        if not isinstance(node, ast.FunctionDef):
            problems.append(f"{os.path.basename(whl)}: {member} has no {qualname}")
            continue
        names = [a.arg for a in node.args.args + node.args.kwonlyargs]
        missing = [p for p in params if p not in names]
        if missing:
            problems.append(f"{os.path.basename(whl)}: {qualname} lacks {', '.join(missing)}")
    return problems


def extract_wheels(wheels, dest):
    """The peers' pure-Python wheels unpacked into dest, first on sys.path; tqdm (which
    flash-kmeans imports) only when the machine has none of its own."""
    for pkg, whl in wheels.items():
        if pkg == "tqdm":
            try:
                import tqdm  # noqa: F401
                continue
            except ImportError:
                pass
        with zipfile.ZipFile(whl) as z:
            z.extractall(dest)
    sys.path.insert(0, dest)


def make_data(np, n, d, k, seed):
    rng = np.random.default_rng(seed)
    blobs = min(k, 1024)
    centers = rng.uniform(-10, 10, size=(blobs, d)).astype(np.float32)
    x = rng.standard_normal((n, d), dtype=np.float32)
    x += centers[rng.integers(0, blobs, size=n)]
    return x


def no_tf32(torch):
    """float32 matmuls in IEEE float32 (the newer fp32_precision switch where PyTorch has it)."""
    m = torch.backends.cuda.matmul
    if hasattr(m, "fp32_precision"):
        m.fp32_precision = "ieee"
    else:
        m.allow_tf32 = False


def rows_per_chunk(k, budget_bytes=2 << 30):
    return max(1024, min(1 << 20, budget_bytes // (4 * max(k, 1))))


def exact_labels(torch, x, c):
    """argmin_j |x - c_j|^2 in float32 (TF32 off), by chunks of rows."""
    no_tf32(torch)
    cn = (c * c).sum(1)
    out = torch.empty(x.shape[0], dtype=torch.int64, device=x.device)
    step = rows_per_chunk(c.shape[0])
    for r in range(0, x.shape[0], step):
        xc = x[r:r + step]
        out[r:r + step] = torch.addmm(cn[None, :], xc, c.t(), alpha=-2.0).argmin(1)
    return out


def inertia(torch, x, c):
    """Sum of squared distances to the nearest returned centroid, summed in float64."""
    labels = exact_labels(torch, x, c)
    total = 0.0
    step = rows_per_chunk(c.shape[1] * 4)
    for r in range(0, x.shape[0], step):
        diff = (x[r:r + step] - c[labels[r:r + step]]).double()
        total += float((diff * diff).sum())
    return total


def torch_lloyd(torch, x, c0, iters):
    """Plain Lloyd: cdist + argmin, index_add_ sums, bincount counts; empty clusters kept."""
    no_tf32(torch)
    k = c0.shape[0]
    c = c0.clone()
    step = rows_per_chunk(k)
    labels = torch.empty(x.shape[0], dtype=torch.int64, device=x.device)
    for _ in range(iters):
        for r in range(0, x.shape[0], step):
            labels[r:r + step] = torch.cdist(x[r:r + step], c).argmin(1)
        sums = torch.zeros_like(c).index_add_(0, labels, x)
        counts = torch.bincount(labels, minlength=k).to(x.dtype)
        c = torch.where((counts > 0)[:, None], sums / counts.clamp(min=1)[:, None], c)
    return c


def sync(torch):
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed(torch, fn):
    sync(torch)
    t = time.perf_counter()
    out = fn()
    sync(torch)
    return time.perf_counter() - t, out


def run_case(torch, np, args, n, d, k, iters, deadline):
    case = {"n": n, "d": d, "k": k, "iters": iters, "dtype": "float32", "seed": args.seed,
            "results": []}
    res = case["results"]

    def left():
        return deadline - time.time()

    def skipped(name, why):
        res.append({"name": name, "ok": False, "skipped": why})
        log(f"  {name}: skipped: {why}")

    t = time.time()
    x = make_data(np, n, d, k, args.seed)
    torch.manual_seed(args.seed)
    init_rows = torch.randperm(n)[:k].numpy()
    init = np.ascontiguousarray(x[init_rows])
    data_path = os.path.join(args.work, "data.npy")
    init_path = os.path.join(args.work, "init.npy")
    cent_path = os.path.join(args.work, "ours_centroids.npy")
    np.save(data_path, x)
    np.save(init_path, init)
    dev = torch.device(args.device)
    xg = torch.from_numpy(x).to(dev)
    c0 = torch.from_numpy(init).to(dev)
    case["data_s"] = round(time.time() - t, 2)
    case["initial_inertia"] = inertia(torch, xg, c0)
    log(f"case n={n} d={d} k={k} iters={iters}: data {case['data_s']}s")

    # ours, through the CLI (a fresh process: one fit, one engine)
    if left() < 10:
        skipped("kmeans (ours, CLI)", "deadline")
    else:
        cmd = [args.kmeans, "fit", data_path, "--k", str(k), "--init", init_path, "--max-iter",
               str(iters), "--tol", "0", "--backend", args.device, "--json", "--centroids-out",
               cent_path]
        r = {"name": "kmeans (ours, CLI)", "precision": "fp32 (tile kernel or cuBLAS SGEMM)",
             "empty_clusters": "farthest point (scikit-learn)"}
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=max(5, left()))
            if p.returncode != 0:
                raise RuntimeError(f"exit {p.returncode}: {p.stderr.strip()[-400:]}")
            j = json.loads(p.stdout)
            tm = j.get("timings", {})
            n_iter = int(j["n_iter"])
            r.update(ok=True, n_iter=n_iter, backend=j.get("backend"),
                     s_per_iter=(tm["assign"] + tm["update"]) / max(1, n_iter),
                     process_s=j.get("seconds"), timings=tm, own_inertia=j.get("inertia"),
                     n_empty_relocated=j.get("n_empty_relocated"),
                     # the fit's wall time less its phases: CUDA context, upload, engine set-up
                     setup_s=j["seconds"] - sum(tm.get(x, 0.0) for x in ("init", "assign", "update", "final_assign")),
                     inertia=inertia(torch, xg, torch.from_numpy(np.load(cent_path)).to(dev)),
                     how="(timings.assign + timings.update) / n_iter of one kmeans fit")
        except Exception as e:  # noqa: BLE001 - recorded, the other peers still run
            r.update(ok=False, error=str(e)[-600:])
        res.append(r)
        log(f"  {r['name']}: {r.get('s_per_iter', r.get('error'))}")

    if left() < 10:
        skipped("PyTorch Lloyd", "deadline")
    else:
        r = {"name": "PyTorch Lloyd", "precision": "fp32, TF32 off", "version": torch.__version__,
             "empty_clusters": "keeps the old centroid"}
        try:
            torch_lloyd(torch, xg, c0, 1)
            s, c = timed(torch, lambda: torch_lloyd(torch, xg, c0, iters))
            r.update(ok=True, n_iter=iters, s_per_iter=s / iters, inertia=inertia(torch, xg, c),
                     how="wall time of iters iterations on device data / iters")
        except Exception as e:  # noqa: BLE001
            r.update(ok=False, error=str(e)[-600:])
        res.append(r)
        log(f"  {r['name']}: {r.get('s_per_iter', r.get('error'))}")

    if args.flash_error:
        skipped("flash-kmeans", args.flash_error)
    elif args.device != "cuda":
        skipped("flash-kmeans", "needs CUDA")
    elif left() < 20:
        skipped("flash-kmeans", "deadline")
    else:
        import flash_kmeans
        from flash_kmeans import batch_kmeans_Euclid
        r = {"name": "flash-kmeans", "version": getattr(flash_kmeans, "__version__", "?"),
             "precision": "Triton tl.dot on fp32 (TF32 by Triton's default)",
             "impl": batch_kmeans_Euclid.__module__, "empty_clusters": "keeps the old centroid"}
        try:
            if batch_kmeans_Euclid.__module__ != "flash_kmeans.kmeans_triton_impl":
                raise RuntimeError("flash_kmeans fell back to its torch implementation "
                                   f"({batch_kmeans_Euclid.__module__}): Triton kernels not importable")
            xb = xg[None]
            batch_kmeans_Euclid(xb, k, max_iters=1, tol=-1.0, init_centroids=c0[None].clone())
            s, out = timed(torch, lambda: batch_kmeans_Euclid(
                xb, k, max_iters=iters, tol=-1.0, init_centroids=c0[None].clone()))
            n_it = int(out[2])
            r.update(ok=True, n_iter=n_it, s_per_iter=s / n_it,
                     inertia=inertia(torch, xg, out[1][0].float()),
                     how="wall time of batch_kmeans_Euclid(max_iters=iters, tol=-1) / iters")
        except Exception as e:  # noqa: BLE001
            r.update(ok=False, error=str(e)[-600:])
        res.append(r)
        log(f"  {r['name']}: {r.get('s_per_iter', r.get('error'))}")

    if args.fast_error:
        skipped("fastkmeans", args.fast_error)
    elif left() < 25:
        skipped("fastkmeans", "deadline")
    else:
        import fastkmeans
        from fastkmeans import FastKMeans
        r = {"name": "fastkmeans", "version": getattr(fastkmeans, "__version__", "?"),
             "precision": "Triton tl.dot on fp32 (TF32 by Triton's default)",
             "empty_clusters": "a random point"}
        try:
            def train(niter):
                km = FastKMeans(d, k, niter=niter, tol=-1.0, gpu=args.device == "cuda",
                                seed=args.seed, dtype=torch.float32)
                t = time.perf_counter()
                km.train(x)
                sync(torch)
                return time.perf_counter() - t, km
            _, km0 = train(0)  # its own initial centroids: must be ours
            r["same_init"] = bool(np.array_equal(km0.centroids, init))
            r["use_triton"] = bool(km0.use_triton)
            train(1)  # compiles its Triton kernel
            t1, _ = train(1)
            tn, km = train(iters)
            per = (tn - t1) / (iters - 1) if iters > 1 else tn
            r.update(ok=True, n_iter=iters, s_per_iter=per, train_1_iter_s=t1, train_s=tn,
                     inertia=inertia(torch, xg, torch.from_numpy(km.centroids).to(dev)),
                     how="(train(niter=iters) - train(niter=1)) / (iters - 1), data on the host")
        except Exception as e:  # noqa: BLE001
            r.update(ok=False, error=str(e)[-600:])
        res.append(r)
        log(f"  {r['name']}: {r.get('s_per_iter', r.get('error'))}")

    ours = next((x for x in res if x["name"].startswith("kmeans") and x.get("ok")), None)
    for x in res:
        if ours and x.get("ok") and x is not ours:
            x["peer_over_ours"] = x["s_per_iter"] / ours["s_per_iter"]
            x["inertia_over_ours"] = x["inertia"] / ours["inertia"]
    del xg, c0
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    for p in (data_path, init_path, cent_path):
        if os.path.exists(p):
            os.remove(p)
    return case


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kmeans", help="our kmeans CLI (a wrapper that sets LD_LIBRARY_PATH is fine)")
    ap.add_argument("--out", help="JSON results")
    ap.add_argument("--work", help="scratch folder for the .npy files")
    ap.add_argument("--wheels", help="folder with the flash-kmeans, fastkmeans and tqdm wheels")
    ap.add_argument("--case", action="append", default=[], help="N,D,K,ITERS (repeatable)")
    ap.add_argument("--deadline", type=float, default=300, help="seconds for the whole run")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    args = ap.parse_args()
    wheels = find_wheels(args.wheels)
    problems = check_api(wheels)
    out = {"tool": "gpu_peers.py", "wheels": {k: os.path.basename(v) for k, v in wheels.items()},
           "api_problems": problems}

    def finish(code):
        if out.get("error"):
            print(f"gpu_peers.py: {out['error']}")
        if args.out:
            with open(args.out, "w") as f:
                json.dump(out, f, indent=1)
                f.write("\n")
        return code

    if args.check:
        for p in problems:
            print(f"gpu_peers.py: {p}")
        print(f"gpu_peers.py: wheels {sorted(out['wheels'].values())}: "
              f"{'API as expected' if not problems else 'API problems above'}")
        return finish(1 if problems else 0)
    if not (args.kmeans and args.out and args.work):
        ap.error("--kmeans, --out and --work are required (or --check)")
    deadline = T0 + args.deadline
    try:
        import numpy as np
        import torch
    except Exception as e:  # noqa: BLE001
        out["error"] = f"numpy/PyTorch not importable: {e}"
        return finish(1)
    if args.device == "cuda" and not torch.cuda.is_available():
        out["error"] = "torch.cuda.is_available() is False"
        return finish(1)
    out["device"] = torch.cuda.get_device_name(0) if args.device == "cuda" else "cpu"
    out["torch"] = torch.__version__
    pkg_problem = {pkg: "; ".join(p for p in problems if pkg in p.replace("-", "_")) for pkg in (FLASH, FAST)}
    args.flash_error = pkg_problem[FLASH] or None
    args.fast_error = pkg_problem[FAST] or None
    lib = tempfile.mkdtemp(prefix="pylib-", dir=args.work)
    extract_wheels(wheels, lib)
    for pkg, attr in ((FLASH, "flash_error"), (FAST, "fast_error")):
        if getattr(args, attr):
            continue
        try:
            __import__(pkg)
        except Exception as e:  # noqa: BLE001
            setattr(args, attr, f"import {pkg} failed: {e}")
    out["cases"] = []
    for spec in args.case:
        try:
            n, d, k, iters = (int(float(v)) for v in spec.split(","))
        except ValueError:
            ap.error(f"--case {spec!r} is not N,D,K,ITERS")
        if deadline - time.time() < 30:
            out["cases"].append({"n": n, "d": d, "k": k, "iters": iters,
                                 "skipped": "deadline: under 30 s left"})
            log(f"case {spec}: skipped (deadline)")
            continue
        out["cases"].append(run_case(torch, np, args, n, d, k, iters, deadline))
        finish(0)  # what is done so far survives a later kill
    out["seconds"] = round(time.time() - T0, 1)
    return finish(0)


if __name__ == "__main__":
    sys.exit(main())
