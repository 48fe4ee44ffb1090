#!/usr/bin/env python3
"""What data parallel training costs and hides on one machine: rounds alternate between
  solo     one process, T threads, --accum 2 × batch B        (the same global batch as 2 ranks)
  dp       mpirun -np 2, T/2 threads each, batch B, gradient sums overlapped with the backward pass
  dp-off   the same with --dist-overlap off (every sum after the backward pass)
and report, from each run's telemetry (steps after the first 3), the median step time, the
all-reduce time the backward pass did not hide, and the overlap achieved.

The last rank to finish its backward pass waits only for the transfer itself, so per step the
smaller of the two ranks' waits is the all-reduce time (with overlap off: all of it; with overlap
on: the part left exposed); the larger one adds the other rank's head start (load imbalance).

Usage: bench/data_parallel.py BIN ASSETS [--model stories15m] [--batch 4] [--seq 256]
                              [--steps 12] [--rounds 2] [--threads 2]
"""
import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import tempfile

MPIRUN = ["mpirun", "--allow-run-as-root", "--oversubscribe", "--bind-to", "none", "-np", "2"]


def steps(run_dir, skip):
    with open(os.path.join(run_dir, "telemetry.jsonl")) as f:
        ev = [json.loads(line) for line in f if line.strip()]
    start = next(e for e in ev if e["event"] == "run_start")
    return start, [e for e in ev if e["event"] == "step" and e["step"] > skip]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bin")
    ap.add_argument("assets")
    ap.add_argument("--model", default="stories15m")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--precision", default="fp32")
    a = ap.parse_args()
    w = tempfile.mkdtemp(prefix="anetrain_dp_bench_")
    with gzip.open(os.path.join(a.assets, "corpora", "war-and-peace.txt.gz"), "rb") as f:
        open(os.path.join(w, "wp.txt"), "wb").write(f.read()[:2_000_000])
    subprocess.run([a.bin, "prepare", os.path.join(w, "wp.txt"), "-z", os.path.join(a.assets, "llama2c", "tokenizer.bin"),
                    "-o", os.path.join(w, "data")], check=True, capture_output=True)
    common = ["train", "--model", a.model, "--data", os.path.join(w, "data", "train_000.bin"), "--seq", str(a.seq),
              "--batch", str(a.batch), "--steps", str(a.steps), "--eval-every", "0", "--ckpt-every", "100000",
              "--log-every", "100000", "--precision", a.precision]
    per = max(1, a.threads // 2)
    sides = {
        "solo": [a.bin] + common + ["--accum", "2", "--threads", str(a.threads)],
        "dp": MPIRUN + [a.bin] + common + ["--threads", str(per)],
        "dp-off": MPIRUN + [a.bin] + common + ["--threads", str(per), "--dist-overlap", "off"],
    }
    ms = {k: [] for k in sides}
    exposed = {k: [] for k in ("dp", "dp-off")}
    imbalance = {k: [] for k in ("dp", "dp-off")}
    compute = {k: [] for k in ("dp", "dp-off")}
    optimizer = {k: [] for k in sides}
    nbytes = 0
    for r in range(a.rounds):
        order = list(sides) if r % 2 == 0 else list(reversed(sides))
        for name in order:
            out = os.path.join(w, "%s%d" % (name, r))
            subprocess.run(sides[name] + ["--out", out], check=True, capture_output=True)
            start, st = steps(out, 3)
            ms[name] += [e["ms"] for e in st]
            optimizer[name] += [e["phase_ms"]["optimizer"] for e in st]
            if name != "solo":
                nbytes = start["allreduce_bytes_per_step"]
                for e in st:
                    waits = [p["allreduce_ms"] for p in e["ranks"]]
                    exposed[name].append(min(waits))
                    imbalance[name].append(max(waits) - min(waits))
                    compute[name] += [p["compute_ms"] for p in e["ranks"]]
        print("round %d: " % (r + 1) + ", ".join("%s %.0f ms/step" % (k, statistics.median(v)) for k, v in ms.items()),
              flush=True)
    med = {k: statistics.median(v) for k, v in ms.items()}
    full, left = statistics.median(exposed["dp-off"]), statistics.median(exposed["dp"])
    print("model %s, global batch 2 × %d × %d tokens, %s; all-reduced per step: %.1f MB (fp32 gradients)" %
          (a.model, a.batch, a.seq, a.precision, nbytes / 1e6))
    print("median ms/step: one process %d threads accum 2: %.0f | 2 ranks × %d thread(s): %.0f (overlap on), "
          "%.0f (off)" % (a.threads, med["solo"], per, med["dp"], med["dp-off"]))
    print("per-rank forward+backward: %.0f ms (on), %.0f ms (off); optimizer (norm, clip, AdamW): %.0f ms (solo), "
          "%.0f ms (2 ranks)" % (statistics.median(compute["dp"]), statistics.median(compute["dp-off"]),
                                  statistics.median(optimizer["solo"]), statistics.median(optimizer["dp"])))
    print("all-reduce: %.1f ms in full (%.2f GB/s of gradients), %.1f ms left exposed with overlap: %.0f%% hidden; "
          "load imbalance between the ranks %.1f ms" %
          (full, nbytes / full / 1e6, left, 100 * (1 - left / full) if full > 0 else 0,
           statistics.median(imbalance["dp"])))
    subprocess.run(["rm", "-rf", w])


if __name__ == "__main__":
    sys.exit(main())
