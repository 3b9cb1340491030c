// SPDX-License-Identifier: Apache-2.0
// The portable CPU kernel: 16-byte vectors (SSE2 on x86-64, NEON on Arm, scalar elsewhere).
#define KMEANS_VBYTES 16
#define KMEANS_POINTS 2
#define KMEANS_TABLE kernels_generic
#define KMEANS_ISA_NAME "generic"
#define KMEANS_DIRECT_FMA 0
#include "cpu_kernel.inl"
