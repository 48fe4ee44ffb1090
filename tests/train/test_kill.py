# Crash safety: SIGKILL the trainer at random moments (seeded), resume each time, and require that
#  * every step-* checkpoint directory present at any point passes `anetrain inspect`,
#  * every restart resumes from the latest complete checkpoint (its first logged step is that + 1),
#  * every step, however often it is recomputed after a kill, logs the same loss as an
#    uninterrupted run, and the final weights (step 40) are bit-identical to that run.
# Some kills are aimed at checkpoint writes: the killer waits for a "*.tmp*" entry to appear in
# RUN/ckpt and kills then. --keep 3 makes the trainer delete old checkpoints, so kills also land
# during deletion.
# Deterministic parts: (1) damage the newest checkpoint (flipped byte in model.anck / state.anck,
# truncated model.anck): inspect must reject it and --resume must skip it (restart at the step
# after the previous checkpoint) and still end bit-identical; (2) with strace, SIGKILL exactly at
# the 1st / 2nd unlink while the trainer prunes an old checkpoint (--keep 1): no step-* directory
# without ".tmp" in its name may be left incomplete (skipped when strace is missing).
#
# Run: /usr/bin/python3 tests/train/test_kill.py --anetrain BIN --assets DIR --workdir DIR [--seed N]
import os
import random
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_shards as ms  # noqa: E402
from make_shards import check, fail  # noqa: E402

STEPS = 40
MIN_KILLS = 10
BACKEND = "cpu"  # --backend
MAX_ROUNDS = 10


def train_args(model, data, threads):
    # vocab 32000 without --compact-vocab: a ~25 MB checkpoint (weights + AdamW moments), so that
    # a write takes long enough to be hit.
    return ["--model", model, "--data", data, "--seq", "64", "--batch", "4", "--accum", "1",
            "--steps", str(STEPS), "--lr", "2e-3", "--min-lr", "2e-4", "--warmup", "5", "--seed", "99",
            "--ckpt-every", "2", "--keep", "3", "--threads", str(threads), "--log-every", "1",
            "--sampling", "random", "--backend", BACKEND]


def check_all_ckpts(a, run_dir, when, seen):
    """inspect every complete step dir; return their steps. seen caches (step, mtime) → ok."""
    steps = ms.ckpt_dirs(run_dir)
    for s, d in sorted(steps.items()):
        try:
            key = (s, os.stat(d).st_mtime_ns, tuple(sorted(os.listdir(d))))
        except FileNotFoundError:
            continue  # deleted by --keep between listing and stat (only possible while running)
        if key in seen:
            continue
        check_ckpt_dir(a, d, when)
        seen.add(key)
    return sorted(steps)


def check_ckpt_dir(a, d, when):
    """A complete checkpoint: the step dir and each of its two files pass `anetrain inspect`."""
    ok, msg = ms.inspect_ok(a.anetrain, d)
    check(ok, "%s: `anetrain inspect %s` failed: %s\n  dir holds %s" % (when, d, msg, sorted(os.listdir(d))))
    for f in ("model.anck", "state.anck"):
        p = os.path.join(d, f)
        check(os.path.exists(p), "%s: %s (a step-* dir without .tmp in its name) lacks %s; it holds %s" %
              (when, d, f, sorted(os.listdir(d))))
        ok, msg = ms.inspect_ok(a.anetrain, p)
        check(ok, "%s: `anetrain inspect %s` failed: %s" % (when, p, msg))


def read_new(path, offset):
    """Telemetry events written after byte offset (a torn line at offset is skipped)."""
    if not os.path.exists(path):
        return [], 0, False
    with open(path, "rb") as f:
        f.seek(offset)
        blob = f.read()
    events, torn = [], False
    lines = blob.split(b"\n")
    import json
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            events.append(json.loads(line.decode("utf-8")))
        except ValueError:
            if i == len(lines) - 1:
                continue  # the killed writer's torn last line
            torn = True  # e.g. a torn line the next process appended to
    return events, offset + len(blob), torn


def wait_tmp_appears(run_dir, proc, deadline):
    d = os.path.join(run_dir, "ckpt")
    while time.time() < deadline and proc.poll() is None:
        try:
            if any(".tmp" in n for n in os.listdir(d)):
                return True
        except FileNotFoundError:
            pass
        time.sleep(0.002)
    return False


