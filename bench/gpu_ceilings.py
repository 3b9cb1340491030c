#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# The GPU's measured ceilings for bench/gpu_suite.sh: device-to-device copy bandwidth and
# SGEMM / TF32 / DGEMM rates through PyTorch, plus the device facts PyTorch sees, as one JSON.
"""usage: gpu_ceilings.py OUT.json [--copy-gib G] [--gemm N] [--repeats R]

Copy: a G GiB buffer copied into another (bytes read + bytes written) / time, CUDA events,
two warm-up copies, median of R. GEMM: N x N x N matmuls in float32 with TF32 off (SGEMM),
with TF32 on, and in float64; 2 N^3 / time, median of R after a warm-up.
Exit status 0 with the JSON written; 1 (and a JSON with "error") when no CUDA device or no
PyTorch is usable.
"""
import argparse
import json
import statistics
import sys
import time


def set_tf32(torch, on):
    """TF32 for float32 matmuls on or off: the newer fp32_precision switch where PyTorch has it."""
    m = torch.backends.cuda.matmul
    if hasattr(m, "fp32_precision"):
        m.fp32_precision = "tf32" if on else "ieee"
    else:
        m.allow_tf32 = on


def timed(torch, fn, repeats, warmup=2):
    """Median seconds of fn() over repeats, each bracketed by CUDA events."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start = torch.cuda.Event(enable_timing=True)
        stop = torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop) * 1e-3)
    return statistics.median(times), times


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--copy-gib", type=float, default=4.0)
    ap.add_argument("--gemm", type=int, default=8192)
    ap.add_argument("--repeats", type=int, default=10)
    args = ap.parse_args()
    res = {"tool": "gpu_ceilings.py", "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}

    def finish(code):
        with open(args.out, "w") as f:
            json.dump(res, f, indent=1)
            f.write("\n")
        print(json.dumps(res, indent=1))
        return code

    t0 = time.time()
    try:
        import torch
    except Exception as e:  # noqa: BLE001 - any import failure is the same answer
        res["error"] = f"PyTorch is not importable: {e}"
        return finish(1)
    res["torch"] = torch.__version__
    res["torch_cuda"] = torch.version.cuda
    res["import_s"] = round(time.time() - t0, 2)
    if not torch.cuda.is_available():
        res["error"] = "torch.cuda.is_available() is False"
        return finish(1)
    p = torch.cuda.get_device_properties(0)
    res["device"] = {
        "name": p.name,
        "capability": f"{p.major}.{p.minor}",
        "sm_count": p.multi_processor_count,
        "total_memory_gib": round(p.total_memory / 2**30, 2),
        "l2_cache_mib": round(getattr(p, "L2_cache_size", 0) / 2**20, 1),
    }

    # Copy bandwidth: 4 GiB is far beyond L2; halve it until it fits in a quarter of free memory.
    free_b, _ = torch.cuda.mem_get_info()
    nbytes = int(args.copy_gib * 2**30)
    while nbytes > free_b // 4 and nbytes > 2**26:
        nbytes //= 2
    src = torch.empty(nbytes, dtype=torch.uint8, device="cuda").fill_(1)
    dst = torch.empty_like(src)
    med, times = timed(torch, lambda: dst.copy_(src), args.repeats)
    if not torch.equal(src[:4096], dst[:4096]):
        res["error"] = "the device-to-device copy did not copy"
        return finish(1)
    res["copy"] = {"bytes": nbytes, "gbps": 2 * nbytes / med * 1e-9, "median_s": med,
                   "all_s": times, "counts": "bytes read + bytes written"}
    del src, dst
    torch.cuda.empty_cache()

    n = args.gemm
    flops = 2.0 * n ** 3
    res["gemm"] = {"n": n}
    for name, dtype, tf32 in (("sgemm", torch.float32, False), ("tf32", torch.float32, True),
                              ("dgemm", torch.float64, False)):
        set_tf32(torch, tf32)
        a = torch.randn(n, n, dtype=dtype, device="cuda")
        b = torch.randn(n, n, dtype=dtype, device="cuda")
        c = torch.empty(n, n, dtype=dtype, device="cuda")
        med, times = timed(torch, lambda: torch.matmul(a, b, out=c), args.repeats)
        res["gemm"][name] = {"tflops": flops / med * 1e-12, "median_s": med, "all_s": times,
                             "allow_tf32": tf32}
        del a, b, c
        torch.cuda.empty_cache()
    set_tf32(torch, False)
    # TF32 runs on tensor cores at several times the FP32 rate: if not, the switch did not engage.
    res["gemm"]["tf32_engaged"] = res["gemm"]["tf32"]["tflops"] > 1.5 * res["gemm"]["sgemm"]["tflops"]
    res["seconds"] = round(time.time() - t0, 2)
    return finish(0)


if __name__ == "__main__":
    sys.exit(main())
