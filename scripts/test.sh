#!/usr/bin/env bash
# README command 2: set up, build, and run the whole test suite (GoogleTest + end-to-end checks
# against the PyTorch reference). Test data comes from ../shared/assets.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cd build
ctest --output-on-failure -j"$(nproc)"
