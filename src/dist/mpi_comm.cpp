// Data-parallel ranks over MPI (Open MPI in our builds). Only the main thread calls MPI
// (MPI_THREAD_FUNNELED): OpenMP's workers compute, the main thread starts and polls the sums.
//
// A bounded wait needs to know who is missing when it runs out. Each wait therefore carries
// "arrival" messages beside the operation itself: every rank tells rank 0 it reached the wait,
// and rank 0 tells every rank. Rank 0 can then name the ranks that never arrived; another rank
// can tell whether rank 0 is the one missing. They complete in the same poll as the operation.
// The C interface only: mpi.h would otherwise pull in the deprecated C++ bindings (libmpi_cxx).
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <exception>
#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>

#include "core/error.h"
#include "dist/comm.h"

namespace anetrain {
namespace {

constexpr int kArrivalTag = 4711;

class MpiComm final : public Comm {
 public:
  MpiComm() {
    int provided = 0;
    if (MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
      fail("MPI_Init_thread failed");
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    // An MPI that did not recognise the launcher starts every process as a world of one: N copies
    // would then train the same run over each other.
    if (size_ != launcher_world_size())
      fail("the launcher started " + std::to_string(launcher_world_size()) + " ranks but MPI sees " +
           std::to_string(size_) + " (an MPI library that does not match the launcher? under Slurm: srun --mpi=pmix)");
    // Errors return codes instead of ending the process silently: we report them by name.
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm local;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &local);
    MPI_Comm_size(local, &local_size_);
    MPI_Comm_free(&local);
    // Host and pid of every rank, for messages that name one.
    char mine[kIdLen] = {};
    char host[64] = {};
    gethostname(host, sizeof host - 1);
    std::snprintf(mine, sizeof mine, "%s, pid %d", host, int(getpid()));
    ids_.resize(size_t(size_) * kIdLen);
    check(MPI_Allgather(mine, kIdLen, MPI_CHAR, ids_.data(), kIdLen, MPI_CHAR, MPI_COMM_WORLD), "MPI_Allgather");
  }

  ~MpiComm() override {
    // Finalize waits for every rank; a rank unwinding an error must end the job instead.
    if (std::uncaught_exceptions() > 0) MPI_Abort(MPI_COMM_WORLD, 1);
    MPI_Finalize();
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int local_size() const override { return local_size_; }
  std::string who(int r) const override {
    return "rank " + std::to_string(r) + " (" + std::string(&ids_[size_t(r) * kIdLen]) + ")";
  }

  void start_sum(float* data, size_t n) override {
    // MPI counts are ints: a bucket larger than that goes as several operations.
    for (size_t off = 0; off < n; off += size_t(INT_MAX / 2)) {
      const int count = int(std::min(n - off, size_t(INT_MAX / 2)));
      MPI_Request r;
      check(MPI_Iallreduce(MPI_IN_PLACE, data + off, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &r), "MPI_Iallreduce");
      pending_.push_back(r);
    }
  }

  void progress() override {
    if (pending_.empty()) return;
    int done = 0;
    MPI_Testall(int(pending_.size()), pending_.data(), &done, MPI_STATUSES_IGNORE);
    if (done) pending_.clear();
  }

  void finish_sums(const std::string& what) override {
    bounded_wait(pending_, what);
    pending_.clear();
  }

  void allgather(const double* mine, int n, double* all, const std::string& what) override {
    std::vector<MPI_Request> r(1);
    check(MPI_Iallgather(mine, n, MPI_DOUBLE, all, n, MPI_DOUBLE, MPI_COMM_WORLD, &r[0]), "MPI_Iallgather");
    bounded_wait(r, what);
  }

  void broadcast(void* data, size_t bytes, const std::string& what) override {
    std::vector<MPI_Request> r;
    auto* p = static_cast<char*>(data);
    for (size_t off = 0; off < bytes; off += size_t(INT_MAX / 2)) {
      MPI_Request q;
      check(MPI_Ibcast(p + off, int(std::min(bytes - off, size_t(INT_MAX / 2))), MPI_BYTE, 0, MPI_COMM_WORLD, &q),
            "MPI_Ibcast");
      r.push_back(q);
    }
    bounded_wait(r, what);
  }

  [[noreturn]] void abort(const std::string& why, int code) override {
    // After a progress line (rank 0 on a terminal), start on a line of our own.
    std::fprintf(stderr, "%sanetrain (rank %d): %s\n", rank_ == 0 && isatty(STDERR_FILENO) ? "\n" : "", rank_,
                 why.c_str());
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, code);
    std::_Exit(code);  // MPI_Abort does not return; this only satisfies [[noreturn]]
  }

