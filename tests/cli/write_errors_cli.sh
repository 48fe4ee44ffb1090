#!/usr/bin/env bash
# Write errors through the real binary: `metrics` to a full device or a full stdout,
# and `convert` / `export` into a file system that runs out of space, each exit non-zero with a
# message naming the file and errno's text, and leave no partial output behind.
# The out-of-space cases mount a 512 KiB tmpfs (root only); without that permission they are
# skipped with a message, and the test exits 77 (skipped) if nothing else failed.
# Usage: write_errors_cli.sh BIN ASSETS WORKDIR
set -u
BIN=$1 ASSETS=$2 W=$3
rm -rf "$W" && mkdir -p "$W"
fails=0 skipped=0
ok() { echo "ok   $1"; }
bad() { echo "FAIL $1"; fails=$((fails + 1)); }
# expect_failure "what" "text stderr must hold" cmd...
expect_failure() {
  local what=$1 want=$2
  shift 2
  local err rc
  err=$("$@" 2>&1 >/dev/null)
  rc=$?
  if [[ $rc -eq 0 ]]; then bad "$what: exit status 0"; return 1; fi
  if [[ "$err" != *"$want"* ]]; then bad "$what: stderr lacks '$want': $err"; return 1; fi
  ok "$what: $err"
}

mkdir -p "$W/run"
for s in 1 2 3; do echo "{\"event\":\"step\",\"time\":$s,\"step\":$s,\"loss\":2.5}"; done > "$W/run/telemetry.jsonl"

# A private device node first (mknod needs root): a binary that still renamed a temp file over its
# output would replace this node, not the system's /dev/full.
if mknod "$W/full" c 1 7 2>/dev/null; then
  expect_failure "metrics -o a full device node" "$W/full: write failed: No space left on device" \
    "$BIN" metrics "$W/run" --csv -o "$W/full"
  [[ -c "$W/full" ]] && ok "the device node is still a device" || bad "the device node was replaced"
  if [[ $fails -eq 0 ]]; then
    expect_failure "metrics -o /dev/full" "/dev/full: write failed: No space left on device" \
      "$BIN" metrics "$W/run" --csv -o /dev/full
    [[ -c /dev/full ]] || bad "/dev/full is no longer a device"
  fi
else
  echo "skip metrics -o DEVICE: mknod not permitted"
fi
expect_failure "metrics to a full stdout" "standard output: write failed: No space left on device" \
  bash -c '"$0" metrics "$1" --csv > /dev/full' "$BIN" "$W/run"

# Out of space on a real file system.
T=$W/small
mkdir -p "$T"
if mount -t tmpfs -o size=512k tmpfs "$T" 2>/dev/null; then
  trap 'umount "$T" 2>/dev/null' EXIT
  M=$ASSETS/llama2c/stories260K.bin  # 1 MB of fp32 weights: no fp32 output of it fits
  expect_failure "convert to GGUF out of space" "$T/out.gguf: write failed: No space left on device" \
    "$BIN" convert "$M" "$T/out.gguf"
  expect_failure "convert to llama2.c out of space" "$T/out.bin: write failed: No space left on device" \
    "$BIN" convert "$M" "$T/out.bin"
  expect_failure "convert to an HF folder out of space" "$T/hf/model.safetensors: write failed: No space left on device" \
    "$BIN" convert "$M" "$T/hf"
  expect_failure "export out of space" "$T/exp/model.safetensors: write failed: No space left on device" \
    "$BIN" export "$M" -o "$T/exp"
  left=$(ls -A "$T")
  [[ -z "$left" ]] && ok "nothing left on the full file system" || bad "left behind on the full file system: $left"
else
  echo "skip out-of-space conversions: mounting a tmpfs is not permitted here"
  skipped=1
fi

if [[ $fails -ne 0 ]]; then exit 1; fi
if [[ $skipped -ne 0 ]]; then exit 77; fi
exit 0
