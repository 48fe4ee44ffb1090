#!/usr/bin/env bash
# `anetrain ane dump` on stories260K: every program the ane backend compiles is written with its
# blobs, a reference input and ane-sim's output; `mil check` accepts each as written, `mil run`
# on the dumped input reproduces the dumped output bit for bit, and the manifest's packing agrees
# with the input the backend actually built (listed regions hold data, everything else is zero).
# Usage: ane_dump_cli.sh ANETRAIN ASSETS WORKDIR
set -u
BIN=$1 ASSETS=$2 W=$3
rm -rf "$W" && mkdir -p "$W"
PY=/usr/bin/python3
MODEL=$ASSETS/llama2c/stories260K.bin
fails=0
pass() { echo "ok   $1"; }
flunk() { echo "FAIL $1"; fails=$((fails + 1)); }

out=$("$BIN" ane dump "$MODEL" "$W/dump" --seq 64 2>&1) && pass "$out" || { flunk "ane dump: $out"; exit 1; }

# Each program through the real `mil` commands, reading the folder as it is.
for mil in "$W"/dump/*/*.mil; do
  d=$(dirname "$mil") n=$(basename "$mil" .mil)
  if ! msg=$("$BIN" mil check --strict "$mil" 2>&1); then flunk "mil check --strict $n: $msg"; continue; fi
  if ! msg=$("$BIN" mil run "$mil" --input x="$d/input.npy" -o "$W/$n.out.npy" 2>&1); then flunk "mil run $n: $msg"; continue; fi
  if cmp -s "$d/output.npy" "$W/$n.out.npy"; then
    pass "$n: mil check --strict ok, mil run reproduces output.npy bit for bit"
  else
    flunk "$n: mil run's output differs from the dumped output"
  fi
done

$PY - "$W/dump" <<'PY' && pass "manifest: every kernel present, regions hold data and nothing else is set" || fails=$((fails + 1))
import json, os, sys
import numpy as np
root = sys.argv[1]
m = json.load(open(os.path.join(root, "manifest.json")))
assert m["format"] == "anetrain ane dump 1" and m["seq"] == 64, m
names = [p["name"] for p in m["programs"]]
assert len(set(names)) == len(names), names
roles = sorted(r for p in m["programs"] for r in p["roles"])
want = sorted(["qkv_fwd", "attention_fwd", "wo_fwd", "wo_bwd", "attention_bwd", "q_bwd", "kv_bwd", "ffn_fwd",
               "down_bwd", "gate_up_bwd", "decode_qkv", "decode_wo", "decode_ffn"])
assert roles == want, roles
on_disk = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
assert on_disk == sorted(names), (on_disk, names)

def mask(shape, regions):
    covered = np.zeros((shape[1], shape[3]), bool)
    for r in regions:
        c0, c1 = r["channels"]; w0, w1 = r["columns"]
        assert 0 <= c0 < c1 <= shape[1] and 0 <= w0 < w1 <= shape[3], (r, shape)
        chans = np.arange(c0, c1)
        if "heads" in r:
            chans = chans[(chans - c0) % r["heads"]["stride"] < r["heads"]["width"]]
        assert not covered[chans, w0:w1].any(), ("overlap", r)
        covered[chans, w0:w1] = True
        yield r, chans, (w0, w1)

bad = []
for p in m["programs"]:
    for side in ("input", "output"):
        io = p[side]
        a = np.load(os.path.join(root, io["file"]))
        assert list(a.shape) == io["shape"] and a.dtype == np.float16, (p["name"], side, a.shape)
        plane = a.reshape(io["shape"][1], io["shape"][3]).astype(np.float32)
        covered = np.zeros(plane.shape, bool)
        for r, chans, (w0, w1) in mask(io["shape"], io["regions"]):
            covered[np.ix_(chans, np.arange(w0, w1))] = True
            if side == "input" and not np.any(plane[np.ix_(chans, np.arange(w0, w1))]):
                bad.append(f"{p['name']}: input region '{r['what']}' is all zero")
        if side == "input" and np.any(plane[~covered]):
            c, w = np.argwhere(plane * ~covered)[0]
            bad.append(f"{p['name']}: input channel {c} column {w} is {plane[c, w]} outside every listed region")
    for f in p["weights"]:
        assert os.path.getsize(os.path.join(root, f)) > 64, f
assert not bad, "\n".join(bad)
PY

mkdir -p "$W/foreign" && echo "mine" > "$W/foreign/notes.txt"
err=$("$BIN" ane dump "$MODEL" "$W/foreign" --seq 64 2>&1); rc=$?
[[ $rc -ne 0 && "$err" == *"refusing to write into it"* && -f "$W/foreign/notes.txt" ]] \
  && pass "a folder that is not a dump is refused and left alone" || flunk "foreign folder (rc $rc): $err"
"$BIN" ane dump "$MODEL" "$W/dump" --seq 32 >/dev/null && [[ $(ls -d "$W"/dump/*/ | wc -l) -eq 11 ]] \
  && pass "an earlier dump is replaced" || flunk "re-dump into the same folder"

echo "ane dump cli: $fails failure(s)"
[[ $fails -eq 0 ]]
