#!/usr/bin/env bash
# libanetrain.a as docs/api.md tells a C programmer to use it: the documented `cc` line, taken
# from the docs themselves (so a wrong line fails here), builds examples/generate.c against the
# archive; the program must print the golden text capi_example checks (tests/CMakeLists.txt).
# Usage: static_link.sh SOURCE_DIR ARCHIVE ASSETS WORKDIR GOLDEN_TEXT
set -euo pipefail
SRC=$1 ARCHIVE=$2 ASSETS=$3 W=$4 golden=$5
rm -rf "$W" && mkdir -p "$W"
line=$(grep -m1 '^cc examples/generate.c .*build/src/libanetrain.a' "$SRC/docs/api.md") ||
  { echo "FAIL docs/api.md has no 'cc examples/generate.c ... build/src/libanetrain.a' line"; exit 1; }
line=${line//build\/src\/libanetrain.a/$ARCHIVE}
line=${line//-o generate/-o $W/generate}
[[ $line == *"-o $W/generate"* ]] || { echo "FAIL the documented line does not end in '-o generate': $line"; exit 1; }
echo "+ $line"
(cd "$SRC" && eval "$line")
# Nothing of the engine may come from a shared libanetrain: the archive alone provides the API.
if ldd "$W/generate" | grep -q 'libanetrain'; then echo "FAIL the program loads libanetrain.so"; exit 1; fi
out=$("$W/generate" "$ASSETS/llama2c/stories260K.bin" "$ASSETS/llama2c/tok512.bin" 2>"$W/stderr")
if [[ $out != *"$golden"* ]]; then echo "FAIL not the golden story: $out"; cat "$W/stderr"; exit 1; fi
echo "ok   the statically linked example tells the golden story"
