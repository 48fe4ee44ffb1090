# `prepare --chat` through the binary, then training and `grad` with the loss masks it writes:
#  * malformed lines: without --skip-bad, exit 1 naming FILE:LINE; with it, skipped and counted in
#    prepare.json; nothing else is dropped (every good conversation's reply is in the shards);
#  * stories260K trains a few fp32 steps on the masked shards: each step event says how many
#    targets counted (the mask's ones among the windows' targets), the validation loss is finite;
#  * `train --data FOLDER` (the folder prepare wrote) trains on its train shards and validates on its
#    val shards, the same losses as naming them; a folder without prepare.json is refused, nothing made;
#    `eval --data FOLDER` scores its val shards;
#  * `grad --mask`: the loss equals the mean of the counted rows' cross-entropies computed from
#    the logits it writes (1e-5 relative: fp32 logits, double sums); an all-ones mask gives the
#    unmasked loss and gradients bit for bit;
#  * a damaged mask beside a shard, or a --mask value other than 0/1, is an error naming the file;
#  * with --mpi (builds with Open MPI): 2 ranks × batch 2 give the step losses, counted targets and
#    validation losses of 1 process × accum 2 × batch 2 (1e-6 relative: only the sums' order differs),
#    every rank weighing its micro-batches by the whole step's counted targets.
# Run: /usr/bin/python3 tests/train/test_chat_masks.py --anetrain BIN --assets DIR --workdir DIR
import json
import os
import shutil
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_shards as ms  # noqa: E402
from make_shards import check  # noqa: E402


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        out[name] = np.frombuffer(data[a:b], dtype=np.float32).reshape(info["shape"])
    return out


def read_shard(path):
    with open(path, "rb") as f:
        d = f.read()
    width, n = struct.unpack("<I", d[12:16])[0], struct.unpack("<Q", d[16:24])[0]
    return np.frombuffer(d[64:64 + n * width], dtype=np.uint16 if width == 2 else np.uint32).astype(np.int64)


def read_mask(path):
    with open(path, "rb") as f:
        d = f.read()
    check(d[:8] == b"ANTMASK1", "%s: bad magic" % path)
    n = struct.unpack("<Q", d[16:24])[0]
    check(len(d) == 32 + n, "%s: size %d for %d tokens" % (path, len(d), n))
    return np.frombuffer(d[32:], dtype=np.uint8)


