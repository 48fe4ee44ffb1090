# Independent float64 reference test for the maderix/ANE seed MIL programs in
# shared/reference/mil (tiny-gqa, tiny-mha: 10 dynamic kernels each; static-tiny-mha: 6 static).
# For each kernel: random inputs packed exactly as NAME.json's `packing` text says, rounded to fp16,
#   anetrain mil run NAME.mil --weights CFG_DIR --input x=IN.npy -o OUT.npy
# and every documented output block compared with the float64 math of mil_seed_math.py computed
# from the same fp16 values. The reference is written from the documented math, never from the MIL.
# Run: /usr/bin/python3 tests/reference/mil_seed_kernels.py --anetrain BIN --workdir DIR
#        [--mil-root shared/reference/mil] [--seed N]
#      /usr/bin/python3 tests/reference/mil_seed_kernels.py --selfcheck [--mil-root DIR]
import argparse
import json
import os
import subprocess
import sys
import zlib

import numpy as np

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import mil_seed_math as M  # noqa: E402

DYNAMIC = ["sdpaFwd", "woFwd", "ffnFused", "ffnBwdW2t", "ffnBwdW13t", "wotBwd", "sdpaBwd1",
           "sdpaBwd2", "qBwd", "kvBwd"]
STATIC = ["fwdAttn", "fwdFFN", "ffnBwd", "sdpaBwd1", "sdpaBwd2", "qkvBwd"]
CONFIGS = [("tiny-gqa", DYNAMIC), ("tiny-mha", DYNAMIC), ("static-tiny-mha", STATIC)]

# Tolerances. A block passes when max|out - ref| <= c * u * max|ref|, u = 2^-11 (fp16 unit
# roundoff). Error model: every fp16 store of an intermediate adds <= u relative to it, and for the
# well-conditioned ops here (random data, |scores| <~ 5) reaches the block with a gain <~ 2, so
# ~2u per store. A K-term dot product (K <= 128) costs 1 store with wide accumulation, but up to
# ~sqrt(K)/2 u typical, 9u measured, if the simulator keeps its partial sums in fp16 too; the
# bounds admit both (--selfcheck emulates both: per-op fp16 must use <= 1/2 of every bound,
# fp16 accumulation <= 1). Classes, by the longest chain of stores to the block:
EXACT = 0   # passthrough of fp16 input values: must be bit exact
MM = 12     # one dot product + its store: 2u + 9u (fp16 partial sums)
ELEM = 16   # one dot product + <= 3 elementwise stores (RoPE, RMSNorm, gate), or W1^T.a + W3^T.b
DEEP = 24   # two dot products in series around a softmax / SwiGLU / dS chain; softmax counts as
            # ~3 stores because exp turns the absolute score error (u*|s|, |s| <~ 5) relative
COND = 48   # static o_out / ffn_out: the fixed static weights are rank 2 (0.05 sin(a_o + 0.37 i)),
            # W.x cancels by ~2-3x relative to |W|.|x|, so the same absolute error is 2x larger
# A real bug (wrong GQA pairing, missing transpose, wrong scale, dropped mask or res_alpha,
# half-split RoPE) moves a block by 10-100% of its scale: >= 10x over even the COND bound
# (48u = 2.3%); --selfcheck shows each such sabotage rejected by > 10x.


# ---------------------------------------------------------------- context and packing
def load_context(mil_root, cfg_name):
    d = os.path.join(mil_root, cfg_name)
    k0 = json.load(open(os.path.join(d, ("sdpaFwd" if cfg_name != "static-tiny-mha" else "fwdAttn")
                                     + ".json")))
    C = dict(k0["config"])
    C.update(name=cfg_name, dir=d, static=cfg_name.startswith("static"), pairing="mod",
             rope="interleaved", eps=1e-5)
    T, HD, D = C["SEQ"], C["HD"], C["DIM"]
    C["scv"] = M.fmt_const(M.inv_sqrt(HD), "%f")              # 1/sqrt(HD), printed with %f
    C["res_alpha"] = M.fmt_const(M.inv_sqrt(2 * C["NLAYERS"]), "%g")
    C["invd"] = M.fmt_const(1.0 / D, "%f")
    C["mask"] = M.load_blob(d, "mask.bin", (T, T))
    if C["static"]:
        H = C["HIDDEN"]
        for n, shp in [("wq", (D, D)), ("wk", (D, D)), ("wv", (D, D)), ("wo", (D, D)),
                       ("w1", (H, D)), ("w3", (H, D)), ("w2", (D, H))]:
            C[n] = M.load_blob(d, n + ".bin", shp)
            C[n + "t"] = M.load_blob(d, n + "t.bin", shp[::-1])
        C["rms1"] = M.load_blob(d, "rms1.bin", (D,))
        C["rms2"] = M.load_blob(d, "rms2.bin", (D,))
    else:
        C["cos"] = M.load_blob(d, "rope_cos.bin", (T, HD))
        C["sin"] = M.load_blob(d, "rope_sin.bin", (T, HD))
    return C


