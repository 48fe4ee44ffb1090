# Self-check of lora_reference.py (no anetrain needed), on a tiny Llama and a tiny Qwen3 (GQA,
# QK-norm) written by torch_model.write_hf: with B = 0 the loss and logits are torch_model's for the
# base model; the masked loss is the mean over the counted targets; finite differences in float64
# agree with autograd on adapter entries (unmasked and masked) to 1e-6 of the tensor's largest
# gradient; a merged model's logits equal base + adapter's; `grad` and `merge-check` round trip.
# Adapter dropout: the mask generator gives the literal values tests/unit/test_adapter_dropout.cpp
# asserts of src/core/dropout_mask.h; with dropout, finite differences still agree with autograd
# (the mask is fixed by its key) and each projection is given its own mask.
# Run: /usr/bin/python3 tests/reference/lora_reference_selfcheck.py; exits 1 on failure.
import os
import sys
import tempfile

import numpy as np
import torch_or_skip  # noqa: F401  (off Linux, a missing torch skips the test: exit 77)
import torch
import torch.nn.functional as F

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402
import torch_model as tm  # noqa: E402
from lora_reference import (TARGETS, InputError, load_base, lora_grads, lora_loss, main, merged_arrays,  # noqa: E402
                            peft_name, read_adapter, write_adapter)
import lora_reference as lr  # noqa: E402

FAILS = []


def check(ok, msg):
    print(("PASS " if ok else "FAIL ") + msg, flush=True)
    if not ok:
        FAILS.append(msg)


def fd_check(label, cfg, base, scale, adapters, tokens, mask, per_tensor=3, h=1e-6, seed=0, dropout=None):
    """Central differences of the float64 loss against autograd on a few entries of every adapter
    tensor (its largest-gradient entry among them); error relative to the tensor's largest gradient."""
    rng = np.random.default_rng(seed)
    loss, _, _, grads = lora_grads(cfg, base, scale, adapters, tokens, mask, dropout)
    worst = 0.0
    for name, p in adapters.items():
        g = grads[name].reshape(-1)
        gmax = g.abs().max().item()
        for i in [int(g.abs().argmax())] + list(rng.integers(0, g.numel(), per_tensor - 1)):
            flat = p.data.view(-1)
            orig = flat[i].item()
            with torch.no_grad():
                flat[i] = orig + h
                lp = lora_loss(cfg, base, scale, adapters, tokens, mask, dropout)[0].item()
                flat[i] = orig - h
                lm = lora_loss(cfg, base, scale, adapters, tokens, mask, dropout)[0].item()
                flat[i] = orig
            worst = max(worst, abs((lp - lm) / (2 * h) - g[i].item()) / (gmax + 1e-30))
    check(gmax > 0 and worst < 1e-6, "%s: finite differences on %d adapter tensors x %d entries, loss %.6f, "
          "worst |fd-grad|/max|grad| = %.2e" % (label, len(adapters), per_tensor, loss, worst))


