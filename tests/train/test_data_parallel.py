# Data parallel training over MPI, through the real binary under Open MPI's mpirun:
#  * 2 ranks × batch 4 train to the same weights (≤ 1e-6 relative per tensor) as one process with
#    accum 2 × batch 4 on the same windows, after 20 steps; step losses agree; telemetry comes from
#    rank 0 only (one run_start, each step once, per-rank timings and the all-reduce phase).
#  * the gradient sums overlapped with the backward pass or done after it: bit-identical weights.
#  * resume with the same number of ranks is bit-exact; with another number it goes on, and says so.
#  * SIGKILL of rank 1 mid-run ends the job naming rank 1; the run resumes from its last checkpoint
#    to the same final weights as an uninterrupted run.
#  * a rank that hangs (SIGSTOP) is named by rank 0 after --dist-timeout, and the job ends.
#  * an error on rank 0 ends every rank at once (no rank left waiting).
#
# Run: /usr/bin/python3 tests/train/test_data_parallel.py --anetrain BIN --assets DIR --workdir DIR
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_shards as ms  # noqa: E402
from make_shards import check, fail  # noqa: E402

# As root (CI) Open MPI wants to be told; --oversubscribe: 2 ranks on whatever cores there are.
MPIRUN = ["mpirun", "--allow-run-as-root", "--oversubscribe", "--bind-to", "none"]


def mpirun(n):
    return MPIRUN + ["-np", str(n)]


def train_args(model, data, val, seq="64", batch="4", ckpt_every="5"):
    return ["train", "--model", model, "--data", data, "--val-data", val, "--seq", seq, "--batch", batch,
            "--lr", "3e-3", "--warmup", "4", "--wd", "0.1", "--clip", "1.0", "--seed", "99",
            "--compact-vocab", "--ckpt-every", ckpt_every, "--keep", "100", "--eval-every", "5", "--eval-batches", "2",
            "--threads", "1", "--log-every", "1", "--precision", "fp32"]


def weights(a, run_dir, tag):
    return ms.export_tensors(a.anetrain, run_dir, os.path.join(a.workdir, "exp_" + tag))


def max_relative(x, y):
    worst, where = 0.0, None
    for name in sorted(x):
        u = np.frombuffer(x[name][1], "<f4").astype(np.float64)
        v = np.frombuffer(y[name][1], "<f4").astype(np.float64)
        r = np.linalg.norm(u - v) / max(np.linalg.norm(v), 1e-30)
        if r > worst:
            worst, where = r, name
    return worst, where


def steps_of(events):
    return {e["step"]: e for e in events if e.get("event") == "step"}


def equivalence(a, args):
    dp, solo = os.path.join(a.workdir, "dp2"), os.path.join(a.workdir, "solo_accum2")
    r = ms.run(mpirun(2) + [a.anetrain] + args + ["--accum", "1", "--steps", "20", "--out", dp], check_rc=0)
    check("data parallel over 2 ranks" in r.err + r.out, "the 2-rank run does not say it is data parallel:\n" + r.err)
    ms.run([a.anetrain] + args + ["--accum", "2", "--steps", "20", "--out", solo], check_rc=0)
    worst, where = max_relative(weights(a, dp, "dp"), weights(a, solo, "solo"))
    print("2 ranks × batch 4 vs 1 rank × accum 2 × batch 4, 20 steps: max per-tensor relative difference "
          "%.3g (%s)" % (worst, where))
    check(worst <= 1e-6, "weights differ by %.3g (relative, %s) > 1e-6" % (worst, where))

    ev = ms.telemetry(dp)
    starts = [e for e in ev if e.get("event") == "run_start"]
    check(len(starts) == 1, "telemetry has %d run_start events (rank 0 alone writes one)" % len(starts))
    check(starts[0].get("world_size") == 2 and len(starts[0].get("ranks", [])) == 2,
          "run_start lacks world_size 2 / two ranks: %r" % {k: starts[0].get(k) for k in ("world_size", "ranks")})
    steps = [e["step"] for e in ev if e.get("event") == "step"]
    check(steps == list(range(1, 21)), "step events %s (want 1..20 once each)" % steps)
    sd, ss = steps_of(ev), steps_of(ms.telemetry(solo))
    for s in range(1, 21):
        e = sd[s]
        check([p.get("rank") for p in e.get("ranks", [])] == [0, 1] and "allreduce" in e["phase_ms"],
              "step %d lacks per-rank timings or the allreduce phase: %r" % (s, e))
        check(e["tokens"] == s * 2 * 4 * 64, "step %d counts %d tokens (want %d)" % (s, e["tokens"], s * 512))
        rel = abs(e["loss"] - ss[s]["loss"]) / abs(ss[s]["loss"])
        check(rel <= 1e-5, "step %d loss %r vs one process %r" % (s, e["loss"], ss[s]["loss"]))
    evals = [e for e in ev if e.get("event") == "eval"]
    check([e["step"] for e in evals] == [5, 10, 15, 20], "evaluations at %s" % [e["step"] for e in evals])
    check(sorted(ms.ckpt_dirs(dp)) == [5, 10, 15, 20], "checkpoints %s" % sorted(ms.ckpt_dirs(dp)))

    nov = os.path.join(a.workdir, "dp2_no_overlap")
    ms.run(mpirun(2) + [a.anetrain] + args + ["--accum", "1", "--steps", "20", "--out", nov, "--dist-overlap", "off"],
           check_rc=0)
    ms.compare_tensors(weights(a, nov, "nov"), weights(a, dp, "dp"), "overlapped vs after-backward gradient sums")
    print("overlap on/off: bit-identical weights")

    # Rank 0 refusing (the run directory is taken) must end the job at once, not leave rank 1 waiting.
    t0 = time.time()
    r = ms.run(mpirun(2) + [a.anetrain] + args + ["--accum", "1", "--steps", "20", "--out", dp], timeout=120)
    check(r.returncode != 0 and "already holds a run" in r.err + r.out,
          "a second run into %s: exit %d\n%s" % (dp, r.returncode, r.err[-2000:]))
    check(time.time() - t0 < 60, "the refused 2-rank run took %.0f s to end" % (time.time() - t0))
    return dp


