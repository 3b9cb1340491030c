// SPDX-License-Identifier: Apache-2.0
// The AVX2 + FMA CPU kernel (compiled with -mavx2 -mfma; run only where the CPU has both).
#define KMEANS_VBYTES 32
#define KMEANS_POINTS 3
#define KMEANS_TABLE kernels_avx2
#define KMEANS_ISA_NAME "avx2"
#define KMEANS_DIRECT_FMA 1
#include "cpu_kernel.inl"
