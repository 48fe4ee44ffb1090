#include "train/import_seed.h"

#include <cstring>

#include "core/error.h"
#include "train/checkpoint.h"
#include "train/optimizer.h"
#include "train/run_dir.h"
#include "train/trainer.h"

namespace anetrain {

namespace {

TrainOptions seed_options(const ImportSeedOptions& o, const BlztHeader& h) {
  TrainOptions t;
  t.model = o.checkpoint;
  t.data = o.data;
  t.tokenizer = o.tokenizer;
  t.out = o.out;
  t.seq = h.seq_len;
  t.batch = 1;
  t.accum = kSeedAccum;
  // An update every 10 micro-steps; a last partial one (the seed updated at its final micro-step
  // too) becomes a whole update here.
  t.steps = (int64_t(h.total_steps) + kSeedAccum - 1) / kSeedAccum;
  t.opt.lr_micro_steps = kSeedAccum;
  t.opt.beta1 = 0.9;
  t.opt.eps = 1e-8;
  if (h.version == 2) {
    // A constant rate (the schedule's cosine runs between two equal values), the file's own.
    t.opt.lr = t.opt.min_lr = double(h.lr);
    t.opt.warmup = 0;
    t.opt.beta2 = 0.999;
    t.opt.weight_decay = 0.0;
    t.opt.clip = 0.0;
  } else {
    t.opt.lr = o.max_lr;
    t.opt.min_lr = 0.1 * o.max_lr;
    t.opt.warmup = kSeedWarmupMicroSteps;
    t.opt.beta2 = 0.95;
    t.opt.weight_decay = 0.1;
    t.opt.clip = 1.0;
  }
  t.backend = o.backend;
  t.precision = o.precision;
  t.ckpt_every = 100 / kSeedAccum;  // the seed looked every 100 micro-steps
  t.make_paths_absolute();
  t.expand_prepared_folders();  // run.json names the shards, as a run `train` starts does
  return t;
}

}  // namespace

ImportSeedResult import_seed(const ImportSeedOptions& o) {
  ImportSeedResult r;
  const BlztFile file(o.checkpoint);  // read once: the header checked below is the weights' header
  r.header = file.header();
  const BlztHeader& h = r.header;
  if (o.data.empty()) fail("import-seed: --data SHARD... is required: the run continues training on it");
  BlztV3Writer v3 = BlztV3Writer::unknown;
  if (!o.v3_writer.empty()) {
    if (h.version != 3) fail("import-seed: --v3-writer applies to version 3 files; " + o.checkpoint + " is version " +
                             std::to_string(h.version));
    v3 = blzt_v3_writer(o.v3_writer);
    // The first dynamic commit's Adam settings are not recorded in what is known of the seed.
    if (v3 == BlztV3Writer::cb474e1)
      fail("import-seed: " + o.checkpoint + ": cb474e1's optimizer settings (Adam, clip, cosine) are not known "
           "exactly, so its run cannot be continued as it was; nothing was written");
  }
  blzt_config(h, o.checkpoint, v3);  // refuses what cannot be loaded before anything is written
  if (h.version == 2 && !(h.lr > 0)) fail_at(o.checkpoint, 40, "lr " + std::to_string(h.lr) + " is not positive");
  if (h.step % kSeedAccum != 0)
    fail_at(o.checkpoint, 8, "step " + std::to_string(h.step) + " is not at an update (a multiple of " +
                                 std::to_string(kSeedAccum) + " micro-steps): the seed saves only there");
  if (h.step > h.total_steps)
    fail_at(o.checkpoint, 8, "step " + std::to_string(h.step) + " is past total_steps " + std::to_string(h.total_steps));
  TrainOptions t = seed_options(o, h);
  t.validate(/*cli_names=*/true);
  BlztMoments moments;
  auto model = file.load(&moments, v3);
  AdamWConfig cfg = t.opt;
  cfg.total_steps = int(t.steps);
  AdamW opt(*model, cfg);
  // Every tensor trains, so the moments' layout (the gradients') is the weights' layout.
  if (opt.m1().size() != moments.m.size()) fail("import-seed: internal error: moment layout differs from the weights'");
  opt.m1() = std::move(moments.m);
  opt.m2() = std::move(moments.v);
  opt.set_steps_taken(h.adam_t);
  TrainState st;
  r.step = h.step / kSeedAccum;
  r.steps = t.steps;
  st.step = r.step;
  st.tokens_seen = uint64_t(h.step) * uint64_t(h.seq_len);
  st.last_loss = h.loss;
  RunDir run = RunDir::create(t.out, /*force=*/false);
  run.write_settings(t.to_json());
  r.checkpoint_dir = save_checkpoint(run, *model, opt, st);
  if (r.checkpoint_dir.empty()) fail("import-seed: " + t.out + ": the checkpoint could not be written");
  return r;
}

}  // namespace anetrain
