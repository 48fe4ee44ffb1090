#!/usr/bin/env python3
"""Sixteen readers of a ~50 MB telemetry file at once, against the real `anetrain dashboard`.

`/api/runs/N/telemetry` runs inside the training process under `train --dashboard`: built whole
in memory per request, sixteen readers of a large file cost gigabytes there. Streamed from the
file, the server's peak resident memory (VmHWM in /proc/PID/status) may grow by far less than
the file's size, and every reply must still be complete and identical (each line checked: a
malformed line is counted in bad_lines, never passed on).

Usage: dashboard_load.py ANETRAIN WORKDIR   (talks only to 127.0.0.1; exit 77: no web page built)
"""
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

BIN, WORK = sys.argv[1], sys.argv[2]
READERS = 16
STEPS = 34_000  # ~1.5 KB a line: ~50 MB
MAX_GROWTH_MB = 100  # 16 whole copies of the file would be ~800 MB; streamed, a few MB per reader

shutil.rmtree(WORK, ignore_errors=True)
run = os.path.join(WORK, "run")
os.makedirs(run)
path = os.path.join(run, "telemetry.jsonl")
pad = "ünïcödé ● " * 90
with open(path, "w", encoding="utf-8") as f:
    f.write(json.dumps({"event": "run_start", "time": 0, "options": {"model": "stories260k"}}) + "\n")
    for s in range(1, STEPS + 1):
        f.write(json.dumps({"event": "step", "time": s, "step": s, "loss": 6 - s / STEPS, "note": pad},
                           ensure_ascii=False) + "\n")
        if s == STEPS // 2:
            f.write("not json\n")
size_mb = os.path.getsize(path) / 2**20

server = subprocess.Popen([BIN, "dashboard", run, "--port", "0"], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
fails = 0


def check(name, ok):
    global fails
    print(("ok   " if ok else "FAIL ") + name, flush=True)
    fails += 0 if ok else 1


def vm(field):
    with open(f"/proc/{server.pid}/status") as st:
        for line in st:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024  # kB → MB
    return 0.0


try:
    first = server.stdout.readline()
    m = re.search(r"http://127\.0\.0\.1:(\d+)/", first)
    if not m:
        err = server.stderr.read() if server.poll() is not None else ""
        if "without its web page" in err:
            print("skip: this anetrain was built without its web page")
            sys.exit(77)
        print(f"FAIL the dashboard did not start: {first!r} {err!r}")
        sys.exit(1)
    port = int(m.group(1))

    def get(path_):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        c.request("GET", path_)
        return c, c.getresponse()

    c, r = get("/api/runs")
    r.read()
    c.close()
    base = vm("VmHWM")

    results = [None] * READERS

    def reader(i):
        c, r = get("/api/runs/0/telemetry")
        h, n, head, tail = hashlib.sha256(), 0, b"", b""
        while chunk := r.read(1 << 20):
            h.update(chunk)
            if len(head) < 64:
                head += chunk[:64]
            tail = (tail + chunk)[-64:]
            n += len(chunk)
        c.close()
        results[i] = (r.status, h.hexdigest(), n, head, tail)

    t0 = time.time()
    threads = [threading.Thread(target=reader, args=(i,)) for i in range(READERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.time() - t0
    growth = vm("VmHWM") - base
    check(f"{READERS} readers of a {size_mb:.0f} MB file: peak RSS grew {growth:.0f} MB (limit {MAX_GROWTH_MB})",
          growth < MAX_GROWTH_MB)
    check(f"every reply is 200 and complete ({took:.1f} s)",
          all(x and x[0] == 200 and x[3].startswith(b'{"run":0,"events":[') and x[4].endswith(b'],"bad_lines":1}')
              for x in results))
    check("the replies are identical", len({x[1] for x in results if x}) == 1)

    # One reply in full: every good line, in order, as it is in the file.
    c, r = get("/api/runs/0/telemetry")
    body = json.loads(r.read())
    c.close()
    ev = body["events"]
    check(f"the reply holds each of the {STEPS + 1} good lines once, in order, and counts the bad one",
          len(ev) == STEPS + 1 and ev[0]["event"] == "run_start" and [e["step"] for e in ev[1:]] == list(range(1, STEPS + 1))
          and ev[-1]["note"] == pad and body["bad_lines"] == 1)
    c, r = get("/api/runs/3/telemetry")
    r.read()
    check("a run that is not there is 404", r.status == 404)
finally:
    server.send_signal(signal.SIGINT)
    try:
        server.wait(10)
    except subprocess.TimeoutExpired:
        server.kill()
shutil.rmtree(WORK, ignore_errors=True)
sys.exit(1 if fails else 0)
