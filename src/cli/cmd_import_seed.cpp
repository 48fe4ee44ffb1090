// `anetrain import-seed CKPT.bin --out RUN --data SHARD... [--lr MAX] [-z TOK]`: a run folder
// from the seed system's BLZT checkpoint (train/import_seed.h) that `train --resume RUN` continues.
#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "train/import_seed.h"

namespace anetrain {

void add_import_seed_command(CLI::App& app, Command& run) {
  auto* cmd = app.add_subcommand("import-seed",
                                 "Make a run folder from the seed system's BLZT checkpoint, to continue it with "
                                 "`train --resume`");
  const auto o = std::make_shared<ImportSeedOptions>();
  cmd->add_option("checkpoint", o->checkpoint, "The seed's checkpoint (BLZT version 4)")->required()->check(CLI::ExistingFile);
  cmd->add_option("--out", o->out, "The new run folder (new or empty)")->required();
  cmd->add_option("--data", o->data, "Token shards to continue on (the seed's raw uint16 file works)")->required();
  cmd->add_option("-z,--tokenizer", o->tokenizer, "The data's tokenizer, kept in the run (samples, generate, export)");
  cmd->add_option("--lr", o->max_lr, "The run's peak learning rate (the seed did not save it; its default 3e-4)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);  // version 2 runs keep the file's own constant rate
  cmd->add_option("--v3-writer", o->v3_writer,
                  "For a version 3 file, the seed commit that wrote it: c3c5094 (RoPE, residual scaling); cb474e1 "
                  "and 926f977 are refused with the reason")
      ->check(CLI::IsMember({"cb474e1", "926f977", "c3c5094"}));
  cmd->add_option("--backend", o->backend, "Backend the run trains on")->capture_default_str();
  cmd->add_option("--precision", o->precision, "fp32 (the seed's) or bf16")
      ->check(CLI::IsMember({"fp32", "bf16"}))
      ->capture_default_str();
  cmd->callback([&run, o] {
    run = [o] {
      const ImportSeedResult r = import_seed(*o);
      std::printf("imported %s (BLZT v%d, micro-step %d of %d, adam_t %d, last loss %.4f) as %s\n", o->checkpoint.c_str(),
                  r.header.version, r.header.step, r.header.total_steps, r.header.adam_t, double(r.header.loss),
                  r.checkpoint_dir.c_str());
      if (r.header.version == 2)
        std::printf("the static pipeline's settings: update %lld of %lld (10 micro-steps each), Adam β2 0.999, constant lr "
                    "%g, no weight decay, no clipping\n", (long long)r.step, (long long)r.steps, double(r.header.lr));
      else
        std::printf("the seed's schedule: update %lld of %lld (10 micro-steps each), warmup 100 and cosine in "
                    "micro-steps, peak lr %g\n", (long long)r.step, (long long)r.steps, o->max_lr);
      std::printf("next: anetrain train --resume %s\n", o->out.c_str());
      return 0;
    };
  });
}

}  // namespace anetrain
