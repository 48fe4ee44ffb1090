# LoRA fine-tuning end to end on stories260K (llama2.c's 260K-parameter model and tok512):
#  1. learning: a chat set "what comes after N?" → N+1 (plain template; only the replies count),
#     held-out N the base cannot answer; after `train --lora` the run answers most of them, both
#     from the run folder and as `generate BASE --lora STEP_DIR`;
#  2. the base stays frozen: the run's checkpoint holds the base tensors bit for bit;
#  3. resume is exact: 40 steps straight and 20 + --resume 20 give the same adapter bytes;
#  4. `merge BASE STEP_DIR -o merged.gguf` generates the same greedy text as the unmerged adapter;
#     the run folder stands for its newest checkpoint (`merge BASE RUN`, `--lora RUN`), and a run
#     without adapters is refused as an adapter folder.
import json
import os
import random
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_shards as ms  # noqa: E402

PROMPT = "User: what comes after %d?\nAssistant:"


def write_chat(path, numbers):
    with open(path, "w") as f:
        for n in numbers:
            f.write(json.dumps({"messages": [{"role": "user", "content": "what comes after %d?" % n},
                                             {"role": "assistant", "content": "%d" % (n + 1)}]}) + "\n")


def answer(a, model, n, extra=()):
    r = ms.run([a.anetrain, "generate", model, *extra, "-i", PROMPT % n, "-n", "5", "-t", "0"], timeout=120, check_rc=0)
    m = re.match(r"\s*(\d+)", r.out.split("Assistant:", 1)[1])
    return (int(m.group(1)) if m else None), r.out


def accuracy(a, model, held, extra=()):
    right = sum(1 for n in held if answer(a, model, n, extra)[0] == n + 1)
    return right


def train(a, out, data, steps, extra=()):
    ms.rmtree(out)
    return ms.run([a.anetrain, "train", "--model", a.model, "--lora", "8", "--lora-alpha", "16", "--data", data,
                   "--seq", "64", "--batch", "16", "--steps", str(steps), "--lr", "5e-3", "--warmup", "20",
                   "--ckpt-every", "20", "--eval-every", "0", "--log-every", "50", "--threads", str(a.threads), "--precision", "fp32", "--out", out,
                   "-z", a.tok, *extra], timeout=900, check_rc=0)