def selfcheck_model(kind, cfg, work):
    model = os.path.join(work, kind)
    tm.write_hf(model, cfg, tm.random_params(cfg, seed=7))
    cfg, base = load_base(model)
    rng = np.random.default_rng(11)
    tokens = rng.integers(0, cfg["vocab_size"], size=(2, 9))
    mask = (rng.random((2, 8)) < 0.6).astype(np.int64)
    mask[0, 0] = 1
    all_targets = ",".join(TARGETS)

    # Zero B: the adapters change nothing, so the loss is torch_model's for the base model.
    zero = os.path.join(work, kind + "-zero")
    write_adapter(zero, cfg, base, 4, 8.0, list(TARGETS), seed=3, b_scale=0.0, base_model=model)
    scale, adapters, _ = read_adapter(zero, cfg, base)
    ref_loss, ref_logits = tm.loss_fn(cfg, base, tokens)
    loss, logits, _, grads = lora_grads(cfg, base, scale, adapters, tokens)
    check(abs(loss - ref_loss.item()) <= 1e-12 * abs(ref_loss.item()) and
          (logits - ref_logits.detach()).abs().max().item() <= 1e-12,
          "%s: B = 0 gives torch_model's loss %.10f (got %.10f) and logits" % (kind, ref_loss.item(), loss))
    a_zero = all(grads[n].abs().max().item() == 0 for n in grads if n.endswith("lora_A.weight"))
    b_live = all(grads[n].abs().max().item() > 0 for n in grads if n.endswith("lora_B.weight"))
    check(a_zero and b_live, "%s: B = 0: every A gradient is 0, every B gradient is not" % kind)

    # The masked loss: the mean of the counted targets' cross-entropies, by hand.
    ce = F.cross_entropy(ref_logits.detach().reshape(-1, cfg["vocab_size"]),
                         torch.as_tensor(tokens[:, 1:]).reshape(-1), reduction="none")
    by_hand = (ce[torch.as_tensor(mask.reshape(-1)) == 1]).mean().item()
    got = lora_loss(cfg, base, scale, adapters, tokens, mask)[0].item()
    check(abs(got - by_hand) <= 1e-12 * by_hand, "%s: masked loss %.10f = mean of the counted targets %.10f"
          % (kind, got, by_hand))
    got_none = lora_loss(cfg, base, scale, adapters, tokens, np.zeros_like(mask))
    check(got_none[0].item() == 0.0 and got_none[2] == 0, "%s: a mask with no counted target gives loss 0" % kind)

    # Nonzero B: finite differences, unmasked and masked, on every target kind.
    live = os.path.join(work, kind + "-live")
    write_adapter(live, cfg, base, 3, 6.0, list(TARGETS), seed=5, b_scale=0.05, base_model=model)
    scale, adapters, conf = read_adapter(live, cfg, base)
    check(scale == 2.0 and conf["target_modules"] == all_targets.split(","), "%s: adapter folder round trip" % kind)
    fd_check(kind + " LoRA", cfg, base, scale, adapters, tokens, None)
    fd_check(kind + " LoRA, masked", cfg, base, scale, adapters, tokens, mask, seed=1)
    dropout_check(kind, cfg, base, scale, adapters, tokens)

    # A merged model (W + s·B·A written as an HF folder) gives base + adapter's logits.
    merged = os.path.join(work, kind + "-merged")
    tm.write_hf(merged, cfg, {k: v.astype(np.float32) for k, v in merged_arrays(cfg, base, scale, adapters).items()})
    # float32 storage of the merged weights is the only difference: compare with base + adapter
    # in float32-rounded form too, so the check is of the algebra, not of the rounding.
    mcfg, mbase = load_base(merged)
    with torch.no_grad():
        want = lora_loss(cfg, base, scale, adapters, tokens)[1]
        exact = tm.forward(cfg, {k: torch.tensor(v) for k, v in merged_arrays(cfg, base, scale, adapters).items()},
                           torch.as_tensor(tokens[:, :-1]))
        stored = tm.forward(mcfg, mbase, torch.as_tensor(tokens[:, :-1]))
    e_exact = (exact - want).abs().max().item() / want.abs().max().item()
    e_stored = (stored - want).abs().max().item() / want.abs().max().item()
    check(e_exact <= 1e-12 and e_stored <= 1e-5, "%s: merged weights' logits = base + adapter's (float64 %.1e, "
          "stored float32 %.1e)" % (kind, e_exact, e_stored))

    # The command line, end to end: grad and merge-check read the files the tests will use.
    tok_path, mask_path, out = (os.path.join(work, kind + n) for n in (".tokens", ".mask", ".safetensors"))
    with open(tok_path, "w") as f:
        f.write("\n".join(" ".join(str(t) for t in row) for row in tokens) + "\n")
    with open(mask_path, "w") as f:
        f.write("\n".join(" ".join(str(t) for t in [0] + list(row)) for row in mask) + "\n")
    rc = main(["grad", "--model", model, "--adapter", live, "--tokens", tok_path, "--mask", mask_path, "--batch", "2",
               "-o", out])
    saved = st.load(out)
    loss_m, _, _, grads_m = lora_grads(cfg, base, scale, adapters, tokens, mask)
    same = set(saved) == set(grads_m) | {"loss"} and all(
        np.array_equal(saved[n], grads_m[n].numpy().astype(np.float32)) for n in grads_m)
    check(rc == 0 and same and abs(float(saved["loss"]) - loss_m) <= 1e-7 * loss_m,
          "%s: grad writes loss and %d gradients under PEFT names" % (kind, len(grads_m)))
    rc = main(["merge-check", "--model", model, "--adapter", live, "--tokens", tok_path, "--batch", "2",
               "--merged", merged])
    check(rc == 0, "%s: merge-check of the merged folder passes" % kind)


