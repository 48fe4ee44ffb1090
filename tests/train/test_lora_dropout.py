# `train --lora R --lora-dropout P` on stories260K, a few steps each (random tokens: only the bits
# matter here, learning is train_lora's):
#  1. P = 0 is no dropout: --lora-dropout 0 gives the adapter bytes of a run without the flag;
#  2. dropout is on: P = 0.2 gives other bytes;
#  3. resume is exact with dropout (the masks come from the seed, step and micro-batch): 12 steps
#     straight and 6 + --resume 6, two micro-batches a step, give the same adapter and state bytes;
#  4. the run records P: run.json's lora_dropout, the checkpoint's adapter_config.json;
#  5. --resume with another --lora-dropout is refused (the same value is accepted), as is
#     --lora-dropout without --lora or outside [0, 1);
#  6. --lora over a preset (random weights) warns, over the pretrained file it does not.
import json
import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_shards as ms  # noqa: E402


def train(a, out, data, steps, extra=()):
    ms.rmtree(out)
    return ms.run([a.anetrain, "train", "--model", a.model, "--lora", "4", "--data", data, "--seq", "32",
                   "--batch", "4", "--accum", "2", "--steps", str(steps), "--lr", "5e-3", "--warmup", "2",
                   "--ckpt-every", "6", "--eval-every", "0", "--val-frac", "0", "--log-every", "50", "--threads", "2",
                   "--precision", "fp32", "--out", out, *extra], timeout=300, check_rc=0)


def final_bytes(run, step, files=("adapter_model.safetensors", "model.anck")):
    d = ms.ckpt_dirs(run)[step]
    return [open(os.path.join(d, f), "rb").read() for f in files]


def main_body(a):
    os.makedirs(a.workdir, exist_ok=True)
    a.model = os.path.join(a.assets, "llama2c", "stories260K.bin")
    rng = random.Random(3)
    data = os.path.join(a.workdir, "tokens.bin")
    ms.write_u16_shard(data, [rng.randrange(512) for _ in range(20000)])

    plain, zero, dropped = (os.path.join(a.workdir, n) for n in ("plain", "zero", "dropped"))
    train(a, plain, data, 6)
    train(a, zero, data, 6, ["--lora-dropout", "0"])
    ms.check(final_bytes(plain, 6) == final_bytes(zero, 6), "--lora-dropout 0 changed the run's bytes")
    train(a, dropped, data, 6, ["--lora-dropout", "0.2"])
    ms.check(final_bytes(dropped, 6)[0] != final_bytes(plain, 6)[0], "--lora-dropout 0.2 left the adapters as P = 0")

    straight, halves = os.path.join(a.workdir, "straight"), os.path.join(a.workdir, "halves")
    train(a, straight, data, 12, ["--lora-dropout", "0.2"])
    train(a, halves, data, 12, ["--lora-dropout", "0.2", "--stop-at", "6"])
    r = ms.run([a.anetrain, "train", "--resume", halves, "--lora-dropout", "0.3"], timeout=120)
    ms.check(r.returncode != 0 and "--lora-dropout 0.2" in r.err,
             "--resume with another --lora-dropout was not refused naming the run's: %r" % r.err[-400:])
    ms.run([a.anetrain, "train", "--resume", halves, "--lora-dropout", "0.2"], timeout=300, check_rc=0)
    ms.check(final_bytes(straight, 12) == final_bytes(halves, 12), "the resumed dropout run differs from the straight one")

    with open(os.path.join(straight, "run.json")) as f:
        ms.check(json.load(f).get("lora_dropout") == 0.2, "run.json does not record lora_dropout 0.2")
    with open(os.path.join(ms.ckpt_dirs(straight)[12], "adapter_config.json")) as f:
        ms.check(json.load(f).get("lora_dropout") == 0.2, "adapter_config.json does not record lora_dropout 0.2")

    bad = os.path.join(a.workdir, "bad")
    for extra, want in ((["--lora-dropout", "0.2"], "needs adapters"), (["--lora", "4", "--lora-dropout", "1"], "--lora-dropout")):
        ms.rmtree(bad)
        r = ms.run([a.anetrain, "train", "--model", a.model, "--data", data, "--steps", "1", "--out", bad, *extra],
                   timeout=60)
        ms.check(r.returncode != 0 and want in r.err, "%s was not refused: %r" % (" ".join(extra), r.err[-400:]))
    # Adapters over a preset's random weights: allowed, but announced on the terminal and in the
    # telemetry; over the pretrained file, no such warning (the run `plain` above).
    ms.rmtree(bad)
    r = ms.run([a.anetrain, "train", "--model", "stories260k", "--lora", "4", "--data", data, "--seq", "32",
                "--steps", "1", "--threads", "1", "--out", bad], timeout=60, check_rc=0)
    ms.check("its weights are random" in r.err, "--lora over a preset did not warn: %r" % r.err[-400:])
    ms.check(any("its weights are random" in e.get("text", "") for e in ms.telemetry(bad) if e.get("event") == "warning"),
             "--lora over a preset: no warning event in the telemetry")
    plain_events = ms.telemetry(plain)
    ms.check(plain_events and not any(e.get("event") == "warning" for e in plain_events),
             "--lora over the pretrained stories260K.bin warned (or its run is gone)")
    if not a.keep:
        for d in (plain, zero, dropped, straight, halves, bad):
            ms.rmtree(d)


def main():
    a = ms.common_args("LoRA dropout: P = 0, exact resume, options", "train_lora_dropout").parse_args()
    ms.run_main("train_lora_dropout", lambda: main_body(a), a.anetrain)


if __name__ == "__main__":
    main()
