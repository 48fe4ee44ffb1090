"""`anetrain ane bench` through the real binary, off macOS: every sweep's programs compiled,
checked and evaluated at the quick size on ane-sim and on the runtime over the fake framework,
the output labelled simulated with no throughput derived from host time; the seed-size programs
held against the checks without being run; bad options refused.

Usage: ane_bench_cli.py ANETRAIN"""
import json
import subprocess
import sys

BIN = sys.argv[1]
failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what)


def run(*args):
    return subprocess.run([BIN, "ane", "bench", *args], capture_output=True, text=True, timeout=120)


def flops(r):
    return 2 * r["channels"] ** 2 * r["height"] * r["width"] * r["depth"]


# The seed's configurations (seed-system.md 1.2): (channels, height, width, depth) per sweep.
SEED = {
    "peak": [(512, 1, 64, d) for d in (32, 48, 64, 96, 128)] + [(256, 1, 64, d) for d in (64, 128, 256)]
    + [(384, 1, 64, d) for d in (64, 128)] + [(c, 1, 64, 1) for c in (256, 512, 1024, 2048, 3072, 4096)],
    "sram": [(c, 1, 64, 1) for c in (256, 512, 1024, 1536, 2048, 2560, 3072, 3584, 4096, 4608, 5120, 6144)]
    + [(8192, 1, 32, 1)],
    "int8": [(c, 64, 64, d) for c, d in ((512, 128), (512, 64), (256, 256), (256, 128), (384, 128)) for _ in (0, 1)],
}

for executor in ("ane-sim", "ane-fake"):
    p = run("--json", "--quick", "--executor", executor)
    check(p.returncode == 0, f"{executor}: --quick exits 0 (rc {p.returncode}) {p.stderr[-300:]}")
    if p.returncode != 0:
        continue
    rep = json.loads(p.stdout)
    rows = rep["results"]
    check(rep["executor"] == executor and all(r["executor"] == executor for r in rows), f"{executor}: executor named")
    check(rep["simulated"] is True and "simulated" in rep["time"], f"{executor}: labelled simulated: {rep['time']}")
    check({r["sweep"] for r in rows} == {"peak", "sram", "int8"}, f"{executor}: every sweep appears")
    check([r["sweep"] for r in rows].count("int8") == 10 and sum(r["precision"] == "w8a8" for r in rows) == 5,
          f"{executor}: int8 has each chain in fp16 and W8A8")
    check(all(r["flops"] == flops(r) for r in rows), f"{executor}: FLOPs = 2*C*C*H*W*depth in every row")
    check(all(r["checks"] == "ok" and r["status"] == "ok" for r in rows),
          f"{executor}: every program passes strict + limits and runs: "
          + "; ".join(f"{r['config']}: {r['status']}" for r in rows if r["status"] != "ok"))
    check(all(r["verified"] and r["verified"]["ok"] and r["verified"]["relative_l2_error"] <= r["verified"]["bound"]
              and r["verified"]["bound"] == r["depth"] * 2 ** -11 for r in rows),
          f"{executor}: every output matches the host fp32 reference within depth * 2^-11")
    check(all(r["host_ms_simulated"] > 0 for r in rows), f"{executor}: host ms reported")
    check(rep["fp16_peak_tflops"] is None and "no utilisation" in rep["peak_source"], f"{executor}: no peak claimed")
    claims = [k for r in rows for k in ("tflops", "tops", "ms_per_eval", "gflops_per_weight_mib", "spilling", "percent_of_fp16_peak",
                                        "fp16_over_w8a8") if k in r]
    check(not claims, f"{executor}: no throughput claimed from simulated time {claims[:3]}")
    quick_seed = [(max(32, c // 8), h, w, d if d == 1 else max(2, d // 16)) for s in SEED.values() for c, h, w, d in s]
    check([(r["channels"], r["height"], r["width"], r["depth"]) for r in rows] == quick_seed,
          f"{executor}: quick = the seed's configurations, channels / 8 and depth / 16")

# The seed's own sizes: every program built and checked; none too large for the guard is run.
p = run("--json", "--max-gflop", "0.001")
rep = json.loads(p.stdout)
rows = rep["results"]
check(p.returncode == 0 and rep["skipped"] == len(rows) == 39, f"seed sizes: 39 programs, all skipped (rc {p.returncode})")
check(all(r["checks"] == "ok" for r in rows), "seed sizes: every program passes strict + the ANE limits")
check(all(r["status"].startswith("skipped:") and "--max-gflop" in r["status"] for r in rows), "seed sizes: skips say why")
for sweep, configs in SEED.items():
    got = [(r["channels"], r["height"], r["width"], r["depth"]) for r in rows if r["sweep"] == sweep]
    check(got == configs, f"seed sizes: {sweep} has the seed's configurations")
check(all(r["flops"] == flops(r) for r in rows), "seed sizes: FLOPs formula")

# Text: the time column says what it is, and no TFLOPS column is printed.
p = run("--quick", "--sweep", "int8")
headers = [line for line in p.stdout.splitlines() if line.strip().startswith("config")]
check(p.returncode == 0 and headers and all("host ms (simulated)" in h and "TFLOPS" not in h for h in headers)
      and "SIMULATED" in p.stdout and "TOPS," not in p.stdout,
      "text: host ms (simulated), no TFLOPS column")
check(p.stdout.count("w8a8 ") == 5 and "peak:" not in p.stdout, "text: --sweep int8 prints only int8")

# Bad options: a clear error and a non-zero exit.
p = run("--sweep", "bogus")
check(p.returncode != 0 and "bogus" in p.stderr, f"--sweep bogus refused: {p.stderr.strip()[:120]}")
for flag, value in (("--max-gflop", "nan"), ("--max-gflop", "-1"), ("--repeats", "0"), ("--warmup", "1.5")):
    p = run("--quick", flag, value)
    check(p.returncode != 0 and flag in p.stderr, f"{flag} {value} refused: {p.stderr.strip()[:100]}")
p = run("--executor", "ane")
if sys.platform != "darwin":
    check(p.returncode != 0 and "not built" in p.stderr, f"--executor ane off macOS refused: {p.stderr.strip()[:120]}")

print(f"{len(failures)} failures")
sys.exit(1 if failures else 0)
