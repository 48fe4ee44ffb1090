# Imported before `import torch` by every test that compares with PyTorch. PyTorch comes from
# Debian's python3-torch, which scripts/setup.sh installs on Linux only: there a missing torch stays
# an ImportError (a failure). Elsewhere (macOS) the test ends as skipped, exit 77 (CTest's
# SKIP_RETURN_CODE), naming itself and the reason.
import os
import sys

SKIPPED = 77

try:
    import torch  # noqa: F401
except ImportError as e:
    if sys.platform.startswith("linux"):
        raise
    print("SKIP %s: no PyTorch in %s (%s); the PyTorch reference tests run on Linux, where "
          "scripts/setup.sh installs Debian's python3-torch" % (os.path.basename(sys.argv[0]), sys.executable, e),
          flush=True)
    sys.exit(SKIPPED)
