// `anetrain dashboard RUN...` and `train --dashboard`: a read-only HTTP server for a local
// browser. It serves only the embedded page and, per named run, that run's telemetry — parsed,
// checked and re-serialised, never a file path from the request — as JSON and as a server-sent
// event stream that follows the file while the run writes it. Binds 127.0.0.1 unless told
// otherwise; on a loopback address it also refuses requests whose Host header is not the
// loopback (a web page elsewhere cannot reach it through DNS rebinding).
#pragma once
#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

namespace httplib {
class Server;
}

namespace anetrain {

struct DashboardOptions {
  std::vector<std::string> runs;  // run directories (or telemetry.jsonl files)
  std::string host = "127.0.0.1";
  int port = 8765;                // 0: any free port
  double poll_s = 0.5;            // how often a stream looks for new lines
};

class DashboardServer {
 public:
  explicit DashboardServer(DashboardOptions o);
  ~DashboardServer();
  DashboardServer(const DashboardServer&) = delete;
  DashboardServer& operator=(const DashboardServer&) = delete;

  // Binds and serves from a background thread; returns the port. Throws Error when the address
  // cannot be bound (in use, not an address of this machine) or the page is not in this build.
  int start();
  void stop();
  std::string url() const;

  // What a run is called on the page: its directory's name, made unique.
  static std::vector<std::string> run_names(const std::vector<std::string>& runs);

 private:
  void add_routes();
  nlohmann::json runs_json() const;  // [{"id", "name"}] for /api/runs and the stream's hello
  DashboardOptions o_;
  std::vector<std::string> names_, files_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> open_streams_{0};
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;  // streams sleep on it between polls; stop() wakes them
  int port_ = 0;
};

}  // namespace anetrain
