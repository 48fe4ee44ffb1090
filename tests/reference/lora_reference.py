# Float64 PyTorch reference of LoRA on a Hugging Face-layout Llama / Qwen3 model (or a llama2.c
# version-0 .bin), over torch_model.py's forward: every targeted projection computes
#   y = x·Wᵀ + (lora_alpha / r) · (x·Aᵀ)·Bᵀ      (A: r×in, B: out×r)
# without ever forming W + s·B·A. Adapters are read and written in the Hugging Face PEFT layout:
#   ADAPTER/adapter_config.json         r, lora_alpha, target_modules, base_model_name_or_path
#   ADAPTER/adapter_model.safetensors   base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight, …
# Token files are `anetrain grad --tokens`' text form (B rows of T+1 ids); a mask file has the same
# form, one 0/1 per token id, where a row's first value is unused (1: predicting that token counts).
#
#   lora_reference.py grad --model M --adapter A --tokens F [--mask F] [--batch B --seq T] -o OUT.safetensors
#       "loss" (mean cross-entropy over the counted targets) and the gradient of every adapter
#       tensor under its PEFT name ("--with-logits" adds "logits"); with --dropout P --dropout-key K
#       each adapter's input is PEFT's dropout(x) = x·m/(1−P), m drawn as anetrain's training (and
#       `grad --lora-dropout P --dropout-key K`) draws it: the counter-based hash of
#       src/core/dropout_mask.h, written again below in numpy from its definition
#   lora_reference.py random-adapter --model M -o DIR --rank R [--alpha A] [--targets q_proj,…] [--seed S]
#       a seeded adapter folder; B is nonzero (--b-scale, default 0.05) so that A's gradients are too
#   lora_reference.py merge-check --model M --adapter A --tokens F [-o LOGITS.safetensors] [--merged M2]
#       the logits of base + adapter; with --merged, compared with that merged model's (--tol 1e-5)
# lora_reference_selfcheck.py checks this script against itself and torch_model.py.
# Run with /usr/bin/python3 (Debian torch); exit 0 = success.
import argparse
import json
import math
import os
import sys

import numpy as np
import torch_or_skip  # noqa: F401  (off Linux, a missing torch skips the test: exit 77)
import torch
import torch.nn.functional as F

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import st  # noqa: E402
import torch_model as tm  # noqa: E402

# PEFT's module names and the block each lives in.
TARGETS = {"q_proj": "self_attn", "k_proj": "self_attn", "v_proj": "self_attn", "o_proj": "self_attn",
           "gate_proj": "mlp", "up_proj": "mlp", "down_proj": "mlp"}
PEFT_PREFIX = "base_model.model."


class InputError(Exception):
    pass


def peft_name(layer, module, which):
    """PEFT's tensor name of layer `layer`'s `module` adapter ("A" or "B")."""
    return "%smodel.layers.%d.%s.%s.lora_%s.weight" % (PEFT_PREFIX, layer, TARGETS[module], module, which)


def base_name(layer, module):
    return "model.layers.%d.%s.%s.weight" % (layer, TARGETS[module], module)


# ---------------------------------------------------------------------------------------------
# Adapter folders
# ---------------------------------------------------------------------------------------------

