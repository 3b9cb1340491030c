// SPDX-License-Identifier: Apache-2.0
// The GPU streaming pipeline's ordering (src/stream/pipeline.hpp) with fake asynchronous copies,
// and the device chunk rule (src/stream/cuda_stream.hpp), on the CPU.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <future>
#include <mutex>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "stream/cuda_stream.hpp"
#include "stream/pipeline.hpp"

namespace {

using kmeans::detail::stream::ChunkPipeline;

/// Fake buffers: a staging and a device slot hold the chunk index written into them (-1
/// empty). The copy is asynchronous (a task that sleeps, then checks the staging slot still
/// holds its chunk and writes the device slot); wait_staging and compute wait for it, as the
/// real steps wait on CUDA events. Every violation of the pipeline's rules is counted.
class FakeGpu {
 public:
  explicit FakeGpu(std::uint64_t seed) : g_(seed) {}

  ChunkPipeline::Steps steps() {
    ChunkPipeline::Steps s;
    s.fill = [this](std::int64_t i, int slot) {
      if (staging_busy_[slot].load()) ++violations_;  // refilled while its copy runs
      if (staging_[slot] != -1 && staging_[slot] != i - 2) ++violations_;
      staging_[slot] = -2;  // being written
      pause();
      staging_[slot] = i;
      fill_order_.push_back(i);
    };
    s.wait_staging = [this](int slot) { wait_copy(slot); };
    s.upload = [this](std::int64_t i, int slot) {
      if (staging_[slot] != i) ++violations_;  // not filled yet
      // Device slot `slot` last held chunk i - 2, which must have been computed.
      if (i >= 2 && last_computed_[slot] != i - 2) ++violations_;
      wait_copy(slot);
      staging_busy_[slot] = true;
      const int delay = static_cast<int>(next() % 300);
      std::shared_future<void> copy =
          std::async(std::launch::async, [this, i, slot, delay] {
            std::this_thread::sleep_for(std::chrono::microseconds(delay));
            if (staging_[slot] != i) ++violations_;  // the staging slot changed under the copy
            device_[slot] = i;
            staging_busy_[slot] = false;
          }).share();
      std::lock_guard<std::mutex> lock(m_);
      copies_[slot] = copy;
      uploads_.push_back(i);
    };
    s.compute = [this](std::int64_t i, int slot) {
      wait_copy(slot);  // the device-side wait for the copy
      if (device_[slot] != i) ++violations_;  // computing another chunk's data
      pause();
      if (device_[slot] != i) ++violations_;  // overwritten during the compute
      last_computed_[slot] = i;
      computed_.push_back(i);
    };
    return s;
  }

  void drain() {
    wait_copy(0);
    wait_copy(1);
  }

  int violations() const { return violations_.load(); }
  const std::vector<std::int64_t>& computed() const { return computed_; }
  const std::vector<std::int64_t>& uploads() const { return uploads_; }
  const std::vector<std::int64_t>& fills() const { return fill_order_; }

 private:
  std::uint64_t next() {
    std::lock_guard<std::mutex> lock(m_);
    return g_();
  }
  /// Waits for the last copy issued into `slot` (from either thread: a shared future).
  void wait_copy(int slot) {
    std::shared_future<void> c;
    {
      std::lock_guard<std::mutex> lock(m_);
      c = copies_[slot];
    }
    if (c.valid()) c.wait();
  }
  void pause() { std::this_thread::sleep_for(std::chrono::microseconds(next() % 200)); }

