// The spin policy the CLI sets for libgomp before it re-executes itself (core/threads.h): the
// longer spin only when this process is the machine's one runnable task, and the count of
// runnable tasks read from the running kernel.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "core/threads.h"

namespace anetrain {
namespace {

TEST(ThreadSpin, LongerOnlyWhenThisProcessRunsAlone) {
  EXPECT_EQ(thread_spin_count(1), 5000);
  // Another runnable task (or an unknown count) keeps the short spin that survives sharing.
  EXPECT_EQ(thread_spin_count(2), 1000);
  EXPECT_EQ(thread_spin_count(64), 1000);
  EXPECT_EQ(thread_spin_count(0), 1000);
}

TEST(ThreadSpin, RunnableTasksCountThisOne) {
#if defined(__linux__)
  // This test is running, so Linux counts at least one runnable task.
  EXPECT_GE(procs_running_now(), 1);
#else
  EXPECT_EQ(procs_running_now(), 0);
#endif
}

TEST(ThreadSpin, AUsersOwnSettingIsKept) {
  // The unit tests are not re-executed (only the CLI is), so here libgomp runs with whatever the
  // environment says; what is checked is that a user's own setting is never overridden.
  ::setenv("GOMP_SPINCOUNT", "77", 1);
  char arg0[] = "/nonexistent-anetrain";
  char* argv[] = {arg0, nullptr};
  ensure_thread_spin_policy(argv);  // returns at once: the user chose
  EXPECT_STREQ(std::getenv("GOMP_SPINCOUNT"), "77");
  ::unsetenv("GOMP_SPINCOUNT");
}

TEST(ThreadSpin, PeersGetTheirOwnDefaultNotOurs) {
  // A user's GOMP_SPINCOUNT reaches a benchmark's peer; the one anetrain chose does not.
  ::setenv("GOMP_SPINCOUNT", "77", 1);
  ::unsetenv("ANETRAIN_CHOSE_GOMP_SPINCOUNT");
  unset_chosen_thread_spin();
  EXPECT_STREQ(std::getenv("GOMP_SPINCOUNT"), "77");
  ::setenv("ANETRAIN_CHOSE_GOMP_SPINCOUNT", "1", 1);
  unset_chosen_thread_spin();
  EXPECT_EQ(std::getenv("GOMP_SPINCOUNT"), nullptr);
  EXPECT_EQ(std::getenv("ANETRAIN_CHOSE_GOMP_SPINCOUNT"), nullptr);
}

}  // namespace
}  // namespace anetrain
