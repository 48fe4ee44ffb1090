# The end-of-run efficiency report: a short `anetrain train` of stories260K on cpu and on ane-sim
# (6 steps, an evaluation at step 3 and 6) must end its telemetry with one `efficiency` event that
#  * shares the wall time out: compute + compile + io + cpu + other = 1 (±1e-6), each in [0, 1];
#  * adds up what the run's own events say: step_ms = Σ step ms, compute_ms / io_ms = Σ the
#    kernels' eval_ms / io_ms, accelerator FLOPs per step = Σ the kernels' gflop / steps, CPU FLOPs
#    per step = run_start's flops_per_step − the kernels' model_gflop (relative 1e-9: the same
#    doubles, summed);
#  * on cpu: no programs and no accelerator time; the rate is the model's FLOPs over the step time
#    and the utilisation that rate over run_start's measured matrix peak;
#  * on ane-sim: the CPU's FLOPs are exactly what stays on the host — every weight gradient (one
#    forward's worth of layer products) and the classifier's forward and backward: per token
#    2·L·(D·qd + 2·D·kvd + qd·D + 3·D·F) + 3·2·V·D; one compile per program of the layer plan — the training programs `anetrain ane
#    dump` lists for the same model and seq, by name — its compile_ms the `programs` events' sum,
#    and no utilisation claimed ("simulated: no utilisation claimed", in telemetry and printed);
#  * a LoRA run over a masked shard counts what its steps need: the frozen base's forward and input
#    gradients, the adapters' three products, attention's, the classifier on the counted rows alone;
#  * `fit-batch` of one batch of the same shape prints the same report: its steps, shares summing
#    to 100%, train's matrix FLOPs per step on each backend, and on ane-sim the plan's compiles.
# Run: /usr/bin/python3 tests/train/test_efficiency_report.py --anetrain BIN --assets DIR --workdir DIR
import json
import math
import os
import re
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_shards as ms  # noqa: E402
from make_shards import check  # noqa: E402

STEPS = 6
SEQ = 64


def close(a, b, rel=1e-9, what=""):
    check(abs(a - b) <= rel * max(abs(a), abs(b)) + 1e-12, "%s: %r vs %r" % (what, a, b))


def train(a, model, backend, train_bin, val_bin):
    out = os.path.join(a.workdir, backend)
    ms.rmtree(out)
    r = ms.run([a.anetrain, "train", "--model", model, "--backend", backend, "--precision", "fp32",
                "--data", train_bin, "--val-data", val_bin, "--steps", str(STEPS), "--batch", "2", "--seq", str(SEQ),
                "--eval-every", "3", "--eval-batches", "2", "--threads", "2", "--seed", "5", "--out", out],
               timeout=300, check_rc=0)
    return ms.telemetry(out), r.out


def fit_batch_report(a, model, backend, train_bin, e):
    """`fit-batch` on one batch of the same shape ends with train's report: its steps, shares that
    sum to 100% (as printed, to 0.1% each), and the matrix FLOPs per step the train run's event gives."""
    tokens = os.path.join(a.workdir, "fit_tokens.u16")
    with open(train_bin, "rb") as f:  # the shard's last 2 rows of T+1 ids (uint16, after its header)
        raw = f.read()
    with open(tokens, "wb") as f:
        f.write(raw[-2 * 2 * (SEQ + 1):])
    r = ms.run([a.anetrain, "fit-batch", model, "--tokens", tokens, "--u16", "--batch", "2", "--seq", str(SEQ),
                "--steps", str(STEPS), "--backend", backend, "--threads", "2", "-o",
                os.path.join(a.workdir, "fit.safetensors")], timeout=300, check_rc=0)
    m = re.search(r"^efficiency: (\d+) steps in [\d.]+ s — accelerator ([\d.]+)%, compile ([\d.]+)%, "
                  r"staging I/O ([\d.]+)%, CPU ([\d.]+)%, other ([\d.]+)%$", r.err, re.M)
    check(m, "%s: fit-batch printed no efficiency report:\n%s" % (backend, r.err[-2000:]))
    check(int(m.group(1)) == STEPS, "%s: fit-batch reported %s steps" % (backend, m.group(1)))
    total = sum(float(m.group(i)) for i in range(2, 7))
    check(abs(total - 100) <= 0.26, "%s: fit-batch's shares sum to %.1f%%" % (backend, total))
    gflop = lambda f: "%.3g GFLOP" % (f / 1e9)
    want = "matrix FLOPs per step: %s on the accelerator, %s on the CPU" % (
        gflop(e["matrix_flops_per_step"]["accelerator"]), gflop(e["matrix_flops_per_step"]["cpu"]))
    check(want in r.err, "%s: fit-batch's FLOPs are not train's (%s):\n%s" % (backend, want, r.err[-2000:]))
    return r.err


