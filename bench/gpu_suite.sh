#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# One-shot GPU validation: build, machine description, every test, compute-sanitizer over the
# CUDA tests, the benchmark table and grid, and a summary table - all written under OUT_DIR.
#
# usage: bench/gpu_suite.sh OUT_DIR [--dry] [--quick] [--build-dir DIR] [--archs "90"]
#   --dry        no GPU work: build, CPU tests, GPU tests (they skip), no sanitizers, CPU
#                benchmark only. Chosen automatically when nvidia-smi finds no GPU.
#   --quick      the benchmark grid's reduced form (bench_kmeans --grid --quick)
#   --build-dir  where to build (default: $TMPDIR/kmeans-gpu-suite-build, outside OUT_DIR so
#                the results folder stays small)
#   --archs      CMAKE_CUDA_ARCHITECTURES (default 90: H100/H200; env KMEANS_CUDA_ARCHS too)
# Every step runs under its own time limit and the suite goes on after a failure; the exit
# status is the number of failed steps (0 = all passed or skipped). Budget on a GPU: about
# 8 minutes in all (build ~2, tests ~1, sanitizers ~3, benchmark ~2).
set -u

usage() { awk 'NR >= 3 && /^#/ { sub(/^# ?/, ""); print; next } NR >= 3 { exit }' "$0"; }

OUT=""
DRY=0
QUICK=0
BUILD_DIR="${TMPDIR:-/tmp}/kmeans-gpu-suite-build"
ARCHS="${KMEANS_CUDA_ARCHS:-90}"
while [ $# -gt 0 ]; do
  case "$1" in
    --dry) DRY=1 ;;
    --quick) QUICK=1 ;;
    --build-dir) shift; BUILD_DIR="${1:?--build-dir needs a folder}" ;;
    --archs) shift; ARCHS="${1:?--archs needs a value}" ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "gpu_suite.sh: error: unknown option $1" >&2; usage >&2; exit 2 ;;
    *) if [ -z "$OUT" ]; then OUT="$1"; else echo "gpu_suite.sh: error: extra argument $1" >&2; exit 2; fi ;;
  esac
  shift
done
[ -n "$OUT" ] || { echo "gpu_suite.sh: error: OUT_DIR is required" >&2; usage >&2; exit 2; }

REPO="$(cd "$(dirname "$0")/.." && pwd)"
mkdir -p "$OUT" || { echo "gpu_suite.sh: error: cannot create $OUT" >&2; exit 2; }
OUT="$(cd "$OUT" && pwd)"
JOBS="$(nproc 2>/dev/null || echo 2)"
SUMMARY="$OUT/summary.tsv"
printf 'step\tstatus\tseconds\tkey\n' > "$SUMMARY"
FAILED=0

if [ "$DRY" = 0 ] && ! nvidia-smi -L > /dev/null 2>&1; then
  echo "gpu_suite.sh: nvidia-smi finds no GPU: running the dry suite" | tee "$OUT/note.txt"
  DRY=1
fi

# record STEP STATUS SECONDS KEY
record() {
  printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >> "$SUMMARY"
  [ "$2" = FAIL ] && FAILED=$((FAILED + 1))
  echo "== $1: $2 (${3}s) $4"
}

# step NAME LIMIT_SECONDS LOG KEY_FUNCTION -- command...: runs the command with a time limit,
# output to LOG, then records PASS/FAIL (TIMEOUT counts as FAIL) and the key number.
step() {
  local name="$1" limit="$2" log="$3" keyfn="$4"
  shift 5
  echo "== $name: $*"
  local t0 t1 rc status
  t0=$(date +%s.%N)
  timeout --kill-after=10 "$limit" "$@" > "$log" 2>&1
  rc=$?
  t1=$(date +%s.%N)
  if [ $rc = 0 ]; then status=PASS; elif [ $rc = 124 ] || [ $rc = 137 ]; then status=FAIL; echo "timed out after ${limit}s" >> "$log"; else status=FAIL; fi
  record "$name" "$status" "$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}')" "$($keyfn "$log" $rc)"
}

