# Cross-compiles for 64-bit ARM Linux (Raspberry Pi OS 64-bit, Debian arm64) with Debian's
# g++-aarch64-linux-gnu; the programs run here under qemu-aarch64 (qemu-user), as
# tests/test_platforms.py does.
#
# Third-party libraries (libsoxr, libsndfile; for the Python extension libpython3.11) come from
# an arm64 root: Debian's :arm64 packages unpacked into a directory (dpkg -x), named by
# AUDIORING_TARGET_ROOT (a CMake variable or the environment variable of that name). pkg-config
# looks there only, and prefixes what it reports with that root.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)

if(NOT AUDIORING_TARGET_ROOT AND DEFINED ENV{AUDIORING_TARGET_ROOT})
  set(AUDIORING_TARGET_ROOT "$ENV{AUDIORING_TARGET_ROOT}")
endif()
# try_compile projects inherit it.
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES AUDIORING_TARGET_ROOT)

if(AUDIORING_TARGET_ROOT)
  set(_multiarch "${AUDIORING_TARGET_ROOT}/usr/lib/aarch64-linux-gnu")
  set(ENV{PKG_CONFIG_SYSROOT_DIR} "${AUDIORING_TARGET_ROOT}")
  set(ENV{PKG_CONFIG_LIBDIR} "${_multiarch}/pkgconfig:${AUDIORING_TARGET_ROOT}/usr/share/pkgconfig")
  # The libraries' own dependencies (libsndfile's codecs, libsoxr's libgomp) are found at link
  # time in the same root. The C library is the cross compiler's own (/usr/aarch64-linux-gnu/lib,
  # searched first): a root holding libc6-dev (the Python extension's root does, through
  # libpython3.11-dev) has a libc.so linker script naming /lib/aarch64-linux-gnu/libc.so.6, a path
  # of the target machine that the linker, run without a sysroot, would look for on this one.
  set(_link_dirs "-L/usr/aarch64-linux-gnu/lib -Wl,-rpath-link,${_multiarch} -L${_multiarch}")
  set(CMAKE_EXE_LINKER_FLAGS_INIT "${_link_dirs}")
  set(CMAKE_SHARED_LINKER_FLAGS_INIT "${_link_dirs}")
  set(CMAKE_MODULE_LINKER_FLAGS_INIT "${_link_dirs}")
  list(APPEND CMAKE_FIND_ROOT_PATH "${AUDIORING_TARGET_ROOT}")
endif()
list(APPEND CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)

# Programs (pkg-config, git) from the build machine; libraries and headers from the target only.
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# What runs the test programs (ctest, try_run): qemu-user with the target's loader and libraries.
if(AUDIORING_TARGET_ROOT)
  set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64 -L "${AUDIORING_TARGET_ROOT}")
else()
  set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64 -L /usr/aarch64-linux-gnu)
endif()
