# Training on ane-sim (every block stage as fp16 MIL programs, dynamic loss scaling) against the
# cpu backend on real text:
#  * a tiny Llama (2 layers, GQA 4/2) trained 300 steps on War and Peace by both backends: the
#    validation loss at every evaluation (every 50 steps) within 2% of the cpu run's;
#  * an overflow injected into step 40's gradients: ane-sim skips the update, halves the loss scale
#    (65536 → 32768), counts it apart from --max-nonfinite, doubles the scale back after
#    --loss-scale-window clean steps, and the telemetry, progress line and checkpoint say so;
#    the cpu run skips the same step as non-finite, so the two runs stay comparable.
# Exact resume and SIGKILL safety on ane-sim are test_resume.py / test_kill.py --backend ane-sim.
# Run: /usr/bin/python3 tests/train/test_ane_sim_training.py --anetrain BIN --assets DIR --workdir DIR
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_shards as ms  # noqa: E402
from make_shards import check  # noqa: E402

STEPS = 300
OVERFLOW_AT = 40
WINDOW = 50


def train(a, backend, model, data, val, out):
    ms.rmtree(out)
    args = [a.anetrain, "train", "--model", model, "--data", data, "--val-data", val, "--seq", "64", "--batch", "4",
            "--steps", str(STEPS), "--lr", "3e-3", "--warmup", "10", "--seed", "7", "--compact-vocab",
            "--eval-every", "50", "--eval-batches", "4", "--ckpt-every", "100", "--threads", str(a.threads),
            "--log-every", "25", "--backend", backend, "--inject-overflow", str(OVERFLOW_AT),
            "--loss-scale-window", str(WINDOW), "--out", out]
    r = ms.run(args, timeout=1200, check_rc=0)
    return r, ms.telemetry(out)


def main():
    a = ms.common_args(__doc__, "train_ane_sim").parse_args()
    os.makedirs(a.workdir, exist_ok=True)

    def body():
        model = ms.write_config(os.path.join(a.workdir, "tiny.json"))
        info = ms.make_corpus_shards(a.assets, a.workdir)
        val = os.path.join(a.workdir, "shards", "val-16000.bin")
        ms.write_u16_shard(val, ms.read_u16_shard(info["val"])[:16000])
        runs = {}
        for be in ("cpu", "ane-sim"):
            r, ev = train(a, be, model, info["train"], val, os.path.join(a.workdir, be))
            runs[be] = ev
            print("%s: %d steps in %.1f s" % (be, STEPS, r.wall), flush=True)
            if be == "ane-sim":
                check("scale 65536" in r.out and "skipped 1" in r.out, "progress line lacks the scale: %s" % r.out[-600:])
                check("fp16 gradients overflowed at loss scale 65536" in r.out, "no overflow message: %s" % r.out[-600:])

        evals = {be: {e["step"]: e["val_loss"] for e in ev if e.get("event") == "eval"} for be, ev in runs.items()}
        check(sorted(evals["cpu"]) == sorted(evals["ane-sim"]) == list(range(50, STEPS + 1, 50)),
              "eval steps differ: %s vs %s" % (sorted(evals["cpu"]), sorted(evals["ane-sim"])))
        worst = 0.0
        for step in sorted(evals["cpu"]):
            c, s = evals["cpu"][step], evals["ane-sim"][step]
            rel = abs(s - c) / c
            worst = max(worst, rel)
            print("  step %3d: val loss cpu %.4f, ane-sim %.4f (%.3f%%)" % (step, c, s, 100 * rel))
            check(rel <= 0.02, "step %d: ane-sim val loss %.4f is %.2f%% from cpu's %.4f (bound 2%%)" % (step, s, 100 * rel, c))
        first, last = evals["cpu"][50], evals["cpu"][STEPS]
        check(last < first - 0.3, "the cpu run barely learned (%.3f → %.3f): the comparison would be vacuous" % (first, last))

        steps = {e["step"]: e for e in ms.step_events(runs["ane-sim"])}
        check(steps[OVERFLOW_AT]["overflow"] and steps[OVERFLOW_AT]["skipped"], "step %d not reported as overflow" % OVERFLOW_AT)
        check(steps[OVERFLOW_AT - 1]["loss_scale"] == 65536 and steps[OVERFLOW_AT + 1]["loss_scale"] == 32768,
              "scale around the overflow: %s → %s" % (steps[OVERFLOW_AT - 1]["loss_scale"], steps[OVERFLOW_AT + 1]["loss_scale"]))
        back = OVERFLOW_AT + WINDOW + 1
        check(steps[back - 1]["loss_scale"] == 32768 and steps[back]["loss_scale"] == 65536,
              "scale did not double after %d clean steps: %s, %s" % (WINDOW, steps[back - 1]["loss_scale"], steps[back]["loss_scale"]))
        # Besides the injected one, overflows may happen only where dynamic loss scaling is meant to
        # find them: after the scale has grown past the initial 2^16 (the window doubles it every
        # 50 clean steps, to 2^20 by step 290). One at or below 2^16 would mean the fp16 programs
        # overflow where they should not.
        natural = [(s, e["loss_scale"]) for s, e in sorted(steps.items()) if e["overflow"] and s != OVERFLOW_AT]
        check(all(scale > 65536 for _, scale in natural), "overflow at the initial scale or below: %s" % natural)
        if natural:
            print("natural overflows (step, scale) once the scale had grown: %s" % natural)
        check(not any(e.get("event") == "nonfinite" for e in runs["ane-sim"]), "an overflow counted as non-finite")
        check(all(e["loss_scale"] == 1 for e in ms.step_events(runs["cpu"])), "the fp32 cpu run scaled its loss")
        state = ms.run([a.anetrain, "inspect", os.path.join(a.workdir, "ane-sim"), "--json"], check_rc=0).out
        check("overflow_total" in state and "loss_scale" in state, "checkpoint state lacks the loss scale: %s" % state[:400])
        print("overflow at step %d: skipped, scale 65536 → 32768 → 65536 at step %d; worst val-loss gap %.3f%%"
              % (OVERFLOW_AT, back, 100 * worst))
        if not a.keep:
            for be in ("cpu", "ane-sim"):
                ms.rmtree(os.path.join(a.workdir, be))

    ms.run_main("test_ane_sim_training", body, a.anetrain)


if __name__ == "__main__":
    main()
