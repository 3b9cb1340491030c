#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Sends SIGTERM or SIGHUP to `kmeans transform` while it writes a large --out .csv and checks
# that the process ends by that signal and leaves neither the temporary nor a partial output.
# Usage: signal_cleanup.sh KMEANS_EXE WORK_DIR SIGNAL. Exit 77 (skipped) when the run finished
# before a temporary file could be seen.
set -u
exe=$1
work=$2
sig=$3
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
# 60000 x 2 data, 200 centroids: a 60000 x 200 distance matrix, about 100 MB of CSV text.
awk 'BEGIN { for (i = 0; i < 60000; i++) printf "%d,%d\n", i % 97, i % 89 }' > data.csv
awk 'BEGIN { for (j = 0; j < 200; j++) printf "%d.5,%d\n", j % 50, j % 41 }' > cent.csv
"$exe" transform data.csv --centroids cent.csv --dtype float32 --out out.csv > stdout.txt 2> stderr.txt &
pid=$!
waited=0
while ! ls | grep -q '^out\.csv\.tmp-'; do
  if ! kill -0 "$pid" 2> /dev/null; then
    wait "$pid"
    echo "skipped: kmeans ended (exit $?) before its temporary file was seen"
    exit 77
  fi
  waited=$((waited + 1))
  if [ "$waited" -gt 6000 ]; then
    kill -KILL "$pid"
    echo "FAIL: no temporary file after 60 s"
    exit 1
  fi
  sleep 0.01
done
kill "-$sig" "$pid"
wait "$pid"
rc=$?
left=$(ls | grep -v -e '^data\.csv$' -e '^cent\.csv$' -e '^stdout\.txt$' -e '^stderr\.txt$')
cd / && rm -rf "$work"
if [ "$rc" -eq 0 ]; then
  echo "skipped: kmeans finished its write before the signal arrived"
  exit 77
fi
case "$sig" in
  TERM) want=143 ;;
  HUP) want=129 ;;
  *) want=unknown ;;
esac
if [ "$rc" != "$want" ]; then
  echo "FAIL: exit status $rc, expected $want (ended by SIG$sig)"
  exit 1
fi
if [ -n "$left" ]; then
  echo "FAIL: files left behind: $left"
  exit 1
fi
echo "ok: SIG$sig removed the temporary and ended kmeans with status $rc"
