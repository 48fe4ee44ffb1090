#include "core/threads.h"

#include <omp.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <string>

#include <unistd.h>

#if defined(ANETRAIN_BLAS_OPENBLAS)
extern "C" void openblas_set_num_threads(int);
#endif

namespace anetrain {

namespace {
// Set beside GOMP_SPINCOUNT when anetrain chose it, so children can tell it from a user's.
constexpr const char* kChosenMark = "ANETRAIN_CHOSE_GOMP_SPINCOUNT";
// 0 until a library caller sets a count; until then a call runs with the count the process
// started with (OMP_NUM_THREADS, else all cores), read when the library loads — not with what a
// training session set on the calling thread for its own steps.
std::atomic<int> g_library_threads{0};
const int g_initial_threads = omp_get_max_threads();
}  // namespace

void unset_chosen_thread_spin() {
  if (!std::getenv(kChosenMark)) return;
  ::unsetenv("GOMP_SPINCOUNT");
  ::unsetenv(kChosenMark);
}

int thread_spin_count(int procs_running) { return procs_running == 1 ? 5000 : 1000; }

int procs_running_now() {
  std::ifstream stat("/proc/stat");
  const std::string key = "procs_running ";
  for (std::string line; std::getline(stat, line);)
    if (line.compare(0, key.size(), key) == 0) return std::atoi(line.c_str() + key.size());
  return 0;
}

void ensure_thread_spin_policy(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") || std::getenv("GOMP_SPINCOUNT")) return;
  const std::string spins = std::to_string(thread_spin_count(procs_running_now()));
  if (::setenv("GOMP_SPINCOUNT", spins.c_str(), 1) != 0) return;
  ::setenv(kChosenMark, "1", 1);
  ::execv("/proc/self/exe", argv);
  // No /proc (or exec refused): run on with OpenMP's default policy rather than not at all.
}

void set_compute_threads(int threads) {
  omp_set_num_threads(threads);
#if defined(ANETRAIN_BLAS_OPENBLAS)
  openblas_set_num_threads(threads);
#endif
}

void set_library_threads(int threads) {
  g_library_threads.store(threads > 0 ? threads : omp_get_num_procs());
  use_library_threads();
}

void use_library_threads() {
  const int n = g_library_threads.load();
  set_compute_threads(n > 0 ? n : g_initial_threads);
}

}  // namespace anetrain