def read_adapter(path, cfg, base_params, dtype=torch.float64):
    """-> (scale, {PEFT name: leaf tensor requiring grad}, config dict), every tensor checked."""
    conf_path = os.path.join(path, "adapter_config.json")
    try:
        with open(conf_path) as f:
            conf = json.load(f)
    except (OSError, ValueError) as e:
        raise InputError("%s: %s" % (conf_path, e))
    for key in ("r", "lora_alpha", "target_modules"):
        if key not in conf:
            raise InputError("%s: no %r" % (conf_path, key))
    r, alpha, targets = conf["r"], conf["lora_alpha"], conf["target_modules"]
    if not isinstance(r, int) or r < 1:
        raise InputError("%s: r must be a positive integer, got %r" % (conf_path, r))
    if not isinstance(targets, list) or not targets or any(t not in TARGETS for t in targets):
        raise InputError("%s: target_modules must be a list of %s, got %r" % (conf_path, ", ".join(TARGETS), targets))
    if conf.get("use_rslora") or conf.get("rank_pattern") or conf.get("alpha_pattern"):
        raise InputError("%s: use_rslora, rank_pattern and alpha_pattern are not supported" % conf_path)
    if conf.get("bias", "none") != "none":
        raise InputError("%s: bias %r is not supported (only \"none\")" % (conf_path, conf["bias"]))
    st_path = os.path.join(path, "adapter_model.safetensors")
    try:
        arrays = st.load(st_path)
    except (OSError, ValueError) as e:
        raise InputError("%s: %s" % (st_path, e))
    adapters = {}
    for layer in range(cfg["num_hidden_layers"]):
        for module in targets:
            out_f, in_f = base_params[base_name(layer, module)].shape
            for which, shape in (("A", (r, in_f)), ("B", (out_f, r))):
                name = peft_name(layer, module, which)
                if name not in arrays:
                    raise InputError("%s: missing %s" % (st_path, name))
                a = arrays.pop(name)
                if tuple(a.shape) != shape:
                    raise InputError("%s: %s has shape %s, expected %s" % (st_path, name, tuple(a.shape), shape))
                adapters[name] = torch.tensor(a, dtype=dtype).requires_grad_(True)
    if arrays:
        raise InputError("%s: tensors outside target_modules %s: %s" % (st_path, targets, sorted(arrays)[:4]))
    return alpha / r, adapters, conf


def write_adapter(path, cfg, base_params, rank, alpha, targets, seed, b_scale, base_model):
    """A seeded adapter folder: A Kaiming-uniform-like (±1/sqrt(in)), B b_scale·N(0, 1)."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for layer in range(cfg["num_hidden_layers"]):
        for module in targets:
            out_f, in_f = base_params[base_name(layer, module)].shape
            bound = 1.0 / math.sqrt(in_f)
            arrays[peft_name(layer, module, "A")] = rng.uniform(-bound, bound, (rank, in_f)).astype(np.float32)
            arrays[peft_name(layer, module, "B")] = (b_scale * rng.standard_normal((out_f, rank))).astype(np.float32)
    os.makedirs(path, exist_ok=True)
    conf = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": rank, "lora_alpha": alpha,
            "target_modules": list(targets), "lora_dropout": 0.0, "bias": "none", "fan_in_fan_out": False,
            "inference_mode": True, "base_model_name_or_path": base_model}
    with open(os.path.join(path, "adapter_config.json"), "w") as f:
        json.dump(conf, f, indent=2)
    st.save(os.path.join(path, "adapter_model.safetensors"), arrays, metadata={"format": "pt"})


# ---------------------------------------------------------------------------------------------
# The model with adapters
# ---------------------------------------------------------------------------------------------

# ---------------------------------------------------------------------------------------------
# Adapter dropout's mask: splitmix64 over (key, layer, projection, element), all in uint64
# ---------------------------------------------------------------------------------------------

_U64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
PROJECTIONS = list(TARGETS)  # the mask's projection numbers: q 0, k 1, v 2, o 3, gate 4, up 5, down 6


def splitmix64(z):
    """splitmix64's output for state z (one Python int, or a numpy uint64 array elementwise)."""
    if isinstance(z, np.ndarray):
        z = z + np.uint64(_GOLDEN)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))
    z = (z + _GOLDEN) & _U64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _U64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _U64
    return z ^ (z >> 31)


def micro_batch_key(seed, step, micro_batch):
    return splitmix64(splitmix64(splitmix64(seed & _U64) ^ (step & _U64)) ^ (micro_batch & _U64))


def projection_stream(key, layer, projection):
    return splitmix64(splitmix64((key ^ (layer & _U64)) & _U64) ^ projection)


