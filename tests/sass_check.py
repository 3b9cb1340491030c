#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# SASS check of the tile kernel's ranking loop: `cuobjdump -sass` of an object or binary that
# holds assign_tile_kernel, split into basic blocks (at branch targets and after branches).
#
#   sass_check.py CUOBJDUMP FILE [ARCH]      (ARCH: sm_90 by default)
#
# Checks, for assign_tile_kernel<float> on ARCH:
#   - it contains LDS.128 (16-byte shared loads of the ranking tile);
#   - it has ranking blocks: basic blocks with >= 16 FFMA and no global load (the direct
#     distances of the recheck load their operands from global memory);
#   - every ranking block issues at most one shared load per 4 FFMA (LDS of any width; one
#     feature's 4 LDS.128 feed 16 FFMA) and no FADD (one FMA per point, centroid and feature:
#     the direct formula's x - c subtraction is gone from the ranking).
# For assign_tile_kernel<double> the same with DFMA and DADD, without the ratio check (one
# LDS.128 per 2 DFMA by design: 2 doubles per load). Prints per-kernel counts; exit 0 when the
# checks pass, 1 when one fails, 77 and "sass_check: Skipped" when no SASS for ARCH was read.
import re
import subprocess
import sys

KERNELS = {
    "assign_tile_kernel<float>": "assign_tile_kernelIf",
    "assign_tile_kernel<double>": "assign_tile_kernelId",
}
INSTR = re.compile(r"^\s+/\*([0-9a-f]{4,})\*/\s+(.*?);")
BRANCH = re.compile(r"\b(BRA|BRX|JMP|JMX|EXIT|RET|CALL)\b.*?(0x[0-9a-f]+)?\s*$")


def functions(text, arch):
    """{mangled name: [(address, instruction text)]} of the code for `arch`."""
    out, cur, in_arch = {}, None, False
    for line in text.splitlines():
        if line.strip().startswith("code for sm_"):
            in_arch = line.strip() == "code for " + arch
            cur = None
            continue
        m = re.search(r"Function : (\S+)", line)
        if m:
            cur = m.group(1) if in_arch else None
            if cur is not None:
                out[cur] = []
            continue
        if cur is None:
            continue
        m = INSTR.match(line)
        if m:
            out[cur].append((int(m.group(1), 16), m.group(2).strip()))
    return out


def opcode(ins):
    words = ins.split()
    if words and words[0].startswith("@"):
        words = words[1:]
    return words[0] if words else ""


def blocks(code):
    """Basic blocks: a new block starts at every branch target and after every branch."""
    targets = set()
    for _, ins in code:
        if re.search(r"\b(BRA|BRX|JMP|CALL)\b", ins):
            m = re.search(r"0x([0-9a-f]+)", ins.split(None, 2)[-1])
            if m:
                targets.add(int(m.group(1), 16))
    out, cur = [], []
    for addr, ins in code:
        if addr in targets and cur:
            out.append(cur)
            cur = []
        cur.append(ins)
        if re.search(r"\b(BRA|BRX|JMP|JMX|EXIT|RET)\b", ins):
            out.append(cur)
            cur = []
    if cur:
        out.append(cur)
    return out


def counts(ins_list):
    c = {"instr": 0, "LDS": 0, "LDS.128": 0, "FFMA": 0, "DFMA": 0, "FADD": 0, "DADD": 0,
         "LDG": 0}
    for ins in ins_list:
        op = opcode(ins)
        c["instr"] += 1
        if op.startswith("LDS"):
            c["LDS"] += 1
        if op == "LDS.128":
            c["LDS.128"] += 1
        if op.startswith("FFMA"):
            c["FFMA"] += 1
        if op.startswith("DFMA"):
            c["DFMA"] += 1
        if op.startswith("FADD"):
            c["FADD"] += 1
        if op.startswith("DADD"):
            c["DADD"] += 1
        if op.startswith("LDG"):
            c["LDG"] += 1
    return c


def main():
    if len(sys.argv) < 3:
        print("usage: sass_check.py CUOBJDUMP FILE [ARCH]")
        return 2
    tool, path = sys.argv[1], sys.argv[2]
    arch = sys.argv[3] if len(sys.argv) > 3 else "sm_90"
    try:
        text = subprocess.run([tool, "-sass", path], capture_output=True, text=True,
                              check=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        print(f"sass_check: Skipped\n{tool} -sass {path} failed: {e}")
        return 77
    funcs = functions(text, arch)
    fails = 0
    found = 0
    for name, key in KERNELS.items():
        code = next((v for k, v in funcs.items() if key in k), None)
        if code is None:
            print(f"{name}: not in the {arch} code of {path}")
            continue
        found += 1
        fma = "FFMA" if name.endswith("<float>") else "DFMA"
        add = "FADD" if fma == "FFMA" else "DADD"
        total = counts(ins for _, ins in code)
        print(f"{name} ({arch}): " + ", ".join(f"{k} {v}" for k, v in total.items()))
        hot = [counts(b) for b in blocks(code)]
        hot = [b for b in hot if b[fma] >= 16 and b["LDG"] == 0]  # not the direct distances
        for b in hot:
            print(f"  ranking block: {b['instr']} instr, {b[fma]} {fma}, {b['LDS']} LDS "
                  f"({b['LDS.128']} LDS.128), {b[add]} {add}")
        if total["LDS.128"] == 0:
            print(f"FAIL {name}: no LDS.128")
            fails += 1
        if not hot:
            print(f"FAIL {name}: no basic block with >= 16 {fma}")
            fails += 1
        for b in hot:
            if b[add] > 0:
                print(f"FAIL {name}: a ranking block has {b[add]} {add} for {b[fma]} {fma} "
                      f"(the ranking is one FMA per point, centroid and feature)")
                fails += 1
        if fma == "FFMA":
            for b in hot:
                if 4 * b["LDS"] > b["FFMA"]:
                    print(f"FAIL {name}: a ranking block has {b['LDS']} shared loads for "
                          f"{b['FFMA']} FFMA (more than one per 4)")
                    fails += 1
    if found == 0:
        print(f"sass_check: Skipped\nno tile kernel in the {arch} code of {path}")
        return 77
    print(f"checks failed: {fails}")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
