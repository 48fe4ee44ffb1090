# The seed system's BLZT checkpoints (seed-system §5.1, version 4) and a float64 numpy forward of
# the architecture that version trained (§2.2): interleaved RoPE θ 1e4, RMSNorm eps 1e-5, both
# residual branches scaled by α = 1/√(2L), tied embedding, and the seed's GQA pairing (query head
# h reads kv head h mod KV). Checks `anetrain grad FILE` (loss, logits) against it, and that bad
# headers are refused with the byte offset.
#   /usr/bin/python3 tests/reference/blzt_reference.py --anetrain BIN --workdir DIR
import argparse
import os
import struct
import subprocess
import sys

import numpy as np

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402

MAGIC = 0x424C5A54


def layer_shapes(c):
    D, F, Q, KV = c["dim"], c["hidden"], c["heads"] * c["hd"], c["kv"] * c["hd"]
    # File order: Wq, Wk, Wv, Wo, W1, W2, W3, rms_att, rms_ffn.
    return [("wq", (Q, D)), ("wk", (KV, D)), ("wv", (KV, D)), ("wo", (D, Q)), ("w1", (F, D)),
            ("w2", (D, F)), ("w3", (F, D)), ("rms_att", (D,)), ("rms_ffn", (D,))]


def random_model(c, rng):
    layers = []
    for _ in range(c["layers"]):
        t = {}
        for name, shape in layer_shapes(c):
            if name.startswith("rms"):
                t[name] = 1.0 + 0.1 * rng.standard_normal(shape)
            else:
                t[name] = rng.uniform(-1, 1, shape) / np.sqrt(shape[1])
        layers.append(t)
    emb = 0.5 * rng.standard_normal((c["vocab"], c["dim"]))
    final = 1.0 + 0.1 * rng.standard_normal(c["dim"])
    return {"layers": layers, "emb": emb, "final": final}


def header(c, version, step=7, adam_t=3):
    h = struct.pack("<iiiiiiiiii", MAGIC, version, step, 100, c["layers"], c["vocab"], c["dim"], c["hidden"],
                    c["heads"], c["seq"])
    h += struct.pack("<ff", 3e-4, 2.5) + struct.pack("<ddd", 0.0, 1234.5, 2345.5)
    h += struct.pack("<iii", step, 0, adam_t)
    h += struct.pack("<iii", c["kv"], c["hd"], c["heads"] * c["hd"]) if version == 4 else b"\0" * 12
    assert len(h) == 96
    return h


def write_blzt(path, c, model, rng, version=4):
    f32 = lambda a: np.ascontiguousarray(a, dtype="<f4").tobytes()  # noqa: E731
    with open(path, "wb") as f:
        f.write(header(c, version))
        for t in model["layers"]:
            for name, _ in layer_shapes(c):
                f.write(f32(t[name]))
            for name, shape in layer_shapes(c):  # Adam m, v (values only matter to import-seed)
                f.write(f32(rng.standard_normal(shape)))
                f.write(f32(np.abs(rng.standard_normal(shape))))
        for a in (model["final"], model["emb"]):
            f.write(f32(a))
            f.write(f32(rng.standard_normal(a.shape)))
            f.write(f32(np.abs(rng.standard_normal(a.shape))))


def rmsnorm(x, w, eps=1e-5):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def rope_interleaved(x, hd, theta=10000.0):
    T = x.shape[0]
    pairs = hd // 2
    freq = theta ** (-2.0 * np.arange(pairs) / hd)
    ang = np.arange(T)[:, None] * freq[None, :]
    cos, sin = np.cos(ang), np.sin(ang)
    xr = x.reshape(T, -1, pairs, 2)
    a, b = xr[..., 0], xr[..., 1]
    out = np.stack([a * cos[:, None, :] - b * sin[:, None, :], b * cos[:, None, :] + a * sin[:, None, :]], -1)
    return out.reshape(x.shape)


