// `anetrain bench generate MODEL --peer CMD [--dtype f32,bf16,q8_0] [-z TOK] [-i PROMPT] [-n N]
//  [--prompt-tokens P] [--rounds R] [--threads T] [--peer-model FILE]`: greedy decoding by a peer
// program (a built llama2.c run.c / runq.c, or anything that prints "achieved tok/s: X") and by
// anetrain, alternating in one invocation, each run its own process (own caches, own peak RSS).
// The peer command may name {model} {tokenizer} {steps} {prompt} {prompt_tokens} {threads}; they
// are replaced, quoted for the shell, so both sides decode the same prompt for the same steps on
// the same threads. Prints per-run and median decode tokens/s, the ratio, anetrain's prefill
// tokens/s and the effective GB/s of weight streaming, and each side's peak RSS.
// --prompt-tokens P compares prompt processing instead: anetrain is given P token ids (no
// tokenizer), and the peer is read as llama.cpp's llama-bench ("| pp256 | 1234.5 ± 6.7 |" on its
// stdout), so `llama-bench -p {prompt_tokens} -n 0` measures the same prompt length.
#include <memory>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <regex>
#include <sstream>
#include <thread>

#include "cli/bench_util.h"
#include "cli/commands.h"
#include "cli/option_checks.h"
#include "core/error.h"
#include "core/threads.h"

