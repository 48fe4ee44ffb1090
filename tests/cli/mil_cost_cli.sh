#!/usr/bin/env bash
# What a MIL program costs, checked before it is paid: `mil check` is linear in the
# program's size (100,000 ops in under 5 s in a Release build; it took over 60 s when each op's
# line number was counted from the top of the file), a [1,1,65536,65536] matmul is refused by
# `mil run` before anything is allocated (naming --max-bytes) and flagged by `mil check`, and a
# parse error on a one-line 400 KB program quotes at most ~200 characters of it.
# Usage: mil_cost_cli.sh ANETRAIN WORKDIR
set -u
BIN=$1 W=$2
rm -rf "$W" && mkdir -p "$W"
fails=0
ok() { echo "ok   $1"; }
bad() { echo "FAIL $1"; fails=$((fails + 1)); }
PY=/usr/bin/python3

# 100,000 ops: a chain of adds and muls with a matmul (its transpose flag a named const) and a conv
# every tenth op, so the parser, the type checker, the cost model and the ANE limit checks all
# see every op.
$PY - "$W/big.mil" <<'PY'
import sys
S = "tensor<fp16, [1,8,8,8]>"
out = ["program(1.3)", "{", "    func main<ios18>(tensor<fp16, [1, 8, 8, 8]> x) {"]
out.append('        fp16 c = const()[name=string("c"), val=fp16(0.5)];')
out.append('        bool tx = const()[name=string("tx"), val=bool(false)];')
out.append('        tensor<fp16, [8,8,1,1]> w = const()[name=string("w"), val=tensor<fp16, [8,8,1,1]>(' +
           "[" + ",".join(["0.125"] * 64) + "])];")
prev = "x"
for i in range(100000):
    v = f"v{i}"
    if i % 10 == 3:
        out.append(f"        {S} {v} = matmul(x={prev},y={prev},transpose_x=tx)[name=string(\"{v}\")];")
    elif i % 10 == 7:
        out.append(f"        {S} {v} = conv(x={prev},weight=w)[name=string(\"{v}\")];")
    else:
        op = "add" if i % 2 else "mul"
        out.append(f"        {S} {v} = {op}(x={prev},y=c)[name=string(\"{v}\")];")
    prev = v
out.append(f"    }} -> ({prev});")
out.append("}")
open(sys.argv[1], "w").write("\n".join(out) + "\n")
PY
start=$(date +%s.%N)
out=$(timeout 60 "$BIN" mil check "$W/big.mil" 2>&1); rc=$?
secs=$(echo "$(date +%s.%N) - $start" | bc)
if [[ $rc -eq 0 && "$out" == *"100000 ops"* ]] && (( $(echo "$secs < 5" | bc) )); then
  ok "mil check of 100,000 ops in ${secs} s"
else
  bad "mil check of 100,000 ops: rc $rc after ${secs} s (limit 5 s): ${out:0:300}"
fi

# A matmul whose result is 2^32 elements: 8 GiB in fp16, 16 GiB as ane-sim's fp32.
cat > "$W/huge.mil" <<'MIL'
program(1.3)
{
    func main<ios18>(tensor<fp16, [1, 1, 65536, 1]> x) {
        bool ty = const()[name=string("ty"), val=bool(true)];
        tensor<fp16, [1,1,65536,65536]> outer = matmul(x=x,y=x,transpose_y=ty)[name=string("outer")];
        tensor<int32, [1]> ax = const()[name=string("ax"), val=tensor<int32, [1]>([3])];
        tensor<fp16, [1,1,65536,1]> y = reduce_sum(x=outer,axes=ax,keep_dims=ty)[name=string("y")];
    } -> (y);
}
MIL
$PY -c "import numpy as np; np.save('$W/x.npy', np.ones((1, 1, 65536, 1), np.float16))"
# A virtual memory cap, so that a binary without the limit fails fast instead of filling the machine.
err=$(ulimit -v 8000000; "$BIN" mil run "$W/huge.mil" --input x="$W/x.npy" -o "$W/y.npy" 2>&1 >/dev/null); rc=$?
if [[ $rc -ne 0 && "$err" == *"--max-bytes"* && "$err" == *"outer"* && ! -e "$W/y.npy" ]]; then ok "mil run refuses the huge matmul: $err"
else bad "mil run of the huge matmul (rc $rc): $err"; fi
out=$("$BIN" mil check "$W/huge.mil" 2>&1); rc=$?
if [[ $rc -ne 0 && "$out" == *"max-bytes"* && "$out" == *"memory"* ]]; then ok "mil check flags it: $(grep -i 'max-bytes' <<<"$out")"
else bad "mil check of the huge matmul (rc $rc): $out"; fi
out=$("$BIN" mil check "$W/huge.mil" --max-bytes 64GiB 2>&1); rc=$?
[[ $rc -eq 0 ]] && ok "--max-bytes 64GiB lets check pass" || bad "--max-bytes 64GiB (rc $rc): $out"

# Parse errors on one 400 KB line: the message names file:line:col and stays short.
$PY - "$W" <<'PY'
import sys
w = sys.argv[1]
head = "program(1.3) { func main<ios18>(tensor<fp16, [1, 1, 1, 1]> x) { "
open(w + "/long_word.mil", "w").write("program(1.3) { " + "A" * 400000 + " main<ios18>() {} -> (x); }")
open(w + "/long_op.mil", "w").write(head + "tensor<fp16, [1,1,1,1]> y = " + "A" * 400000 + "(x=x); } -> (y); }")
open(w + "/long_literal.mil", "w").write(head + "tensor<fp16, [1,1,1,4]> c = const()[val=tensor<fp16, [1,1,1,4]>([" +
                                         "1," * 200000 + "x])]; } -> (c); }")
PY
for f in long_word long_op long_literal; do
  err=$("$BIN" mil check "$W/$f.mil" 2>&1 >/dev/null); rc=$?
  if [[ $rc -eq 1 && "$err" == *"$f.mil:1:"* && ${#err} -lt 1000 ]]; then ok "parse error on a 400 KB line is ${#err} bytes: $err"
  else bad "parse error on a 400 KB line ($f, rc $rc) is ${#err} bytes: ${err:0:400}"; fi
done

[[ $fails -eq 0 ]]
