# Self-checks of the PyTorch reference itself (no anetrain needed): finite-difference gradients,
# half vs interleaved RoPE equivalence on stories260K, and greedy decoding of stories260K.
# Run: /usr/bin/python3 tests/reference/selfcheck.py [--assets ../shared/assets]; exits 1 on failure.
import argparse
import os
import sys
import tempfile

import numpy as np
import torch_or_skip  # noqa: F401  (off Linux, a missing torch skips the test: exit 77)
import torch

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import st  # noqa: E402
import tok512  # noqa: E402
import torch_model as tm  # noqa: E402

FAILS = []


def check(ok, msg):
    print(("PASS " if ok else "FAIL ") + msg)
    if not ok:
        FAILS.append(msg)


def tiny_llama():
    return tm.make_cfg(model_type="llama", hidden_size=24, intermediate_size=40, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, vocab_size=19,
                       rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False)


def tiny_qwen3():
    return tm.make_cfg(model_type="qwen3", hidden_size=16, intermediate_size=24, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, head_dim=6, vocab_size=23,
                       rms_norm_eps=1e-6, rope_theta=1e6, tie_word_embeddings=True)


def fd_check(label, cfg, params, tokens, per_tensor=3, h=1e-6, seed=0):
    """Central differences on the float64 loss vs autograd, a few entries of every tensor."""
    rng = np.random.default_rng(seed)
    loss, _, grads = tm.loss_and_grads(cfg, params, tokens)
    worst = 0.0
    for name, p in params.items():
        g = grads[name].reshape(-1)
        gmax = g.abs().max().item()
        # the largest entry plus random ones, so both big and typical values are hit
        idx = [int(g.abs().argmax())] + list(rng.integers(0, g.numel(), per_tensor - 1))
        for i in idx:
            flat = p.data.view(-1)
            orig = flat[i].item()
            with torch.no_grad():
                flat[i] = orig + h
                lp = tm.loss_fn(cfg, params, tokens)[0].item()
                flat[i] = orig - h
                lm = tm.loss_fn(cfg, params, tokens)[0].item()
                flat[i] = orig
            fd = (lp - lm) / (2 * h)
            err = abs(fd - g[i].item()) / (gmax + 1e-12)
            worst = max(worst, err)
            if err > 1e-6:
                print("   %s[%d]: fd %.10e autograd %.10e" % (name, i, fd, g[i].item()))
    check(worst < 1e-6, "%s: finite differences, %d tensors x %d entries, loss %.6f, "
          "worst |fd-grad|/max|grad| = %.2e" % (label, len(params), per_tensor, loss, worst))


