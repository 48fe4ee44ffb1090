#!/usr/bin/env bash
# The macOS-only Neural Engine runtime cannot be built here, so it must not rot: compile-check
#  * src/backends/ane/runtime/apple_ane.c for an Apple silicon target (clang -fsyntax-only) against the
#    minimal SDK declarations in src/backends/ane/runtime/macos_decls/, and
#  * src/backends/ane/runtime/apple_api.cpp (C++ over that C API) with the host compiler.
# Usage: scripts/check_macos_sources.sh   (prints "2 passed, 0 failed" on success)
set -uo pipefail
cd "$(dirname "$0")/.."
R=src/backends/ane/runtime
passed=0 failed=0
if clang -fsyntax-only -target arm64-apple-macos14 -std=c11 -ffreestanding -Wall -Wextra -Werror \
     -isystem "$R/macos_decls" -I "$R" "$R/apple_ane.c"; then
  passed=$((passed + 1)); echo "ok   apple_ane.c (arm64-apple-macos14)"
else
  failed=$((failed + 1)); echo "FAIL apple_ane.c"
fi
if ${CXX:-c++} -fsyntax-only -std=c++20 -Wall -Wextra -Werror -I src "$R/apple_api.cpp"; then
  passed=$((passed + 1)); echo "ok   apple_api.cpp"
else
  failed=$((failed + 1)); echo "FAIL apple_api.cpp"
fi
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
