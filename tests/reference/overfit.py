# "The whole loop learns": memorise one batch of real English (War and Peace, tok512 ids) with
# `anetrain fit-batch` from a random stories260k-shaped model; the loss must fall below 0.1.
# Run: /usr/bin/python3 tests/reference/overfit.py --anetrain BIN --assets ../shared/assets --workdir DIR
import argparse
import gzip
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import st  # noqa: E402
import tok512  # noqa: E402

B, T, STEPS = 4, 64, 300


def real_rows(assets):
    tok = tok512.Tokenizer(os.path.join(assets, "llama2c", "tok512.bin"))
    with gzip.open(os.path.join(assets, "corpora", "war-and-peace.txt.gz"), "rt", encoding="utf-8") as f:
        text = f.read()
    # A stretch of prose from the first chapter; long enough for B rows of T+1 tokens.
    start = text.index("Well, Prince, so Genoa and Lucca")
    ids = tok.encode(text[start:start + 4000], bos=True)
    need = B * (T + 1)
    if len(ids) < need:
        sys.exit("overfit: corpus excerpt too short (%d < %d ids)" % (len(ids), need))
    return [ids[r * (T + 1):(r + 1) * (T + 1)] for r in range(B)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--anetrain", required=True)
    ap.add_argument("--assets", required=True)
    ap.add_argument("--workdir", required=True)
    a = ap.parse_args()
    os.makedirs(a.workdir, exist_ok=True)
    tokens = os.path.join(a.workdir, "overfit_tokens.txt")
    with open(tokens, "w") as f:
        for row in real_rows(a.assets):
            f.write(" ".join(map(str, row)) + "\n")
    out = os.path.join(a.workdir, "overfit.safetensors")
    cmd = [a.anetrain, "fit-batch", "stories260k", "--tokens", tokens, "--batch", str(B), "--seq", str(T),
           "--steps", str(STEPS), "--lr", "3e-3", "--warmup", "20", "--min-lr", "3e-4", "--wd", "0.0",
           "--clip", "1.0", "--seed", "7", "--log-every", "50", "-o", out]
    print(" ".join(cmd))
    r = subprocess.run(cmd)
    if r.returncode != 0:
        sys.exit("overfit: anetrain exited with %d" % r.returncode)
    losses = st.load(out)["losses"]
    print("loss: first %.4f, step 100 %.4f, step 200 %.4f, last %.4f" % (losses[0], losses[100], losses[200],
                                                                           losses[-1]))
    # Chance level for 512 tokens is ln 512 ≈ 6.24; a model that cannot learn stays near it.
    if not losses[0] > 5.0:
        sys.exit("overfit: initial loss %.3f is not near chance (ln 512 = 6.24): init is suspect" % losses[0])
    if not losses[-1] < 0.1:
        sys.exit("overfit: FAIL, final loss %.4f is not below 0.1" % losses[-1])
    print("OVERFIT: PASS")


if __name__ == "__main__":
    main()
