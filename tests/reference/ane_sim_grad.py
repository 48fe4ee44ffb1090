# Whole-model gradients of the ane-sim backend (every block stage as fp16 MIL programs) against
# the cpu backend (fp32, itself proven equal to float64 PyTorch by parity.py), through
# `anetrain grad`:
#   - stories260K.bin (llama2.c's trained weights) on real text encoded with tok512.bin;
#   - a tiny Qwen3 (GQA 4/2, head_dim 24 ≠ D/H, QK-norm, θ 1e6, tied embeddings), random weights.
# Bounds: loss within 1e-2 relative; every parameter gradient with cosine similarity
# ≥ 0.999 and ‖g_ane − g_cpu‖ ≤ 2% of ‖g_cpu‖. fp16 storage puts ~1e-3 relative noise into each
# stage's output; over a few layers that stays well inside both bounds, while a wrong head
# pairing, a missing transpose or a dropped gain breaks them by far.
#   /usr/bin/python3 tests/reference/ane_sim_grad.py --anetrain BIN --assets DIR --workdir DIR
import argparse
import gzip
import os
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import parity  # noqa: E402
import st  # noqa: E402
import tok512  # noqa: E402
import torch_model as tm  # noqa: E402


def grads(args, model, tokens, batch, backend, tag):
    tok_path = os.path.join(args.workdir, tag + "_tokens.txt")
    out = os.path.join(args.workdir, "%s_%s.safetensors" % (tag, backend))
    parity.write_tokens(tok_path, tokens)
    cmd = [args.anetrain, "grad", model, "--tokens", tok_path, "--batch", str(batch), "--seq",
           str(tokens.shape[1] - 1), "--backend", backend, "-o", out]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit("FAIL %s: %s\n%s" % (" ".join(cmd), r.returncode, r.stderr))
    return st.load(out)


def compare(tag, cpu, ane):
    failures = 0
    loss_rel = abs(float(ane["loss"].ravel()[0]) - float(cpu["loss"].ravel()[0])) / abs(float(cpu["loss"].ravel()[0]))
    ok = loss_rel <= 1e-2
    failures += not ok
    print("%s %-8s loss %.6f vs cpu %.6f (relative %.2e, bound 1e-2)" % (
        "ok  " if ok else "FAIL", tag, float(ane["loss"].ravel()[0]), float(cpu["loss"].ravel()[0]), loss_rel))
    worst_cos, worst_rel = 1.0, 0.0
    for name in sorted(cpu):
        if name in ("loss", "logits"):
            continue
        g, a = cpu[name].ravel().astype(np.float64), ane[name].ravel().astype(np.float64)
        norm = np.linalg.norm(g)
        cos = float(g @ a / (norm * np.linalg.norm(a))) if norm > 0 else 1.0
        rel = float(np.linalg.norm(a - g) / norm) if norm > 0 else float(np.linalg.norm(a))
        worst_cos, worst_rel = min(worst_cos, cos), max(worst_rel, rel)
        if cos < 0.999 or rel > 0.02:
            failures += 1
            print("FAIL %-8s %s: cosine %.6f, relative norm error %.3e" % (tag, name, cos, rel))
    print("%s %-8s %d gradients: worst cosine %.6f (bound 0.999), worst relative norm error %.2e (bound 2e-2)" % (
        "ok  " if failures == 0 else "FAIL", tag, len(cpu) - 2, worst_cos, worst_rel))
    return failures


def war_and_peace_rows(assets):
    """stories260K's input for these checks: 2 sequences of 64 tokens of War and Peace (tok512)."""
    tok = tok512.Tokenizer(os.path.join(assets, "llama2c", "tok512.bin"))
    with gzip.open(os.path.join(assets, "corpora", "war-and-peace.txt.gz"), "rt", encoding="utf-8") as f:
        text = f.read(200000)
    ids = tok.encode(" ".join(text[50000:60000].split()))
    return np.array([ids[0:65], ids[65:130]])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--anetrain", required=True)
    ap.add_argument("--assets", required=True)
    ap.add_argument("--workdir", required=True)
    args = ap.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    failures = 0

    tokens = war_and_peace_rows(args.assets)
    model = os.path.join(args.assets, "llama2c", "stories260K.bin")
    failures += compare("stories260k", grads(args, model, tokens, 2, "cpu", "s260k"),
                        grads(args, model, tokens, 2, "ane-sim", "s260k"))

    # A tiny true Qwen3: GQA, QK-norm, half-split RoPE at θ 1e6, tied embeddings.
    cfg = parity.qwen3_cfg()
    qmodel = os.path.join(args.workdir, "qwen3")
    tm.write_hf(qmodel, cfg, tm.random_params(cfg, 4321))
    qtokens = np.random.default_rng(4322).integers(0, cfg["vocab_size"], size=(2, 33))
    failures += compare("qwen3", grads(args, qmodel, qtokens, 2, "cpu", "qwen3"),
                        grads(args, qmodel, qtokens, 2, "ane-sim", "qwen3"))
    print("%d passed, %d failed" % (2 if failures == 0 else 0, 0 if failures == 0 else 2))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
