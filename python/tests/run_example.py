#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# ctest's check of examples/classic_study.py: it runs (--quick) and writes its table and its
# three PNG figures; exits 77 (skip) with the reason when NumPy or matplotlib is missing.
import os
import shutil
import subprocess
import sys

for module, package in (("numpy", "python3-numpy"), ("matplotlib", "python3-matplotlib")):
    try:
        __import__(module)
    except ImportError:
        print("skipped: %s has no %s (Debian: %s)" % (sys.executable, module, package))
        sys.exit(77)

script, out = sys.argv[1], sys.argv[2]
shutil.rmtree(out, ignore_errors=True)
run = subprocess.run(
    [sys.executable, script, "--quick", "--out", out], capture_output=True, text=True, timeout=240
)
print(run.stdout, run.stderr)
if run.returncode != 0:
    sys.exit("classic_study.py failed with exit code %d" % run.returncode)
table = open(os.path.join(out, "classic_table.txt")).read()
for row in (
    "article: Python loop",
    "this machine: Python loop",
    "this machine: NumPy vectorized",
    "kmeans cpu",
    "kmeans reference",
):
    if row not in table:
        sys.exit("the table has no row %r" % row)
for name in ("classic_data.png", "classic_sse.png", "classic_clusters.png"):
    with open(os.path.join(out, name), "rb") as f:
        if f.read(8) != b"\x89PNG\r\n\x1a\n" or os.path.getsize(os.path.join(out, name)) < 10000:
            sys.exit("%s is not a drawn PNG" % name)
print("classic study: table and 3 figures written to %s" % out)
