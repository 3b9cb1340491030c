// SPDX-License-Identifier: Apache-2.0
// The library version, set by CMake from project(VERSION).
#include "kmeans/kmeans.hpp"

#ifndef KMEANS_VERSION_STRING
#define KMEANS_VERSION_STRING "0.0.0"
#endif

namespace kmeans {
const char* version() { return KMEANS_VERSION_STRING; }
}  // namespace kmeans
