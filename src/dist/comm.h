// The processes that train one run together (data parallel). A run in one process talks to a
// SoloComm, whose operations do nothing; `mpirun -np N anetrain train ...` gives every rank an
// MpiComm (dist/mpi_comm.cpp, built when Open MPI is found). The trainer calls both alike.
//
// Every wait is bounded (--dist-timeout): a rank that dies ends the job through mpirun, and a
// rank that hangs is named by the others, who then abort the job rather than wait forever.
#pragma once
#include <cstddef>
#include <memory>
#include <string>

namespace anetrain {

class Comm {
 public:
  virtual ~Comm() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // Ranks on this machine (they share its cores: each gets cores / local_size threads by default).
  virtual int local_size() const = 0;
  // "rank 1 (host node3, pid 4242)": how messages name a rank.
  virtual std::string who(int rank) const = 0;

  // Gradient buckets: sums `n` floats in place across ranks. start_sum returns at once;
  // progress() lets started sums advance while the caller computes (MPI moves data only inside
  // its calls); finish_sums waits for all of them. `what` names the wait in a hang report.
  virtual void start_sum(float* data, size_t n) = 0;
  virtual void progress() = 0;
  virtual void finish_sums(const std::string& what) = 0;

  // all[r*n + i] = rank r's mine[i], on every rank.
  virtual void allgather(const double* mine, int n, double* all, const std::string& what) = 0;
  // Rank 0's bytes to every rank.
  virtual void broadcast(void* data, size_t bytes, const std::string& what) = 0;
  // Ends every rank of the job now, after printing `why` (rank-prefixed) on stderr.
  [[noreturn]] virtual void abort(const std::string& why, int code) = 0;

  void set_timeout(double seconds) { timeout_s_ = seconds; }
  double timeout() const { return timeout_s_; }

 protected:
  double timeout_s_ = 300;
};

// One process: nothing to exchange.
class SoloComm final : public Comm {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  int local_size() const override { return 1; }
  std::string who(int) const override { return "rank 0"; }
  void start_sum(float*, size_t) override {}
  void progress() override {}
  void finish_sums(const std::string&) override {}
  void allgather(const double* mine, int n, double* all, const std::string&) override;
  void broadcast(void*, size_t, const std::string&) override {}
  [[noreturn]] void abort(const std::string& why, int code) override;
};

// How many processes the launcher started (mpirun, srun), from its environment; 1 when none did.
int launcher_world_size();

// The job's communicator: an MpiComm when a launcher started more than one rank (MPI_Init is
// called only then, so a plain run never touches MPI), else a SoloComm. Throws when N > 1 ranks
// were launched but this build has no MPI (N copies would otherwise train the same run over each
// other). Defined in dist/world.cpp, which only the `anetrain` program links.
std::unique_ptr<Comm> open_world();

}  // namespace anetrain
