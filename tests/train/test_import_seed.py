# `anetrain import-seed`: a seed run (BLZT version 4, written here from seed-system §5.1) becomes a
# run folder, and `train --resume` continues it with the moments, Adam t and learning-rate position
# the file held: the first update equals a float64 AdamW update (the seed's rule, §3.1) from those
# moments and the gradient `anetrain grad` gives for the same window. Also: the run's schedule is
# the seed's (warmup and cosine in micro-steps), and bad imports are refused with nothing written.
#   /usr/bin/python3 tests/train/test_import_seed.py --anetrain BIN --workdir DIR
import argparse
import json
import os
import shutil
import struct
import subprocess
import sys

import numpy as np

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "reference"))
import blzt_reference as br  # noqa: E402
import st  # noqa: E402

CFG = dict(layers=2, dim=40, hidden=72, heads=4, kv=2, hd=12, vocab=53, seq=14)
STEP, TOTAL, ADAM_T, MAX_LR = 20, 400, 2, 5e-3


def write_seed_file(path, rng):
    """The BLZT file, with the model and moments kept for the reference (in the seed's layout)."""
    model = br.random_model(CFG, rng)
    moments = []  # per tensor in file order: (name, m, v)
    f32 = lambda a: np.ascontiguousarray(a, dtype="<f4").tobytes()  # noqa: E731
    hdr = bytearray(br.header(CFG, 4, step=STEP, adam_t=ADAM_T))
    struct.pack_into("<i", hdr, 12, TOTAL)
    with open(path, "wb") as f:
        f.write(bytes(hdr))
        for i, t in enumerate(model["layers"]):
            for name, _ in br.layer_shapes(CFG):
                f.write(f32(t[name]))
            for name, shape in br.layer_shapes(CFG):
                m, v = 1e-3 * rng.standard_normal(shape), 1e-6 * np.abs(rng.standard_normal(shape))
                f.write(f32(m) + f32(v))
                moments.append(("%d.%s" % (i, name), m.astype(np.float32), v.astype(np.float32)))
        for name, a in (("final", model["final"]), ("emb", model["emb"])):
            m, v = 1e-3 * rng.standard_normal(a.shape), 1e-6 * np.abs(rng.standard_normal(a.shape))
            f.write(f32(a) + f32(m) + f32(v))
            moments.append((name, m.astype(np.float32), v.astype(np.float32)))
    return model, {k: (m, v) for k, m, v in moments}


HF = {"wq": "self_attn.q_proj", "wk": "self_attn.k_proj", "wv": "self_attn.v_proj", "wo": "self_attn.o_proj",
      "w1": "mlp.gate_proj", "w2": "mlp.down_proj", "w3": "mlp.up_proj", "rms_att": "input_layernorm",
      "rms_ffn": "post_attention_layernorm"}


