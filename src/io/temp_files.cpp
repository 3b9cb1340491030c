// SPDX-License-Identifier: Apache-2.0
// The registry of staged temporary files that SIGINT / SIGTERM / SIGHUP remove before the
// process ends: preallocated slots and an async-signal-safe handler (unlink, then re-raise).
#include <atomic>
#include <csignal>
#include <cstring>
#include <mutex>

#if !defined(_WIN32)
#include <pthread.h>
#include <unistd.h>
#endif

#include "io/common.hpp"

namespace kmeans::io::detail {
namespace {

constexpr int kSlots = 64;                ///< Temporaries alive at once (the CLI needs 3).
constexpr std::size_t kPathBytes = 4096;  ///< PATH_MAX on Linux, with the terminating NUL.

enum SlotState : int { kFree = 0, kFilling = 1, kReady = 2 };

/// One temporary path; the handler reads `path` only while `state` is kReady.
struct Slot {
  std::atomic<int> state{kFree};
  char path[kPathBytes];
};
static_assert(std::atomic<int>::is_always_lock_free, "the signal handler needs lock-free atomics");

Slot g_slots[kSlots];

#if !defined(_WIN32)
constexpr int kSignals[] = {SIGINT, SIGTERM, SIGHUP};

extern "C" void remove_temps_and_reraise(int sig) {
  // Only async-signal-safe calls here: unlink, sigaction, sigprocmask, raise.
  for (Slot& s : g_slots) {
    if (s.state.load(std::memory_order_acquire) == kReady) ::unlink(s.path);
  }
  struct sigaction dfl;
  std::memset(&dfl, 0, sizeof(dfl));
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  ::sigaction(sig, &dfl, nullptr);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, sig);
  ::sigprocmask(SIG_UNBLOCK, &set, nullptr);
  ::raise(sig);  // the default action: the process ends with the usual signal status
}

/// Installs the handler for each signal whose action is still the default: a signal the program
/// ignores (nohup) or handles itself is left alone.
void install_handlers() {
  for (int sig : kSignals) {
    struct sigaction old;
    if (::sigaction(sig, nullptr, &old) != 0 || (old.sa_flags & SA_SIGINFO) != 0 ||
        old.sa_handler != SIG_DFL) {
      continue;
    }
    struct sigaction sa;
    std::memset(&sa, 0, sizeof(sa));
    sa.sa_handler = remove_temps_and_reraise;
    sigemptyset(&sa.sa_mask);
    for (int other : kSignals) sigaddset(&sa.sa_mask, other);  // one cleanup at a time
    ::sigaction(sig, &sa, nullptr);
  }
}
#endif

}  // namespace

int register_temp(const std::string& path) {
#if !defined(_WIN32)
  static std::once_flag once;
  std::call_once(once, install_handlers);
#endif
  if (path.size() >= kPathBytes) {
    fail(path, "path is " + std::to_string(path.size()) + " bytes, longer than the limit of " +
                   std::to_string(kPathBytes - 1));
  }
  for (int i = 0; i < kSlots; ++i) {
    int expected = kFree;
    if (g_slots[i].state.compare_exchange_strong(expected, kFilling, std::memory_order_acq_rel)) {
      std::memcpy(g_slots[i].path, path.c_str(), path.size() + 1);
      g_slots[i].state.store(kReady, std::memory_order_release);
      return i;
    }
  }
  fail(path, "more than " + std::to_string(kSlots) + " output files staged at once");
}

void unregister_temp(int slot) {
  if (slot >= 0 && slot < kSlots) g_slots[slot].state.store(kFree, std::memory_order_release);
}

CleanupSignalsBlocked::CleanupSignalsBlocked() {
#if !defined(_WIN32)
  sigset_t set;
  sigemptyset(&set);
  for (int sig : kSignals) sigaddset(&set, sig);
  active_ = ::pthread_sigmask(SIG_BLOCK, &set, &old_) == 0;
#endif
}

CleanupSignalsBlocked::~CleanupSignalsBlocked() {
#if !defined(_WIN32)
  if (active_) ::pthread_sigmask(SIG_SETMASK, &old_, nullptr);  // a pending signal lands here
#endif
}

}  // namespace kmeans::io::detail
