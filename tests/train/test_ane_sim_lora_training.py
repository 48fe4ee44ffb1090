# LoRA fine-tuning on ane-sim: `anetrain train --model stories260K.bin --lora 4 --backend ane-sim`
# on War and Peace (tok512, which the TinyStories model never saw), 120 steps, against the same
# run on the cpu backend in fp32:
#  * the validation loss falls (step 120 at least 0.1 below step 30; the cpu run falls ~0.24) and
#    every loss is finite, with no step skipped for overflow;
#  * at every evaluation (every 30 steps) ane-sim's validation loss is within 2% of the cpu run's
#    (the bound of test_ane_sim_training.py; the runs agree to ~0.02%);
#  * the stages ran as programs: the telemetry's kernels include every backward program.
# Run: /usr/bin/python3 tests/train/test_ane_sim_lora_training.py --anetrain BIN --assets DIR --workdir DIR
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_shards as ms  # noqa: E402
from make_shards import check  # noqa: E402

STEPS = 120
EVERY = 30


def train(a, backend, train_bin, val_bin):
    out = os.path.join(a.workdir, backend)
    ms.rmtree(out)
    r = ms.run([a.anetrain, "train", "--model", os.path.join(a.assets, "llama2c", "stories260K.bin"), "--lora", "4",
                "--backend", backend, "--precision", "fp32", "--data", train_bin, "--val-data", val_bin,
                "--steps", str(STEPS), "--batch", "4", "--seq", "64", "--lr", "1e-2", "--warmup", "5",
                "--eval-every", str(EVERY), "--eval-batches", "8", "--log-every", "30", "--threads", str(a.threads),
                "--seed", "3", "--out", out], timeout=600, check_rc=0)
    print("%s: %d steps in %.1f s" % (backend, STEPS, r.wall), flush=True)
    return ms.telemetry(out)


def main():
    a = ms.common_args(__doc__, "train_lora_ane_sim").parse_args()
    os.makedirs(a.workdir, exist_ok=True)

    def body():
        train_bin, val_bin = ms.prepared_war_and_peace(a.anetrain, a.assets, a.workdir, 340000)
        runs = {be: train(a, be, train_bin, val_bin) for be in ("cpu", "ane-sim")}
        evals = {be: {e["step"]: e["val_loss"] for e in ev if e.get("event") == "eval"} for be, ev in runs.items()}
        want_steps = list(range(EVERY, STEPS + 1, EVERY))
        check(sorted(evals["cpu"]) == sorted(evals["ane-sim"]) == want_steps,
              "eval steps: %s vs %s" % (sorted(evals["cpu"]), sorted(evals["ane-sim"])))
        for step in want_steps:
            c, s = evals["cpu"][step], evals["ane-sim"][step]
            print("  step %3d: val loss cpu %.4f, ane-sim %.4f" % (step, c, s))
            check(abs(s - c) <= 0.02 * c, "step %d: ane-sim val loss %.4f vs cpu %.4f (bound 2%%)" % (step, s, c))
        first, last = evals["ane-sim"][EVERY], evals["ane-sim"][STEPS]
        check(last < first - 0.1, "ane-sim's LoRA run did not learn: val loss %.4f → %.4f" % (first, last))
        steps = ms.step_events(runs["ane-sim"])
        check(len(steps) == STEPS and all(math.isfinite(e["loss"]) for e in steps), "a non-finite or missing step")
        check(not any(e["skipped"] or e["overflow"] for e in steps), "an ane-sim step overflowed or was skipped")
        kernels = set()
        for e in steps:
            kernels.update(k for k, t in (e.get("kernels") or {}).items() if t["calls"] > 0)
        programs = {"qkv_fwd", "attention_fwd", "ffn_fwd", "attention_bwd", "q_bwd", "kv_bwd", "gate_up_bwd", "down_bwd"}
        check(programs <= kernels, "programs that never ran: %s" % sorted(programs - kernels))
        if not a.keep:
            for be in runs:
                ms.rmtree(os.path.join(a.workdir, be))

    ms.run_main("test_ane_sim_lora_training", body, a.anetrain)


if __name__ == "__main__":
    main()
