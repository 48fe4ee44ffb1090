# Pure float64 math for the maderix/ANE seed kernels (tests/reference/mil_seed_kernels.py).
# Written from the documented math (Q = Wq.x, interleaved RoPE, causal softmax attention, SwiGLU,
# RMSNorm and their gradients), not from the MIL text. Every function takes a precision policy
# `P`: EXACT is the float64 reference; FP16 / FP16ACC only exist so --selfcheck can measure how far
# an honest fp16 implementation drifts, i.e. that the tolerances are not too tight.
import math
import os
import struct

import numpy as np

U16 = 2.0 ** -11  # unit roundoff of fp16 (11 significant bits)


def f16(a):
    """Round to fp16 and back to float64 (round-to-nearest-even, like _Float16 casts)."""
    with np.errstate(over="ignore"):
        return np.asarray(a, dtype=np.float64).astype(np.float16).astype(np.float64)


class Prec:
    """r(): rounding applied to every intermediate; mm(): matmul (with its accumulation)."""

    def __init__(self, name, rnd, acc16=False):
        self.name, self.r, self.acc16 = name, rnd, acc16

    def mm(self, a, b):
        if not self.acc16:
            return self.r(np.matmul(a, b))
        # pessimistic: every partial sum stored in fp16 (sequential accumulation)
        acc = np.zeros(np.broadcast_shapes(a.shape[:-1] + (1,), b.shape[:-2] + (1, b.shape[-1])))
        for k in range(a.shape[-1]):
            acc = self.r(acc + self.r(a[..., :, k:k + 1] * b[..., k:k + 1, :]))
        return acc

    def colsum(self, a):  # sum over axis 0 of a 2-D [C, T] array -> [1, T]
        return self.mm(np.ones((1, a.shape[0])), a)


EXACT = Prec("float64", lambda a: np.asarray(a, dtype=np.float64))
FP16 = Prec("fp16 per op", f16)
FP16ACC = Prec("fp16 per op + fp16 accumulation", f16, acc16=True)


def fmt_const(value, spec):
    """A scalar the generator prints into the MIL with printf `spec` and stores as fp16."""
    return float(f16(float(spec % value)))


# ---------------------------------------------------------------- blobs
def read_blob(path):
    """fp16 payload of a seed weight blob, validating the 128-byte header (README layout)."""
    raw = open(path, "rb").read()
    u32 = lambda off: struct.unpack_from("<I", raw, off)[0]  # noqa: E731
    n = len(raw) - 128
    assert len(raw) >= 128 and n % 2 == 0, f"{path}: bad size {len(raw)}"
    assert u32(0) == 1 and u32(4) == 2, f"{path}: bad file header"
    assert u32(64) == 0xDEADBEEF, f"{path}: no 0xDEADBEEF chunk marker at 64"
    assert u32(68) == 1, f"{path}: u32 at 68 != 1"
    assert u32(72) == n, f"{path}: data size {u32(72)} != {n}"
    assert u32(80) == 128, f"{path}: data offset {u32(80)} != 128"
    return np.frombuffer(raw, dtype="<f2", offset=128).astype(np.float64)


def load_blob(cfg_dir, name, shape):
    a = read_blob(os.path.join(cfg_dir, "weights", name))
    assert a.size == int(np.prod(shape)), f"{name}: {a.size} elements, expected {shape}"
    return a.reshape(shape)