class Packer:
    """Input surface [C, W]; every element must be written exactly once."""

    def __init__(self, C, W):
        self.x = np.full((C, W), np.nan)

    def put(self, c0, w0, a):
        reg = self.x[c0:c0 + a.shape[0], w0:w0 + a.shape[1]]
        assert reg.shape == a.shape and np.isnan(reg).all(), "packing overlap / out of range"
        reg[...] = a

    def done(self):
        assert not np.isnan(self.x).any(), "packing left holes"
        return self.x


def normal(rng, shape, std=1.0):
    """fp16-rounded N(0, std^2); the reference then sees exactly the values the kernel sees."""
    return M.f16(rng.standard_normal(shape) * std)


def gen_attn_inputs(rng, C, pairing="div"):
    """q (RoPE'd), K/V at KV heads tiled to HEADS the way the seed's CPU helper does, da."""
    H, KVH, T, HD = C["HEADS"], C["KV_HEADS"], C["SEQ"], C["HD"]
    q, da = normal(rng, (H, T, HD)), normal(rng, (H, T, HD))
    k = M.tile_kv(normal(rng, (KVH, T, HD)), H, pairing)
    v = M.tile_kv(normal(rng, (KVH, T, HD)), H, pairing)
    return q, k, v, da


# ---------------------------------------------------------------- kernels
# gen(rng, C) -> (packed input [Cin, W], tensors); ref(t, C, P) -> [(block, c0, array, c)].
# Weights ~ N(0, 1/fan_in) (std 1/sqrt(fan_in)) so that every activation stays ~N(0,1).
def gen_sdpaFwd(rng, C):
    D, QD, KVD, T = C["DIM"], C["Q_DIM"], C["KV_DIM"], C["SEQ"]
    t = dict(xn=normal(rng, (D, T)), Wq=normal(rng, (QD, D), D ** -.5),
             Wk=normal(rng, (KVD, D), D ** -.5), Wv=normal(rng, (KVD, D), D ** -.5))
    p = Packer(D, T + QD + 2 * KVD)
    p.put(0, 0, t["xn"]); p.put(0, T, t["Wq"].T)
    p.put(0, T + QD, t["Wk"].T); p.put(0, T + QD + KVD, t["Wv"].T)
    return p.done(), t


def ref_sdpaFwd(t, C, P):
    H, KVH, QD, KVD = C["HEADS"], C["KV_HEADS"], C["Q_DIM"], C["KV_DIM"]
    Q, K, V = (P.mm(t[w], t["xn"]) for w in ("Wq", "Wk", "Wv"))
    q = M.rope(M.heads(Q, H), C["cos"], C["sin"], P, C["rope"])
    k = M.rope(M.heads(K, KVH), C["cos"], C["sin"], P, C["rope"])
    v = M.heads(V, KVH)
    o, _ = M.attention(q, M.tile_kv(k, H, C["pairing"]), M.tile_kv(v, H, C["pairing"]),
                       C["mask"], C["scv"], P)
    return [("attn_out", 0, M.unheads(o), DEEP), ("q_rope", QD, M.unheads(q), ELEM),
            ("k_rope", 2 * QD, M.unheads(k), ELEM), ("v", 2 * QD + KVD, V, MM),
            ("xnorm", 2 * QD + 2 * KVD, t["xn"], EXACT)]


