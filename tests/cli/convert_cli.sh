#!/usr/bin/env bash
# `anetrain convert` through the real binary: conversions between the real llama2.c, GGUF and HF
# files keep the weights byte for byte (checked with cmp), the tokenizer rides along, and bad
# requests exit with status 1 and a message. Usage: convert_cli.sh ANETRAIN ASSETS WORKDIR
set -u
BIN=$1 ASSETS=$2 W=$3
rm -rf "$W" && mkdir -p "$W"
fails=0
V0=$ASSETS/llama2c/stories260K.bin Q80=$ASSETS/llama2c/stories260K_q80.bin TOK=$ASSETS/llama2c/tok512.bin
G1=$ASSETS/gguf/tinyllamas-stories-260k-f32.gguf GR=$ASSETS/gguf/llama-2-tiny-random.gguf
WEIGHTS=$((28 + 260032 * 4))  # v0 header + weights; the RoPE tables after them come from libm

ok() {  # ok "description" cmd...
  local what=$1
  shift
  if "$@" >"$W/out.txt" 2>&1; then echo "ok   $what"; else echo "FAIL $what"; cat "$W/out.txt"; fails=$((fails + 1)); fi
}
expect_error() {  # expect_error "description" "substring on stderr" cmd...
  local what=$1 want=$2
  shift 2
  local err rc
  err=$("$@" 2>&1 >/dev/null)
  rc=$?
  if [[ $rc -ne 1 ]]; then echo "FAIL $what: exit status $rc (want 1)"; echo "  $err"; fails=$((fails + 1)); return; fi
  if [[ "$err" != *"$want"* ]]; then echo "FAIL $what: stderr lacks '$want'"; echo "  $err"; fails=$((fails + 1)); return; fi
  echo "ok   $what: $err"
}

# llama2.c v0 → GGUF (with tokenizer) → v0: the same bytes.
ok "v0 → gguf with -z" "$BIN" convert "$V0" "$W/s.gguf" -z "$TOK"
ok "gguf → v0" "$BIN" convert "$W/s.gguf" "$W/back.bin"
ok "v0 weights unchanged" cmp -n "$WEIGHTS" "$V0" "$W/back.bin"
# The legacy GGUF v1 file holds the same weights as stories260K.bin.
ok "gguf v1 → v0" "$BIN" convert "$G1" "$W/from_v1.bin"
ok "gguf v1 weights equal v0" cmp -n "$WEIGHTS" "$V0" "$W/from_v1.bin"
ok "gguf v1 → v0 is 1056540 bytes" test "$(stat -c %s "$W/from_v1.bin")" = 1056540
# GGUF → HF folder writes tokenizer.bin, byte-identical to tok512.bin; and back to GGUF.
ok "gguf v1 → hf" "$BIN" convert "$G1" "$W/hf"
ok "hf has config.json" test -f "$W/hf/config.json"
ok "hf tokenizer.bin is tok512" cmp "$TOK" "$W/hf/tokenizer.bin"
ok "hf → gguf bf16" "$BIN" convert "$W/hf" "$W/hf.gguf" --dtype bf16
ok "hf → v1 via --to" "$BIN" convert "$W/hf" "$W/v1.bin" --to llama2c-v1
ok "v1 → v0" "$BIN" convert "$W/v1.bin" "$W/v1_v0.bin"
ok "v0 → v1 → v0 keeps the weights" cmp -n "$WEIGHTS" "$V0" "$W/v1_v0.bin"
ok "q80 → gguf f16" "$BIN" convert "$Q80" "$W/q.gguf" --dtype f16
ok "random f16 gguf → gguf" "$BIN" convert "$GR" "$W/r.gguf" --dtype f16
cp "$W/out.txt" "$W/r.log"
ok "tokenizer kept in gguf → gguf" grep -q 'tokenizer "llama", 32000 tokens' "$W/r.log"
ok "info reads a gguf" "$BIN" info "$W/r.gguf"
# A model llama2.c cannot hold.
echo '{"arch": "qwen3", "dim": 32, "n_layers": 1, "n_heads": 4, "n_kv_heads": 2, "head_dim": 16, "hidden_dim": 48,
       "vocab_size": 64, "max_seq_len": 32, "rope_theta": 1000000.0, "rope_style": "half", "norm_eps": 1e-6,
       "qk_norm": true}' > "$W/qwen.json"
