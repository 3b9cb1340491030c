#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The GPU kit: build here (--prebuild), run there in one command under a global deadline, stages in
# order of value, at most 8 files in OUT (summary.txt last on stdout).
#
# usage: bench/gpu_suite.sh --prebuild DIR [--build-dir B] [--archs A]
#        bench/gpu_suite.sh OUT [--kit DIR] [--deadline S] [--dry [--fast]] [--build-dir B] [--archs A]
#
#   --prebuild DIR  on a machine without a GPU: build test_cuda, bench_kmeans and the kmeans CLI
#                   for sm_90 (in B, default build-gpu-kit/), and put what the GPU run needs
#                   into DIR (use .gpu-kit: git ignores it): bin/ (stripped), lib/ (libkmeans,
#                   libgomp; lib/compat: libstdc++, libgcc_s), googletest/ (sources, for a rebuild
#                   there), wheels/ (flash-kmeans, fastkmeans, tqdm), tools/bin (cuobjdump,
#                   nvdisasm), manifest.txt (commit, source hash). Under 40 MiB; carry DIR.
#   OUT             the results folder: summary.txt, log.txt, tests.xml, bench.json,
#                   sanitizers.txt, sass.txt, machine.json, rest.tar.gz - nothing else
#   --kit DIR       the prebuilt kit (default: .gpu-kit in the repository). Its binaries run when
#                   its source hash matches the tree and they start; otherwise the tree is built
#                   here in B (default $TMPDIR/kmeans-gpu-suite-build), GoogleTest from DIR's copy
#   --deadline S    seconds for the whole run (default 450): a stage is skipped, with the
#                   reason, when the time left cannot hold its minimum; each runs under
#                   min(its budget, time left)
#   --dry           no GPU work (chosen by itself when nvidia-smi finds no GPU): every stage runs
#                   its no-GPU part (binaries, tests that skip, the classic study on the CPU,
#                   the peers' API check, SASS) and records why the rest is skipped
#   --fast          with --dry: no binaries at all - the stage logic, the report and the output
#                   rule check in a few seconds (the ctest gpu_suite.dry_fast)
#   --skip LIST     stages to leave out, comma-separated name prefixes (e.g. a second run that
#                   spends its time on what the first skipped: --skip tests,bench,peers)
#   --archs A       CMAKE_CUDA_ARCHITECTURES for a build (default 90, env KMEANS_CUDA_ARCHS)
# Env: KMEANS_SUITE_CMAKE_ARGS (extra configure arguments of a build), KMEANS_PYTHON (python3).
# Exit status: the number of failed stages (0: all passed or were skipped).
set -u
set -o pipefail

usage() { awk 'NR >= 3 && /^#/ { sub(/^# ?/, ""); print; next } NR >= 3 { exit }' "$0"; }
die() { echo "gpu_suite.sh: error: $*" >&2; exit 2; }

REPO="$(cd "$(dirname "$0")/.." && pwd)"
OUT=""
PREBUILD=""
KIT="$REPO/.gpu-kit"
DEADLINE=450
DRY=0
FAST=0
BUILD_DIR=""
ARCHS="${KMEANS_CUDA_ARCHS:-90}"
BUILD_TREE=()
SKIP_LIST=""
while [ $# -gt 0 ]; do
  case "$1" in
    --prebuild) shift; PREBUILD="${1:?--prebuild needs a folder}" ;;
    --kit) shift; KIT="${1:?--kit needs a folder}" ;;
    --deadline) shift; DEADLINE="${1:?--deadline needs seconds}" ;;
    --dry) DRY=1 ;;
    --fast) FAST=1 ;;
    --build-dir) shift; BUILD_DIR="${1:?--build-dir needs a folder}" ;;
    --archs) shift; ARCHS="${1:?--archs needs a value}" ;;
    --skip) shift; SKIP_LIST="${1:?--skip needs stage names}" ;;
    --build-tree) BUILD_TREE=("${2:?}" "${3:?}" "${4-}"); shift 3 ;;  # internal: the fallback build
    -h|--help) usage; exit 0 ;;
    -*) echo "gpu_suite.sh: error: unknown option $1" >&2; usage >&2; exit 2 ;;
    *) [ -z "$OUT" ] || die "extra argument $1"; OUT="$1" ;;
  esac
  shift
done
case "$DEADLINE" in ''|*[!0-9]*) die "--deadline must be a whole number of seconds, not '$DEADLINE'" ;; esac
[ "$FAST" = 0 ] || [ "$DRY" = 1 ] || die "--fast needs --dry"
JOBS="$(nproc 2>/dev/null || echo 2)"
GEN=()
command -v ninja > /dev/null 2>&1 && GEN=(-G Ninja)
PY="${KMEANS_PYTHON:-python3}"

# The code that goes into the binaries: a kit built from other sources is not run.
source_hash() {
  (cd "$REPO" && find CMakeLists.txt cmake include src kernels tests bench -type f \
     \( -name '*.cpp' -o -name '*.hpp' -o -name '*.cu' -o -name '*.cuh' -o -name '*.inl' \
        -o -name '*.h' -o -name CMakeLists.txt -o -name '*.cmake' \) -print0 2>/dev/null |
   LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)
}

# configure_and_build BUILD_DIR LOG [GTEST_SOURCES]: the three GPU-run targets, Release, $ARCHS.
# Without GoogleTest (neither installed nor sources) it builds without the tests.
configure_and_build() {
  local b="$1" log="$2" gsrc="${3:-}" tests=ON targets=(test_cuda bench_kmeans kmeans_cli)
  local args=(-S "$REPO" -B "$b" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release
              -DCMAKE_CUDA_ARCHITECTURES="$ARCHS" -DKMEANS_BUILD_BENCH=ON -DKMEANS_BUILD_CLI=ON
              -DKMEANS_INSTALL=ON)
  [ -n "$gsrc" ] && args+=(-DKMEANS_GTEST_SOURCE_DIR="$gsrc")
  # shellcheck disable=SC2206  # split on purpose: several arguments in one variable
  [ -n "${KMEANS_SUITE_CMAKE_ARGS:-}" ] && args+=($KMEANS_SUITE_CMAKE_ARGS)
  if ! cmake "${args[@]}" -DKMEANS_BUILD_TESTS=ON >> "$log" 2>&1; then
    echo "configure with tests failed: trying without GoogleTest" >> "$log"
    tests=OFF
    targets=(bench_kmeans kmeans_cli)
    cmake "${args[@]}" -DKMEANS_BUILD_TESTS=OFF >> "$log" 2>&1 || return 1
  fi
  # CMakeLists.txt prints this on every configure; without it the binaries would test nothing.
  grep -q 'kmeans: CUDA backend ON' "$log" || { echo "the build has no CUDA backend (no nvcc?)" >> "$log"; return 1; }
  nice cmake --build "$b" -j "$JOBS" --target "${targets[@]}" >> "$log" 2>&1 || return 1
  [ "$tests" = ON ] || return 3
}

