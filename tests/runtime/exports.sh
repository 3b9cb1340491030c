#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The shared library exports the public API only: no symbol of kmeans::detail (the engines, the
# kernels, the driver's internals), and the public entry points are there.
# usage: exports.sh LIBRARY
set -euo pipefail
lib=$1
command -v nm >/dev/null || { echo "FAIL: nm is not installed" >&2; exit 1; }
symbols=$(nm -D --defined-only "$lib" | c++filt | sed 's/^[0-9a-f]* [A-Za-z] //')
internal=$(grep -E '^([^(]* )?kmeans::detail::' <<<"$symbols" || true)
if [ -n "$internal" ]; then
  echo "FAIL: $lib exports internal symbols:" >&2
  echo "$internal" >&2
  exit 1
fi
for want in 'kmeans::fit<float>' 'kmeans::fit<double>' 'kmeans::KMeans<float>::fit(' \
            'kmeans::predict<double>' 'kmeans::version()' 'kmeans::cuda_available(' \
            'kmeans::KMeans<float>::save(' 'kmeans::KMeans<double>::load(' 'kmeans::model_dtype(' \
            'typeinfo for kmeans::Error'; do
  grep -qF "$want" <<<"$symbols" || { echo "FAIL: $lib does not export $want" >&2; exit 1; }
done
echo "OK: $(grep -c 'kmeans::' <<<"$symbols") kmeans symbols exported, none of kmeans::detail"
