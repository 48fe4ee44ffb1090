// `anetrain bench`: speed, always as a ratio to a peer measured in the same invocation (the
// machine is noisy; a lone number is not comparable across runs).
//   bench tokenizer -z TOK FILE   encode MB/s on one core; peer: the same text copied (memcpy)
//                                 and split into lines, a floor no tokenizer can beat
//   bench prepare -z TOK FILE     prepare with all cores vs one core (the speed-up)
//   bench train MODEL --peer pytorch   a training step vs eager PyTorch (cmd_bench_train.cpp)
//   bench generate MODEL --peer CMD    greedy decoding vs run.c / runq.c (cmd_bench_generate.cpp)
//   bench mil PROGRAM.mil...      ane-sim evaluation vs its own matrix products as bare sgemm
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <thread>

#include <unistd.h>

#include "cli/commands.h"
#include "cli/option_checks.h"
#include "core/error.h"
#include "core/mapped_file.h"
#include "core/rng.h"
#include "data/prepare.h"
#include "formats/load.h"
#include "model/flops.h"
#include "model/transformer.h"

namespace anetrain {

namespace {
using Clock = std::chrono::steady_clock;
double secs_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::vector<std::string> lines_of(const std::string& path) {
  MappedFile f(path);
  std::vector<std::string> out;
  const char* d = reinterpret_cast<const char*>(f.data());
  size_t s = 0;
  for (size_t i = 0; i <= f.size(); ++i)
    if (i == f.size() || d[i] == '\n') {
      if (i > s) out.emplace_back(d + s, i - s);
      s = i + 1;
    }
  return out;
}
}  // namespace

void add_bench_command(CLI::App& app, Command& run) {
  struct Options {
    std::string tok_path, file;
    int repeats = 3;
  };
  const auto o = std::make_shared<Options>();
  auto* bench = app.add_subcommand("bench", "Measure speed against a peer run side by side");
  bench->require_subcommand(1);

  auto* tok = bench->add_subcommand("tokenizer", "Encoding MB/s on one core");
  tok->add_option("-z,--tokenizer", o->tok_path, "tokenizer.json or tokenizer.bin")->required();
  tok->add_option("file", o->file, "UTF-8 text")->required();
  tok->add_option("--repeats", o->repeats, "Timed passes (best is reported)")->capture_default_str()->check(within(Range::between(1, 1 << 20).whole()));
  tok->callback([&run, o] {
    run = [o] {
      auto t = load_tokenizer(o->tok_path);
      const auto lines = lines_of(o->file);
      size_t bytes = 0;
      for (const auto& l : lines) bytes += l.size();
      double best = 1e30, peer = 1e30;
      size_t tokens = 0;
      for (int r = 0; r < o->repeats; ++r) {
        auto t0 = Clock::now();
        size_t n = 0;
        for (const auto& l : lines) n += t->encode(l).size();
        best = std::min(best, secs_since(t0));
        tokens = n;
        t0 = Clock::now();
        size_t sink = 0;
        for (auto l : lines_of(o->file)) sink += l.size();  // peer: read + split + copy the same text
        peer = std::min(peer, secs_since(t0) + (sink == 0 ? 1 : 0));
      }
      std::printf("tokenizer %s (%s, vocab %d) on %s: %.2f MB in %zu lines → %zu tokens (%.2f bytes/token)\n",
                  o->tok_path.c_str(), t->kind().c_str(), t->vocab_size(), o->file.c_str(), bytes / 1e6, lines.size(),
                  tokens, double(bytes) / double(tokens));
      std::printf("  encode:             %8.2f MB/s (one core, best of %d)\n", bytes / 1e6 / best, o->repeats);
      std::printf("  peer (read+split):  %8.2f MB/s\n  ratio encode/peer:  %8.4f\n", bytes / 1e6 / peer, peer / best);
      return 0;
    };
  });

  auto* prep = bench->add_subcommand("prepare", "prepare with all cores vs one core");
  prep->add_option("-z,--tokenizer", o->tok_path, "tokenizer.json or tokenizer.bin")->required();
  prep->add_option("file", o->file, "Input corpus")->required();
  prep->callback([&run, o] {
    run = [o] {
      auto t = load_tokenizer(o->tok_path);
      const auto dir = std::filesystem::temp_directory_path() / ("anetrain_bench_" + std::to_string(::getpid()));
      PrepareOptions po;
      po.progress = false;
      po.doc_per_line = true;
      const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
      double secs[2];
      for (int k = 0; k < 2; ++k) {
        po.threads = k == 0 ? 1 : int(cores);
        po.out_dir = (dir / std::to_string(k)).string();
        const auto t0 = Clock::now();
        prepare({o->file}, *t, po);
        secs[k] = secs_since(t0);
      }
      std::filesystem::remove_all(dir);
      std::printf("prepare %s: 1 thread %.2f s, %u threads %.2f s, speed-up %.2f×\n", o->file.c_str(), secs[0], cores,
                  secs[1], secs[0] / secs[1]);
      return 0;
    };
  });

#if defined(ANETRAIN_HAVE_ANE_SIM) || defined(ANETRAIN_HAVE_ANE)
  add_bench_mil_command(bench, run);
#endif

  add_bench_train_command(bench, run);
  add_bench_generate_command(bench, run);
}

}  // namespace anetrain
