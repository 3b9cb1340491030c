#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# The report of bench/gpu_suite.sh: from its scratch folder, writes summary.txt (headline table),
# tests.xml, bench.json, sanitizers.txt and machine.json into OUT; missing inputs are said so.
"""usage: gpu_report.py --work WORK --out OUT

WORK holds what the stages left: stages.tsv, run.env, gpu_query.csv, cublas.txt, ceilings.json,
tests_main.xml, tests_memory.xml, bench_<name>.json, peers.json and rest/ (logs). Every number
in the headline is set against this run's own ceilings (ceilings.json), never a datasheet.
"""
import argparse
import csv
import glob
import json
import os
import re
import sys
import xml.etree.ElementTree as ET

# The headline workloads: bench_kmeans --case runs of gpu_suite.sh (name, title, bytes per element)
CASES = [
    ("bw", "10M x 16 f32, k = 16, 20 it"),
    ("fma", "1M x 128 f32, k = 1024, 20 it"),
    ("faiss", "1M x 256 f32, k = 20000, 3 it (FAISS's)"),
    ("stream", "16.8M x 128 f32, k = 4096, 3 it, streamed from host memory"),
]


def load_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def read(path, default=""):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return default


def fmt(v, spec=".3g", unit=""):
    if v is None or (isinstance(v, float) and v != v):
        return "-"
    return f"{v:{spec}}{unit}"


def stages(work):
    rows = []
    for line in read(os.path.join(work, "stages.tsv")).splitlines():
        parts = line.split("\t")
        if len(parts) == 4:
            rows.append({"stage": parts[0], "status": parts[1], "seconds": parts[2], "note": parts[3]})
    return rows


def run_env(work):
    env = {}
    for line in read(os.path.join(work, "run.env")).splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            env[k] = v
    return env


def gpu_query(work):
    """nvidia-smi --query-gpu CSV (header + one row per GPU) as a list of dicts."""
    text = read(os.path.join(work, "gpu_query.csv")).strip()
    if not text:
        return []
    rows = list(csv.reader(text.splitlines()))
    head = [h.strip() for h in rows[0]]
    return [dict(zip(head, (c.strip() for c in r))) for r in rows[1:]]


def merge_tests(work, out):
    """tests_main.xml + tests_memory.xml -> one <testsuites>; returns (tests, failed, skipped, s)."""
    files = [p for p in (os.path.join(work, "tests_main.xml"), os.path.join(work, "tests_memory.xml"))
             if os.path.exists(p)]
    root = ET.Element("testsuites", name="kmeans GPU tests (gpu_suite.sh)")
    tests = failed = skipped = 0
    seconds = 0.0
    for p in files:
        try:
            r = ET.parse(p).getroot()
        except ET.ParseError as e:
            bad = ET.SubElement(root, "testsuite", name=os.path.basename(p), tests="1", failures="1")
            case = ET.SubElement(bad, "testcase", name="xml", classname=os.path.basename(p))
            ET.SubElement(case, "failure", message=f"unreadable gtest XML: {e}")
            tests += 1
            failed += 1
            continue
        for suite in r.findall("testsuite"):
            root.append(suite)
        tests += int(r.get("tests", 0))
        failed += int(r.get("failures", 0)) + int(r.get("errors", 0))
        skipped += sum(1 for _ in r.iter("skipped"))
        seconds += float(r.get("time", "0").rstrip("s") or 0)
    root.set("tests", str(tests))
    root.set("failures", str(failed))
    root.set("skipped", str(skipped))
    root.set("time", f"{seconds:.3f}")
    if not files:
        root.set("note", "no test ran (see summary.txt)")
    ET.ElementTree(root).write(os.path.join(out, "tests.xml"), encoding="utf-8", xml_declaration=True)
    slowest = sorted(((float(c.get("time", "0").rstrip("s") or 0), f"{c.get('classname')}.{c.get('name')}")
                      for c in root.iter("testcase")), reverse=True)[:5]
    failures = [f"{c.get('classname')}.{c.get('name')}" for c in root.iter("testcase")
                if c.find("failure") is not None]
    return {"tests": tests, "failed": failed, "skipped": skipped, "seconds": seconds,
            "slowest": slowest, "failures": failures, "files": len(files),
            "cpu_bits": cpu_bits_line(root)}


