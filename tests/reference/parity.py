# Parity driver: runs anetrain on a tiny model and compares loss/logits/gradients or AdamW results
# against the float64 PyTorch reference. Used by CTest:
#   /usr/bin/python3 tests/reference/parity.py --anetrain BIN --case {llama,qwen3,stories260k,adamw}
#       --assets ../shared/assets --workdir TMPDIR        (exit 0 = pass; --ref-only skips the binary)
import argparse
import math
import os
import subprocess
import sys

import numpy as np
import torch_or_skip  # noqa: F401  (off Linux, a missing torch skips the test: exit 77)
import torch

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import st  # noqa: E402
import tok512  # noqa: E402
import torch_model as tm  # noqa: E402

SENTENCE = ("Once upon a time, there was a little girl named Lily. "
            "She loved to play outside in the park with her friends.")
ADAMW = dict(steps=20, lr=1e-3, min_lr=1e-4, warmup=5, wd=0.1, beta1=0.9, beta2=0.95,
             eps=1e-8, clip=1.4, accum=2)
# clip 1.4: the grad norm falls from ~1.68 to ~1.18 over the run, so steps 0-4 are
# clipped and 5-19 are not (margins >= 3%); both branches get exercised.


def llama_cfg():
    return tm.make_cfg(model_type="llama", hidden_size=48, intermediate_size=80, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=4, vocab_size=67,
                       rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False)


def qwen3_cfg():
    return tm.make_cfg(model_type="qwen3", hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, head_dim=24, vocab_size=71,
                       rms_norm_eps=1e-6, rope_theta=1e6, tie_word_embeddings=True)


def write_tokens(path, rows):
    with open(path, "w") as f:
        for r in rows:
            f.write(" ".join(str(int(t)) for t in r) + "\n")


def setup(case, assets, workdir):
    """Build the model/tokens for a case -> (model_path, tokens [rows, T+1], batch)."""
    if case == "stories260k":
        tok = tok512.Tokenizer(os.path.join(assets, "llama2c", "tok512.bin"))
        return os.path.join(assets, "llama2c", "stories260K.bin"), np.array([tok.encode(SENTENCE)]), 1
    cfg = qwen3_cfg() if case == "qwen3" else llama_cfg()
    seed = {"llama": 1234, "qwen3": 4321, "adamw": 1234}[case]
    model = os.path.join(workdir, "model")
    tm.write_hf(model, cfg, tm.random_params(cfg, seed))
    rows = 4 if case == "adamw" else 2
    tokens = np.random.default_rng(seed + 1).integers(0, cfg["vocab_size"], size=(rows, 17))
    return model, tokens, 2


def run_binary(argv):
    print("$ " + " ".join(argv), flush=True)
    try:
        r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600)
    except OSError as e:
        print("ERROR: could not run anetrain: %s" % e)
        return False
    out = r.stdout.decode("utf-8", "replace")
    print(out[-4000:], end="" if out.endswith("\n") or not out else "\n")
    if r.returncode != 0:
        print("ERROR: anetrain exited with status %d" % r.returncode)
    return r.returncode == 0


def compare(rows, ours, ref, tol, name_kind):
    """Compare tensors by max|ours-ref| <= tol * max|ref|; rows collects table lines."""
    ok = True
    if set(ours) != set(ref):
        print("ERROR: %s names differ: missing %s, unexpected %s"
              % (name_kind, sorted(set(ref) - set(ours)), sorted(set(ours) - set(ref))))
        ok = False
    for name in sorted(set(ours) & set(ref)):
        a, b = np.asarray(ours[name], np.float64), np.asarray(ref[name], np.float64)
        if a.shape != b.shape:
            rows.append((name, float("nan"), float("nan"), float("nan"), "BAD SHAPE %s != %s" % (a.shape, b.shape)))
            ok = False
            continue
        err = float(np.max(np.abs(a - b))) if a.size else 0.0
        scale = float(np.max(np.abs(b))) if b.size else 0.0
        ratio = err / scale if scale > 0 else (0.0 if err == 0 else math.inf)
        good = bool(np.all(np.isfinite(a))) and ratio <= tol
        rows.append((name, err, scale, ratio, "ok" if good else "FAIL (tol %.0e)" % tol))
        ok = ok and good
    return ok


def print_table(rows):
    w = max([len(r[0]) for r in rows] + [4])
    print("%-*s  %12s  %12s  %10s" % (w, "name", "max|err|", "max|ref|", "ratio"))
    for name, err, scale, ratio, status in rows:
        print("%-*s  %12.4e  %12.4e  %10.3e  %s" % (w, name, err, scale, ratio, status))