def main_body(a):
    os.makedirs(a.workdir, exist_ok=True)
    a.model = os.path.join(a.assets, "llama2c", "stories260K.bin")
    a.tok = os.path.join(a.assets, "llama2c", "tok512.bin")
    rng = random.Random(1)
    numbers = [n for n in range(100, 1000) if n % 10 != 9]  # no carries: a rule learnable in CI time
    rng.shuffle(numbers)
    held, seen = numbers[:30], numbers[30:]
    chat = os.path.join(a.workdir, "train.jsonl")
    write_chat(chat, seen)
    data = os.path.join(a.workdir, "data")
    ms.rmtree(data)
    ms.run([a.anetrain, "prepare", "--chat", chat, "-z", a.tok, "--template", "plain", "--val-frac", "0", "-o", data],
           timeout=120, check_rc=0)
    shard = os.path.join(data, "train_000.bin")

    base_right = accuracy(a, a.model, held, ["-z", a.tok])
    print("base model: %d of %d held-out answers right" % (base_right, len(held)), flush=True)
    ms.check(base_right <= 3, "the base already answers %d of %d; the test proves nothing" % (base_right, len(held)))

    run = os.path.join(a.workdir, "run")
    train(a, run, shard, 500)
    step_dir = ms.ckpt_dirs(run)[500]
    for f in ("adapter_config.json", "adapter_model.safetensors"):
        ms.check(os.path.exists(os.path.join(step_dir, f)), "the checkpoint has no %s" % f)
    run_right = accuracy(a, run, held)
    lora_right = accuracy(a, a.model, held, ["--lora", step_dir, "-z", a.tok])
    print("after LoRA: %d of %d from the run, %d with --lora" % (run_right, len(held), lora_right), flush=True)
    ms.check(run_right >= 24, "the adapter run answers only %d of %d held-out prompts" % (run_right, len(held)))
    ms.check(lora_right == run_right, "generate --lora (%d) and the run folder (%d) disagree" % (lora_right, run_right))
    # `generate --chat` prompts as prepare --chat rendered the training replies (the plain template,
    # picked by auto for tok512): the same greedy reply as the hand-written "User: …\nAssistant:".
    for n in held[:4]:
        r = ms.run([a.anetrain, "generate", run, "--chat", "-i", "what comes after %d?" % n, "-n", "5", "-t", "0"],
                   timeout=120, check_rc=0)
        ms.check("chat template plain" in r.err, "generate --chat on tok512 did not pick plain: " + r.err[-300:])
        by_hand = answer(a, run, n)[1].split("Assistant:", 1)[1]
        ms.check(r.out == "what comes after %d?" % n + by_hand, "--chat %r vs the hand-built prompt's %r" % (r.out, by_hand))

    # The base is frozen: the checkpoint's base tensors are the .bin's, bit for bit.
    base = ms.export_tensors(a.anetrain, a.model, os.path.join(a.workdir, "base_export"))
    merged = ms.export_tensors(a.anetrain, step_dir, os.path.join(a.workdir, "run_export"))
    ms.check(sorted(merged) == sorted(base), "export of the adapter run has other tensors than the base")
    untouched = [n for n in base if not re.search(r"(q|k|v|o|gate|up|down)_proj", n)]
    ms.compare_tensors({n: base[n] for n in untouched}, {n: merged[n] for n in untouched}, "non-adapted tensors")
    changed = [n for n in base if n not in untouched and base[n][1] != merged[n][1]]
    ms.check(len(changed) == len(base) - len(untouched), "merging changed only %d of %d adapted projections" %
             (len(changed), len(base) - len(untouched)))

    # Resume is exact.
    straight, halves = os.path.join(a.workdir, "straight"), os.path.join(a.workdir, "halves")
    train(a, straight, shard, 40)
    train(a, halves, shard, 40, ["--stop-at", "20"])
    ms.run([a.anetrain, "train", "--resume", halves], timeout=600, check_rc=0)
    for f in ("adapter_model.safetensors", "model.anck"):  # the adapters follow from the restored moments too
        x = open(os.path.join(ms.ckpt_dirs(straight)[40], f), "rb").read()
        y = open(os.path.join(ms.ckpt_dirs(halves)[40], f), "rb").read()
        ms.check(x == y, "resumed run's %s differs from the straight run's" % f)

    # merge → GGUF: the same greedy text as the unmerged adapter.
    gguf = os.path.join(a.workdir, "merged.gguf")
    if os.path.exists(gguf):
        os.remove(gguf)
    ms.run([a.anetrain, "merge", a.model, step_dir, "-o", gguf], timeout=300, check_rc=0)
    for n in held[:5]:
        _, lora_text = answer(a, a.model, n, ["--lora", step_dir, "-z", a.tok])
        _, gguf_text = answer(a, gguf, n)
        ms.check(lora_text == gguf_text, "merged GGUF and --lora differ for %d: %r vs %r" % (n, gguf_text, lora_text))
    # The run folder itself stands for its newest checkpoint (step 500) as an adapter folder; a run
    # without adapters is refused as one, saying to give it as the model.
    ms.check(ms.ckpt_dirs(run)[500] == max(ms.ckpt_dirs(run).items())[1], "step 500 is not the run's newest")
    by_run = os.path.join(a.workdir, "merged_by_run.gguf")
    ms.run([a.anetrain, "merge", a.model, run, "-o", by_run], timeout=300, check_rc=0)
    ms.check(open(by_run, "rb").read() == open(gguf, "rb").read(), "merge BASE RUN differs from merge BASE STEP_DIR")
    _, run_text = answer(a, a.model, held[0], ["--lora", run, "-z", a.tok])
    _, step_text = answer(a, a.model, held[0], ["--lora", step_dir, "-z", a.tok])
    ms.check(run_text == step_text, "--lora RUN and --lora STEP_DIR differ: %r vs %r" % (run_text, step_text))
    full = os.path.join(a.workdir, "full")
    ms.rmtree(full)
    ms.run([a.anetrain, "train", "--model", a.model, "--data", shard, "--seq", "32", "--batch", "2", "--steps", "1",
            "--threads", str(a.threads), "--out", full], timeout=120, check_rc=0)
    r = ms.run([a.anetrain, "merge", a.model, full, "-o", os.path.join(a.workdir, "never.gguf")], timeout=120)
    ms.check(r.returncode == 1 and "a run without adapters" in r.err and "MODEL" in r.err,
             "a full fine-tuning run given as the adapter was not refused: %r" % r.err[-400:])
    if not a.keep:
        for d in (run, straight, halves, full):
            ms.rmtree(d)


def main():
    a = ms.common_args("LoRA fine-tuning end to end", "train_lora").parse_args()
    ms.run_main("train_lora", lambda: main_body(a), a.anetrain)


if __name__ == "__main__":
    main()
