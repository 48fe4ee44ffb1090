#!/usr/bin/env bash
# `anetrain ane probe --model`: every program of stories260K compiled, loaded and evaluated through
# the runtime (here the fake framework over ane-sim, which the report must say) and checked
# against ane-sim: one row each, all ok, exit 0. With the fake told to reject a program the row
# says so with the framework's error, and the exit status is 1. --json carries the same rows.
# Usage: ane_probe_cli.sh ANETRAIN ASSETS WORKDIR
set -u
BIN=$1 ASSETS=$2 W=$3
rm -rf "$W" && mkdir -p "$W"
PY=/usr/bin/python3
MODEL=$ASSETS/llama2c/stories260K.bin
fails=0
pass() { echo "ok   $1"; }
flunk() { echo "FAIL $1"; fails=$((fails + 1)); }

"$BIN" ane dump "$MODEL" "$W/dump" --seq 64 >/dev/null || { flunk "ane dump"; exit 1; }
programs=$(ls -d "$W"/dump/*/ | wc -l)

out=$("$BIN" ane probe --model "$MODEL" --seq 64 2>&1)
rc=$?
rows=$(grep -cE ' ok$' <<<"$out")
[[ $rc -eq 0 && $rows -eq $programs ]] && pass "probe: $rows of $programs programs ok" \
  || flunk "probe: exit $rc, $rows ok rows of $programs programs: $out"
grep -q "fake runtime" <<<"$out" && pass "off macOS the report says it ran the fake runtime" || flunk "no 'fake runtime' note: $out"

out=$(ANETRAIN_FAKE_ANE='fail=compile,program=attention_bwd' "$BIN" ane probe --model "$MODEL" --seq 64 2>&1)
rc=$?
if [[ $rc -eq 1 ]] && grep -E '^ +attention_bwd .*rejected: .*anetrain.fake-ane' <<<"$out" >/dev/null &&
   [[ $(grep -cE ' ok$' <<<"$out") -eq $((programs - 1)) ]]; then
  pass "a rejected program: its row names the framework's error, the others stay ok, exit 1"
else
  flunk "rejected program: exit $rc: $out"
fi

"$BIN" ane probe --model "$MODEL" --seq 64 --json > "$W/probe.json" 2>/dev/null
$PY - "$W/probe.json" "$programs" <<'PYEOF' && pass "--json: one row per program with timings and error" || flunk "--json"
import json, sys
r = json.load(open(sys.argv[1]))
rows = r["programs"]
assert len(rows) == int(sys.argv[2]), len(rows)
for p in rows:
    assert p["status"] == "ok", p
    assert p["compile_ms"] >= 0 and p["load_ms"] >= 0 and p["eval_ms"] >= 0, p
    assert p["max_rel_error"] <= 1e-2, p
assert r["failed"] == 0 and "fake" in r["runtime"]
PYEOF

echo "$fails failed"
[[ $fails -eq 0 ]]
