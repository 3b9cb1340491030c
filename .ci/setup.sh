#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs what a fresh Debian machine (with the CUDA toolkit, or without it) lacks to build
# and test kmeans: a compiler, CMake, Ninja, GoogleTest, OpenMP, Open MPI, and numpy +
# scikit-learn for the parity cross-check. Idempotent; needs root (or sudo) only when something is missing.
set -euo pipefail

need=()
command -v cmake >/dev/null 2>&1 || need+=(cmake)
command -v ninja >/dev/null 2>&1 || need+=(ninja-build)
command -v g++ >/dev/null 2>&1 || need+=(g++)
[ -f /usr/lib/x86_64-linux-gnu/libgtest.a ] || [ -f /usr/lib/aarch64-linux-gnu/libgtest.a ] ||
  [ -f /usr/lib/libgtest.a ] || need+=(libgtest-dev)
/usr/bin/python3 -c "import numpy, sklearn" >/dev/null 2>&1 || need+=(python3-numpy python3-sklearn)
# The Python package (python/): its headers and pybind11 to build, pytest and matplotlib to test.
/usr/bin/python3 -c "import sysconfig, os, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()['include'], 'Python.h')))" >/dev/null 2>&1 || need+=(python3-dev)
[ -f /usr/include/pybind11/pybind11.h ] || need+=(pybind11-dev)
/usr/bin/python3 -c "import pytest, matplotlib" >/dev/null 2>&1 || need+=(python3-pytest python3-matplotlib)
# kmeans::mpi and its mpirun tests (tests/mpi): Open MPI's headers, libraries and mpirun.
command -v mpicxx >/dev/null 2>&1 || need+=(libopenmpi-dev)
command -v mpirun >/dev/null 2>&1 || need+=(openmpi-bin)
if [ "${KMEANS_BENCH_PEERS:-0}" = 1 ]; then
  /usr/bin/python3 -c "import matplotlib, faiss, torch" >/dev/null 2>&1 ||
    need+=(python3-matplotlib python3-faiss python3-torch)
fi

if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}"
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# nvcc is optional: without it the build skips the CUDA backend (CMake says so).
if ! command -v nvcc >/dev/null 2>&1 && [ -x /usr/local/cuda/bin/nvcc ]; then
  echo "setup: nvcc found in /usr/local/cuda/bin (add it to PATH, or CMake finds it there)"
fi
