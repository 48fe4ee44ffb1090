#!/usr/bin/env bash
# Installs build and test dependencies when missing (Debian: apt-get; macOS: Homebrew) and builds
# anetrain in ./build. Safe to re-run; skips the package manager when everything is installed.
# Written for bash 3.2 too (macOS's /bin/bash): no empty "${array[@]}" under set -u.
set -euo pipefail
cd "$(dirname "$0")/.."

install_debian_packages() {
  local packages=(build-essential cmake pkg-config libcli11-dev nlohmann-json3-dev libopenblas-openmp-dev libdnnl-dev zlib1g-dev libssl-dev curl strace
          libcpp-httplib-dev  # the dashboard's HTTP server
          openmpi-bin libopenmpi-dev  # data parallel training (mpirun -np N anetrain train ...)
          libgtest-dev python3 python3-numpy python3-torch python3-sentencepiece libutf8proc-dev
          tmux  # the terminal dashboard test (tests/cli/tui_cli.sh)
          python3-venv python3-pip python3-wheel python3-pytest  # the Python package's install and tests
          clang libclang-rt-dev libomp-dev)  # the fuzz build (fuzz/): clang, libFuzzer/ASan runtimes, clang's OpenMP
  # node/npm run the tokenizer reference tests; many machines ship them outside Debian (NodeSource),
  # so Debian's packages are installed only when the commands are absent.
  command -v node >/dev/null && command -v npm >/dev/null || packages+=(nodejs npm)
  local missing=() p
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    echo "setup: installing ${missing[*]}"
    local sudo=""
    [[ $(id -u) -ne 0 ]] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# Homebrew formulae: the same libraries as Debian's list. No BLAS or oneDNN: BLAS is Apple's
# Accelerate (part of macOS), oneDNN is optional there. libomp: Apple's clang has no OpenMP runtime.
HOMEBREW_FORMULAE=(cmake pkg-config libomp cli11 nlohmann-json cpp-httplib open-mpi googletest utf8proc openssl@3)

install_homebrew_packages() {
  if ! command -v brew >/dev/null; then
    echo "setup: Homebrew is needed on macOS to install the build dependencies, and 'brew' is not on PATH." >&2
    echo "setup: install it with the one command on https://brew.sh, run the 'eval \"\$(/opt/homebrew/bin/brew shellenv)\"'" >&2
    echo "setup: line it prints (or open a new terminal), then run this script again." >&2
    exit 1
  fi
  if ! xcode-select -p >/dev/null 2>&1; then
    echo "setup: the Xcode Command Line Tools (the C++ compiler) are missing: run 'xcode-select --install', then this script again." >&2
    exit 1
  fi
  local formulae=("${HOMEBREW_FORMULAE[@]}") missing=() f
  command -v node >/dev/null && command -v npm >/dev/null || formulae+=(node)
  for f in "${formulae[@]}"; do
    brew list --versions "$f" >/dev/null 2>&1 || missing+=("$f")
  done
  if ((${#missing[@]})); then
    echo "setup: installing ${missing[*]} (Homebrew)"
    brew install --quiet "${missing[@]}"
  fi
}

# The tests and the Python package use /usr/bin/python3 on both systems (Debian's, with its numpy;
# on macOS the one that comes with the Command Line Tools). Homebrew has no numpy for that Python,
# so on macOS its user site gets numpy, pytest, sentencepiece, and a setuptools that reads
# pyproject.toml (>= 61), from PyPI. PyTorch is left out: the tests that need it skip there.
PYTHON=/usr/bin/python3
python_ready() {
  "$PYTHON" -c 'import numpy, pytest, setuptools, venv, wheel
assert int(setuptools.__version__.split(".")[0]) >= 61, "setuptools " + setuptools.__version__' >/dev/null 2>&1
}

install_macos_python_packages() {
  python_ready && return 0
  echo "setup: installing numpy, pytest, sentencepiece, setuptools, wheel for $PYTHON (pip --user)"
  "$PYTHON" -m pip install --user --quiet --disable-pip-version-check numpy pytest sentencepiece "setuptools>=61" wheel ||
    echo "setup: warning: pip could not install them (offline?); the engine builds without them" >&2
}

cpu_count() {
  if [[ $(uname -s) == Darwin ]]; then sysctl -n hw.ncpu; else nproc; fi
}

if [[ $(uname -s) == Darwin ]]; then
  install_homebrew_packages
  install_macos_python_packages
else
  install_debian_packages
fi
# A warning, not a stop: the engine builds without them; the Python package and the tests need them.
python_ready || echo "setup: warning: $PYTHON lacks one of numpy, pytest, setuptools >= 61, venv, wheel" >&2

# The dashboard page's chart library (uPlot, pinned by web/package-lock.json), compiled into the binary.
npm ci --prefix web --no-audit --no-fund --loglevel=error
if [[ $(uname -s) == Darwin ]]; then
  # Homebrew's prefix (/opt/homebrew on Apple silicon) for the CMake packages; its OpenSSL 3 is
  # keg-only. BLAS defaults to Accelerate on Apple, and CMake finds libomp through brew itself.
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$(brew --prefix)" \
    -DOpenSSL_ROOT="$(brew --prefix openssl@3)" >/dev/null
else
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DANETRAIN_UNITY=ON >/dev/null
fi
cmake --build build -j"$(cpu_count)"
echo "setup: built ./build/src/anetrain"
