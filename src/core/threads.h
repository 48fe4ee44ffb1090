// How anetrain's threads wait. OpenMP's default (GNU libgomp) spins ~300k iterations at every
// barrier before sleeping: fine on an idle machine, a collapse on a shared one, where a spinning
// thread burns the time slice that the descheduled thread it waits for needs. Measured on
// 2 cores with one busy-looping process beside a stories15m bf16 step: default 600–830 ms,
// GOMP_SPINCOUNT=100000 2,100 ms, OMP_WAIT_POLICY=passive 500 ms, GOMP_SPINCOUNT=1000 540 ms —
// and idle: 285, 270, 360 and 275 ms. A short spin keeps the idle speed and survives sharing.
#pragma once

namespace anetrain {

// libgomp reads its wait policy once, when it loads, before main() runs; so when the user set
// neither OMP_WAIT_POLICY nor GOMP_SPINCOUNT, this sets GOMP_SPINCOUNT and re-executes the
// program (same pid, same arguments). Returns only when no re-exec was needed or it failed.
void ensure_short_thread_spin(char** argv);

// Sets the thread count of OpenMP and of the BLAS (OpenBLAS keeps its own; Accelerate chooses
// for itself and has nothing to set).
void set_compute_threads(int threads);

}  // namespace anetrain
