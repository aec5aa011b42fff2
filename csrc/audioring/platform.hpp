#pragma once
// Which operating system's own facilities the core uses.
//
// AUDIORING_LINUX: Linux's (memfd_create, futex, eventfd, /proc/meminfo and the memory
// cgroups, posix_fallocate, OFD locks for sharing a ring between processes, thread names and
// SCHED_BATCH). It is defined on Linux unless AUDIORING_PORTABLE_POSIX is (the CMake option of
// that name): Linux then builds the paths that macOS and the other POSIX systems take
// (shm_open for mirrored memory, a doorbell that polls, a pipe to wake an event loop, sharing
// refused), so that they are compiled and tested on this project's Linux machines
// (tests/test_platforms.py). Every platform test in csrc/ asks for AUDIORING_LINUX, never for
// __linux__, so that the option forces all of them together.
#if defined(__linux__) && !defined(AUDIORING_PORTABLE_POSIX)
#define AUDIORING_LINUX 1
#endif