# The run's fallback build, as a command of its own so that it can run under `timeout`.
if [ ${#BUILD_TREE[@]} -gt 0 ]; then
  configure_and_build "${BUILD_TREE[@]}"
  exit $?
fi

# ============================================================================ --prebuild
if [ -n "$PREBUILD" ]; then
  [ -z "$OUT" ] || die "--prebuild takes no OUT folder"
  case "$PREBUILD" in /*) ;; *) PREBUILD="$PWD/$PREBUILD" ;; esac
  B="${BUILD_DIR:-$REPO/build-gpu-kit}"
  NEW="$PREBUILD.new"
  rm -rf "$NEW"
  mkdir -p "$NEW"/{bin,lib/compat,wheels,tools/bin} "$B" || die "cannot create $NEW"
  PLOG="$B/prebuild.log"
  : > "$PLOG"
  t0=$SECONDS
  echo "prebuild: building in $B for sm_$ARCHS (log: $PLOG)"
  command -v nvcc > /dev/null 2>&1 || [ -x /usr/local/cuda/bin/nvcc ] || die "no nvcc: the kit needs the CUDA toolkit"
  GSRC=""
  for g in "${KMEANS_GTEST_SOURCE_DIR:-}" /usr/src/googletest; do
    [ -n "$g" ] && [ -f "$g/CMakeLists.txt" ] && { GSRC="$g"; break; }
  done
  [ -n "$GSRC" ] || die "no GoogleTest sources (Debian: apt-get install googletest) to carry to the GPU machine"
  configure_and_build "$B" "$PLOG" || { tail -30 "$PLOG" >&2; die "build failed (see $PLOG)"; }
  echo "prebuild: built in $((SECONDS - t0)) s"
  cp "$B/tests/test_cuda" "$B/bench/bench_kmeans" "$B/kmeans" "$NEW/bin/" || die "built binaries missing in $B"
  cp -P "$B"/libkmeans.so* "$NEW/lib/" || die "libkmeans.so missing in $B"
  strip --strip-unneeded "$NEW"/bin/* "$NEW"/lib/libkmeans.so.*.*.* || die "strip failed"
  for l in libgomp.so.1:lib libstdc++.so.6:lib/compat libgcc_s.so.1:lib/compat; do
    f="$(g++ -print-file-name="${l%%:*}")"
    [ -f "$f" ] || die "g++ does not know ${l%%:*}"
    cp -L "$f" "$NEW/${l#*:}/${l%%:*}" || die "cannot copy $f"
  done
  # GoogleTest sources without their docs (a rebuild there when the binaries do not start).
  mkdir -p "$NEW/googletest"
  (cd "$GSRC" && tar cf - --exclude=docs --exclude='*.md' .) | (cd "$NEW/googletest" && tar xf -) ||
    die "cannot copy $GSRC"
  # Peer wheels and the SASS tools, cached in the build folder (PyPI through pip).
  DL="$B/downloads"
  mkdir -p "$DL/wheels" "$DL/tools"
  PIPARGS=(--no-deps --only-binary=:all: --python-version 3.12 --implementation cp
           --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64
           --platform manylinux2014_x86_64)
  WHEELS_NOTE="flash-kmeans, fastkmeans, tqdm"
  for p in flash_kmeans:flash-kmeans fastkmeans:fastkmeans tqdm:tqdm; do
    ls "$DL/wheels/${p%%:*}"-*.whl > /dev/null 2>&1 ||
      "$PY" -m pip download "${PIPARGS[@]}" -d "$DL/wheels" "${p#*:}" >> "$PLOG" 2>&1 ||
      WHEELS_NOTE="$WHEELS_NOTE; ${p#*:}: pip download failed"
  done
  cp "$DL"/wheels/*.whl "$NEW/wheels/" 2>/dev/null || WHEELS_NOTE="no wheels"
  TOOLS_NOTE="cuobjdump, nvdisasm"
  for p in cuobjdump nvdisasm; do
    ls "$DL/tools/nvidia_cuda_$p"-*.whl > /dev/null 2>&1 ||
      "$PY" -m pip download "${PIPARGS[@]}" -d "$DL/tools" "nvidia-cuda-$p" >> "$PLOG" 2>&1 ||
      TOOLS_NOTE="$TOOLS_NOTE; $p: pip download failed"
    w="$(ls "$DL/tools/nvidia_cuda_$p"-*.whl 2>/dev/null | tail -1)"
    [ -n "$w" ] && unzip -o -q -j "$w" "nvidia/*/bin/$p" -d "$NEW/tools/bin" >> "$PLOG" 2>&1
    chmod +x "$NEW/tools/bin/$p" 2>/dev/null || TOOLS_NOTE="$TOOLS_NOTE; $p missing"
  done
  {
    echo "commit: $(git -C "$REPO" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)$(git -C "$REPO" status --porcelain --untracked-files=no 2>/dev/null | grep -q . && echo -dirty)"
    echo "source_hash: $(source_hash)"
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "archs: $ARCHS"
    echo "host: $(uname -srm); $(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")"
    echo "compiler: $(g++ --version | head -1); $( (nvcc --version || /usr/local/cuda/bin/nvcc --version) 2>/dev/null | tail -2 | head -1)"
    echo "glibc_needed: $(objdump -T "$NEW"/bin/* "$NEW"/lib/libkmeans.so.*.*.* 2>/dev/null | grep -Eo 'GLIBC_[0-9.]+' | sort -uV | tail -1)"
    echo "glibcxx_needed: $(objdump -T "$NEW"/bin/* "$NEW"/lib/libkmeans.so.*.*.* 2>/dev/null | grep -Eo 'GLIBCXX_[0-9.]+' | sort -uV | tail -1)"
    echo "googletest: from $GSRC"
    echo "wheels: $WHEELS_NOTE ($(cd "$NEW/wheels" && ls | tr '\n' ' '))"
    echo "tools: $TOOLS_NOTE"
  } > "$NEW/manifest.txt"
  size=$(du -sb "$NEW" | cut -f1)
  echo "size_bytes: $size" >> "$NEW/manifest.txt"
  [ "$size" -lt $((40 << 20)) ] || die "the kit is $((size >> 20)) MiB, over the 40 MiB it may take"
  rm -rf "$PREBUILD" && mv "$NEW" "$PREBUILD" || die "cannot replace $PREBUILD"
  cat "$PREBUILD/manifest.txt"
  echo "prebuild: $PREBUILD is $((size / 1024)) KiB in $(find "$PREBUILD" -type f | wc -l) files, $((SECONDS - t0)) s"
  echo "prebuild: on the GPU machine run bench/gpu_suite.sh OUT with $(realpath --relative-to="$REPO" "$PREBUILD" 2>/dev/null || echo "$PREBUILD") carried along"
  exit 0
fi

# ============================================================================ the run
[ -n "$OUT" ] || { echo "gpu_suite.sh: error: OUT (the results folder) is required" >&2; usage >&2; exit 2; }
mkdir -p "$OUT" || die "cannot create $OUT"
OUT="$(cd "$OUT" && pwd)"
[ -z "$(ls -A "$OUT")" ] || die "$OUT is not empty: the kit writes exactly its 8 files into an empty folder"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/kmeans-gpu-suite.XXXXXX")" || die "cannot create a scratch folder"
REST="$WORK/rest"
mkdir -p "$REST" "$WORK/bin"
trap 'rm -rf "$WORK"' EXIT
LOG="$OUT/log.txt"
STAGES="$WORK/stages.tsv"
: > "$STAGES"
FAILED=0
RESERVE=15  # seconds kept for the report, the archive and the output check

say() { echo "$*" | tee -a "$LOG"; }
# log_output TITLE FILE: the file into log.txt, its first 300 and last 100 lines when longer (the
# whole file is in rest.tar.gz).
log_output() {
  local n
  n=$(wc -l < "$2" 2>/dev/null || echo 0)
  {
    echo "---- output of $1"
    if [ "$n" -le 400 ]; then cat "$2"
    else head -300 "$2"; echo "[... $((n - 400)) lines left out: rest.tar.gz has them all ...]"; tail -100 "$2"
    fi
    echo "---- end"
  } >> "$LOG"
}
# first_error FILE: the first line that reads like a tool's error (for a stage's note).
first_error() {
  grep -m1 -iE 'not supported|error|failed|cannot|unable' "$1" | grep -v 'SUMMARY' | cut -c1-200
}
left() { echo $((DEADLINE - SECONDS - RESERVE)); }
secs_since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

# record STAGE STATUS SECONDS NOTE  (STATUS: PASS, FAIL, SKIP, INFO)
record() {
  printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >> "$STAGES"
  [ "$2" = FAIL ] && FAILED=$((FAILED + 1))
  say "== $1: $2 (${3}s) $4"
}
# skip_unless_time STAGE MIN: true (0) when the stage may start; else records SKIP (--skip, or
# not enough time left).
skip_unless_time() {
  local l p
  for p in ${SKIP_LIST//,/ }; do
    case "$1" in "$p"*) record "$1" SKIP 0 "--skip $p"; return 1 ;; esac
  done
  l=$(left)
  [ "$l" -ge "$2" ] && return 0
  record "$1" SKIP 0 "deadline: ${l}s left, it needs ${2}s"
  return 1
}
# timed STAGE BUDGET LOGFILE cmd...: runs under min(BUDGET, time left); sets RC and DUR, appends
# the output to log.txt. RC 124 = timed out.
timed() {
  local stage="$1" budget="$2" out="$3" l t0
  shift 3
  l=$(left)
  [ "$l" -lt "$budget" ] && budget=$l
  [ "$budget" -lt 1 ] && budget=1
  say "-- $stage: $* (limit ${budget}s)"
  t0=$(date +%s.%N)
  timeout --kill-after=5 "$budget" "$@" > "$out" 2>&1
  RC=$?
  DUR=$(secs_since "$t0")
  [ "$RC" = 137 ] && RC=124
  [ "$RC" = 124 ] && echo "gpu_suite.sh: timed out after ${budget}s" >> "$out"
  log_output "$stage ($out, exit $RC, ${DUR}s)" "$out"
}

MODE=gpu
NOTE_MODE=""
if [ "$DRY" = 0 ] && ! nvidia-smi -L > /dev/null 2>&1; then
  DRY=1
  NOTE_MODE="nvidia-smi finds no GPU: dry run"
fi
[ "$DRY" = 1 ] && MODE=dry
[ "$FAST" = 1 ] && MODE="dry --fast"
: > "$LOG"
say "kmeans GPU kit: mode $MODE, deadline ${DEADLINE}s, OUT $OUT, kit $KIT${NOTE_MODE:+ ($NOTE_MODE)}"
say "repo $REPO, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(uname -srm), $JOBS cpus"
GPU_SKIP="dry run: needs a GPU"

# ---------------------------------------------------------------------------- parsers
# key_xml FILE: "N tests, F failed, S skipped" from a gtest XML file.
key_xml() {
  [ -s "$1" ] || { echo "no XML"; return; }
  awk 'match($0, /<testsuites [^>]*>/) { s = substr($0, RSTART, RLENGTH)
         n = s; sub(/.* tests="/, "", n); sub(/".*/, "", n)
         f = s; sub(/.* failures="/, "", f); sub(/".*/, "", f)
         e = s; sub(/.* errors="/, "", e); sub(/".*/, "", e)
         printf "%d tests, %d failed", n, f + e; exit }' "$1"
  printf ', %d skipped' "$(grep -c '<skipped' "$1")"
}
# sass_report SASS_FILE CUOBJDUMP_RC: the per-kernel instruction counts and the design checks
# (the last line is "checks failed: N").
sass_report() {
  awk -v rc="$2" '
  function kname(f) {
    if (f ~ /assign_tile_kernelIf/) return "assign_tile_kernel<float>"
    if (f ~ /assign_tile_kernelId/) return "assign_tile_kernel<double>"
    if (f ~ /gemm_argmin_kernelIf/) return "gemm_argmin_kernel<float>"
    if (f ~ /gemm_argmin_kernelId/) return "gemm_argmin_kernel<double>"
    if (f ~ /mma_assign_kernelIf/) return "mma_assign_kernel<float>"
    return ""
  }
  /Function :/ { fn = kname($3); if (fn != "") seen[fn] = 1; next }
  fn != "" && /^[ \t]+\/\*[0-9a-f]+\*\// {
    line = $0; sub(/^[ \t]+\/\*[0-9a-f]+\*\/[ \t]+/, "", line)
    split(line, w, /[ \t;]+/); op = w[1]; if (op ~ /^@/) op = w[2]
    total[fn]++
    if (op == "LDS.128") lds128[fn]++
    if (op ~ /^LDS/) lds[fn]++
    if (op ~ /^FFMA/) ffma[fn]++
    if (op ~ /^DFMA/) dfma[fn]++
    if (op ~ /^HMMA/) hmma[fn]++
    if (op ~ /^LDG/) ldg[fn]++
    if (op ~ /^LDG.*\.128/) ldg128[fn]++
    if (op ~ /^BAR/) bar[fn]++
    if (op ~ /^LDGSTS/) ldgsts[fn]++
  }
  END {
    if (rc != 0) { print "cuobjdump -sass failed (exit " rc ")"; fails++ }
    printf "%-28s %6s %6s %8s %6s %6s %6s %6s %6s\n", "kernel", "instr", "LDS", "LDS.128", "FFMA", "DFMA", "HMMA", "LDG", "BAR"
    n = split("assign_tile_kernel<float> assign_tile_kernel<double> gemm_argmin_kernel<float> gemm_argmin_kernel<double>", ks, " ")
    for (i = 1; i <= n; i++) { k = ks[i]
      printf "%-28s %6d %6d %8d %6d %6d %6d %6d %6d\n", k, total[k], lds[k], lds128[k], ffma[k], dfma[k], hmma[k], ldg[k], bar[k] }
    print ""
    for (i = 1; i <= n; i++) if (!seen[ks[i]]) { print "FAIL " ks[i] ": not in the binary"; fails++ }
    k = "assign_tile_kernel<float>"
    if (lds128[k] > 0) print "PASS " k ": " lds128[k] " LDS.128 (16-byte shared loads of the centroid tile)"
    else { print "FAIL " k ": no LDS.128: the centroid tile is not read with 16-byte shared loads"; fails++ }
    if (ffma[k] >= 16) print "PASS " k ": " ffma[k] " FFMA (>= kRegTile = 16: one coordinate load feeds 16 FMAs)"
    else { print "FAIL " k ": " ffma[k] " FFMA, fewer than kRegTile = 16"; fails++ }
    k = "gemm_argmin_kernel<float>"
    if (seen[k] && ldg128[k] > 0) print "PASS " k ": " ldg128[k] " 16-byte global loads (the products read as 4-vectors)"
    else if (seen[k]) { print "FAIL " k ": no 16-byte global loads: the products are not read as 4-vectors"; fails++ }
    h = 0; for (i = 1; i <= n; i++) h += hmma[ks[i]]
    if (h == 0) print "PASS no HMMA in these kernels (exact FP32/FP64 arithmetic; the GEMM is cuBLAS SGEMM)"
    else { print "FAIL " h " HMMA in our kernels: tensor-core arithmetic the design does not expect"; fails++ }
    k = "mma_assign_kernel<float>"  # the TF32 path: tensor cores fed by cp.async
    printf "%-28s %6d instr, %d HMMA, %d LDGSTS, %d LDS\n", k, total[k], hmma[k], ldgsts[k], lds[k]
    if (hmma[k] > 0 && ldgsts[k] > 0) print "PASS " k ": " hmma[k] " HMMA (TF32 mma.sync), " ldgsts[k] " LDGSTS (cp.async)"
    else { print "FAIL " k ": " hmma[k] " HMMA, " ldgsts[k] " LDGSTS: the TF32 path is not on the tensor cores / cp.async"; fails++ }
    print "checks failed: " fails + 0
  }' "$1"
}

