# The fp32 trainer's numbers are the same on every machine it is built for: 24 steps of
# stories260K (llama2.c's checkpoint, fine-tuned; 2×64 tokens a step, 1.4 s under qemu) on a fixed
# token stream must log the losses in
# tests/train/golden/stories260k_fp32_losses.json within 1e-4 relative. The file was written on
# x86-64 (oneDNN's products); the arm64 build (OpenBLAS's, under qemu in scripts/test_arm64.sh)
# is held to it, so an architecture's kernels cannot drift from the others unnoticed. Products
# summed in another order differ by ~1e-7 relative each; over 50 AdamW steps on this model that
# grew to ~1e-6 (measured x86 vs arm64), so 1e-4 is loose for rounding and tight for any wrong
# kernel (a single wrong row moves the loss by far more).
# Run: /usr/bin/python3 tests/train/test_golden_losses.py --anetrain BIN --assets DIR --workdir DIR
#      [--update]  (rewrites the golden file from this machine's run; say why in the commit)
import json
import os
import platform
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_shards as ms  # noqa: E402
from make_shards import check  # noqa: E402

GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden", "stories260k_fp32_losses.json")
STEPS = 24
TOLERANCE = 1e-4


def token_stream(n, vocab=512):
    """A learnable, fixed stream: phrases of a small grammar picked by a 32-bit LCG (no RNG from a
    library, whose sequence could change between versions)."""
    state, ids = 12345, []
    phrases = [[(7 * p + 3 * j) % vocab for j in range(3 + p % 5)] for p in range(40)]
    while len(ids) < n:
        state = (1103515245 * state + 12345) % (1 << 31)
        ids.extend(phrases[(state >> 16) % len(phrases)])
    return ids[:n]


def main():
    ap = ms.common_args(None, "train_golden_losses")
    ap.add_argument("--update", action="store_true")
    a = ap.parse_args()
    os.makedirs(a.workdir, exist_ok=True)

    def body():
        data = os.path.join(a.workdir, "stream.bin")
        ms.write_u16_shard(data, token_stream(40000))
        run = os.path.join(a.workdir, "run")
        ms.rmtree(run)
        ms.run([a.anetrain, "train", "--model", os.path.join(a.assets, "llama2c", "stories260K.bin"), "--data", data,
                "--seq", "64", "--batch", "2", "--steps", str(STEPS), "--warmup", "5", "--lr", "1e-3",
                "--precision", "fp32", "--threads", "2", "--seed", "7", "--eval-every", "0", "--ckpt-every", "0",
                "--log-every", "1", "--out", run], timeout=1200, check_rc=0)
        losses = [e["loss"] for e in ms.step_events(ms.telemetry(run))]
        check(len(losses) == STEPS, "%d step events, want %d" % (len(losses), STEPS))
        check(losses[-1] < losses[0] - 0.5, "the loss did not fall: %r → %r" % (losses[0], losses[-1]))
        if a.update:
            with open(GOLDEN, "w") as f:
                json.dump({"written_on": platform.machine(), "steps": STEPS, "losses": losses}, f, indent=1)
                f.write("\n")
            print("wrote %s" % GOLDEN)
            return
        with open(GOLDEN) as f:
            golden = json.load(f)["losses"]
        worst = max(abs(x - g) / abs(g) for x, g in zip(losses, golden))
        for step, (x, g) in enumerate(zip(losses, golden), 1):
            check(abs(x - g) <= TOLERANCE * abs(g),
                  "step %d: loss %.8f, golden %.8f (relative %.2e > %.0e)" % (step, x, g, abs(x - g) / abs(g), TOLERANCE))
        print("%d losses within %.0e relative of the golden run (worst %.2e); %.4f → %.4f"
              % (STEPS, TOLERANCE, worst, losses[0], losses[-1]))

    ms.run_main("train_golden_losses", body, a.anetrain)


if __name__ == "__main__":
    main()
