# The PyTorch peer of `anetrain bench train`: eager PyTorch (Debian's python3-torch) training the
# same architecture at the same shape with the same optimizer (AdamW, decoupled decay on matrices,
# global-norm clip 1.0), in fp32 or under bf16 autocast, on the same number of threads.
#
#   python3 pytorch_train.py CONFIG.json --batch B --seq T --steps K --precision fp32|bf16 --threads N
#       [--lora R --lora-alpha A --lora-targets q,k,v,o,gate,up,down] [--recompute none|attention|blocks]
#
# With --lora the base is frozen (requires_grad False) and only low-rank adapters train: each
# targeted projection computes x·Wᵀ + (α/r)·(x·Aᵀ)·Bᵀ (PEFT's form; A Kaiming-uniform, B zero),
# AdamW and the clip over the adapters alone. Under autocast a frozen weight is cast to bf16 at
# every use (autocast caches only the casts of weights that require grad) — as PEFT users get it.
#
# --recompute is torch.utils.checkpoint (non-reentrant) around each block's attention half
# (attention) or each whole block (blocks), as anetrain's --recompute recomputes them.
#
# CONFIG.json is anetrain's model config (`config_to_json`). Prints one JSON line:
#   {"ms": [per-step milliseconds...], "peak_rss_mb": ..., "loss": ...}
# This is what a user of PyTorch 1.13 would write: nn.Linear layers, attention as two matmuls
# around a masked softmax (1.13 has no fused scaled_dot_product_attention), RoPE by cos/sin.
import argparse
import json
import resource
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        x32 = x.float()
        return (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)).type_as(x) * self.weight


def rope_tables(T, hd, theta):
    inv = 1.0 / (theta ** (torch.arange(0, hd, 2).float() / hd))
    ang = torch.outer(torch.arange(T).float(), inv)
    return torch.cos(ang), torch.sin(ang)


def apply_rope(x, cos, sin):  # x (B, H, T, hd), half-split pairs
    h = x.shape[-1] // 2
    x1, x2 = x[..., :h], x[..., h:]
    return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)


class LoraLinear(nn.Module):
    """A frozen nn.Linear with a trainable low-rank adapter beside it."""

    def __init__(self, base, r, alpha):
        super().__init__()
        self.base = base
        self.base.weight.requires_grad_(False)
        self.lora_A = nn.Parameter(torch.empty(r, base.in_features))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r))
        nn.init.kaiming_uniform_(self.lora_A, a=5 ** 0.5)
        self.scale = alpha / r

    def forward(self, x):
        return self.base(x) + F.linear(F.linear(x, self.lora_A), self.lora_B) * self.scale


LORA_TARGETS = {"q": "wq", "k": "wk", "v": "wv", "o": "wo", "gate": "w_gate", "up": "w_up", "down": "w_down"}


