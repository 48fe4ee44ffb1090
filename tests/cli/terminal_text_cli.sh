#!/usr/bin/env bash
# Names from files and the command line reach the terminal escaped, never as control sequences:
# `inspect` of a checkpoint whose tensor names hold OSC/CSI (and a C1 CSI), an error message that
# quotes a file name holding ESC, an unknown command holding ESC, and train's progress messages
# for a model file name holding ESC. Each output must contain the escaped form and no raw ESC,
# BEL or C1 control.
# Usage: terminal_text_cli.sh BIN ASSETS WORKDIR   (ASSETS: for the token shards of the train check)
set -u
BIN=$1 ASSETS=$2 W=$3
rm -rf "$W" && mkdir -p "$W"
fails=0
check() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fails=$((fails + 1)); fi; }
# True when the text holds no ESC, BEL, CR or UTF-8 C1 control (U+0080–U+009F).
inert() { ! LC_ALL=C grep -qaP '[\x1b\x07\x0d]|\xc2[\x80-\x9f]' <<<"$1"; }
ESC=$(printf '\033') BEL=$(printf '\007')

# A valid .anck (see src/formats/anck.h) with hostile tensor names, and one whose hostile tensor
# has a dtype the reader refuses (so its name appears in an error message).
/usr/bin/python3 - "$W" <<'PY'
import json, struct, sys, zlib
def anck(path, tensors):
    data = struct.pack("<2f", 1.0, 2.0)
    entries, off = [], 0
    header = {"kind": "model", "meta": {"note": "\u001b]0;meta\u0007"}, "tensors": entries}
    for name, dtype in tensors:
        entries.append({"name": name, "dtype": dtype, "shape": [2], "offset": 0, "nbytes": 8, "crc32": zlib.crc32(data)})
    text = json.dumps(header).encode()
    first = (24 + len(text) + 200 + 63) // 64 * 64
    for i, e in enumerate(entries):
        e["offset"] = first + 64 * i
    text = json.dumps(header).encode().ljust(first - 24)
    with open(path, "wb") as f:
        f.write(b"ANETCKPT" + struct.pack("<IIQ", 1, zlib.crc32(text), len(text)) + text)
        for e in entries:
            f.write(b"\0" * (e["offset"] - f.tell()) + data)
anck(sys.argv[1] + "/evil.anck", [("w\u001b]0;pwned\u0007\u001b[2J", "F32"), ("c1\u009b31m", "F32")])
anck(sys.argv[1] + "/bad.anck", [("w\u001b]0;pwned\u0007", "F16")])
PY
out=$("$BIN" inspect "$W/evil.anck" 2>&1); rc=$?
check "inspect prints the tensor names escaped (rc $rc)" \
  '[[ $rc -eq 0 && "$out" == *"w\\x1b]0;pwned\\x07\\x1b[2J"* && "$out" == *"c1\\u009b31m"* ]] && inert "$out"'
out=$("$BIN" inspect "$W/evil.anck" --json 2>&1); rc=$?
check "inspect --json leaves no raw control either (rc $rc)" \
  '[[ $rc -eq 0 && "$out" == *"\\u001b]0;pwned\\u0007"* ]] && inert "$out"'
out=$("$BIN" inspect "$W/bad.anck" 2>&1); rc=$?
check "an error naming a hostile tensor is printed escaped" \
  '[[ $rc -ne 0 && "$out" == *"w\\x1b]0;pwned\\x07"* ]] && inert "$out"'
out=$("$BIN" inspect "$W/no${ESC}]0;pwned${BEL}such" 2>&1); rc=$?
check "an error naming a hostile file is printed escaped" \
  '[[ $rc -ne 0 && "$out" == *"no\\x1b]0;pwned\\x07such"* ]] && inert "$out"'
out=$("$BIN" "${ESC}[2Jnot-a-command" 2>&1); rc=$?
check "an unknown command is printed escaped" '[[ $rc -ne 0 && "$out" == *"\\x1b[2Jnot-a-command"* ]] && inert "$out"'
out=$("$BIN" generate stories260k -t "${ESC}]0;pwned${BEL}" 2>&1); rc=$?
check "a command-line parse error quoting a hostile value is printed escaped" \
  '[[ $rc -ne 0 && "$out" == *"\\x1b]0;pwned\\x07"* ]] && inert "$out"'

Z=$ASSETS/llama2c/tok512.bin
gzip -dc "$ASSETS/corpora/war-and-peace.txt.gz" | head -c 60000 > "$W/wp.txt"
"$BIN" prepare "$W/wp.txt" -z "$Z" -o "$W/data" >/dev/null 2>&1
cp "$(dirname "$0")/../../configs/stories260k.json" "$W/m${ESC}[2J.json"
out=$("$BIN" train --model "$W/m${ESC}[2J.json" --data "$W"/data/train_*.bin --seq 32 --batch 2 --steps 2 \
  --threads 1 --eval-every 0 --ckpt-every 1000 --out "$W/run" 2>&1); rc=$?
line=$(grep '^training ' <<<"$out")
check "train's progress message names the model file escaped (rc $rc)" \
  '[[ $rc -eq 0 && "$line" == *"m\\x1b[2J.json"* ]] && inert "$line"'
[[ $fails -eq 0 ]]
