#include "telemetry/dashboard_connections.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <functional>

namespace anetrain {

namespace {

using Clock = std::chrono::steady_clock;
constexpr int kPollSliceMs = 100;  // how soon a waiting worker notices the server stopping
constexpr int kRequestsPerConnection = 100;

// httplib's listening thread hands each accepted socket to its task queue; run the hand-over
// right there, so admission is decided at accept time and never waits behind busy workers.
class RunOnListeningThread : public httplib::TaskQueue {
 public:
  void enqueue(std::function<void()> fn) override { fn(); }
  void shutdown() override {}
};

void address_of(const sockaddr_storage& a, std::string* ip, int* port) {
  char buf[INET6_ADDRSTRLEN] = "";
  if (a.ss_family == AF_INET) {
    const auto& v4 = reinterpret_cast<const sockaddr_in&>(a);
    ::inet_ntop(AF_INET, &v4.sin_addr, buf, sizeof buf);
    *port = ntohs(v4.sin_port);
  } else if (a.ss_family == AF_INET6) {
    const auto& v6 = reinterpret_cast<const sockaddr_in6&>(a);
    // A dual-stack listener sees IPv4 clients as ::ffff:a.b.c.d: one client, one address.
    if (IN6_IS_ADDR_V4MAPPED(&v6.sin6_addr)) ::inet_ntop(AF_INET, &v6.sin6_addr.s6_addr[12], buf, sizeof buf);
    else ::inet_ntop(AF_INET6, &v6.sin6_addr, buf, sizeof buf);
    *port = ntohs(v6.sin6_port);
  }
  *ip = buf;
}

// A connection's socket for httplib's request parser, with the limits httplib 0.11 lacks: reads
// fail once the current request's deadline has passed (a per-read timeout alone lets a client
// trickle one byte at a time for ever), and every wait gives up when the server stops.
class DeadlineStream : public httplib::Stream {
 public:
  DeadlineStream(socket_t fd, std::string ip, int port, const ConnectionLimits& limits, std::function<bool()> stopping)
      : fd_(fd), ip_(std::move(ip)), port_(port), limits_(limits), stopping_(std::move(stopping)) {}

  // True when a request starts within the idle timeout (or its first bytes are already here).
  bool wait_for_request() {
    if (begin_ < end_) return true;
    return wait(POLLIN, Clock::now() + seconds(limits_.idle_timeout_s));
  }
  void start_request() { deadline_ = Clock::now() + seconds(limits_.header_timeout_s); }
  // The request ran out of time (or the server is stopping): httplib answered 400 and would read
  // the rest of the trickle as the next request — the connection must end instead.
  bool cut_off() const { return cut_off_; }

  bool is_readable() const override { return begin_ < end_ || wait(POLLIN, deadline_); }
  bool is_writable() const override { return wait(POLLOUT, Clock::now() + seconds(limits_.write_timeout_s)); }

  ssize_t read(char* ptr, size_t size) override {
    if (begin_ == end_) {  // httplib reads a request line byte by byte: refill in blocks
      if (!wait(POLLIN, deadline_)) {
        cut_off_ = true;
        return -1;
      }
      const ssize_t n = ::recv(fd_, buf_, sizeof buf_, 0);
      if (n <= 0) return n;
      begin_ = 0, end_ = size_t(n);
    }
    const size_t n = std::min(size, end_ - begin_);
    std::copy(buf_ + begin_, buf_ + begin_ + n, ptr);
    begin_ += n;
    return ssize_t(n);
  }

  ssize_t write(const char* ptr, size_t size) override {
    for (;;) {
      if (!is_writable()) return -1;
      const ssize_t n = ::send(fd_, ptr, size, MSG_NOSIGNAL);
      if (n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) return n;
    }
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override { ip = ip_, port = port_; }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    sockaddr_storage a{};
    socklen_t len = sizeof a;
    port = 0;
    ip.clear();
    if (::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0) address_of(a, &ip, &port);
  }
  socket_t socket() const override { return fd_; }