def permute_to_half(cfg, params):
    """Copy of an interleaved (Meta/llama2.c) model with q/k rows permuted for the half RoPE."""
    hd = cfg["head_dim"]
    out = {}
    for name, p in params.items():
        t = p.detach().clone()
        if name.endswith("q_proj.weight") or name.endswith("k_proj.weight"):
            H = t.shape[0] // hd
            # new row h*hd + s*hd/2 + p  <-  old row h*hd + 2p + s
            t = t.view(H, hd // 2, 2, -1).transpose(1, 2).reshape(t.shape)
        out[name] = t.requires_grad_(True)
    return out, dict(cfg, rope_style="half")


def complex_rope(x, theta):
    """Meta-style interleaved RoPE via complex multiplication: an independent formulation."""
    B, T, H, hd = x.shape
    inv = 1.0 / theta ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd)
    rot = torch.polar(torch.ones(T, hd // 2, dtype=torch.float64), torch.outer(torch.arange(T).double(), inv))
    xc = torch.view_as_complex(x.reshape(B, T, H, hd // 2, 2).contiguous())
    return torch.view_as_real(xc * rot[None, :, None, :]).reshape(B, T, H, hd)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--assets", default=os.path.join(HERE, "..", "..", "..", "shared", "assets"))
    args = ap.parse_args()
    torch.manual_seed(0)
    bin_path = os.path.join(args.assets, "llama2c", "stories260K.bin")
    tok_path = os.path.join(args.assets, "llama2c", "tok512.bin")

    # safetensors and tokenizer self-tests
    st._selftest()
    tok512._selftest(tok_path)
    tok = tok512.Tokenizer(tok_path)

    # write_hf -> load_model must round-trip exactly (parity relies on it)
    cfg = tiny_qwen3()
    arrays = tm.random_params(cfg, seed=1)
    with tempfile.TemporaryDirectory() as d:
        tm.write_hf(d, cfg, arrays)
        cfg2, params = tm.load_model(d)
    same = all(np.array_equal(params[k].detach().numpy(), arrays[k].astype(np.float64)) for k in arrays)
    check(same and {k: v for k, v in cfg2.items()} == cfg, "write_hf/load_model round trip (qwen3, tied)")

    # RoPE: both conventions vs independent formulations
    x = torch.randn(2, 5, 3, 8, dtype=torch.float64)
    r_int = tm._rope(x, dict(rope_theta=10000.0, rope_style="interleaved"))
    d1 = (r_int - complex_rope(x, 10000.0)).abs().max().item()
    check(d1 < 1e-13, "interleaved RoPE == complex formulation (max diff %.1e)" % d1)
    perm = torch.tensor([2 * p + s for s in range(2) for p in range(4)])
    r_half = tm._rope(x[..., perm], dict(rope_theta=10000.0, rope_style="half"))
    d2 = (r_half - r_int[..., perm]).abs().max().item()
    check(d2 < 1e-13, "half RoPE == interleaved RoPE under the HF permutation (max diff %.1e)" % d2)

    # (i) finite differences
    rng = np.random.default_rng(3)
    for label, cfg in (("tiny llama", tiny_llama()), ("tiny qwen3", tiny_qwen3())):
        params = tm._to_params(tm.random_params(cfg, seed=7), cfg, torch.float64)
        toks = rng.integers(0, cfg["vocab_size"], size=(2, 7))
        fd_check(label, cfg, params, toks)
    cfg, params = tm.load_model(bin_path)
    toks = [tok.encode("Once upon a time, there was a cat.")]
    fd_check("stories260K (interleaved, tied)", cfg, params, toks, per_tensor=2)

    # (ii) interleaved original vs HF-permuted copy with the half convention
    check(cfg["rope_style"] == "interleaved" and cfg["tie_word_embeddings"]
          and (cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"],
               cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["vocab_size"])
          == (64, 172, 5, 8, 4, 512), "stories260K header: %s" % {k: cfg[k] for k in
          ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
           "num_key_value_heads", "vocab_size", "head_dim")})
    toks = [tok.encode("Once upon a time, there was a little girl named Lily. She loved to play.")]
    loss_a, logits_a, grads_a = tm.loss_and_grads(cfg, params, toks)
    pparams, pcfg = permute_to_half(cfg, params)
    loss_b, logits_b, grads_b = tm.loss_and_grads(pcfg, pparams, toks)
    dl = (logits_a - logits_b).abs().max().item()
    check(dl < 1e-10, "stories260K interleaved vs HF-permuted+half: max logit diff %.2e "
          "(max|logit| %.2f), loss %.12f vs %.12f" % (dl, logits_a.abs().max().item(), loss_a, loss_b))
    # gradients of the permuted copy are the permuted gradients
    gperm, _ = permute_to_half(cfg, grads_a)
    dg = max((gperm[k] - grads_b[k]).abs().max().item() for k in grads_b)
    check(dg < 1e-12, "stories260K permuted gradients agree (max diff %.2e)" % dg)

    # (iii) greedy decoding from BOS
    seq = [tok512.BOS]
    with torch.no_grad():
        for _ in range(20):
            logits = tm.forward(cfg, params, torch.tensor([seq]))
            seq.append(int(logits[0, -1].argmax()))
    text = tok.decode(seq[1:], prev=tok512.BOS)
    print("greedy ids:", seq)
    print("greedy text: %r" % text)
    check(text.startswith("Once upon a time"), "stories260K greedy text starts with 'Once upon a time'")
    check(text.startswith("Once upon a time, there was a little girl named Lily"),
          "stories260K greedy text matches llama2.c's known greedy opening")

    print("\n%d failure(s)" % len(FAILS))
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