  std::mutex m_;
  std::mt19937_64 g_;
  std::atomic<std::int64_t> staging_[2] = {-1, -1};
  std::atomic<std::int64_t> device_[2] = {-1, -1};
  std::atomic<bool> staging_busy_[2] = {false, false};
  std::int64_t last_computed_[2] = {-1, -1};
  std::shared_future<void> copies_[2];
  std::atomic<int> violations_{0};
  std::vector<std::int64_t> computed_, uploads_, fill_order_;
};

std::vector<std::int64_t> iota(std::int64_t n) {
  std::vector<std::int64_t> v;
  for (std::int64_t i = 0; i < n; ++i) v.push_back(i);
  return v;
}

TEST(StreamPipeline, EveryChunkOnceInOrderNoBufferOverwrittenInUse) {
  for (std::int64_t n : {1, 2, 3, 4, 7, 16, 33}) {
    for (std::uint64_t seed = 1; seed <= 6; ++seed) {
      SCOPED_TRACE("n_chunks " + std::to_string(n) + ", seed " + std::to_string(seed));
      FakeGpu gpu(seed * 1000 + static_cast<std::uint64_t>(n));
      ChunkPipeline::run(n, gpu.steps());
      gpu.drain();
      EXPECT_EQ(gpu.violations(), 0);
      EXPECT_EQ(gpu.computed(), iota(n));
      EXPECT_EQ(gpu.uploads(), iota(n));
      EXPECT_EQ(gpu.fills(), iota(n));
    }
  }
}

TEST(StreamPipeline, OverlapsFillUploadAndCompute) {
  // With slow steps the fill of chunk i + 1 runs while chunk i - 1 is computed: record the
  // fill thread's activity during each compute.
  std::atomic<int> filling{0};
  std::atomic<int> overlaps{0};
  ChunkPipeline::Steps s;
  s.fill = [&](std::int64_t, int) {
    ++filling;
    std::this_thread::sleep_for(std::chrono::milliseconds(3));
    --filling;
  };
  s.wait_staging = [](int) {};
  s.upload = [](std::int64_t, int) {};
  s.compute = [&](std::int64_t, int) {
    for (int t = 0; t < 30; ++t) {
      if (filling.load() > 0) {
        ++overlaps;
        break;
      }
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  };
  ChunkPipeline::run(10, s);
  EXPECT_GE(overlaps.load(), 3) << "the fill thread never ran during a compute";
}

TEST(StreamPipeline, AnExceptionInAStepStopsTheRunAndIsRethrown) {
  for (int where = 0; where < 3; ++where) {
    SCOPED_TRACE("step " + std::to_string(where));
    std::vector<std::int64_t> computed;
    ChunkPipeline::Steps s;
    s.fill = [&](std::int64_t i, int) {
      if (where == 0 && i == 4) throw std::runtime_error("fill failed at 4");
    };
    s.wait_staging = [](int) {};
    s.upload = [&](std::int64_t i, int) {
      if (where == 1 && i == 5) throw std::runtime_error("upload failed at 5");
    };
    s.compute = [&](std::int64_t i, int) {
      if (where == 2 && i == 3) throw std::runtime_error("compute failed at 3");
      computed.push_back(i);
    };
    const char* want[] = {"fill failed at 4", "upload failed at 5", "compute failed at 3"};
    try {
      ChunkPipeline::run(12, s);
      ADD_FAILURE() << "no exception";
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), want[where]);
    }
    // Nothing is computed past the failure, and what was computed is in order.
    const std::int64_t limit = where == 0 ? 4 : where == 1 ? 5 : 3;
    EXPECT_LE(static_cast<std::int64_t>(computed.size()), limit);
    EXPECT_EQ(computed, iota(static_cast<std::int64_t>(computed.size())));
  }
}

TEST(StreamPipeline, ZeroChunksDoNothing) {
  int calls = 0;
  ChunkPipeline::Steps s;
  s.fill = s.upload = s.compute = [&](std::int64_t, int) { ++calls; };
  s.wait_staging = [&](int) { ++calls; };
  ChunkPipeline::run(0, s);
  EXPECT_EQ(calls, 0);
}

namespace st = kmeans::detail::stream;

TEST(CudaStreamChunkRule, LargestPowerOfTwoThatFits) {
  const int sms = 132;
  for (std::int64_t d : {1, 16, 128, 1000}) {
    for (int k : {1, 64, 4096}) {
      for (std::size_t free_gib : {1, 4, 80}) {
        for (bool weighted : {false, true}) {
          SCOPED_TRACE("d " + std::to_string(d) + ", k " + std::to_string(k) + ", free " +
                       std::to_string(free_gib) + " GiB" + (weighted ? ", weighted" : ""));
          const std::int64_t n = std::int64_t{1} << 26;
          const std::size_t free_b = free_gib << 30;
          const std::int64_t b =
              st::cuda_stream_chunk_blocks(n, d, k, sizeof(float), weighted, free_b, sms);
          const double budget = st::kCudaStreamMemoryShare *
                                static_cast<double>(free_b - kmeans::detail::tuning::kWorkingSetMarginBytes);
          auto bytes = [&](std::int64_t blocks) {
            return static_cast<double>(st::cuda_stream_device_bytes(
                blocks * 4096, d, k, sizeof(float), weighted, sms));
          };
          if (b == 0) {
            EXPECT_GT(bytes(1), budget);
            continue;
          }
          EXPECT_EQ(b & (b - 1), 0) << b << " is not a power of two";
          EXPECT_LE(bytes(b), budget);
          const double chunk_data = static_cast<double>(b) * 4096 * d * sizeof(float);
          EXPECT_TRUE(b == 1 || chunk_data <= st::kCudaStreamMaxChunkBytes) << chunk_data;
          // Twice as large breaks a rule: the budget or the grain.
          EXPECT_TRUE(bytes(2 * b) > budget || 2 * chunk_data > st::kCudaStreamMaxChunkBytes)
              << "blocks " << b << " could double";
        }
      }
    }
  }
}

TEST(CudaStreamChunkRule, NoLargerThanTheDataAndZeroWhenNothingFits) {
  // 10 blocks of data: 16 blocks at most (the power of two covering them).
  EXPECT_EQ(st::cuda_stream_chunk_blocks(10 * 4096 - 5, 4, 8, 4, false, std::size_t{80} << 30, 132),
            16);
  EXPECT_EQ(st::cuda_stream_chunk_blocks(4096, 4, 8, 4, false, std::size_t{80} << 30, 132), 1);
  EXPECT_EQ(st::cuda_stream_chunk_blocks(1, 4, 8, 4, false, std::size_t{80} << 30, 132), 1);
  // Free memory below the margin, or k * d so large that one block's engines do not fit.
  EXPECT_EQ(st::cuda_stream_chunk_blocks(1 << 20, 4, 8, 4, false, std::size_t{100} << 20, 132), 0);
  EXPECT_EQ(st::cuda_stream_chunk_blocks(1 << 20, 4096, 100000, 4, false, std::size_t{1} << 30, 132),
            0);
}

}  // namespace
