#!/usr/bin/env python3
"""Runs the GoogleTest cases of an emulated (qemu-aarch64) build in a few processes, not one each.

Under qemu every process start costs ~0.35 s of translation before the first test runs (the
dynamic loader, static initialisers, GoogleTest registering ~900 cases): 707 one-case processes
spent ~4 min of CPU on starting alone. This takes the cases CTest would run with the given
selection arguments (-E/-R), runs them as SHARDS GoogleTest shards (GTEST_TOTAL_SHARDS) of one
process each, as many at once as there are CPUs, and checks that every selected case ran.
The other tests (the CLI's, the reference scripts) are left to CTest: their names go to
OUT_PREFIX.ctest_regex for `ctest -R`.

Usage: emulated_unit_tests.py BUILD_DIR OUT_PREFIX [--shards N] [--timeout S] -- CTEST_SELECTION_ARGS...
Exit status: 0 when every selected case passed or skipped, 1 otherwise.
"""
import argparse
import concurrent.futures
import json
import os
import re
import subprocess
import sys


def selected_tests(build_dir, selection):
    out = subprocess.run(["ctest", "--show-only=json-v1", *selection], cwd=build_dir, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)["tests"]


def gtest_case(test):
    """The GoogleTest case a CTest test runs alone, or None for any other test."""
    cmd = test.get("command", [])
    filters = [c[len("--gtest_filter="):] for c in cmd if c.startswith("--gtest_filter=")]
    if len(filters) != 1 or not any(c.endswith("/anetrain_tests") for c in cmd):
        return None
    if re.search(r"[*?:\-]", filters[0]):  # a pattern or several cases: leave it to CTest
        return None
    return filters[0]


def prop(test, name, default=None):
    for p in test.get("properties", []):
        if p["name"] == name:
            return p["value"]
    return default


def run_shard(index, shards, program, emulator, workdir, env, filt, timeout, log_path):
    env = dict(env, GTEST_TOTAL_SHARDS=str(shards), GTEST_SHARD_INDEX=str(index))
    with open(log_path, "w") as log:
        try:
            rc = subprocess.run([*emulator, program, "--gtest_filter=" + filt], cwd=workdir, env=env,
                                stdout=log, stderr=subprocess.STDOUT, timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            rc = "timeout after %d s" % timeout
    with open(log_path, errors="replace") as log:
        text = log.read()
    ran = re.search(r"^\[==========\] (\d+) tests? from \d+ test suites? ran", text, re.M)
    failed = re.findall(r"^\[  FAILED  \] ([^ \n,]+)(?: \(|,|$)", text, re.M)
    return rc, int(ran.group(1)) if ran else 0, sorted(set(failed)), text


def main():
    if "--" not in sys.argv:
        sys.exit(__doc__)
    split = sys.argv.index("--")
    ap = argparse.ArgumentParser()
    ap.add_argument("build_dir")
    ap.add_argument("out_prefix")
    ap.add_argument("--shards", type=int, default=8)
    ap.add_argument("--timeout", type=int, default=1800)
    a = ap.parse_args(sys.argv[1:split])
    tests = selected_tests(a.build_dir, sys.argv[split + 1:])
    if not tests:  # a build without tests, or a selection that leaves none: never a silent pass
        print("emulated_unit_tests: CTest lists no tests in %s for %s" % (a.build_dir, " ".join(sys.argv[split + 1:])))
        return 1
    cases, others, program = [], [], None
    for t in tests:
        case = gtest_case(t)
        if case is None:
            others.append(t["name"])
            continue
        cases.append(case)
        cmd = t["command"]
        at = next(i for i, c in enumerate(cmd) if c.endswith("/anetrain_tests"))
        program, emulator = cmd[at], cmd[:at]
        workdir = prop(t, "WORKING_DIRECTORY", a.build_dir)
        env_items = prop(t, "ENVIRONMENT", [])
        env_changes = prop(t, "ENVIRONMENT_MODIFICATION", [])
    for name in others:
        if not re.fullmatch(r"[A-Za-z0-9_]+", name):
            sys.exit("emulated_unit_tests: test name %r needs escaping in a CTest regex" % name)
    with open(a.out_prefix + ".ctest_regex", "w") as f:
        f.write("^(" + "|".join(others) + ")$" if others else "^$")
    print("emulated_unit_tests: %d GoogleTest cases in %d processes; %d other tests for CTest"
          % (len(cases), a.shards if cases else 0, len(others)))
    if not cases:
        return 0
    env = dict(os.environ)
    for item in env_items:  # the cases' own (TMPDIR: the build tree's temp folder)
        key, _, value = item.partition("=")
        env[key] = value
        if key == "TMPDIR":
            os.makedirs(value, exist_ok=True)
    for item in env_changes:  # only the form the suite uses: KEY=set:VALUE (its OpenMP spin)
        key, _, change = item.partition("=")
        op, _, value = change.partition(":")
        if op != "set":
            sys.exit("emulated_unit_tests: unsupported ENVIRONMENT_MODIFICATION %r" % item)
        env[key] = value
    filt = ":".join(cases)
    jobs = os.cpu_count() or 1
    with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
        futures = [pool.submit(run_shard, i, a.shards, program, emulator, workdir, env, filt, a.timeout,
                               "%s.shard%d.log" % (a.out_prefix, i)) for i in range(a.shards)]
        results = [f.result() for f in futures]
    status, total = 0, 0
    for i, (rc, ran, failed, text) in enumerate(results):
        total += ran
        if rc != 0 or failed:
            status = 1
            print("emulated_unit_tests: shard %d: exit %s, failed: %s" % (i, rc, ", ".join(failed) or "(none named)"))
            print("\n".join(text.splitlines()[-60:]))
    if total != len(cases):
        status = 1
        print("emulated_unit_tests: %d cases ran, %d were selected" % (total, len(cases)))
    # GoogleTest lists each skipped case once more, alone on a line, in its summary.
    skipped = sum(len(re.findall(r"^\[  SKIPPED \] [^ \n]+$", r[3], re.M)) for r in results)
    print("emulated_unit_tests: %d of %d cases ran (%d skipped), %s; logs %s.shard*.log"
          % (total, len(cases), skipped, "all passed" if status == 0 else "FAILURES", a.out_prefix))
    return status


if __name__ == "__main__":
    sys.exit(main())