def seed_forward(c, model, tokens, version=4):
    """Float64 logits of the seed's pipeline for one sequence: version 4 (dynamic: RoPE, α), or
    version 2 (static: no RoPE, plain residuals)."""
    H, KV, hd = c["heads"], c["kv"], c["hd"]
    alpha = 1.0 / np.sqrt(2.0 * c["layers"]) if version == 4 else 1.0
    rope = (lambda x, hd: rope_interleaved(x, hd)) if version == 4 else (lambda x, hd: x)
    x = model["emb"][tokens].astype(np.float64)
    T = len(tokens)
    mask = np.triu(np.full((T, T), -np.inf), 1)
    for t in model["layers"]:
        xn = rmsnorm(x, t["rms_att"])
        q = rope(xn @ t["wq"].T, hd)
        k = rope(xn @ t["wk"].T, hd)
        v = xn @ t["wv"].T
        heads = []
        for h in range(H):
            g = h % KV  # the seed's tiling: whole copies of the KV block
            s = q[:, h * hd:(h + 1) * hd] @ k[:, g * hd:(g + 1) * hd].T / np.sqrt(hd) + mask
            p = np.exp(s - s.max(-1, keepdims=True))
            p /= p.sum(-1, keepdims=True)
            heads.append(p @ v[:, g * hd:(g + 1) * hd])
        x = x + alpha * (np.concatenate(heads, 1) @ t["wo"].T)
        xn = rmsnorm(x, t["rms_ffn"])
        h1, h3 = xn @ t["w1"].T, xn @ t["w3"].T
        x = x + alpha * ((h1 / (1 + np.exp(-h1)) * h3) @ t["w2"].T)
    return rmsnorm(x, model["final"]) @ model["emb"].T


def cross_entropy(logits, targets):
    m = logits.max(-1, keepdims=True)
    lse = (m + np.log(np.exp(logits - m).sum(-1, keepdims=True)))[:, 0]
    return float(np.mean(lse - logits[np.arange(len(targets)), targets]))


def run(cmd):
    return subprocess.run(cmd, capture_output=True, text=True)


def check_parity(args, name, c, rng, exports=(), version=4):
    model = random_model(c, rng)
    path = os.path.join(args.workdir, name + ".bin")
    write_blzt(path, c, model, rng, version)
    ids = rng.integers(0, c["vocab"], c["seq"] + 1)
    ref_logits = seed_forward(c, model, ids[:-1], version)
    ok = compare_grad(args, name, path, c, ids, ref_logits)
    # Exports fold α into Wo and W_down and permute the query heads: standard readers (and ours,
    # reading them back) compute the seed's model.
    for to in exports:
        out = os.path.join(args.workdir, name + "." + to)
        p = run([args.anetrain, "convert", path, out, "--to", to])
        if p.returncode != 0 or "folding the residual scale" not in p.stderr:
            print("FAIL %s: convert --to %s exited %d\n%s" % (name, to, p.returncode, p.stderr))
            ok = False
            continue
        if to == "hf":
            cfg = open(os.path.join(out, "config.json")).read()
            if "residual_scale" in cfg:
                print("FAIL %s: the HF config still carries a residual scale: %s" % (name, cfg))
                ok = False
        ok &= compare_grad(args, name + " as " + to, out, c, ids, ref_logits)
    return ok


def compare_grad(args, name, path, c, ids, ref_logits):
    tok = os.path.join(args.workdir, "tokens.txt")
    with open(tok, "w") as f:
        f.write(" ".join(str(int(i)) for i in ids) + "\n")
    out = os.path.join(args.workdir, "grad.safetensors")
    p = run([args.anetrain, "grad", path, "--tokens", tok, "--batch", "1", "--seq", str(c["seq"]), "-o", out])
    if p.returncode != 0:
        print("FAIL %s: grad exited %d\n%s" % (name, p.returncode, p.stderr))
        return False
    got = st.load(out)
    ref_loss = cross_entropy(ref_logits, ids[1:])
    err = float(np.max(np.abs(got["logits"].reshape(ref_logits.shape) - ref_logits))) / float(np.max(np.abs(ref_logits)))
    lerr = abs(float(got["loss"].reshape(())) - ref_loss) / abs(ref_loss)
    ok = err <= 1e-4 and lerr <= 1e-4
    print("%s %s: logits max|err|/max|ref| %.2e, loss %.8f vs %.8f (rel %.2e)"
          % ("ok" if ok else "FAIL", name, err, float(got["loss"].reshape(())), ref_loss, lerr))
    return ok


def file_bytes(c):
    """96 + the three fp32 copies (weights, m, v) of the model, as §5.1 lays them out."""
    per_layer = sum(int(np.prod(s)) for _, s in layer_shapes(c))
    return 96 + 12 * (c["layers"] * per_layer + c["dim"] + c["vocab"] * c["dim"])