ok "qwen3 config → gguf" "$BIN" convert "$W/qwen.json" "$W/qwen.gguf"
ok "qwen3 gguf → hf" "$BIN" convert "$W/qwen.gguf" "$W/qwen_hf/"
ok "-z into an hf folder copies the file" "$BIN" convert "$V0" "$W/hf_z" -z "$TOK"
ok "copied as tokenizer.bin" cmp "$TOK" "$W/hf_z/tokenizer.bin"
# A byte-level tokenizer.json (the real Qwen3 one) embedded as a gpt2-model GGUF vocabulary.
sed 's/"vocab_size": 64/"vocab_size": 151936/; s/"dim": 32/"dim": 8/; s/"hidden_dim": 48/"hidden_dim": 16/; s/"head_dim": 16/"head_dim": 4/' \
  "$W/qwen.json" > "$W/qwen_big_vocab.json"
ok "qwen3 tokenizer.json → gguf" "$BIN" convert "$W/qwen_big_vocab.json" "$W/qwen_tok.gguf" -z "$ASSETS/hf/qwen3/tokenizer.json"
cp "$W/out.txt" "$W/q.log"
ok "gguf holds the gpt2 vocabulary" grep -q 'tokenizer "gpt2", 151669 tokens' "$W/q.log"
# ... and reads it back: no -z, no tokenizer.json beside it (ids checked in GgufByteLevel.*).
ok "generate reads the gguf's gpt2 vocabulary" "$BIN" generate "$W/qwen_tok.gguf" -i "Hello world" -n 4 -t 0
ok "an hf folder from -z tokenizer.json" "$BIN" convert "$W/qwen_big_vocab.json" "$W/qwen_hf_z" -z "$ASSETS/hf/qwen3/tokenizer.json"
ok "... with its tokenizer_config.json (chat template, EOS)" cmp "$ASSETS/hf/qwen3/tokenizer_config.json" "$W/qwen_hf_z/tokenizer_config.json"
ok "... and its tokenizer.json" cmp "$ASSETS/hf/qwen3/tokenizer.json" "$W/qwen_hf_z/tokenizer.json"

expect_error "qwen3 → llama2.c" "head_dim 16" "$BIN" convert "$W/qwen.gguf" "$W/qwen.bin"
expect_error "dtype for llama2.c" "fp32 only" "$BIN" convert "$V0" "$W/x.bin" --dtype f16
expect_error "-z for llama2.c" "holds no tokenizer" "$BIN" convert "$G1" "$W/x.bin" -z "$TOK"
expect_error "unknown output extension" "--to" "$BIN" convert "$V0" "$W/x.xyz"
expect_error "gguf into a folder" "is a folder" "$BIN" convert "$V0" "$W/hf" --to gguf
expect_error "missing input" "neither a preset" "$BIN" convert "$W/nope.bin" "$W/x.gguf"
head -c 5000 "$G1" > "$W/trunc.gguf"
expect_error "truncated gguf" "truncated" "$BIN" convert "$W/trunc.gguf" "$W/x.bin"
printf 'GGUF\x07\x00\x00\x00' > "$W/v7.gguf"
expect_error "gguf version 7" "GGUF version 7" "$BIN" convert "$W/v7.gguf" "$W/x.bin"
printf 'NOPE1234' > "$W/magic.gguf"
expect_error "gguf bad magic" "bad magic" "$BIN" convert "$W/magic.gguf" "$W/x.bin"
expect_error "tokenizer larger than vocab" "tokens but the model" "$BIN" convert "$W/qwen.gguf" "$W/x.gguf" -z "$TOK"
ok "no partial outputs left behind" test ! -e "$W/x.bin" -a ! -e "$W/x.gguf"

if [[ $fails -ne 0 ]]; then echo "$fails convert checks failed"; exit 1; fi
echo "all convert checks passed"