def dropout_uniform(stream, count):
    """The draws of elements 0 … count−1 of a projection's stream, float64 in [0, 1)."""
    with np.errstate(over="ignore"):
        idx = np.arange(count, dtype=np.uint64)
        h = splitmix64(np.uint64(stream) + idx * np.uint64(_GOLDEN))
    return (h >> np.uint64(11)).astype(np.float64) * 2.0 ** -53


def keep_mask(key, layer, projection, rows, cols, p):
    """(rows, cols) of 0/1: element (n, j) kept when its draw is ≥ p."""
    u = dropout_uniform(projection_stream(key, layer, projection), rows * cols)
    return (u >= p).reshape(rows, cols)


class _LoraProduct:
    """What torch_model.forward's `n @ W.T` meets for a targeted projection: x·Wᵀ + s·(drop(x)·Aᵀ)·Bᵀ,
    drop(x) = x (no dropout) or x·m/(1−p) with m the mask of (key, layer, projection) over x's rows."""

    def __init__(self, w, a, b, scale, dropout=None):
        self.w, self.a, self.b, self.scale, self.dropout = w, a, b, scale, dropout

    def __rmatmul__(self, x):
        xd = x
        if self.dropout is not None:
            p, key, layer, projection = self.dropout
            rows, cols = int(np.prod(x.shape[:-1])), x.shape[-1]
            m = torch.as_tensor(keep_mask(key, layer, projection, rows, cols, p), dtype=x.dtype).reshape(x.shape)
            xd = x * m / (1.0 - p)
        return x @ self.w.T + self.scale * ((xd @ self.a.T) @ self.b.T)


class LoraWeight:
    """Stands in for a projection's weight in torch_model.forward's parameter dict."""

    def __init__(self, w, a, b, scale, dropout=None):
        self.T = _LoraProduct(w, a, b, scale, dropout)


def adapted_params(cfg, base_params, scale, adapters, dropout=None):
    """The parameter dict forward reads, each targeted projection's weight replaced by its LoRA form.
    dropout: None, or (p, key) — each projection then drops its input with its own mask."""
    params = dict(base_params)
    for layer in range(cfg["num_hidden_layers"]):
        for module in TARGETS:
            a_name = peft_name(layer, module, "A")
            if a_name in adapters:
                name = base_name(layer, module)
                drop = None if not dropout else (dropout[0], dropout[1], layer, PROJECTIONS.index(module))
                params[name] = LoraWeight(base_params[name], adapters[a_name], adapters[peft_name(layer, module, "B")],
                                          scale, drop)
    return params


def masked_loss(logits, targets, mask):
    """Mean cross-entropy over the targets whose mask is 1 (all when mask is None); 0 when none count."""
    ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="none")
    if mask is None:
        return ce.mean(), ce.numel()
    m = mask.reshape(-1).to(ce.dtype)
    count = int(m.sum().item())
    return (ce * m).sum() / max(count, 1), count


def lora_loss(cfg, base_params, scale, adapters, tokens, mask=None, dropout=None):
    """-> (loss, logits, counted targets); tokens [B, T+1], mask [B, T] of 0/1 for the targets."""
    tokens = torch.as_tensor(tokens, dtype=torch.long)
    logits = tm.forward(cfg, adapted_params(cfg, base_params, scale, adapters, dropout), tokens[:, :-1])
    m = None if mask is None else torch.as_tensor(mask)
    loss, count = masked_loss(logits, tokens[:, 1:], m)
    return loss, logits, count


def lora_grads(cfg, base_params, scale, adapters, tokens, mask=None, dropout=None):
    """-> (loss float, logits, counted, {PEFT name: gradient}); dropout: None or (p, key)."""
    loss, logits, count = lora_loss(cfg, base_params, scale, adapters, tokens, mask, dropout)
    names = sorted(adapters)
    grads = torch.autograd.grad(loss, [adapters[n] for n in names], allow_unused=True)
    out = {n: (g if g is not None else torch.zeros_like(adapters[n])) for n, g in zip(names, grads)}
    return loss.item(), logits.detach(), count, out