def stories260k_as_blzt(assets, path, rng):
    """llama2.c's stories260K (GQA 8:4, interleaved RoPE) written as the seed would hold the same
    model: query heads in the seed's pairing (our head h is the seed's head σ(h)), Wo and W2
    divided by α so that α·branch gives back the file's branch."""
    raw = open(os.path.join(assets, "llama2c", "stories260K.bin"), "rb").read()
    D, F, L, H, KV, V, S = struct.unpack_from("<7i", raw, 0)
    hd = D // H
    c = dict(layers=L, dim=D, hidden=F, heads=H, kv=KV, hd=hd, vocab=abs(V), seq=S)
    a = np.frombuffer(raw, dtype="<f4", offset=28).astype(np.float64)
    pos = 0

    def take(*shape):
        nonlocal pos
        n = int(np.prod(shape))
        out = a[pos:pos + n].reshape(shape)
        pos += n
        return out
    emb = take(c["vocab"], D)
    stacked = {k: take(L, *shape) for k, shape in [("rms_att", (D,)), ("wq", (H * hd, D)), ("wk", (KV * hd, D)),
                                                   ("wv", (KV * hd, D)), ("wo", (D, H * hd)), ("rms_ffn", (D,)),
                                                   ("w1", (F, D)), ("w2", (D, F)), ("w3", (F, D))]}
    final = take(D)
    alpha = 1.0 / np.sqrt(2.0 * L)
    G = H // KV
    sigma = [(h % G) * KV + h // G for h in range(H)]
    layers = []
    for i in range(L):
        t = {k: v[i].copy() for k, v in stacked.items()}
        wq, wo = t["wq"].copy(), t["wo"].copy()
        for h in range(H):
            t["wq"][sigma[h] * hd:(sigma[h] + 1) * hd] = wq[h * hd:(h + 1) * hd]
            t["wo"][:, sigma[h] * hd:(sigma[h] + 1) * hd] = wo[:, h * hd:(h + 1) * hd]
        t["wo"] /= alpha
        t["w2"] /= alpha
        layers.append(t)
    write_blzt(path, c, {"layers": layers, "emb": emb, "final": final}, rng)


def check_greedy_text(args, rng):
    """stories260K held as a seed run: 64 greedy tokens from the BLZT file, from its GGUF export
    (α folded back, heads in the standard order, tok512 as its vocabulary) and from llama2.c's own
    file are the same story; with LLAMA_SIMPLE set, llama.cpp's on the GGUF too."""
    path = os.path.join(args.workdir, "stories260k_v4.bin")
    stories260k_as_blzt(args.assets, path, rng)
    tok = os.path.join(args.assets, "llama2c", "tok512.bin")
    gguf = os.path.join(args.workdir, "stories260k_v4.gguf")
    p = run([args.anetrain, "convert", path, gguf, "-z", tok])
    if p.returncode != 0:
        print("FAIL greedy text: convert exited %d\n%s" % (p.returncode, p.stderr))
        return False
    gen = lambda m, z: run([args.anetrain, "generate", m] + z + ["-i", "Once upon a time", "-n", "64", "-t", "0"])  # noqa: E731
    texts = {"BLZT": gen(path, ["-z", tok]), "its GGUF": gen(gguf, []),
             "stories260K.bin": gen(os.path.join(args.assets, "llama2c", "stories260K.bin"), ["-z", tok])}
    want = texts["stories260K.bin"].stdout
    ok = len(want) > 100
    for name, p in texts.items():
        same = p.returncode == 0 and p.stdout == want
        print("%s greedy text from %s: %r" % ("ok" if same else "FAIL", name, p.stdout[:100]))
        if not same:
            print(p.stderr)
        ok &= same
    simple = os.environ.get("LLAMA_SIMPLE")
    if simple and os.access(simple, os.X_OK):
        q = run([simple, "-m", gguf, "-n", "64", "Once upon a time"])
        theirs = q.stdout[4:] if q.stdout.startswith("<s> ") else q.stdout
        same = theirs.rstrip() == want.rstrip()
        print("%s llama.cpp's llama-simple on the GGUF: %r" % ("ok" if same else "FAIL", theirs[:100]))
        ok &= same
    return ok


def expect_refusal(args, name, data, needle, size=None):
    path = os.path.join(args.workdir, name + ".bin")
    with open(path, "wb") as f:
        f.write(data)
        if size:
            f.truncate(size)  # the right length (sparse), so only the field under test is wrong
    p = run([args.anetrain, "info", path])
    ok = p.returncode != 0 and needle in p.stderr and path in p.stderr
    print("%s refusal %s: exit %d: %s" % ("ok" if ok else "FAIL", name, p.returncode, p.stderr.strip()[:300]))
    return ok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--anetrain", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--assets", default=None, help="../shared/assets: tok512.bin for the greedy-text check")
    a = ap.parse_args()
    os.makedirs(a.workdir, exist_ok=True)
    rng = np.random.default_rng(20261206)
    ok = True
    # GQA 2:1 with head_dim × heads ≠ dim (so Q_DIM and DIM cannot be confused), and MHA.
    gqa = dict(layers=2, dim=40, hidden=72, heads=4, kv=2, hd=12, vocab=53, seq=14)
    mha = dict(layers=3, dim=32, hidden=48, heads=4, kv=4, hd=8, vocab=37, seq=11)
    ok &= check_parity(a, "v4_gqa", gqa, rng, exports=("gguf", "hf"))
    ok &= check_parity(a, "v4_mha", mha, rng, exports=("gguf", "llama2c-v1"))  # α = 1/√6: folding rounds
    gqa4 = dict(gqa, heads=8, kv=2, hd=6)  # ratio 4: the permutation is not its own inverse
    ok &= check_parity(a, "v4_gqa4", gqa4, rng, exports=("gguf",))
    # Version 2 (the static pipelines): MHA, no RoPE, plain residuals. No GGUF/HF/llama2.c reader
    # computes a model without RoPE, so its exports are refused with the reason.
    ok &= check_parity(a, "v2_static", mha, rng, version=2)
    p = run([a.anetrain, "convert", os.path.join(a.workdir, "v2_static.bin"), os.path.join(a.workdir, "v2.gguf")])
    refused = p.returncode != 0 and "no RoPE" in p.stderr and not os.path.exists(os.path.join(a.workdir, "v2.gguf"))
    print("%s v2 to GGUF refused: %s" % ("ok" if refused else "FAIL", p.stderr.strip()[:200]))
    ok &= refused
    if a.assets:
        ok &= check_greedy_text(a, rng)
    # Refusals, each naming the file and the byte.
    good = header(gqa, 4)
    ok &= expect_refusal(a, "truncated", good + b"\0" * 1000, "truncated")
    ok &= expect_refusal(a, "bad_version", good[:4] + struct.pack("<i", 5) + good[8:], "at byte 4")
    ok &= expect_refusal(a, "kv_not_dividing", good[:84] + struct.pack("<i", 3) + good[88:], "at byte 84")
    ok &= expect_refusal(a, "v3_ambiguous", header(mha, 3), "does not say which", file_bytes(mha))
    ok &= expect_refusal(a, "short_header", good[:50], "header")
    # A header claiming more than 2^64 bytes (the fuzzer's find): refused, no overflow.
    huge = dict(layers=1 << 30, dim=1 << 30, hidden=1 << 30, heads=2, kv=2, hd=1 << 29, vocab=1 << 30, seq=8)
    ok &= expect_refusal(a, "claims_2e21_bytes", header(huge, 4) + b"\0" * 64, "truncated")
    # A Stories110M-shaped version 4 file is exactly §5.1's 1,314,358,368 bytes: a sparse file of
    # that size passes the size check (its config is then reported), one byte less does not.
    s110 = dict(layers=12, dim=768, hidden=2048, heads=12, kv=12, hd=64, vocab=32000, seq=256)
    sparse = os.path.join(a.workdir, "stories110m_v4.bin")
    for size, want_ok in ((1314358368, True), (1314358367, False)):
        with open(sparse, "wb") as f:
            f.write(header(s110, 4))
            f.truncate(size)
        p = run([a.anetrain, "info", sparse, "--json"])
        good_size = p.returncode == 0 and '"n_layers": 12' in p.stdout.replace('":12', '": 12')
        this_ok = good_size if want_ok else (p.returncode != 0 and "truncated" in p.stderr)
        print("%s Stories110M-shaped v4 header with %d bytes: exit %d %s" % ("ok" if this_ok else "FAIL", size,
                                                                         p.returncode, p.stderr.strip()[:200]))
        ok &= this_ok
    os.remove(sparse)
    print("PASS" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
