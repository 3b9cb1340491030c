// SPDX-License-Identifier: Apache-2.0
// The CPU backend's thread pool: items claimed one at a time, and a caller that never waits for a
// thread which has not started (so a descheduled thread costs its share of work, not a barrier).
#pragma once

#include <cstdint>

namespace kmeans::detail::cpu {

/// One item of a parallel loop: fn(ctx, item, slot). `slot` in [0, threads) names the thread
/// running it (0 is the caller), for per-thread scratch. It must not throw.
using TaskFn = void (*)(void* ctx, std::int64_t item, int slot);

/// Runs fn(ctx, i, slot) for every i in [0, n), on at most `threads` threads, the caller's
/// included, and returns when every item has finished. Items are claimed dynamically in
/// increasing order; the caller claims items too and waits only for items that another thread
/// has already claimed, never for a thread that has not woken up: with another process holding
/// a core, the threads that run do the work. Which thread runs an item is not fixed, so results
/// must not depend on it (the CPU backend writes each item's result into its own slot and merges
/// them in item order). Idle workers spin for a few tens of microseconds, then sleep.
/// Runs everything on the caller when threads <= 1, when n <= 1, or when the pool is already in
/// use (a nested call, or a concurrent call from another thread).
void parallel_for(int threads, std::int64_t n, TaskFn fn, void* ctx);

/// parallel_for over a callable f(item, slot).
template <class F>
void parallel_for(int threads, std::int64_t n, F& f) {
  parallel_for(
      threads, n, [](void* c, std::int64_t i, int slot) { (*static_cast<F*>(c))(i, slot); }, &f);
}

}  // namespace kmeans::detail::cpu
