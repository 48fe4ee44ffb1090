#include "core/threads.h"

#include <cstdlib>

#include <unistd.h>

namespace anetrain {

void ensure_short_thread_spin(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") || std::getenv("GOMP_SPINCOUNT")) return;
  if (::setenv("GOMP_SPINCOUNT", "1000", 1) != 0) return;
  ::execv("/proc/self/exe", argv);
  // No /proc (or exec refused): run on with OpenMP's default policy rather than not at all.
}

}  // namespace anetrain