def dyn_matmul(name, n_in, n_out, orient):
    """gen_dyn_matmul kernels: x[c, :T] = activation a [n_in, T]; x[c, T+o] = staged weight.
    orient 'WT': staged W^T of W [n_out, n_in] -> y = W.a; 'W': W [n_in, n_out] as stored
    -> y = W^T.a."""
    def gen(rng, C):
        T, a_in, a_out = C["SEQ"], C[n_in], C[n_out]
        fan_in = a_in if orient == "WT" else a_out  # fan-in of the forward weight
        W = normal(rng, (a_out, a_in) if orient == "WT" else (a_in, a_out), fan_in ** -.5)
        t = dict(a=normal(rng, (a_in, T)), W=W)
        p = Packer(a_in, T + a_out)
        p.put(0, 0, t["a"]); p.put(0, T, W.T if orient == "WT" else W)
        return p.done(), t

    def ref(t, C, P):
        return [(name, 0, P.mm(t["W"] if orient == "WT" else t["W"].T, t["a"]), MM)]
    return gen, ref


def gen_ffnFused(rng, C):
    D, HID, T = C["DIM"], C["HIDDEN"], C["SEQ"]
    t = dict(x2n=normal(rng, (D, T)), x2=normal(rng, (D, T)), W1=normal(rng, (HID, D), D ** -.5),
             W3=normal(rng, (HID, D), D ** -.5), W2=normal(rng, (D, HID), HID ** -.5))
    p = Packer(D, 2 * T + 3 * HID)
    p.put(0, 0, t["x2n"]); p.put(0, T, t["x2"]); p.put(0, 2 * T, t["W1"].T)
    p.put(0, 2 * T + HID, t["W3"].T); p.put(0, 2 * T + 2 * HID, t["W2"])
    return p.done(), t


def ref_ffnFused(t, C, P):
    D, HID = C["DIM"], C["HIDDEN"]
    h1, h3, gate, y = M.swiglu_fwd(t["x2n"], t["W1"], t["W3"], t["W2"], P)
    x_next = P.r(t["x2"] + P.r(C["res_alpha"] * y))
    return [("x_next", 0, x_next, DEEP), ("h1", D, h1, MM), ("h3", D + HID, h3, MM),
            ("gate", D + 2 * HID, gate, ELEM)]


def gen_two_mm(act_ch, wa, wb, w_out):
    """ffnBwdW13t / kvBwd: x[c] = [da | db | Wa[c, :] | Wb[c, :]] -> dx = Wa^T.da + Wb^T.db."""
    def gen(rng, C):
        n, m, T = C[act_ch], C[w_out], C["SEQ"]
        t = dict(da=normal(rng, (n, T)), db=normal(rng, (n, T)),
                 Wa=normal(rng, (n, m), m ** -.5), Wb=normal(rng, (n, m), m ** -.5))
        p = Packer(n, 2 * T + 2 * m)
        p.put(0, 0, t["da"]); p.put(0, T, t["db"]); p.put(0, 2 * T, t["Wa"])
        p.put(0, 2 * T + m, t["Wb"])
        return p.done(), t

    def ref(t, C, P):
        return [("dx", 0, P.r(P.mm(t["Wa"].T, t["da"]) + P.mm(t["Wb"].T, t["db"])), ELEM)]
    return gen, ref


def gen_sdpaBwd1(rng, C):
    QD = C["Q_DIM"]
    q, k, v, da = gen_attn_inputs(rng, C)
    t = dict(q=q, k=k, v=v, dx2=normal(rng, (C["DIM"], C["SEQ"])) if C["static"] else None, da=da)
    p = Packer(4 * QD, C["SEQ"])
    for i, a in enumerate((q, k, v)):
        p.put(i * QD, 0, M.unheads(a))
    p.put(3 * QD, 0, t["dx2"] if C["static"] else M.unheads(da))
    return p.done(), t


def ref_sdpaBwd1(t, C, P):
    QD, H, T = C["Q_DIM"], C["HEADS"], C["SEQ"]
    # static: the kernel first maps dx2 (grad of o_out) through Wo^T; dynamic gets da directly
    da = M.heads(P.mm(C["wo"].T, t["dx2"]), H) if C["static"] else t["da"]
    dv, pr, dp = M.sdpa_bwd1(t["q"], t["k"], t["v"], da, C["mask"], C["scv"], P)
    return [("dV", 0, M.unheads(dv), DEEP),
            ("probs", QD, pr.reshape(H * T, T), DEEP),
            ("dp", QD + H * T, dp.reshape(H * T, T), ELEM if C["static"] else MM)]