def grad_case(args, model, tokens, batch):
    ok = grad_compare(args, model, tokens, batch, None)
    # A loss mask as prepare --chat writes them: an uneven run of counted targets per row, and one
    # row's first half not counted at all.
    mask = np.zeros(tokens.shape, dtype=np.int64)
    for b in range(tokens.shape[0]):
        mask[b, 1 + b % 3::2] = 1
    mask[0, : tokens.shape[1] // 2] = 0
    print("with a loss mask (%d of %d targets count):" % (int(mask[:, 1:].sum()), mask[:, 1:].size))
    return grad_compare(args, model, tokens, batch, mask) and ok


def grad_compare(args, model, tokens, batch, mask):
    cfg, params = tm.load_model(model)
    loss, logits, grads = tm.loss_and_grads(cfg, params, tokens, mask)
    print("reference: loss %.8f, logits %s, %d gradients" % (loss, tuple(logits.shape), len(grads)))
    if args.ref_only:
        return True
    tok_path, out = os.path.join(args.workdir, "tokens.txt"), os.path.join(args.workdir, "out.safetensors")
    write_tokens(tok_path, tokens)
    seq = tokens.shape[1] - 1
    extra = []
    if mask is not None:
        extra = ["--mask", os.path.join(args.workdir, "mask.txt")]
        write_tokens(extra[1], mask)
    if not run_binary([args.anetrain, "grad", model, "--tokens", tok_path, "--batch", str(batch),
                       "--seq", str(seq), "-o", out] + extra):
        return False
    got = st.load(out)
    for key in ("loss", "logits"):
        if key not in got:
            print("ERROR: output lacks %r" % key)
            return False
    rows = []
    ok = compare(rows, {k: got.pop(k) for k in ("loss", "logits")},
                  {"loss": np.array(loss), "logits": logits.numpy()}, 1e-4, "output")
    ok &= compare(rows, got, {k: v.numpy() for k, v in grads.items()}, 1e-4, "gradient")
    print_table(rows)
    return ok


def lr_at(s, h):
    if s < h["warmup"]:
        return h["lr"] * (s + 1) / h["warmup"]
    frac = (s - h["warmup"]) / (h["steps"] - h["warmup"])
    return h["min_lr"] + 0.5 * (1 + math.cos(math.pi * frac)) * (h["lr"] - h["min_lr"])


def adamw_reference(cfg, params, tokens, batch, h):
    names = list(params)
    decay = [params[n] for n in names if params[n].dim() >= 2]
    no_decay = [params[n] for n in names if params[n].dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": h["wd"]},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=h["lr"], betas=(h["beta1"], h["beta2"]), eps=h["eps"])
    losses, norms = [], []
    for s in range(h["steps"]):
        opt.zero_grad(set_to_none=True)
        total = 0.0
        for m in range(h["accum"]):
            loss, _ = tm.loss_fn(cfg, params, tokens[m * batch:(m + 1) * batch])
            (loss / h["accum"]).backward()
            total += loss.item() / h["accum"]
        norm = torch.nn.utils.clip_grad_norm_([params[n] for n in names], h["clip"]).item()
        for g in opt.param_groups:
            g["lr"] = lr_at(s, h)
        opt.step()
        losses.append(total)
        norms.append(norm)
    return np.array(losses), norms


def adamw_case(args, model, tokens, batch):
    h = dict(ADAMW, clip=args.clip if args.clip is not None else ADAMW["clip"])
    cfg, params = tm.load_model(model)
    losses, norms = adamw_reference(cfg, params, tokens, batch, h)
    for s, (l, n) in enumerate(zip(losses, norms)):
        print("step %2d  lr %.6e  loss %.8f  grad-norm %.5f%s" % (
            s, lr_at(s, h), l, n, "  (clipped)" if n > h["clip"] else ""))
    clipped = sum(n > h["clip"] for n in norms)
    print("clipping triggered on %d of %d steps (clip %g)" % (clipped, h["steps"], h["clip"]))
    if args.ref_only:
        return clipped > 0
    tok_path, out = os.path.join(args.workdir, "tokens.txt"), os.path.join(args.workdir, "out.safetensors")
    write_tokens(tok_path, tokens)
    argv = [args.anetrain, "fit-batch", model, "--tokens", tok_path, "--batch", str(batch),
            "--seq", str(tokens.shape[1] - 1), "--accum", str(h["accum"]), "--steps", str(h["steps"]),
            "--lr", repr(h["lr"]), "--min-lr", repr(h["min_lr"]), "--warmup", str(h["warmup"]),
            "--wd", repr(h["wd"]), "--beta1", repr(h["beta1"]), "--beta2", repr(h["beta2"]),
            "--eps", repr(h["eps"]), "--clip", repr(h["clip"]), "-o", out]
    if not run_binary(argv):
        return False
    got = st.load(out)
    if "losses" not in got:
        print("ERROR: output lacks 'losses'")
        return False
    got_losses = got.pop("losses")
    rows = []
    ok = compare(rows, got, {k: v.detach().numpy() for k, v in params.items()}, 1e-5, "weight")
    if got_losses.shape != losses.shape:
        print("ERROR: losses shape %s, expected %s" % (got_losses.shape, losses.shape))
        return False
    rel = np.abs(got_losses - losses) / np.abs(losses)
    good = bool(np.all(np.isfinite(got_losses))) and float(rel.max()) <= 1e-5
    rows.append(("losses (per-step relative)", float(np.abs(got_losses - losses).max()),
                 float(np.abs(losses).max()), float(rel.max()), "ok" if good else "FAIL (tol 1e-05)"))
    print_table(rows)
    return ok and good and clipped > 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--anetrain", help="path to the anetrain binary")
    ap.add_argument("--case", required=True, choices=["llama", "qwen3", "stories260k", "adamw"])
    ap.add_argument("--assets", default=os.path.join(HERE, "..", "..", "..", "shared", "assets"))
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--ref-only", action="store_true", help="only compute the reference")
    ap.add_argument("--clip", type=float, help="override the adamw clip value")
    args = ap.parse_args()
    if not args.ref_only:
        if not args.anetrain or not os.path.isfile(args.anetrain) or not os.access(args.anetrain, os.X_OK):
            print("ERROR: anetrain binary not found or not executable: %r "
                  "(build it first and pass --anetrain PATH)" % args.anetrain)
            return 2
        args.anetrain = os.path.abspath(args.anetrain)
    os.makedirs(args.workdir, exist_ok=True)
    torch.manual_seed(0)
    model, tokens, batch = setup(args.case, args.assets, args.workdir)
    fn = adamw_case if args.case == "adamw" else grad_case
    ok = fn(args, model, tokens, batch)
    print("PARITY %s: %s" % (args.case, "PASS" if ok else "FAIL"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
