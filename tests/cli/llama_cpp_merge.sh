#!/usr/bin/env bash
# A merged LoRA model read by llama.cpp: stories260K with a seeded random adapter on every
# projection (tests/reference/lora_reference.py random-adapter), `anetrain merge` → GGUF (f32,
# tokenizer included); llama.cpp's llama-simple and `anetrain generate` give the same greedy
# 32 tokens for two prompts. llama.cpp is built outside the tree (docs/fine-tuning.md); without
# LLAMA_SIMPLE pointing at its llama-simple the test skips (exit 77).
#   tests/cli/llama_cpp_merge.sh ANETRAIN ASSETS WORKDIR
set -euo pipefail
BIN=$1 ASSETS=$2 WORK=$3
HERE=$(cd "$(dirname "$0")" && pwd)
if [[ -z "${LLAMA_SIMPLE:-}" || ! -x "${LLAMA_SIMPLE:-}" ]]; then
  echo "SKIP: set LLAMA_SIMPLE to llama.cpp's llama-simple to run this comparison"
  exit 77
fi
rm -rf "$WORK" && mkdir -p "$WORK"
MODEL=$ASSETS/llama2c/stories260K.bin
/usr/bin/python3 "$HERE/../reference/lora_reference.py" random-adapter --model "$MODEL" -o "$WORK/adapter" \
  --rank 8 --alpha 16 --seed 3 --b-scale 0.02
"$BIN" merge "$MODEL" "$WORK/adapter" -o "$WORK/merged.gguf" -z "$ASSETS/llama2c/tok512.bin"
fail=0
for prompt in "Once upon a time" "Lily and Ben went to the park"; do
  # llama-simple prints the BOS piece before the prompt; both print the prompt, then 32 tokens.
  ours=$("$BIN" generate "$WORK/merged.gguf" -i "$prompt" -n 32 -t 0 2>/dev/null)
  theirs=$("$LLAMA_SIMPLE" -m "$WORK/merged.gguf" -n 32 "$prompt" 2>/dev/null | sed '1s/^<s> //')
  printf 'anetrain:  %s\nllama.cpp: %s\n' "$ours" "$theirs"
  if [[ "$ours" != "$theirs" ]]; then
    echo "FAIL: the texts differ for prompt '$prompt'"
    fail=1
  fi
done
# The adapter changed the model: the base's text differs for at least one prompt.
base_text=$("$BIN" generate "$MODEL" -z "$ASSETS/llama2c/tok512.bin" -i "Once upon a time" -n 32 -t 0 2>/dev/null)
merged_text=$("$BIN" generate "$WORK/merged.gguf" -i "Once upon a time" -n 32 -t 0 2>/dev/null)
[[ "$base_text" != "$merged_text" ]] || { echo "FAIL: the adapter left the greedy text unchanged"; fail=1; }
[[ $fail == 0 ]] && echo PASS
exit $fail