# ---------------------------------------------------------------------------- self-test
# The kit's own parsers on small inputs with known answers (SASS counts, gtest XML, the report's
# arithmetic against the ceilings): a broken parser would misreport the one GPU run.
selftest() {
  local d="$WORK/selftest" bad="" i got
  mkdir -p "$d/work" "$d/out"
  {
    printf '\t\tFunction : _ZN6kmeans6detail18assign_tile_kernelIfEEvNS0_10AssignArgsIT_EE\n'
    printf '        /*0000*/                   LDS.128 R4, [R2] ;  /* 0x0 */\n'
    printf '        /*0010*/                   LDS R5, [R2+0x10] ;  /* 0x0 */\n'
    for i in $(seq 1 16); do printf '        /*%04x*/              @!P0 FFMA R1, R2, R3, R1 ;  /* 0x0 */\n' $((i * 16 + 16)); done
    printf '                                                                                                      /* 0x000fe20000000800 */\n'
  } > "$d/sass.txt"
  got="$(sass_report "$d/sass.txt" 0)"
  echo "$got" | grep -Eq '^assign_tile_kernel<float> +18 +2 +1 +16 +0 +0 +0 +0$' || bad="$bad sass-counts"
  echo "$got" | grep -q '^checks failed: 4$' || bad="$bad sass-checks"
  printf '<?xml version="1.0"?>\n<testsuites tests="3" failures="1" disabled="0" errors="0" time="0.5" name="AllTests">\n<testsuite name="A" tests="3"><testcase name="x" classname="A" time="0.1"/><testcase name="y" classname="A" time="0.2"><skipped message="no GPU"/></testcase><testcase name="z" classname="A" time="0.2"><failure message="f"/></testcase></testsuite>\n</testsuites>\n' > "$d/work/tests_main.xml"
  sed 's/tests="3" failures="1"/tests="2" failures="0"/; s/<failure message="f"\/>//' "$d/work/tests_main.xml" > "$d/work/tests_memory.xml"
  [ "$(key_xml "$d/work/tests_main.xml")" = "3 tests, 1 failed, 1 skipped" ] || bad="$bad key_xml($(key_xml "$d/work/tests_main.xml"))"
  printf 'selftest\tPASS\t0\t-\n' > "$d/work/stages.tsv"
  echo '{"copy": {"gbps": 1000}, "gemm": {"sgemm": {"tflops": 50}, "tf32": {"tflops": 400}, "dgemm": {"tflops": 40}}}' > "$d/work/ceilings.json"
  echo '{"rows": [{"mode": "case", "kind": "ours", "backend": "cuda", "n": 10000000, "d": 16, "k": 16, "s_per_iter": 0.00128}]}' > "$d/work/bench_bw.json"
  echo '{"rows": [{"mode": "case", "kind": "ours", "backend": "cuda", "n": 1000000, "d": 128, "k": 1024, "s_per_iter": 0.00524288}]}' > "$d/work/bench_fma.json"
  if "$PY" "$REPO/bench/gpu_report.py" --work "$d/work" --out "$d/out" > "$d/report.txt" 2>&1; then
    grep -q '500 GB/s of data read  |  50% of copy 1000 GB/s' "$d/out/summary.txt" || bad="$bad report-bandwidth"
    grep -q '50.0 TFLOP/s  |  100% of SGEMM 50.0, 12% of TF32 400' "$d/out/summary.txt" || bad="$bad report-gemm"
    grep -q 'tests (tests.xml): 5 run, 1 failed, 2 skipped' "$d/out/summary.txt" || bad="$bad report-tests"
    grep -q '^CPU == GPU bits (CudaCpuBits.\*, whole fits): not run$' "$d/out/summary.txt" || bad="$bad report-cpu-bits"
  else
    bad="$bad report($(tail -1 "$d/report.txt"))"
  fi
  [ -z "$bad" ] && return 0
  echo "self-test failures:$bad"
  return 1
}
t0=$(date +%s.%N)
if selftest > "$REST/selftest.txt" 2>&1; then record selftest PASS "$(secs_since "$t0")" "SASS counts, gtest XML, report arithmetic"
else record selftest FAIL "$(secs_since "$t0")" "$(tail -1 "$REST/selftest.txt")"
fi

