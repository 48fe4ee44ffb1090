#!/usr/bin/env bash
# Malformed inputs through the real CLI: each must exit with status 1 (a handled error, not a
# crash or signal) and print a message naming the problem. Usage: bad_inputs.sh ANETRAIN ASSETS WORKDIR
set -u
BIN=$1 ASSETS=$2 W=$3
rm -rf "$W" && mkdir -p "$W"
fails=0

# expect_error "description" "substring expected on stderr" cmd...
expect_error() {
  local what=$1 want=$2
  shift 2
  local err rc
  err=$("$@" 2>&1 >/dev/null)
  rc=$?
  if [[ $rc -ne 1 ]]; then
    echo "FAIL $what: exit status $rc (want 1)"; echo "  stderr: $err"; fails=$((fails + 1)); return
  fi
  if [[ "$err" != *"$want"* ]]; then
    echo "FAIL $what: stderr lacks '$want'"; echo "  stderr: $err"; fails=$((fails + 1)); return
  fi
  echo "ok   $what: $err"
}

echo "1 403 407 261 378" > "$W/tokens.txt"
BIN260=$ASSETS/llama2c/stories260K.bin

head -c 500000 "$BIN260" > "$W/truncated.bin"
expect_error "truncated llama2.c .bin" "truncated" "$BIN" grad "$W/truncated.bin" --tokens "$W/tokens.txt" -o "$W/o.st"

head -c 28 /dev/zero > "$W/zeros.bin"; cat "$BIN260" >> "$W/zeros.bin"
expect_error "llama2.c header of zeros" "at byte 0" "$BIN" grad "$W/zeros.bin" --tokens "$W/tokens.txt" -o "$W/o.st"

printf 'x' > "$W/tiny.bin"
expect_error "1-byte model file" "at byte 0" "$BIN" grad "$W/tiny.bin" --tokens "$W/tokens.txt" -o "$W/o.st"

# A valid HF folder first, then corrupt copies of its safetensors file.
"$BIN" grad stories260k --tokens "$W/tokens.txt" -o "$W/o.st" 2>/dev/null || { echo "FAIL baseline grad"; exit 1; }
mkdir -p "$W/hf_ok"
cat > "$W/hf_ok/config.json" <<'JSON'
{"model_type": "llama", "hidden_size": 16, "intermediate_size": 24, "num_hidden_layers": 1,
 "num_attention_heads": 2, "num_key_value_heads": 2, "vocab_size": 512, "rms_norm_eps": 1e-5,
 "tie_word_embeddings": true}
JSON
make_st() {  # make_st DIR HEADER_JSON DATA_BYTES
  /usr/bin/python3 - "$@" <<'PY'
import struct, sys
d, header, n = sys.argv[1], sys.argv[2].encode(), int(sys.argv[3])
with open(d + "/model.safetensors", "wb") as f:
    f.write(struct.pack("<Q", len(header)) + header + b"\0" * n)
PY
}
for case in hugelen badjson truncdata baddtype; do mkdir -p "$W/hf_$case"; cp "$W/hf_ok/config.json" "$W/hf_$case/"; done
printf '\xff\xff\xff\xff\xff\xff\xff\x7f{}' > "$W/hf_hugelen/model.safetensors"
expect_error "safetensors header length absurd" "exceeds 100 MB" "$BIN" grad "$W/hf_hugelen" --tokens "$W/tokens.txt" -o "$W/o.st"
make_st "$W/hf_badjson" '{"model.embed_tokens.weight": {"dtype": "F32", "shape": [512, 16], "data_offsets": [0, 32768]' 32768
expect_error "safetensors header bad JSON" "invalid safetensors JSON header" "$BIN" grad "$W/hf_badjson" --tokens "$W/tokens.txt" -o "$W/o.st"
make_st "$W/hf_truncdata" '{"model.embed_tokens.weight": {"dtype": "F32", "shape": [512, 16], "data_offsets": [0, 32768]}}' 100
expect_error "safetensors data truncated" "truncated" "$BIN" grad "$W/hf_truncdata" --tokens "$W/tokens.txt" -o "$W/o.st"
make_st "$W/hf_baddtype" '{"model.embed_tokens.weight": {"dtype": "I64", "shape": [2], "data_offsets": [0, 16]}}' 16
expect_error "safetensors unsupported dtype" "unsupported dtype" "$BIN" grad "$W/hf_baddtype" --tokens "$W/tokens.txt" -o "$W/o.st"

echo "1 403 600 261" > "$W/oob.txt"
expect_error "token id ≥ vocab" "at byte 6: token id 600" "$BIN" grad "$BIN260" --tokens "$W/oob.txt" -o "$W/o.st"
echo "1 403 -5 261" > "$W/neg.txt"
expect_error "negative token id" "at byte 6" "$BIN" grad "$BIN260" --tokens "$W/neg.txt" -o "$W/o.st"
echo "1 403 abc" > "$W/words.txt"
expect_error "non-numeric token" "at byte 6" "$BIN" grad "$BIN260" --tokens "$W/words.txt" -o "$W/o.st"
expect_error "rows do not fit --batch/--seq" "needs B×(T+1)" "$BIN" grad "$BIN260" --tokens "$W/tokens.txt" --batch 2 --seq 4 -o "$W/o.st"

echo '{"dim": 64, "n_layers": 2, "n_heads": 8, "n_kv_heads": 3, "hidden_dim": 96, "vocab_size": 512, "max_seq_len": 64}' > "$W/gqa.json"
expect_error "heads not divisible by kv heads" "n_kv_heads" "$BIN" info "$W/gqa.json"
echo '{"dim": 64, "n_layers": 2, "n_heads": 8, "hidden_dim": 96, "vocab_size": 512, "max_seq_len": 64, "dropout": 0.1}' > "$W/unknown.json"
expect_error "unknown config key" "dropout" "$BIN" info "$W/unknown.json"
expect_error "unknown preset" "neither a preset" "$BIN" info no-such-model
expect_error "unknown backend" "available: cpu" "$BIN" grad stories260k --tokens "$W/tokens.txt" --backend gpu -o "$W/o.st"

if [[ $fails -ne 0 ]]; then echo "$fails bad-input checks failed"; exit 1; fi
echo "all bad-input checks passed"