# ---------------------------------------------------------------- layout helpers
def heads(x, n):
    """[n*HD, T] channel-first (channel h*HD+e) -> [n, T, HD]."""
    return x.reshape(n, x.shape[0] // n, x.shape[1]).transpose(0, 2, 1)


def unheads(x):
    """[n, T, HD] -> [n*HD, T]."""
    return x.transpose(0, 2, 1).reshape(-1, x.shape[1])


def kv_index(n_heads, n_kv, pairing):
    """KV head used by query head h: 'mod' = h % KV_HEADS (the seed's concat tiling),
    'div' = h // (HEADS/KV_HEADS) (HF repeat_kv and the seed's gqa_tile_kv)."""
    h = np.arange(n_heads)
    return h % n_kv if pairing == "mod" else h // (n_heads // n_kv)


def tile_kv(kv, n_heads, pairing):
    return kv[kv_index(n_heads, kv.shape[0], pairing)]


def reduce_kv(g, n_kv, pairing):
    """Gradient of tile_kv: sum the query-head gradients that share one KV head."""
    out = np.zeros((n_kv,) + g.shape[1:])
    np.add.at(out, kv_index(g.shape[0], n_kv, pairing), g)
    return out


# ---------------------------------------------------------------- forward math
def rmsnorm(x, w, invd, eps, P=EXACT):
    """x [D, T] -> x * (mean_c x^2 + eps)^-1/2 * w[c]; mean taken as sum * invd (1/D)."""
    r = P.r
    ms = r(P.colsum(r(x * x)) * invd)
    return r(r(x * r(r(ms + eps) ** -0.5)) * w.reshape(-1, 1))


def rope(x, cos, sin, P=EXACT, mode="interleaved"):
    """Rotate pairs (2i, 2i+1) of x [n, T, HD] using the tables cos/sin [T, HD]."""
    r, out = P.r, np.empty_like(x)
    if mode == "interleaved":
        a, b = x[..., 0::2], x[..., 1::2]
        out[..., 0::2] = r(r(a * cos[:, 0::2]) - r(b * sin[:, 0::2]))
        out[..., 1::2] = r(r(b * cos[:, 1::2]) + r(a * sin[:, 1::2]))
    else:  # 'half' (rotate_half convention): only used to show the comparison rejects it
        h = x.shape[-1] // 2
        a, b = x[..., :h], x[..., h:]
        out[..., :h] = r(r(a * cos[:, 0::2]) - r(b * sin[:, 0::2]))
        out[..., h:] = r(r(b * cos[:, 0::2]) + r(a * sin[:, 0::2]))
    return out


def rope_angles(T, HD, theta=10000.0):
    """theta[t, i] = t * theta^(-2i/HD), the angle of pair i at position t (no tables)."""
    return np.arange(T)[:, None] * theta ** (-2.0 * np.arange(HD // 2)[None, :] / HD)


def softmax(s, P=EXACT):
    r = P.r
    e = r(np.exp(r(s - s.max(axis=-1, keepdims=True))))
    return r(e / P.mm(e, np.ones((e.shape[-1], 1))))


def attention(q, k, v, mask, scale, P=EXACT):
    """q, k, v [H, T, HD] (k, v already paired to query heads) -> (P.V [H,T,HD], probs [H,T,T])."""
    r = P.r
    s = r(r(P.mm(q, k.transpose(0, 2, 1)) * scale) + mask)
    p = softmax(s, P)
    return P.mm(p, v), p


def sigmoid(h, P=EXACT):
    return P.r(1.0 / (1.0 + np.exp(-h)))


def swiglu_fwd(xn, W1, W3, W2, P=EXACT):
    """h1 = W1.xn, h3 = W3.xn, gate = silu(h1)*h3, y = W2.gate (all [features, T])."""
    r = P.r
    h1, h3 = P.mm(W1, xn), P.mm(W3, xn)
    gate = r(r(h1 * sigmoid(h1, P)) * h3)
    return h1, h3, gate, P.mm(W2, gate)


# ---------------------------------------------------------------- backward math
def sdpa_bwd1(q, k, v, da, mask, scale, P=EXACT):
    """Per head: probs recomputed, dV = probs^T . da, dP = da . V^T."""
    _, p = attention(q, k, v, mask, scale, P)
    return P.mm(p.transpose(0, 2, 1), da), p, P.mm(da, v.transpose(0, 2, 1))


def sdpa_bwd2(p, dp, q, k, scale, P=EXACT):
    """Softmax backward: dS = P*(dP - rowsum(P*dP))*scale; dQ = dS.K, dK = dS^T.Q."""
    r = P.r
    rs = P.mm(r(p * dp), np.ones((p.shape[-1], 1)))
    ds = r(r(p * r(dp - rs)) * scale)
    return P.mm(ds, k), P.mm(ds.transpose(0, 2, 1), q)


def swiglu_bwd(dy, h1, h3, W1, W3, W2, P=EXACT):
    """Gradients of y = W2.(silu(h1)*h3) with h1 = W1.x, h3 = W3.x: (dsilu, dh1, dh3, dx).
    d silu(h)/dh = sig*(1 + h*(1-sig)); dsilu is dL/dgate."""
    r = P.r
    sig = sigmoid(h1, P)
    dsilu = P.mm(W2.T, dy)
    dh1 = r(r(r(dsilu * h3) * sig) * r(1.0 + r(h1 * r(1.0 - sig))))
    dh3 = r(r(dsilu * h1) * sig)
    return dsilu, dh1, dh3, r(P.mm(W1.T, dh1) + P.mm(W3.T, dh3))


def causal_mask(T):
    """The documented mask: 0 where key j <= query i, -65504 (fp16 -max) otherwise."""
    return np.where(np.arange(T)[None, :] <= np.arange(T)[:, None], 0.0, -65504.0)


def inv_sqrt(n):
    return 1.0 / math.sqrt(n)


# ---------------------------------------------------------------- self-verification
def check_blobs(check, ctx):
    """Blob contents as the README documents them (ctx: config name -> loaded context)."""
    for n, C in ctx.items():
        check(np.array_equal(C["mask"], causal_mask(C["SEQ"])), f"{n}: mask.bin == causal mask")
    S = ctx["static-tiny-mha"]
    for m, w in enumerate(["wq", "wk", "wv", "wo", "w1", "w2", "w3"]):
        i = np.arange(S[w].size)
        want = f16(np.float32(0.05 * np.sin(0.37 * i + 1.1 * m))).reshape(S[w].shape)
        check(np.array_equal(S[w], want) and np.array_equal(S[w + "t"], S[w].T),
              f"static {w}.bin == 0.05 sin(0.37 i + 1.1*{m}) and {w}t.bin == its transpose")
    i = np.arange(S["DIM"])
    check(np.array_equal(S["rms1"], f16(np.float32(1 + 0.01 * i))) and
          np.array_equal(S["rms2"], f16(np.float32(1 - 0.005 * i))), "static rms1/rms2 blobs")


def selfcheck_math(check, cos_tab, sin_tab, seed=0):
    """The formulas above against independent definitions: RoPE against complex rotation by the
    documented angles, attention and SwiGLU backward against float64 torch autograd."""
    import torch_or_skip  # noqa: F401  (off Linux, a missing torch skips the test: exit 77)
    import torch
    rng = np.random.default_rng(seed)
    T, HD = cos_tab.shape
    # RoPE: pair (2i, 2i+1) as the complex number x_2i + j*x_2i+1, multiplied by exp(j*theta)
    x = rng.standard_normal((3, T, HD))
    th = rope_angles(T, HD)
    z = (x[..., 0::2] + 1j * x[..., 1::2]) * np.exp(1j * th)
    rot = np.empty_like(x)
    rot[..., 0::2], rot[..., 1::2] = z.real, z.imag
    exact_tab = np.repeat(np.cos(th), 2, axis=1), np.repeat(np.sin(th), 2, axis=1)
    e = np.abs(rope(x, *exact_tab) - rot).max()
    check(e < 1e-12, f"rope(exact tables) == complex rotation by t*10000^(-2i/HD) (err {e:.1e})")
    e = max(np.abs(cos_tab - exact_tab[0]).max(), np.abs(sin_tab - exact_tab[1]).max())
    check(e <= 2.0 ** -12, f"blob rope tables == cos/sin(t*10000^(-2i/HD)) to fp16 (err {e:.1e})")
    e = np.abs(rope(x, cos_tab, sin_tab) - rot).max() / np.abs(rot).max()
    check(e <= 2 * U16, f"rope(blob tables) == rotation within 2*2^-11 (err/scale {e:.1e})")
    e = np.abs(rope(x, cos_tab, sin_tab, mode="half") - rot).max() / np.abs(rot).max()
    check(e > 0.1, f"half-split RoPE differs from interleaved (err/scale {e:.2f})")

    t64 = lambda a: torch.tensor(a, dtype=torch.float64, requires_grad=True)  # noqa: E731
    rel = lambda a, b: float(np.abs(a - b).max() / np.abs(b).max())  # noqa: E731
    for H, KVH in ((4, 2), (4, 4)):
        # attention with GQA (HF pairing, as the seed's CPU helpers tile/reduce), loss = <out, da>
        mask, scale = causal_mask(T), 0.25
        q, k, v, da = (rng.standard_normal(s) for s in
                       ((H, T, HD), (KVH, T, HD), (KVH, T, HD), (H, T, HD)))
        tq, tk, tv = t64(q), t64(k), t64(v)
        idx = torch.tensor(kv_index(H, KVH, "div"))
        s = tq @ tk[idx].transpose(1, 2) * scale + torch.tensor(mask)
        tp = torch.softmax(s, dim=-1)
        tp.retain_grad()
        out = tp @ tv[idx]
        (out * torch.tensor(da)).sum().backward()
        kt, vt = tile_kv(k, H, "div"), tile_kv(v, H, "div")
        o, p = attention(q, kt, vt, mask, scale)
        dv, p1, dp = sdpa_bwd1(q, kt, vt, da, mask, scale)
        dq, dk = sdpa_bwd2(p1, dp, q, kt, scale)
        errs = dict(out=rel(o, out.detach().numpy()), probs=rel(p, tp.detach().numpy()),
                    dP=rel(dp, tp.grad.numpy()), dV=rel(reduce_kv(dv, KVH, "div"), tv.grad.numpy()),
                    dQ=rel(dq, tq.grad.numpy()), dK=rel(reduce_kv(dk, KVH, "div"), tk.grad.numpy()))
        check(max(errs.values()) < 1e-12, f"attention H={H} KV={KVH}: forward and sdpaBwd1/2 "
              f"formulas == torch autograd (worst {max(errs.values()):.1e}: "
              + ", ".join(errs) + ")")
    # SwiGLU: y = W2.(silu(W1.x) * (W3.x)), loss = <y, dy>
    D, HID = 8, 12
    x, W1, W3, W2, dy = (rng.standard_normal(s) for s in
                         ((D, T), (HID, D), (HID, D), (D, HID), (D, T)))
    tx = t64(x)
    h1, h3 = torch.tensor(W1) @ tx, torch.tensor(W3) @ tx
    gate = torch.nn.functional.silu(h1) * h3
    for a in (h1, h3, gate):
        a.retain_grad()
    y = torch.tensor(W2) @ gate
    (y * torch.tensor(dy)).sum().backward()
    nh1, nh3, ng, ny = swiglu_fwd(x, W1, W3, W2)
    dsilu, dh1, dh3, dx = swiglu_bwd(dy, nh1, nh3, W1, W3, W2)
    errs = dict(gate=rel(ng, gate.detach().numpy()), y=rel(ny, y.detach().numpy()),
                dsilu=rel(dsilu, gate.grad.numpy()), dh1=rel(dh1, h1.grad.numpy()),
                dh3=rel(dh3, h3.grad.numpy()), dx=rel(dx, tx.grad.numpy()))
    check(max(errs.values()) < 1e-12, f"SwiGLU forward and backward formulas == torch autograd "
          f"(worst {max(errs.values()):.1e}: " + ", ".join(errs) + ")")
    # RMSNorm against its textbook form
    w = rng.standard_normal(D)
    e = rel(rmsnorm(x, w, 1.0 / D, 1e-5), x / np.sqrt((x * x).mean(0) + 1e-5) * w[:, None])
    check(e < 1e-12, f"rmsnorm == x/sqrt(mean(x^2)+eps)*w (err {e:.1e})")
