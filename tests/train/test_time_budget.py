# `train --time-budget S`: the trainer measures its step time inside the warmup and lowers --steps
# so the run ends within S seconds — the default job's promise on a slow or shared machine.
# Checks: a run asked for far more steps than fit stops early with status done (not paused), the
# lowered step count is in run.json and in a `budget` telemetry event, the cosine schedule ends at
# the new total (lr reaches min-lr on the last step), and training took at most twice the budget.
# Run: /usr/bin/python3 tests/train/test_time_budget.py --anetrain BIN --assets DIR --workdir DIR
import json
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_shards as ms  # noqa: E402
from make_shards import check  # noqa: E402

BUDGET = 4.0
# Short, so that even a slow machine's budget (~60 steps on a 2-core Zen 3 under load) leaves most
# of the run to the cosine decay the test looks at; the budget is decided at step WARMUP / 2.
WARMUP = 10
LR, MIN_LR = 1e-3, 1e-4


def scheduled_lr(step, total):
    """The lr of 1-based `step` in a run of `total` steps (train/optimizer.cpp's lr_at)."""
    at = step - 1
    if at < WARMUP:
        return LR * (at + 1) / WARMUP
    progress = min(1.0, (at - WARMUP) / (total - WARMUP))
    return MIN_LR + 0.5 * (1.0 + math.cos(math.pi * progress)) * (LR - MIN_LR)


def main():
    a = ms.common_args(None, "train_time_budget").parse_args()
    os.makedirs(a.workdir, exist_ok=True)
    model = ms.write_config(os.path.join(a.workdir, "tiny.json"))
    data = ms.small_shard(a.workdir, 60000, a.assets, "train")
    run = os.path.join(a.workdir, "run")
    ms.rmtree(run)
    r = ms.run([a.anetrain, "train", "--model", model, "--data", data, "--seq", "64", "--batch", "4",
                "--steps", "1000000", "--warmup", str(WARMUP), "--lr", str(LR), "--min-lr", str(MIN_LR), "--threads", "2",
                "--ckpt-every", "100000", "--log-every", "50", "--time-budget", str(BUDGET), "--out", run]
               + ms.precision_args(a), check_rc=0)
    ev = ms.telemetry(run)
    budget = [e for e in ev if e.get("event") == "budget"]
    check(len(budget) == 1, "want one budget event, have %d" % len(budget))
    steps = budget[0]["steps"]
    check(20 < steps < 1000000, "budget chose %d steps" % steps)
    with open(os.path.join(run, "run.json")) as f:
        check(json.load(f)["steps"] == steps, "run.json does not hold the lowered step count %d" % steps)
    end = [e for e in ev if e.get("event") == "run_end"]
    check(end and end[-1]["status"] == "done" and end[-1]["step"] == steps,
          "run did not finish at step %d: %r" % (steps, end[-1:]))
    last = [e for e in ev if e.get("event") == "step"][-1]
    # The last step's lr is the new total's (a hair above min-lr: the decay reaches it one step
    # later); with the original 1e6-step schedule it would still be ~1e-3.
    want = scheduled_lr(steps, steps)
    check(abs(last["lr"] - want) <= 1e-6 * want and want < 0.2 * LR,
          "the schedule did not end at the new total %d: last lr %r, want %r" % (steps, last["lr"], want))
    start = [e for e in ev if e.get("event") == "run_start"][0]["time"]
    took = end[-1]["time"] - start
    print("time budget %.1f s: %d steps, trained in %.1f s (process %.1f s)" % (BUDGET, steps, took, r.wall))
    check(took < 2 * BUDGET, "training took %.1f s against a %.1f s budget" % (took, BUDGET))
    print("TIME BUDGET: PASS")


if __name__ == "__main__":
    main()