def conversations(n):
    """Questions a tiny model can learn: 'what comes after N?' → 'N+1', in both JSONL forms."""
    lines = []
    for i in range(n):
        q, a = "What comes after %d?" % i, "%d" % (i + 1)
        if i % 2:
            lines.append(json.dumps({"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}))
        else:
            lines.append(json.dumps({"conversations": [{"from": "human", "value": q}, {"from": "gpt", "value": a}]}))
    return lines


def data_parallel_matches_accumulation(a, model, summary):
    check(shutil.which("mpirun") is not None, "mpirun not found")
    args = ["train", "--model", model, "--data"] + summary["train_shards"] + ["--val-data"] + summary["val_shards"] + \
        ["--seq", "32", "--batch", "2", "--steps", "8", "--threads", "1", "--precision", "fp32", "--eval-every", "4",
         "--eval-batches", "3", "--warmup", "1", "--lr", "1e-3", "--log-every", "1", "--seed", "5"]
    dp, solo = os.path.join(a.workdir, "dp2"), os.path.join(a.workdir, "solo_accum2")
    ms.rmtree(dp)
    ms.rmtree(solo)
    ms.run(["mpirun", "--allow-run-as-root", "--oversubscribe", "--bind-to", "none", "-np", "2", a.anetrain] + args +
           ["--accum", "1", "--out", dp], timeout=300, check_rc=0)
    ms.run([a.anetrain] + args + ["--accum", "2", "--out", solo], timeout=300, check_rc=0)
    e_dp, e_solo = ms.telemetry(dp), ms.telemetry(solo)
    s_dp, s_solo = ms.step_events(e_dp), ms.step_events(e_solo)
    check(len(s_dp) == len(s_solo) == 8, "step events %d vs %d" % (len(s_dp), len(s_solo)))
    for x, y in zip(s_dp, s_solo):
        check(x["counted_targets"] == y["counted_targets"], "step %d counted %s vs %s" %
              (x["step"], x["counted_targets"], y["counted_targets"]))
        check(abs(x["loss"] - y["loss"]) <= 1e-6 * abs(y["loss"]), "step %d loss %r vs %r" % (x["step"], x["loss"], y["loss"]))
    v_dp = [e["val_loss"] for e in e_dp if e.get("event") == "eval"]
    v_solo = [e["val_loss"] for e in e_solo if e.get("event") == "eval"]
    check(len(v_dp) == len(v_solo) == 2 and all(abs(x - y) <= 1e-6 * abs(y) for x, y in zip(v_dp, v_solo)),
          "validation losses %s vs %s" % (v_dp, v_solo))


def main():
    ap = ms.common_args(None, "train_chat_masks")
    ap.add_argument("--mpi", action="store_true", help="also compare 2 MPI ranks with one process")
    a = ap.parse_args()
    os.makedirs(a.workdir, exist_ok=True)
    model = os.path.join(a.assets, "llama2c", "stories260K.bin")
    tok = os.path.join(a.assets, "llama2c", "tok512.bin")
    lines = conversations(400)
    bad_at = 37  # 1-based line of a malformed conversation
    lines.insert(bad_at - 1, json.dumps({"messages": [{"role": "user", "content": "no reply"}]}))
    data = os.path.join(a.workdir, "chat.jsonl")
    with open(data, "w") as f:
        f.write("\n".join(lines) + "\n")

    def prepare(out, *extra):
        ms.rmtree(out)
        return ms.run([a.anetrain, "prepare", "--chat", data, "-z", tok, "-o", out, "--template", "llama2",
                       "--val-frac", "0.1", "--threads", "2"] + list(extra), timeout=120)

    r = prepare(os.path.join(a.workdir, "refused"))
    check(r.returncode == 1, "a malformed line must stop prepare (exit %d): %s" % (r.returncode, r.err))
    check("%s:%d:" % (data, bad_at) in r.err and "no assistant message" in r.err,
          "the error must name %s:%d: %s" % (data, bad_at, r.err))

    out = os.path.join(a.workdir, "shards")
    prepare(out, "--skip-bad")
    with open(os.path.join(out, "prepare.json")) as f:
        summary = json.load(f)
    chat = summary["chat"]
    check(chat["skipped"] == 1 and chat["conversations"] == 400, "summary: %s" % chat)
    check(chat["skipped_lines"][0].startswith("%s:%d:" % (data, bad_at)), "skipped line: %s" % chat)
    ids, mask = [], []
    for shard in summary["train_shards"] + summary["val_shards"]:
        ids.append(read_shard(shard))
        mask.append(read_mask(shard[:-4] + ".mask"))
        check(len(ids[-1]) == len(mask[-1]), "%s: mask and shard differ in length" % shard)
    ids, mask = np.concatenate(ids), np.concatenate(mask)
    check(int(mask.sum()) == chat["counted_tokens"], "counted tokens %d vs %s" % (mask.sum(), chat))
    # Every reply ends with EOS (id 2), counted; every BOS (id 1) starts a prompt, not counted.
    check(int((ids == 2).sum()) == 400 and bool(np.all(mask[ids == 2] == 1)), "each reply's EOS counts")
    check(bool(np.all(mask[ids == 1] == 0)), "BOS never counts")

    run = os.path.join(a.workdir, "run")
    ms.rmtree(run)
    seq, batch, steps = 32, 4, 6
    ms.run([a.anetrain, "train", "--model", model, "--data"] + summary["train_shards"] +
           ["--val-data"] + summary["val_shards"] +
           ["--seq", str(seq), "--batch", str(batch), "--accum", "2", "--steps", str(steps), "--threads", "2",
            "--precision", "fp32", "--eval-every", "3", "--eval-batches", "2", "--warmup", "1", "--lr", "1e-3",
            "--out", run], timeout=300, check_rc=0)
    events = ms.telemetry(run)
    steps_ev = ms.step_events(events)
    check(len(steps_ev) == steps, "%d step events" % len(steps_ev))
    for e in steps_ev:
        # A window of 32 targets holds 4–5 of the ~7-token exchanges: a few counted targets each.
        check(0 < e["counted_targets"] < 2 * batch * seq, "step %d counted %s" % (e["step"], e["counted_targets"]))
        check(e["loss"] is not None and np.isfinite(e["loss"]), "step %d loss %s" % (e["step"], e["loss"]))
    evals = [e for e in events if e.get("event") == "eval"]
    check(evals and all(e["val_loss"] is not None and np.isfinite(e["val_loss"]) for e in evals), "evals: %s" % evals)

    # The folder `prepare -o` wrote stands for its shards: its train shards train, its val shards
    # validate (run.json names the files), and the run is the one above to the bit.
    by_folder = os.path.join(a.workdir, "run_by_folder")
    ms.rmtree(by_folder)
    ms.run([a.anetrain, "train", "--model", model, "--data", out, "--seq", str(seq), "--batch", str(batch), "--accum",
            "2", "--steps", str(steps), "--threads", "2", "--precision", "fp32", "--eval-every", "3", "--eval-batches",
            "2", "--warmup", "1", "--lr", "1e-3", "--out", by_folder], timeout=300, check_rc=0)
    with open(os.path.join(by_folder, "run.json")) as f:
        settings = json.load(f)
    absolute = [[os.path.abspath(p) for p in summary[k]] for k in ("train_shards", "val_shards")]
    check([settings["data"], settings["val_data"]] == absolute,
          "run.json of --data FOLDER: %s %s, want %s" % (settings["data"], settings["val_data"], absolute))
    folder_events = ms.telemetry(by_folder)
    losses = [(e["step"], e["loss"]) for e in ms.step_events(events)]
    check(losses == [(e["step"], e["loss"]) for e in ms.step_events(folder_events)], "--data FOLDER trained otherwise")
    check([e["val_loss"] for e in evals] == [e["val_loss"] for e in folder_events if e.get("event") == "eval"],
          "--data FOLDER validated otherwise")
    not_prepared = os.path.join(a.workdir, "not_prepared")
    ms.rmtree(not_prepared)
    os.makedirs(not_prepared)
    shutil.copy(summary["train_shards"][0], not_prepared)
    r = ms.run([a.anetrain, "train", "--model", model, "--data", not_prepared, "--steps", "1", "--out",
                run + "_not_prepared"], timeout=60)
    check(r.returncode == 1 and not_prepared + ": a folder, but not one `anetrain prepare` wrote" in r.err and
          not os.path.exists(run + "_not_prepared"), "a folder without prepare.json: %s" % r.err)
    # eval --data FOLDER scores its validation shards: the figure of naming them.
    ev = [ms.run([a.anetrain, "eval", model, "--data"] + d + ["--ctx", "64", "--json", "--threads", "2"], timeout=120,
                 check_rc=0) for d in ([out], summary["val_shards"])]
    check(json.loads(ev[0].out)["perplexity"] == json.loads(ev[1].out)["perplexity"] and "its 1 validation shard(s)" in ev[0].err,
          "eval --data FOLDER: %s / %s" % (ev[0].out + ev[0].err, ev[1].out))

    # grad --mask against the loss recomputed from its own logits.
    B, T = 2, 24
    window = ids[:B * (T + 1)]
    wmask = mask[:B * (T + 1)].copy()
    tokens_path = os.path.join(a.workdir, "tokens.txt")
    with open(tokens_path, "w") as f:
        f.write(" ".join(str(int(v)) for v in window) + "\n")

    def grad(mask_values, name):
        outp = os.path.join(a.workdir, name + ".safetensors")
        cmd = [a.anetrain, "grad", model, "--tokens", tokens_path, "--batch", str(B), "--seq", str(T), "-o", outp,
               "--threads", "2"]
        if mask_values is not None:
            mpath = os.path.join(a.workdir, name + ".mask.txt")
            with open(mpath, "w") as f:
                f.write(" ".join(str(int(v)) for v in mask_values) + "\n")
            cmd += ["--mask", mpath]
        ms.run(cmd, timeout=120, check_rc=0)
        return read_safetensors(outp)

    g = grad(wmask, "masked")
    logits = g["logits"].astype(np.float64)
    rows = window.reshape(B, T + 1)
    counted = wmask.reshape(B, T + 1)[:, 1:].astype(bool)
    lse = np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1)) + logits.max(-1)
    ce = lse - np.take_along_axis(logits, rows[:, 1:, None], axis=-1)[..., 0]
    want = ce[counted].mean()
    got = float(g["loss"])
    check(abs(got - want) <= 1e-5 * abs(want), "grad --mask loss %.8f, mean of counted rows %.8f" % (got, want))
    plain, ones = grad(None, "plain"), grad(np.ones_like(wmask), "ones")
    for name in plain:
        check(np.array_equal(plain[name], ones[name]), "an all-ones mask changed %s" % name)

    bad_mask = os.path.join(a.workdir, "bad.mask.txt")
    with open(bad_mask, "w") as f:
        f.write(" ".join(["1"] * (len(window) - 1) + ["2"]) + "\n")
    r = ms.run([a.anetrain, "grad", model, "--tokens", tokens_path, "--mask", bad_mask, "-o",
                os.path.join(a.workdir, "x.safetensors")], timeout=60)
    check(r.returncode == 1 and bad_mask in r.err and "neither 0 nor 1" in r.err, "bad --mask: %s" % r.err)

    if a.mpi:
        data_parallel_matches_accumulation(a, model, summary)

    mask_file = summary["train_shards"][0][:-4] + ".mask"
    with open(mask_file, "r+b") as f:
        f.truncate(os.path.getsize(mask_file) - 3)
    r = ms.run([a.anetrain, "train", "--model", model, "--data", summary["train_shards"][0], "--seq", "32",
                "--steps", "1", "--out", run + "_bad"], timeout=60)
    check(r.returncode == 1 and mask_file in r.err, "a truncated mask must be named: %s" % r.err)


if __name__ == "__main__":
    args = sys.argv
    anetrain = args[args.index("--anetrain") + 1] if "--anetrain" in args else ms.DEFAULT_BIN
    ms.run_main("train_chat_masks", main, anetrain)
