# Nothing of the user's is ever lost: the run folder is anetrain's only when its run.json
# says so, pruning and temp sweeping touch only what the run wrote, one trainer at a time holds a run
# (flock), run.json keeps absolute paths, bad option values are refused before anything exists, and
# `--resume` refuses a flag that would change the run instead of dropping it.
# Each case reproduces a defect found by a hostile-input pass (it failed before the fix).
#
# Run: /usr/bin/python3 tests/train/test_run_folder.py --anetrain BIN --workdir DIR
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_shards as ms  # noqa: E402
from make_shards import check, fail  # noqa: E402


def tree(path):
    """Every file and folder under path with its bytes: what 'nothing changed' compares."""
    out = {}
    for root, dirs, files in os.walk(path):
        for d in dirs:
            out[os.path.relpath(os.path.join(root, d), path) + "/"] = None
        for f in files:
            p = os.path.join(root, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, path)] = fh.read()
    return out


def user_file(path, text="a user's file\n"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def train(a, data, out, *extra, rc=0, steps=20, cwd=None):
    cmd = [a.anetrain, "train", "--model", "stories260k", "--data", data, "--seq", "32", "--batch", "2",
           "--steps", str(steps), "--ckpt-every", "5", "--threads", str(a.threads), "--log-every", "0", "--out", out] + list(extra)
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd, timeout=600)
    r.out, r.err = r.stdout.decode(), r.stderr.decode()
    if rc is not None and r.returncode != rc:
        fail("exit %d (want %d): %s\n%s%s" % (r.returncode, rc, " ".join(cmd), r.out[-2000:], r.err[-2000:]))
    return r


def resume(a, run, *extra, rc=0, cwd=None):
    cmd = [a.anetrain, "train", "--resume", run, "--log-every", "0"] + list(extra)
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd, timeout=600)
    r.out, r.err = r.stdout.decode(), r.stderr.decode()
    if rc is not None and r.returncode != rc:
        fail("exit %d (want %d): %s\n%s%s" % (r.returncode, rc, " ".join(cmd), r.out[-2000:], r.err[-2000:]))
    return r


def run_json(run):
    with open(os.path.join(run, "run.json")) as f:
        return json.load(f)


def resumed_from_listed(run):
    return run_json(run)["checkpoints"][-1]


def resumed_from(r):
    for line in r.out.splitlines():
        if line.startswith("resumed from step"):
            return int(line.split()[3])
    fail("no 'resumed from step' line in:\n" + r.out)


def case_foreign_step_folders(a, w, data):
    # The reproduction: the user's ckpt/step-* folders made every checkpoint be pruned.
    proj = os.path.join(w, "proj")
    for s in (100, 200, 2000):
        user_file(os.path.join(proj, "ckpt", "step-%d" % s, "photo.jpg"))
    before = tree(proj)
    r = train(a, data, proj, rc=1)
    check("not an anetrain run folder" in r.err, "refusal does not say why: " + r.err)
    check(tree(proj) == before, "a refused --out was changed")
    r = train(a, data, proj, "--out-force", rc=1)  # ckpt/ is anetrain's name: still refused
    check("ckpt" in r.err and tree(proj) == before, "--out-force over a foreign ckpt/: " + r.err)


def case_out_force_beside_user_files(a, w, data):
    proj = os.path.join(w, "project")
    user_file(os.path.join(proj, "photo.jpg"))
    user_file(os.path.join(proj, "notes", "todo.txt"))
    before = tree(proj)
    train(a, data, proj, rc=1)
    check(tree(proj) == before, "refused --out changed the folder")
    train(a, data, proj, "--out-force", "--keep", "2")
    after = tree(proj)
    for k, v in before.items():
        check(after.get(k) == v, "user's %s changed or deleted" % k)
    check(run_json(proj)["format"] == "anetrain-run", "run.json lacks the marker")
    check(run_json(proj)["checkpoints"] == [15, 20], "listed checkpoints: %r" % run_json(proj)["checkpoints"])
    r = resume(a, proj, "--steps", "25")
    check(resumed_from(r) == 20, "resume did not find step 20")