def gen_sdpaBwd2(rng, C):
    QD, H, T, SC = C["Q_DIM"], C["HEADS"], C["SEQ"], C["HEADS"] * C["SEQ"]
    q, k, v, da = gen_attn_inputs(rng, C)
    # real causal softmax rows and dp = da.V^T from the float64 forward, then stored as fp16
    _, pr = M.attention(q, k, v, C["mask"], C["scv"])
    t = dict(p=M.f16(pr), dp=M.f16(np.matmul(da, v.transpose(0, 2, 1))), q=q, k=k)
    p = Packer(2 * SC + 2 * QD, T)
    p.put(0, 0, t["p"].reshape(SC, T)); p.put(SC, 0, t["dp"].reshape(SC, T))
    p.put(2 * SC, 0, M.unheads(q)); p.put(2 * SC + QD, 0, M.unheads(k))
    return p.done(), t


def ref_sdpaBwd2(t, C, P):
    dq, dk = M.sdpa_bwd2(t["p"], t["dp"], t["q"], t["k"], C["scv"], P)
    return [("dQ", 0, M.unheads(dq), DEEP), ("dK", C["Q_DIM"], M.unheads(dk), DEEP)]


def gen_fwd_static(rng, C):
    t = dict(x=normal(rng, (C["DIM"], C["SEQ"])))
    return t["x"].copy(), t


def ref_fwdAttn(t, C, P):
    D, H = C["DIM"], C["HEADS"]
    xn = M.rmsnorm(t["x"], C["rms1"], C["invd"], C["eps"], P)
    Q, K, V = (P.mm(C[w], xn) for w in ("wq", "wk", "wv"))
    o, _ = M.attention(M.heads(Q, H), M.heads(K, H), M.heads(V, H), C["mask"], C["scv"], P)
    attn = M.unheads(o)
    return [("o_out", 0, P.mm(C["wo"], attn), COND), ("Q", D, Q, ELEM), ("K", 2 * D, K, ELEM),
            ("V", 3 * D, V, ELEM), ("attn_out", 4 * D, attn, DEEP), ("xnorm", 5 * D, xn, ELEM)]


def ref_fwdFFN(t, C, P):
    D, HID = C["DIM"], C["HIDDEN"]
    xn = M.rmsnorm(t["x"], C["rms2"], C["invd"], C["eps"], P)
    h1, h3, gate, y = M.swiglu_fwd(xn, C["w1"], C["w3"], C["w2"], P)
    return [("ffn_out", 0, y, COND), ("h1", D, h1, ELEM), ("h3", D + HID, h3, ELEM),
            ("gate", D + 2 * HID, gate, DEEP), ("xnorm", D + 3 * HID, xn, ELEM)]


def gen_ffnBwd(rng, C):
    D, HID, T = C["DIM"], C["HIDDEN"], C["SEQ"]
    t = dict(dffn=normal(rng, (D, T)), h1=normal(rng, (HID, T)), h3=normal(rng, (HID, T)))
    p = Packer(D + 2 * HID, T)
    p.put(0, 0, t["dffn"]); p.put(D, 0, t["h1"]); p.put(D + HID, 0, t["h3"])
    return p.done(), t


def ref_ffnBwd(t, C, P):
    D, HID = C["DIM"], C["HIDDEN"]
    _, dh1, dh3, dx = M.swiglu_bwd(t["dffn"], t["h1"], t["h3"], C["w1"], C["w3"], C["w2"], P)
    return [("dx", 0, dx, DEEP), ("dh1", D, dh1, DEEP), ("dh3", D + HID, dh3, ELEM)]


def gen_qkvBwd(rng, C):
    D, T = C["DIM"], C["SEQ"]
    t = {n: normal(rng, (D, T)) for n in ("dq", "dk", "dv")}
    return np.concatenate([t["dq"], t["dk"], t["dv"]]), t


def ref_qkvBwd(t, C, P):
    mm = [P.mm(C[w].T, t[g]) for w, g in (("wq", "dq"), ("wk", "dk"), ("wv", "dv"))]
    return [("dx", 0, P.r(P.r(mm[0] + mm[1]) + mm[2]), ELEM)]


