// Synchronisation inside one parallel region, for kernels that run several dependent phases per
// region (the fused decode layer: ~6 phases of 20–300 µs each per layer). libgomp's own barrier
// follows the short GOMP_SPINCOUNT that ensure_thread_spin_policy sets (shared machines) and
// then sleeps in the kernel; waking a sleeper costs tens of µs, a large share of a phase this
// short. Here a waiter spins a little longer (see kSpins) and then sleeps too (a futex, through
// std::atomic::wait), so a thread never burns more than that while the one it waits for has been
// descheduled by another process.
#pragma once
#include <algorithm>
#include <atomic>
#include <cstdint>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace anetrain {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// A reusable barrier for a team of fixed size (sense by generation count).
class SpinBarrier {
 public:
  explicit SpinBarrier(int team) : team_(team) {}
  void wait() {
    const uint32_t gen = generation_.load(std::memory_order_acquire);
    if (arrived_.fetch_add(1, std::memory_order_acq_rel) + 1 == team_) {
      arrived_.store(0, std::memory_order_relaxed);
      generation_.fetch_add(1, std::memory_order_acq_rel);
      generation_.notify_all();
      return;
    }
    for (int i = 0; i < kSpins; ++i) {
      if (generation_.load(std::memory_order_acquire) != gen) return;
      cpu_relax();
    }
    while (generation_.load(std::memory_order_acquire) == gen) generation_.wait(gen, std::memory_order_acquire);
  }

 private:
  // ~20 µs on Zen 4 (pause ≈ 15 ns); Intel's ~140-cycle pause makes it ~60 µs; arm64's yield is
  // a cycle or so, so there the wait goes to the futex almost at once (not measured on a Mac).
  static constexpr int kSpins = 1500;
  const int team_;
  alignas(64) std::atomic<int> arrived_{0};
  alignas(64) std::atomic<uint32_t> generation_{0};
};

// Hands out [begin, end) ranges of `total` items to a team, guided: each claim takes a share of
// what is left (at least `min_chunk`), so the first claims are long contiguous bands (one weight
// stream per thread) and the last are short, which lets a thread that was slowed by a neighbour
// be helped instead of waited for.
class GuidedRange {
 public:
  void reset(int total, int team, int min_chunk) {
    total_ = total;
    divisor_ = 2 * std::max(team, 1);
    min_chunk_ = std::max(min_chunk, 1);
    next_.store(0, std::memory_order_relaxed);
  }
  bool claim(int& begin, int& end) {
    int at = next_.load(std::memory_order_relaxed);
    for (;;) {
      if (at >= total_) return false;
      const int take = std::max(min_chunk_, (total_ - at) / divisor_);
      const int stop = std::min(total_, at + take);
      if (next_.compare_exchange_weak(at, stop, std::memory_order_relaxed)) {
        begin = at;
        end = stop;
        return true;
      }
    }
  }

 private:
  int total_ = 0, divisor_ = 2, min_chunk_ = 1;
  alignas(64) std::atomic<int> next_{0};
};

}  // namespace anetrain