def case_out_force_over_dashboard_names(a, w, data):
    # control.json (the dashboard's request to the trainer) and train.log (the output of a trainer
    # the dashboard started) are anetrain's names too: a user's file by either name is refused.
    for name in ("control.json", "train.log"):
        proj = os.path.join(w, "beside_" + name)
        user_file(os.path.join(proj, "photo.jpg"))
        user_file(os.path.join(proj, name), '{"action": "pause", "mine": true}\n')
        before = tree(proj)
        r = train(a, data, proj, "--out-force", rc=1)
        check(name in r.err and "not anetrain's" in r.err, "--out-force over a user's %s: %s" % (name, r.err))
        check(tree(proj) == before, "--out-force over a user's %s changed the folder" % name)


def case_user_files_inside_run(a, w, data):
    # Inside the run's own ckpt/: the user's files next to checkpoints survive pruning and sweeping.
    run = os.path.join(w, "run")
    train(a, data, run, "--keep", "2")
    ck = os.path.join(run, "ckpt")
    planted = ["step-00000001/photo.jpg", "step-7-final/weights.pt", "notes.tmp", "my.tmp.backup/x.bin",
               "step-00000003.tmp/photo.jpg", "step-00000004.tmp.del/photo.jpg", "step-00000002/photo.jpg"]
    for p in planted:
        user_file(os.path.join(ck, p))
    # A plain file with the very name of a checkpoint's temp folder, at a step the resume will save.
    user_file(os.path.join(ck, "step-00000035.tmp"), "a file of the user's\n")
    planted.append("step-00000035.tmp")
    # A copy of this run's own checkpoint into a step folder of the user's (another run's bytes).
    shutil.copytree(os.path.join(ck, "step-00000015"), os.path.join(ck, "step-00000030"))
    with open(os.path.join(ck, "step-00000030", "README"), "w") as f:
        f.write("mine\n")
    before = tree(run)
    resume(a, run, "--steps", "40", "--keep", "1")
    after = tree(run)
    for p in planted + ["step-00000030/README", "step-00000030/model.anck", "step-00000030/state.anck"]:
        p = "ckpt/" + p
        check(p in before and after.get(p) == before[p], "pruning/sweeping touched the user's %s" % p)
    listed = run_json(run)["checkpoints"]
    check(listed == [40], "after --keep 1 the run lists %r" % listed)
    check("step-00000015/" not in after and "step-00000020/" not in after, "the run's old checkpoints were not pruned")


def case_run_json_not_ours(a, w, data):
    d = os.path.join(w, "has_run_json")
    user_file(os.path.join(d, "run.json"), '{"my": "settings"}\n')
    before = tree(d)
    for extra in ([], ["--out-force"]):
        r = train(a, data, d, *extra, rc=1)
        check("run.json" in r.err, "refusal does not name run.json: " + r.err)
        check(tree(d) == before, "the user's run.json folder was changed")


def case_out_is_a_file(a, w, data):
    f = os.path.join(w, "a_file")
    user_file(f, "keep me\n")
    r = train(a, data, f, rc=1)
    check("not a folder" in r.err and "internal error" not in r.err, "--out FILE: " + r.err)
    check(open(f).read() == "keep me\n", "--out FILE changed the file")