KERNELS = {
    ("dyn", "sdpaFwd"): (gen_sdpaFwd, ref_sdpaFwd),
    ("dyn", "woFwd"): dyn_matmul("o_out", "Q_DIM", "DIM", "WT"),
    ("dyn", "ffnFused"): (gen_ffnFused, ref_ffnFused),
    ("dyn", "ffnBwdW2t"): dyn_matmul("dsilu", "DIM", "HIDDEN", "W"),
    ("dyn", "ffnBwdW13t"): gen_two_mm("HIDDEN", "W1", "W3", "DIM"),
    ("dyn", "wotBwd"): dyn_matmul("da", "DIM", "Q_DIM", "W"),
    ("dyn", "sdpaBwd1"): (gen_sdpaBwd1, ref_sdpaBwd1),
    ("dyn", "sdpaBwd2"): (gen_sdpaBwd2, ref_sdpaBwd2),
    ("dyn", "qBwd"): dyn_matmul("dx_q", "Q_DIM", "DIM", "W"),
    ("dyn", "kvBwd"): gen_two_mm("KV_DIM", "Wk", "Wv", "DIM"),
    ("static", "fwdAttn"): (gen_fwd_static, ref_fwdAttn),
    ("static", "fwdFFN"): (gen_fwd_static, ref_fwdFFN),
    ("static", "ffnBwd"): (gen_ffnBwd, ref_ffnBwd),
    ("static", "sdpaBwd1"): (gen_sdpaBwd1, ref_sdpaBwd1),
    ("static", "sdpaBwd2"): (gen_sdpaBwd2, ref_sdpaBwd2),
    ("static", "qkvBwd"): (gen_qkvBwd, ref_qkvBwd),
}


def kernel(C, name):
    return KERNELS[("static" if C["static"] else "dyn", name)]


def make_case(C, name, seed):
    """Input surface + tensors for one kernel; the rng depends only on (seed, config, kernel)."""
    rng = np.random.default_rng([seed, zlib.crc32(f"{C['name']}/{name}".encode())])
    spec = json.load(open(os.path.join(C["dir"], name + ".json")))
    x, t = kernel(C, name)[0](rng, C)
    want = spec["input"]["shape"]
    assert [1, x.shape[0], 1, x.shape[1]] == want, f"{name}: packed {x.shape} vs json {want}"
    assert np.abs(x).max() < 60000, "fp16 overflow risk in the input"
    return spec, x, t


# ---------------------------------------------------------------- comparison
def compare(out, blocks):
    """-> [(block, err/scale, bound, ok)] with err = max|out-ref|, scale = max|ref| per block."""
    res = []
    for name, c0, ref, c in blocks:
        got = out[c0:c0 + ref.shape[0]]
        scale = float(np.abs(ref).max()) or 1.0
        err = float(np.abs(got - ref).max()) if got.shape == ref.shape else np.inf
        ratio = err / scale if np.isfinite(err) else np.inf
        res.append((name, ratio, c * M.U16, bool(ratio <= c * M.U16)))
    return res


def all_blocks_cover(spec, blocks):
    n = spec["output"]["shape"][1]
    covered = sorted((c0, c0 + a.shape[0]) for _, c0, a, _ in blocks)
    return covered[0][0] == 0 and covered[-1][1] == n and all(
        a[1] == b[0] for a, b in zip(covered, covered[1:]))


def run_cli(args, C, name, spec, x):
    wd = os.path.join(args.workdir, C["name"])
    os.makedirs(wd, exist_ok=True)
    inp, outp = os.path.join(wd, name + ".in.npy"), os.path.join(wd, name + ".out.npy")
    np.save(inp, x.astype(np.float16).reshape(spec["input"]["shape"]))
    if os.path.exists(outp):
        os.remove(outp)
    cmd = [args.anetrain, "mil", "run", os.path.join(C["dir"], name + ".mil"), "--weights",
           C["dir"], "--input", f"{spec['input']['name']}={inp}", "-o", outp]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        return None, "timed out after 600 s"
    if r.returncode != 0:
        msg = " | ".join((r.stderr or r.stdout).strip().splitlines())
        return None, f"exit {r.returncode}: {msg[-300:]}"
    try:
        y = np.load(outp)
    except (OSError, ValueError) as e:
        return None, f"exit 0 but no readable OUT.npy ({e})"
    if y.dtype != np.float16 or list(y.shape) != spec["output"]["shape"]:
        return None, f"OUT.npy is {y.dtype}{list(y.shape)}, want float16{spec['output']['shape']}"
    return y.astype(np.float64).reshape(y.shape[1], y.shape[3]), ""


