// How the dashboard's HTTP server spends its threads, so that clients which hold connections
// without using them (a request's headers trickled a byte at a time, idle sockets, many
// connections from one address) cannot keep the page from loading — on the loopback too, where
// every local process is one address.
//
// cpp-httplib hands each accepted connection to a pool worker that then waits, as long as bytes
// keep arriving, for the request's headers; seventeen trickling clients held all sixteen workers.
// LimitedHttpServer instead admits a connection on the listening thread, only while
//   - fewer than `max_connections` are open (each admitted one gets its own worker at once:
//     the pool has more workers than that cap, so nothing queues behind a slow client), and
//   - its address has fewer than `max_per_client` open (past it: 503 and closed, at once);
// and gives every request `header_timeout_s` from its first byte to deliver its headers (and
// body), and an idle kept-alive connection `idle_timeout_s` to start the next request.
#pragma once
#include <httplib.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "telemetry/dashboard_server.h"  // ConnectionLimits

namespace anetrain {

class LimitedHttpServer : public httplib::Server {
 public:
  explicit LimitedHttpServer(ConnectionLimits limits);
  ~LimitedHttpServer() override;
  // After bind: httplib listens with a backlog of 5, so a burst of connections (a page's, or
  // twenty slow ones) had the rest wait for the client's SYN retries, a second or more each.
  void widen_backlog();
  // After stop() and the listening thread's return: waits for the connections being served.
  void join_workers();
  int open_connections() const { return open_.load(); }

 private:
  bool process_and_close_socket(socket_t sock) override;  // httplib calls it per accepted socket
  void release(const std::string& client);
  bool stopping() const { return svr_sock_ == INVALID_SOCKET; }

  ConnectionLimits limits_;
  std::unique_ptr<httplib::ThreadPool> workers_;
  std::mutex mu_;
  std::map<std::string, int> per_client_;
  std::atomic<int> open_{0};
};

}  // namespace anetrain