def resume_same_and_other(a, args, dp):
    split = os.path.join(a.workdir, "dp2_split")
    ms.run(mpirun(2) + [a.anetrain] + args + ["--accum", "1", "--steps", "20", "--stop-at", "10", "--out", split],
           check_rc=0)
    other = os.path.join(a.workdir, "dp2_then_1")
    shutil.copytree(split, other)
    ms.run(mpirun(2) + [a.anetrain, "train", "--resume", split], check_rc=0)
    ms.compare_tensors(weights(a, split, "split"), weights(a, dp, "dp"), "2 ranks stopped at 10 and resumed vs 20 steps")
    sd, ss = steps_of(ms.telemetry(dp)), steps_of(ms.telemetry(split))
    for s in range(1, 21):
        check(ss[s]["loss"] == sd[s]["loss"], "step %d loss %r (resumed) vs %r" % (s, ss[s]["loss"], sd[s]["loss"]))
    print("resume on 2 ranks: bit-identical weights and losses")

    r = ms.run([a.anetrain, "train", "--resume", other], check_rc=0)
    check("trained on 2 rank(s) and now on 1" in r.err + r.out, "resuming on 1 rank does not say what changed:\n" + r.err)
    ev = ms.telemetry(other)
    last_start = [e for e in ev if e.get("event") == "run_start"][-1]
    check(last_start.get("world_size") == 1, "the resumed run_start says world_size %r" % last_start.get("world_size"))
    st = steps_of(ev)
    check(st[11]["tokens"] - st[10]["tokens"] == 4 * 64, "after the resume on 1 rank a step is %d tokens (want 256)"
          % (st[11]["tokens"] - st[10]["tokens"]))
    print("resume of a 2-rank run on 1 rank: goes on with the smaller global batch, and says so")


def rank_pid(run_dir, rank, deadline):
    """The pid of `rank`, from run_start's "rank R (host, pid N)"."""
    while time.time() < deadline:
        for e in ms.telemetry(run_dir):
            if e.get("event") == "run_start":
                for who in e.get("ranks", []):
                    if who.startswith("rank %d (" % rank):
                        return int(who.rsplit("pid ", 1)[1].rstrip(")"))
        time.sleep(0.05)
    fail("no run_start naming rank %d in %s" % (rank, run_dir))


def wait_for_step(run_dir, step, deadline):
    while time.time() < deadline:
        s = [e["step"] for e in ms.telemetry(run_dir) if e.get("event") == "step"]
        if s and s[-1] >= step:
            return s[-1]
        time.sleep(0.02)
    fail("%s never reached step %d" % (run_dir, step))


