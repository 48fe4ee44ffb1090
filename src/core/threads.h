// How anetrain's threads wait. OpenMP's default (GNU libgomp) spins ~300k iterations at every
// barrier before sleeping: fine on an idle machine, a collapse on a shared one, where a spinning
// thread burns the time slice that the descheduled thread it waits for needs. Measured on
// 2 cores with one busy-looping process beside a stories15m bf16 step: default 600–830 ms,
// GOMP_SPINCOUNT=100000 2,100 ms, OMP_WAIT_POLICY=passive 500 ms, GOMP_SPINCOUNT=1000 540 ms —
// and idle: 285, 270, 360 and 275 ms. Steps of many small products (a LoRA step: ~700 parallel
// regions, most a few hundred µs apart) pay a wake-up at nearly every region with 1000: idle,
// 5000 made a stories110m LoRA step 12% faster, and cost 17% beside a busy process (not the
// collapse of 100000). So the spin is 5000 when nothing else runs at start, else 1000.
#pragma once

namespace anetrain {

// libgomp reads its wait policy once, when it loads, before main() runs; so when the user set
// neither OMP_WAIT_POLICY nor GOMP_SPINCOUNT, this sets GOMP_SPINCOUNT (thread_spin_count of the
// machine's runnable tasks now) and re-executes the program (same pid, same arguments). Returns
// only when no re-exec was needed or it failed.
void ensure_thread_spin_policy(char** argv);

// libgomp's spin iterations for a machine with this many runnable tasks, counting this process
// (Linux's procs_running; 0 when unknown): the longer spin only when this process runs alone.
int thread_spin_count(int procs_running);

// Runnable tasks on the machine now (/proc/stat's procs_running), or 0 where unknown.
int procs_running_now();

// Removes the GOMP_SPINCOUNT that ensure_thread_spin_policy chose (a user's own is kept), so a
// program started from here — a benchmark's peer — runs under its own default, not ours.
void unset_chosen_thread_spin();

// Sets the thread count of OpenMP and of the BLAS (OpenBLAS keeps its own; Accelerate chooses
// for itself and has nothing to set) for the calling thread: OpenMP keeps the count per thread.
void set_compute_threads(int threads);

// A library's count (the C API's anetrain_set_threads: 0 = all cores; unset: the count the
// process started with), kept for the process and applied by use_library_threads at every call,
// on whichever thread makes it. Without it a call
// from another thread ran with OpenMP's default count, not the one set — and on CPUs where
// oneDNN's kernels split the work by thread count (its AVX2 ones) with other bits.
void set_library_threads(int threads);
void use_library_threads();

}  // namespace anetrain
