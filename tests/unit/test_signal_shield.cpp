// Signals never reach a computing thread (core/signal_shield.h). oneDNN's f32 GEMM kernels up to
// 3.11.1 point rsp at the heap while they run, so a handler run on such a thread corrupts the heap:
// on a Zen 3 the first check below, with the catcher replaced by a plain sigaction, aborted in
// malloc within a few hundred products. The checks do not wait for a crash: they record which
// thread each signal was handled on and require that it was none of those that compute.
#include <gtest/gtest.h>
#include <omp.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "backends/cpu/gemm.h"
#include "core/signal_shield.h"

namespace anetrain {
namespace {

constexpr int kMaxThreads = 256;
pid_t g_computing[kMaxThreads];  // written before any signal is sent, read by the handler
std::atomic<int> g_computing_n{0};
std::atomic<int> g_taken{0};
std::atomic<int> g_taken_while_computing{0};

pid_t this_thread_id() { return pid_t(::syscall(SYS_gettid)); }

extern "C" void note_signal(int) {
  const pid_t me = this_thread_id();
  for (int i = 0; i < g_computing_n.load(); ++i)
    if (g_computing[i] == me) g_taken_while_computing.fetch_add(1);
  g_taken.fetch_add(1);
}

// The calling thread (when `with_caller`) and every OpenMP thread that computes for it.
void record_computing_threads(bool with_caller) {
  const int width = std::min(kMaxThreads - 1, std::max(omp_get_max_threads(), omp_get_num_procs()));
  std::vector<pid_t> ids(size_t(width), 0);
#pragma omp parallel num_threads(width)
  ids[size_t(omp_get_thread_num())] = this_thread_id();
  int n = 0;
  for (pid_t id : ids)
    if (id != 0 && (with_caller || id != this_thread_id())) g_computing[n++] = id;
  g_computing_n = n;
  g_taken = 0;
  g_taken_while_computing = 0;
}

// Products of the shape training's classifier sends (oneDNN's jit GEMM on AVX2 and AVX-512), each
// compared bit for bit with the first.
int products_until(const std::atomic<bool>& done_sending, int at_least) {
  const int M = 256, N = 288, K = 2000;
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(-0.5f, 0.5f);
  std::vector<float> a(size_t(M) * K), b(size_t(N) * K), c(size_t(M) * N), first(size_t(M) * N);
  for (auto& v : a) v = u(rng);
  for (auto& v : b) v = u(rng);
  Gemm g;
  g.f32(a.data(), false, b.data(), true, first.data(), M, N, K, false);
  int n = 0;
  while (n < at_least || !done_sending) {
    g.f32(a.data(), false, b.data(), true, c.data(), M, N, K, false);
    EXPECT_EQ(0, std::memcmp(c.data(), first.data(), c.size() * sizeof(float))) << "product " << n;
    ++n;
  }
  return n;
}

// A signal every 100 µs at the process, for `duration`.
std::thread storm(int sig, std::chrono::milliseconds duration, std::atomic<bool>& done, std::atomic<int>& sent) {
  return std::thread([sig, duration, &done, &sent] {
    const auto until = std::chrono::steady_clock::now() + duration;
    while (std::chrono::steady_clock::now() < until) {
      ::kill(::getpid(), sig);
      sent.fetch_add(1);
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    done = true;
  });
}

TEST(SignalShield, CatcherTakesEverySignalWhileProductsRun) {
  record_computing_threads(/*with_caller=*/true);
  std::atomic<bool> done{false};
  std::atomic<int> sent{0};
  int products = 0;
  {
    const SignalCatcher catcher({SIGUSR2}, note_signal);
    std::thread sender = storm(SIGUSR2, std::chrono::milliseconds(600), done, sent);
    products = products_until(done, 20);
    sender.join();
    // The last ones sent may still be on their way to the catcher.
    for (int i = 0; i < 100 && g_taken == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_GT(sent.load(), 100);
  EXPECT_GT(g_taken.load(), 10) << "signals sent " << sent << ", products " << products;
  EXPECT_EQ(0, g_taken_while_computing.load()) << "of " << g_taken << " signals handled";
  // The disposition is back to what it was (default), and the mask too.
  struct sigaction now {};
  sigaction(SIGUSR2, nullptr, &now);
  EXPECT_EQ(SIG_DFL, now.sa_handler);
  sigset_t mask;
  pthread_sigmask(SIG_SETMASK, nullptr, &mask);
  EXPECT_FALSE(sigismember(&mask, SIGUSR2));
}

// A library call holds the host's signals until it returns; then they run on the caller as usual.
TEST(SignalShield, LibraryCallHoldsTheHostsSignalsUntilItReturns) {
  struct sigaction sa {}, old {};
  sa.sa_handler = note_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGUSR2, &sa, &old);
  record_computing_threads(/*with_caller=*/false);
  std::atomic<bool> done{false};
  std::atomic<int> sent{0};
  int taken_on_caller_during_call = 0;
  {
    const LibraryCallSignals call;
    ::pthread_kill(::pthread_self(), SIGUSR2);  // aimed at the caller itself: must wait
    std::thread sender = storm(SIGUSR2, std::chrono::milliseconds(300), done, sent);
    products_until(done, 10);
    sender.join();
    taken_on_caller_during_call = g_taken;  // no other thread of this test blocks nothing
    {
      const HostCodeSignals callback;  // the host's own code, inside the call: its signals run
      ::pthread_kill(::pthread_self(), SIGUSR2);
      EXPECT_GE(g_taken.load(), taken_on_caller_during_call + 1) << "a signal waited through the host's callback";
    }
    const int after_callback = g_taken;
    ::pthread_kill(::pthread_self(), SIGUSR2);
    EXPECT_EQ(after_callback, g_taken.load()) << "after the callback the call holds signals again";
  }
  EXPECT_GT(g_taken.load(), taken_on_caller_during_call) << "the held signal did not run when the call returned";
  EXPECT_EQ(0, g_taken_while_computing.load()) << "an OpenMP thread took a signal";
  sigaction(SIGUSR2, &old, nullptr);
}

}  // namespace
}  // namespace anetrain
