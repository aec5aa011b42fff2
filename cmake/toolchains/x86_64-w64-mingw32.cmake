# Cross-compiles for 64-bit Windows with Debian's mingw-w64 (g++-mingw-w64-x86-64, its
# "posix" thread model, which std::thread needs); the programs run here under Wine, as
# tests/test_platforms.py does. The C++ runtime is linked statically, so a program needs no
# DLL beyond Windows' own.
#
# Debian has no mingw-w64 build of libsoxr or libsndfile: configure with
# -DAUDIORING_RING_ONLY=ON (the ring, its memory and its tests; no converter, no file writer).
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR AMD64)

set(CMAKE_C_COMPILER x86_64-w64-mingw32-gcc-posix)
set(CMAKE_CXX_COMPILER x86_64-w64-mingw32-g++-posix)
set(CMAKE_RC_COMPILER x86_64-w64-mingw32-windres)

set(CMAKE_FIND_ROOT_PATH /usr/x86_64-w64-mingw32)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

set(CMAKE_EXE_LINKER_FLAGS_INIT "-static")

# What runs the test programs (ctest): Wine. Its prefix (WINEPREFIX) is the caller's choice.
set(CMAKE_CROSSCOMPILING_EMULATOR wine)