# ---------------------------------------------------------------------------- 0. binaries
# Our binaries run with lib/ first on the library path (libkmeans, libgomp), lib/compat when the
# machine's libstdc++ is too old, and cuBLAS's folder: set per command, never exported, so
# Python and the NVIDIA tools keep the machine's libraries.
find_cublas_dir() {
  local d f
  for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/local/cuda-*/lib64 \
           /usr/local/cuda-*/targets/x86_64-linux/lib; do
    [ -e "$d/libcublas.so.13" ] && { echo "$d"; return; }
  done
  f="$(ldconfig -p 2>/dev/null | awk '/libcublas\.so\.13 / { print $NF; exit }')"
  [ -n "$f" ] && { dirname "$f"; return; }
  for d in $("$PY" -c 'import site; print(" ".join(site.getsitepackages()))' 2>/dev/null); do
    f="$(find "$d/nvidia" -name 'libcublas.so.13*' 2>/dev/null | head -1)"
    [ -n "$f" ] && { dirname "$f"; return; }
  done
}
CUBLAS_DIR="$(find_cublas_dir)"
TEST_CUDA=""; BENCH=""; CLI=""; RUNLIB=""; BIN_FROM="none"
make_wrappers() {  # the three commands, each with RUNLIB, in $WORK/bin
  local name real
  for name in test_cuda:"$TEST_CUDA" bench_kmeans:"$BENCH" kmeans:"$CLI"; do
    real="${name#*:}"
    [ -n "$real" ] || continue
    printf '#!/bin/sh\nLD_LIBRARY_PATH="%s" exec "%s" "$@"\n' "$RUNLIB" "$real" > "$WORK/bin/${name%%:*}"
    chmod +x "$WORK/bin/${name%%:*}"
  done
}
starts() {  # starts LIBPATH: the kit's three binaries start with that library path
  LD_LIBRARY_PATH="$1" "$KIT/bin/kmeans" --version > /dev/null 2>> "$WORK/start.log" &&
    LD_LIBRARY_PATH="$1" "$KIT/bin/bench_kmeans" --help > /dev/null 2>> "$WORK/start.log" &&
    LD_LIBRARY_PATH="$1" "$KIT/bin/test_cuda" --gtest_list_tests > /dev/null 2>> "$WORK/start.log"
}
if [ "$FAST" = 1 ]; then
  record binaries SKIP 0 "--fast: no binaries"
else
  t0=$(date +%s.%N)
  why_build=""
  if [ ! -x "$KIT/bin/test_cuda" ] || [ ! -f "$KIT/manifest.txt" ]; then
    why_build="no prebuilt kit in $KIT"
  else
    want="$(awk '/^source_hash:/ { print $2 }' "$KIT/manifest.txt")"
    have="$(source_hash)"
    if [ "$want" != "$have" ]; then
      why_build="the kit was built from other sources (hash $want, tree $have)"
    else
      base="$KIT/lib${CUBLAS_DIR:+:$CUBLAS_DIR}"
      if starts "$base"; then RUNLIB="$base"
      elif starts "$KIT/lib/compat:$base"; then RUNLIB="$KIT/lib/compat:$base"
      else why_build="the prebuilt binaries do not start here: $(tail -1 "$WORK/start.log")"
      fi
    fi
  fi
  if [ -z "$why_build" ]; then
    TEST_CUDA="$KIT/bin/test_cuda"; BENCH="$KIT/bin/bench_kmeans"; CLI="$KIT/bin/kmeans"
    BIN_FROM="prebuilt ($(awk '/^commit:/ { print $2 }' "$KIT/manifest.txt"))"
    record binaries PASS "$(secs_since "$t0")" "prebuilt kit, commit $(awk '/^commit:/ { print $2 }' "$KIT/manifest.txt"), library path $RUNLIB"
  else
    say "binaries: $why_build: building the tree"
    record binaries INFO "$(secs_since "$t0")" "$why_build"
    B="${BUILD_DIR:-${TMPDIR:-/tmp}/kmeans-gpu-suite-build}"
    GSRC=""
    for g in "$KIT/googletest" "${KMEANS_GTEST_SOURCE_DIR:-}" /usr/src/googletest; do
      [ -n "$g" ] && [ -f "$g/CMakeLists.txt" ] && { GSRC="$g"; break; }
    done
    if skip_unless_time build 60; then
      timed build 300 "$WORK/build.log" bash "$0" --archs "$ARCHS" --build-tree "$B" "$WORK/build.log.inner" "$GSRC"
      log_output "the build (build.log in rest.tar.gz)" "$WORK/build.log.inner"
      cp "$WORK/build.log.inner" "$REST/build.log" 2>/dev/null
      if [ "$RC" = 0 ] || [ "$RC" = 3 ]; then
        [ "$RC" = 0 ] && TEST_CUDA="$B/tests/test_cuda"
        BENCH="$B/bench/bench_kmeans"; CLI="$B/kmeans"; RUNLIB="$B${CUBLAS_DIR:+:$CUBLAS_DIR}"
        BIN_FROM="built here in $B"
        record build PASS "$DUR" "built here$([ "$RC" = 3 ] && echo ' without the tests: no GoogleTest')${GSRC:+, GoogleTest from $GSRC}"
      else
        record build FAIL "$DUR" "$([ "$RC" = 124 ] && echo 'timed out' || echo "exit $RC"): $(tail -3 "$WORK/build.log.inner" 2>/dev/null | tr '\n' ' ' | cut -c1-300)"
      fi
    fi
  fi
  make_wrappers
fi

# ---------------------------------------------------------------------------- a. device facts
t0=$(date +%s.%N)
{
  echo "---- nvidia-smi"; nvidia-smi 2>&1 || echo "(nvidia-smi failed or is absent)"
  echo; echo "---- nvidia-smi -q -d CLOCK,MEMORY,POWER,PERFORMANCE"
  nvidia-smi -q -d CLOCK,MEMORY,POWER,PERFORMANCE 2>&1 | head -150
  echo; echo "---- nvcc"; (nvcc --version || /usr/local/cuda/bin/nvcc --version) 2>&1 | tail -2
  echo; echo "---- compute-sanitizer"; (compute-sanitizer --version || /usr/local/cuda/bin/compute-sanitizer --version) 2>&1 | tail -1
  echo; echo "---- ncu"; (ncu --version || /usr/local/cuda/bin/ncu --version) 2>&1 | tail -1
  echo; echo "---- kit manifest"; cat "$KIT/manifest.txt" 2>&1
} > "$REST/device.txt" 2>&1
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,clocks.mem,clocks.max.mem,power.limit,temperature.gpu,pstate \
  --format=csv 2> /dev/null > "$WORK/gpu_query.csv" || : > "$WORK/gpu_query.csv"
CUBLAS_NOTE="libcublas.so.13 not found"
if [ -n "$CUBLAS_DIR" ]; then
  if LD_LIBRARY_PATH="$CUBLAS_DIR" "$PY" -c 'import ctypes; l = ctypes.CDLL("libcublas.so.13"); l.cublasSgemm_v2' > "$WORK/cublas.txt" 2>&1; then
    CUBLAS_NOTE="libcublas.so.13 loads from $CUBLAS_DIR"
  else
    CUBLAS_NOTE="libcublas.so.13 in $CUBLAS_DIR does not load: $(tail -1 "$WORK/cublas.txt")"
  fi
