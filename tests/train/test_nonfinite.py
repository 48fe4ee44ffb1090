# Non-finite losses (via the --inject-nan testing hook):
#  * --inject-nan 3,4: steps 3 and 4 are logged with "skipped": true (plus "nonfinite" events),
#    every other step is not skipped, the weights do not change across them (checkpoints at
#    steps 2, 3 and 4 are bit-identical, step 5 differs), and the run completes (exit 0, step 8);
#  * --inject-nan 2,3,4 with --max-nonfinite 2 (K+1 consecutive) → exit status 1 with a message
#    about non-finite values; every checkpoint left behind passes inspect and holds finite values;
#  * --inject-nan 2,4,6 with --max-nonfinite 2 (never 2 in a row) → the run completes.
#
# Run: /usr/bin/python3 tests/train/test_nonfinite.py --anetrain BIN --assets DIR --workdir DIR
import math
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_shards as ms  # noqa: E402
from make_shards import check, fail  # noqa: E402


def train_args(model, data, val, threads):
    return ["--model", model, "--data", data, "--val-data", val, "--seq", "64", "--batch", "4",
            "--lr", "3e-3", "--warmup", "2", "--seed", "11", "--compact-vocab", "--ckpt-every", "1",
            "--keep", "1000", "--threads", str(threads), "--log-every", "1"]


def is_bad(x):
    return x is None or isinstance(x, str) or (isinstance(x, float) and not math.isfinite(x))


def skip_run(a, model, data, val):
    run_dir = os.path.join(a.workdir, "skip")
    ms.rmtree(run_dir)
    r = ms.run([a.anetrain, "train"] + train_args(model, data, val, a.threads) +
               ["--steps", "8", "--inject-nan", "3,4", "--out", run_dir], check_rc=0)
    ev = ms.telemetry(run_dir)
    steps = {e["step"]: e for e in ms.step_events(ev)}
    check(sorted(steps) == list(range(1, 9)), "skip: steps logged %s (want 1..8)" % sorted(steps))
    for s, e in sorted(steps.items()):
        want = s in (3, 4)
        check(e["skipped"] is want, "skip: step %d has skipped=%r (want %r): %r" % (s, e["skipped"], want, e))
        if want:
            check(is_bad(e["loss"]) or is_bad(e.get("grad_norm")),
                  "skip: step %d is skipped but its loss %r / grad_norm %r are finite" % (s, e["loss"], e.get("grad_norm")))
        else:
            check(not is_bad(e["loss"]), "skip: step %d loss is %r" % (s, e["loss"]))
    nf = sorted(e["step"] for e in ev if e.get("event") == "nonfinite" and "step" in e)
    check(nf == [3, 4], "skip: nonfinite events at steps %s (want [3, 4])" % nf)
    ck = ms.ckpt_dirs(run_dir)
    check(sorted(ck) == list(range(1, 9)), "skip: checkpoints %s (want 1..8 with --ckpt-every 1)" % sorted(ck))
    w = {}
    for s in (2, 3, 4, 5):
        ok, msg = ms.inspect_ok(a.anetrain, ck[s])
        check(ok, "skip: inspect %s: %s" % (ck[s], msg))
        w[s] = ms.export_tensors(a.anetrain, ck[s], os.path.join(a.workdir, "exp%d" % s))
        fin, bad = ms.all_finite(w[s])
        check(fin, "skip: checkpoint %d holds non-finite values in %s" % (s, bad))
    ms.compare_tensors(w[2], w[3], "skip: weights after step 2 vs after skipped step 3")
    ms.compare_tensors(w[2], w[4], "skip: weights after step 2 vs after skipped step 4")
    changed = [n for n in w[4] if w[4][n][1] != w[5][n][1]]
    check(changed, "skip: step 5 (not skipped) left every weight unchanged")
    l = [steps[s]["loss"] for s in range(1, 9)]
    print("skip: exit 0 in %.2f s; losses %s" % (r.wall, ["%.4f" % x if not is_bad(x) else repr(x) for x in l]))
    print("skip: steps 3,4 skipped (nonfinite events logged), weights at steps 2=3=4 bit-identical, "
          "step 5 changed %d/%d tensors, run completed at step 8" % (len(changed), len(w[5])))
    # Loss continuity: the update skipped, the loss right after the skips stays near the loss before.
    check(abs(l[4] - l[1]) < 1.0, "skip: loss jumped from %.4f (step 2) to %.4f (step 5)" % (l[1], l[4]))
    if not a.keep:
        ms.rmtree(run_dir)
    for s in (2, 3, 4, 5):
        ms.rmtree(os.path.join(a.workdir, "exp%d" % s))