def lora_over_masked_data(a, model, train_bin, val_bin):
    """A LoRA run on a masked copy of the shard: the report counts the products such a step needs —
    the frozen base's forward and input gradients (no weight gradients), the adapters' three
    products each, attention's, and the classifier on the counted rows alone — so its utilisation
    stays a share of the peak (it read 408% when every step was counted as full training)."""
    masked = os.path.join(a.workdir, "masked")
    ms.rmtree(masked)
    os.makedirs(masked)
    shard = os.path.join(masked, "train_000.bin")
    with open(train_bin, "rb") as f:
        raw = f.read()
    with open(shard, "wb") as f:
        f.write(raw)
    n = struct.unpack("<Q", raw[16:24])[0]
    with open(shard[:-4] + ".mask", "wb") as f:  # every third target counts
        f.write(b"ANTMASK1" + struct.pack("<IIQQ", 1, 8, n, 0) + bytes(1 if i % 3 == 0 else 0 for i in range(n)))
    out = os.path.join(a.workdir, "lora")
    ms.rmtree(out)
    rank = 4
    ms.run([a.anetrain, "train", "--model", model, "--lora", str(rank), "--precision", "fp32", "--data", shard,
            "--val-data", val_bin, "--steps", str(STEPS), "--batch", "2", "--seq", str(SEQ), "--eval-every", "3",
            "--eval-batches", "2", "--threads", "2", "--seed", "5", "--out", out], timeout=300, check_rc=0)
    events = ms.telemetry(out)
    start = next(x for x in events if x.get("event") == "run_start")
    c = start["config"]
    D, F, V, L = c["dim"], c["hidden_dim"], c["vocab_size"], c["n_layers"]
    qd, kvd = c["n_heads"] * c["head_dim"], c["n_kv_heads"] * c["head_dim"]
    frozen = L * (D * qd + 2 * D * kvd + qd * D + 3 * D * F)
    adapters = L * rank * ((D + qd) + 2 * (D + kvd) + (qd + D) + 2 * (D + F) + (F + D))
    attention = 2 * 2 * L * qd * (SEQ + 1) / 2
    rows = 2 * SEQ
    counted = [s["counted_targets"] for s in ms.step_events(events)]
    check(all(0 < k < rows for k in counted), "counted targets per step: %s" % counted)
    want = rows * (2 * 2 * frozen + 3 * 2 * adapters + 3 * attention) + 2 * 2 * V * D * sum(counted) / STEPS
    e, _ = check_common("cpu LoRA, masked", events, cpu_flops=want)
    close(e["achieved_gflops"], want * STEPS / (e["step_ms"] / 1000) / 1e9, what="LoRA rate")
    check(0 < e["utilisation"] <= 1, "LoRA utilisation %r of the peak" % e["utilisation"])
    print("cpu LoRA over masked data: %.3g GFLOP/step, utilisation %.4f" % (want / 1e9, e["utilisation"]))


def check_common(backend, events, cpu_flops=None):
    eff = [e for e in events if e.get("event") == "efficiency"]
    check(len(eff) == 1, "%s: %d efficiency events" % (backend, len(eff)))
    e = eff[0]
    check(events[-1].get("event") == "run_end" and events[-2] is e, "%s: efficiency is not just before run_end" % backend)
    shares = e["shares"]
    check(set(shares) == {"compute", "compile", "io", "cpu", "other"}, "%s: shares %s" % (backend, sorted(shares)))
    check(all(0 <= v <= 1 for v in shares.values()), "%s: a share outside [0, 1]: %s" % (backend, shares))
    total = sum(shares.values())
    check(abs(total - 1) <= 1e-6, "%s: shares sum to %.9f" % (backend, total))
    steps = ms.step_events(events)
    check(e["steps"] == STEPS == len(steps), "%s: %s steps reported, %d step events" % (backend, e["steps"], len(steps)))
    close(e["step_ms"], sum(s["ms"] for s in steps), what=backend + " step_ms")
    for s in steps:  # each step's own rate of the programs, only where programs ran
        ran = sum(k["gflop"] for k in (s.get("kernels") or {}).values())
        if s.get("kernels"):
            close(s["accelerator_gflops"], ran / (s["ms"] / 1000), what=backend + " accelerator_gflops")
        else:
            check("accelerator_gflops" not in s, "%s: an accelerator rate without programs" % backend)
    kernels = [k for s in steps for k in (s.get("kernels") or {}).values()]
    close(e["compute_ms"], sum(k["eval_ms"] for k in kernels), what=backend + " compute_ms")
    close(e["io_ms"], sum(k["io_ms"] for k in kernels), what=backend + " io_ms")
    acc = sum(k["gflop"] for k in kernels) * 1e9 / STEPS
    close(e["matrix_flops_per_step"]["accelerator"], acc, what=backend + " accelerator FLOPs")
    counted = sum(k["model_gflop"] for k in kernels) * 1e9 / STEPS
    check(counted <= acc * (1 + 1e-12), "%s: the programs stand for more FLOPs than they ran" % backend)
    start = next(x for x in events if x.get("event") == "run_start")
    if cpu_flops is None:
        cpu_flops = max(0.0, start["flops_per_step"] - counted)
    close(e["matrix_flops_per_step"]["cpu"], cpu_flops, what=backend + " CPU FLOPs")
    check(e["wall_s"] * 1000 >= e["step_ms"], "%s: wall %.3f s shorter than its steps" % (backend, e["wall_s"]))
    return e, start


