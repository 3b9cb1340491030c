#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A CUDA-enabled build on a machine without CUDA: checks that no CUDA library is a load-time
# dependency (readelf), then installs the build, hides the CUDA toolkit and any NVIDIA driver
# in a private mount namespace (unshare -m), and runs the installed CLI and a consumer app
# configured against the installed package there: CPU work runs, and Backend::Cuda says why not.
# usage: hidden_cuda.sh needed|hidden BUILD_DIR SOURCE_DIR WORK_DIR GENERATOR CXX
# Exit 77 (ctest: skipped) when mount namespaces are not permitted here.
set -euo pipefail
mode=$1 build=$2 src=$3 work=$4 generator=$5 cxx=$6
fail() { echo "FAIL: $*" >&2; exit 1; }

if [ "$mode" = needed ]; then
  command -v readelf >/dev/null || fail "readelf is not installed"
  checked=0
  for f in "$build"/libkmeans.so "$build"/kmeans "$build"/bench/bench_kmeans; do
    [ -e "$f" ] || continue
    needed=$(readelf -d "$f" | awk '/NEEDED/ {print $NF}')
    echo "$f: ${needed//$'\n'/ }"
    if grep -Eq 'libcuda|libcudart|libcublas|libnvidia|libnvrtc' <<<"$needed"; then
      fail "$f has a CUDA library as a load-time dependency"
    fi
    checked=$((checked + 1))
  done
  [ "$checked" -ge 2 ] || fail "found only $checked of the library, CLI and bench in $build"
  echo "OK: no CUDA library among the NEEDED entries of $checked files"
  exit 0
fi

if [ -z "${KMEANS_CUDA_HIDDEN:-}" ]; then
  # Install outside the namespace, then re-run this script inside a new one.
  rm -rf "$work" && mkdir -p "$work"
  cmake --install "$build" --prefix "$work/prefix" >/dev/null
  if ! unshare -m true 2>/dev/null; then
    echo "SKIP: mount namespaces are not permitted here (unshare -m failed), CUDA cannot be hidden"
    exit 77
  fi
  exec env KMEANS_CUDA_HIDDEN=1 unshare -m bash "$0" "$@"
fi

mount --make-rprivate / 2>/dev/null || true
# Every folder that holds the toolkit goes under an empty tmpfs; a CUDA or driver library that
# lives in a system folder (libcuda.so.1 in /usr/lib/..., say) is covered by /dev/null.
hide_dirs=()
for d in /usr/local/cuda /usr/local/cuda-* /opt/cuda /opt/nvidia; do
  [ -e "$d" ] && hide_dirs+=("$(readlink -f "$d")")
done
hide_files=()
while read -r path; do
  real=$(readlink -f "$path")
  case "$real" in
    */cuda*/*|*/nvidia*/*) hide_dirs+=("$(dirname "$real")") ;;
    *) hide_files+=("$real") ;;
  esac
done < <(ldconfig -p | awk '/libcuda\.so|libcudart|libcublas|libnvidia-ml|libnvrtc/ {print $NF}')
for d in $(printf '%s\n' "${hide_dirs[@]}" | sort -u); do
  [ -d "$d" ] && mount -t tmpfs -o size=1m kmeans-hidden "$d"
done
for f in $(printf '%s\n' "${hide_files[@]}" | sort -u); do
  [ -f "$f" ] && mount --bind /dev/null "$f"
done
# Proof that the hiding worked: nothing of CUDA can be opened any more.
for lib in libcuda.so.1 libcudart.so libcublas.so libcublas.so.13; do
  if python3 -c "import ctypes,sys; ctypes.CDLL(sys.argv[1])" "$lib" 2>/dev/null; then
    fail "$lib can still be loaded: CUDA is not hidden"
  fi
done
if command -v nvcc >/dev/null 2>&1 && nvcc --version >/dev/null 2>&1; then fail "nvcc still runs"; fi
echo "CUDA hidden:" $(printf '%s\n' "${hide_dirs[@]}" "${hide_files[@]}" | sort -u)

cli="$work/prefix/bin/kmeans"
data="$src/tests/data/tiny.csv"
"$cli" --version || fail "kmeans --version does not start without CUDA"
out=$("$cli" fit "$data" --k 2 --seed 1 --json) || fail "kmeans fit (auto) failed without CUDA"
grep -q '"backend": *"cpu"' <<<"$out" || fail "kmeans fit did not run on the cpu backend: $out"
grep -q '"backend_reason": *"no NVIDIA driver found (libcuda.so.1 could not be loaded' <<<"$out" ||
  fail "the JSON does not say why the GPU was not used: $out"
err=$("$cli" fit "$data" --k 2 --seed 1 --verbose 2>&1 >/dev/null) || fail "kmeans fit --verbose failed"
grep -q "backend auto ran on cpu: the GPU is not usable: no NVIDIA driver found" <<<"$err" ||
  fail "--verbose does not say why the GPU was not used: $err"
set +e
err=$("$cli" fit "$data" --k 2 --backend cuda 2>&1 >/dev/null)
rc=$?
set -e
[ "$rc" -eq 1 ] || fail "--backend cuda without CUDA: exit $rc, expected 1 ($err)"
grep -q "no NVIDIA driver found (libcuda.so.1 could not be loaded" <<<"$err" ||
  fail "--backend cuda without CUDA: unexpected message: $err"
echo "CLI: ok (cuda refused with: $err)"

# A consumer configured against the installed package, with no CUDA toolkit to be found.
cmake -S "$src/examples" -B "$work/consumer" -G "$generator" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null ||
  fail "configuring a consumer against the installed package failed without the CUDA toolkit"
cmake --build "$work/consumer" >/dev/null || fail "building the consumer failed"
"$work/consumer/classic_study" | tee "$work/consumer.txt"
grep -q "OK: predict, fit and the reference backend agree" "$work/consumer.txt" ||
  fail "the consumer app did not run correctly without CUDA"
echo "OK: CLI and consumer app run CPU work with the CUDA toolkit and driver hidden"
