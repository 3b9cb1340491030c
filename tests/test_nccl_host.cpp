// SPDX-License-Identifier: Apache-2.0
// Host tests of kmeans::mpi's NCCL combine without a GPU: the loader's errors (a missing
// library, a failed call), and the device merge's arithmetic (kernels/node_merge.cuh, the very
// functions the kernels run) emulated rank by rank against tree::NodeStack on many partitions.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "cuda/nccl.hpp"
#include "kernels/node_merge.cuh"
#include "canonical_oracle.hpp"
#include "tree_sum.hpp"

namespace kmeans::detail {
namespace {

namespace tree = kmeans::detail::tree;

TEST(NcclLoader, MissingLibraryIsAClearError) {
  std::string why;
  const auto api = cuda::load_nccl_from("/nonexistent/libnccl.so.2", &why);
  EXPECT_EQ(api, nullptr);
  EXPECT_NE(why.find("/nonexistent/libnccl.so.2 could not be loaded"), std::string::npos) << why;
  EXPECT_NE(why.find("LD_LIBRARY_PATH"), std::string::npos) << why;
  // A library that loads but is not NCCL: the first missing symbol is named.
  why.clear();
  EXPECT_EQ(cuda::load_nccl_from("libm.so.6", &why), nullptr);
  EXPECT_NE(why.find("libm.so.6 has no symbol ncclGetVersion"), std::string::npos) << why;
  EXPECT_STREQ(cuda::nccl_library_name(), "libnccl.so.2");
}

TEST(NcclLoader, TheToolkitsLibraryResolvesEverySymbol) {
  const std::string path = KMEANS_TEST_NCCL_LIBRARY;
  if (!std::ifstream(path).good()) GTEST_SKIP() << "no " << path << " on this machine";
  std::string why;
  const auto api = cuda::load_nccl_from(path, &why);
  ASSERT_NE(api, nullptr) << why;
  int version = 0;
  ASSERT_EQ(api->get_version(&version), ncclSuccess);
  EXPECT_GE(version, 20000) << "NCCL 2.x";
  EXPECT_NE(std::string(api->error_string(ncclInvalidArgument)).find("invalid argument"),
            std::string::npos);
}

TEST(NcclLoader, AFailedCallNamesTheCallAndNcclsMessage) {
  try {
    cuda::check_nccl(ncclInvalidUsage, "ncclSend(buf, n, ncclDouble, 1, comm, s)", "here.cu", 7);
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("NCCL error in ncclSend(buf, n, ncclDouble, 1, comm, s) at here.cu:7"),
              std::string::npos) << what;
    EXPECT_NE(what.find("(5)"), std::string::npos) << what;  // ncclInvalidUsage
    std::string why;
    if (cuda::nccl_api(&why)) EXPECT_NE(what.find("invalid usage"), std::string::npos) << what;
  }
  EXPECT_NO_THROW(cuda::check_nccl(ncclSuccess, "ncclGroupEnd()", "here.cu", 8));
}

using kmeans_test::leaf_values;
using kmeans_test::stack_of;

struct Emulated {
  std::vector<double> total;  ///< width + 1 (the changed count last)
};

/// The device combine of `size` ranks emulated on the host: each rank's schedule with buffers of
/// exactly the schedule's sizes (poisoned with NaN), start / merge / fold as the kernels do them.
Emulated emulate(const std::vector<double>& leaves, std::int64_t width,
                 const std::vector<std::int64_t>& first, const std::vector<std::int64_t>& end,
                 const std::vector<double>& changed) {
  const int size = static_cast<int>(first.size());
  const double nan = std::numeric_limits<double>::quiet_NaN();
  std::vector<std::vector<double>> message(static_cast<std::size_t>(size));
  Emulated out;
  // A rank receives only from higher ranks, which finish (by sending) before: highest first.
  for (int r = size - 1; r >= 0; --r) {
    const merge::Schedule s = merge::tree_schedule(r, size, first, end);
    const int cap = std::max(s.max_stack_rows, s.final_rows);
    std::vector<double> stk(static_cast<std::size_t>(cap * width + 1), nan);
    std::vector<double> in(static_cast<std::size_t>(s.max_in_rows * width + 1), nan);
    const tree::NodeStack local = stack_of(leaves, width, first[r], end[r]);
    EXPECT_EQ(local.nodes(), tree::decompose(first[r], end[r]));
    EXPECT_EQ(static_cast<int>(local.size()), s.local_rows);
    std::copy(local.data(), local.data() + local.size() * width, stk.begin());  // start_kernel
    stk[static_cast<std::size_t>(s.local_rows * width)] = changed[static_cast<std::size_t>(r)];
    int rows = s.local_rows;
    for (const merge::TreeStep& t : s.steps) {
      if (t.send) {
        EXPECT_EQ(t.rows, rows);
        message[static_cast<std::size_t>(r)].assign(stk.begin(), stk.begin() + rows * width + 1);
        break;
      }
      const auto& msg = message[static_cast<std::size_t>(t.peer)];
      EXPECT_EQ(static_cast<std::int64_t>(msg.size()), t.rows * width + 1) << "rank " << r;
      EXPECT_LE(t.rows, s.max_in_rows);
      EXPECT_EQ(t.plan.m, rows);
      EXPECT_LE(t.plan.n_keep, cap);
      std::copy(msg.begin(), msg.end(), in.begin());  // ncclRecv
      const double c = merge::merged_changed(stk.data(), in.data(), width, t.plan);
      for (std::int64_t e = 0; e < width; ++e)  // merge_kernel, any column order
        merge::merge_column(stk.data(), in.data(), width, t.plan, (e * 7 + 3) % width);
      stk[static_cast<std::size_t>(t.plan.n_keep * width)] = c;
      rows = t.plan.n_keep;
    }
    if (r == 0) {
      EXPECT_EQ(rows, s.final_rows);
      out.total.resize(static_cast<std::size_t>(width) + 1);
      for (std::int64_t e = 0; e < width; ++e)  // fold_kernel
        out.total[static_cast<std::size_t>(e)] = merge::fold_column(stk.data(), rows, width, e);
      out.total[static_cast<std::size_t>(width)] = stk[static_cast<std::size_t>(rows * width)];
    }
  }
  return out;
}

/// Rank q's blocks: `cuts` (size + 1 increasing block indices) as first / end.
void ranges(const std::vector<std::int64_t>& cuts, std::vector<std::int64_t>& first,
            std::vector<std::int64_t>& end) {
  first.assign(cuts.begin(), cuts.end() - 1);
  end.assign(cuts.begin() + 1, cuts.end());
}

TEST(NcclMergeHost, DeviceMergeGivesTheNodeStackBitsOnManyPartitions) {
  std::mt19937_64 g(2026);
  int order_sensitive = 0, cases = 0;
  for (int trial = 0; trial < 400; ++trial) {
    std::uniform_int_distribution<std::int64_t> bl(1, trial < 200 ? 40 : 700);
    std::uniform_int_distribution<int> ranks(1, trial % 3 == 0 ? 17 : 6);
    const std::int64_t blocks = bl(g);
    const int size = ranks(g);
    const std::int64_t width = std::vector<std::int64_t>{1, 2, 5, 33}[trial % 4];
    // Cuts: sorted random block indices (ranks without blocks included), 0 and blocks at the ends.
    std::uniform_int_distribution<std::int64_t> at(0, blocks);
    std::vector<std::int64_t> cuts{0};
    for (int q = 1; q < size; ++q) cuts.push_back(trial % 5 == 0 ? blocks * q / size : at(g));
    cuts.push_back(blocks);
    std::sort(cuts.begin(), cuts.end());
    std::vector<std::int64_t> first, end;
    ranges(cuts, first, end);
    const std::vector<double> leaves = leaf_values(blocks, width, g);
    std::vector<double> changed;
    double changed_total = 0;
    for (int q = 0; q < size; ++q) {
      changed.push_back(static_cast<double>((q * 37 + trial) % 1000));
      changed_total += changed.back();
    }
    SCOPED_TRACE("blocks " + std::to_string(blocks) + ", ranks " + std::to_string(size) +
                 ", width " + std::to_string(width) + ", trial " + std::to_string(trial));
    std::vector<double> want(static_cast<std::size_t>(width));
    stack_of(leaves, width, 0, blocks).total(want.data());
    const Emulated got = emulate(leaves, width, first, end, changed);
    ASSERT_EQ(got.total.size(), want.size() + 1);
    EXPECT_EQ(std::memcmp(got.total.data(), want.data(), want.size() * sizeof(double)), 0);
    EXPECT_EQ(got.total.back(), changed_total);
    // The data is order-sensitive: the plain left-to-right sum differs in some entry.
    for (std::int64_t e = 0; e < width; ++e) {
      double plain = 0;
      for (std::int64_t b = 0; b < blocks; ++b) plain += leaves[static_cast<std::size_t>(b * width + e)];
      if (plain != want[static_cast<std::size_t>(e)]) {
        ++order_sensitive;
        break;
      }
    }
    ++cases;
  }
  EXPECT_GT(order_sensitive, cases / 2) << "the values must expose a wrong summation order";
}

TEST(NcclMergeHost, PlanLeavesNodeStacksNodes) {
  std::mt19937_64 g(7);
  for (int trial = 0; trial < 2000; ++trial) {
    std::uniform_int_distribution<std::int64_t> at(0, 5000);
    std::int64_t a = at(g), b = at(g), c = at(g);
    if (a > b) std::swap(a, b);
    if (b > c) std::swap(b, c);
    if (a > b) std::swap(a, b);
    std::vector<tree::Node> stack = tree::decompose(a, b);
    const auto in = tree::decompose(b, c);
    const merge::MergePlan p = merge::plan_merge(stack, in);
    EXPECT_EQ(stack, tree::decompose(a, c)) << a << " " << b << " " << c;
    EXPECT_EQ(p.n_keep, static_cast<int>(stack.size()));
    EXPECT_EQ(p.n_ops, p.m + p.r - p.n_keep);
    for (int j = 0; j < p.n_keep; ++j) {
      EXPECT_GE(p.keep[j], j);
      if (j > 0) EXPECT_GT(p.keep[j], p.keep[j - 1]);
    }
  }
  // The largest block indices: far within the slot bound.
  std::vector<tree::Node> big = tree::decompose(1, (std::int64_t{1} << 61) - 1);
  EXPECT_LT(static_cast<int>(big.size()) * 2, merge::kMaxSlots);
}

TEST(NcclMergeHost, FoldIsTheRightFold) {
  std::mt19937_64 g(11);
  for (int m = 0; m <= 40; ++m) {
    const std::int64_t width = 3;
    const auto v = leaf_values(std::max(m, 1), width, g);
    std::vector<double> want(static_cast<std::size_t>(width));
    tree::right_fold(v.data(), m, width, 0, width, want.data());
    for (std::int64_t e = 0; e < width; ++e)
      EXPECT_EQ(merge::fold_column(v.data(), m, width, e), want[static_cast<std::size_t>(e)]);
  }
}

TEST(NcclMergeHost, ScheduleMatchesTheHostCombinesPairs) {
  // 5 ranks: 1 -> 0 (h = 1), 3 -> 2, then 2 -> 0 (h = 2), 4 -> 0 (h = 4).
  const std::vector<std::int64_t> first{0, 3, 7, 7, 9}, end{3, 7, 7, 9, 12};
  const auto s0 = merge::tree_schedule(0, 5, first, end);
  ASSERT_EQ(s0.steps.size(), 3u);
  EXPECT_EQ(s0.steps[0].peer, 1);
  EXPECT_EQ(s0.steps[1].peer, 2);
  EXPECT_EQ(s0.steps[2].peer, 4);
  for (const auto& t : s0.steps) EXPECT_FALSE(t.send);
  EXPECT_EQ(s0.steps[1].rows, static_cast<int>(tree::decompose(7, 9).size()));  // ranks 2, 3
  EXPECT_EQ(s0.final_rows, static_cast<int>(tree::decompose(0, 12).size()));
  const auto s3 = merge::tree_schedule(3, 5, first, end);
  ASSERT_EQ(s3.steps.size(), 1u);
  EXPECT_TRUE(s3.steps[0].send);
  EXPECT_EQ(s3.steps[0].peer, 2);
  const auto s2 = merge::tree_schedule(2, 5, first, end);  // no rows: receives, then sends
  ASSERT_EQ(s2.steps.size(), 2u);
  EXPECT_EQ(s2.local_rows, 0);
  EXPECT_FALSE(s2.steps[0].send);
  EXPECT_TRUE(s2.steps[1].send);
  EXPECT_EQ(s2.steps[1].peer, 0);
}

}  // namespace
}  // namespace kmeans::detail