key_rc() { echo "exit $2"; }
key_ctest() { grep -Eo '[0-9]+% tests passed, [0-9]+ tests failed out of [0-9]+' "$1" | tail -1 || echo "exit $2"; }
key_skipped() {
  local s
  s=$(grep -c '(Skipped)' "$1" 2>/dev/null)
  echo "$(key_ctest "$1" "$2"); ${s:-0} skipped"
}
key_sanitizer() { grep -Eo 'ERROR SUMMARY: [0-9]+ errors?' "$1" | tail -1 || echo "exit $2"; }
key_bench() {  # the classic study's s/iter of our GPU row (CPU row in a dry run)
  local row
  row=$(grep -E '^ours: cuda ' "$1" | head -1)
  [ -n "$row" ] || row=$(grep -E '^ours: cpu ' "$1" | head -1)
  if [ -n "$row" ]; then echo "$row" | awk '{print $2 " s/iter " $4}'; else echo "exit $2"; fi
}
key_init() {  # seconds of k-means++ per backend, e.g. "cuda 0.012 cpu 1.9"
  local v
  v=$(awk '/^Initialisation/{on=1; next} on && NF == 3 && $1 != "backend" {printf "%s %s ", $1, $2}' "$1")
  [ -n "$v" ] && echo "$v" || echo "exit $2"
}
key_grid() { if [ -s "$OUT/grid.json" ]; then echo "grid.json $(wc -c < "$OUT/grid.json") bytes"; else echo "no grid.json; exit $2"; fi; }

# ---- machine -------------------------------------------------------------------------------
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "host: $(uname -a)"
  echo "cpus: $JOBS"
  echo "repo: $REPO ($(git -C "$REPO" rev-parse --short=12 HEAD 2>/dev/null || echo 'no commit'))"
  echo "mode: $([ "$DRY" = 1 ] && echo dry || echo gpu), CMAKE_CUDA_ARCHITECTURES=$ARCHS"
  echo; echo "---- nvidia-smi"; nvidia-smi 2>&1 || echo "(nvidia-smi failed)"
  echo; echo "---- nvidia-smi -q (clocks, memory)"
  nvidia-smi -q -d CLOCK,MEMORY 2>&1 | head -60 || true
  echo; echo "---- nvcc"; (nvcc --version || /usr/local/cuda/bin/nvcc --version) 2>&1
  echo; echo "---- cmake"; cmake --version 2>&1 | head -1
} > "$OUT/machine.txt" 2>&1
record machine PASS 0 "machine.txt"

# ---- build ---------------------------------------------------------------------------------
GEN=()
command -v ninja > /dev/null 2>&1 && GEN=(-G Ninja)
step configure 240 "$OUT/configure.log" key_rc -- \
  cmake -S "$REPO" -B "$BUILD_DIR" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CUDA_ARCHITECTURES="$ARCHS" -DKMEANS_BUILD_TESTS=ON -DKMEANS_BUILD_BENCH=ON
step build 900 "$OUT/build.log" key_rc -- nice cmake --build "$BUILD_DIR" -j "$JOBS"
BUILT=1
[ -d "$BUILD_DIR" ] && [ -f "$BUILD_DIR/CMakeCache.txt" ] || BUILT=0

# ---- tests ---------------------------------------------------------------------------------
if [ "$BUILT" = 1 ]; then
  step ctest_cpu 600 "$OUT/ctest_cpu.log" key_ctest -- \
    ctest --test-dir "$BUILD_DIR" -LE gpu --output-on-failure -j "$JOBS" --timeout 300
  # Serial: the GPU tests include an out-of-memory test that fills the device.
  step ctest_gpu 300 "$OUT/ctest_gpu.log" key_skipped -- \
    ctest --test-dir "$BUILD_DIR" -L gpu --output-on-failure --timeout 240
else
  record ctest_cpu FAIL 0 "not built"
  record ctest_gpu FAIL 0 "not built"
fi