 private:
  static Clock::duration seconds(double s) {
    return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
  }
  // Polls in short slices until `until`, so that a stopping server is noticed.
  bool wait(short events, Clock::time_point until) const {
    for (;;) {
      if (stopping_()) return false;
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count();
      if (left <= 0) return false;
      pollfd p{fd_, events, 0};
      const int r = ::poll(&p, 1, int(std::min<long long>(left, kPollSliceMs)));
      if (r > 0) return true;
      if (r < 0 && errno != EINTR) return false;
    }
  }

  socket_t fd_;
  std::string ip_;
  int port_;
  const ConnectionLimits& limits_;
  std::function<bool()> stopping_;
  Clock::time_point deadline_ = Clock::now();
  char buf_[4096];
  size_t begin_ = 0, end_ = 0;
  bool cut_off_ = false;
};

void close_socket(socket_t sock) {
  ::shutdown(sock, SHUT_RDWR);
  ::close(sock);
}

}  // namespace

LimitedHttpServer::LimitedHttpServer(ConnectionLimits limits)
    : limits_(limits), workers_(std::make_unique<httplib::ThreadPool>(size_t(limits.max_connections) + 4)) {
  new_task_queue = [] { return new RunOnListeningThread; };
}

LimitedHttpServer::~LimitedHttpServer() { join_workers(); }

void LimitedHttpServer::widen_backlog() { ::listen(svr_sock_, SOMAXCONN); }

void LimitedHttpServer::join_workers() {
  if (!workers_) return;
  workers_->shutdown();
  workers_.reset();
}

bool LimitedHttpServer::process_and_close_socket(socket_t sock) {
  sockaddr_storage peer{};
  socklen_t len = sizeof peer;
  std::string client;
  int port = 0;
  if (::getpeername(sock, reinterpret_cast<sockaddr*>(&peer), &len) == 0) address_of(peer, &client, &port);
  bool admitted = false;
  {
    std::lock_guard<std::mutex> g(mu_);
    if (workers_ && !stopping() && open_ < limits_.max_connections && per_client_[client] < limits_.max_per_client) {
      ++per_client_[client];
      ++open_;
      admitted = true;
    } else if (per_client_[client] == 0) {
      per_client_.erase(client);
    }
  }
  if (!admitted) {
    // Refused before anything is read, without waiting: the client learns why and may retry.
    static const std::string why = "too many connections from this client\n";
    static const std::string busy = "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nConnection: close\r\n"
                                    "Content-Type: text/plain\r\nContent-Length: " + std::to_string(why.size()) + "\r\n\r\n" + why;
    ::send(sock, busy.data(), busy.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    ::shutdown(sock, SHUT_WR);
    // Closing with the request unread would reset the connection, and the client might lose
    // the 503: take what has arrived (never waiting for more).
    char drain[4096];
    for (int i = 0; i < 4 && ::recv(sock, drain, sizeof drain, MSG_DONTWAIT) > 0; ++i) {
    }
    ::close(sock);
    return false;
  }
  ::fcntl(sock, F_SETFL, ::fcntl(sock, F_GETFL) | O_NONBLOCK);  // every wait is DeadlineStream's poll
  workers_->enqueue([this, sock, client, port] {
    DeadlineStream stream(sock, client, port, limits_, [this] { return stopping(); });
    for (int served = 0; !stopping() && stream.wait_for_request();) {
      stream.start_request();
      bool closed = false;
      const bool last = ++served >= kRequestsPerConnection;
      if (!process_request(stream, last, closed, nullptr) || closed || last || stream.cut_off()) break;
    }
    close_socket(sock);
    release(client);
  });
  return true;
}

void LimitedHttpServer::release(const std::string& client) {
  std::lock_guard<std::mutex> g(mu_);
  if (--per_client_[client] <= 0) per_client_.erase(client);
  --open_;
}

}  // namespace anetrain
