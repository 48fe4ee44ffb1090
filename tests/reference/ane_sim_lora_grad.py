# LoRA adapter gradients of the ane-sim backend against the cpu backend (fp32, itself held to
# float64 PyTorch by lora_parity.py), through `anetrain grad MODEL --lora ADAPTER`:
#   - stories260K.bin on real text encoded with tok512.bin (2 sequences of 64 tokens);
#   - a tiny Llama (parity.llama_cfg) and a tiny Qwen3 (GQA 4/2, head_dim 24, QK-norm, θ 1e6),
#     random weights, 2 sequences of 32 tokens.
# Each adapter: rank 4, alpha 8, on all seven projections, B nonzero (lora_reference.write_adapter).
# Bounds, those of the full-model ane_sim_grad.py: loss within 1e-2 relative; every adapter
# gradient with cosine ≥ 0.999 and ‖g_ane − g_cpu‖ ≤ 2% of ‖g_cpu‖. And the ane-sim gradients are
# not the cpu's bits, so the programs computed them (a stage fallen back to the host would be).
# With adapter dropout (`--lora-dropout 0.25 --dropout-key K`, tiny Qwen3) the same bounds against
# cpu under the same masks; there the adapted stages run on the host (docs/fine-tuning.md), and the
# loss must differ from the undropped one (the masks reached the ane backend's stages).
#   /usr/bin/python3 tests/reference/ane_sim_lora_grad.py --anetrain BIN --assets DIR --workdir DIR
import argparse
import os
import sys

import numpy as np

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ane_sim_grad  # noqa: E402
import parity  # noqa: E402
import st  # noqa: E402
import torch_model as tm  # noqa: E402
from lora_reference import load_base, write_adapter  # noqa: E402

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def grads(args, model, adapter, tokens, backend, tag, extra=()):
    tok_path = os.path.join(args.workdir, tag + "_tokens.txt")
    out = os.path.join(args.workdir, "%s_%s.safetensors" % (tag, backend))
    parity.write_tokens(tok_path, tokens)
    argv = [args.anetrain, "grad", model, "--lora", adapter, "--tokens", tok_path, "--batch", str(len(tokens)),
            "--seq", str(tokens.shape[1] - 1), "--backend", backend, "-o", out, *extra]
    if not parity.run_binary(argv):
        sys.exit("FAIL %s: anetrain grad failed" % tag)
    return st.load(out)


def one_case(args, tag, model, tokens):
    cfg, base = load_base(model)
    adapter = os.path.join(args.workdir, tag + "_adapter")
    write_adapter(adapter, cfg, {k: v.numpy() for k, v in base.items()}, rank=4, alpha=8.0, targets=TARGETS,
                  seed=17, b_scale=0.05, base_model=model)
    cpu = grads(args, model, adapter, tokens, "cpu", tag)
    ane = grads(args, model, adapter, tokens, "ane-sim", tag)
    names = sorted(n for n in cpu if n not in ("loss", "logits"))
    failures = 0
    if len(names) != 2 * len(TARGETS) * cfg["num_hidden_layers"] or any("lora_" not in n for n in names):
        print("FAIL %s: expected only the adapters' gradients, got %s" % (tag, names))
        failures += 1
    if all(np.array_equal(cpu[n], ane[n]) for n in names):
        print("FAIL %s: ane-sim's gradients are the cpu's bits: no program computed them" % tag)
        failures += 1
    return failures + ane_sim_grad.compare(tag, cpu, ane)


def dropout_case(args, tag, model, tokens):
    """The adapter one_case wrote, with dropout: ane-sim within the same bounds of cpu."""
    adapter = os.path.join(args.workdir, tag + "_adapter")
    drop = ["--lora-dropout", "0.25", "--dropout-key", "99"]
    cpu = grads(args, model, adapter, tokens, "cpu", tag + "_dropout", drop)
    ane = grads(args, model, adapter, tokens, "ane-sim", tag + "_dropout", drop)
    plain = grads(args, model, adapter, tokens, "ane-sim", tag)
    failures = 0
    if float(ane["loss"]) == float(plain["loss"]):
        print("FAIL %s: ane-sim's loss with dropout is the loss without it" % tag)
        failures += 1
    return failures + ane_sim_grad.compare(tag + " dropout 0.25", cpu, ane)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--anetrain", required=True)
    ap.add_argument("--assets", required=True)
    ap.add_argument("--workdir", required=True)
    args = ap.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    failures = 0

    failures += one_case(args, "stories260k", os.path.join(args.assets, "llama2c", "stories260K.bin"),
                         ane_sim_grad.war_and_peace_rows(args.assets))

    for tag, cfg, seed in (("llama", parity.llama_cfg(), 1234), ("qwen3", parity.qwen3_cfg(), 4321)):
        model = os.path.join(args.workdir, tag)
        tm.write_hf(model, cfg, tm.random_params(cfg, seed))
        tokens = np.random.default_rng(seed + 1).integers(0, cfg["vocab_size"], size=(2, 33))
        failures += one_case(args, tag, model, tokens)
        if tag == "qwen3":
            failures += dropout_case(args, tag, model, tokens)
    print("PASS" if failures == 0 else "FAIL: %d" % failures)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
