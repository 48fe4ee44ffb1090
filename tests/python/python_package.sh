#!/usr/bin/env bash
# The Python package as a user installs it: `pip install ./python` into a fresh virtual
# environment of Debian's python3 (with its numpy; --no-index: nothing is downloaded), then its
# pytest suite against the engine and the CLI.
# Usage: python_package.sh SRC_DIR LIBANETRAIN ANETRAIN_BIN ASSETS WORKDIR
set -euo pipefail
SRC=$1 LIB=$2 BIN=$3 ASSETS=$4 W=$5
rm -rf "$W" && mkdir -p "$W"
/usr/bin/python3 -m venv --system-site-packages "$W/venv"
# A copy of the package folder, so the build's egg-info and build/ stay out of the source tree.
cp -r "$SRC/python" "$W/python"
# A build/ left in the source folder by an in-place `pip install ./python` would be copied with
# fresh times and win over the sources (setuptools copies only newer files): drop it.
rm -rf "$W/python/build" "$W/python"/*.egg-info
ANETRAIN_LIB=$LIB "$W/venv/bin/pip" install --no-index --no-build-isolation -q "$W/python"
cd "$W"  # not the source folder: the import must find the installed package
"$W/venv/bin/python" -c 'import anetrain, os; from anetrain._lib import LIBRARY; assert os.path.exists(os.path.join(os.path.dirname(anetrain.__file__), LIBRARY)); print("installed", anetrain.version())'
ANETRAIN_BIN=$BIN ANETRAIN_ASSETS=$ASSETS "$W/venv/bin/python" -m pytest -q -p no:cacheprovider "$W/python/tests"
