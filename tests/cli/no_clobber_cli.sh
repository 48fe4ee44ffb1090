#!/usr/bin/env bash
# An output path never overwrites a file the same command reads: `metrics -o`,
# `convert IN OUT` and `export -o` are refused, naming both paths, when the output is an input —
# by the same path, another spelling of it, a hard link or a symlink — and the input is unchanged.
# Usage: no_clobber_cli.sh BIN ASSETS WORKDIR
set -u
BIN=$1 ASSETS=$2 W=$3
rm -rf "$W" && mkdir -p "$W"
fails=0
ok() { echo "ok   $1"; }
bad() { echo "FAIL $1"; fails=$((fails + 1)); }
# refused "what" OUTPUT INPUT cmd...: exit non-zero, stderr naming both paths.
refused() {
  local what=$1 out=$2 in=$3
  shift 3
  local err rc
  err=$("$@" 2>&1 >/dev/null)
  rc=$?
  if [[ $rc -eq 0 ]]; then bad "$what: exit status 0"; return; fi
  if [[ "$err" != *"$out"* || "$err" != *"$in"* ]]; then bad "$what: stderr does not name $out and $in: $err"; return; fi
  ok "$what: $err"
}
unchanged() {  # unchanged "what" FILE SAVED_COPY
  cmp -s "$2" "$3" && ok "$1: unchanged" || bad "$1: the input was changed"
}

# metrics: the run's own telemetry as output.
mkdir -p "$W/run"
for s in 1 2 3; do echo "{\"event\":\"step\",\"time\":$s,\"step\":$s,\"loss\":2.5}"; done > "$W/run/telemetry.jsonl"
T=$W/run/telemetry.jsonl
cp "$T" "$W/telemetry.saved"
refused "metrics -o its own telemetry" "$T" "$T" "$BIN" metrics "$W/run" --csv -o "$T"
refused "metrics -o another spelling of it" "$W/run/../run/telemetry.jsonl" "$T" \
  "$BIN" metrics "$W/run" --csv -o "$W/run/../run/telemetry.jsonl"
ln "$T" "$W/hardlink.csv"
refused "metrics -o a hard link to it" "$W/hardlink.csv" "$T" "$BIN" metrics "$W/run" --csv -o "$W/hardlink.csv"
ln -s "$T" "$W/symlink.csv"
refused "metrics -o a symlink to it" "$W/symlink.csv" "$T" "$BIN" metrics "$W/run" --csv -o "$W/symlink.csv"
unchanged "telemetry.jsonl" "$T" "$W/telemetry.saved"
"$BIN" metrics "$W/run" --csv -o "$W/m.csv" 2>/dev/null && [[ $(wc -l < "$W/m.csv") -eq 4 ]] \
  && ok "metrics -o another file still works" || bad "metrics -o another file"

# convert: a model file onto itself, or onto a hard link of itself.
M=$W/m.bin
cp "$ASSETS/llama2c/stories260K.bin" "$M"
cp "$M" "$W/m.saved"
refused "convert IN IN" "$M" "$M" "$BIN" convert "$M" "$M"
ln "$M" "$W/m_link.bin"
refused "convert IN onto a hard link of IN" "$W/m_link.bin" "$M" "$BIN" convert "$M" "$W/m_link.bin"
refused "convert IN onto a hard link of IN (gguf)" "$W/m_link.bin" "$M" "$BIN" convert "$M" "$W/m_link.bin" --to gguf
unchanged "the llama2.c input" "$M" "$W/m.saved"

# An HF folder converted or exported into itself.
"$BIN" convert "$M" "$W/hf" -z "$ASSETS/llama2c/tok512.bin" >/dev/null 2>&1 || bad "convert to an HF folder"
cp -r "$W/hf" "$W/hf.saved"
refused "convert HF_FOLDER HF_FOLDER" "$W/hf/" "$W/hf/" "$BIN" convert "$W/hf" "$W/hf"
refused "export HF_FOLDER -o HF_FOLDER" "$W/hf/" "$W/hf/" "$BIN" export "$W/hf" -o "$W/hf"
diff -r "$W/hf" "$W/hf.saved" >/dev/null && ok "the HF folder: unchanged" || bad "the HF folder was changed"
# The tokenizer given with -z is an input too.
mkdir -p "$W/hf2" && cp "$ASSETS/llama2c/tok512.bin" "$W/tok.bin" && ln "$W/tok.bin" "$W/hf2/tokenizer.bin"
refused "convert -z TOK into a folder whose tokenizer.bin is TOK" "$W/hf2/tokenizer.bin" "$W/tok.bin" \
  "$BIN" convert "$M" "$W/hf2" -z "$W/tok.bin"

[[ $fails -eq 0 ]]