def to_standard_heads(name, a):
    """The seed's query-head order → the standard one (what anetrain holds): head h is seed head σ(h)."""
    H, KV, hd = CFG["heads"], CFG["kv"], CFG["hd"]
    G = H // KV
    sigma = [(h % G) * KV + h // G for h in range(H)]
    if name == "wq":
        return np.concatenate([a[s * hd:(s + 1) * hd] for s in sigma], 0)
    if name == "wo":
        return np.concatenate([a[:, s * hd:(s + 1) * hd] for s in sigma], 1)
    return a


def hf_tensors(model, moments):
    """{HF name: (weight, m, v)} in anetrain's layout (standard head order, float32 as stored)."""
    out = {}
    for i, t in enumerate(model["layers"]):
        for name, _ in br.layer_shapes(CFG):
            m, v = moments["%d.%s" % (i, name)]
            key = "model.layers.%d.%s.weight" % (i, HF[name])
            out[key] = tuple(to_standard_heads(name, x).astype(np.float32) for x in (t[name], m, v))
    out["model.norm.weight"] = (model["final"].astype(np.float32),) + moments["final"]
    out["model.embed_tokens.weight"] = (model["emb"].astype(np.float32),) + moments["emb"]
    return out


def from_hf_rope_rows(a):
    """A Hugging Face folder holds Wq/Wk in the half-split RoPE layout: in each head, rows 0..hd/2-1
    are the interleaved layout's even rows and the rest its odd rows. Back to interleaved."""
    hd = CFG["hd"]
    heads = a.reshape(-1, hd, a.shape[1])
    out = np.empty_like(heads)
    out[:, 0::2], out[:, 1::2] = heads[:, :hd // 2], heads[:, hd // 2:]
    return out.reshape(a.shape)


def seed_lr(micro):
    """§3.1 step 6 at micro-step index `micro`, min lr 0.1·max, warmup 100, cosine to TOTAL."""
    if micro < 100:
        return MAX_LR * (micro + 1) / 100
    p = (micro - 100) / (TOTAL - 100)
    return 0.1 * MAX_LR + 0.5 * (1 + np.cos(np.pi * p)) * 0.9 * MAX_LR


def run(cmd, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if p.returncode != 0:
        print("FAILED: %s\n%s%s" % (" ".join(cmd), p.stdout, p.stderr))
    return p


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--anetrain", required=True)
    ap.add_argument("--workdir", required=True)
    a = ap.parse_args()
    shutil.rmtree(a.workdir, ignore_errors=True)
    os.makedirs(a.workdir)
    rng = np.random.default_rng(42)
    seed_file = os.path.join(a.workdir, "ane_dyn_ckpt.bin")
    model, moments = write_seed_file(seed_file, rng)
    # One window only (T+1 tokens), so all ten micro-steps of an update see the same tokens.
    ids = rng.integers(0, CFG["vocab"], CFG["seq"] + 1).astype("<u2")
    shard = os.path.join(a.workdir, "data00.bin")
    ids.tofile(shard)
    ok = True

    # Refusals leave nothing behind.
    for args, needle in ((["--out", os.path.join(a.workdir, "r0")], "--data"),):
        p = subprocess.run([a.anetrain, "import-seed", seed_file] + args, capture_output=True, text=True)
        bad = p.returncode != 0 and needle in p.stderr and not os.path.exists(args[1])
        print("%s refusal without %s: %s" % ("ok" if bad else "FAIL", needle, p.stderr.strip()[:200]))
        ok &= bad

    rundir = os.path.join(a.workdir, "run")
    p = run([a.anetrain, "import-seed", seed_file, "--out", rundir, "--data", shard, "--lr", str(MAX_LR)])
    if p.returncode != 0:
        return 1
    print(p.stdout.strip())
    settings = json.load(open(os.path.join(rundir, "run.json")))
    want = dict(accum=10, batch=1, seq=CFG["seq"], steps=TOTAL // 10, warmup=100, lr_micro_steps=10, beta1=0.9,
                beta2=0.95, wd=0.1, clip=1.0)
    for k, v in want.items():
        if settings.get(k) != v:
            print("FAIL run.json %s = %r, want %r" % (k, settings.get(k), v))
            ok = False
    if abs(settings.get("min_lr", 0) - 0.1 * MAX_LR) > 1e-12:
        print("FAIL run.json min_lr %r" % settings.get("min_lr"))
        ok = False

    # The gradient anetrain computes for that window, on the imported weights.
    tok = os.path.join(a.workdir, "window.txt")
    with open(tok, "w") as f:
        f.write(" ".join(str(int(i)) for i in ids) + "\n")
    grads_path = os.path.join(a.workdir, "grad.safetensors")
    if run([a.anetrain, "grad", seed_file, "--tokens", tok, "--batch", "1", "--seq", str(CFG["seq"]), "-o",
            grads_path]).returncode != 0:
        return 1
    grads = st.load(grads_path)
    # One more update, then the weights it wrote.
    p = run([a.anetrain, "train", "--resume", rundir, "--steps", str(STEP // 10 + 1), "--threads", "1"])
    if p.returncode != 0:
        return 1
    out_hf = os.path.join(a.workdir, "after_hf")
    step_dir = os.path.join(rundir, "ckpt", "step-%08d" % (STEP // 10 + 1))
    if run([a.anetrain, "convert", step_dir, out_hf, "--to", "hf"]).returncode != 0:
        return 1
    after = st.load(os.path.join(out_hf, "model.safetensors"))

    # Reference: §3.1 steps 2-7 in float64 (clip by the global norm, lr at the update's last
    # micro-step, AdamW with bias correction at t = adam_t + 1, decay on matrices only).
    tensors = hf_tensors(model, moments)
    g = {k: grads[k].astype(np.float64) for k in tensors}
    norm = np.sqrt(sum(float(np.sum(x * x)) for x in g.values()))
    scale = min(1.0, 1.0 / norm)
    lr = seed_lr(STEP + 9)
    t = ADAM_T + 1
    alpha = 1.0 / np.sqrt(2 * CFG["layers"])
    worst = 0.0
    for k, (w, m, v) in tensors.items():
        gk = g[k] * scale
        m1 = 0.9 * m + 0.1 * gk
        v1 = 0.95 * v + 0.05 * gk * gk
        decay = 0.1 if w.ndim == 2 else 0.0
        w1 = w.astype(np.float64) * (1 - lr * decay) - lr * (m1 / (1 - 0.9 ** t)) / (np.sqrt(v1 / (1 - 0.95 ** t)) + 1e-8)
        if "o_proj" in k or "down_proj" in k:
            w1 = w1 * alpha  # the HF export folds the residual scale into these
            w = w * alpha
        got = after[k].astype(np.float64)
        if "q_proj" in k or "k_proj" in k:
            got = from_hf_rope_rows(got)
        delta_ref, delta = w1 - w, got - w
        err = float(np.max(np.abs(delta - delta_ref))) / float(np.max(np.abs(delta_ref)))
        worst = max(worst, err)
    # Δ is read through fp32 weights: a gain near 1 moved by ~1e-3 carries one ulp (6e-8) of
    # rounding, 6e-5 of its step; everything else agrees to ~2e-6.
    good = worst <= 1e-4
    print("%s first update after import: max|Δ − Δref|/max|Δref| = %.2e over %d tensors (lr %.6g, norm %.4f, t %d)"
          % ("ok" if good else "FAIL", worst, len(tensors), lr, norm, t))
    ok &= good
    ok &= check_static_run(a, rng)
    print("PASS" if ok else "FAILED")
    return 0 if ok else 1


def check_static_run(a, rng):
    """A version 2 file (the static pipelines, §3.2): Adam β2 0.999 at the header's constant rate,
    no weight decay, no clipping; it resumes and trains at that rate. A version 3 file needs the
    commit that wrote it, and is refused without it, naming the choices."""
    cfg = dict(layers=2, dim=32, hidden=48, heads=4, kv=4, hd=8, vocab=37, seq=11)
    path = os.path.join(a.workdir, "ane_stories110M_ckpt.bin")
    model = br.random_model(cfg, rng)
    br.write_blzt(path, cfg, model, rng, version=2)
    with open(path, "r+b") as f:  # at micro-step 30 of 1000: the static pipeline saved every 10
        f.seek(8)
        f.write(struct.pack("<ii", 30, 1000))
    shard = os.path.join(a.workdir, "static.bin")
    rng.integers(0, cfg["vocab"], 200).astype("<u2").tofile(shard)
    rundir = os.path.join(a.workdir, "static_run")
    if run([a.anetrain, "import-seed", path, "--out", rundir, "--data", shard]).returncode != 0:
        return False
    s = json.load(open(os.path.join(rundir, "run.json")))
    lr = float(np.float32(3e-4))  # the header's rate, as the file holds it
    want = dict(beta2=0.999, wd=0.0, clip=0.0, warmup=0, accum=10, seq=11)
    ok = all(s.get(k) == v for k, v in want.items()) and s.get("lr") == lr and s.get("min_lr") == lr
    if run([a.anetrain, "train", "--resume", rundir, "--steps", "4", "--threads", "1"]).returncode != 0:
        return False
    steps = [json.loads(l) for l in open(os.path.join(rundir, "telemetry.jsonl")) if '"event":"step"' in l]
    ok &= len(steps) == 1 and abs(steps[0]["lr"] - lr) < 1e-15
    print("%s version 2 import: run.json %s, trained at lr %s" % ("ok" if ok else "FAIL",
                                                                 {k: s.get(k) for k in list(want) + ["lr"]},
                                                                 [x["lr"] for x in steps]))
    v3 = os.path.join(a.workdir, "v3.bin")
    with open(v3, "wb") as f:
        f.write(br.header(cfg, 3))
        f.truncate(br.file_bytes(cfg))
    p = subprocess.run([a.anetrain, "import-seed", v3, "--out", os.path.join(a.workdir, "v3run"), "--data", shard],
                       capture_output=True, text=True)
    refused = p.returncode != 0 and "cb474e1" in p.stderr and not os.path.exists(os.path.join(a.workdir, "v3run"))
    print("%s version 3 without --v3-writer refused: %s" % ("ok" if refused else "FAIL", p.stderr.strip()[:160]))
    return ok and refused


if __name__ == "__main__":
    sys.exit(main())
