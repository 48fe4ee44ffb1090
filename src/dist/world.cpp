#include "core/error.h"
#include "dist/comm.h"

namespace anetrain {

#ifdef ANETRAIN_HAVE_MPI
std::unique_ptr<Comm> make_mpi_comm();  // dist/mpi_comm.cpp
#endif

std::unique_ptr<Comm> open_world() {
  const int launched = launcher_world_size();
  if (launched <= 1) return std::make_unique<SoloComm>();
#ifdef ANETRAIN_HAVE_MPI
  return make_mpi_comm();
#else
  fail("started as one of " + std::to_string(launched) +
       " ranks, but this anetrain was built without MPI, so they would all train the same run over each other.\n"
       "hint: apt-get install libopenmpi-dev openmpi-bin, then rebuild (cmake finds MPI by itself)");
#endif
}

}  // namespace anetrain
