# Independent float64 PyTorch reference of Llama-family / Qwen3 decoders, used to check anetrain.
# Loads a Hugging Face folder (config.json + model.safetensors) or a llama2.c version-0 .bin.
# Library module (no main); see selfcheck.py and parity.py. Run with /usr/bin/python3 (Debian torch).
import json
import math
import os
import struct

import numpy as np
import torch_or_skip  # noqa: F401  (off Linux, a missing torch skips the test: exit 77)
import torch
import torch.nn.functional as F

import st

# Keys copied verbatim between cfg and config.json.
_HF_KEYS = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
            "num_key_value_heads", "head_dim", "rms_norm_eps", "rope_theta", "vocab_size",
            "max_position_embeddings", "tie_word_embeddings", "model_type")


def make_cfg(**kw):
    """Fill defaults; cfg is a plain dict of HF config keys plus 'rope_style'."""
    cfg = dict(kw)
    cfg.setdefault("model_type", "llama")
    cfg.setdefault("head_dim", cfg["hidden_size"] // cfg["num_attention_heads"])
    cfg.setdefault("num_key_value_heads", cfg["num_attention_heads"])
    cfg.setdefault("rms_norm_eps", 1e-5)
    cfg.setdefault("rope_theta", 10000.0)
    cfg.setdefault("max_position_embeddings", 512)
    cfg.setdefault("tie_word_embeddings", False)
    cfg.setdefault("rope_style", "half")
    if cfg["model_type"] not in ("llama", "qwen3"):
        raise ValueError("unsupported model_type %r" % cfg["model_type"])
    if cfg["num_attention_heads"] % cfg["num_key_value_heads"]:
        raise ValueError("num_attention_heads must be a multiple of num_key_value_heads")
    return cfg


def param_shapes(cfg):
    """Ordered {HF name: shape} for every trainable tensor of cfg."""
    D, Fh, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    hd, Hq, Hkv = cfg["head_dim"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    s = {"model.embed_tokens.weight": (V, D)}
    for i in range(cfg["num_hidden_layers"]):
        p = "model.layers.%d." % i
        s[p + "input_layernorm.weight"] = (D,)
        s[p + "self_attn.q_proj.weight"] = (Hq * hd, D)
        s[p + "self_attn.k_proj.weight"] = (Hkv * hd, D)
        s[p + "self_attn.v_proj.weight"] = (Hkv * hd, D)
        s[p + "self_attn.o_proj.weight"] = (D, Hq * hd)
        if cfg["model_type"] == "qwen3":
            s[p + "self_attn.q_norm.weight"] = (hd,)
            s[p + "self_attn.k_norm.weight"] = (hd,)
        s[p + "post_attention_layernorm.weight"] = (D,)
        s[p + "mlp.gate_proj.weight"] = (Fh, D)
        s[p + "mlp.up_proj.weight"] = (Fh, D)
        s[p + "mlp.down_proj.weight"] = (D, Fh)
    s["model.norm.weight"] = (D,)
    if not cfg["tie_word_embeddings"]:
        s["lm_head.weight"] = (V, D)
    return s


def _to_params(arrays, cfg, dtype):
    shapes = param_shapes(cfg)
    missing = set(shapes) - set(arrays)
    extra = set(arrays) - set(shapes)
    if missing or extra:
        raise ValueError("tensor names mismatch: missing %s extra %s" % (sorted(missing), sorted(extra)))
    params = {}
    for name, shp in shapes.items():
        a = np.asarray(arrays[name])
        if tuple(a.shape) != tuple(shp):
            raise ValueError("%s: shape %s, expected %s" % (name, a.shape, shp))
        params[name] = torch.tensor(a, dtype=dtype).requires_grad_(True)
    return params


def load_hf(path, dtype=torch.float64):
    with open(os.path.join(path, "config.json")) as f:
        raw = json.load(f)
    cfg = make_cfg(**{k: raw[k] for k in _HF_KEYS if k in raw and raw[k] is not None})
    arrays = st.load(os.path.join(path, "model.safetensors"))
    # Some exporters write lm_head even when tied; it must equal the embedding then.
    if cfg["tie_word_embeddings"]:
        arrays.pop("lm_head.weight", None)
    return cfg, _to_params(arrays, cfg, dtype)


def load_llama2c(path, dtype=torch.float64):
    with open(path, "rb") as f:
        blob = f.read()
    D, Fh, L, H, Hkv, V, S = struct.unpack("<7i", blob[:28])
    shared = V > 0
    V = abs(V)
    hd = D // H
    kv = D * Hkv // H
    cfg = make_cfg(model_type="llama", hidden_size=D, intermediate_size=Fh, num_hidden_layers=L,
                   num_attention_heads=H, num_key_value_heads=Hkv, head_dim=hd, rms_norm_eps=1e-5,
                   rope_theta=10000.0, vocab_size=V, max_position_embeddings=S,
                   tie_word_embeddings=shared, rope_style="interleaved")
    w = np.frombuffer(blob, dtype="<f4", offset=28)
    pos = [0]

    def take(*shape):
        n = int(np.prod(shape))
        if pos[0] + n > w.size:
            raise ValueError("%s: file too short" % path)
        a = w[pos[0]:pos[0] + n].reshape(shape)
        pos[0] += n
        return a

    arrays = {"model.embed_tokens.weight": take(V, D)}
    per_layer = [("input_layernorm.weight", (D,)), ("self_attn.q_proj.weight", (D, D)),
                 ("self_attn.k_proj.weight", (kv, D)), ("self_attn.v_proj.weight", (kv, D)),
                 ("self_attn.o_proj.weight", (D, D)), ("post_attention_layernorm.weight", (D,)),
                 ("mlp.gate_proj.weight", (Fh, D)), ("mlp.down_proj.weight", (D, Fh)),
                 ("mlp.up_proj.weight", (Fh, D))]
    # llama2.c stores each kind for all layers contiguously, in run.c order.
    for name, shp in per_layer:
        stacked = take(L, *shp)
        for i in range(L):
            arrays["model.layers.%d.%s" % (i, name)] = stacked[i]
    arrays["model.norm.weight"] = take(D)
    take(S, hd // 2)  # legacy freq_cis_real
    take(S, hd // 2)  # legacy freq_cis_imag
    if not shared:
        arrays["lm_head.weight"] = take(V, D)
    if pos[0] != w.size:
        raise ValueError("%s: %d trailing floats" % (path, w.size - pos[0]))
    return cfg, _to_params(arrays, cfg, dtype)


def load_model(path, dtype=torch.float64):
    """-> (cfg, {HF name: leaf tensor with requires_grad}) from an HF dir or llama2.c .bin."""
    if os.path.isdir(path):
        return load_hf(path, dtype)
    return load_llama2c(path, dtype)


def _rmsnorm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def _rope(x, cfg):
    """x: [B, T, H, hd]; rotates by position t with the file's pairing convention."""
    T, hd = x.shape[1], x.shape[-1]
    j = torch.arange(hd // 2, dtype=torch.float64)
    inv = cfg["rope_theta"] ** (-2.0 * j / hd)
    ang = torch.arange(T, dtype=torch.float64)[:, None] * inv[None, :]  # [T, hd/2]
    cos = ang.cos().to(x.dtype)[None, :, None, :]
    sin = ang.sin().to(x.dtype)[None, :, None, :]
    if cfg["rope_style"] == "half":
        a, b = x[..., :hd // 2], x[..., hd // 2:]
        return torch.cat([a * cos - b * sin, b * cos + a * sin], dim=-1)
    if cfg["rope_style"] == "interleaved":
        a, b = x[..., 0::2], x[..., 1::2]
        return torch.stack([a * cos - b * sin, a * sin + b * cos], dim=-1).flatten(-2)
    raise ValueError("unknown rope_style %r" % cfg["rope_style"])


def forward(cfg, params, inputs):
    """inputs [B, T] long -> logits [B, T, V]."""
    B, T = inputs.shape
    hd, Hq, Hkv = cfg["head_dim"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    eps = cfg["rms_norm_eps"]
    emb = params["model.embed_tokens.weight"]
    x = emb[inputs]
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    for i in range(cfg["num_hidden_layers"]):
        p = lambda n: params["model.layers.%d.%s" % (i, n)]
        n = _rmsnorm(x, p("input_layernorm.weight"), eps)
        q = (n @ p("self_attn.q_proj.weight").T).view(B, T, Hq, hd)
        k = (n @ p("self_attn.k_proj.weight").T).view(B, T, Hkv, hd)
        v = (n @ p("self_attn.v_proj.weight").T).view(B, T, Hkv, hd)
        if cfg["model_type"] == "qwen3":
            q = _rmsnorm(q, p("self_attn.q_norm.weight"), eps)
            k = _rmsnorm(k, p("self_attn.k_norm.weight"), eps)
        q, k = _rope(q, cfg), _rope(k, cfg)
        rep = Hq // Hkv
        k = k.repeat_interleave(rep, dim=2)
        v = v.repeat_interleave(rep, dim=2)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # [B, H, T, hd]
        s = (q @ k.transpose(-1, -2)) * (hd ** -0.5)
        s = s.masked_fill(~causal, float("-inf"))
        a = torch.softmax(s, dim=-1) @ v
        a = a.transpose(1, 2).reshape(B, T, Hq * hd)
        x = x + a @ p("self_attn.o_proj.weight").T
        n2 = _rmsnorm(x, p("post_attention_layernorm.weight"), eps)
        g = F.silu(n2 @ p("mlp.gate_proj.weight").T) * (n2 @ p("mlp.up_proj.weight").T)
        x = x + g @ p("mlp.down_proj.weight").T
    x = _rmsnorm(x, params["model.norm.weight"], eps)
    wcls = emb if cfg["tie_word_embeddings"] else params["lm_head.weight"]
    return x @ wcls.T


def loss_fn(cfg, params, tokens, mask=None):
    """tokens [B, T+1] -> (mean CE loss over B*T, logits). mask [B, T+1] of 0/1 (per token, as
    `grad --mask` reads it): the mean over the targets tokens[:, 1:] whose mask is 1."""
    tokens = torch.as_tensor(tokens, dtype=torch.long)
    inp, tgt = tokens[:, :-1], tokens[:, 1:]
    logits = forward(cfg, params, inp)
    if mask is None:
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1))
        return loss, logits
    counted = torch.as_tensor(mask)[:, 1:].reshape(-1).to(logits.dtype)
    rows = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1), reduction="none")
    return (rows * counted).sum() / counted.sum(), logits


def loss_and_grads(cfg, params, tokens, mask=None):
    """-> (loss float, logits [B,T,V] detached, {name: grad}); does not touch .grad."""
    loss, logits = loss_fn(cfg, params, tokens, mask)
    names = list(params)
    gs = torch.autograd.grad(loss, [params[n] for n in names])
    return loss.item(), logits.detach(), {n: g for n, g in zip(names, gs)}


def random_params(cfg, seed):
    """Random float32 numpy weights: 0.02-ish normal matrices, norm gains 1 + 0.1*noise."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, shp in param_shapes(cfg).items():
        if len(shp) == 1:
            a = 1.0 + 0.1 * rng.standard_normal(shp)
        else:
            # Larger than the usual 0.02 so attention is not nearly flat and every
            # path contributes visibly to the loss; 0.2 on the embedding keeps
            # tied logits (embedding . normed x) from saturating the softmax.
            scale = 0.2 if name.endswith("embed_tokens.weight") else 0.1
            a = scale * rng.standard_normal(shp) / math.sqrt(max(1, shp[1] / 16))
        out[name] = a.astype(np.float32)
    return out


def write_hf(path, cfg, params_numpy, dtype="F32"):
    """Write config.json + model.safetensors for cfg and {HF name: array}."""
    os.makedirs(path, exist_ok=True)
    conf = {k: cfg[k] for k in _HF_KEYS}
    conf["architectures"] = ["Qwen3ForCausalLM" if cfg["model_type"] == "qwen3" else "LlamaForCausalLM"]
    conf.update(hidden_act="silu", attention_bias=False, torch_dtype="float32",
                bos_token_id=1, eos_token_id=2)
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(conf, f, indent=2, sort_keys=True)
    arrays = {k: (v.detach().cpu().numpy() if torch.is_tensor(v) else np.asarray(v))
              for k, v in params_numpy.items()}
    st.save(os.path.join(path, "model.safetensors"), arrays, dtype=dtype, metadata={"format": "pt"})
