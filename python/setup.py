"""Puts libanetrain.so (libanetrain.dylib on macOS) into the package it builds: from $ANETRAIN_LIB,
else from the project's build folder (../build/src, made by scripts/setup.sh). Everything else is
in pyproject.toml."""
import os
import shutil
import sys

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
LIBRARY = "libanetrain.dylib" if sys.platform == "darwin" else "libanetrain.so"


def find_library():
    given = os.environ.get("ANETRAIN_LIB")
    candidates = [given] if given else [os.path.join(HERE, "..", "build", "src", LIBRARY)]
    for c in candidates:
        if c and os.path.exists(c):
            return os.path.realpath(c)
    raise SystemExit(
        "anetrain: %s not found (looked for %s). Build the engine first "
        "(bash scripts/setup.sh), or point ANETRAIN_LIB at the library." % (LIBRARY, ", ".join(map(str, candidates))))


class BuildWithLibrary(build_py):
    def run(self):
        super().run()
        target = os.path.join(self.build_lib, "anetrain", LIBRARY)
        shutil.copyfile(find_library(), target)


setup(cmdclass={"build_py": BuildWithLibrary})
