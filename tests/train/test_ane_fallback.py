# A program the Neural Engine rejects costs its stage, not the run, end to end:
# `anetrain train --backend ane-fake` with the fake framework told to reject ffn_fwd (by name) or
# every program using softmax (by operation). Training goes on with that stage on the CPU: one
# ane_fallback event and a warning naming where the program is kept, the count in the progress
# line, losses within the fp16 backends' tolerance of the cpu backend's, and --resume still
# bit-exact. --ane-strict refuses.
#
# Run: /usr/bin/python3 tests/train/test_ane_fallback.py --anetrain BIN --workdir DIR
import os
import shutil
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_shards as ms  # noqa: E402
from make_shards import check  # noqa: E402


def losses(run):
    return {e["step"]: e["loss"] for e in ms.telemetry(run) if e.get("event") == "step"}


def main():
    ap = ms.common_args("per-program CPU fallback of the ane backends", "train_ane_fallback")
    a = ap.parse_args()
    w = os.path.abspath(a.workdir)
    shutil.rmtree(w, ignore_errors=True)
    os.makedirs(w)
    data = os.path.join(w, "train.bin")
    np.random.RandomState(1).randint(1, 500, size=20000).astype("<u2").tofile(data)

    # A rejected program is kept in the temp folder for the user: here, one inside the work folder.
    temp = os.path.join(w, "tmp")
    os.makedirs(temp)

    def train(out, backend, *extra, fault=None, rc=0):
        env = dict(os.environ, TMPDIR=temp)
        if fault:
            env["ANETRAIN_FAKE_ANE"] = fault
        return ms.run([a.anetrain, "train", "--model", "stories260k", "--data", data, "--seq", "32", "--batch", "4",
                       "--steps", "8", "--lr", "1e-3", "--warmup", "2", "--ckpt-every", "4", "--threads", "2",
                       "--log-every", "1", "--backend", backend, "--precision", "fp32", "--out", out] + list(extra),
                      check_rc=rc, env=env)

    cpu = losses(os.path.join(w, "cpu")) if train(os.path.join(w, "cpu"), "cpu") else None
    for name, fault, kernels in (("by_name", "fail=compile,program=ffn_fwd", {"ffn_fwd"}),
                                 ("by_op", "fail=compile,op=softmax", {"attention_fwd", "attention_bwd"})):
        run = os.path.join(w, name)
        r = train(run, "ane-fake", fault=fault)
        events = [e for e in ms.telemetry(run) if e.get("event") == "ane_fallback"]
        check({e["kernel"] for e in events} == kernels and len(events) == len(kernels),
              "%s: ane_fallback events %r" % (name, events))
        check(all("anetrain.fake-ane" in e["reason"] and e["at"] == "compile" for e in events),
              "%s: the events do not carry the runtime's error" % name)
        check("ane fallbacks %d" % len(kernels) in r.out, "%s: no fallback count in the progress line" % name)
        check("runs on the CPU" in r.err, "%s: no warning on stderr:\n%s" % (name, r.err))
        for e in events:
            check(os.path.dirname(os.path.dirname(e["kept"])) == temp and e["kept"] in r.err and
                  os.path.isfile(os.path.join(e["kept"], "model.mil")),
                  "%s: the rejected program is not kept in the temp folder, named in the warning: %r" % (name, e))
        got = losses(run)
        check(sorted(got) == list(range(1, 9)), "%s: steps %r" % (name, sorted(got)))
        for s in got:  # fp16 programs vs fp32 cpu: the stages' 2e-2 tolerance, on the loss
            check(abs(got[s] - cpu[s]) <= 2e-2 * abs(cpu[s]), "%s step %d: loss %g vs cpu %g" % (name, s, got[s], cpu[s]))
        # Paused at step 4 and resumed: the same bits as the run that went straight through.
        split = os.path.join(w, name + "_split")
        train(split, "ane-fake", "--stop-at", "4", fault=fault)
        env = dict(os.environ, ANETRAIN_FAKE_ANE=fault, TMPDIR=temp)
        ms.run([a.anetrain, "train", "--resume", split, "--log-every", "0"], check_rc=0, env=env)
        check(losses(split) == got, "%s: resume is not bit-exact: %r vs %r" % (name, losses(split), got))
        print("ok   %s: %s on the CPU, losses within 2%% of cpu, resume bit-exact" % (name, sorted(kernels)), flush=True)

    r = train(os.path.join(w, "strict"), "ane-fake", "--ane-strict", fault="fail=compile,program=ffn_fwd", rc=1)
    check("ffn_fwd" in r.err and "--ane-strict" in r.err, "--ane-strict: " + r.err)
    check(not os.path.exists(os.path.join(w, "strict")), "--ane-strict left a run folder")
    print("ok   --ane-strict refuses, naming the program", flush=True)


if __name__ == "__main__":
    ms.run_main("train_ane_fallback", main)
