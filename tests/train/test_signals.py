# Graceful interruption:
#  * SIGINT once mid-run → exit 0, a message containing "--resume", a checkpoint at the last step
#    reached (which passes `anetrain inspect`); `train --resume` then completes the run, and the
#    final weights are bit-identical to an uninterrupted run (resume in mid-cosine-schedule);
#  * SIGTERM: the same;
#  * double SIGINT (the second right after the first, and the second aimed at the checkpoint
#    write) → the process exits promptly; every step-* directory still passes inspect; resume
#    completes and again matches the uninterrupted run.
#
# Run: /usr/bin/python3 tests/train/test_signals.py --anetrain BIN --assets DIR --workdir DIR
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_shards as ms  # noqa: E402
from make_shards import check, fail  # noqa: E402

STEPS = 40
PROMPT_S = 3.0  # a second SIGINT must end the process within this many seconds


def train_args(model, data):
    # Full 32000 vocabulary (no --compact-vocab): ~25 MB checkpoints, so a write takes a moment.
    return ["--model", model, "--data", data, "--seq", "64", "--batch", "4", "--steps", str(STEPS),
            "--lr", "2e-3", "--min-lr", "2e-4", "--warmup", "5", "--seed", "5", "--ckpt-every", "1000",
            "--threads", "2", "--log-every", "1"]


def last_step(run_dir):
    s = [e["step"] for e in ms.step_events(ms.telemetry(run_dir))]
    return max(s) if s else 0


def start(cmd, log):
    lf = open(log, "wb")
    p = subprocess.Popen(cmd, stdout=lf, stderr=subprocess.STDOUT)
    p._log = lf
    return p


def finish(p, timeout):
    try:
        rc = p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        p._log.close()
        return None
    p._log.close()
    return rc


def wait_step(run_dir, p, step, timeout=120):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if p.poll() is not None:
            fail("trainer exited (%s) before reaching step %d" % (p.returncode, step))
        try:
            if last_step(run_dir) >= step:
                return
        except ms.TestFailure:
            pass
        time.sleep(0.01)
    fail("trainer did not reach step %d within %d s" % (step, timeout))


def read(path):
    with open(path, "rb") as f:
        return f.read().decode("utf-8", "replace")


def inspect_all(a, run_dir, what):
    dirs = ms.ckpt_dirs(run_dir)
    for s, d in sorted(dirs.items()):
        ok, msg = ms.inspect_ok(a.anetrain, d)
        check(ok, "%s: inspect %s failed: %s (holds %s)" % (what, d, msg, sorted(os.listdir(d))))
    return sorted(dirs)


def resume_and_compare(a, run_dir, base_t, base_losses, what):
    r = ms.run([a.anetrain, "train", "--resume", run_dir], check_rc=0)
    check(max(ms.ckpt_dirs(run_dir)) == STEPS, "%s: resumed run has no step-%d checkpoint" % (what, STEPS))
    got = ms.export_tensors(a.anetrain, run_dir, os.path.join(a.workdir, "exp"))
    ms.compare_tensors(base_t, got, "%s: final weights vs uninterrupted run" % what)
    for e in ms.step_events(ms.telemetry(run_dir)):
        if e["loss"] != base_losses[e["step"]]:
            fail("%s: step %d loss %r vs uninterrupted %r" % (what, e["step"], e["loss"], base_losses[e["step"]]))
    left = [n for n in os.listdir(os.path.join(run_dir, "ckpt")) if ".tmp" in n]
    if left:
        print("%s: NOTE: after the resumed run completed, %s still lie in ckpt/" % (what, left))
    return r.wall


def single_signal(a, model, data, sig, base_t, base_losses):
    name = signal.Signals(sig).name
    run_dir = os.path.join(a.workdir, "run_" + name)
    ms.rmtree(run_dir)
    log = os.path.join(a.workdir, name + ".log")
    p = start([a.anetrain, "train"] + train_args(model, data) + ["--out", run_dir], log)
    wait_step(run_dir, p, 8)
    t_sig = time.time()
    p.send_signal(sig)
    rc = finish(p, 120)
    dt = time.time() - t_sig
    out = read(log)
    check(rc is not None, "%s: trainer still running 120 s after the signal" % name)
    check(rc == 0, "%s: exit status %d (want 0):\n%s" % (name, rc, out[-2000:]))
    check("--resume" in out, "%s: output lacks '--resume':\n%s" % (name, out[-2000:]))
    reached = last_step(run_dir)
    check(8 <= reached < STEPS, "%s: stopped at step %d (want between 8 and %d)" % (name, reached, STEPS - 1))
    steps = inspect_all(a, run_dir, name)
    check(steps and max(steps) == reached,
          "%s: last step logged is %d but checkpoints are %s" % (name, reached, steps))
    ev = ms.telemetry(run_dir)
    ck = [e for e in ev if e.get("event") == "checkpoint"]
    check(ck and ck[-1]["step"] == reached, "%s: no checkpoint event for step %d (%s)" % (name, reached, ck[-1:]))
    msg = [l for l in out.splitlines() if "--resume" in l]
    print("%s: exit 0 after %.2f s at step %d, checkpoint %s; message: %s" %
          (name, dt, reached, os.path.basename(ms.ckpt_dirs(run_dir)[reached]), msg[0].strip()))
    w = resume_and_compare(a, run_dir, base_t, base_losses, name)
    print("%s: resume completed to step %d in %.2f s; weights and losses bit-identical to uninterrupted run"
          % (name, STEPS, w))
    if not a.keep:
        ms.rmtree(run_dir)


