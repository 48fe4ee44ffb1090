#!/usr/bin/env bash
# `anetrain eval` end to end on stories260K: the llama2.c .bin with -z tok512.bin and its GGUF
# (written by `anetrain convert`, tokenizer inside) give the same perplexity over the start of War
# and Peace; bf16 stays close to fp32; bad inputs are refused with the file and line named, exit
# status 1, and no --scores file left behind.
#   tests/cli/eval_cli.sh ANETRAIN ASSETS WORKDIR
set -u
BIN=$1 ASSETS=$2 W=$3
rm -rf "$W" && mkdir -p "$W"
fails=0
MODEL=$ASSETS/llama2c/stories260K.bin TOK=$ASSETS/llama2c/tok512.bin
zcat "$ASSETS/corpora/war-and-peace.txt.gz" | head -c 60000 > "$W/wp.txt"
"$BIN" convert "$MODEL" "$W/s260k.gguf" -z "$TOK" > /dev/null || { echo "FAIL: convert"; exit 1; }

field() { sed -E "s/.*\"$1\":([^,}]*).*/\1/"; }
bin_json=$("$BIN" eval "$MODEL" -z "$TOK" --text "$W/wp.txt" --ctx 128 --json -q) || { echo "FAIL: eval .bin"; exit 1; }
gguf_json=$("$BIN" eval "$W/s260k.gguf" --text "$W/wp.txt" --ctx 128 --json -q) || { echo "FAIL: eval gguf"; exit 1; }
bf16_json=$("$BIN" eval "$W/s260k.gguf" --text "$W/wp.txt" --ctx 128 --json -q --precision bf16) || { echo "FAIL: bf16"; exit 1; }
echo ".bin: $bin_json"; echo "gguf: $gguf_json"; echo "bf16: $bf16_json"
# The same weights and vocabulary: the same tokens, so the same figure to the last digit.
for k in perplexity bits_per_byte tokens chunks; do
  a=$(field $k <<< "$bin_json") b=$(field $k <<< "$gguf_json")
  [[ "$a" == "$b" ]] || { echo "FAIL: $k differs: .bin $a, gguf $b"; fails=$((fails + 1)); }
done
# bf16 products move a 260K model's perplexity by well under 1% (measured: 0.02% at ctx 256).
python3 -c "import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); sys.exit(abs(a - b) > 0.01 * a)" \
  "$(field perplexity <<< "$gguf_json")" "$(field perplexity <<< "$bf16_json")" ||
  { echo "FAIL: bf16 perplexity strays more than 1% from fp32"; fails=$((fails + 1)); }
# The human form prints llama.cpp's final line.
"$BIN" eval "$W/s260k.gguf" --text "$W/wp.txt" --ctx 128 --chunks 3 -q | grep -q "^Final estimate: PPL = [0-9.]* +/- [0-9.]*$" ||
  { echo "FAIL: no 'Final estimate: PPL = X +/- E' line"; fails=$((fails + 1)); }

expect_error() {  # description, substring expected on stderr, command...
  local what=$1 want=$2 err rc
  shift 2
  err=$("$@" 2>&1 >/dev/null)
  rc=$?
  if [[ $rc -ne 1 || "$err" != *"$want"* ]]; then
    echo "FAIL $what: exit $rc, stderr: $err (want 1 and '$want')"; fails=$((fails + 1)); return
  fi
  echo "ok   $what: $err"
}
ok='{"ctx": "A cat", "endings": ["sat.", "ran."], "label": 1}'
printf '%s\n\n%s\n{"ctx": "A dog", "endings": ["sat."], "label": 0}\n' "$ok" "$ok" > "$W/one_ending.jsonl"
printf '%s\n{"ctx": "A dog", "endings": ["sat.", "ran."], "label": 2}\n' "$ok" > "$W/bad_label.jsonl"
printf '%s\n%s\n{"ctx": "A dog", "endings": ["sat.", "ran."], "label": 0\n' "$ok" "$ok" > "$W/not_json.jsonl"
printf '{"endings": ["sat.", "ran."], "label": 0}\n' > "$W/no_ctx.jsonl"
printf '{"ctx": "A", "endings": ["x", 3], "label": "0"}\n' > "$W/bad_ending.jsonl"
printf '{"ctx": "A", "endings": ["x", "y"], "label": "one"}\n' > "$W/word_label.jsonl"
E="$BIN eval $MODEL -z $TOK"
expect_error "one ending" "one_ending.jsonl:4: \"endings\" must be an array of at least 2" $E --choices "$W/one_ending.jsonl" --scores "$W/s.jsonl"
[[ ! -e "$W/s.jsonl" ]] || { echo "FAIL: --scores written despite the error"; fails=$((fails + 1)); }
expect_error "label out of range" "bad_label.jsonl:2: \"label\" must be the index" $E --choices "$W/bad_label.jsonl"
expect_error "line not JSON" "not_json.jsonl:3: not JSON (a syntax error at byte 57" $E --choices "$W/not_json.jsonl"
expect_error "no ctx" "no_ctx.jsonl:1: \"ctx\" must be a string" $E --choices "$W/no_ctx.jsonl"
expect_error "ending not a string" "bad_ending.jsonl:1: \"endings\"" $E --choices "$W/bad_ending.jsonl"
expect_error "label a word" "word_label.jsonl:1: \"label\"" $E --choices "$W/word_label.jsonl"
expect_error "missing choices file" "nothing.jsonl: cannot open" $E --choices "$W/nothing.jsonl"
expect_error "no input" "give one of --text" $E
expect_error "two inputs" "give one of --text" $E --text "$W/wp.txt" --choices "$W/bad_label.jsonl"
expect_error "ctx over the model's" "exceed the model's max_seq_len 512" $E --text "$W/wp.txt" --ctx 1024
head -c 200 "$W/wp.txt" > "$W/short.txt"
expect_error "text shorter than a chunk" "fewer than one chunk of --ctx 256" $E --text "$W/short.txt" --ctx 256
expect_error "stride over ctx" "--stride must be in [1, --ctx]" $E --text "$W/wp.txt" --ctx 64 --stride 65
expect_error "missing text" "nothing.txt: cannot open" $E --text "$W/nothing.txt"
printf '\x01\x00\x58\x02\x05\x00' > "$W/big_id.bin"  # ids 1, 600, 5: 600 is past tok512's 512
expect_error "shard id past the vocabulary" "big_id.bin: at byte 2: token id 600" $E --data "$W/big_id.bin" --ctx 2
printf '\x01\x00\x05\x00\x06\x00' > "$W/short_mask.bin"
printf 'ANTMASK1\x01\x00\x00\x00\x08\x00\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x01' > "$W/short_mask.mask"
expect_error "mask shorter than its shard" "short_mask.mask" $E --data "$W/short_mask.bin" --ctx 2
expect_error "--ctx with --choices" "go with --text or --data" $E --choices "$W/bad_label.jsonl" --ctx 64
# Out-of-range numbers are refused by name while the command line is parsed.
for bad in "--ctx 1" "--stride 0" "--chunks nan" "--batch 0" "--threads 100000" "--precision fp8"; do
  err=$($E --text "$W/wp.txt" $bad 2>&1 >/dev/null)
  rc=$?
  if [[ $rc -eq 0 || $rc -ge 124 || "$err" != *"${bad%% *}"* ]]; then
    echo "FAIL $bad: exit $rc, stderr: $err"; fails=$((fails + 1))
  else
    echo "ok   $bad refused"
  fi
done
[[ $fails == 0 ]] && echo PASS
exit $((fails > 0))