def kill_round(a, rng, model, data, base_losses, run_dir, stats):
    ms.rmtree(run_dir)
    tel = os.path.join(run_dir, "telemetry.jsonl")
    seen = set()
    attempt = 0
    while True:
        attempt += 1
        check(attempt <= 200, "no completion after 200 attempts")
        existing = ms.ckpt_dirs(run_dir)
        latest = max(existing) if existing else None
        if latest is None:
            ms.rmtree(run_dir)
            cmd = [a.anetrain, "train"] + train_args(model, data, a.threads) + ["--out", run_dir]
        else:
            cmd = [a.anetrain, "train", "--resume", run_dir]
        offset = os.path.getsize(tel) if os.path.exists(tel) else 0
        log = os.path.join(a.workdir, "attempt.log")
        with open(log, "wb") as lf:
            p = subprocess.Popen(cmd, stdout=lf, stderr=subprocess.STDOUT)
            mode = "tmp" if rng.random() < 0.35 else "delay"
            delay = rng.uniform(0.2, 2.0)
            t0 = time.time()
            killed = False
            if mode == "tmp":
                # Kill as soon as a checkpoint is being written (after a random lead-in).
                time.sleep(rng.uniform(0.0, 0.8))
                if wait_tmp_appears(run_dir, p, t0 + 6.0):
                    time.sleep(rng.choice([0.0, 0.0, 0.001, 0.003, 0.01]))
                    if p.poll() is None:
                        p.send_signal(signal.SIGKILL)
                        killed = True
            else:
                try:
                    p.wait(timeout=delay)
                except subprocess.TimeoutExpired:
                    p.send_signal(signal.SIGKILL)
                    killed = True
            try:
                rc = p.wait(timeout=300)
            except subprocess.TimeoutExpired:
                p.kill()
                fail("trainer did not finish within 300 s: %s" % " ".join(cmd))
        with open(log, "rb") as f:
            out = f.read().decode("utf-8", "replace")
        when = "after attempt %d (%s, %s, latest ckpt before: %s)" % (
            attempt, "resume" if latest else "fresh", "killed" if killed else "exit %d" % rc, latest)
        if killed:
            stats["kills"] += 1
            stats["mode_" + mode] += 1
            if latest is None:
                stats["kills_before_first_ckpt"] += 1
            tmp_left = [n for n in os.listdir(os.path.join(run_dir, "ckpt"))
                        if ".tmp" in n] if os.path.isdir(os.path.join(run_dir, "ckpt")) else []
            if tmp_left:
                stats["kills_leaving_tmp"] += 1
        elif rc != 0:
            fail("%s: trainer exited %d on its own:\n%s" % (when, rc, out[-3000:]))

        steps_now = check_all_ckpts(a, run_dir, when, seen)
        events, _, torn = read_new(tel, offset)
        if torn:
            stats["torn_lines_joined"] += 1
        new_steps = [e["step"] for e in events if e.get("event") == "step"]
        if latest is not None and new_steps:
            check(new_steps[0] == latest + 1,
                  "%s: resumed invocation's first step is %d, but the latest complete checkpoint was %d "
                  "(checkpoints then: %s)" % (when, new_steps[0], latest, sorted(existing)))
            stats["resumes_checked"] += 1
            starts = [e for e in events if e.get("event") == "run_start"]
            if starts and stats.get("resume_key") is None:
                keys = [k for k, v in starts[0].items() if v == latest and k not in ("steps",)]
                stats["resume_key"] = keys or "none (run_start=%r)" % starts[0]
        if latest is not None and not killed:
            check("resum" in out.lower() or new_steps, "%s: no sign of resuming in output: %s" % (when, out[-500:]))
        for e in events:
            if e.get("event") != "step":
                continue
            s = e["step"]
            stats["step_events"] += 1
            if e["loss"] != base_losses[s]:
                fail("%s: step %d loss %r differs from the uninterrupted run's %r" % (when, s, e["loss"], base_losses[s]))
        if steps_now and latest is not None:
            check(max(steps_now) >= latest, "%s: latest checkpoint went back from %d to %d" %
                  (when, latest, max(steps_now)))
        stats["attempts"] += 1
        if not killed:
            check(rc == 0, "%s: exit %d" % (when, rc))
            check(max(steps_now) == STEPS, "%s: finished without a step-%d checkpoint: %s" % (when, STEPS, steps_now))
            check(len(steps_now) <= 3 + 1, "%s: --keep 3 but %d checkpoints remain: %s" % (when, len(steps_now), steps_now))
            return