def mask_values_check():
    """The generator's values for fixed inputs: the same literals the C++ unit test asserts."""
    key = lr.micro_batch_key(42, 7, 3)
    stream = lr.projection_stream(key, 2, 5)
    want = [float.fromhex(h) for h in ("0x1.5d5c1aed86e7cp-3", "0x1.8b37aa74101dep-2", "0x1.b6c682fc9e1c8p-3",
                                       "0x1.ac771a00614f8p-4")]
    ok = (lr.splitmix64(0) == 0xE220A8397B1DCDAF and key == 17680642119211242809 and stream == 3431889319213704408
          and list(lr.dropout_uniform(stream, 4)) == want
          and lr.projection_stream(lr.micro_batch_key(0, 1, 0), 0, 0) == 17990875778844135198)
    check(ok, "dropout mask: splitmix64, keys, streams and draws equal core/dropout_mask.h's known values")


def dropout_check(kind, cfg, base, scale, adapters, tokens):
    """Dropout at p = 0 is no dropout; at p > 0 it changes the loss, each projection draws its own
    mask, and the gradients are still the loss's (finite differences with the mask held by its key)."""
    plain = lora_loss(cfg, base, scale, adapters, tokens)[0].item()
    zero = lora_loss(cfg, base, scale, adapters, tokens, None, (0.0, 5))[0].item()
    dropped = lora_loss(cfg, base, scale, adapters, tokens, None, (0.3, 5))[0].item()
    check(zero == plain and dropped != plain, "%s: dropout p = 0 gives the plain loss %.10f; p = 0.3 gives %.10f"
          % (kind, plain, dropped))
    q, k = lr.keep_mask(5, 1, 0, 16, cfg["hidden_size"], 0.3), lr.keep_mask(5, 1, 1, 16, cfg["hidden_size"], 0.3)
    check((q != k).any() and 0 < q.mean() < 1, "%s: q and k (one input) get different masks" % kind)
    fd_check(kind + " LoRA, dropout 0.3", cfg, base, scale, adapters, tokens, None, seed=2, dropout=(0.3, 5))


def selfcheck():
    torch.manual_seed(0)
    mask_values_check()
    st._selftest()
    llama = tm.make_cfg(model_type="llama", hidden_size=24, intermediate_size=40, num_hidden_layers=2,
                        num_attention_heads=4, num_key_value_heads=2, vocab_size=19, tie_word_embeddings=False)
    qwen3 = tm.make_cfg(model_type="qwen3", hidden_size=16, intermediate_size=24, num_hidden_layers=2,
                        num_attention_heads=4, num_key_value_heads=2, head_dim=6, vocab_size=23,
                        rms_norm_eps=1e-6, rope_theta=1e6, tie_word_embeddings=True)
    with tempfile.TemporaryDirectory() as work:
        selfcheck_model("llama", llama, work)
        selfcheck_model("qwen3", qwen3, work)
        # A bad adapter is refused naming the file and the tensor.
        bad = os.path.join(work, "llama-live")
        arrays = st.load(os.path.join(bad, "adapter_model.safetensors"))
        arrays.pop(peft_name(1, "down_proj", "B"))
        st.save(os.path.join(bad, "adapter_model.safetensors"), arrays)
        try:
            read_adapter(bad, *load_base(os.path.join(work, "llama")))
            check(False, "a missing adapter tensor is refused")
        except InputError as e:
            check("down_proj.lora_B" in str(e) and "adapter_model.safetensors" in str(e),
                  "a missing adapter tensor is refused: %s" % e)
    print("LORA REFERENCE SELFCHECK: %s" % ("PASS" if not FAILS else "FAIL (%d)" % len(FAILS)))
    return 0 if not FAILS else 1


if __name__ == "__main__":
    sys.exit(selfcheck())