def add_adapters(model, r, alpha, targets):
    for p in model.parameters():
        p.requires_grad_(False)
    for b in model.blocks:
        for t in targets:
            setattr(b, LORA_TARGETS[t], LoraLinear(getattr(b, LORA_TARGETS[t]), r, alpha))


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        D, hd, Hq, Hkv, Fh = c["dim"], c["head_dim"], c["n_heads"], c["n_kv_heads"], c["hidden_dim"]
        self.Hq, self.Hkv, self.hd = Hq, Hkv, hd
        self.attn_norm = RMSNorm(D, c["norm_eps"])
        self.wq = nn.Linear(D, Hq * hd, bias=False)
        self.wk = nn.Linear(D, Hkv * hd, bias=False)
        self.wv = nn.Linear(D, Hkv * hd, bias=False)
        self.wo = nn.Linear(Hq * hd, D, bias=False)
        self.qk_norm = c["qk_norm"]
        if self.qk_norm:
            self.q_norm = RMSNorm(hd, c["norm_eps"])
            self.k_norm = RMSNorm(hd, c["norm_eps"])
        self.ffn_norm = RMSNorm(D, c["norm_eps"])
        self.w_gate = nn.Linear(D, Fh, bias=False)
        self.w_up = nn.Linear(D, Fh, bias=False)
        self.w_down = nn.Linear(Fh, D, bias=False)

    def forward(self, x, cos, sin, mask, recompute="none"):
        if recompute == "attention":
            x = checkpoint(self.attention, x, cos, sin, mask, use_reentrant=False)
        else:
            x = self.attention(x, cos, sin, mask)
        n = self.ffn_norm(x)
        return x + self.w_down(F.silu(self.w_gate(n)) * self.w_up(n))

    def attention(self, x, cos, sin, mask):
        B, T, _ = x.shape
        n = self.attn_norm(x)
        q = self.wq(n).view(B, T, self.Hq, self.hd)
        k = self.wk(n).view(B, T, self.Hkv, self.hd)
        v = self.wv(n).view(B, T, self.Hkv, self.hd)
        if self.qk_norm:
            q, k = self.q_norm(q), self.k_norm(k)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if self.Hkv != self.Hq:
            k = k.repeat_interleave(self.Hq // self.Hkv, dim=1)
            v = v.repeat_interleave(self.Hq // self.Hkv, dim=1)
        att = (q @ k.transpose(-2, -1)) * (self.hd ** -0.5)
        att = F.softmax(att.float().masked_fill(mask, float("-inf")), dim=-1).type_as(q)
        y = (att @ v).transpose(1, 2).reshape(B, T, self.Hq * self.hd)
        return x + self.wo(y)


class Model(nn.Module):
    def __init__(self, c, T, recompute="none"):
        super().__init__()
        self.recompute = recompute
        self.emb = nn.Embedding(c["vocab_size"], c["dim"])
        self.blocks = nn.ModuleList(Block(c) for _ in range(c["n_layers"]))
        self.norm = RMSNorm(c["dim"], c["norm_eps"])
        self.head = nn.Linear(c["dim"], c["vocab_size"], bias=False)
        nn.init.normal_(self.emb.weight, std=0.02)  # as anetrain initialises it
        if c["tied_embeddings"]:
            self.head.weight = self.emb.weight
        cos, sin = rope_tables(T, c["head_dim"], c["rope_theta"])
        self.register_buffer("cos", cos)
        self.register_buffer("sin", sin)
        self.register_buffer("mask", torch.triu(torch.ones(T, T, dtype=torch.bool), 1))

    def forward(self, idx, targets):
        x = self.emb(idx)
        for b in self.blocks:
            if self.recompute == "blocks":
                x = checkpoint(b, x, self.cos, self.sin, self.mask, use_reentrant=False)
            else:
                x = b(x, self.cos, self.sin, self.mask, self.recompute)
        logits = self.head(self.norm(x))
        return F.cross_entropy(logits.float().view(-1, logits.shape[-1]), targets.view(-1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("config")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--lora", type=int, default=0)
    ap.add_argument("--lora-alpha", type=float, default=0.0)
    ap.add_argument("--lora-targets", default="q,k,v,o,gate,up,down")
    ap.add_argument("--recompute", choices=["none", "attention", "blocks"], default="none")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    c = json.load(open(a.config))
    model = Model(c, a.seq, a.recompute)
    if a.lora > 0:
        add_adapters(model, a.lora, a.lora_alpha or a.lora, [t for t in a.lora_targets.split(",") if t])
    trained = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in trained if p.dim() >= 2]
    no_decay = [p for p in trained if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=3e-4, betas=(0.9, 0.95), eps=1e-8)
    V = c["vocab_size"]
    idx = torch.randint(0, V, (a.batch, a.seq))
    tgt = torch.randint(0, V, (a.batch, a.seq))
    times, loss = [], None
    for s in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.precision == "bf16"):
            loss = model(idx, tgt)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trained, 1.0)
        opt.step()
        if s >= a.warmup:
            times.append((time.perf_counter() - t0) * 1000.0)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6
    print(json.dumps({"ms": times, "peak_rss_mb": peak, "loss": float(loss), "torch": torch.__version__}))


if __name__ == "__main__":
    main()
