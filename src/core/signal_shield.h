// Keeps asynchronous signals off the threads that compute.
//
// oneDNN's f32 GEMM kernels up to 3.11.1 (Debian 12 ships 2.6) point the stack pointer at a heap
// buffer while they run (oneDNN issue 4845, fixed in 3.11.2): a signal handled on such a thread
// gets its frame written into the heap, and malloc aborts later ("corrupted size vs. prev_size").
// On a Zen 3 (oneDNN's AVX2 kernel) a SIGUSR1 every millisecond with a handler installed aborted
// a loop of 256×2000×288 products within 300 of them, at 1 thread or 2; the SSE4.1 and AVX kernels
// did not. Training met it as a crash of the step a Ctrl-C arrived in — the very step whose
// checkpoint the Ctrl-C asks for.
//
// So a thread that computes never takes a signal that has a handler: the process's own handlers
// run on a catcher thread that does nothing else, and a library call holds the host's signals off
// until it returns. Both block on the OpenMP threads too, for good: they only ever compute.
#pragma once

#include <signal.h>

#include <condition_variable>
#include <initializer_list>
#include <mutex>
#include <thread>
#include <vector>

namespace anetrain {

// For the length of one library call: the host's asynchronous signals wait until the call returns
// (its handlers then run as usual), and its OpenMP threads never take them (blocked once for each
// calling thread). A nested call restores its caller's blocked mask.
class LibraryCallSignals {
 public:
  LibraryCallSignals();
  ~LibraryCallSignals();
  LibraryCallSignals(const LibraryCallSignals&) = delete;
  LibraryCallSignals& operator=(const LibraryCallSignals&) = delete;

 private:
  sigset_t previous_;
  bool outermost_ = false;
};

// Within a library call, while the host's code runs (a token callback): the host's signals open
// again on this thread, which is not computing, so a Python Ctrl-C interrupts a long generation.
class HostCodeSignals {
 public:
  HostCodeSignals();
  ~HostCodeSignals();
  HostCodeSignals(const HostCodeSignals&) = delete;
  HostCodeSignals& operator=(const HostCodeSignals&) = delete;

 private:
  sigset_t during_call_;
};

// The process's own handler for `signals`, run on a thread of its own: while this lives the
// calling thread and its OpenMP threads block them, and the catcher — the only thread that cannot
// be computing — takes them. The handler must be async-signal-safe still: a thread this process
// did not create (an MPI library's) may take one too. Destruction restores the previous
// dispositions, stops the catcher and restores the calling thread's mask, in that order.
class SignalCatcher {
 public:
  SignalCatcher(std::initializer_list<int> signals, void (*handler)(int));
  ~SignalCatcher();
  SignalCatcher(const SignalCatcher&) = delete;
  SignalCatcher& operator=(const SignalCatcher&) = delete;

 private:
  sigset_t set_{};
  sigset_t previous_mask_{};
  std::vector<std::pair<int, struct sigaction>> previous_actions_;
  std::mutex mu_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread catcher_;
};

}  // namespace anetrain