fi
echo "$CUBLAS_NOTE" > "$WORK/cublas.txt"
GPU_LINE="$(sed -n 2p "$WORK/gpu_query.csv" | cut -d, -f1-2)"
record facts PASS "$(secs_since "$t0")" "${GPU_LINE:-no GPU}; $CUBLAS_NOTE"
if [ "$DRY" = 1 ]; then
  record ceilings SKIP 0 "$GPU_SKIP"
elif skip_unless_time ceilings 20; then
  timed ceilings 60 "$REST/ceilings.txt" "$PY" "$REPO/bench/gpu_ceilings.py" "$WORK/ceilings.json"
  if [ "$RC" = 0 ]; then
    record ceilings PASS "$DUR" "$("$PY" -c 'import json,sys; j=json.load(open(sys.argv[1])); g=j["gemm"]; print("copy %.0f GB/s, SGEMM %.1f, TF32 %.1f, DGEMM %.1f TFLOP/s" % (j["copy"]["gbps"], g["sgemm"]["tflops"], g["tf32"]["tflops"], g["dgemm"]["tflops"]))' "$WORK/ceilings.json" 2>&1 | tail -1)"
  else
    record ceilings FAIL "$DUR" "exit $RC: $("$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["error"])' "$WORK/ceilings.json" 2>/dev/null || tail -1 "$REST/ceilings.txt")"
  fi
fi

# ---------------------------------------------------------------------------- b. GPU tests
# One process for every GPU test but the two that fill the card's memory, then one for those.
MEMFILL='CudaFit.OutOfMemoryIsACleanErrorAndTheLibraryRecovers:CudaReuse.KMeansPlusPlusFallsBackToTheHostWhenItsBuffersDoNotFit'
run_tests() {  # run_tests STAGE FILTER XML BUDGET MIN
  if [ -z "$TEST_CUDA" ]; then record "$1" FAIL 0 "no test_cuda binary"; return; fi
  skip_unless_time "$1" "$5" || return
  timed "$1" "$4" "$REST/$1.txt" "$WORK/bin/test_cuda" --gtest_filter="$2" --gtest_output="xml:$3"
  local key n s
  key="$(key_xml "$3")"
  n=$(echo "$key" | awk '{ print $1 + 0 }')
  s=$(echo "$key" | awk -F', ' '{ print $3 + 0 }')
  if [ ! -s "$3" ]; then  # killed or crashed before gtest wrote its XML: say how far it got
    record "$1" FAIL "$DUR" "exit $RC, no XML: $(awk '/^\[       OK \]/ { ok++ } /^\[  FAILED  \] [^ ]+ \(/ { bad++ }
      /^\[ RUN      \]/ { last = $4 } /^\[       OK \]|^\[  FAILED  \]|^\[  SKIPPED \]/ { last = "" }
      END { printf "%d passed, %d failed before it stopped%s", ok, bad, last != "" ? " in " last : "" }' "$REST/$1.txt")"
  elif [ "$RC" != 0 ]; then record "$1" FAIL "$DUR" "exit $RC; $key"
  elif [ "$n" = 0 ]; then record "$1" FAIL "$DUR" "no test ran"
  elif [ "$DRY" = 0 ] && [ "$s" = "$n" ]; then record "$1" FAIL "$DUR" "$key: the tests found no usable GPU ($(awk 'f { print; exit } /: Skipped$/ { f = 1 }' "$REST/$1.txt"))"
  else record "$1" PASS "$DUR" "$key"
  fi
}
if [ "$FAST" = 1 ]; then
  record tests SKIP 0 "--fast: no binaries"
  record tests_memory SKIP 0 "--fast: no binaries"
else
  run_tests tests "-$MEMFILL" "$WORK/tests_main.xml" 180 30
  run_tests tests_memory "$MEMFILL" "$WORK/tests_memory.xml" 60 20
fi

# ---------------------------------------------------------------------------- b2. kmeans::mpi on GPUs
# The NCCL combine: test_cuda's CudaNccl tests (the merge kernels against tree::NodeStack; a
# one-rank fit whose passes go through a real NCCL communicator, ncclCommInitAll on device 0,
# bit for bit against the in-memory CUDA fit; with 2+ GPUs the combine over all of them in one
# process), then the CLI where it has MPI: `kmeans fit --mpi --backend cuda` on 1 rank (mpirun,
# else an MPI singleton) with the NCCL combine, and on 2 ranks under mpirun (the host combine on
# one GPU: NCCL refuses two ranks on one device; NCCL with 2+ GPUs), each against the
# one-process CUDA fit byte for byte (centroids and labels files).
nccl_data() {  # nccl_data FILE: 13288 x 3 float32 rows around 5 centres (.npy, no numpy needed)
  "$PY" - "$1" <<'PYEOF'
import struct, sys
n, d, s, vals = 3 * 4096 + 1000, 3, 42, []
for i in range(n):
    for j in range(d):
        s = (s * 6364136223846793005 + 1442695040888963407) % 2**64
        vals.append((i % 5) * 4.0 + (s >> 11) / 2.0**53)
hdr = "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }" % (n, d)
hdr += " " * ((64 - (10 + len(hdr) + 1) % 64) % 64) + "\n"
with open(sys.argv[1], "wb") as f:
    f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr.encode() + struct.pack("<%df" % len(vals), *vals))