def case_lock(a, w, data):
    run = os.path.join(w, "locked")
    cmd = [a.anetrain, "train", "--model", "stories260k", "--data", data, "--seq", "32", "--batch", "2",
           "--steps", "1000000", "--ckpt-every", "500", "--threads", "1", "--log-every", "0", "--out", run, "--seed", "42"]
    first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 60
        while not os.path.exists(os.path.join(run, "run.json")) or not run_json(run)["checkpoints"]:
            check(first.poll() is None and time.time() < deadline, "first trainer did not reach a checkpoint")
            time.sleep(0.1)
        settings = open(os.path.join(run, "run.json")).read()
        who = "pid %d on %s" % (first.pid, socket.gethostname())
        t0 = time.time()
        r = train(a, data, run, "--seed", "7", rc=1)
        check(time.time() - t0 < 10, "a second trainer was not refused at once")
        check("in use by another trainer" in r.err and who in r.err, "refusal does not name the holder: " + r.err)
        r = resume(a, run, rc=1)
        check(who in r.err, "a second --resume was not refused naming the holder: " + r.err)
        check(open(os.path.join(run, "run.json")).read().count('"seed": 42') == 1, "run.json was rewritten")
        check(json.loads(settings)["seed"] == 42, "run.json seed")
        starts = [e for e in ms.telemetry(run) if e.get("event") == "run_start"]
        check(len(starts) == 1, "%d run_start events: a refused trainer wrote telemetry" % len(starts))
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    # The kernel released the lock with the process: the run resumes.
    r = resume(a, run, "--stop-at", str(resumed_from_listed(run) + 1))
    check(resumed_from(r) >= 500, "resume after SIGKILL")


def case_paths_absolute(a, w, data):
    # A run started with relative paths resumes from another directory.
    start = os.path.join(w, "cwd_a")
    os.makedirs(start, exist_ok=True)
    shutil.copy(data, os.path.join(start, "train.bin"))
    train(a, "train.bin", "rel_run", cwd=start, steps=10)
    settings = run_json(os.path.join(start, "rel_run"))
    check(all(os.path.isabs(p) for p in settings["data"]), "run.json data paths are relative: %r" % settings["data"])
    check(os.path.isabs(settings["out"]), "run.json out is relative")
    elsewhere = os.path.join(w, "cwd_b")
    os.makedirs(elsewhere, exist_ok=True)
    r = resume(a, os.path.join(start, "rel_run"), "--steps", "15", cwd=elsewhere)
    check(resumed_from(r) == 10, "resume from another directory")


def case_fresh_out_over_an_unlisted_checkpoint(a, w, data):
    # A run killed just after renaming its first checkpoint into place (not listed yet): a fresh
    # `train --out` must not start over and orphan it, but point to --resume.
    run = os.path.join(w, "orphan")
    train(a, data, run, "--keep", "10", steps=5)
    j = run_json(run)
    j["checkpoints"] = []
    with open(os.path.join(run, "run.json"), "w") as f:
        json.dump(j, f)
    def files(): return {k: v for k, v in tree(run).items() if k != "run.lock"}  # the lock names its last taker
    before = files()
    r = train(a, data, run, rc=1)
    check("already holds a run" in r.err and files() == before, "fresh --out over an unlisted checkpoint: " + r.err)


def case_crash_before_list_update(a, w, data):
    # A checkpoint renamed into place just before a crash (so not yet in run.json's list) is the
    # run's own: resume adopts it (its state names the run's id).
    run = os.path.join(w, "crash")
    train(a, data, run, "--keep", "10")
    j = run_json(run)
    j["checkpoints"] = [s for s in j["checkpoints"] if s != 20]
    with open(os.path.join(run, "run.json"), "w") as f:
        json.dump(j, f)
    r = resume(a, run, "--steps", "25")
    check(resumed_from(r) == 20, "an unlisted checkpoint of this run was not adopted")


