#!/usr/bin/env bash
# Installs build and test dependencies from Debian's registry (when missing) and builds
# anetrain in ./build. Safe to re-run; skips apt when everything is already installed.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(build-essential cmake pkg-config libcli11-dev nlohmann-json3-dev libopenblas-openmp-dev libdnnl-dev zlib1g-dev libssl-dev curl strace
          libcpp-httplib-dev  # the dashboard's HTTP server
          openmpi-bin libopenmpi-dev  # data parallel training (mpirun -np N anetrain train ...)
          libgtest-dev python3 python3-numpy python3-torch python3-sentencepiece libutf8proc-dev
          tmux  # the terminal dashboard test (tests/cli/tui_cli.sh)
          python3-venv python3-pip python3-pytest  # the Python package's install and tests
          clang libclang-rt-dev libomp-dev)  # the fuzz build (fuzz/): clang, libFuzzer/ASan runtimes, clang's OpenMP
# node/npm run the tokenizer reference tests; many machines ship them outside Debian (NodeSource),
# so Debian's packages are installed only when the commands are absent.
command -v node >/dev/null && command -v npm >/dev/null || PACKAGES+=(nodejs npm)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The dashboard page's chart library (uPlot, pinned by web/package-lock.json), compiled into the binary.
npm ci --prefix web --no-audit --no-fund --loglevel=error
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"
echo "setup: built ./build/src/anetrain"
