#!/usr/bin/env bash
# `anetrain mil check|run` through the real binary on the seed's programs: the happy path, and
# each kind of bad input exiting 1 with a message that names the file (and line or byte).
# Usage: mil_cli.sh ANETRAIN MIL_REFERENCE_DIR WORKDIR
set -u
BIN=$1 REF=$2 W=$3
rm -rf "$W" && mkdir -p "$W"
fails=0
PY=/usr/bin/python3

expect_error() {  # expect_error "what" "substring of stderr" cmd...
  local what=$1 want=$2
  shift 2
  local err rc
  err=$("$@" 2>&1 >/dev/null)
  rc=$?
  if [[ $rc -ne 1 ]]; then echo "FAIL $what: exit status $rc (want 1): $err"; fails=$((fails + 1)); return; fi
  if [[ "$err" != *"$want"* ]]; then echo "FAIL $what: stderr lacks '$want': $err"; fails=$((fails + 1)); return; fi
  echo "ok   $what: $err"
}

PROG=$REF/tiny-mha/woFwd.mil
out=$("$BIN" mil check "$PROG") || { echo "FAIL check of a seed program: $out"; fails=$((fails + 1)); }
for want in "ops: matmul 1" "FLOPs: 2.621e+05 matrix" "input  x tensor<fp16, [1,64,1,96]>" "woFwd.mil: ok"; do
  [[ "$out" == *"$want"* ]] && echo "ok   check prints '$want'" || { echo "FAIL check lacks '$want': $out"; fails=$((fails + 1)); }
done

$PY - "$W" <<'PY'
import numpy as np, sys
w = sys.argv[1]
np.save(w + "/x16.npy", np.ones((1, 64, 1, 96), np.float16))
np.save(w + "/x32.npy", np.ones((1, 64, 1, 96), np.float32))
np.save(w + "/short.npy", np.ones((1, 64, 1, 95), np.float16))
PY
"$BIN" mil run "$PROG" --input x="$W/x16.npy" -o "$W/y.npy" || { echo "FAIL run of a seed program"; fails=$((fails + 1)); }
# All-ones activations and weights: every output is the 64-term dot product, exactly 64.
$PY -c "import numpy as np,sys; y=np.load('$W/y.npy'); sys.exit(0 if y.dtype==np.float16 and y.shape==(1,64,1,32) and (y==64).all() else 1)" \
  && echo "ok   run writes fp16 [1,64,1,32] = 64" || { echo "FAIL run output"; fails=$((fails + 1)); }

expect_error "fp32 input for an fp16 program" "x32.npy: input 'x' must be tensor<fp16, [1,64,1,96]>" \
  "$BIN" mil run "$PROG" --input x="$W/x32.npy" -o "$W/y.npy"
expect_error "input of the wrong shape" "short.npy: input 'x'" "$BIN" mil run "$PROG" --input x="$W/short.npy" -o "$W/y.npy"
expect_error "input under another name" "needs --input x=FILE.npy" "$BIN" mil run "$PROG" --input q="$W/x16.npy" -o "$W/y.npy"
head -c 100 "$W/x16.npy" > "$W/trunc.npy"
expect_error "truncated .npy" "trunc.npy: at byte" "$BIN" mil run "$PROG" --input x="$W/trunc.npy" -o "$W/y.npy"
head -c 1200 "$PROG" > "$W/cut.mil"
expect_error "program cut short" "cut.mil:" "$BIN" mil check "$W/cut.mil"
sed 's/\[1,1,32,64\]> mm_yh/[1,1,32,65]> mm_yh/' "$PROG" > "$W/badshape.mil"
expect_error "wrong declared shape" "badshape.mil:18:9: matmul 'mm_yh': declared tensor<fp16, [1,1,32,65]>" "$BIN" mil check "$W/badshape.mil"
cp "$REF/tiny-mha/sdpaFwd.mil" "$W/sdpa.mil"
expect_error "blob folder missing" "weights/rope_cos.bin" "$BIN" mil check "$W/sdpa.mil"
"$BIN" mil check "$W/sdpa.mil" --weights "$REF/tiny-mha" >/dev/null && echo "ok   --weights names the @model_path folder" \
  || { echo "FAIL --weights"; fails=$((fails + 1)); }
sed 's/func main<ios18>(tensor<fp16, \[1, 64, 1, 96\]> x)/func main<ios18>(tensor<fp16, [1, 64, 1, 96]> x, tensor<fp16, [1, 64, 1, 96]> x2)/' \
  "$PROG" > "$W/two_inputs.mil"
out=$("$BIN" mil check "$W/two_inputs.mil"); rc=$?
[[ $rc -eq 1 && "$out" == *"evaluate error [single-input]"*"0x1d"* ]] && echo "ok   check reports the single-input limit" \
  || { echo "FAIL single-input report (rc $rc): $out"; fails=$((fails + 1)); }
expect_error "running a two-input program" "error 0x1d" \
  "$BIN" mil run "$W/two_inputs.mil" --input x="$W/x16.npy" --input x2="$W/x16.npy" -o "$W/y.npy"

# ane probe: off macOS it runs the runtime against the fake framework over ane-sim and says so;
# every output must equal the simulator's.
probe=$("$BIN" ane probe --json --repeats 1) || { echo "FAIL ane probe"; fails=$((fails + 1)); }
$PY - "$probe" <<'PY' && echo "ok   ane probe --json: 3 programs, identical to ane-sim, runtime named" || fails=$((fails + 1))
import json, sys
p = json.loads(sys.argv[1])
assert p["runtime"] == "ane-sim (fake runtime)", p["runtime"]
assert [q["name"] for q in p["programs"]] == ["dynamic_matmul_768x768_T256", "conv_chain_fp16", "conv_chain_w8a8"], p
assert all(q["max_abs_diff_vs_ane_sim"] == 0 and q["output_scale"] > 0 and q["eval_ms"] > 0 for q in p["programs"]), p
assert p["w8a8_speedup_vs_fp16"] > 0
PY

# An unknown subcommand is named, with or without --help, and fails.
for args in "foo" "foo --help"; do
  err=$("$BIN" $args 2>&1); rc=$?
  [[ $rc -ne 0 && "$err" == *"unknown command 'foo'"* ]] && echo "ok   anetrain $args: $err" \
    || { echo "FAIL anetrain $args (rc $rc): $err"; fails=$((fails + 1)); }
done

echo "mil cli: $fails failure(s)"
[[ $fails -eq 0 ]]
