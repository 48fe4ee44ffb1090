#include "telemetry/dashboard_server.h"

#include <httplib.h>

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/terminal_text.h"
#include "telemetry/dashboard_connections.h"
#include "telemetry/dashboard_events.h"
#include "telemetry/run_watch.h"
#include "telemetry/tail.h"
#include "telemetry/web_assets.h"

namespace anetrain {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr size_t kEventsPerMessage = 1000;
// Open pages at once. Each stream holds a connection's worker for as long as the page is open;
// the other connections (ConnectionLimits::max_connections) stay for the page's own requests.
constexpr int kMaxStreams = 8;

bool loopback(const std::string& host) {
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}
bool wildcard(const std::string& host) { return host == "0.0.0.0" || host == "::"; }

void security_headers(httplib::Response& res) {
  // The page loads only its own files; nothing may frame it or guess content types.
  res.set_header("Content-Security-Policy",
                 "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                 "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'");
  res.set_header("X-Content-Type-Options", "nosniff");
  res.set_header("X-Frame-Options", "DENY");
  res.set_header("Referrer-Policy", "no-referrer");
  res.set_header("Cache-Control", "no-store");
}

// One browser's view of every run: each stream re-reads the files from the start, so a page
// that reconnects (or a second tab) gets the whole history and then the new lines.
struct StreamState {
  std::vector<LineTail> tails;
  std::vector<int> missing;  // -1 unknown, 0 present, 1 missing
  std::vector<int64_t> bad, dropped_seen;
  bool hello_sent = false;
  Clock::time_point last_write = Clock::now();
};

}  // namespace

std::vector<std::string> DashboardServer::run_names(const std::vector<std::string>& runs) {
  std::vector<std::string> names;
  std::map<std::string, int> seen;
  for (const auto& r : runs) {
    fs::path p = fs::path(r).lexically_normal();
    if (p.filename().empty()) p = p.parent_path();
    if (p.extension() == ".jsonl") p = p.parent_path();
    std::string n = p.filename().string();
    if (n.empty() || n == "." || n == "..") n = "run";
    const int k = seen[n]++;
    names.push_back(k ? n + " (" + std::to_string(k + 1) + ")" : n);
  }
  return names;
}

DashboardServer::DashboardServer(DashboardOptions o, ConnectionLimits limits) : o_(std::move(o)), limits_(limits) {
  names_ = run_names(o_.runs);
  for (const auto& r : o_.runs) files_.push_back(telemetry_file(r));
}

DashboardServer::~DashboardServer() { stop(); }

std::string DashboardServer::url() const {
  std::string h = o_.host;
  if (wildcard(h)) {
    char name[256] = "";
    h = ::gethostname(name, sizeof name - 1) == 0 && name[0] ? name : "<this machine's address>";
  }
  if (h.find(':') != std::string::npos) h = "[" + h + "]";
  return "http://" + h + ":" + std::to_string(port_) + "/";
}

std::string DashboardServer::banner(const std::string& note) const {
  std::string text = "dashboard: " + url() + "  (" + note + ")\n";
  if (!loopback(o_.host))
    text += "dashboard: listening on " + o_.host + (wildcard(o_.host) ? " (every interface of this machine)" : "") +
            ": anyone who can reach this machine can read these runs' telemetry\n";
  return terminal_safe(text);
}

int DashboardServer::start() {
  if (!web_page_built())
    fail("dashboard: this anetrain was built without its web page (web/node_modules was missing); run "
         "`npm ci --prefix web` and rebuild (scripts/setup.sh does both), or use --tui");
  if (o_.runs.empty()) fail("dashboard: name at least one run directory");
  server_ = std::make_unique<LimitedHttpServer>(limits_);
  add_routes();
  if (o_.port == 0) {
    port_ = server_->bind_to_any_port(o_.host);
    if (port_ < 0) fail("dashboard: cannot listen on " + o_.host + " (not an address of this machine?)");
  } else {
    if (o_.port < 1 || o_.port > 65535) fail("dashboard: --port must be 1–65535, or 0 for any free port");
    if (!server_->bind_to_port(o_.host, o_.port))
      fail("dashboard: cannot listen on " + o_.host + ":" + std::to_string(o_.port) +
           " (in use, or not an address of this machine); --port 0 picks a free port");
    port_ = o_.port;
  }
  server_->widen_backlog();
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  // httplib's stop() does nothing until the listening loop has started: wait for it, so that a
  // stop() right after start() cannot leave the thread listening and the join hanging.
  for (int i = 0; i < 1000 && !server_->is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  return port_;
}

void DashboardServer::stop() {
  {
    std::lock_guard<std::mutex> g(stop_mu_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
  if (server_) server_->join_workers();
}

nlohmann::json DashboardServer::runs_json() const {
  nlohmann::json runs = nlohmann::json::array();
  for (size_t i = 0; i < names_.size(); ++i) runs.push_back({{"id", i}, {"name", names_[i]}});
  return runs;
}

void DashboardServer::add_routes() {
  auto& s = *server_;
  s.set_payload_max_length(4096);  // nothing here takes a body
  // httplib's default adds SO_REUSEPORT, which lets a second dashboard bind the same port and
  // share its connections; address reuse alone still allows a quick restart.
  s.set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });

  s.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    security_headers(res);
    if (req.method != "GET" && req.method != "HEAD") {
      res.status = 405;
      res.set_header("Allow", "GET, HEAD");
      res.set_content("read-only: only GET\n", "text/plain");
      return httplib::Server::HandlerResponse::Handled;
    }
    // A page on another site can still aim requests at 127.0.0.1 (no-cors fetches, images) to
    // tie up the stream workers; browsers label them, so they are refused here.
    if (req.get_header_value("Sec-Fetch-Site") == "cross-site") {
      res.status = 403;
      res.set_content("cross-site requests are refused\n", "text/plain");
      return httplib::Server::HandlerResponse::Handled;
    }
    if (loopback(o_.host) && req.has_header("Host")) {
      std::string host = req.get_header_value("Host");
      const std::string port = ":" + std::to_string(port_);
      if (host.size() > port.size() && host.compare(host.size() - port.size(), port.size(), port) == 0)
        host.resize(host.size() - port.size());
      if (host != "127.0.0.1" && host != "localhost" && host != "[::1]" && host != o_.host) {
        res.status = 403;
        res.set_content("this dashboard answers only to the loopback address\n", "text/plain");
        return httplib::Server::HandlerResponse::Handled;
      }
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  s.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (res.body.empty()) res.set_content(res.status == 404 ? "not found\n" : "error\n", "text/plain");
  });

  auto serve_asset = [](const httplib::Request& req, httplib::Response& res) {
    const WebAsset* a = find_web_asset(req.path == "/" ? "/index.html" : req.path);
    if (!a) {
      res.status = 404;
      return;
    }
    res.set_content(a->body.data(), a->body.size(), std::string(a->mime).c_str());
  };
  for (const char* p : {"/", "/index.html", "/charts.js", "/log.js", "/panels.js", "/app.js", "/app.css", "/favicon.svg",
                        "/vendor/uPlot.iife.min.js", "/vendor/uPlot.min.css"})
    s.Get(p, serve_asset);

  s.Get("/api/runs", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(dump_event({{"runs", runs_json()}, {"poll_s", o_.poll_s}}), "application/json");
  });

