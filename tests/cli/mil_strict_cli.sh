#!/usr/bin/env bash
# `anetrain mil check --strict` and `mil proven-set` through the real binary: a seed program the
# hardware ran passes, a tiny render fails naming file, line, variable and rule, a program with a
# construct the seed never used fails naming the nearest seed statement, and plain `check` is
# unchanged by all of it.
# Usage: mil_strict_cli.sh ANETRAIN MIL_REFERENCE_DIR WORKDIR
set -u
BIN=$1 REF=$2 W=$3
rm -rf "$W" && mkdir -p "$W"
fails=0
pass() { echo "ok   $1"; }
flunk() { echo "FAIL $1"; fails=$((fails + 1)); }

out=$("$BIN" mil check --strict "$REF/qwen3-0.6b/sdpaFwd.mil"); rc=$?
[[ $rc -eq 0 && "$out" == *"sdpaFwd.mil: ok (strict)"* ]] && pass "a seed program the hardware ran passes --strict" \
  || flunk "qwen3-0.6b/sdpaFwd --strict (rc $rc): $out"

out=$("$BIN" mil check --strict "$REF/tiny-gqa/sdpaFwd.mil"); rc=$?
want="strict $REF/tiny-gqa/sdpaFwd.mil:81: sc1: [matmul-inner] matmul of x [1,4,32,16]"
[[ $rc -eq 1 && "$out" == *"$want"* && "$out" == *"sdpaFwd.mil: 1 strict finding"* ]] \
  && pass "hd=16 render: matmul-inner at line 81, exit 1" || flunk "tiny-gqa/sdpaFwd --strict (rc $rc): $out"
"$BIN" mil check "$REF/tiny-gqa/sdpaFwd.mil" >/dev/null && pass "without --strict the same program is ok" \
  || flunk "plain check of tiny-gqa/sdpaFwd"

# woFwd with the weight reshaped through a channel-axis softmax: a construct no seed program has.
sed 's|tensor<fp16, \[1,1,64,64\]> mm_W = reshape(shape=mm_rw,x=mm_wt)\[name=string("mm_W")\];|&\n        int32 sax = const()[name=string("sax"), val=int32(1)];\n        tensor<fp16, [1,1,64,64]> mm_S = softmax(axis=sax,x=mm_W)[name=string("mm_S")];|; s|x=mm_a3,y=mm_W)|x=mm_a3,y=mm_S)|' \
  "$REF/tiny-mha/woFwd.mil" > "$W/softmax_c.mil"
cp -r "$REF/tiny-mha/weights" "$W/" 2>/dev/null
out=$("$BIN" mil check --strict "$W/softmax_c.mil"); rc=$?
[[ $rc -eq 1 && "$out" == *"mm_S: [construct] \`softmax(x:r4, axis=1) -> fp16 r4\` occurs in no seed program; nearest seed:"*"softmax(x:r4, axis=3)"* ]] \
  && pass "unseen construct named with its nearest seed statement" || flunk "construct finding (rc $rc): $out"

mkdir -p "$W/empty"
err=$("$BIN" mil proven-set "$W/empty" 2>&1 >/dev/null); rc=$?
[[ $rc -eq 1 && "$err" == *"holds no .mil file"* ]] && pass "proven-set of an empty folder: $err" || flunk "empty proven-set (rc $rc): $err"
"$BIN" mil proven-set "$REF" -o "$W/table.json" && grep -q '"max_concat_arity": 6' "$W/table.json" \
  && pass "proven-set writes the table" || flunk "proven-set -o"

echo "mil strict cli: $fails failure(s)"
[[ $fails -eq 0 ]]
