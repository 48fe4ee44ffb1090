// `anetrain dashboard RUN...` and `train --dashboard`: a read-only HTTP server for a local
// browser. It serves only the embedded page and, per named run, that run's telemetry — parsed,
// checked and re-serialised, never a file path from the request — as JSON and as a server-sent
// event stream that follows the file while the run writes it. Binds 127.0.0.1 unless told
// otherwise; on a loopback address it also refuses requests whose Host header is not the
// loopback (a web page elsewhere cannot reach it through DNS rebinding). Connections are bounded
// in number and time (telemetry/dashboard_connections.h), and a reply's memory is bounded
// whatever the size of the telemetry it carries.
#pragma once
#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

namespace anetrain {

class LimitedHttpServer;

struct ConnectionLimits {
  int max_connections = 36;     // open at once; the server has a worker for each, and 4 more
  int max_per_client = 24;      // from one address (a browser opens at most 6 per server)
  double header_timeout_s = 5;  // from a request's first byte to the end of its headers
  double idle_timeout_s = 5;    // a kept-alive connection's wait for its next request
  double write_timeout_s = 5;   // a client that takes nothing of a reply for this long is dropped
};

struct DashboardOptions {
  std::vector<std::string> runs;  // run directories (or telemetry.jsonl files)
  std::string host = "127.0.0.1";
  int port = 8765;                // 0: any free port
  double poll_s = 0.5;            // how often a stream looks for new lines
};

class DashboardServer {
 public:
  explicit DashboardServer(DashboardOptions o, ConnectionLimits limits = {});
  ~DashboardServer();
  DashboardServer(const DashboardServer&) = delete;
  DashboardServer& operator=(const DashboardServer&) = delete;

  // Binds and serves from a background thread; returns the port. Throws Error when the address
  // cannot be bound (in use, not an address of this machine) or the page is not in this build.
  int start();
  void stop();
  // Where to point a browser: the address bound, or for a wildcard (0.0.0.0, ::) this machine's
  // host name — 127.0.0.1 there would hide that every interface answers.
  std::string url() const;
  // What `dashboard` and `train --dashboard` both print once listening: the URL with `note`, and
  // on any address but the loopback the warning that whoever reaches it can read the runs.
  // Control characters (from a run's path) come escaped.
  std::string banner(const std::string& note) const;

  // What a run is called on the page: its directory's name, made unique.
  static std::vector<std::string> run_names(const std::vector<std::string>& runs);

 private:
  void add_routes();
  nlohmann::json runs_json() const;  // [{"id", "name"}] for /api/runs and the stream's hello
  DashboardOptions o_;
  ConnectionLimits limits_;
  std::vector<std::string> names_, files_;
  std::unique_ptr<LimitedHttpServer> server_;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> open_streams_{0};
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;  // streams sleep on it between polls; stop() wakes them
  int port_ = 0;
};

}  // namespace anetrain