def case_resume_keeps_settings(a, w, data):
    # `--resume RUN --lr 1e-3` used to train on at the run's rate without a word. A flag that would
    # change what a resumed run reads or computes is refused, naming it with the run's value, before
    # anything is written; the run's own values typed again (a path spelled relatively, 2e-4 for the
    # stored 0.1 x lr) and the flags that steer only this invocation are taken.
    run = os.path.join(w, "settings")
    train(a, data, run, "--lr", "2e-3")
    before = tree(run)
    r = resume(a, run, "--steps", "25", "--lr", "1e-3", "--seq", "64", "--lora", "4", "--time-budget", "60", rc=1)
    for part in ("--lr 0.001 (the run's: 0.002)", "--seq 64 (the run's: 32)", "--lora 4 (the run's: 0)",
                 "--time-budget 60 (the run's: 0)"):
        check(part in r.err, "a changed setting was not refused naming %r: %s" % (part, r.err))
    check("--steps" not in r.err.split("these would change it:")[1].split(".")[0],
          "--steps, which a resume may change, was named: " + r.err)
    check(tree(run) == before, "a refused --resume changed the run folder")
    r = resume(a, run, "--steps", "25", "--lr", "0.002", "--min-lr", "2e-4", "--seq", "32", "--batch", "2",
               "--model", "stories260k", "--data", os.path.relpath(data, w), "--out", "settings", cwd=w)
    check(resumed_from(r) == 20, "a resume restating the run's own settings did not continue from step 20")
    check("done: 25 steps" in r.out, "--steps was not taken on --resume: " + r.out[-400:])
    # --steps on a resume moves the schedule's end and run.json keeps it (it kept the first run's
    # 20, so a later plain resume went back to that schedule): after a pause at 30, a plain resume
    # ends at 40 with the rates of a run trained to 40 at once. --steps behind the run is refused.
    check(run_json(run)["steps"] == 25, "run.json steps %s after --steps 25" % run_json(run)["steps"])
    resume(a, run, "--steps", "40", "--stop-at", "30")
    check(run_json(run)["steps"] == 40, "run.json steps %s after --steps 40" % run_json(run)["steps"])
    r = resume(a, run)
    check(resumed_from(r) == 30 and "done: 40 steps" in r.out, "a plain resume after --steps 40: " + r.out[-400:])
    straight = os.path.join(w, "settings_straight")
    train(a, data, straight, "--lr", "2e-3", steps=40)

    def rates(d):
        with open(os.path.join(d, "telemetry.jsonl")) as f:
            events = [json.loads(line) for line in f]
        return {e["step"]: e["lr"] for e in events if e.get("event") == "step" and e["step"] > 30}
    check(rates(run) == rates(straight) and len(rates(run)) == 10, "steps 31-40 ran at other rates than a 40-step run's")
    before = tree(run)
    r = resume(a, run, "--steps", "30", rc=1)
    after = tree(run)
    for t in (before, after):  # the lock file names its holder: the refusing process held it
        t.pop("run.lock")
    check("--steps 30 ends before the run's step 40" in r.err and after == before, "--steps behind: " + r.err)


def case_bad_values(a, w, data):
    for flags in (["--lr", "nan"], ["--wd", "nan"], ["--beta1", "nan"], ["--beta2", "2"], ["--time-budget", "nan"],
                  ["--clip", "nan"], ["--eval-batches", "-1"], ["--sample-tokens", "-1"], ["--stop-at", "-1"],
                  ["--threads", "100000"], ["--lr", "inf"], ["--seq", "0"]):
        out = os.path.join(w, "never")
        r = train(a, data, out, *flags, rc=None)
        check(r.returncode not in (0,) and r.returncode < 128, "%s: exit %d" % (flags, r.returncode))
        check(flags[0] in r.err, "%s: the message does not name the option: %s" % (flags, r.err))
        check(not os.path.exists(out), "%s: the run folder was created before the refusal" % flags)


def main():
    ap = ms.common_args("run folder ownership, lock and option checks", "train_run_folder")
    a = ap.parse_args()
    a.anetrain = os.path.abspath(a.anetrain)  # some cases run from other directories
    w = os.path.abspath(a.workdir)
    shutil.rmtree(w, ignore_errors=True)
    os.makedirs(w)
    data = os.path.join(w, "train.bin")
    np.random.RandomState(0).randint(1, 500, size=20000).astype("<u2").tofile(data)
    for case in (case_foreign_step_folders, case_out_force_beside_user_files, case_out_force_over_dashboard_names,
                 case_user_files_inside_run,
                 case_run_json_not_ours, case_out_is_a_file, case_lock, case_paths_absolute,
                 case_crash_before_list_update, case_fresh_out_over_an_unlisted_checkpoint, case_bad_values,
                 case_resume_keeps_settings):
        case(a, w, data)
        print("ok  ", case.__name__, flush=True)


if __name__ == "__main__":
    ms.run_main("train_run_folder", main, ms.DEFAULT_BIN if "--anetrain" not in sys.argv else
                sys.argv[sys.argv.index("--anetrain") + 1])
