// SPDX-License-Identifier: Apache-2.0
// The AVX-512 CPU kernel (compiled with -mavx512f and friends; run only where the CPU has them).
// 32 vector registers hold 4 points x 2 vectors of running distances, minima and indices.
#define KMEANS_VBYTES 64
#define KMEANS_POINTS 4
#define KMEANS_TABLE kernels_avx512
#define KMEANS_ISA_NAME "avx512"
#define KMEANS_DIRECT_FMA 1
#include "cpu_kernel.inl"