  // The whole telemetry of one run, checked line by line, streamed from the file.
  s.Get(R"(/api/runs/(\d{1,4})/telemetry)", [this](const httplib::Request& req, httplib::Response& res) {
    const size_t id = std::stoul(req.matches[1].str());
    if (id >= files_.size()) {
      res.status = 404;
      return;
    }
    auto reply = std::make_shared<TelemetryReply>(files_[id], id);
    if (!reply->open()) {
      res.status = 404;
      res.set_content("no telemetry for this run (yet)\n", "text/plain");
      return;
    }
    res.set_chunked_content_provider("application/json",
                                     [reply](size_t, httplib::DataSink& sink) { return reply->write_next(sink); });
  });

  s.Get("/api/stream", [this](const httplib::Request&, httplib::Response& res) {
    // Each open stream holds a worker; past kMaxStreams the rest stay free for pages and the API.
    if (open_streams_.fetch_add(1) >= kMaxStreams) {
      --open_streams_;
      res.status = 503;
      res.set_header("Retry-After", "5");
      res.set_content("too many open dashboard pages; close one\n", "text/plain");
      return;
    }
    auto st = std::make_shared<StreamState>();
    for (const auto& f : files_) st->tails.emplace_back(f);
    st->missing.assign(files_.size(), -1);
    st->bad.assign(files_.size(), 0);
    st->dropped_seen.assign(files_.size(), 0);
    res.set_header("X-Accel-Buffering", "no");
    res.set_chunked_content_provider(
        "text/event-stream", [this, st](size_t, httplib::DataSink& sink) {
      auto send = [&](const char* event, const nlohmann::json& data) {
        const std::string msg = std::string("event: ") + event + "\ndata: " + dump_event(data) + "\n\n";
        st->last_write = Clock::now();
        return sink.write(msg.data(), msg.size());
      };
      if (!st->hello_sent) {
        if (!send("hello", {{"runs", runs_json()}})) return false;
        st->hello_sent = true;
      }
      bool more = false;
      for (size_t i = 0; i < st->tails.size(); ++i) {
        auto& tail = st->tails[i];
        std::vector<std::string> lines;
        const bool found = tail.poll(lines);
        const bool reset = tail.restarted();
        more = more || tail.more_pending();
        const int missing = found ? 0 : 1;
        if (reset) st->bad[i] = 0;
        // A replaced file's reset goes first: the page forgets the old run, then takes the new lines.
        if (missing != st->missing[i] || reset) {
          st->missing[i] = missing;
          if (!send("state", {{"run", i}, {"missing", bool(missing)}, {"reset", reset}, {"bad_lines", st->bad[i]}}))
            return false;
        }
        int64_t bad = tail.dropped_lines() - st->dropped_seen[i];
        st->dropped_seen[i] = tail.dropped_lines();
        nlohmann::json events = nlohmann::json::array(), e;
        for (const auto& l : lines) {
          if (parse_telemetry_event(l, &e)) events.push_back(std::move(e));
          else if (!l.empty()) ++bad;
          if (events.size() == kEventsPerMessage) {
            if (!send("events", {{"run", i}, {"events", events}})) return false;
            events = nlohmann::json::array();
          }
        }
        if (!events.empty() && !send("events", {{"run", i}, {"events", events}})) return false;
        if (bad > 0) {
          st->bad[i] += bad;
          if (!send("state", {{"run", i}, {"missing", false}, {"reset", false}, {"bad_lines", st->bad[i]}})) return false;
        }
      }
      if (Clock::now() - st->last_write > std::chrono::seconds(10)) {
        static const char ping[] = ": keep-alive\n\n";  // lets the server notice a closed page
        if (!sink.write(ping, sizeof ping - 1)) return false;
        st->last_write = Clock::now();
      }
      if (!more) {  // one wake-up per poll: nothing to steal from a training run's threads
        std::unique_lock<std::mutex> lock(stop_mu_);
        stop_cv_.wait_for(lock, std::chrono::duration<double>(o_.poll_s), [this] { return stopping_.load(); });
      }
      return !stopping_.load();
        },
        [this](bool) { --open_streams_; });  // the page went away (or the server stops)
  });
}

}  // namespace anetrain