PYEOF
}
find_nccl_dir() {  # libnccl.so.2's folder (the library opens it with dlopen), or nothing
  local d f
  for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/local/cuda-*/lib64 \
           /usr/lib/x86_64-linux-gnu; do
    [ -e "$d/libnccl.so.2" ] && { echo "$d"; return; }
  done
  f="$(ldconfig -p 2>/dev/null | awk '/libnccl\.so\.2 / { print $NF; exit }')"
  [ -n "$f" ] && { dirname "$f"; return; }
  for d in $("$PY" -c 'import site; print(" ".join(site.getsitepackages()))' 2>/dev/null); do
    f="$(find "$d/nvidia" -name 'libnccl.so.2*' 2>/dev/null | head -1)"
    [ -n "$f" ] && { dirname "$f"; return; }
  done
}
run_nccl() {
  if [ "$FAST" = 1 ]; then record nccl SKIP 0 "--fast: no binaries"; return; fi
  if [ "$DRY" = 1 ]; then record nccl SKIP 0 "$GPU_SKIP"; return; fi
  if [ -z "$TEST_CUDA" ]; then record nccl FAIL 0 "no test_cuda binary"; return; fi
  skip_unless_time nccl 30 || return
  local t0 notes="" bad="" key n s d="$WORK/nccl" ngpu mpirun_cmd nccl_dir lib
  t0=$(date +%s.%N)
  mkdir -p "$d"
  nccl_dir="$(find_nccl_dir)"
  lib="$RUNLIB${nccl_dir:+:$nccl_dir}"
  timed nccl 60 "$REST/nccl.txt" env LD_LIBRARY_PATH="$lib" "$TEST_CUDA" --gtest_filter='CudaNccl.*' \
    --gtest_output="xml:$WORK/nccl_tests.xml"
  key="$(key_xml "$WORK/nccl_tests.xml")"
  n=$(echo "$key" | awk '{ print $1 + 0 }')
  s=$(echo "$key" | awk -F', ' '{ print $3 + 0 }')
  if [ "$RC" != 0 ] || [ "$n" = 0 ]; then bad="test_cuda CudaNccl.*: exit $RC, $key"
  else notes="CudaNccl.*: $key, libnccl.so.2 from ${nccl_dir:-nowhere}"
  fi
  [ "$n" != 0 ] && [ "$s" = "$n" ] && notes="$notes (all skipped: $(awk 'f { print; exit } /: Skipped$/ { f = 1 }' "$REST/nccl.txt"))"
  # The CLI over MPI, when it has MPI.
  local env_mpi=(env LD_LIBRARY_PATH="$lib" OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=2)
  local fit=(fit "$d/x.npy" --k 5 --init random --seed 3 --backend cuda --threads 2)
  if [ -z "$CLI" ]; then notes="$notes; CLI: no kmeans binary"
  elif ! nccl_data "$d/x.npy" >> "$REST/nccl.txt" 2>&1; then bad="$bad; could not write the data ($PY)"
  elif ! "${env_mpi[@]}" "$CLI" "${fit[@]}" --centroids-out "$d/c1.npy" --labels-out "$d/l1.npy" >> "$REST/nccl.txt" 2>&1; then
    bad="$bad; the one-process CUDA fit failed: $(tail -1 "$REST/nccl.txt")"
  elif "${env_mpi[@]}" "$CLI" fit "$d/x.npy" --k 5 --mpi --backend cpu --max-iter 0 2>&1 | grep -q 'built without MPI'; then
    notes="$notes; CLI: built without MPI"
  else
    ngpu=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU')
    mpirun_cmd=()
    command -v mpirun > /dev/null 2>&1 && mpirun_cmd=(mpirun --oversubscribe -np 1)
    local np combine out
    for np in 1 2; do
      if [ "$np" = 2 ] && [ ${#mpirun_cmd[@]} = 0 ]; then notes="$notes; np 2: no mpirun"; continue; fi
      combine=nccl
      [ -z "$nccl_dir" ] && combine=host  # no NCCL here: the CUDA ranks combine on the host
      [ "$np" = 2 ] && [ "$ngpu" -lt 2 ] && combine=host
      [ "$np" = 2 ] && mpirun_cmd=(mpirun --oversubscribe -np 2)
      out="$d/np$np.json"
      if ! timeout 60 "${env_mpi[@]}" KMEANS_MPI_COMBINE=$combine "${mpirun_cmd[@]}" "$CLI" "${fit[@]}" --mpi --json \
           --centroids-out "$d/c$np.mpi.npy" --labels-out "$d/l$np.mpi.npy" > "$out" 2>> "$REST/nccl.txt"; then
        bad="$bad; np $np ($combine): $(tail -1 "$REST/nccl.txt" | cut -c1-160)"
      elif ! grep -q "\"combine\": *\"$combine\"" "$out"; then
        bad="$bad; np $np: the JSON does not report combine $combine"
      elif cmp -s "$d/c1.npy" "$d/c$np.mpi.npy" && cmp -s "$d/l1.npy" "$d/l$np.mpi.npy"; then
        notes="$notes; np $np ($combine${mpirun_cmd[0]:+, mpirun}): same bytes as one process"
      else
        bad="$bad; np $np ($combine): centroids or labels differ from the one-process fit"
      fi
      cat "$out" >> "$REST/nccl.txt"
    done
  fi
  log_output "nccl ($REST/nccl.txt)" "$REST/nccl.txt"
  if [ -n "$bad" ]; then record nccl FAIL "$(secs_since "$t0")" "${bad#; }; $notes"
  elif [ "$n" != 0 ] && [ "$s" = "$n" ] && ! echo "$notes" | grep -q 'same bytes'; then
    record nccl SKIP "$(secs_since "$t0")" "$notes"
  else record nccl PASS "$(secs_since "$t0")" "$notes"
  fi
}
run_nccl

# ---------------------------------------------------------------------------- c. sanitizers
# The subset covers every __global__ kernel at least once:
#   kernel (file)                                            test in the subset
#   assign_tile_kernel<float>, partials path (assign.cuh)     Shapes/CudaSinglePass.FloatMatchesReference/n1000_d2_k3_uniform
#   assign_tile_kernel<double>, several centroid tiles,       Shapes/CudaSinglePass.WeightedDoubleMatchesReference/n8000_d16_k1000_uniform
#     weights; sort path: iota_kernel, cluster_offsets_kernel,
#     sorted_walk_kernel (canonical.cuh), cub radix sort; every
#     pass: leaf_sse_kernel, tree_group_kernel, finish_leaves_kernel (canonical.cuh)
#   gemm_argmin_kernel<float>, centre_centroids_kernel        CudaGemm.DataFarFromTheOriginFloat (GEMM path: needs cuBLAS)
#     (assign.cuh); column_sums_kernel, column_means_kernel
#     (update.cuh, the data mean)
#   gemm_argmin_kernel<double>, centre_centroids_kernel<double> CudaGemm.DataFarFromTheOriginDouble
#   gemm_bound_kernel (gemm_rank.cuh); the two product buffers CudaGemmArgmin.ManyChunksThroughTwoBuffersMatchOneChunk
#     on two streams, many chunks, candidate-list overflow
#   distances_kernel (distances.cuh, transform); greedy        CudaReuse.PartialsPathAllocatesNothingOnRepeatedCalls
#     k-means++ on the GPU; graph replay
#   block_prefix, block_offsets, add_offsets, search,         CudaReuse.EngineDataOperationsMatchTheHost
#     first_closest, trial_distances, trial_block_sums,
#     choose_trial, take_trial, lower_closest, nearest,
#     block_column_sums, gather_rows (init.cuh)
#   first_out_of_range_kernel, max_abs_kernel (validate.cuh)  CudaFit.DeviceDataOutsideTheExactRangeIsRefusedClearly
#   first_out_of_range_kernel on NaN/Inf; device weights        CudaFit.NonFiniteDeviceDataIsRejected
#   normalise_rows_kernel (cuda/sphere.cu, metric = cosine)   CudaCosine.DeviceZeroRowsAndNaNAreNamed
#   assign_tile_kernel<float>: the ranking's warp-wide direct CudaTileRank.DuplicateCentroidsAndKEqualsN
#     recheck (duplicate centroids: exact ties), k = n
#   mma_centre_kernel, mma_assign_kernel (mma_rank.cuh: TF32  CudaMma.SmallPassUnderSanitizers
#     path; candidate lists and their flushes)
#   cub::DeviceSegmentedReduce (every pass)                   all of the above
#   subtile_fold_kernel (canonical.cuh, small n partials)     Shapes/CudaSinglePass.FloatMatchesReference/n1000_d2_k3_uniform
#   fold_totals_kernel, node rows of every path (shard engine) CudaCanonical.RebindAtTheSamePointerGivesAFreshEnginesBits
#   start_kernel, merge_kernel, fold_kernel (nccl_combine.cu, CudaNccl.MergeKernelsGiveTheNodeStackBits
#     kmeans::mpi's NCCL combine, without NCCL)
#   label_count_kernel (device_out.cu, device_labels_out;     CudaDeviceOut/0.WeightedSizesKeepThePointOrderBits
#     its device-to-device copy and event waits)
#   probe_kernel (availability.cu)                            none: never launched (cudaFuncGetAttributes only)
SUBSET='CudaCanonical.RebindAtTheSamePointerGivesAFreshEnginesBits:Shapes/CudaSinglePass.FloatMatchesReference/n1000_d2_k3_uniform:Shapes/CudaSinglePass.WeightedDoubleMatchesReference/n8000_d16_k1000_uniform:CudaGemm.DataFarFromTheOriginFloat:CudaGemm.DataFarFromTheOriginDouble:CudaReuse.PartialsPathAllocatesNothingOnRepeatedCalls:CudaReuse.EngineDataOperationsMatchTheHost:CudaFit.NonFiniteDeviceDataIsRejected:CudaFit.DeviceDataOutsideTheExactRangeIsRefusedClearly:CudaCosine.DeviceZeroRowsAndNaNAreNamed:CudaGpuStream.SixSmallChunksWeighted:CudaNccl.MergeKernelsGiveTheNodeStackBits:CudaTileRank.DuplicateCentroidsAndKEqualsN:CudaGemmArgmin.ManyChunksThroughTwoBuffersMatchOneChunk:CudaMma.SmallPassUnderSanitizers:CudaDeviceOut/0.WeightedSizesKeepThePointOrderBits'
SANITIZER="$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)"
# The filters must name tests that exist: a renamed test would silently drop out of the subset.
if [ -n "$TEST_CUDA" ]; then
  t0=$(date +%s.%N)
  bad=""
  for f in $(echo "$SUBSET:$MEMFILL" | tr ':' ' '); do
    c=$("$WORK/bin/test_cuda" --gtest_list_tests --gtest_filter="$f" 2>/dev/null | grep -c '^  ')
    [ "$c" = 1 ] || bad="$bad $f($c)"
  done
  if [ -z "$bad" ]; then record filters PASS "$(secs_since "$t0")" "the $(echo "$SUBSET" | tr ':' '\n' | wc -l) sanitizer tests and the 2 memory-filling tests exist"
  else record filters FAIL "$(secs_since "$t0")" "filter entries matching no test or several:$bad"
  fi
fi
run_sanitizer() {  # run_sanitizer TOOL BUDGET MIN
  local stage="sanitizer_$1" extra=()
  if [ "$DRY" = 1 ]; then record "$stage" SKIP 0 "$GPU_SKIP"; return; fi
  if [ -z "$TEST_CUDA" ]; then record "$stage" FAIL 0 "no test_cuda binary"; return; fi
  if [ ! -x "$SANITIZER" ]; then record "$stage" FAIL 0 "no compute-sanitizer"; return; fi
  skip_unless_time "$stage" "$3" || return
  [ "$1" = memcheck ] && extra=(--leak-check full)
  timed "$stage" "$2" "$REST/$stage.txt" env LD_LIBRARY_PATH="$RUNLIB" "$SANITIZER" --tool "$1" \
    --error-exitcode 99 "${extra[@]}" "$TEST_CUDA" --gtest_filter="$SUBSET"
  local summary ok
  summary="$(grep -Eo '[A-Z]+ SUMMARY: .*' "$REST/$stage.txt" | tail -2 | tr '\n' ';' | sed 's/;$//; s/;/; /g')"
  ok=$(grep -c '^\[       OK \]' "$REST/$stage.txt")
  if [ "$RC" = 0 ] && [ "$ok" = 0 ]; then record "$stage" FAIL "$DUR" "no test passed under $1 (skipped: no usable GPU?); ${summary:-no summary}"
  elif [ "$RC" = 0 ]; then record "$stage" PASS "$DUR" "${summary:-no summary}; $ok tests passed"
  elif [ "$RC" = 124 ]; then record "$stage" FAIL "$DUR" "timed out after $ok tests; ${summary:-no summary}"
  else record "$stage" FAIL "$DUR" "exit $RC; ${summary:-no summary}; $ok tests passed; $(first_error "$REST/$stage.txt")"
  fi
}
run_sanitizer memcheck 90 25
run_sanitizer racecheck 90 25

# ---------------------------------------------------------------------------- d. benchmarks
# bench_kmeans on the CUDA backend; the report sets each against this run's ceilings.
run_bench() {  # run_bench NAME BUDGET MIN ARGS...
  local name="$1" budget="$2" min="$3"
  shift 3
  if [ -z "$BENCH" ]; then record "bench_$name" FAIL 0 "no bench_kmeans binary"; return; fi
  skip_unless_time "bench_$name" "$min" || return
  timed "bench_$name" "$budget" "$REST/bench_$name.txt" "$WORK/bin/bench_kmeans" --no-peers \
    --json "$WORK/bench_$name.json" "$@"
  # Passed when the JSON holds a timed row of the backend that matters: cuda, or cpu in a dry run.
  local want=cuda note
  [ "$DRY" = 1 ] && want=cpu
  note="$("$PY" -c 'import json, sys
rows = json.load(open(sys.argv[1])).get("rows", [])
mine = [r for r in rows if r.get("kind") == "ours" and r.get("backend") == sys.argv[2]]
ok = [r for r in mine if "s_per_iter" in r]
if ok:
    print("%s %.3e s/iter, %s it" % (sys.argv[2], ok[0]["s_per_iter"], ok[0].get("n_iter")))
else:
    print("no timed %s row: %s" % (sys.argv[2], mine[0].get("error", "?") if mine else "none"))
    sys.exit(1)' "$WORK/bench_$name.json" "$want" 2>&1 | tail -1)"
  local ok=$?
  if [ "$RC" = 0 ] && [ $ok = 0 ]; then record "bench_$name" PASS "$DUR" "$note"
  elif [ "$RC" = 0 ]; then record "bench_$name" FAIL "$DUR" "$note"
  else record "bench_$name" FAIL "$DUR" "exit $RC: $(tail -1 "$REST/bench_$name.txt")"
  fi
}
if [ "$FAST" = 1 ]; then
  record bench_classic SKIP 0 "--fast: no binaries"
else
  # The classic study (4000 x 3, k = 4, float64): every backend present (the CPU ones in a dry run).
  run_bench classic 60 15
fi
if [ "$DRY" = 1 ]; then
  for n in classic_devloop classic_hostloop bw fma faiss stream; do
    record "bench_$n" SKIP 0 "$GPU_SKIP"
  done
else
  # The classic study's CUDA fit by the device loop (the default) and by the host loop
  # (KMEANS_CUDA_DEVICE_LOOP=0): the per-iteration time each round trip costs (NOTES 14:20 UTC).
  run_bench classic_devloop 30 10 --budget 1 --case n=4000,d=3,k=4,dtype=float64,iters=100,backend=cuda
  KMEANS_CUDA_DEVICE_LOOP=0 run_bench classic_hostloop 30 10 --budget 1 \
    --case n=4000,d=3,k=4,dtype=float64,iters=100,backend=cuda
  run_bench bw 60 20 --budget 3 --case n=10000000,d=16,k=16,dtype=float32,iters=20,backend=cuda
  run_bench fma 60 20 --budget 3 --case n=1000000,d=128,k=1024,dtype=float32,iters=20,backend=cuda
  run_bench faiss 90 30 --budget 3 --case n=1000000,d=256,k=20000,dtype=float32,iters=3,backend=cuda
  # Host data streamed through the GPU (8.6 GB generated in host memory; flash-kmeans: 159.5 ms
  # per iteration on an H200): time per pass and host-to-device rate vs the pinned-copy rate.
  run_bench stream 150 60 --budget 1 --case n=16800000,d=128,k=4096,dtype=float32,iters=3,backend=cuda,stream=1
fi

# ---------------------------------------------------------------------------- e. peers
t0=$(date +%s.%N)
if [ ! -d "$KIT/wheels" ]; then
  record peers_api SKIP 0 "no $KIT/wheels (run --prebuild)"
else
  "$PY" "$REPO/bench/gpu_peers.py" --check --wheels "$KIT/wheels" > "$REST/peers_api.txt" 2>&1
  rc=$?
  cat "$REST/peers_api.txt" >> "$LOG"
  if [ $rc = 0 ]; then record peers_api PASS "$(secs_since "$t0")" "$(tail -1 "$REST/peers_api.txt" | sed 's/^gpu_peers.py: //')"
  else record peers_api FAIL "$(secs_since "$t0")" "$(head -1 "$REST/peers_api.txt")"
  fi
fi
if [ "$DRY" = 1 ]; then
  record peers SKIP 0 "$GPU_SKIP"
elif [ -z "$CLI" ]; then
  record peers FAIL 0 "no kmeans CLI binary"
elif skip_unless_time peers 45; then
  l=$(left); [ "$l" -gt 150 ] && l=150
  mkdir -p "$WORK/peers"
  # gpu_peers.py starts nothing new in its last 10 s: it ends before the stage's limit.
  timed peers "$l" "$REST/peers.txt" "$PY" "$REPO/bench/gpu_peers.py" --kmeans "$WORK/bin/kmeans" \
    --out "$WORK/peers.json" --work "$WORK/peers" --wheels "$KIT/wheels" --deadline "$((l - 10))" \
    --case 1000000,128,1024,20 --case 1000000,256,20000,3 --case 10000000,16,16,20
  if [ "$RC" = 0 ]; then record peers PASS "$DUR" "$(grep -c '"ok": true' "$WORK/peers.json") results, $(grep -c '"ok": false' "$WORK/peers.json") not run"
  else record peers FAIL "$DUR" "exit $RC: $(tail -1 "$REST/peers.txt")"
  fi
fi

# ---------------------------------------------------------------------------- e2. Python on the GPU
# The Python package's device-array path (CuPy / PyTorch CUDA tensors in place, DLPack and the
# CUDA array interface): the extension is built here for this python3 (offline: pybind11 and
# scikit-build-core come from the image), then python/tests/gpu_check.py runs (exit 77: no GPU).
if [ "$DRY" = 1 ]; then
  record python_gpu SKIP 0 "$GPU_SKIP"
elif ! "$PY" -c "import pybind11, scikit_build_core, numpy" > /dev/null 2>&1; then
  record python_gpu SKIP 0 "$PY lacks pybind11, scikit-build-core or numpy: the extension cannot be built offline"
elif skip_unless_time python_gpu 90; then
  mkdir -p "$WORK/pysite"
  timed python_gpu 170 "$REST/python_gpu.txt" bash -c '
    CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=90" "$1" -m pip install -q --no-build-isolation \
      --no-deps --no-index --target "$2" "$3" &&
    PYTHONPATH="$2" "$1" "$3/python/tests/gpu_check.py"' _ "$PY" "$WORK/pysite" "$REPO"
  if [ "$RC" = 0 ]; then record python_gpu PASS "$DUR" "$(tail -1 "$REST/python_gpu.txt")"
  elif [ "$RC" = 77 ]; then record python_gpu FAIL "$DUR" "gpu_check.py found no GPU: $(tail -1 "$REST/python_gpu.txt")"
  else record python_gpu FAIL "$DUR" "exit $RC: $(tail -1 "$REST/python_gpu.txt")"
  fi
fi

# ---------------------------------------------------------------------------- f. SASS
# The hot kernels' instruction mix, against what the design expects: the tile kernel reads its
# centroid tile with 16-byte shared loads (LDS.128) and spends them on FFMAs (kRegTile = 16
# per coordinate), the tile and GEMM-argmin kernels use no tensor cores (HMMA: the GEMM path's
# products are cuBLAS SGEMM, outside our binary), and the TF32 path's mma_assign_kernel does
# (HMMA, fed by cp.async: LDGSTS).
SASS_OUT="$OUT/sass.txt"
CUOBJDUMP=""
for c in "$(command -v cuobjdump 2>/dev/null)" /usr/local/cuda/bin/cuobjdump "$KIT/tools/bin/cuobjdump"; do
  [ -n "$c" ] && [ -x "$c" ] && { CUOBJDUMP="$c"; break; }
done
t0=$(date +%s.%N)
if [ -z "$TEST_CUDA" ]; then
  record sass SKIP 0 "no test_cuda binary"
  echo "SASS: not dumped: no test_cuda binary" > "$SASS_OUT"
elif [ -z "$CUOBJDUMP" ]; then
  record sass FAIL 0 "no cuobjdump (toolkit or $KIT/tools/bin)"
  echo "SASS: not dumped: no cuobjdump" > "$SASS_OUT"
else
  # nvdisasm next to cuobjdump (the kit's tools) or the toolkit's
  PATH="$(dirname "$CUOBJDUMP"):/usr/local/cuda/bin:$PATH" "$CUOBJDUMP" -sass "$TEST_CUDA" > "$WORK/sass_all.txt" 2> "$WORK/sass_err.txt"
  rc=$?
  "$CUOBJDUMP" -lelf "$TEST_CUDA" > "$WORK/elf.txt" 2>&1
  {
    echo "SASS of $TEST_CUDA ($BIN_FROM) by $CUOBJDUMP ($("$CUOBJDUMP" --version 2>&1 | grep -m1 -o 'release [0-9.]*'))"
    echo "cubins: $(awk '{ print $NF }' "$WORK/elf.txt" | tr '\n' ' ')"
    sass_report "$WORK/sass_all.txt" "$rc"
  } > "$SASS_OUT"
  cp "$WORK/elf.txt" "$REST/cubins.txt"
  gzip -c "$WORK/sass_all.txt" > "$REST/sass_all.txt.gz"
  cat "$SASS_OUT" >> "$LOG"
  nf=$(awk '/^checks failed:/ { print $3 }' "$SASS_OUT")
  if [ "${nf:-1}" = 0 ] && [ $rc = 0 ]; then record sass PASS "$(secs_since "$t0")" "$(grep -c '^PASS' "$SASS_OUT") checks passed (sass.txt)"
  else record sass FAIL "$(secs_since "$t0")" "${nf:-?} checks failed: $(grep -m1 '^FAIL\|failed' "$SASS_OUT")"
  fi
fi
[ -f "$SASS_OUT" ] || echo "SASS: not dumped" > "$SASS_OUT"

# ---------------------------------------------------------------------------- g. if time is left
run_sanitizer initcheck 60 25
run_sanitizer synccheck 60 25
NCU="$(command -v ncu || echo /usr/local/cuda/bin/ncu)"
run_ncu() {  # run_ncu NAME KERNEL CASE
  local stage="ncu_$1"
  if [ "$DRY" = 1 ]; then record "$stage" SKIP 0 "$GPU_SKIP"; return; fi
  if [ -z "$BENCH" ] || [ ! -x "$NCU" ]; then record "$stage" FAIL 0 "no bench_kmeans or no ncu"; return; fi
  skip_unless_time "$stage" 30 || return
  timed "$stage" 60 "$REST/$stage.txt" env LD_LIBRARY_PATH="$RUNLIB" "$NCU" --clock-control none \
    --set full -k "regex:$2" -c 1 -o "$REST/$stage" -f "$BENCH" --no-peers --budget 0.1 --case "$3"
  if [ "$RC" = 0 ] && [ -s "$REST/$stage.ncu-rep" ]; then
    "$NCU" --import "$REST/$stage.ncu-rep" --page details > "$REST/$stage.details.txt" 2>&1
    record "$stage" PASS "$DUR" "$(grep -m1 -E 'Duration' "$REST/$stage.details.txt" | tr -s ' ')"
  else
    record "$stage" FAIL "$DUR" "exit $RC: $(grep -m1 -E 'No kernels' "$REST/$stage.txt" || first_error "$REST/$stage.txt")"
  fi
}
run_ncu assign assign_tile_kernel n=2000000,d=32,k=64,dtype=float32,iters=2,backend=cuda
run_ncu gemm gemm_argmin_kernel n=1000000,d=128,k=1024,dtype=float32,iters=2,backend=cuda

# ---------------------------------------------------------------------------- report
t0=$(date +%s.%N)
{
  echo "mode=$MODE"; echo "deadline=$DEADLINE"; echo "elapsed=$SECONDS"; echo "binaries=$BIN_FROM"
  echo "runlib=$RUNLIB"; echo "cublas=$(cat "$WORK/cublas.txt")"; echo "kit=$KIT"
  echo "commit=$(git -C "$REPO" rev-parse --short=12 HEAD 2>/dev/null || awk '/^commit:/ { print $2 }' "$KIT/manifest.txt" 2>/dev/null)"
  echo "source_hash=$(source_hash)"; echo "host=$(uname -srm)"; echo "cpus=$JOBS"
  echo "subset=$SUBSET"
} > "$WORK/run.env"
if "$PY" "$REPO/bench/gpu_report.py" --work "$WORK" --out "$OUT" >> "$LOG" 2>&1; then
  record report PASS "$(secs_since "$t0")" "summary.txt, tests.xml, bench.json, sanitizers.txt, machine.json"
else
  record report FAIL "$(secs_since "$t0")" "gpu_report.py failed (log.txt): plain summary instead"
  { echo "kmeans GPU kit ($MODE): gpu_report.py failed, stages only"; column -t -s $'\t' "$STAGES"; } > "$OUT/summary.txt"
  for f in tests.xml bench.json sanitizers.txt machine.json; do
    [ -f "$OUT/$f" ] || echo "not written: gpu_report.py failed (see log.txt)" > "$OUT/$f"
  done
fi
cp "$STAGES" "$REST/stages.tsv"
cp "$WORK"/*.json "$WORK"/*.xml "$WORK/run.env" "$REST/" 2>/dev/null
tar czf "$OUT/rest.tar.gz" -C "$WORK" rest || record archive FAIL 0 "tar failed"
# A file comes back from the GPU machine only under 16 MiB: the profiles go first if it is over.
if [ "$(stat -c %s "$OUT/rest.tar.gz")" -gt $((15 << 20)) ]; then
  rm -f "$REST"/*.ncu-rep
  tar czf "$OUT/rest.tar.gz" -C "$WORK" rest
  say "rest.tar.gz was over 15 MiB: written again without the .ncu-rep files"
fi

# The output rule: exactly these 8 plain files directly in OUT, nothing else.
WANT="bench.json log.txt machine.json rest.tar.gz sanitizers.txt sass.txt summary.txt tests.xml"
HAVE="$(cd "$OUT" && find . -mindepth 1 -printf '%P\n' | LC_ALL=C sort | tr '\n' ' ' | sed 's/ $//')"
EXTRA="$(cd "$OUT" && find . -mindepth 1 \( -type d -o ! -type f \) -printf '%P ' )"
BIG="$(cd "$OUT" && find . -mindepth 1 -type f -size +15M -printf '%P ')"  # log.txt still grows
if [ -n "$BIG" ]; then
  record outputs FAIL 0 "over 15 MiB (a file comes back from the GPU machine under 16 MiB): $BIG"
elif [ "$HAVE" = "$WANT" ] && [ -z "$EXTRA" ]; then
  record outputs PASS 0 "8 files, no folders ($(du -sk "$OUT" | cut -f1) KiB)"
else
  record outputs FAIL 0 "OUT holds [$HAVE]${EXTRA:+, not plain files: $EXTRA}; want [$WANT]"
fi
{
  echo
  echo "stages (status, seconds, note), $SECONDS s of ${DEADLINE}s used:"
  awk -F'\t' '{ printf "  %-20s %-5s %7s  %s\n", $1, $2, $3, $4 }' "$STAGES"
  echo "failed stages: $FAILED"
} >> "$OUT/summary.txt"
echo >> "$LOG"
cat "$OUT/summary.txt" >> "$LOG"
echo
cat "$OUT/summary.txt"
[ "$FAILED" -gt 100 ] && FAILED=100
exit "$FAILED"
