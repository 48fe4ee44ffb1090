# train --lora with the frozen base held in bf16 or Q8_0 (--base-dtype), end to end:
#  1. refusals: without --lora (full training updates the base); Q8_0 over rows that are not whole
#     blocks of 32 (stories260K's down_proj), naming the tensor;
#  2. learning: stories260K with a bf16 base learns "what comes after N?" as the fp32 base does
#     (tests/train/test_lora.py), and the run folder generates from its checkpoint;
#  3. the checkpoint names its base instead of holding it, and resume is exact for bf16 and Q8_0
#     (40 steps straight and 20 + --resume 20 give the same bytes);
#  4. a base that changed since the run started is refused on resume, naming it.
import json
import os
import random
import re
import shutil
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_shards as ms  # noqa: E402
import test_lora as tl  # noqa: E402


def train(a, model, out, data, steps, dtype, extra=()):
    ms.rmtree(out)
    return ms.run([a.anetrain, "train", "--model", model, "--lora", "8", "--lora-alpha", "16", "--data", data,
                   "--seq", "64", "--batch", "16", "--steps", str(steps), "--lr", "5e-3", "--warmup", "20",
                   "--ckpt-every", "20", "--eval-every", "0", "--log-every", "50", "--threads", str(a.threads),
                   "--precision", "fp32", "--base-dtype", dtype, "--out", out, *extra], timeout=900, check_rc=0)


def model_meta(step_dir):
    with open(os.path.join(step_dir, "model.anck"), "rb") as f:
        head = f.read(1 << 16)
    m = re.search(rb'"held_base":\{[^}]*\}', head)
    return json.loads(b"{" + m.group(0) + b"}")["held_base"] if m else None


def exact_resume(a, model, data, dtype, name):
    straight, halves = os.path.join(a.workdir, name + "_straight"), os.path.join(a.workdir, name + "_halves")
    train(a, model, straight, data, 40, dtype)
    train(a, model, halves, data, 40, dtype, ["--stop-at", "20"])
    ms.run([a.anetrain, "train", "--resume", halves], timeout=600, check_rc=0)
    for f in ("adapter_model.safetensors", "model.anck"):  # state.anck names its run
        x = open(os.path.join(ms.ckpt_dirs(straight)[40], f), "rb").read()
        y = open(os.path.join(ms.ckpt_dirs(halves)[40], f), "rb").read()
        ms.check(x == y, "%s base: the resumed run's %s differs from the straight run's" % (dtype, f))
    step = ms.ckpt_dirs(straight)[40]
    ref = model_meta(step)
    ms.check(ref is not None and ref["dtype"] == dtype and len(ref["fingerprint"]) == 16,
             "%s base: the checkpoint names no held base (%r)" % (dtype, ref))
    return straight


def main_body(a):
    os.makedirs(a.workdir, exist_ok=True)
    stories = os.path.join(a.assets, "llama2c", "stories260K.bin")
    tok = os.path.join(a.assets, "llama2c", "tok512.bin")
    a.model, a.tok = stories, tok

    # 1. refusals
    shard = os.path.join(a.workdir, "random.bin")
    ms.write_anetrain_shard(shard, random.Random(2).choices(range(512), k=20000), vocab_size=512)
    r = ms.run([a.anetrain, "train", "--model", stories, "--data", shard, "--base-dtype", "bf16", "--steps", "1",
                "--out", os.path.join(a.workdir, "refused")], timeout=60)
    ms.check(r.returncode != 0 and "--base-dtype" in r.err and "--lora" in r.err,
             "--base-dtype without --lora: rc %d, %r" % (r.returncode, r.err[-400:]))
    r = ms.run([a.anetrain, "train", "--model", stories, "--lora", "4", "--data", shard, "--base-dtype", "q8_0",
                "--steps", "1", "--out", os.path.join(a.workdir, "refused_q8")], timeout=60)
    ms.check(r.returncode != 0 and "down_proj" in r.err and "bf16" in r.err,
             "q8_0 over ragged rows: rc %d, %r" % (r.returncode, r.err[-400:]))

    # 2. learning with a bf16 base
    rng = random.Random(1)
    numbers = [n for n in range(100, 1000) if n % 10 != 9]
    rng.shuffle(numbers)
    held, seen = numbers[:30], numbers[30:]
    chat = os.path.join(a.workdir, "train.jsonl")
    tl.write_chat(chat, seen)
    data = os.path.join(a.workdir, "data")
    ms.rmtree(data)
    ms.run([a.anetrain, "prepare", "--chat", chat, "-z", tok, "--template", "plain", "--val-frac", "0", "-o", data],
           timeout=120, check_rc=0)
    chat_shard = os.path.join(data, "train_000.bin")
    run = os.path.join(a.workdir, "run")
    train(a, stories, run, chat_shard, 500, "bf16", ["-z", tok])
    right = tl.accuracy(a, run, held)
    print("bf16 base after LoRA: %d of %d held-out answers right" % (right, len(held)), flush=True)
    ms.check(right >= 24, "the bf16-base adapter run answers only %d of %d held-out prompts" % (right, len(held)))

    # 3. exact resume; the checkpoint is the adapters, not the base
    exact_resume(a, stories, chat_shard, "bf16", "bf16")
    cfg = ms.write_config(os.path.join(a.workdir, "q8.json"), vocab_size=512, hidden_dim=128)
    q8 = exact_resume(a, cfg, shard, "q8_0", "q8")
    anck = os.path.getsize(os.path.join(ms.ckpt_dirs(q8)[40], "model.anck"))
    adapters = 2 * 2 * 8 * (4 * 64 + 2 * 32 + 64 + 128 + 128 + 64 + 64 + 64 + 64 + 64 + 128) * 4  # generous bound
    ms.check(anck < adapters, "the Q8_0 run's model.anck is %d bytes: more than its adapters and norms" % anck)

    # 4. a base that changed is refused on resume
    copy = os.path.join(a.workdir, "stories_copy.bin")
    shutil.copyfile(stories, copy)
    changed = os.path.join(a.workdir, "changed")
    train(a, copy, changed, chat_shard, 40, "bf16", ["--stop-at", "20"])
    with open(copy, "r+b") as f:
        f.seek(28 + 4 * 1000)  # a weight of the embedding, past the llama2.c header
        v = struct.unpack("<f", f.read(4))[0]
        f.seek(28 + 4 * 1000)
        f.write(struct.pack("<f", v + 0.5))
    r = ms.run([a.anetrain, "train", "--resume", changed], timeout=120)
    ms.check(r.returncode != 0 and "changed" in r.err and "stories_copy.bin" in r.err,
             "resume over a changed base: rc %d, %r" % (r.returncode, r.err[-400:]))
    if not a.keep:
        for d in os.listdir(a.workdir):
            if os.path.isdir(os.path.join(a.workdir, d)):
                ms.rmtree(os.path.join(a.workdir, d))


def main():
    a = ms.common_args("LoRA over a held base end to end", "train_lora_held_base").parse_args()
    ms.run_main("train_lora_held_base", lambda: main_body(a), a.anetrain)


if __name__ == "__main__":
    main()