def load_base(path):
    cfg, params = tm.load_model(path)
    return cfg, {k: v.detach() for k, v in params.items()}  # the base is frozen


def merged_arrays(cfg, base_params, scale, adapters):
    """{HF name: float64 array} of W + s·B·A: what a merged model holds."""
    out = {k: v.numpy().copy() for k, v in base_params.items()}
    for layer in range(cfg["num_hidden_layers"]):
        for module in TARGETS:
            a = adapters.get(peft_name(layer, module, "A"))
            if a is not None:
                b = adapters[peft_name(layer, module, "B")]
                out[base_name(layer, module)] += scale * (b.detach() @ a.detach()).numpy()
    return out


# ---------------------------------------------------------------------------------------------
# Token and mask files
# ---------------------------------------------------------------------------------------------

def read_ids(path):
    """Whitespace-separated non-negative integers, as `anetrain grad --tokens` reads them."""
    try:
        with open(path) as f:
            ids = [int(w) for w in f.read().split()]
    except (OSError, ValueError) as e:
        raise InputError("%s: %s" % (path, e))
    if any(i < 0 for i in ids):
        raise InputError("%s: negative id" % path)
    return np.array(ids, dtype=np.int64)


def batch_shape(n, batch, seq, path):
    """The same rules as anetrain's infer_batch_shape."""
    if n < 2:
        raise InputError("%s: needs at least 2 token ids" % path)
    if batch <= 0 and seq <= 0:
        return 1, n - 1
    if batch <= 0:
        if n % (seq + 1):
            raise InputError("%s: %d ids are not whole rows of T+1 = %d" % (path, n, seq + 1))
        return n // (seq + 1), seq
    if seq <= 0:
        if n % batch or n // batch < 2:
            raise InputError("%s: %d ids cannot be split into %d rows of >= 2" % (path, n, batch))
        return batch, n // batch - 1
    if n != batch * (seq + 1):
        raise InputError("%s: %d ids, but --batch %d --seq %d needs %d" % (path, n, batch, seq, batch * (seq + 1)))
    return batch, seq


def read_tokens(args, vocab):
    ids = read_ids(args.tokens)
    B, T = batch_shape(ids.size, args.batch, args.seq, args.tokens)
    if ids.max() >= vocab:
        raise InputError("%s: token id %d is outside the vocabulary of %d" % (args.tokens, ids.max(), vocab))
    tokens = ids.reshape(B, T + 1)
    mask = None
    if getattr(args, "mask", None):
        m = read_ids(args.mask)
        if m.size != ids.size:
            raise InputError("%s: %d values, but %s holds %d ids (one value per id)" % (args.mask, m.size, args.tokens, ids.size))
        if m.max() > 1:
            raise InputError("%s: values must be 0 or 1" % args.mask)
        mask = m.reshape(B, T + 1)[:, 1:]
    return tokens, mask


# ---------------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------------

def cmd_grad(args):
    cfg, base = load_base(args.model)
    scale, adapters, _ = read_adapter(args.adapter, cfg, base)
    tokens, mask = read_tokens(args, cfg["vocab_size"])
    dropout = (args.dropout, args.dropout_key) if args.dropout > 0 else None
    loss, logits, count, grads = lora_grads(cfg, base, scale, adapters, tokens, mask, dropout)
    out = {n: g.numpy() for n, g in grads.items()}
    out["loss"] = np.array(loss)
    if args.with_logits:
        out["logits"] = logits.numpy()
    st.save(args.out, out, metadata={"format": "pt"})
    print("loss %.10f over %d of %d targets, %d adapter gradients -> %s"
          % (loss, count, tokens.shape[0] * (tokens.shape[1] - 1), len(grads), args.out))
    return 0


