// The dashboard against clients that hold connections instead of using them (run from this
// machine, so all on 127.0.0.1 like the page itself): twenty connections trickling a request's
// headers byte by byte must not keep the page from loading, a request that never finishes its
// headers is cut off, and one address cannot take every connection the server will serve.
// Everything here talks only to a server on 127.0.0.1 with a port the kernel picked.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <thread>
#include <vector>

#include "telemetry/dashboard_server.h"
#include "telemetry/web_assets.h"

namespace anetrain {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct RunFolder {
  fs::path dir = fs::temp_directory_path() / ("anetrain_dash_limits_" + std::to_string(::getpid()));
  RunFolder() {
    fs::create_directories(dir);
    std::ofstream(dir / "telemetry.jsonl") << R"({"event":"run_start","time":1})" << "\n"
                                           << R"({"event":"step","time":2,"step":1,"loss":5.5})" << "\n";
  }
  ~RunFolder() { fs::remove_all(dir); }
};

// A client socket driven by hand, to send a request as slowly as an attacker would.
class RawConnection {
 public:
  explicit RawConnection(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(uint16_t(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  ~RawConnection() { ::close(fd_); }
  bool connected() const { return connected_; }
  bool send_text(const std::string& s) { return ::send(fd_, s.data(), s.size(), MSG_NOSIGNAL) == ssize_t(s.size()); }
  // What the server sent within `ms`; *closed is set once it has closed the connection.
  std::string receive(int ms, bool* closed) {
    std::string got;
    const auto end = Clock::now() + std::chrono::milliseconds(ms);
    while (Clock::now() < end) {
      pollfd p{fd_, POLLIN, 0};
      const int left = int(std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now()).count());
      if (::poll(&p, 1, std::max(left, 0)) <= 0) break;
      char buf[4096];
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) {
        *closed = true;
        break;
      }
      got.append(buf, size_t(n));
    }
    return got;
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
};

// Connections that send a request's first line and then one header byte every 100 ms, forever.
class Tricklers {
 public:
  Tricklers(int port, int n) {
    for (int i = 0; i < n; ++i) {
      conns_.push_back(std::make_unique<RawConnection>(port));
      conns_.back()->send_text("GET /api/runs HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    }
    thread_ = std::thread([this] {
      while (!stop_) {
        for (auto& c : conns_) c->send_text("X");
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    });
  }
  ~Tricklers() {
    stop_ = true;
    thread_.join();
  }
  RawConnection& operator[](size_t i) { return *conns_[i]; }

 private:
  std::vector<std::unique_ptr<RawConnection>> conns_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

TEST(DashboardLimits, TwentyTricklingConnectionsDoNotStallThePage) {
  if (!web_page_built()) GTEST_SKIP() << "built without web/node_modules";
  RunFolder run;
  DashboardServer s(DashboardOptions{{run.dir.string()}, "127.0.0.1", 0});
  const int port = s.start();
  Tricklers slow(port, 20);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // all twenty accepted and trickling
  httplib::Client c("127.0.0.1", port);
  c.set_connection_timeout(2, 0);
  c.set_read_timeout(4, 0);
  for (const char* path : {"/", "/api/runs", "/api/runs/0/telemetry"}) {
    const auto t0 = Clock::now();
    auto r = c.Get(path);
    ASSERT_TRUE(r) << path << ": no answer while 20 connections trickle";
    EXPECT_EQ(r->status, 200) << path;
    EXPECT_LT(seconds_since(t0), 2.0) << path;
  }
  // The page's own event stream gets a worker too.
  httplib::Client sc("127.0.0.1", port);
  sc.set_read_timeout(4, 0);
  bool hello = false;
  const auto t0 = Clock::now();
  sc.Get("/api/stream", [&](const char* d, size_t n) {
    hello = std::string(d, n).find("event: hello") != std::string::npos;
    return !hello;
  });
  EXPECT_TRUE(hello);
  EXPECT_LT(seconds_since(t0), 2.0);
}

TEST(DashboardLimits, AHeaderThatNeverEndsIsCutOff) {
  if (!web_page_built()) GTEST_SKIP() << "built without web/node_modules";
  RunFolder run;
  DashboardServer s(DashboardOptions{{run.dir.string()}, "127.0.0.1", 0});
  Tricklers slow(s.start(), 1);
  const auto t0 = Clock::now();
  bool closed = false;
  std::string got;
  while (!closed && seconds_since(t0) < 10) got += slow[0].receive(200, &closed);
  EXPECT_TRUE(closed) << "a request still sending its headers after 10 s was not cut off";
  EXPECT_LT(seconds_since(t0), 7.0);  // the documented limit is 5 s
  EXPECT_EQ(got.find("200 OK"), std::string::npos) << got;
}

TEST(DashboardLimits, OneAddressCannotTakeEveryConnection) {
  if (!web_page_built()) GTEST_SKIP() << "built without web/node_modules";
  RunFolder run;
  DashboardServer s(DashboardOptions{{run.dir.string()}, "127.0.0.1", 0});
  const int port = s.start();
  // Forty idle connections from 127.0.0.1: past the per-address cap they are refused at once
  // (503 and closed), not queued behind the idle ones.
  std::vector<std::unique_ptr<RawConnection>> idle;
  for (int i = 0; i < 40; ++i) {
    idle.push_back(std::make_unique<RawConnection>(port));
    ASSERT_TRUE(idle.back()->connected());
  }
  int refused = 0, waiting = 0;
  for (auto& c : idle) {
    bool closed = false;
    const std::string got = c->receive(refused + waiting < 1 ? 1000 : 50, &closed);
    if (got.find(" 503 ") != std::string::npos && closed) ++refused;
    else if (got.empty() && !closed) ++waiting;
    else ADD_FAILURE() << "neither refused nor waiting: closed " << closed << ", got: " << got;
  }
  EXPECT_GT(refused, 0) << "no connection was refused";
  EXPECT_LE(waiting, 32) << "one address holds this many connections";
  EXPECT_EQ(refused + waiting, 40);
  idle.clear();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the server sees them close
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(2, 0);
  auto r = c.Get("/api/runs");
  ASSERT_TRUE(r) << "closed connections still counted against the address";
  EXPECT_EQ(r->status, 200);
}

}  // namespace
}  // namespace anetrain
