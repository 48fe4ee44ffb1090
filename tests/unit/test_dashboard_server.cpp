// The dashboard's HTTP server as an attacker or a broken run would meet it: loopback only by
// default, nothing served but the embedded page and the named runs' checked telemetry (traversal,
// encoded traversal, absolute paths and the run's other files all 404), read-only (other methods
// 405), foreign Host headers refused (DNS rebinding), malformed and enormous telemetry lines
// skipped without breaking anything, and a run directory that disappears mid-stream survived.
#include <gtest/gtest.h>
#include <httplib.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <regex>
#include <thread>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "telemetry/dashboard_server.h"
#include "telemetry/web_assets.h"

namespace anetrain {
namespace {

namespace fs = std::filesystem;

const char kSecret[] = "SECRET-7f3a";  // in files the server must never hand out

struct Fixture {
  fs::path root, run;
  Fixture() {
    root = fs::temp_directory_path() / ("anetrain_dash_" + std::to_string(::getpid()));
    fs::remove_all(root);
    run = root / "runA";
    fs::create_directories(run / "ckpt");
    std::ofstream(run / "telemetry.jsonl")
        << R"({"event":"run_start","time":1,"options":{"model":"stories260k","steps":10}})" << "\n"
        << R"({"event":"step","time":2,"step":1,"loss":5.5})" << "\n";
    std::ofstream(run / "run.json") << kSecret;
    std::ofstream(run / "ckpt" / "model.anck") << kSecret;
    std::ofstream(root / "secret.txt") << kSecret;
  }
  ~Fixture() { fs::remove_all(root); }
};

void skip_without_page() {
  if (!web_page_built()) GTEST_SKIP() << "built without web/node_modules";
}

TEST(DashboardServer, BindsLoopbackOnlyByDefault) {
  skip_without_page();
  Fixture fx;
  DashboardServer s(DashboardOptions{{fx.run.string()}, "127.0.0.1", 0});
  const int port = s.start();
  // The listening socket in /proc/net/tcp: local address 127.0.0.1 (0100007F), state LISTEN (0A).
  std::ifstream tcp("/proc/net/tcp");
  std::string line, found;
  char hex[8];
  std::snprintf(hex, sizeof hex, "%04X", port);
  while (std::getline(tcp, line))
    if (line.find(std::string(":") + hex + " ") != std::string::npos && line.find(" 0A ") != std::string::npos) found = line;
  ASSERT_FALSE(found.empty()) << "no listening socket on port " << port;
  EXPECT_NE(found.find("0100007F:" + std::string(hex)), std::string::npos) << found;
  EXPECT_EQ(DashboardOptions{}.host, "127.0.0.1");
  EXPECT_EQ(s.url(), "http://127.0.0.1:" + std::to_string(port) + "/");
}

TEST(DashboardServer, ServesThePageWithItsSecurityHeaders) {
  skip_without_page();
  Fixture fx;
  DashboardServer s(DashboardOptions{{fx.run.string()}, "127.0.0.1", 0});
  httplib::Client c("127.0.0.1", s.start());
  auto r = c.Get("/");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_NE(r->body.find("anetrain dashboard"), std::string::npos);
  EXPECT_EQ(r->get_header_value("Content-Type"), "text/html; charset=utf-8");
  EXPECT_NE(r->get_header_value("Content-Security-Policy").find("default-src 'self'"), std::string::npos);
  EXPECT_EQ(r->get_header_value("X-Content-Type-Options"), "nosniff");
  // Every script and stylesheet the page names is served, with its type: a file added to web/
  // but missing from the build's asset list or the server's routes leaves the page broken.
  const std::regex named(R"re((src|href)="([^":]+\.(js|css))")re");
  int scripts = 0;
  for (std::sregex_iterator m(r->body.begin(), r->body.end(), named), end; m != end; ++m) {
    const std::string p = "/" + (*m)[2].str();
    auto a = c.Get(p);
    ASSERT_TRUE(a) << p;
    EXPECT_EQ(a->status, 200) << p;
    const bool js = (*m)[3] == "js";
    scripts += js;
    EXPECT_EQ(a->get_header_value("Content-Type"), js ? "text/javascript; charset=utf-8" : "text/css; charset=utf-8") << p;
  }
  EXPECT_EQ(scripts, 5);  // uPlot, charts.js, log.js, panels.js, app.js
  auto runs = c.Get("/api/runs");
  ASSERT_TRUE(runs);
  EXPECT_EQ(nlohmann::json::parse(runs->body)["runs"][0]["name"], "runA");
}

TEST(DashboardServer, ServesNothingButThePageAndTheNamedRuns) {
  skip_without_page();
  Fixture fx;
  DashboardServer s(DashboardOptions{{fx.run.string()}, "127.0.0.1", 0});
  httplib::Client c("127.0.0.1", s.start());
  c.set_url_encode(false);  // send the paths exactly as written
  const std::string abs = fx.root.string();
  for (const std::string& p : std::vector<std::string>{"/../run.json", "/%2e%2e/run.json", "/%2E%2E%2Frun.json", "/..%2frun.json", "/runA/run.json",
        "/runA/telemetry.jsonl", "/telemetry.jsonl", "/run.json", "/ckpt/model.anck", "/api/runs/0/../../run.json",
        "/api/runs/0/run.json", "/api/runs/0/ckpt/model.anck", "/api/runs/0/telemetry/../../run.json",
        "/api/runs/1/telemetry", "/api/runs/-1/telemetry", "/api/runs/99999999999999999999/telemetry",
        "/vendor/../../secret.txt", "/vendor/%2e%2e/%2e%2e/secret.txt", "//etc/passwd", "/etc/passwd",
        "/%2Fetc%2Fpasswd", abs + "/secret.txt", "/" + abs + "/secret.txt", "/index.html/../../secret.txt",
        "/app.js%00.html", "/.git/config", "/web/app.js", "/node_modules/uplot/package.json"}) {
    auto r = c.Get(p);
    ASSERT_TRUE(r) << p;
    EXPECT_TRUE(r->status == 404 || r->status == 400) << p << " → " << r->status;
    EXPECT_EQ(r->body.find(kSecret), std::string::npos) << p;
    EXPECT_EQ(r->body.find("root:"), std::string::npos) << p;
  }
  auto ok = c.Get("/api/runs/0/telemetry");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
  EXPECT_EQ(ok->body.find(kSecret), std::string::npos);
}

TEST(DashboardServer, IsReadOnly) {
  skip_without_page();
  Fixture fx;
  DashboardServer s(DashboardOptions{{fx.run.string()}, "127.0.0.1", 0});
  httplib::Client c("127.0.0.1", s.start());
  const auto before = fs::last_write_time(fx.run / "telemetry.jsonl");
  std::vector<httplib::Result> results;
  results.push_back(c.Post("/api/runs/0/telemetry", "x", "text/plain"));
  results.push_back(c.Put("/", "x", "text/plain"));
  results.push_back(c.Delete("/api/runs/0/telemetry"));
  results.push_back(c.Patch("/", "x", "text/plain"));
  results.push_back(c.Options("/"));
  for (auto& r : results) {
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 405);
    EXPECT_EQ(r->get_header_value("Allow"), "GET, HEAD");
  }
  EXPECT_EQ(fs::last_write_time(fx.run / "telemetry.jsonl"), before);
  EXPECT_TRUE(fs::exists(fx.run / "run.json"));
}

TEST(DashboardServer, RefusesForeignHostHeaders) {
  skip_without_page();
  Fixture fx;
  DashboardServer s(DashboardOptions{{fx.run.string()}, "127.0.0.1", 0});
  const int port = s.start();
  httplib::Client c("127.0.0.1", port);
  const std::string p = ":" + std::to_string(port);
  for (const std::string& h :
       std::vector<std::string>{"evil.example" + p, "evil.example", "127.0.0.1.evil.example" + p, "localhost.evil" + p}) {
    auto r = c.Get("/api/runs/0/telemetry", httplib::Headers{{"Host", h}});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 403) << h;
    EXPECT_EQ(r->body.find("stories260k"), std::string::npos) << h;
  }
  for (const std::string& h : std::vector<std::string>{"127.0.0.1" + p, "localhost" + p, "localhost"}) {
    auto r = c.Get("/api/runs", httplib::Headers{{"Host", h}});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << h;
  }
}

TEST(DashboardServer, SkipsMalformedAndEnormousLines) {
  skip_without_page();
  Fixture fx;
  {
    std::ofstream f(fx.run / "telemetry.jsonl", std::ios::app);
    f << "not json at all\n" << std::string(3 << 20, 'x') << "\n" << "[1,2,3]\n" << R"({"event":5})" << "\n"
      << R"({"event":"step","time":3,"step":2,"loss":"</script><script>alert(1)</script>"})" << "\n"
      << R"({"event":"step","time":4,"step":3,"loss":5.1})" << "\n"
      << R"({"event":"x","a":)" << std::string(200000, '[') << std::string(200000, ']') << "}\n";  // deep nesting
  }
  DashboardServer s(DashboardOptions{{fx.run.string()}, "127.0.0.1", 0});
  httplib::Client c("127.0.0.1", s.start());
  auto r = c.Get("/api/runs/0/telemetry");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200);
  const auto j = nlohmann::json::parse(r->body);
  EXPECT_EQ(j["events"].size(), 4u);  // run_start, three steps (a string loss is the page's to ignore)
  EXPECT_EQ(j["bad_lines"], 5);
  EXPECT_EQ(r->get_header_value("Content-Type"), "application/json");  // never rendered as HTML
  auto page = c.Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
}

// Reads /api/stream on a thread until `until` says stop (or the server ends the stream).
struct StreamReader {
  std::mutex mu;
  std::string text;
  std::atomic<bool> stop{false}, ended{false};
  std::thread t;
  StreamReader(int port) {
    t = std::thread([this, port] {
      httplib::Client c("127.0.0.1", port);
      c.set_read_timeout(30, 0);
      c.Get("/api/stream", [this](const char* data, size_t n) {
        std::lock_guard<std::mutex> g(mu);
        text.append(data, n);
        return !stop.load();
      });
      ended = true;
    });
  }
  bool wait_for(const std::string& needle, int seconds = 10) {
    for (int i = 0; i < seconds * 20; ++i) {
      {
        std::lock_guard<std::mutex> g(mu);
        if (text.find(needle) != std::string::npos) return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }
  ~StreamReader() {
    stop = true;
    if (t.joinable()) t.join();
  }
};

TEST(DashboardServer, StreamFollowsTheRunAndSurvivesItsDeletion) {
  skip_without_page();
  Fixture fx;
  DashboardServer s(DashboardOptions{{fx.run.string()}, "127.0.0.1", 0, 0.05});
  const int port = s.start();
  StreamReader reader(port);
  ASSERT_TRUE(reader.wait_for("event: hello"));
  ASSERT_TRUE(reader.wait_for(R"("loss":5.5)"));  // the history first
  std::ofstream(fx.run / "telemetry.jsonl", std::ios::app) << R"({"event":"step","time":5,"step":2,"loss":4.25})" << "\n";
  EXPECT_TRUE(reader.wait_for(R"("loss":4.25)"));  // then what the run appends
  fs::remove_all(fx.run);
  EXPECT_TRUE(reader.wait_for(R"("missing":true)"));
  httplib::Client c("127.0.0.1", port);
  auto r = c.Get("/api/runs");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  auto gone = c.Get("/api/runs/0/telemetry");
  ASSERT_TRUE(gone);
  EXPECT_EQ(gone->status, 404);
  // Stopping the server with a page still open returns promptly and ends the stream.
  const auto t0 = std::chrono::steady_clock::now();
  s.stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  for (int i = 0; i < 100 && !reader.ended; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_TRUE(reader.ended);
}

TEST(DashboardServer, APortInUseIsAClearError) {
  skip_without_page();
  Fixture fx;
  DashboardServer a(DashboardOptions{{fx.run.string()}, "127.0.0.1", 0});
  const int port = a.start();
  DashboardServer b(DashboardOptions{{fx.run.string()}, "127.0.0.1", port});
  try {
    b.start();
    FAIL() << "a second server bound the same port";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--port 0"), std::string::npos) << e.what();
  }
}

TEST(DashboardServer, RefusesCrossSiteRequestsAndCapsOpenStreams) {
  skip_without_page();
  Fixture fx;
  DashboardServer s(DashboardOptions{{fx.run.string()}, "127.0.0.1", 0, 0.05});
  const int port = s.start();
  httplib::Client c("127.0.0.1", port);
  // What a browser labels a request from another site's page (a no-cors fetch, an <img>).
  auto r = c.Get("/api/stream", httplib::Headers{{"Sec-Fetch-Site", "cross-site"}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 403);
  auto same = c.Get("/api/runs", httplib::Headers{{"Sec-Fetch-Site", "same-origin"}});
  ASSERT_TRUE(same);
  EXPECT_EQ(same->status, 200);
  // Eight pages stream; a ninth is told to wait, and the API still answers.
  std::vector<std::unique_ptr<StreamReader>> pages;
  for (int i = 0; i < 8; ++i) {
    pages.push_back(std::make_unique<StreamReader>(port));
    ASSERT_TRUE(pages.back()->wait_for("event: hello")) << i;
  }
  auto ninth = c.Get("/api/stream");
  ASSERT_TRUE(ninth);
  EXPECT_EQ(ninth->status, 503);
  auto api = c.Get("/api/runs");
  ASSERT_TRUE(api);
  EXPECT_EQ(api->status, 200);
  // A page closes: its slot is free again once the server's next write to it fails (new lines
  // make the server write; appended here so the test does not wait for the keep-alive).
  auto append_line = [&] {
    std::ofstream(fx.run / "telemetry.jsonl", std::ios::app) << R"({"event":"step","time":9,"step":9,"loss":4})" << "\n";
  };
  pages.back()->stop = true;
  append_line();
  pages.pop_back();
  bool reopened = false;
  for (int i = 0; i < 50 && !reopened; ++i) {
    append_line();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    auto r9 = c.Get("/api/runs");  // (keeps a request in flight so a worker cycles)
    StreamReader again(port);
    reopened = again.wait_for("event: hello", 1);
    again.stop = true;
    append_line();
  }
  EXPECT_TRUE(reopened);
  for (auto& p : pages) p->stop = true;
  append_line();  // one more write lets every open page's reader see it should stop
}

TEST(DashboardServer, StopRightAfterStartReturns) {
  skip_without_page();
  Fixture fx;
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 20; ++i) {
    DashboardServer s(DashboardOptions{{fx.run.string()}, "127.0.0.1", 0});
    s.start();
  }  // each destructor stops its server at once
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
}

TEST(DashboardServer, RunNamesAreUnique) {
  EXPECT_EQ(DashboardServer::run_names({"runs/a", "other/a/", "runs/b/telemetry.jsonl", "."}),
            (std::vector<std::string>{"a", "a (2)", "b", "run"}));
}

}  // namespace
}  // namespace anetrain