def cpu_bits_line(root):
    """The CudaCpuBits.* verdict: whole CUDA fits against CPU fits, bit for bit."""
    def text(elem):  # gtest's message without its leading "file:line" line
        return [l for l in (elem.get("message") or "").strip().splitlines()
                if l.strip() and not re.match(r"^\S+:\d+$", l.strip())]

    cases = [c for c in root.iter("testcase") if c.get("classname") == "CudaCpuBits"]
    if not cases:
        return "not run"
    failed = [c for c in cases if c.find("failure") is not None]
    if failed:
        msg = text(failed[0].find("failure"))
        first = next((l for l in msg if "differ" in l or "vs" in l), msg[0] if msg else "")
        return f"FAIL ({len(failed)} of {len(cases)}): {failed[0].get('name')}: {first[:200]}"
    skipped = [c for c in cases if c.find("skipped") is not None]
    if len(skipped) == len(cases):
        why = text(skipped[0].find("skipped"))
        return "skipped" + (f": {why[0][:160]}" if why else "")
    return f"PASS ({len(cases) - len(skipped)} tests: labels, centroids, inertia, SSE history equal)"


def sanitizers(work, out, env, st):
    lines = ["compute-sanitizer over the subset of test_cuda that launches every kernel (the map is",
             "in bench/gpu_suite.sh, section c):", "  " + env.get("subset", "?").replace(":", "\n  "),
             f"cuBLAS: {env.get('cublas', '?')} (without it the GEMM-path tests run the tile kernel "
             "and gemm_argmin_kernel is not covered)", ""]
    for tool in ("memcheck", "racecheck", "initcheck", "synccheck"):
        row = next((s for s in st if s["stage"] == f"sanitizer_{tool}"), None)
        lines.append(f"== {tool}: " + (f"{row['status']} ({row['seconds']}s) {row['note']}" if row else "not run"))
        text = read(os.path.join(work, "rest", f"sanitizer_{tool}.txt"))
        if not text:
            continue
        # Each report starts with "========= " lines; keep the first reports and the summary.
        reports = [l for l in text.splitlines() if l.startswith("========= ")]
        keep = reports[:60]
        lines += ["   " + l for l in keep]
        if len(reports) > len(keep):
            lines.append(f"   ... {len(reports) - len(keep)} more sanitizer lines in rest.tar.gz")
        times = re.findall(r"^\[ +(OK|FAILED) +\] (\S+) \((\d+) ms\)", text, re.M)
        if times:
            lines.append("   per test: " + ", ".join(f"{name} {status} {int(ms) / 1000:.1f}s" for status, name, ms in times))
        done = len(re.findall(r"^\[       OK \]", text, re.M))
        bad = re.findall(r"^\[  FAILED  \] (\S+)", text, re.M)
        lines.append(f"   tests passed under {tool}: {done}" + (f"; failed: {', '.join(sorted(set(bad)))}" if bad else ""))
    with open(os.path.join(out, "sanitizers.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")


NCU_METRICS = ("Duration", "DRAM Throughput", "Memory Throughput", "Compute (SM) Throughput",
               "Registers Per Thread", "Achieved Occupancy", "Theoretical Occupancy")


def ncu_lines(work):
    """Key metrics of each ncu profile (rest/ncu_*.details.txt, ncu --page details)."""
    out = []
    for p in sorted(glob.glob(os.path.join(work, "rest", "ncu_*.details.txt"))):
        text = read(p)
        kernel = next((l.strip() for l in text.splitlines() if "Context" in l and "Device" in l), "?")
        got = []
        for name in NCU_METRICS:
            m = re.search(r"^\s+" + re.escape(name) + r"\s{2,}(\S+)\s+([\d.,]+)\s*$", text, re.M)
            if m:
                got.append(f"{name} {m.group(2)} {m.group(1)}")
        out.append(f"  {os.path.basename(p)[4:-12]}: {kernel[:90]}")
        out.append("    " + ("; ".join(got) if got else "no metrics found (see rest.tar.gz)"))
    return out


def cuda_row(doc, mode):
    if not doc:
        return None
    return next((r for r in doc.get("rows", []) if r.get("kind") == "ours" and r.get("backend") == "cuda"
                 and r.get("mode") == mode and "s_per_iter" in r), None)


def headline(work, ceil):
    """Rows of the headline table, each against this run's ceilings."""
    copy = (ceil or {}).get("copy", {}).get("gbps")
    gemm = (ceil or {}).get("gemm", {})
    sgemm = gemm.get("sgemm", {}).get("tflops")
    tf32 = gemm.get("tf32", {}).get("tflops")
    rows = []
    classic = load_json(os.path.join(work, "bench_classic.json"))
    r = cuda_row(classic, "classic")
    if r:
        ph = r.get("phases", {})
        rows.append({"workload": "classic study 4000 x 3 f64, k = 4", "s_per_iter": r["s_per_iter"],
                     "measure": f"{r['s_per_iter'] * 1e6:.1f} us/iter, {r.get('n_iter')} it",
                     "vs_ceiling": f"set-up {fmt(r.get('setup_cold_s'), '.2e')} s first fit, "
                                   f"{fmt(r.get('setup_warm_s'), '.2e')} s reused KMeans; final "
                                   f"assign {fmt(ph.get('final_assign'), '.2e')} s"})
    elif classic:
        cpu = next((x for x in classic.get("rows", []) if x.get("backend") == "cpu"), None)
        rows.append({"workload": "classic study 4000 x 3 f64, k = 4", "s_per_iter": None,
                     "measure": "no cuda row" + (f" (cpu {cpu['s_per_iter'] * 1e6:.1f} us/iter)" if cpu else ""),
                     "vs_ceiling": "-"})
    for name, title in CASES:
        doc = load_json(os.path.join(work, f"bench_{name}.json"))
        r = cuda_row(doc, "case")
        if not r:
            rows.append({"workload": title, "s_per_iter": None, "measure": "not run", "vs_ceiling": "-"})
            continue
        n, d, k, s = r["n"], r["d"], r["k"], r["s_per_iter"]
        row = {"workload": title, "s_per_iter": s, "n": n, "d": d, "k": k}
        if name == "stream":
            h2d, pinned = r.get("h2d_gbps"), r.get("pinned_h2d_gbps")
            row["measure"] = f"{h2d:.1f} GB/s host-to-device" if h2d else "no h2d_gbps"
            row["vs_ceiling"] = (f"{100 * h2d / pinned:.0f}% of pinned copy {pinned:.1f} GB/s; "
                                 f"flash-kmeans 0.1595 s/iter") if h2d and pinned else "no pinned rate"
            row["pct"] = 100 * h2d / pinned if h2d and pinned else None
        elif name == "bw":
            gbps = n * d * 4 / s * 1e-9
            row["measure"] = f"{gbps:.0f} GB/s of data read"
            row["vs_ceiling"] = f"{100 * gbps / copy:.0f}% of copy {copy:.0f} GB/s" if copy else "no copy ceiling"
            row["pct"] = 100 * gbps / copy if copy else None
        else:
            pcf = n * k * d / s
            tflops = 2 * pcf * 1e-12
            row["measure"] = f"{pcf * 1e-12:.2f} T pcf/s = {tflops:.1f} TFLOP/s"
            row["vs_ceiling"] = (f"{100 * tflops / sgemm:.0f}% of SGEMM {sgemm:.1f}, "
                                 f"{100 * tflops / tf32:.0f}% of TF32 {tf32:.0f}") if sgemm and tf32 else "no GEMM ceiling"
            row["pct"] = 100 * tflops / sgemm if sgemm else None
            if name == "faiss":
                row["measure"] += f"; 25 it: {25 * s:.2f} s"
                row["projected_25_iter_s"] = 25 * s
        rows.append(row)
    return rows


def peers_table(work):
    doc = load_json(os.path.join(work, "peers.json"))
    lines = []
    if not doc:
        return doc, ["peers: not run"]
    if doc.get("error"):
        return doc, [f"peers: {doc['error']}"]
    for case in doc.get("cases", []):
        title = f"{case['n']} x {case['d']} f32, k = {case['k']}, {case['iters']} it"
        if case.get("skipped"):
            lines.append(f"  {title}: skipped: {case['skipped']}")
            continue
        lines.append(f"  {title} (initial inertia {fmt(case.get('initial_inertia'), '.6g')}):")
        for r in case.get("results", []):
            if not r.get("ok"):
                lines.append(f"    {r['name']:<20} not run: {r.get('skipped') or r.get('error')}")
                continue
            extra = ""
            if r.get("setup_s") is not None:
                extra = f"  set-up {r['setup_s']:.3f} s (first fit in the process)"
            if "same_init" in r:
                extra = f"  same init: {r['same_init']}"
            lines.append(f"    {r['name']:<20} {fmt(r['s_per_iter'], '.3e'):>10} s/iter  "
                         f"x ours {fmt(r.get('peer_over_ours'), '.2f'):>6}  inertia {fmt(r['inertia'], '.7g')}"
                         f" (/ours {fmt(r.get('inertia_over_ours'), '.5f')})  {r.get('precision', '')}{extra}")
    if lines:
        lines.append("  (inertia differs where a run meets empty clusters: ours moves them to the farthest "
                     "points, as scikit-learn; see each peer's empty_clusters in bench.json)")
    return doc, lines or ["peers: no case"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    work, out = a.work, a.out
    env = run_env(work)
    st = stages(work)
    ceil = load_json(os.path.join(work, "ceilings.json"))
    gpus = gpu_query(work)
    tests = merge_tests(work, out)
    sanitizers(work, out, env, st)
    rows = headline(work, ceil)
    peers, peer_lines = peers_table(work)

    bench = {"tool": "bench/gpu_suite.sh", "mode": env.get("mode"), "commit": env.get("commit"),
             "ceilings": ceil, "headline": rows, "peers": peers, "bench_kmeans": {}}
    for p in sorted(glob.glob(os.path.join(work, "bench_*.json"))):
        bench["bench_kmeans"][os.path.basename(p)[6:-5]] = load_json(p)
    with open(os.path.join(out, "bench.json"), "w") as f:
        json.dump(bench, f, indent=1)
        f.write("\n")

    machine = {"mode": env.get("mode"), "commit": env.get("commit"), "source_hash": env.get("source_hash"),
               "host": env.get("host"), "cpus": env.get("cpus"), "binaries": env.get("binaries"),
               "library_path": env.get("runlib"), "cublas": env.get("cublas"),
               "cublas_loaded": env.get("cublas", "").startswith("libcublas.so.13 loads"),
               "nvidia_smi": gpus, "device": (ceil or {}).get("device"),
               "torch": (ceil or {}).get("torch"), "torch_cuda": (ceil or {}).get("torch_cuda"),
               "ceilings": {k: v for k, v in (ceil or {}).items() if k in ("copy", "gemm", "error")},
               "device_txt": "rest.tar.gz: rest/device.txt (nvidia-smi -q, tool versions, kit manifest)"}
    device_txt = read(os.path.join(work, "rest", "device.txt"))
    m = re.search(r"CUDA Version: ([0-9.]+)", device_txt)
    machine["cuda_driver_api"] = m.group(1) if m else None
    for tool, pat in (("nvcc", r"---- nvcc\n.*?release ([0-9.]+)"), ("compute_sanitizer", r"---- compute-sanitizer\n(.*)"),
                      ("ncu", r"---- ncu\n(.*)")):
        m = re.search(pat, device_txt)
        machine[tool] = m.group(1).strip() if m else None
    # What the CUDA runtime itself reports (bench_kmeans' machine block): SMs, clocks, versions.
    for p in sorted(glob.glob(os.path.join(work, "bench_*.json"))):
        gpu = ((load_json(p) or {}).get("machine") or {}).get("gpu")
        if gpu:
            machine["cuda_runtime_view"] = gpu
            break
    with open(os.path.join(out, "machine.json"), "w") as f:
        json.dump(machine, f, indent=1)
        f.write("\n")

    g = gpus[0] if gpus else {}
    dev = (ceil or {}).get("device") or {}
    lines = [f"kmeans GPU kit - mode {env.get('mode')} - commit {env.get('commit')} - binaries {env.get('binaries')}",
             f"device: {g.get('name', 'none')}, driver {g.get('driver_version', '-')}, "
             f"{dev.get('sm_count') or (machine.get('cuda_runtime_view') or {}).get('sms', '-')} SMs, "
             f"CUDA {machine.get('cuda_driver_api') or '-'}, SM clock {g.get('clocks.current.sm [MHz]', '-')} "
             f"(max {g.get('clocks.max.sm [MHz]', '-')}), memory {g.get('memory.total [MiB]', '-')}; "
             f"{env.get('cublas', '')}"]
    if ceil and "copy" in ceil:
        gm = ceil["gemm"]
        lines.append(f"ceilings (this run): copy {ceil['copy']['gbps']:.0f} GB/s, SGEMM {gm['sgemm']['tflops']:.1f}, "
                     f"TF32 {gm['tf32']['tflops']:.1f}, DGEMM {gm['dgemm']['tflops']:.1f} TFLOP/s "
                     f"(torch {ceil.get('torch')})")
    else:
        lines.append(f"ceilings: not measured{': ' + ceil['error'] if ceil and ceil.get('error') else ''}")
    lines += ["", "headline, CUDA backend (bench_kmeans):"]
    w = max([len(r["workload"]) for r in rows] + [8])
    for r in rows:
        lines.append(f"  {r['workload']:<{w}}  {fmt(r.get('s_per_iter'), '.3e'):>10} s/iter  "
                     f"{r.get('measure', '')}  |  {r.get('vs_ceiling', '')}")
    lines += ["", "peers on the same card, same data and initial centroids (bench/gpu_peers.py):"] + peer_lines
    lines += ["", f"tests (tests.xml): {tests['tests']} run, {tests['failed']} failed, {tests['skipped']} skipped, "
                  f"{tests['seconds']:.1f} s" + (f"; failed: {', '.join(tests['failures'])}" if tests["failures"] else "")]
    lines.append(f"CPU == GPU bits (CudaCpuBits.*, whole fits): {tests['cpu_bits']}")
    if tests["slowest"] and tests["slowest"][0][0] >= 0.1:
        lines.append("  slowest: " + ", ".join(f"{n} {t:.1f}s" for t, n in tests["slowest"][:3]))
    prof = ncu_lines(work)
    if prof:
        lines += ["ncu (--clock-control none, one launch each):"] + prof
    san = [s for s in st if s["stage"].startswith("sanitizer_")]
    lines.append("sanitizers (sanitizers.txt): " + ("; ".join(f"{s['stage'][10:]} {s['status']} {s['note']}" for s in san) or "none"))
    sass = read(os.path.join(out, "sass.txt"))
    checks = [l for l in sass.splitlines() if l.startswith(("PASS", "FAIL", "checks"))]
    lines.append("sass (sass.txt): " + ("; ".join(checks) if checks else (sass.splitlines() or ["none"])[0]))
    with open(os.path.join(out, "summary.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
