// SPDX-License-Identifier: Apache-2.0
// The CPU backend's thread pool (cpu_pool.hpp): one packed atomic word per job, per-worker tickets,
// spin-then-sleep workers, and a caller that waits only for items already claimed.
#include "cpu_pool.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <system_error>
#include <thread>

#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#endif
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace kmeans::detail::cpu {
namespace {

// The job word: generation (24 bits) | next item to claim (20 bits) | item count (20 bits).
// A claim is a compare-and-swap on the whole word, so a worker that wakes after its job ended
// (another generation, or every item claimed) can never claim an item of a later job, and the
// caller never has to wait for it. Longer loops run as several jobs of kMaxItems.
constexpr int kCountBits = 20;
constexpr std::uint64_t kCountMask = (std::uint64_t{1} << kCountBits) - 1;
constexpr std::int64_t kMaxItems = static_cast<std::int64_t>(kCountMask);
constexpr std::uint32_t kGenMask = (1u << 24) - 1;
constexpr int kMaxWorkers = 1023;  // with the caller, resolve_threads' limit of 1024

constexpr std::uint64_t pack(std::uint32_t gen, std::uint64_t next, std::uint64_t n) {
  return (static_cast<std::uint64_t>(gen) << (2 * kCountBits)) | (next << kCountBits) | n;
}
constexpr std::uint32_t gen_of(std::uint64_t s) { return static_cast<std::uint32_t>(s >> (2 * kCountBits)); }
constexpr std::uint64_t next_of(std::uint64_t s) { return (s >> kCountBits) & kCountMask; }
constexpr std::uint64_t count_of(std::uint64_t s) { return s & kCountMask; }

/// How long an idle worker spins for the next job before it sleeps: long enough to bridge the
/// driver's update between two passes, short enough that a worker sharing its core with another
/// process gives that core back (a sleeping thread is scheduled promptly when woken).
constexpr auto kSpin = std::chrono::microseconds(30);

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

struct alignas(64) Ticket {
  std::atomic<std::uint32_t> gen{0};  ///< the last job this worker is invited to
};

struct Pool {
  alignas(64) std::atomic<std::uint64_t> state{0};
  alignas(64) std::atomic<std::int64_t> done{0};
  alignas(64) std::atomic<TaskFn> fn{nullptr};
  std::atomic<void*> ctx{nullptr};
  std::atomic<std::int64_t> base{0};
  alignas(64) std::atomic<bool> busy{false};
  std::mutex m;
  std::condition_variable cv;
  std::atomic<int> sleepers{0};
  int n_workers = 0;      ///< workers started (ids 1..n_workers); only the busy holder touches it
  std::uint32_t gen = 0;  ///< the last generation published; likewise
  Ticket tickets[kMaxWorkers + 1];
};

std::atomic<Pool*> g_pool{nullptr};
std::once_flag g_pool_once;

/// The pool never dies (its workers are detached and may sleep in it at exit); a forked child,
/// which has none of the parent's workers, starts a fresh one and leaks the old.
Pool& pool() {
  std::call_once(g_pool_once, [] {
    g_pool.store(new Pool, std::memory_order_release);
#if defined(__unix__) || defined(__APPLE__)
    pthread_atfork(nullptr, nullptr, [] { g_pool.store(new Pool, std::memory_order_release); });
#endif
  });
  return *g_pool.load(std::memory_order_acquire);
}

/// Claims and runs items of generation `gen` until none is left.
void run_items(Pool& p, std::uint32_t gen, int slot) {
  std::uint64_t s = p.state.load(std::memory_order_acquire);
  for (;;) {
    if (gen_of(s) != gen || next_of(s) >= count_of(s)) return;
    if (!p.state.compare_exchange_weak(s, s + (std::uint64_t{1} << kCountBits),
                                       std::memory_order_acq_rel, std::memory_order_acquire))
      continue;  // s now holds the current word
    // The job cannot end before this item is counted, so its fields stay valid here.
    const TaskFn fn = p.fn.load(std::memory_order_relaxed);
    fn(p.ctx.load(std::memory_order_relaxed),
       p.base.load(std::memory_order_relaxed) + static_cast<std::int64_t>(next_of(s)), slot);
    p.done.fetch_add(1, std::memory_order_release);
    s = p.state.load(std::memory_order_acquire);
  }
}

void worker(Pool* p, int id) {
  std::uint32_t seen = 0;
  std::atomic<std::uint32_t>& ticket = p->tickets[id].gen;
  for (;;) {
    std::uint32_t g = ticket.load(std::memory_order_acquire);
    if (g == seen) {
      const auto t0 = std::chrono::steady_clock::now();
      for (int spin = 1; (g = ticket.load(std::memory_order_acquire)) == seen; ++spin) {
        cpu_relax();
        if (spin % 64 == 0 && std::chrono::steady_clock::now() - t0 > kSpin) {
          std::unique_lock<std::mutex> lock(p->m);
          p->sleepers.fetch_add(1, std::memory_order_seq_cst);
          while ((g = ticket.load(std::memory_order_seq_cst)) == seen) p->cv.wait(lock);
          p->sleepers.fetch_sub(1, std::memory_order_relaxed);
          break;
        }
      }
    }
    seen = g;
    run_items(*p, g, id);
  }
}

void run_serial(std::int64_t n, TaskFn fn, void* ctx) {
  for (std::int64_t i = 0; i < n; ++i) fn(ctx, i, 0);
}

}  // namespace

void parallel_for(int threads, std::int64_t n, TaskFn fn, void* ctx) {
  if (threads <= 1 || n <= 1) return run_serial(n, fn, ctx);
  Pool& p = pool();
  if (p.busy.exchange(true, std::memory_order_acquire)) return run_serial(n, fn, ctx);
  if (threads > kMaxWorkers + 1) threads = kMaxWorkers + 1;
  while (p.n_workers < threads - 1) {
    try {
      std::thread(worker, &p, p.n_workers + 1).detach();
    } catch (const std::system_error&) {
      break;  // no more threads: run with those there are
    }
    ++p.n_workers;
  }
  const int invited = threads - 1 < p.n_workers ? threads - 1 : p.n_workers;
  for (std::int64_t b = 0; b < n; b += kMaxItems) {
    const std::int64_t m = n - b < kMaxItems ? n - b : kMaxItems;
    p.gen = (p.gen + 1) & kGenMask;
    if (p.gen == 0) p.gen = 1;  // 0 is every worker's "nothing seen yet"
    p.fn.store(fn, std::memory_order_relaxed);
    p.ctx.store(ctx, std::memory_order_relaxed);
    p.base.store(b, std::memory_order_relaxed);
    p.done.store(0, std::memory_order_relaxed);
    p.state.store(pack(p.gen, 0, static_cast<std::uint64_t>(m)), std::memory_order_release);
    for (int w = 1; w <= invited; ++w) p.tickets[w].gen.store(p.gen, std::memory_order_seq_cst);
    if (p.sleepers.load(std::memory_order_seq_cst) > 0) {
      { std::lock_guard<std::mutex> lock(p.m); }  // a worker between its check and its wait
      p.cv.notify_all();
    }
    run_items(p, p.gen, 0);
    // Every item is claimed; wait for those still running elsewhere.
    for (int spin = 1; p.done.load(std::memory_order_acquire) != m; ++spin) {
      cpu_relax();
      if (spin > 256) std::this_thread::yield();
    }
  }
  p.busy.store(false, std::memory_order_release);
}

}  // namespace kmeans::detail::cpu