def double_sigint(a, model, data, base_t, base_losses, aim):
    name = "double-SIGINT[%s]" % aim
    run_dir = os.path.join(a.workdir, "run_double_" + aim)
    ms.rmtree(run_dir)
    log = os.path.join(a.workdir, "double.log")
    # Let the run make one ordinary checkpoint first (step 6) so there is something to protect.
    args = train_args(model, data)
    args[args.index("--ckpt-every") + 1] = "6"
    p = start([a.anetrain, "train"] + args + ["--out", run_dir], log)
    wait_step(run_dir, p, 8)
    before = inspect_all(a, run_dir, name + " before")
    check(6 in before, "%s: no step-6 checkpoint before the signals (have %s)" % (name, before))
    p.send_signal(signal.SIGINT)
    if aim == "immediate":
        time.sleep(0.02)
    else:
        # Aim the second SIGINT at the checkpoint write the first one triggers.
        ck = os.path.join(run_dir, "ckpt")
        t0 = time.time()
        while time.time() - t0 < 30 and p.poll() is None:
            if any(".tmp" in n for n in os.listdir(ck)):
                break
            time.sleep(0.001)
    t_sig = time.time()
    if p.poll() is None:
        p.send_signal(signal.SIGINT)
    else:
        print("%s: NOTE: process had already exited before the second SIGINT" % name)
    rc = finish(p, 60)
    dt = time.time() - t_sig
    out = read(log)
    check(rc is not None, "%s: still running 60 s after the second SIGINT" % name)
    check(dt <= PROMPT_S, "%s: took %.2f s to exit after the second SIGINT (want ≤ %.1f s)" % (name, dt, PROMPT_S))
    check(rc is not None and rc != -signal.SIGSEGV and rc != -signal.SIGABRT,
          "%s: crashed (%s):\n%s" % (name, rc, out[-2000:]))
    after = inspect_all(a, run_dir, name + " after")
    check(6 in after, "%s: step-6 checkpoint disappeared (now %s)" % (name, after))
    leftovers = [n for n in os.listdir(os.path.join(run_dir, "ckpt")) if ".tmp" in n]
    print("%s: exit %s %.3f s after the second SIGINT; checkpoints %s pass inspect; leftovers %s" %
          (name, rc, dt, after, leftovers))
    w = resume_and_compare(a, run_dir, base_t, base_losses, name)
    print("%s: resume completed in %.2f s; weights bit-identical to uninterrupted run" % (name, w))
    if not a.keep:
        ms.rmtree(run_dir)


def main():
    a = ms.common_args(None, "train_signals").parse_args()
    os.makedirs(a.workdir, exist_ok=True)

    def body():
        model = ms.write_config(os.path.join(a.workdir, "tiny.json"))
        data = ms.small_shard(a.workdir, 60000, a.assets, "train")
        base = os.path.join(a.workdir, "baseline")
        ms.rmtree(base)
        r = ms.run([a.anetrain, "train"] + train_args(model, data) + ["--out", base], check_rc=0)
        ev = ms.step_events(ms.telemetry(base))
        base_losses = {e["step"]: e["loss"] for e in ev}
        check(sorted(base_losses) == list(range(1, STEPS + 1)), "baseline logged steps %s" % sorted(base_losses))
        print("baseline: %d steps in %.2f s" % (STEPS, r.wall))
        base_t = ms.export_tensors(a.anetrain, base, os.path.join(a.workdir, "exp_base"))
        single_signal(a, model, data, signal.SIGINT, base_t, base_losses)
        single_signal(a, model, data, signal.SIGTERM, base_t, base_losses)
        double_sigint(a, model, data, base_t, base_losses, "immediate")
        double_sigint(a, model, data, base_t, base_losses, "during-write")
        if not a.keep:
            for d in ("baseline", "exp_base", "exp"):
                ms.rmtree(os.path.join(a.workdir, d))

    ms.run_main("test_signals", body, a.anetrain)


if __name__ == "__main__":
    main()
