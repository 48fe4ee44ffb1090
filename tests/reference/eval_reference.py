# `anetrain eval` against an independent float64 scoring of stories260K: the perplexity of a text
# by llama.cpp's chunk protocol and by the sliding window, bits per byte, a token shard with a
# loss mask, and multiple-choice log-likelihoods, picks and accuracies on tests/data's JSONL.
# Tokens come from tok512.py, logits from torch_model.py (PyTorch, float64, its own forward).
# Run: /usr/bin/python3 tests/reference/eval_reference.py --anetrain BIN --assets DIR --workdir DIR
import argparse
import gzip
import json
import math
import os
import re
import struct
import subprocess
import sys

import numpy as np
import torch_or_skip  # noqa: F401  (off Linux, a missing torch skips the test: exit 77)
import torch

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import tok512  # noqa: E402
import torch_model as tm  # noqa: E402

CHOICES = os.path.join(HERE, "..", "data", "eval_choices.jsonl")
REL = 1e-5  # fp32 products against float64: the mean NLL over ~1000 tokens agrees far closer
failures = []


def check(name, ours, ref, rel=REL):
    ok = (ours == ref) if rel == 0 else abs(ours - ref) <= rel * max(abs(ref), 1e-12)
    print("%-34s anetrain %-22r reference %-22r %s" % (name, ours, ref, "ok" if ok else "FAIL"))
    if not ok:
        failures.append(name)


def target_nll(cfg, params, seqs):
    """seqs: [(ids, [target index j, ...])] -> per sequence the NLL of ids[j] given ids[:j]."""
    T = max(len(ids) for ids, _ in seqs)
    batch = torch.zeros(len(seqs), T, dtype=torch.long)
    for b, (ids, _) in enumerate(seqs):
        batch[b, :len(ids)] = torch.tensor(ids)
    with torch.no_grad():
        logp = torch.log_softmax(tm.forward(cfg, params, batch), dim=-1)
    return [[-float(logp[b, j - 1, ids[j]]) for j in js] for b, (ids, js) in enumerate(seqs)]


