// SPDX-License-Identifier: Apache-2.0
// The GPU tests' skip rule: a test without a usable CUDA device skips with the probe's reason.
#pragma once

#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <string>

#include "kmeans/kmeans.hpp"

#define KMEANS_SKIP_WITHOUT_GPU()                                 \
  do {                                                            \
    std::string why_;                                             \
    if (!::kmeans::cuda_available(&why_)) GTEST_SKIP() << why_;   \
  } while (0)

#define ASSERT_CUDA(call) ASSERT_EQ((call), cudaSuccess) << #call
