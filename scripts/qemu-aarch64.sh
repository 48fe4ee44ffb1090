#!/bin/sh
# Runs an aarch64 Linux program on this machine under qemu-user: the cross build's emulator
# (cmake/aarch64-linux-gnu.cmake). ANETRAIN_QEMU_CPU picks the CPU qemu emulates: max (dotprod,
# bf16, i8mm: the fast kernels) or cortex-a72 (plain NEON: the fallbacks).
# No -L /usr/aarch64-linux-gnu: that is the cross compiler's libc, while the program's libraries
# are the arm64 packages' (multiarch, /usr/lib/aarch64-linux-gnu) and find the host's ld.so.cache;
# a loader from one glibc build with the libc of another hung in pthread_create. The arm64 libc6
# package puts its own loader at /lib/ld-linux-aarch64.so.1, where qemu looks for it.
# GOMP_SPINCOUNT: libgomp's default spin (300,000 rounds at each barrier) under emulation made
# a parallel region of a trivial loop take 0.2 s; anetrain sets it by re-executing itself, which
# it cannot do under qemu, and the test programs never do.
export GOMP_SPINCOUNT="${GOMP_SPINCOUNT:-1000}"
exec qemu-aarch64 -cpu "${ANETRAIN_QEMU_CPU:-max}" "$@"