def cmd_random_adapter(args):
    cfg, base = load_base(args.model)
    targets = [t for t in args.targets.split(",") if t]
    bad = [t for t in targets if t not in TARGETS]
    if bad or not targets:
        raise InputError("--targets: %s are not among %s" % (bad, ", ".join(TARGETS)))
    alpha = args.alpha if args.alpha is not None else args.rank
    alpha = int(alpha) if float(alpha).is_integer() else alpha  # PEFT writes whole alphas as integers
    write_adapter(args.out, cfg, base, args.rank, alpha, targets, args.seed, args.b_scale, args.model)
    print("wrote %s: r %d, lora_alpha %g, %s" % (args.out, args.rank, alpha, ",".join(targets)))
    return 0


def cmd_merge_check(args):
    cfg, base = load_base(args.model)
    scale, adapters, _ = read_adapter(args.adapter, cfg, base)
    tokens, _ = read_tokens(args, cfg["vocab_size"])
    with torch.no_grad():
        _, logits, _ = lora_loss(cfg, base, scale, adapters, tokens)
    if args.out:
        st.save(args.out, {"logits": logits.numpy()}, metadata={"format": "pt"})
        print("logits %s of base + adapter -> %s" % (tuple(logits.shape), args.out))
    if not args.merged:
        return 0
    mcfg, merged = load_base(args.merged)
    with torch.no_grad():
        mlogits = tm.forward(mcfg, merged, torch.as_tensor(tokens[:, :-1], dtype=torch.long))
    err = (mlogits - logits).abs().max().item() / logits.abs().max().item()
    ok = mlogits.shape == logits.shape and err <= args.tol
    print("merged model %s vs base + adapter: max|diff|/max|logit| = %.3e (tol %.0e): %s"
          % (args.merged, err, args.tol, "PASS" if ok else "FAIL"))
    return 0 if ok else 1


def main(argv=None):
    ap = argparse.ArgumentParser(description="Float64 PyTorch LoRA reference (PEFT layout)")
    sub = ap.add_subparsers(dest="command", required=True)
    g = sub.add_parser("grad", help="loss and adapter gradients")
    m = sub.add_parser("merge-check", help="logits of base + adapter; compare with a merged model")
    for p in (g, m):
        p.add_argument("--model", required=True, help="HF folder (config.json + model.safetensors) or llama2.c .bin")
        p.add_argument("--adapter", required=True, help="PEFT adapter folder")
        p.add_argument("--tokens", required=True, help="B rows of T+1 token ids (whitespace-separated)")
        p.add_argument("--batch", type=int, default=0)
        p.add_argument("--seq", type=int, default=0)
    g.add_argument("--mask", help="one 0/1 per token id, same form as --tokens (a row's first is unused)")
    g.add_argument("--with-logits", action="store_true")
    g.add_argument("--dropout", type=float, default=0.0, help="adapter dropout probability, in [0, 1)")
    g.add_argument("--dropout-key", type=int, default=0, help="the micro-batch key of the dropout masks")
    g.add_argument("-o", "--out", required=True)
    m.add_argument("-o", "--out", help="write the logits here")
    m.add_argument("--merged", help="a merged model whose logits must match")
    m.add_argument("--tol", type=float, default=1e-5)
    r = sub.add_parser("random-adapter", help="write a seeded adapter folder")
    r.add_argument("--model", required=True)
    r.add_argument("-o", "--out", required=True)
    r.add_argument("--rank", type=int, required=True)
    r.add_argument("--alpha", type=float)
    r.add_argument("--targets", default=",".join(TARGETS))
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--b-scale", type=float, default=0.05, help="B's standard deviation (0: PEFT's zero init)")
    args = ap.parse_args(argv)
    fn = {"grad": cmd_grad, "merge-check": cmd_merge_check, "random-adapter": cmd_random_adapter}[args.command]
    try:
        return fn(args)
    except InputError as e:
        print("error: %s" % e, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
