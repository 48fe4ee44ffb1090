#include "core/threads.h"

#include <omp.h>

#include <cstdlib>

#include <unistd.h>

#if defined(ANETRAIN_BLAS_OPENBLAS)
extern "C" void openblas_set_num_threads(int);
#endif

namespace anetrain {

void ensure_short_thread_spin(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") || std::getenv("GOMP_SPINCOUNT")) return;
  if (::setenv("GOMP_SPINCOUNT", "1000", 1) != 0) return;
  ::execv("/proc/self/exe", argv);
  // No /proc (or exec refused): run on with OpenMP's default policy rather than not at all.
}

void set_compute_threads(int threads) {
  omp_set_num_threads(threads);
#if defined(ANETRAIN_BLAS_OPENBLAS)
  openblas_set_num_threads(threads);
#endif
}

}  // namespace anetrain