def abort_run(a, model, data, val, k):
    run_dir = os.path.join(a.workdir, "abort")
    ms.rmtree(run_dir)
    inject = ",".join(str(s) for s in range(2, 2 + k + 1))
    r = ms.run([a.anetrain, "train"] + train_args(model, data, val, a.threads) +
               ["--steps", "20", "--inject-nan", inject, "--max-nonfinite", str(k), "--out", run_dir])
    msg = (r.out + r.err).strip()
    check(r.returncode == 1, "abort: --inject-nan %s --max-nonfinite %d exited %d (want 1):\n%s" %
          (inject, k, r.returncode, msg[-2000:]))
    check(re.search(r"non-?finite|nan|inf", r.err, re.I),
          "abort: stderr does not mention non-finite values:\n%s" % r.err[-2000:])
    ev = ms.telemetry(run_dir)
    ends = [e.get("event") for e in ev if e.get("event") in ("efficiency", "run_end")]
    check(ends == ["efficiency", "run_end"] and ev[-1].get("status") == "nonfinite",
          "abort: the run did not end with one efficiency event and run_end nonfinite: %s" % ends)
    steps = ms.step_events(ev)
    check(steps and max(e["step"] for e in steps) <= 2 + k,
          "abort: the run went on past step %d: %s" % (2 + k, [e["step"] for e in steps]))
    ck = ms.ckpt_dirs(run_dir)
    for s, d in sorted(ck.items()):
        ok, m = ms.inspect_ok(a.anetrain, d)
        check(ok, "abort: inspect %s: %s" % (d, m))
        t = ms.export_tensors(a.anetrain, d, os.path.join(a.workdir, "exp_abort"))
        fin, bad = ms.all_finite(t)
        check(fin, "abort: checkpoint %s holds non-finite values in %s" % (d, bad))
    err_line = [l for l in r.err.splitlines() if "error" in l.lower()][-1:] or [r.err.strip()[-200:]]
    print("abort: exit 1 after steps %s; checkpoints %s all finite and valid; message: %s" %
          ([e["step"] for e in steps], sorted(ck), err_line[0].strip()))
    if not a.keep:
        ms.rmtree(run_dir)
    ms.rmtree(os.path.join(a.workdir, "exp_abort"))


def reset_run(a, model, data, val):
    """Non-consecutive non-finite steps (2, 4, 6) with --max-nonfinite 2: the count of consecutive
    failures resets after each good step, so the run must complete."""
    run_dir = os.path.join(a.workdir, "reset")
    ms.rmtree(run_dir)
    r = ms.run([a.anetrain, "train"] + train_args(model, data, val, a.threads) +
               ["--steps", "8", "--inject-nan", "2,4,6", "--max-nonfinite", "2", "--out", run_dir])
    check(r.returncode == 0, "reset: --inject-nan 2,4,6 --max-nonfinite 2 exited %d (want 0: never 2 in a row):\n%s"
          % (r.returncode, r.err[-2000:]))
    skipped = sorted(e["step"] for e in ms.step_events(ms.telemetry(run_dir)) if e["skipped"])
    check(skipped == [2, 4, 6], "reset: skipped steps %s (want [2, 4, 6])" % skipped)
    check(max(ms.ckpt_dirs(run_dir)) == 8, "reset: no step-8 checkpoint")
    print("reset: --inject-nan 2,4,6 --max-nonfinite 2 completes (exit 0, steps 2,4,6 skipped)")
    if not a.keep:
        ms.rmtree(run_dir)


def main():
    a = ms.common_args(None, "train_nonfinite").parse_args()
    os.makedirs(a.workdir, exist_ok=True)

    def body():
        model = ms.write_config(os.path.join(a.workdir, "tiny.json"))
        data = ms.small_shard(a.workdir, 60000, a.assets, "train")
        val = ms.small_shard(a.workdir, 4000, a.assets, "valish")
        skip_run(a, model, data, val)
        abort_run(a, model, data, val, 2)
        reset_run(a, model, data, val)

    ms.run_main("test_nonfinite", body, a.anetrain)


if __name__ == "__main__":
    main()
