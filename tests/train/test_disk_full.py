# A full disk under a training run: telemetry.jsonl once stopped mid-line and training went
# on for 294 steps without a word. Now the first failed telemetry write is a loud error naming the
# file and errno, training stops after that step (with a checkpoint when the disk still takes one;
# here it does not, and that is an error too), no half line is left, and once space is freed the run
# resumes from its newest checkpoint.
#
# Needs a small tmpfs (root with CAP_SYS_ADMIN, as in CI); exits 77 (skipped) where mount is refused.
# Run: /usr/bin/python3 tests/train/test_disk_full.py --anetrain BIN --workdir DIR
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_shards as ms  # noqa: E402
from make_shards import check, fail  # noqa: E402


def main():
    ap = ms.common_args("training on a disk that fills up", "train_disk_full")
    a = ap.parse_args()
    w = os.path.abspath(a.workdir)
    mnt = os.path.join(w, "small_disk")
    subprocess.run(["umount", mnt], stderr=subprocess.DEVNULL)
    shutil.rmtree(w, ignore_errors=True)
    os.makedirs(mnt)
    data = os.path.join(w, "train.bin")
    np.random.RandomState(0).randint(1, 500, size=20000).astype("<u2").tofile(data)
    # 6 MB: one stories260k checkpoint (~3.1 MB: weights and both AdamW moments, at step 50) plus
    # ~3 MB of telemetry, which fills up after a few thousand steps.
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", mnt], stderr=subprocess.PIPE).returncode:
        print("train_disk_full: SKIP: cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN)")
        sys.exit(77)
    try:
        run = os.path.join(mnt, "run")
        ms.run([a.anetrain, "train", "--model", "stories260k", "--data", data, "--seq", "32", "--batch", "2",
                "--steps", "1000000", "--stop-at", "50", "--threads", str(a.threads), "--log-every", "0", "--out", run], check_rc=0)
        # No periodic checkpoints from here: the telemetry is what fills the disk.
        r = ms.run([a.anetrain, "train", "--resume", run, "--ckpt-every", "0", "--log-every", "1"], timeout=300)
        check(r.returncode == 1, "exit %d on a full disk (want 1)\n%s" % (r.returncode, r.err[-3000:]))
        tel = os.path.join(run, "telemetry.jsonl")
        check("telemetry could not be written" in r.err and tel in r.err and "No space left on device" in r.err,
              "the error does not name the telemetry file and errno:\n" + r.err[-2000:])
        with open(tel, "rb") as f:
            raw = f.read()
        warned = [l for l in raw.decode().splitlines() if '"event":"warning"' in l and "MB free" in l]
        check(warned, "no early 'disk nearly full' warning in the telemetry (the dashboard shows those)")
        check(raw.endswith(b"\n"), "telemetry.jsonl ends in a half line")
        steps = [json.loads(l)["step"] for l in raw.decode().splitlines() if '"event":"step"' in l]
        # The console's progress shows each step trained: at most the failing step came after the
        # last one recorded.
        shown = [int(m) for m in re.findall(r"step (\d+)/", r.out)]
        check(shown, "no progress on the console")
        check(max(shown) <= steps[-1] + 1, "trained to step %d but telemetry stops at %d: training went on "
              "unrecorded" % (max(shown), steps[-1]))
        with open(os.path.join(run, "run.json")) as f:
            listed = json.load(f)["checkpoints"]
        check(listed, "no checkpoint listed")
        # Space again: the run resumes from its newest listed checkpoint, and the half-written one
        # from the failed save is swept.
        subprocess.run(["mount", "-o", "remount,size=64m", mnt], check=True)
        # A temp folder a killed writer would leave (the failed save above removed its own).
        stale = os.path.join(run, "ckpt", "step-00000007.tmp")
        os.makedirs(stale)
        with open(os.path.join(stale, "model.anck"), "wb") as f:
            f.write(b"partial")
        r = ms.run([a.anetrain, "train", "--resume", run, "--stop-at", str(listed[-1] + 5), "--log-every", "0"],
                   check_rc=0)
        check(("resumed from step %d" % listed[-1]) in r.out, "did not resume from %d:\n%s" % (listed[-1], r.out))
        leftovers = [n for n in os.listdir(os.path.join(run, "ckpt")) if ".tmp" in n]
        check(not leftovers, "temporary checkpoint folders left (a killed writer's is swept): %r" % leftovers)
    finally:
        subprocess.run(["umount", mnt])


if __name__ == "__main__":
    ms.run_main("train_disk_full", main)
