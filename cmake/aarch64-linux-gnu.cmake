# Cross-compiling for 64-bit ARM Linux with Debian's g++-aarch64-linux-gnu and the arm64 -dev
# packages (multiarch: dpkg --add-architecture arm64). scripts/test_arm64.sh uses it and runs the
# results under qemu-aarch64. ANETRAIN_ARM64_CLANG=ON compiles with clang 14 against the same
# GCC sysroot instead.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
if(ANETRAIN_ARM64_CLANG)
  set(CMAKE_C_COMPILER clang)
  set(CMAKE_CXX_COMPILER clang++)
  set(CMAKE_C_COMPILER_TARGET aarch64-linux-gnu)
  set(CMAKE_CXX_COMPILER_TARGET aarch64-linux-gnu)
else()
  set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
  set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
endif()
# Libraries come from /usr/lib/aarch64-linux-gnu (CMAKE_LIBRARY_ARCHITECTURE steers every
# find_library there first), headers from /usr/include, programs from the host; pkg-config reads
# only the arm64 and architecture-independent .pc files. MPI is not cross-built: the host's mpicc
# would hand CMake its x86-64 libraries.
set(ENV{PKG_CONFIG_LIBDIR} /usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig)
set(CMAKE_DISABLE_FIND_PACKAGE_MPI ON)
# Executables the build runs (gtest_discover_tests) and the tests CTest starts go through qemu
# (the environment's ANETRAIN_QEMU_CPU, read when they run, picks the emulated CPU).
set(CMAKE_CROSSCOMPILING_EMULATOR ${CMAKE_CURRENT_LIST_DIR}/../scripts/qemu-aarch64.sh)