def kill_and_resume(a, model, data, val):
    args = train_args(model, data, val, seq="128", batch="8", ckpt_every="10") + ["--steps", "60"]
    full, killed = os.path.join(a.workdir, "dp2_full60"), os.path.join(a.workdir, "dp2_killed")
    ms.run(mpirun(2) + [a.anetrain] + args + ["--out", full], check_rc=0, timeout=300)
    p = subprocess.Popen(mpirun(2) + [a.anetrain] + args + ["--out", killed], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
    deadline = time.time() + 120
    pid = rank_pid(killed, 1, deadline)
    at = wait_for_step(killed, 12, deadline)
    os.kill(pid, signal.SIGKILL)
    out = p.communicate(timeout=120)[0].decode("utf-8", "replace")
    check(p.returncode != 0, "mpirun exited 0 after rank 1 was killed")
    check("rank 1" in out and "signal 9" in out, "the job's output does not name rank 1 and the signal:\n" + out[-2000:])
    done = [e["step"] for e in ms.telemetry(killed) if e.get("event") == "step"]
    check(done[-1] < 60, "the killed run finished anyway (step %d)" % done[-1])
    print("rank 1 killed at step ~%d: the job ended (%s)" %
          (at, [l for l in out.splitlines() if "signal 9" in l][0].strip()))
    for s, d in sorted(ms.ckpt_dirs(killed).items()):
        ok, msg = ms.inspect_ok(a.anetrain, d)
        check(ok, "checkpoint %s after the kill does not verify: %s" % (d, msg))
    last = max(ms.ckpt_dirs(killed))
    ms.run(mpirun(2) + [a.anetrain, "train", "--resume", killed], check_rc=0, timeout=300)
    ms.compare_tensors(weights(a, killed, "killed"), weights(a, full, "full60"),
                       "killed at step %d and resumed vs uninterrupted (60 steps)" % at)
    print("resumed from step %d's checkpoint: final weights bit-identical to the uninterrupted run" % last)

    hung = os.path.join(a.workdir, "dp2_hung")
    p = subprocess.Popen(mpirun(2) + [a.anetrain] + args + ["--out", hung, "--dist-timeout", "3"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 120
    pid = rank_pid(hung, 1, deadline)
    wait_for_step(hung, 3, deadline)
    os.kill(pid, signal.SIGSTOP)
    t0 = time.time()
    try:
        out = p.communicate(timeout=60)[0].decode("utf-8", "replace")
    finally:
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass
    check(p.returncode != 0, "mpirun exited 0 with rank 1 stopped")
    check("rank 1 (" in out and "has not reached" in out,
          "rank 0 did not name the stopped rank 1:\n" + out[-2000:])
    print("rank 1 stopped: named after %.1f s (--dist-timeout 3): %s" %
          (time.time() - t0, out[out.index("anetrain (rank 0)"):].splitlines()[0][:200]))


def signals_and_errors(a, model, data, val):
    # SIGUSR1 to mpirun reaches every rank (SIGINT/SIGTERM become SIGKILL a second later): the ranks
    # agree on it, finish the step, rank 0 checkpoints, all exit 0.
    args = train_args(model, data, val, seq="128", batch="8", ckpt_every="1000") + ["--steps", "500"]
    run = os.path.join(a.workdir, "dp2_usr1")
    p = subprocess.Popen(mpirun(2) + [a.anetrain] + args + ["--out", run], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
    wait_for_step(run, 3, time.time() + 120)
    p.send_signal(signal.SIGUSR1)
    out = p.communicate(timeout=120)[0].decode("utf-8", "replace")
    ck = ms.ckpt_dirs(run)
    check(p.returncode == 0 and "stopped at step" in out and ck and max(ck) < 500,
          "SIGUSR1 to mpirun: exit %d, checkpoints %s\n%s" % (p.returncode, sorted(ck), out[-1500:]))
    check(ms.inspect_ok(a.anetrain, ck[max(ck)])[0], "the SIGUSR1 checkpoint does not verify")
    print("SIGUSR1 to mpirun: both ranks stopped after step %d, rank 0 checkpointed, exit 0" % max(ck))
    # An error before training starts (on rank 0 only: its run directory is missing) ends every rank.
    t0 = time.time()
    r = ms.run(mpirun(2) + [a.anetrain, "train", "--resume", os.path.join(a.workdir, "no_such_run")], timeout=120)
    check(r.returncode != 0 and "not a run folder" in r.out + r.err and time.time() - t0 < 60,
          "--resume of a missing run under mpirun: exit %d after %.0f s\n%s" %
          (r.returncode, time.time() - t0, (r.out + r.err)[-1500:]))


def main():
    a = ms.common_args(__doc__, "train_data_parallel").parse_args()
    os.makedirs(a.workdir, exist_ok=True)

    def body():
        check(shutil.which("mpirun") is not None, "mpirun not found (apt-get install openmpi-bin libopenmpi-dev)")
        for d in os.listdir(a.workdir):
            if d.startswith(("dp2", "solo", "exp_")):
                ms.rmtree(os.path.join(a.workdir, d))
        model = ms.write_config(os.path.join(a.workdir, "tiny.json"))
        data = ms.small_shard(a.workdir, 60000, a.assets, "train")
        info = ms.make_corpus_shards(a.assets, a.workdir)
        val = os.path.join(a.workdir, "shards", "val-8000.bin")
        ms.write_u16_shard(val, ms.read_u16_shard(info["val"])[:8000])
        args = train_args(model, data, val)
        dp = equivalence(a, args)
        resume_same_and_other(a, args, dp)
        kill_and_resume(a, model, data, val)
        signals_and_errors(a, model, data, val)
        r = ms.run(mpirun(2) + [a.anetrain, "train"], timeout=120)
        check(r.returncode != 0 and "default job runs in one process" in r.err + r.out,
              "the default job under mpirun: exit %d\n%s" % (r.returncode, r.err[-1000:]))

    ms.run_main("test_data_parallel", body, a.anetrain)


if __name__ == "__main__":
    main()