 private:
  static constexpr int kIdLen = 96;

  void check(int rc, const char* call) {
    if (rc == MPI_SUCCESS) return;
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    abort(std::string(call) + " failed: " + std::string(msg, size_t(len)), 3);
  }

  // Waits for `ops` plus this wait's arrival messages, for at most the timeout.
  void bounded_wait(std::vector<MPI_Request>& ops, const std::string& what) {
    ++seq_;
    arrived_.assign(size_t(size_), 0);
    std::vector<MPI_Request> all(ops);
    std::vector<std::pair<int, size_t>> arrival_recvs;  // (peer, index in `all`)
    for (int p = 0; p < size_; ++p) {
      if (p == rank_ || (rank_ != 0 && p != 0)) continue;
      MPI_Request s, r;
      check(MPI_Isend(&seq_, 1, MPI_LONG_LONG, p, kArrivalTag, MPI_COMM_WORLD, &s), "MPI_Isend");
      check(MPI_Irecv(&arrived_[size_t(p)], 1, MPI_LONG_LONG, p, kArrivalTag, MPI_COMM_WORLD, &r), "MPI_Irecv");
      all.push_back(s);
      arrival_recvs.emplace_back(p, all.size());
      all.push_back(r);
    }
    using Clock = std::chrono::steady_clock;
    const auto start = Clock::now();
    for (;;) {
      int done = 0;
      check(MPI_Testall(int(all.size()), all.data(), &done, MPI_STATUSES_IGNORE), "MPI_Testall");
      if (done) break;
      const double waited = std::chrono::duration<double>(Clock::now() - start).count();
      if (waited > timeout_s_) report_hang(what, all, arrival_recvs);
      // Yield rather than sleep while data may still be moving (every fragment needs a poll, so
      // long sleeps would throttle a large all-reduce); after 2 s (a peer still computing, or
      // writing a checkpoint) short sleeps, so a waiting rank gives its core away.
      if (waited < 2.0) sched_yield();
      else std::this_thread::sleep_for(std::chrono::microseconds(20));
    }
  }

  [[noreturn]] void report_hang(const std::string& what, std::vector<MPI_Request>& all,
                                const std::vector<std::pair<int, size_t>>& arrival_recvs) {
    std::vector<int> missing;
    for (const auto& [peer, index] : arrival_recvs) {
      int arrived = 0;
      MPI_Test(&all[index], &arrived, MPI_STATUS_IGNORE);
      if (!arrived) missing.push_back(peer);
    }
    char secs[32];
    std::snprintf(secs, sizeof secs, "%g s", timeout_s_);
    if (!missing.empty()) {
      std::string names;
      for (int p : missing) names += (names.empty() ? "" : ", ") + who(p);
      abort(names + (missing.size() == 1 ? " has" : " have") + " not reached " + what + " within " + secs +
                ": hung or stopped. Ending the job; the checkpoints on disk are intact (continue with --resume).",
            4);
    }
    // Rank 0 arrived and waits too, so it sees who is missing and ends the job; give it time to.
    std::this_thread::sleep_for(std::chrono::seconds(10));
    abort("another rank has not reached " + what + " within " + std::string(secs) + "; ending the job", 4);
  }

  int rank_ = 0, size_ = 1, local_size_ = 1;
  std::vector<char> ids_;
  std::vector<MPI_Request> pending_;
  long long seq_ = 0;
  std::vector<long long> arrived_;
};

}  // namespace

std::unique_ptr<Comm> make_mpi_comm() { return std::make_unique<MpiComm>(); }

}  // namespace anetrain