namespace anetrain {

namespace {

struct BenchGenOptions {
  std::string model, peer = "none", peer_model, tokenizer, prompt = "Once upon a time", dtypes = "auto";
  int steps = 256, rounds = 3, threads = 0, prompt_tokens = 0;
};

struct Run {
  double decode_tps = 0, prefill_tps = 0, gbps = 0, peak_rss_mb = 0;
};

// Runs `cmd` under /bin/sh with OMP_NUM_THREADS set, stdout discarded; returns stderr and the
// child's peak RSS (wait4's rusage covers the shell's child, which exec replaces the shell with
// when the command is one program).
std::string run_capture(const std::string& cmd, int threads, bool with_stdout, double* peak_rss_mb, int* status) {
  int fd[2];
  if (::pipe(fd) != 0) fail("bench generate: pipe failed");
  const pid_t pid = ::fork();
  if (pid < 0) fail("bench generate: fork failed");
  if (pid == 0) {
    ::dup2(fd[1], 2);
    if (with_stdout) ::dup2(fd[1], 1);
    ::close(fd[0]);
    ::close(fd[1]);
    const std::string n = std::to_string(threads);
    ::setenv("OMP_NUM_THREADS", n.c_str(), 1);
    unset_chosen_thread_spin();  // the peer waits as it would when run by hand (ours re-chooses)
    const std::string full = "exec " + cmd + (with_stdout ? "" : " >/dev/null");
    ::execl("/bin/sh", "sh", "-c", full.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(fd[1]);
  std::string out;
  char buf[4096];
  for (ssize_t k; (k = ::read(fd[0], buf, sizeof buf)) > 0;) out.append(buf, size_t(k));
  ::close(fd[0]);
  struct rusage ru {};
  ::wait4(pid, status, 0, &ru);
  *peak_rss_mb = double(ru.ru_maxrss) / 1024.0;
  return out;
}

double match_number(const std::string& text, const std::regex& re) {
  std::smatch m;
  return std::regex_search(text, m, re) ? std::stod(m[1].str()) : -1;
}

// `prompt`: the run is judged by its prompt tokens/s (anetrain's "prefill" line, llama-bench's
// "pp" row, which only the peer's stdout holds) instead of decoding's.
Run measure(const std::string& who, const std::string& cmd, int threads, bool prompt, bool peer) {
  Run r;
  int status = 0;
  const std::string out = run_capture(cmd, threads, prompt && peer, &r.peak_rss_mb, &status);
  static const std::regex ours(R"(decode \d+ tokens: ([0-9.]+) tok/s)"), achieved(R"(achieved tok/s: ([0-9.]+))"),
      prefill(R"(prefill \d+ tokens: ([0-9.]+) tok/s)"), gbps(R"(([0-9.]+) GB/s\))"),
      llama_bench_prompt(R"(\|\s*pp\d+\s*\|\s*([0-9.]+))");
  r.decode_tps = match_number(out, ours);
  if (r.decode_tps < 0) r.decode_tps = match_number(out, achieved);
  r.prefill_tps = match_number(out, prefill);
  if (r.prefill_tps < 0) r.prefill_tps = match_number(out, llama_bench_prompt);
  r.gbps = match_number(out, gbps);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || (prompt ? r.prefill_tps : r.decode_tps) < 0)
    fail("bench generate: " + who + " failed or printed no " + (prompt ? "prompt " : "") + "tokens/s (" + cmd + "):\n" +
         out.substr(out.size() > 2000 ? out.size() - 2000 : 0));
  return r;
}

// P token ids for --prompt-tokens: BOS (1), then ids spread over 2…257, inside any vocabulary of
// a model worth timing. The ids' values do not change the work; llama-bench draws random ones.
std::string prompt_ids(int count) {
  std::string ids = "1";
  for (int i = 1; i < count; ++i) ids += " " + std::to_string(2 + (i * 97) % 256);
  return ids;
}

std::string expand(std::string cmd, const BenchGenOptions& o) {
  const std::pair<std::string, std::string> subs[] = {
      {"{model}", shell_quote(o.peer_model.empty() ? o.model : o.peer_model)},
      {"{tokenizer}", shell_quote(o.tokenizer)},
      {"{steps}", std::to_string(o.steps)},
      {"{prompt}", shell_quote(o.prompt)},
      {"{prompt_tokens}", std::to_string(o.prompt_tokens)},
      {"{threads}", std::to_string(o.threads)}};
  for (const auto& [key, value] : subs)
    for (size_t at; (at = cmd.find(key)) != std::string::npos;) cmd.replace(at, key.size(), value);
  return cmd;
}

int bench_generate(BenchGenOptions o) {
  if (o.threads <= 0) o.threads = int(std::max(1u, std::thread::hardware_concurrency()));
  if (o.rounds < 1) fail("bench generate: --rounds must be ≥ 1");
  const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  std::vector<std::string> dtypes;
  std::stringstream ss(o.dtypes);
  for (std::string d; std::getline(ss, d, ',');) dtypes.push_back(d);
  const bool peer = o.peer != "none", prompt = o.prompt_tokens > 0;
  const std::string peer_cmd = peer ? expand(o.peer, o) : "";
  if (prompt)
    std::printf("bench generate %s: a prompt of %d tokens, then %d tokens, %d threads, %d rounds\n", o.model.c_str(),
                o.prompt_tokens, o.steps, o.threads, o.rounds);
  else
    std::printf("bench generate %s: %d tokens after \"%s\", %d threads, %d rounds\n", o.model.c_str(), o.steps,
                o.prompt.c_str(), o.threads, o.rounds);
  if (peer) std::printf("peer: %s\n", peer_cmd.c_str());
  // The rate each run is judged by: prompt tokens/s with --prompt-tokens, else decoding's.
  double Run::*rate = prompt ? &Run::prefill_tps : &Run::decode_tps;
  std::vector<Run> peer_runs;
  std::vector<std::vector<Run>> ours(dtypes.size());
  for (int round = 0; round < o.rounds; ++round) {
    // Alternate who goes first, so drift in the machine's speed falls on both sides.
    auto run_peer = [&] {
      if (!peer) return;
      peer_runs.push_back(measure("the peer", peer_cmd, o.threads, prompt, true));
      std::printf("  round %d peer:          %7.1f tok/s, peak RSS %6.0f MB\n", round + 1,
                  peer_runs.back().*rate, peer_runs.back().peak_rss_mb);
    };
    if (round % 2 == 0) run_peer();
    for (size_t d = 0; d < dtypes.size(); ++d) {
      std::string cmd = shell_quote(self) + " generate " + shell_quote(o.model) + " -t 0 -n " + std::to_string(o.steps) +
                        " --dtype " + shell_quote(dtypes[d]) + " --threads " + std::to_string(o.threads);
      if (prompt) cmd += " --ids -i " + shell_quote(prompt_ids(o.prompt_tokens));
      else cmd += " -i " + shell_quote(o.prompt);
      if (!o.tokenizer.empty() && !prompt) cmd += " -z " + shell_quote(o.tokenizer);
      ours[d].push_back(measure("anetrain", cmd, o.threads, prompt, false));
      const Run& r = ours[d].back();
      if (prompt)
        std::printf("  round %d anetrain %-5s %7.1f prompt tok/s, peak RSS %6.0f MB (decode %.1f tok/s)\n", round + 1,
                    dtypes[d].c_str(), r.prefill_tps, r.peak_rss_mb, r.decode_tps);
      else
        std::printf("  round %d anetrain %-5s %7.1f tok/s, peak RSS %6.0f MB (prefill %.0f tok/s, %.1f GB/s)\n",
                    round + 1, dtypes[d].c_str(), r.decode_tps, r.peak_rss_mb, r.prefill_tps, r.gbps);
    }
    if (round % 2 == 1) run_peer();
    std::fflush(stdout);
  }
  auto med = [](const std::vector<Run>& runs, double Run::*field) {
    std::vector<double> v;
    for (const Run& r : runs) v.push_back(r.*field);
    return median(v);
  };
  std::printf("\nmedian %s tokens/s%s\n", prompt ? "prompt" : "decode", peer ? " (ratio to the peer)" : "");
  const double p = peer ? med(peer_runs, rate) : 0;
  if (peer) std::printf("  peer           %7.1f tok/s, peak RSS %6.0f MB\n", p, med(peer_runs, &Run::peak_rss_mb));
  for (size_t d = 0; d < dtypes.size(); ++d) {
    const double t = med(ours[d], rate);
    std::printf("  anetrain %-5s %7.1f tok/s", dtypes[d].c_str(), t);
    if (peer) std::printf(" = %.2fx", t / p);
    if (prompt)
      std::printf(", peak RSS %.0f MB\n", med(ours[d], &Run::peak_rss_mb));
    else
      std::printf(", prefill %.0f tok/s, %.1f GB/s of weights, peak RSS %.0f MB\n", med(ours[d], &Run::prefill_tps),
                  med(ours[d], &Run::gbps), med(ours[d], &Run::peak_rss_mb));
  }
  return 0;
}

}  // namespace

void add_bench_generate_command(CLI::App* bench, Command& run) {
  struct Options {
    BenchGenOptions o;
  };
  const auto o = std::make_shared<Options>();
  auto* g = bench->add_subcommand("generate", "Greedy decoding vs a peer program (run.c, runq.c), alternating");
  g->add_option("model", o->o.model, "Model for anetrain (any MODEL generate reads)")->required();
  g->add_option("--peer", o->o.peer,
                "Peer command line, or none; may use {model} {tokenizer} {steps} {prompt} {threads}, e.g. "
                "\"./run {model} -z {tokenizer} -t 0 -n {steps} -i {prompt}\"")
      ->capture_default_str();
  g->add_option("--peer-model", o->o.peer_model, "File {model} names in the peer command (default: MODEL)");
  g->add_option("--dtype", o->o.dtypes, "anetrain weight formats to run, comma-separated (auto,f32,bf16,q8_0)")
      ->capture_default_str();
  g->add_option("-z,--tokenizer", o->o.tokenizer, "Tokenizer for both sides");
  g->add_option("-i,--prompt", o->o.prompt, "Prompt")->capture_default_str();
  g->add_option("-n,--steps", o->o.steps, "Tokens to decode (the peer gets the same number as {steps})")
      ->capture_default_str();
  g->add_option("--prompt-tokens", o->o.prompt_tokens,
                "Compare prompt processing instead: anetrain gets a prompt of this many token ids, the peer is "
                "llama-bench, e.g. \"llama-bench -m {model} -p {prompt_tokens} -n 0 -t {threads} -r 1\" (0 = off)")
      ->check(within(Range::between(0, 1 << 20).whole()));
  g->add_option("--rounds", o->o.rounds, "Alternating rounds")->capture_default_str()->check(within(Range::between(1, 1 << 20).whole()));
  g->add_option("--threads", o->o.threads, "Threads for both sides (0 = all cores)")->check(thread_count());
  g->callback([&run, o] {
    run = [o] { return bench_generate(o->o); };
  });
}

}  // namespace anetrain
