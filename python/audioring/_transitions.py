"""Transitions: a recorder's start, stop and close, one at a time, from any thread (a signal handler too)."""

from __future__ import annotations

import contextlib
import enum
import threading
from collections.abc import Iterator
from typing import Callable, Optional


class Transition(enum.Enum):
    """A change of a recorder's state, named by the public method that asks for it."""

    START = "start_recording"
    STOP = "stop"
    CLOSE = "close"


class Transitions:
    """Runs one recorder's transitions one at a time, deferring those asked for inside one.

    The lock is not re-entrant: the only way a thread asks for a transition
    while it is inside one is a signal handler (or a finalizer) running in
    the middle of it. Waiting would deadlock, so the request is deferred:
    the transition in progress finishes first, then the deferred ones run,
    in order, on the same thread.

    The function that carries a transition out is given with each request,
    not kept: kept, a recorder's bound method would make a reference cycle
    (recorder -> transitions -> method -> recorder), and a closed recorder's
    ring would wait for the cycle collector instead of going at once.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._owner: Optional[int] = None  # the thread inside a transition (holding the lock)
        # Asked for by a signal handler on that thread meanwhile, with what carries each out.
        self._deferred: list[tuple[Transition, Callable[[Transition], None]]] = []

    @property
    def inside(self) -> bool:
        """Whether the calling thread is inside a transition (so it runs a signal handler or finalizer)."""
        return self._owner == threading.get_ident()

    def __call__(self, transition: Transition, run: Callable[[Transition], None]) -> None:
        """Carry out ``transition`` with ``run`` (lock held) now, or once the one this thread is inside has finished."""
        if self.inside:
            self._deferred.append((transition, run))
            return
        with self._held():
            run(transition)

    @contextlib.contextmanager
    def between(self) -> Iterator[None]:
        """Hold off transitions of other threads meanwhile; inside one of this thread's, hold nothing."""
        if self.inside:
            yield
            return
        with self._lock:
            yield

    @contextlib.contextmanager
    def unless_busy(self) -> Iterator[bool]:
        """Yield True holding off transitions, or False at once if another thread is inside one (never waits)."""
        if not self._lock.acquire(blocking=False):
            yield False
            return
        try:
            yield True
        finally:
            self._lock.release()

    @contextlib.contextmanager
    def _held(self) -> Iterator[None]:
        with self._lock:
            self._owner = threading.get_ident()
            try:
                yield
            finally:
                try:
                    while self._deferred:
                        transition, run = self._deferred.pop(0)
                        run(transition)
                finally:
                    self._owner = None
