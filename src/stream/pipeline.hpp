// SPDX-License-Identifier: Apache-2.0
// The ordering rules of a double-buffered chunk pipeline (fill -> upload -> compute), apart from
// CUDA so that a CPU test can drive it with fake steps (cuda_stream_engine.cpp runs it).
//
// Two staging slots and two device slots; chunk i uses slot i % 2 of both. A fill thread fills
// staging slots in chunk order; the calling thread issues each chunk's upload, then computes the
// previous chunk, so that (with asynchronous uploads) the fill of chunk i + 1, the upload of
// chunk i and the compute of chunk i - 1 run at the same time:
//   fill(i, s)      fill thread; only after wait_staging(s) when i >= 2 (the upload of chunk
//                   i - 2 has finished reading staging slot s)
//   upload(i, s)    caller; after fill(i, s) returned and after compute(i - 2, s) returned
//                   (device slot s is no longer read by the host-ordered compute; the step
//                   itself orders the copy after the device work of that compute)
//   compute(i, s)   caller; in chunk order, each chunk once, after upload(i, s) was issued
//                   (the step waits for the copy on the device, e.g. an event)
// An exception in any step stops both threads and is rethrown by run() (the first one).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>

namespace kmeans::detail::stream {

class ChunkPipeline {
 public:
  struct Steps {
    std::function<void(std::int64_t chunk, int slot)> fill;
    std::function<void(int slot)> wait_staging;
    std::function<void(std::int64_t chunk, int slot)> upload;
    std::function<void(std::int64_t chunk, int slot)> compute;
  };

  /// Runs chunks [0, n_chunks) through the steps (one chunk: no fill thread).
  static void run(std::int64_t n_chunks, const Steps& s) {
    if (n_chunks <= 0) return;
    if (n_chunks == 1) {
      s.fill(0, 0);
      s.upload(0, 0);
      s.compute(0, 0);
      return;
    }
    ChunkPipeline p;
    p.go(n_chunks, s);
  }

 private:
  void go(std::int64_t n, const Steps& s) {
    std::thread filler([&] { fill_loop(n, s); });
    try {  // every exit below stops and joins the fill thread
      for (std::int64_t i = 0; i <= n; ++i) {
        if (i < n) {
          const int slot = static_cast<int>(i & 1);
          {
            std::unique_lock<std::mutex> lock(m_);
            cv_.wait(lock, [&] { return full_[slot] == i || stop_; });
            if (full_[slot] != i) break;  // the fill thread failed: its error is rethrown below
          }
          s.upload(i, slot);
          {
            std::lock_guard<std::mutex> lock(m_);
            full_[slot] = -1;
            issued_ = i + 1;
          }
          cv_.notify_all();
        }
        if (i >= 1) s.compute(i - 1, static_cast<int>((i - 1) & 1));
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(m_);
      if (!error_) error_ = std::current_exception();
    }
    stop();
    filler.join();
    if (error_) std::rethrow_exception(error_);
  }

  void fill_loop(std::int64_t n, const Steps& s) {
    try {
      for (std::int64_t i = 0; i < n; ++i) {
        const int slot = static_cast<int>(i & 1);
        if (i >= 2) {
          // Slot s holds chunk i - 2 until its upload is issued, then until the copy is done.
          {
            std::unique_lock<std::mutex> lock(m_);
            cv_.wait(lock, [&] { return issued_ >= i - 1 || stop_; });
            if (stop_) return;
          }
          s.wait_staging(slot);
        }
        {
          std::lock_guard<std::mutex> lock(m_);
          if (stop_) return;
        }
        s.fill(i, slot);
        {
          std::lock_guard<std::mutex> lock(m_);
          full_[slot] = i;
        }
        cv_.notify_all();
      }
    } catch (...) {
      {
        std::lock_guard<std::mutex> lock(m_);
        if (!error_) error_ = std::current_exception();
        stop_ = true;
      }
      cv_.notify_all();
    }
  }

  void stop() {
    {
      std::lock_guard<std::mutex> lock(m_);
      stop_ = true;
    }
    cv_.notify_all();
  }

  std::mutex m_;
  std::condition_variable cv_;
  std::int64_t full_[2] = {-1, -1};  // the chunk each staging slot holds, filled, not yet issued
  std::int64_t issued_ = 0;          // uploads issued: chunks [0, issued_)
  bool stop_ = false;
  std::exception_ptr error_;
};

}  // namespace kmeans::detail::stream
