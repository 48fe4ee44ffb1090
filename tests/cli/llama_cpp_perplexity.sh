#!/usr/bin/env bash
# `anetrain eval --text` against llama.cpp's `llama-perplexity` on the same GGUF (stories260K in
# f32, written by `anetrain convert` with tok512.bin inside), the same file (War and Peace), the
# same --ctx and chunk count: the two final estimates agree within 1e-4 relative (measured 4e-6;
# the figures differ only by fp32 summation order). llama.cpp is built outside the tree
# (docs/eval.md); without LLAMA_PERPLEXITY naming its llama-perplexity the test skips (exit 77).
#   tests/cli/llama_cpp_perplexity.sh ANETRAIN ASSETS WORKDIR
set -euo pipefail
BIN=$1 ASSETS=$2 WORK=$3
if [[ -z "${LLAMA_PERPLEXITY:-}" || ! -x "${LLAMA_PERPLEXITY:-}" ]]; then
  echo "SKIP: set LLAMA_PERPLEXITY to llama.cpp's llama-perplexity to run this comparison"
  exit 77
fi
rm -rf "$WORK" && mkdir -p "$WORK"
zcat "$ASSETS/corpora/war-and-peace.txt.gz" > "$WORK/war-and-peace.txt"
"$BIN" convert "$ASSETS/llama2c/stories260K.bin" "$WORK/s260k.gguf" -z "$ASSETS/llama2c/tok512.bin" > /dev/null
CTX=256 CHUNKS=${EVAL_CHUNKS:-60}
theirs=$("$LLAMA_PERPLEXITY" -m "$WORK/s260k.gguf" -f "$WORK/war-and-peace.txt" -c $CTX --chunks $CHUNKS 2>&1 |
  sed -nE 's/.*Final estimate: PPL = ([0-9.]+) .*/\1/p')
ours=$("$BIN" eval "$WORK/s260k.gguf" --text "$WORK/war-and-peace.txt" --ctx $CTX --chunks $CHUNKS -q |
  sed -nE 's/^Final estimate: PPL = ([0-9.]+) .*/\1/p')
echo "llama.cpp: PPL $theirs   anetrain: PPL $ours   (ctx $CTX, $CHUNKS chunks)"
[[ -n "$theirs" && -n "$ours" ]] || { echo "FAIL: a figure is missing"; exit 1; }
python3 -c "import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); print('relative difference %.2e' % (abs(a - b) / b)); sys.exit(abs(a - b) > 1e-4 * b)" "$ours" "$theirs" ||
  { echo "FAIL: the perplexities differ by more than 1e-4 relative"; exit 1; }
echo PASS
