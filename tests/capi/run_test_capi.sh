#!/usr/bin/env bash
# Runs test_capi (or its ASan build) with a token shard prepared from War and Peace, so that the
# training session is covered too, and with the seed's MIL programs (ASSETS/../reference/mil) and
# the CLI for the MIL programs. Usage: run_test_capi.sh TEST_CAPI ANETRAIN ASSETS WORKDIR
set -euo pipefail
T=$1 BIN=$2 ASSETS=$3 W=$4
rm -rf "$W" && mkdir -p "$W"
{ gzip -dc "$ASSETS/corpora/war-and-peace.txt.gz" || true; } | head -c 200000 > "$W/wp.txt"
"$BIN" prepare "$W/wp.txt" -z "$ASSETS/llama2c/tok512.bin" -o "$W/data" > /dev/null
mkdir -p "$W/mil"
"$T" "$ASSETS/llama2c/stories260K.bin" "$ASSETS/llama2c/tok512.bin" "$(ls "$W"/data/train_*.bin | head -1)" "$W/run" \
  "$ASSETS/../reference/mil" "$BIN" "$W/mil"
