#!/usr/bin/env bash
# `anetrain eval --text` against llama.cpp's `llama-perplexity` on the same GGUF (stories260K in
# f32, written by `anetrain convert` with tok512.bin inside), the same file (War and Peace), the
# same --ctx and chunk count: the final estimates agree to llama.cpp's printed digits with its KV
# cache in f32, and within 1e-4 relative with its default f16 cache. llama.cpp is built outside the tree
# (docs/eval.md); without LLAMA_PERPLEXITY naming its llama-perplexity the test skips (exit 77).
#   tests/cli/llama_cpp_perplexity.sh ANETRAIN ASSETS WORKDIR
set -uo pipefail
BIN=$1 ASSETS=$2 WORK=$3
if [[ -z "${LLAMA_PERPLEXITY:-}" || ! -x "${LLAMA_PERPLEXITY:-}" ]]; then
  echo "SKIP: set LLAMA_PERPLEXITY to llama.cpp's llama-perplexity to run this comparison"
  exit 77
fi
rm -rf "$WORK" && mkdir -p "$WORK"
# The first 200 kB: plenty for the chunks compared, and both sides chunk from the start alike.
zcat "$ASSETS/corpora/war-and-peace.txt.gz" | head -c 200000 > "$WORK/war-and-peace.txt"
"$BIN" convert "$ASSETS/llama2c/stories260K.bin" "$WORK/s260k.gguf" -z "$ASSETS/llama2c/tok512.bin" > /dev/null
CTX=256 CHUNKS=${EVAL_CHUNKS:-40}
ours=$("$BIN" eval "$WORK/s260k.gguf" --text "$WORK/war-and-peace.txt" --ctx $CTX --chunks $CHUNKS -q |
  sed -nE 's/^Final estimate: PPL = ([0-9.]+) .*/\1/p')
fails=0
# compare LABEL TOLERANCE [llama-perplexity options…]
compare() {
  local label=$1 tol=$2 theirs
  shift 2
  theirs=$("$LLAMA_PERPLEXITY" -m "$WORK/s260k.gguf" -f "$WORK/war-and-peace.txt" -c $CTX --chunks $CHUNKS "$@" 2>&1 |
    sed -nE 's/.*Final estimate: PPL = ([0-9.]+) .*/\1/p')
  echo "llama.cpp ($label): PPL $theirs   anetrain: PPL $ours   (ctx $CTX, $CHUNKS chunks)"
  [[ -n "$theirs" && -n "$ours" ]] || { echo "FAIL: a figure is missing"; fails=1; return; }
  python3 -c "import sys; a, b, t = map(float, sys.argv[1:]); print('relative difference %.1e (bound %.0e)' % (abs(a - b) / b, t)); sys.exit(abs(a - b) > t * b)" \
    "$ours" "$theirs" "$tol" || { echo "FAIL: the perplexities differ by more than $tol relative"; fails=1; }
}
# With an f32 KV cache the two compute the same sums: equal up to the 4 printed decimals.
compare "f32 KV cache" 1e-5 -ctk f32 -ctv f32
# llama.cpp's default f16 KV cache rounds keys and values (measured 3e-5 at 60 chunks, 9e-6 at 1000).
compare "default f16 KV cache" 1e-4
[[ $fails == 0 ]] && echo PASS
exit $fails
