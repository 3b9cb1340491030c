// SPDX-License-Identifier: Apache-2.0
// `kmeans fit --stream`: the out-of-core fit of a .npy file under --memory-limit (stream_fit.cpp).
#pragma once

#include <string>

#include "cli/options.hpp"

namespace kmeans_cli {

/// Whether a fit streams: --stream, or (automatic) DATA is a .npy file whose data exceed half
/// the physical memory; `why` receives the automatic reason (empty for --stream or no stream).
bool use_stream(const Options& o, std::string& why);

/// Runs the streamed fit and prints its summary (as run_fit: text or --json, with a "stream"
/// object: the memory limit, the peak resident memory); returns the exit code.
int run_stream_fit(const Options& o, const std::string& why);

}  // namespace kmeans_cli
