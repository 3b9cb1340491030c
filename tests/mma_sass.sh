#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The TF32 path's kernel runs on the tensor cores: the sm_90 SASS of mma_assign_kernel<float> in
# BINARY holds HMMA (mma.sync TF32) and LDGSTS (cp.async). Needs cuobjdump: $KMEANS_CUOBJDUMP,
# PATH or /usr/local/cuda/bin; exits 77 (skipped) without one or without sm_90 code.
set -u
binary="$1"
tool="${KMEANS_CUOBJDUMP:-}"
[ -n "$tool" ] || tool="$(command -v cuobjdump 2>/dev/null || true)"
[ -n "$tool" ] || { [ -x /usr/local/cuda/bin/cuobjdump ] && tool=/usr/local/cuda/bin/cuobjdump; }
[ -n "$tool" ] || { echo "no cuobjdump (set KMEANS_CUOBJDUMP)"; exit 77; }
sass="$("$tool" -sass -arch sm_90 "$binary" 2>&1)" || { echo "cuobjdump failed: $sass" | head -3; exit 1; }
counts="$(printf '%s\n' "$sass" | awk '
  /Function :/ { in_k = ($3 ~ /mma_assign_kernelIf/); if (in_k) seen = 1; next }
  in_k && /HMMA/ { h++ }
  in_k && /LDGSTS/ { g++ }
  END { printf "%d %d %d\n", seen, h, g }')"
read -r seen hmma ldgsts <<< "$counts"
[ "$seen" = 1 ] || { echo "no sm_90 mma_assign_kernel<float> in $binary"; exit 77; }
echo "mma_assign_kernel<float> (sm_90): $hmma HMMA, $ldgsts LDGSTS"
[ "$hmma" -gt 0 ] && [ "$ldgsts" -gt 0 ]