# ---- compute-sanitizer ---------------------------------------------------------------------
# The build's own binaries (the install test copies bench_kmeans elsewhere in the tree).
find_binary() {
  local want="$BUILD_DIR/$1"
  if [ -x "$want" ]; then echo "$want"; else
    find "$BUILD_DIR" -name "$(basename "$1")" -type f -perm -u+x -not -path '*install*' 2>/dev/null | head -1
  fi
}
TEST_CUDA="$(find_binary tests/test_cuda)"
SANITIZER="$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)"
# One shape per path (partials, sort, GEMM, several centroid tiles), the GEMM path's centred
# ranking far from the origin, plus the device-input and error tests: the sanitizers slow
# kernels 10-100x, so not the whole suite.
FILTER='Shapes/CudaSinglePass.FloatMatchesReference/n1000_d2_k3_*:Shapes/CudaSinglePass.DoubleMatchesReference/n6000_d15_k129_*:Shapes/CudaSinglePass.FloatMatchesReference/n5000_d32_k128_*:Shapes/CudaSinglePass.WeightedDoubleMatchesReference/n8000_d16_k1000_*:CudaGemm.DataFarFromTheOriginFloat:CudaFit.DevicePointerInputEqualsHostInput:CudaFit.NonFiniteDeviceDataIsRejected:CudaFit.ChangingKRecapturesTheGraph:CudaReuse.EngineDataOperationsMatchTheHost:CudaReuse.PartialsPathAllocatesNothingOnRepeatedCalls:CudaReuse.DeviceInputAtANewAddressAndWeightsComingAndGoing'
for tool in memcheck racecheck synccheck initcheck; do
  if [ "$DRY" = 1 ]; then
    record "sanitizer_$tool" SKIP 0 "dry run: needs a GPU"
  elif [ -z "$TEST_CUDA" ] || [ ! -x "$SANITIZER" ]; then
    record "sanitizer_$tool" FAIL 0 "missing test_cuda or compute-sanitizer"
  else
    extra=()
    [ "$tool" = memcheck ] && extra=(--leak-check full)
    step "sanitizer_$tool" 150 "$OUT/sanitizer_$tool.log" key_sanitizer -- \
      "$SANITIZER" --tool "$tool" --error-exitcode 1 "${extra[@]}" "$TEST_CUDA" \
      --gtest_filter="$FILTER"
  fi
done

# ---- benchmark -----------------------------------------------------------------------------
BENCH="$(find_binary bench/bench_kmeans)"
if [ -z "$BENCH" ]; then
  record bench_table FAIL 0 "bench_kmeans not built"
  record bench_grid FAIL 0 "bench_kmeans not built"
else
  # Without a GPU bench_kmeans finds no CUDA device and runs the CPU backends only.
  step bench_table 180 "$OUT/bench_table.txt" key_bench -- "$BENCH"
  GRID=(--grid --json "$OUT/grid.json")
  [ "$QUICK" = 1 ] || [ "$DRY" = 1 ] && GRID+=(--quick)
  step bench_grid 300 "$OUT/bench_grid.txt" key_grid -- "$BENCH" "${GRID[@]}"
  # Initialisation on each backend (k-means++ is the default init; on the GPU it stays there).
  INIT_CASE="n=1000000,d=32,k=256,iters=3,init=k-means++"
  [ "$QUICK" = 1 ] || [ "$DRY" = 1 ] && INIT_CASE="n=100000,d=16,k=64,iters=3,init=k-means++"
  step bench_init 240 "$OUT/bench_init.txt" key_init -- "$BENCH" --case "$INIT_CASE" --no-peers \
    --json "$OUT/init.json"
fi

# ---- summary -------------------------------------------------------------------------------
echo
echo "kmeans GPU suite ($([ "$DRY" = 1 ] && echo dry || echo gpu)) - results in $OUT"
column -t -s $'\t' "$SUMMARY" 2>/dev/null || cat "$SUMMARY"
echo "failed steps: $FAILED"
exit "$FAILED"