def main():
    a = ms.common_args(__doc__, "train_efficiency").parse_args()
    os.makedirs(a.workdir, exist_ok=True)
    model = os.path.join(a.assets, "llama2c", "stories260K.bin")

    def body():
        train_bin, val_bin = ms.prepared_war_and_peace(a.anetrain, a.assets, a.workdir, 120000)
        # cpu: everything on the CPU, utilisation against its measured peak.
        events, _ = train(a, model, "cpu", train_bin, val_bin)
        e, start = check_common("cpu", events)
        check(e["compiles"] == 0 and e["compile_ms"] == 0, "cpu compiled programs: %s" % e["compiles"])
        check(not [x for x in events if x.get("event") == "programs"], "cpu wrote a programs event")
        check(e["shares"]["compute"] == 0 and e["shares"]["io"] == 0, "cpu: accelerator time %s" % e["shares"])
        check(e["peak_on"] == "cpu" and e["peak_gflops"] == start["matrix_peak_gflops"] > 0, "cpu peak %s" % e)
        close(e["achieved_gflops"], start["flops_per_step"] * STEPS / (e["step_ms"] / 1000) / 1e9, what="cpu rate")
        close(e["utilisation"], e["achieved_gflops"] / e["peak_gflops"], what="cpu utilisation")
        print("cpu: shares %s, utilisation %.4f" % (json.dumps(e["shares"]), e["utilisation"]))
        printed = fit_batch_report(a, model, "cpu", train_bin, e)
        check("(measured on this CPU at start)" in printed, "fit-batch on cpu claims no utilisation:\n" + printed)
        lora_over_masked_data(a, model, train_bin, val_bin)

        # ane-sim: the plan's programs compiled once each, no utilisation.
        dump = os.path.join(a.workdir, "dump")
        ms.rmtree(dump)
        ms.run([a.anetrain, "ane", "dump", model, dump, "--seq", str(SEQ), "--batch", "2"], check_rc=0)
        with open(os.path.join(dump, "manifest.json")) as f:
            planned = sorted(p["name"] for p in json.load(f)["programs"] if not p["name"].startswith("decode_"))
        events, printed = train(a, model, "ane-sim", train_bin, val_bin)
        e, start = check_common("ane-sim", events)
        compiled = [p for x in events if x.get("event") == "programs" for p in x["programs"]]
        check(sorted(p["program"] for p in compiled) == planned,
              "ane-sim compiled %s, the plan has %s" % (sorted(p["program"] for p in compiled), planned))
        check(e["compiles"] == len(planned), "ane-sim: %d compiles, %d planned" % (e["compiles"], len(planned)))
        close(e["compile_ms"], sum(p["compile_ms"] + p["load_ms"] for p in compiled), what="ane-sim compile_ms")
        check(all(p["compile_ms"] > 0 for p in compiled), "a program compiled in no time")
        check(e["shares"]["compute"] > 0 and e["shares"]["compile"] > 0, "ane-sim: %s" % e["shares"])
        check(e["utilisation"] is None and e["peak_gflops"] == 0 and start["matrix_peak_gflops"] == 0,
              "ane-sim claimed a utilisation: %s" % e)
        check(e["peak_source"] == "simulated: no utilisation claimed", "ane-sim peak source %r" % e["peak_source"])
        check("efficiency:" in printed and "simulated: no utilisation claimed" in printed,
              "train printed no efficiency report:\n" + printed[-2000:])
        c = start["config"]
        D, F, V, L = c["dim"], c["hidden_dim"], c["vocab_size"], c["n_layers"]
        qd, kvd = c["n_heads"] * c["head_dim"], c["n_kv_heads"] * c["head_dim"]
        host = 2 * L * (D * qd + 2 * D * kvd + qd * D + 3 * D * F) + 3 * 2 * V * D
        close(e["matrix_flops_per_step"]["cpu"], host * 2 * SEQ, rel=1e-9, what="ane-sim: the host's FLOPs")
        print("ane-sim: %d programs, shares %s" % (e["compiles"], json.dumps(e["shares"])))
        printed = fit_batch_report(a, model, "ane-sim", train_bin, e)
        check("simulated: no utilisation claimed" in printed and
              "compile: %d programs" % len(planned) in printed, "fit-batch on ane-sim:\n" + printed)
        print("fit-batch: the same report on cpu and ane-sim", flush=True)
        if not a.keep:
            for d in ("cpu", "ane-sim", "dump"):
                ms.rmtree(os.path.join(a.workdir, d))

    ms.run_main("test_efficiency_report", body, a.anetrain)


if __name__ == "__main__":
    main()
