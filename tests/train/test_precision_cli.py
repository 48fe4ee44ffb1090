# --precision from the command line: the default follows the CPU (bf16 where /proc/cpuinfo lists
# avx512_bf16 or amx_bf16, else fp32) and is recorded in run.json and run_start; bf16 with a
# backend other than cpu is refused with a message naming the flag; a run resumed with another
# precision is refused (its checkpoints resume bit-exactly only in their own); and
# `bench train --peer pytorch` prints both sides and their ratio for each precision.
# Run: /usr/bin/python3 tests/train/test_precision_cli.py --anetrain BIN --assets DIR --workdir DIR
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_shards as ms  # noqa: E402
from make_shards import check  # noqa: E402


def cpu_has_native_bf16():
    with open("/proc/cpuinfo") as f:
        flags = f.read()
    return bool(re.search(r"\b(avx512_bf16|amx_bf16)\b", flags))


def main():
    a = ms.common_args(None, "train_precision_cli").parse_args()
    os.makedirs(a.workdir, exist_ok=True)
    model = ms.write_config(os.path.join(a.workdir, "tiny.json"))
    data = ms.small_shard(a.workdir, 20000, a.assets, "train")
    base = ["train", "--model", model, "--data", data, "--seq", "32", "--batch", "2", "--steps", "3",
            "--threads", str(a.threads), "--log-every", "1"]

    run = os.path.join(a.workdir, "default")
    ms.rmtree(run)
    r = ms.run([a.anetrain] + base + ["--out", run], check_rc=0)
    want = "bf16" if cpu_has_native_bf16() else "fp32"
    with open(os.path.join(run, "run.json")) as f:
        check(json.load(f)["precision"] == want, "default precision is not %s on this CPU" % want)
    start = [e for e in ms.telemetry(run) if e.get("event") == "run_start"][0]
    check(start["precision"] == want and start.get("gemm_isa"), "run_start lacks precision/gemm_isa: %r" % start)
    check(", %s," % want in r.out + r.err, "the run header does not show the precision:\n%s" % (r.out + r.err)[-800:])
    print("default precision here: %s (oneDNN dispatch %s)" % (want, start["gemm_isa"]))

    other = "fp32" if want == "bf16" else "bf16"
    r = ms.run([a.anetrain, "train", "--resume", run, "--steps", "5", "--precision", other])
    check(r.returncode != 0 and "keeps it" in r.err, "resume with another precision was not refused: %d %s" %
          (r.returncode, r.err[-500:]))

    bad = os.path.join(a.workdir, "ref_bf16")
    ms.rmtree(bad)
    r = ms.run([a.anetrain] + base + ["--backend", "ref", "--precision", "bf16", "--out", bad])
    check(r.returncode == 1 and "--precision bf16" in r.err, "bf16 on ref: exit %d, %s" % (r.returncode, r.err[-500:]))
    r = ms.run([a.anetrain] + base + ["--precision", "fp16", "--out", bad])
    check(r.returncode != 0 and "fp16" in r.err, "--precision fp16 accepted: exit %d" % r.returncode)

    try:
        import torch  # noqa: F401  (the peer's own import; absent here means no peer to run)
    except ImportError:
        print("bench train: skipped (no torch for the PyTorch peer in this Python)")
        print("PRECISION CLI: PASS")
        return
    r = ms.run([a.anetrain, "bench", "train", model, "--batch", "2", "--seq", "32", "--steps", "1", "--rounds", "1",
                "--threads", str(a.threads)], timeout=600, check_rc=0)
    print(r.out)
    for p in ("fp32", "bf16"):
        row = re.search(r"^anetrain %s\s+([0-9.]+)\s+([0-9.]+)\s+([0-9]+)\s+([0-9.]+)×" % p, r.out, re.M)
        check(row and float(row.group(1)) > 0, "bench train: no anetrain %s row with a ratio" % p)
        check(re.search(r"^pytorch %s\s+[0-9.]+" % p, r.out, re.M), "bench train: no pytorch %s row" % p)
    print("PRECISION CLI: PASS")


if __name__ == "__main__":
    main()