def windows(n, ctx, stride):
    """(begin, length, first scored position, BOS written over position 0)."""
    if stride == 0:
        return [(k * ctx, ctx, ctx // 2 + 1, True) for k in range(n // ctx)]
    out, scored_to, begin = [], 1, 0
    while scored_to < n:
        end = min(n, begin + ctx)
        out.append((begin, end - begin, scored_to - begin, False))
        scored_to, begin = end, begin + stride
    return out


def perplexity(cfg, params, tok, ids, counts, ctx, stride):
    seqs, where = [], []
    for begin, length, first, bos in windows(len(ids), ctx, stride):
        w = list(ids[begin:begin + length])
        if bos:
            w[0] = tok512.BOS
        js = [j for j in range(max(first, 1), length) if counts is None or counts[begin + j]]
        seqs.append((w, js))
        where.append([begin + j for j in js])
    nll = [v for row in target_nll(cfg, params, seqs) for v in row]
    nbytes = sum(len(tok.decode_piece(ids[at - 1], ids[at])) for row in where for at in row)
    n, mean = len(nll), sum(nll) / len(nll)
    var = sum(v * v for v in nll) / n - mean * mean
    ppl = math.exp(mean)
    return {"perplexity": ppl, "perplexity_err": math.sqrt(var / (n - 1)) * ppl, "tokens": n,
            "bytes": nbytes, "chunks": len(seqs), "bits_per_byte": sum(nll) / math.log(2) / nbytes}


def preprocess(text):
    text = text.strip().replace(" [title]", ". ")
    return re.sub(r"\[.*?\]", "", text).replace("  ", " ")


def choices(cfg, params, tok, path):
    items = []
    for line in open(path, encoding="utf-8"):
        d = json.loads(line)
        if "activity_label" in d:
            ctx = preprocess(d["activity_label"] + ": " + d["ctx_a"] + " " + d["ctx_b"].capitalize())
            endings = [preprocess(e) for e in d["endings"]]
        else:
            ctx, endings = d["ctx"], d["endings"]
        n_ctx = len(tok.encode(ctx.rstrip(" "), bos=True))  # trailing spaces go with the ending
        seqs = []
        for e in endings:
            whole = tok.encode(ctx + " " + e, bos=True)
            seqs.append((whole, list(range(n_ctx, len(whole)))))
        lp = np.array([-sum(row) for row in target_nll(cfg, params, seqs)])
        chars = np.array([float(len(e)) for e in endings])
        items.append({"label": int(d["label"]), "logprob": lp, "pred": int(np.argmax(lp)),
                      "pred_norm": int(np.argmax(lp / chars)), "chars": [len(e) for e in endings]})
    return items


def run(binary, *args):
    out = subprocess.run([binary, "eval", *args, "--json", "-q"], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit("anetrain eval %s failed: %s" % (" ".join(args), out.stderr))
    return json.loads(out.stdout)


def write_mask(path, mask):
    with open(path, "wb") as f:
        f.write(b"ANTMASK1" + struct.pack("<IIQQ", 1, 8, len(mask), 0) + bytes(mask))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--anetrain", required=True)
    ap.add_argument("--assets", required=True)
    ap.add_argument("--workdir", required=True)
    a = ap.parse_args()
    os.makedirs(a.workdir, exist_ok=True)
    model = os.path.join(a.assets, "llama2c", "stories260K.bin")
    tok_path = os.path.join(a.assets, "llama2c", "tok512.bin")
    tok = tok512.Tokenizer(tok_path)
    cfg, params = tm.load_llama2c(model)
    with gzip.open(os.path.join(a.assets, "corpora", "war-and-peace.txt.gz"), "rt", encoding="utf-8") as f:
        text = f.read(6000)
    # Multi-byte characters too, so bytes per token differ from pieces' lengths somewhere.
    text += "\nThe café served crème brûlée — “délicieux”, said Anna.\n"
    text_path = os.path.join(a.workdir, "text.txt")
    with open(text_path, "w", encoding="utf-8") as f:
        f.write(text)
    ids = tok.encode(text, bos=True)
    keys = ("perplexity", "perplexity_err", "bits_per_byte", "tokens", "bytes", "chunks")
    for ctx, stride in ((64, 0), (48, 0), (64, 16)):
        ref = perplexity(cfg, params, tok, ids, None, ctx, stride)
        ours = run(a.anetrain, model, "-z", tok_path, "--text", text_path, "--ctx", str(ctx), "--stride",
                   str(stride)) if stride else run(a.anetrain, model, "-z", tok_path, "--text", text_path,
                                                   "--ctx", str(ctx), "--batch", "5")
        check("text ctx %d stride %d: stream" % (ctx, stride), ours["stream_tokens"], len(ids), 0)
        for k in keys:
            check("text ctx %d stride %d: %s" % (ctx, stride, k), ours[k], ref[k],
                  0 if k in ("tokens", "bytes", "chunks") else REL)
    # A raw uint16 shard of the same ids with a loss mask beside it: a third of the targets left out.
    shard = os.path.join(a.workdir, "text_000.bin")
    np.array(ids, dtype="<u2").tofile(shard)
    counts = [0 if i % 3 == 0 else 1 for i in range(len(ids))]
    write_mask(os.path.join(a.workdir, "text_000.mask"), counts)
    ref = perplexity(cfg, params, tok, ids, counts, 64, 0)
    ours = run(a.anetrain, model, "-z", tok_path, "--data", shard, "--ctx", "64")
    for k in keys:
        check("masked shard ctx 64: %s" % k, ours[k], ref[k], 0 if k in ("tokens", "bytes", "chunks") else REL)

    ref_items = choices(cfg, params, tok, CHOICES)
    scores = os.path.join(a.workdir, "scores.jsonl")
    ours = run(a.anetrain, model, "-z", tok_path, "--choices", CHOICES, "--scores", scores)
    mine = [json.loads(line) for line in open(scores)]
    check("choices: items", len(mine), len(ref_items), 0)
    for i, (m, r) in enumerate(zip(mine, ref_items)):
        check("item %d: label" % i, m["label"], r["label"], 0)
        check("item %d: pred" % i, m["pred"], r["pred"], 0)
        check("item %d: pred_norm" % i, m["pred_norm"], r["pred_norm"], 0)
        check("item %d: chars" % i, m["chars"], r["chars"], 0)
        worst = max(abs(x - y) / abs(y) for x, y in zip(m["logprob"], r["logprob"]))
        check("item %d: logprob worst rel error" % i, worst <= 1e-5, True, 0)
    # The file's picks are no near-ties, so equal picks are a real check, not fp32 luck.
    gaps = [np.sort(v)[-1] - np.sort(v)[-2] for r in ref_items
            for v in (r["logprob"], r["logprob"] / np.array(r["chars"], dtype=float))]
    check("choices: closest pick margin > 1e-3", bool(min(gaps) > 1e-3), True, 0)
    acc = float(np.mean([r["pred"] == r["label"] for r in ref_items]))
    acc_norm = float(np.mean([r["pred_norm"] == r["label"] for r in ref_items]))
    check("choices: acc", ours["acc"], acc, 0)
    check("choices: acc_norm", ours["acc_norm"], acc_norm, 0)
    print("reference acc %.3f acc_norm %.3f" % (acc, acc_norm))
    if failures:
        sys.exit("FAIL: " + ", ".join(failures))
    print("PASS")


if __name__ == "__main__":
    main()