def corrupt_latest(a, model, data, base_t, base_losses, which, how):
    """Pause at step 20 (checkpoints 16, 18, 20), damage step-20/WHICH, resume: the trainer must
    skip step 20, resume from 18, and still end bit-identical to the uninterrupted run."""
    name = "corrupt[%s,%s]" % (which, how)
    run_dir = os.path.join(a.workdir, "corrupt")
    ms.rmtree(run_dir)
    ms.run([a.anetrain, "train"] + train_args(model, data, a.threads) + ["--out", run_dir, "--stop-at", "20"], check_rc=0)
    ck = ms.ckpt_dirs(run_dir)
    check(sorted(ck) == [16, 18, 20], "%s: after --stop-at 20 want checkpoints [16, 18, 20], have %s" % (name, sorted(ck)))
    f = os.path.join(ck[20], which)
    size = os.path.getsize(f)
    if how == "flip":
        with open(f, "r+b") as fh:
            fh.seek(size // 2)
            b = fh.read(1)
            fh.seek(size // 2)
            fh.write(bytes([b[0] ^ 0x10]))
    else:
        os.truncate(f, size // 2)
    ok, msg = ms.inspect_ok(a.anetrain, f)
    check(not ok, "%s: `anetrain inspect %s` exits 0 on a damaged file" % (name, f))
    ok_dir, _ = ms.inspect_ok(a.anetrain, ck[20])
    if ok_dir:
        print("%s: NOTE: `anetrain inspect %s` (the step dir) exits 0 although its %s is damaged" % (name, ck[20], which))
    tel = os.path.join(run_dir, "telemetry.jsonl")
    offset = os.path.getsize(tel)
    r = ms.run([a.anetrain, "train", "--resume", run_dir], check_rc=0)
    events, _, _ = read_new(tel, offset)
    steps = [e["step"] for e in events if e.get("event") == "step"]
    check(steps and steps[0] == 19, "%s: resumed at step %s (want 19: step-20 is damaged, step-18 is the latest good)"
          % (name, steps[:1]))
    for e in events:
        if e.get("event") == "step" and e["loss"] != base_losses[e["step"]]:
            fail("%s: step %d loss %r vs uninterrupted %r" % (name, e["step"], e["loss"], base_losses[e["step"]]))
    got = ms.export_tensors(a.anetrain, run_dir, os.path.join(a.workdir, "exp_killed"))
    ms.compare_tensors(base_t, got, "%s: final weights vs uninterrupted run" % name)
    warn = [l for l in r.err.splitlines() if "step-00000020" in l]
    print("%s: inspect rejects the file; resume skipped it, restarted at step 19, final weights bit-identical%s"
          % (name, ("; stderr: " + warn[0].strip()) if warn else ""))
    if not a.keep:
        ms.rmtree(run_dir)


def kill_during_prune(a, model, data, when):
    """Deterministic: strace delivers SIGKILL at the WHEN-th unlink/unlinkat, which (with
    --keep 1 --ckpt-every 1) falls inside the deletion of the oldest checkpoint. Afterwards every
    step-* directory without ".tmp" in its name must still be a complete checkpoint."""
    import shutil
    name = "kill-during-prune[unlink #%d]" % when
    strace = shutil.which("strace")
    if not strace:
        print("%s: SKIP (strace not installed)" % name)
        return
    run_dir = os.path.join(a.workdir, "prune")
    ms.rmtree(run_dir)
    args = train_args(model, data, a.threads)
    for k, v in (("--steps", "4"), ("--ckpt-every", "1"), ("--keep", "1")):
        args[args.index(k) + 1] = v
    cmd = [strace, "-f", "-o", os.devnull, "-e", "trace=unlink,unlinkat",
           "-e", "inject=unlink,unlinkat:signal=SIGKILL:when=%d" % when, a.anetrain, "train"] + args + ["--out", run_dir]
    r = ms.run(cmd, timeout=120)
    if r.returncode == 0:
        print("%s: NOTE: the injection never fired (no unlink during the run); nothing to check" % name)
    else:
        print("%s: killed (status %d); checkpoint dirs: %s" % (name, r.returncode,
              {os.path.basename(p): sorted(os.listdir(p)) for p in ms.ckpt_dirs(run_dir).values()}))
    for s, d in sorted(ms.ckpt_dirs(run_dir).items()):
        check_ckpt_dir(a, d, name + " after the kill")
    ms.run([a.anetrain, "train", "--resume", run_dir], check_rc=0)
    check(max(ms.ckpt_dirs(run_dir)) == 4, "%s: resume did not reach step 4" % name)
    print("%s: every step-* dir complete; resume finished" % name)
    if not a.keep:
        ms.rmtree(run_dir)


def main():
    ap = ms.common_args(None, "train_kill")
    ap.add_argument("--seed", type=int, default=20240917)
    a = ap.parse_args()
    global BACKEND
    BACKEND = a.backend
    os.makedirs(a.workdir, exist_ok=True)

    def body():
        rng = random.Random(a.seed)
        model = ms.write_config(os.path.join(a.workdir, "tiny.json"))
        data = ms.small_shard(a.workdir, 60000, a.assets, "train")
        base = os.path.join(a.workdir, "baseline")
        ms.rmtree(base)
        r = ms.run([a.anetrain, "train"] + train_args(model, data, a.threads) + ["--out", base], check_rc=0)
        ev = ms.telemetry(base)
        steps = ms.step_events(ev)
        base_losses = {e["step"]: e["loss"] for e in steps}
        check(sorted(base_losses) == list(range(1, STEPS + 1)), "baseline logged steps %s" % sorted(base_losses))
        check(max(ms.ckpt_dirs(base)) == STEPS, "baseline has no step-%d checkpoint" % STEPS)
        print("baseline: %d steps in %.2f s (mean step %.0f ms)" %
              (STEPS, r.wall, sum(e["ms"] for e in steps) / len(steps)), flush=True)
        base_t = ms.export_tensors(a.anetrain, base, os.path.join(a.workdir, "exp_base"))

        failures = []

        def part(fn, *args):
            try:
                fn(*args)
            except ms.TestFailure as e:
                print("FAIL: %s" % e, flush=True)
                failures.append(str(e))

        part(random_kills, a, rng, model, data, base_losses, base_t)
        for which, how in (("model.anck", "flip"), ("state.anck", "flip"), ("model.anck", "truncate")):
            part(corrupt_latest, a, model, data, base_t, base_losses, which, how)
        for when in (1, 2):
            part(kill_during_prune, a, model, data, when)
        if not a.keep:
            for d in ("baseline", "killed", "exp_base", "exp_killed"):
                ms.rmtree(os.path.join(a.workdir, d))
        if failures:
            fail("%d part(s) failed:\n  %s" % (len(failures), "\n  ".join(failures)))

    ms.run_main("test_kill", body, a.anetrain)


def random_kills(a, rng, model, data, base_losses, base_t):
    """≥ MIN_KILLS SIGKILLs at seeded random moments; each round must end bit-identical."""
    stats = {"kills": 0, "mode_tmp": 0, "mode_delay": 0, "kills_leaving_tmp": 0, "kills_before_first_ckpt": 0,
             "attempts": 0, "step_events": 0, "resumes_checked": 0, "torn_lines_joined": 0, "resume_key": None}
    rounds = 0
    t0 = time.time()
    while stats["kills"] < MIN_KILLS:
        rounds += 1
        check(rounds <= MAX_ROUNDS, "only %d kills in %d rounds" % (stats["kills"], MAX_ROUNDS))
        run_dir = os.path.join(a.workdir, "killed")
        kill_round(a, rng, model, data, base_losses, run_dir, stats)
        got = ms.export_tensors(a.anetrain, run_dir, os.path.join(a.workdir, "exp_killed"))
        ms.compare_tensors(base_t, got, "round %d: final weights after kills vs uninterrupted run" % rounds)
        print("round %d: finished at step %d after %d kills so far; final weights bit-identical" %
              (rounds, STEPS, stats["kills"]), flush=True)
    print("kill stats: %s (%.1f s)" % (stats, time.time() - t0))
    if stats["kills_leaving_tmp"] == 0:
        print("NOTE: no kill left a .tmp directory behind; checkpoint writes may not have been hit")
    if stats["torn_lines_joined"]:
        print("NOTE: %d time(s) a resumed run appended to a torn telemetry line (line unparseable)"
              % stats["torn_lines_joined"])


if __name__ == "__main__":
    main()