def run_all(args):
    passed = failed = 0

    def report(label, ok, msg):
        nonlocal passed, failed
        passed, failed = passed + ok, failed + (not ok)
        print(f"{'PASS' if ok else 'FAIL'} {label:28s} {msg}", flush=True)

    for cfg_name, names in CONFIGS:
        C = load_context(args.mil_root, cfg_name)
        for name in names:
            spec, x, t = make_case(C, name, args.seed)
            blocks = kernel(C, name)[1](t, C, M.EXACT)
            assert all_blocks_cover(spec, blocks), f"{cfg_name}/{name}: blocks do not tile output"
            out, err = run_cli(args, C, name, spec, x)
            if out is None:
                report(f"{cfg_name}/{name}", False, err)
                if name == "sdpaFwd":
                    report(f"{cfg_name}/sdpaFwd:gqa-pairing", False, "no output")
                continue
            res = compare(out, blocks)
            worst = max(res, key=lambda r: r[1] / max(r[2], 1e-300))
            bad = [f"{n} {q:.2e}>{b:.1e}" for n, q, b, ok in res if not ok]
            report(f"{cfg_name}/{name}", not bad, f"worst err/scale {worst[1]:.2e} ({worst[0]}, "
                   f"bound {worst[2]:.1e})" + (" FAILED: " + ", ".join(bad) if bad else ""))
            if name == "sdpaFwd":  # the seed's GQA pairing: h mod KV_HEADS, not h // ratio
                div = ref_sdpaFwd(t, dict(C, pairing="div"), M.EXACT)[0]
                mod_r, div_r = compare(out, [blocks[0]])[0][1], compare(out, [div])[0][1]
                if C["KV_HEADS"] < C["HEADS"]:
                    ok = mod_r <= DEEP * M.U16 and div_r > 0.1
                    what = "want: matches h mod KV_HEADS, > 0.1 from h // ratio"
                else:
                    same = compare(blocks[0][2], [div])[0][1]
                    ok = same < 1e-12 and mod_r <= DEEP * M.U16
                    what = "want: pairings coincide (MHA)"
                report(f"{cfg_name}/sdpaFwd:gqa-pairing", ok,
                       f"err/scale vs mod {mod_r:.2e}, vs div {div_r:.2e}: {what}")
    print(f"{passed} passed, {failed} failed")
    return failed == 0


# ---------------------------------------------------------------- self-check (no binary)
def nomask(C, t):
    return dict(C, mask=np.zeros_like(C["mask"])), t


def badscale(C, t):
    return dict(C, scv=1.0 / C["HD"]), t


SABOTAGE = [  # (config, kernel, what a buggy simulator would do, (C, t) -> sabotaged (C, t))
    ("tiny-gqa", "sdpaFwd", "GQA pairing h // ratio", lambda C, t: (dict(C, pairing="div"), t)),
    ("tiny-gqa", "sdpaFwd", "dropped causal mask", nomask),
    ("tiny-mha", "sdpaFwd", "half-split RoPE", lambda C, t: (dict(C, rope="half"), t)),
    ("tiny-gqa", "sdpaFwd", "scale 1/HD instead of 1/sqrt(HD)", badscale),
    ("tiny-gqa", "sdpaBwd1", "dropped mask in recomputed probs", nomask),
    ("tiny-mha", "sdpaBwd2", "scale 1/HD in dS", badscale),
    ("tiny-gqa", "ffnFused", "res_alpha dropped", lambda C, t: (dict(C, res_alpha=1.0), t)),
    ("tiny-mha", "woFwd", "staged weight untransposed", lambda C, t: (C, dict(t, W=t["W"].T))),
    ("static-tiny-mha", "fwdAttn", "dropped causal mask", nomask),
    ("static-tiny-mha", "fwdFFN", "RMSNorm weight missing",
     lambda C, t: (dict(C, rms2=np.ones_like(C["rms2"])), t)),
    ("static-tiny-mha", "sdpaBwd1", "Wo instead of Wo^T", lambda C, t: (dict(C, wo=C["wo"].T), t)),
]


