"""What ``run.py`` hands every case: the mode, a log, and the C++ helpers built once per run."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from harness.native import CallbackTimer, build_targets, helper_path

#: The helpers built as shared libraries (loaded with ctypes), not programs.
LIBRARIES = ("callback_timer", "publish_probe")


def log(message: str) -> None:
    """Progress goes to stderr; stdout carries only the final report."""
    print(message, file=sys.stderr, flush=True)


@dataclass
class RunContext:
    mode: str  # "full" or "quick"
    build_dir: Path
    #: Whether the stall and capacity cases add their realtime jackd (-R) variant.
    realtime: bool = True
    native: dict = field(default_factory=dict)
    _built: set = field(default_factory=set)

    @property
    def quick(self) -> bool:
        return self.mode == "quick"

    def log(self, message: str) -> None:
        log(message)

    def helper(self, target: str) -> Path:
        """Path of a C++ helper target in benchmarks/, built (once per run) from this checkout."""
        if target not in self._built:
            self.log(f"  building benchmarks/{target} (CMake, Release)")
            self.native = build_targets(self.build_dir, sorted(self._built | {target}))
            self._built.add(target)
        name = f"lib{target}.so" if target in LIBRARIES else target
        return helper_path(self.build_dir, name)

    def callback_timer(self, rate: float) -> CallbackTimer:
        return CallbackTimer(self.helper("callback_timer"), rate)
