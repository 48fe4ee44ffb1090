#include "core/signal_shield.h"

#include <omp.h>
#include <pthread.h>

#include <algorithm>

namespace anetrain {

namespace {

// Blocks `signals` on every OpenMP thread that computes for the calling thread: the ones that
// exist, and — since a thread starts with its creator's mask — the ones created later while the
// caller blocks them.
void block_on_openmp_threads(const sigset_t& signals) {
  // libgomp keeps one pool of threads per calling thread and a team of n uses the first n - 1 of
  // them, so a region as wide as the widest team run so far reaches every one that exists. The
  // default width is the widest a process runs unless told otherwise (--threads above the core
  // count grows the pool later, from a caller that blocks the signals: those inherit the block).
  const int width = std::max(omp_get_max_threads(), omp_get_num_procs());
#pragma omp parallel num_threads(width)
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
}

// The signals that arrive from outside at any moment: all but those a thread raises on itself
// (faults, SIGABRT, SIGPIPE) and SIGKILL/SIGSTOP, which nothing blocks.
sigset_t asynchronous_signals() {
  sigset_t s;
  sigfillset(&s);
  for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS, SIGABRT, SIGPIPE, SIGKILL, SIGSTOP})
    sigdelset(&s, sig);
  return s;
}

// The calling thread's mask before its outermost library call (for HostCodeSignals).
thread_local const sigset_t* t_host_mask = nullptr;

}  // namespace

LibraryCallSignals::LibraryCallSignals() {
  static const sigset_t held = asynchronous_signals();
  pthread_sigmask(SIG_BLOCK, &held, &previous_);
  outermost_ = t_host_mask == nullptr;
  if (outermost_) t_host_mask = &previous_;
  // Once per calling thread: its pool's threads keep the block, and threads added later are
  // created while this one blocks.
  thread_local bool pool_blocked = false;
  if (!pool_blocked) {
    block_on_openmp_threads(held);
    pool_blocked = true;
  }
}

LibraryCallSignals::~LibraryCallSignals() {
  if (outermost_) t_host_mask = nullptr;
  pthread_sigmask(SIG_SETMASK, &previous_, nullptr);
}

HostCodeSignals::HostCodeSignals() {
  pthread_sigmask(SIG_SETMASK, nullptr, &during_call_);
  if (t_host_mask) pthread_sigmask(SIG_SETMASK, t_host_mask, nullptr);
}

HostCodeSignals::~HostCodeSignals() { pthread_sigmask(SIG_SETMASK, &during_call_, nullptr); }

SignalCatcher::SignalCatcher(std::initializer_list<int> signals, void (*handler)(int)) {
  sigemptyset(&set_);
  for (int sig : signals) sigaddset(&set_, sig);
  // Blocked here first, so that no signal finds this thread between the handler's installation
  // and the catcher's start; the catcher is created now, with this mask, and unblocks its own.
  pthread_sigmask(SIG_BLOCK, &set_, &previous_mask_);
  block_on_openmp_threads(set_);
  catcher_ = std::thread([this] {
    pthread_sigmask(SIG_UNBLOCK, &set_, nullptr);
    std::unique_lock<std::mutex> lock(mu_);
    wake_.wait(lock, [this] { return stop_; });
    // Blocked again before it ends, so a signal on its way is left pending for the restored
    // dispositions rather than handled by a handler being removed.
    pthread_sigmask(SIG_BLOCK, &set_, nullptr);
  });
  struct sigaction sa {};
  sa.sa_handler = handler;
  sigemptyset(&sa.sa_mask);
  for (int sig : signals) {
    struct sigaction old {};
    sigaction(sig, &sa, &old);
    previous_actions_.emplace_back(sig, old);
  }
}

SignalCatcher::~SignalCatcher() {
  for (const auto& [sig, old] : previous_actions_) sigaction(sig, &old, nullptr);
  {
    std::lock_guard<std::mutex> g(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  catcher_.join();
  pthread_sigmask(SIG_SETMASK, &previous_mask_, nullptr);
}

}  // namespace anetrain
