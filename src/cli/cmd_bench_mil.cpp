// `anetrain bench mil PROGRAM.mil...`: ane-sim evaluation time per program, against a floor
// measured in the same run — the program's own matrix products as bare fp32 OpenBLAS sgemm
// (what the simulator would cost with no fp16 rounding, data movement or elementwise work).
#include <cblas.h>

#include <chrono>
#include <cstdio>
#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <random>

#include "mil/parser.h"
#include "mil/stats.h"
#include "mil/sim/compiler.h"
#include "mil/fp16.h"
#include "cli/commands.h"
#include "cli/option_checks.h"

namespace anetrain {
namespace {

using Clock = std::chrono::steady_clock;

double sgemm_floor(const std::vector<mil::MatrixProduct>& gemms, int repeats) {
  size_t most = 1;
  for (const auto& g : gemms) most = std::max({most, size_t(g.m * g.k), size_t(g.k * g.n), size_t(g.m * g.n)});
  std::vector<float> a(most, 0.5f), b(most, 0.25f), c(most);
  double best = 1e30;
  for (int r = 0; r < repeats; ++r) {
    auto t0 = Clock::now();
    for (const auto& g : gemms)
      for (int64_t i = 0; i < g.batch; ++i)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(g.m), int(g.n), int(g.k), 1.0f, a.data(), int(g.k),
                    b.data(), int(g.n), 0.0f, c.data(), int(g.n));
    best = std::min(best, std::chrono::duration<double>(Clock::now() - t0).count());
  }
  return best;
}

}  // namespace

void add_bench_mil_command(CLI::App* bench, Command& run) {
  struct Options {
    std::vector<std::string> programs;
    std::string weights;
    int repeats = 5;
  };
  const auto o = std::make_shared<Options>();
  auto* cmd = bench->add_subcommand("mil", "ane-sim evaluation time vs the same matrix products as bare sgemm");
  cmd->add_option("programs", o->programs, "MIL programs (each with its weights under its own folder)")->required();
  cmd->add_option("--weights", o->weights, "Folder @model_path stands for (default: each program's folder)");
  cmd->add_option("--repeats", o->repeats, "Timed evaluations per program (best is reported)")->capture_default_str()->check(within(Range::between(1, 1 << 20).whole()));
  cmd->callback([&run, o] {
    run = [o] {
      double total_sim = 0, total_floor = 0, total_flops = 0;
      std::mt19937 rng(1);
      std::normal_distribution<float> nd(0.0f, 0.5f);
      for (const std::string& path : o->programs) {
        mil::Program p = mil::parse_program_file(path);
        std::string dir = o->weights.empty() ? std::filesystem::path(path).parent_path().string() : o->weights;
        sim::Compiler rt;  // one per program: a bench of many programs must not spend the process budget
        auto model = rt.compile(p, dir.empty() ? "." : dir);
        std::vector<sim::Tensor> in;
        for (const auto& [name, t] : p.inputs) {
          in.push_back(sim::Tensor::zeros(t));
          for (float& v : *in.back().data) v = nd(rng);
          mil::round_to_fp16(in.back().ptr(), in.back().numel());
        }
        model->evaluate(in);  // warm-up
        double best = 1e30;
        for (int r = 0; r < o->repeats; ++r) {
          auto t0 = Clock::now();
          model->evaluate(in);
          best = std::min(best, std::chrono::duration<double>(Clock::now() - t0).count());
        }
        double floor = sgemm_floor(mil::matrix_products(p), o->repeats);
        double flops = mil::program_stats(p).matrix_flops;
        std::printf("  %-48s ane-sim %8.2f ms  sgemm floor %8.2f ms  ratio %5.2f  (%.1f GFLOP/s)\n", path.c_str(), best * 1e3,
                    floor * 1e3, best / floor, flops / best / 1e9);
        total_sim += best, total_floor += floor, total_flops += flops;
      }
      std::printf("bench mil: %zu programs, ane-sim %.1f ms, sgemm floor %.1f ms, ane-sim / floor = %.2f× (%.1f GFLOP/s)\n",
                  o->programs.size(), total_sim * 1e3, total_floor * 1e3, total_sim / total_floor, total_flops / total_sim / 1e9);
      return 0;
    };
  });
}

}  // namespace anetrain
