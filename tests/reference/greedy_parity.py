# Greedy decoding parity: `anetrain generate --ids -t 0` (KV cache) versus a float64 PyTorch
# loop that recomputes the full forward pass for every new token, on the real stories260K and on
# a tiny random Qwen3 (GQA, QK-norm, head_dim != dim/heads). Token ids must be identical.
# Run: /usr/bin/python3 tests/reference/greedy_parity.py --anetrain BIN --assets DIR --workdir DIR
import argparse
import os
import subprocess
import sys

import torch_or_skip  # noqa: F401  (off Linux, a missing torch skips the test: exit 77)
import torch

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import tok512  # noqa: E402
import torch_model as tm  # noqa: E402

STEPS = 80  # past 64, so a cache bug that only shows late cannot hide


def torch_greedy(cfg, params, prompt, steps):
    ids = list(prompt)
    with torch.no_grad():
        for _ in range(steps):
            logits = tm.forward(cfg, params, torch.tensor([ids]))
            ids.append(int(torch.argmax(logits[0, -1])))
    return ids


def ours(binary, model, prompt, steps):
    out = subprocess.run([binary, "generate", model, "--ids", "-i", " ".join(map(str, prompt)), "-t", "0",
                          "-n", str(steps)], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit("anetrain generate failed: " + out.stderr)
    return [int(x) for x in out.stdout.split()]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--anetrain", required=True)
    ap.add_argument("--assets", required=True)
    ap.add_argument("--workdir", required=True)
    a = ap.parse_args()
    os.makedirs(a.workdir, exist_ok=True)
    cases = []
    tok = tok512.Tokenizer(os.path.join(a.assets, "llama2c", "tok512.bin"))
    stories = os.path.join(a.assets, "llama2c", "stories260K.bin")
    cases.append(("stories260K", stories, tok.encode("Once upon a time, there was a", bos=True)))
    cfg = tm.make_cfg(model_type="qwen3", hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, head_dim=24, vocab_size=71,
                      rms_norm_eps=1e-6, rope_theta=1e6, tie_word_embeddings=True, max_position_embeddings=256)
    qwen = os.path.join(a.workdir, "qwen3")
    # Sharpened weights (×8): at the default scale a random model repeats one token forever, which
    # would make the comparison blind to position and cache bugs.
    weights = {k: (v * 8.0 if v.ndim == 2 else v) for k, v in tm.random_params(cfg, 99).items()}
    tm.write_hf(qwen, cfg, weights)
    cases.append(("tiny qwen3", qwen, [5, 17, 3, 60, 22, 9, 41]))
    failed = False
    for name, model, prompt in cases:
        cfg_t, params = tm.load_model(model)
        want = torch_greedy(cfg_t, params, prompt, STEPS)
        got = ours(a.anetrain, model, prompt, STEPS)
        same = got == want
        first_diff = next((i for i, (x, y) in enumerate(zip(got, want)) if x != y), None)
        print("%-12s %s: %d generated ids %s (distinct: %d)" % (name, "PASS" if same else "FAIL", STEPS,
              "identical" if same else "differ from position %s" % first_diff, len(set(want[len(prompt):]))))
        if name == "stories260K":
            print("  text:", tok.decode(want[len(prompt):]).replace("\n", " ")[:120])
        failed |= not same
        if len(set(want[len(prompt):])) < 8:
            print("  FAIL: the reference output is degenerate; the comparison would prove little")
            failed = True
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