def variant_output(C, name, t, P, exact):
    """The kernel output a simulator with this math / precision would produce."""
    got = {b[0]: b[2] for b in kernel(C, name)[1](t, C, P)}
    return np.concatenate([got[b[0]] for b in exact])


def selfcheck(args):
    fails = []

    def check(ok, msg):
        print(("PASS " if ok else "FAIL ") + msg, flush=True)
        if not ok:
            fails.append(msg)

    ctx = {n: load_context(args.mil_root, n) for n, _ in CONFIGS}
    # 1. the blobs hold what the README documents; 2. the math against independent definitions
    M.check_blobs(check, ctx)
    M.selfcheck_math(check, ctx["tiny-gqa"]["cos"], ctx["tiny-gqa"]["sin"], args.seed)
    # 3. every kernel: packing fills its input exactly, blocks tile its output, and honest fp16
    #    implementations (each intermediate stored as fp16; optionally fp16 partial sums too)
    #    stay inside the bounds
    worst = {P.name: (0.0, "", []) for P in (M.FP16, M.FP16ACC)}
    for n, names in CONFIGS:
        C = ctx[n]
        for name in names:
            spec, x, t = make_case(C, name, args.seed)
            exact = kernel(C, name)[1](t, C, M.EXACT)
            check(all_blocks_cover(spec, exact), f"{n}/{name}: input packed, output blocks tile "
                  f"[0, {spec['output']['shape'][1]})")
            for P in (M.FP16, M.FP16ACC):
                for bn, q, bound, ok in compare(variant_output(C, name, t, P, exact), exact):
                    f, where, over = worst[P.name]
                    f_new = q / bound if bound else (0.0 if q == 0 else np.inf)
                    if f_new > f:
                        worst[P.name] = (f_new, f"{n}/{name}:{bn} {q:.1e} vs {bound:.1e}", over)
                    if not ok:
                        over.append(f"{n}/{name}:{bn}")
    f, where, over = worst[M.FP16.name]
    check(f <= 0.5, f"fp16-per-op emulation uses <= 1/2 of every bound (worst {f:.2f}: {where})")
    f, where, over = worst[M.FP16ACC.name]
    check(not over, f"fp16 per op + fp16 partial sums stays inside every bound (worst {f:.2f}: "
          f"{where}){' over: ' + ', '.join(over) if over else ''}")
    # 4. sabotage: plausible simulator bugs must be rejected, by a wide margin
    for n, name, label, bug in SABOTAGE:
        C = ctx[n]
        t = make_case(C, name, args.seed)[2]
        exact = kernel(C, name)[1](t, C, M.EXACT)
        C_bad, t_bad = bug(C, t)
        res = compare(variant_output(C_bad, name, t_bad, M.EXACT, exact), exact)
        f = max(q / bound for _, q, bound, _ in res if bound)
        check(f > 10, f"sabotage {n}/{name} ({label}) rejected, {f:.0f}x over the bound")
    # 5. GQA pairings: differ in tiny-gqa, coincide in tiny-mha
    for n in ("tiny-gqa", "tiny-mha"):
        C = ctx[n]
        t = make_case(C, "sdpaFwd", args.seed)[2]
        mod, div = (ref_sdpaFwd(t, dict(C, pairing=p), M.EXACT)[0] for p in ("mod", "div"))
        q = compare(div[2], [mod])[0][1]
        ok = q > 0.1 if C["KV_HEADS"] < C["HEADS"] else q < 1e-12
        check(ok, f"{n}: attn_out(h mod KV) vs attn_out(h // ratio) err/scale {q:.2e}")
    print("selfcheck OK" if not fails else f"selfcheck FAILED ({len(fails)})")
    return not fails


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--anetrain")
    ap.add_argument("--mil-root", default=os.path.join(HERE, "../../../shared/reference/mil"))
    ap.add_argument("--workdir")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--selfcheck", action="store_true", help="check the reference math (no binary)")
    a = ap.parse_args()
    if a.selfcheck:
        sys.exit(0 if selfcheck(a) else 1)
    if not (a.anetrain and a.workdir):
        ap.error("--anetrain and --workdir are required (or --selfcheck)")
    sys.exit(0 if run_all(a) else 1)
