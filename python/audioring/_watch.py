"""Waiting for a ring's frames in asyncio: the event-loop half of the native FrameWatcher.

The pieces, per process:

* one `_Watch` per ring (``_core.FrameRing``): a native ``FrameWatcher``
  whose thread starts with the first wait that has to wait, sleeps on the
  ring's doorbell only while some bell is armed, and is joined by `close`
  or when the ring goes;
* per event loop, one `_LoopWaits`: one native bell (a descriptor) that the
  loop watches with ``add_reader`` while any of its consumers waits, armed
  with the lowest frame they wait for. Hundreds of waiting consumers are
  one armed bell and one heap entry each; nothing of theirs runs until a
  frame some of them wait for arrives.

`wait_for_frame` is the asyncio counterpart of ``FrameRing.wait_for_frame``
(same arguments, same answers), and `wait_until_written` the loop that
`AsyncFrameStream` and the ``wait_frames`` methods share. A wait that ended
(timed out, cancelled) leaves nothing behind: its heap entry is dropped once
such entries are as many as the others, however long other waits stay
pending, and when the loop's last waiter leaves, the bell is disarmed and its
descriptor unwatched. A loop closed with waits pending keeps them (and their
tasks) until a new event loop waits on the ring or its owner closes it; destroying
their tasks then prints nothing.

Any ring object that has ``frames_written`` and ``interrupt_count`` and is a
``_core.FrameRing`` (the native watcher needs its ring) can be waited on; an
owner whose producer ends for good calls `close` (see there).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import threading
import time
import weakref
from typing import Any, Callable, Optional

from . import _core

WaitStatus = _core.WaitStatus


def _resolve(future: asyncio.Future[_core.WaitStatus], status: _core.WaitStatus) -> None:
    if not future.done():
        future.set_result(status)


# The state of a heap entry (its last item).
_WAITING = 0  # in the heap, its wait in progress
_ENDED = 1  # in the heap, its wait over (timed out, cancelled): counted in _LoopWaits._ended
_REMOVED = 2  # out of the heap

# A heap entry: [frame, arrival, interrupts_seen, future, state]. A list, so
# that its state can change; `arrival` is unique, so heap order never
# compares further than it.
_Entry = list[Any]


class _LoopWaits:
    """The consumers of one ring that wait on one event loop, behind one native bell.

    Used only from its loop's thread (the wait coroutines and the reader
    callback run there), so it needs no lock; the watcher's thread only
    touches the native bell.
    """

    def __init__(self, bell: _core.WatcherBell) -> None:
        self._bell = bell
        # Entries (see _Entry), lowest frame first. One whose wait ended
        # (timed out, cancelled) before the bell resolved it stays until it
        # reaches the top, or until the ended entries are as many as the
        # others (removing it from the middle would cost O(n); this costs
        # O(1) per wait, amortized, and keeps the heap under twice the waits
        # in progress: a pending wait and any number of abandoned ones leave
        # the heap as it was).
        self._heap: list[_Entry] = []
        self._ended = 0  # entries in the heap whose wait ended
        self._arrivals = itertools.count()
        self._live = 0  # waits in progress (their coroutines have not returned)
        self._oldest_seen: Optional[int] = None  # the lowest interrupts_seen in the heap
        self._armed: Optional[tuple[int, int]] = None  # what the native bell was last armed with
        self._watching = False  # whether the loop watches the bell's descriptor
        self._idling = False  # an _idle() is scheduled

    @property
    def entries(self) -> int:
        """Entries in the heap: waits in progress plus ended ones not yet dropped (for tests)."""
        return len(self._heap)

    async def wait(self, loop: asyncio.AbstractEventLoop, frame: int, interrupts_seen: int,
                   timeout: Optional[float]) -> _core.WaitStatus:
        future: asyncio.Future[_core.WaitStatus] = loop.create_future()
        entry: _Entry = [frame, next(self._arrivals), interrupts_seen, future, _WAITING]
        heapq.heappush(self._heap, entry)
        self._live += 1
        if self._oldest_seen is None or interrupts_seen < self._oldest_seen:
            self._oldest_seen = interrupts_seen
        timer = None if timeout is None else loop.call_later(timeout, _resolve, future, WaitStatus.timeout)
        try:
            if not self._watching:
                loop.add_reader(self._bell.fd, self._on_ring)
                self._watching = True
            # Arming for less than needed is safe (an early ring is looked at
            # and re-armed), for more is not: keep the lowest of both.
            if self._armed is None:
                self._arm(frame, interrupts_seen)
            elif frame < self._armed[0] or interrupts_seen < self._armed[1]:
                self._arm(min(frame, self._armed[0]), min(interrupts_seen, self._armed[1]))
            return await future
        finally:
            if timer is not None:
                timer.cancel()
            self._live -= 1
            if loop.is_closed():
                # Closed with this wait pending (its task is being destroyed):
                # nothing can be scheduled on the loop any more, and no wait
                # will ever run on it again. Its bell goes with this object.
                self._drop_all()
            else:
                if not future.done():
                    future.cancel()
                if entry[4] == _WAITING:
                    self._end(entry)
                if self._live == 0 and not self._idling:
                    # At the loop's next turn, unless someone waits again by then: a consumer
                    # that asks for its next block at once keeps the loop watching, without
                    # the two system calls of unwatching and watching again.
                    self._idling = True
                    loop.call_soon(self._idle, loop)

    def _end(self, entry: _Entry) -> None:
        """``entry``'s wait ended while it is in the heap: drop the ended entries once they are half of it."""
        entry[4] = _ENDED
        self._ended += 1
        heap = self._heap
        if 2 * self._ended >= len(heap):
            kept: list[_Entry] = []
            for other in heap:
                if other[4] == _WAITING:
                    kept.append(other)
                else:
                    other[4] = _REMOVED
            heap[:] = kept
            heapq.heapify(heap)
            self._ended = 0

    def _drop_all(self) -> None:
        for entry in self._heap:
            entry[4] = _REMOVED
        self._heap.clear()
        self._ended = 0
        self._oldest_seen = None
        self._armed = None

    def _arm(self, frame: int, interrupts_seen: int) -> None:
        self._armed = (frame, interrupts_seen)
        self._bell.arm(frame, interrupts_seen)  # rings at once if already due

    def _on_ring(self) -> None:
        """The bell rang (or was armed already due): resolve the waits that are due, re-arm for the rest."""
        bell = self._bell
        bell.clear()  # before looking: a ring after the look stays pending, so nothing is lost
        self._armed = None  # the watcher disarmed the bell when it rang it
        heap = self._heap
        if bell.watcher_closed:  # the owner closed (or went): every wait ends, the consumers ask their producer
            for entry in heap:
                _resolve(entry[3], WaitStatus.interrupted)
            self._drop_all()
            return
        interrupts = bell.interrupt_count
        written = bell.frames_written
        if self._oldest_seen is not None and self._oldest_seen != interrupts:
            # stop(), close(): the waits that saw an older count end, as FrameRing.wait_for_frame's do.
            kept: list[_Entry] = []
            for entry in heap:
                if entry[2] != interrupts:
                    _resolve(entry[3], WaitStatus.interrupted)
                if entry[3].done():  # resolved now, or its wait ended before
                    entry[4] = _REMOVED
                else:
                    kept.append(entry)
            heap[:] = kept
            heapq.heapify(heap)
            self._ended = 0
        while heap and (heap[0][3].done() or heap[0][0] <= written):
            entry = heapq.heappop(heap)
            if entry[4] == _ENDED:
                self._ended -= 1
            entry[4] = _REMOVED
            _resolve(entry[3], WaitStatus.ready)
        # Every entry left saw `interrupts` and waits for a frame not yet written.
        self._oldest_seen = interrupts if heap else None
        if heap:
            self._arm(heap[0][0], interrupts)
        # else: nothing to disarm (the watcher disarmed the bell when it rang it, or a
        # wait re-armed it since, which then rings once more for nothing); _idle disarms.

    def _idle(self, loop: asyncio.AbstractEventLoop) -> None:
        """No one waits any more: disarm, unwatch, and drop what ended waits left in the heap."""
        self._idling = False
        if self._live:
            return  # someone waits again
        if self._watching:
            loop.remove_reader(self._bell.fd)
            self._watching = False
        self._drop_all()
        self._bell.disarm()
        if self._bell.watcher_closed:
            self._bell.close()  # unwatched now: the descriptor can go

    def __del__(self) -> None:
        # Unwatched (a watched bell's callback keeps this object alive), so
        # closing the descriptor from whichever thread drops it is safe.
        self._bell.close()


class _Watch:
    """The asyncio waits on one ring in this process: its native watcher and one `_LoopWaits` per loop."""

    def __init__(self, ring: Optional[_core.FrameRing]) -> None:
        # None: a closed placeholder (close() before any wait): waits end at once, no thread is made.
        self._native = None if ring is None else _core.FrameWatcher(ring)
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopWaits] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()  # the loops' threads and close() (any thread) share _loops
        self.closed = ring is None
        self.generation = _core.fork_generation()
        if self._native is not None and ring is not None:
            weakref.finalize(ring, self._native.close)  # the ring went: join the thread

    def waits(self, loop: asyncio.AbstractEventLoop) -> Optional[_LoopWaits]:
        """The waits of ``loop`` (made on first use), or None once closed."""
        with self._lock:
            if self.closed or self._native is None:
                return None
            waits = self._loops.get(loop)
            if waits is None:
                # A closed loop watches nothing any more: its bell can go.
                for gone in [other for other in self._loops if other.is_closed()]:
                    del self._loops[gone]
                waits = self._loops[loop] = _LoopWaits(self._native.bell())
            return waits

    def close(self) -> None:
        with self._lock:
            self.closed = True
            self._loops.clear()  # bells no loop watches close now; watched ones when their loop is done
        if self._native is not None:
            self._native.close()  # rings every bell and joins the thread (without the GIL)

    def entries(self, loop: asyncio.AbstractEventLoop) -> int:
        """How many waits ``loop`` keeps in its heap (for tests)."""
        with self._lock:
            waits = self._loops.get(loop)
        return 0 if waits is None else waits.entries

    @property
    def running(self) -> bool:
        """Whether the native thread runs (for tests)."""
        return self._native is not None and self._native.running


_WATCHES: weakref.WeakKeyDictionary[_core.FrameRing, _Watch] = weakref.WeakKeyDictionary()
_WATCHES_LOCK = threading.Lock()


def forget_after_fork() -> None:
    """In a forked child (`_process_hooks`): start afresh.

    The parent's watchers have no thread here, and a lock another thread
    held at the fork would never be released.
    """
    global _WATCHES_LOCK
    _WATCHES_LOCK = threading.Lock()
    _WATCHES.clear()


def _watch_of(ring: _core.FrameRing) -> _Watch:
    with _WATCHES_LOCK:
        watch = _WATCHES.get(ring)
        if watch is None or watch.generation != _core.fork_generation():
            watch = _WATCHES[ring] = _Watch(ring)
        return watch


def close(ring: _core.FrameRing) -> None:
    """End every asyncio wait on ``ring`` in this process for good, and join its watcher's thread.

    Waits in progress return ``interrupted``, so their consumers ask their
    producer again, and every later wait returns ``interrupted`` at once.
    Call it once the producer's ``producing()`` answers that it ended
    (returns False or raises), as ``AudioRecord.close()`` does after marking
    the recorder closed: otherwise a consumer would find the producer still
    producing and wait again, forever interrupted. Idempotent; cheap when
    nothing ever waited on the ring.
    """
    with _WATCHES_LOCK:
        watch = _WATCHES.get(ring)
        if watch is None or watch.generation != _core.fork_generation():
            _WATCHES[ring] = _Watch(None)  # closed: a late wait must not start a watcher
            return
    watch.close()


def entries(ring: _core.FrameRing, loop: asyncio.AbstractEventLoop) -> int:
    """How many waits on ``ring`` ``loop`` keeps (in progress or ended, not yet dropped), 0 if none (for tests)."""
    with _WATCHES_LOCK:
        watch = _WATCHES.get(ring)
    if watch is None or watch.generation != _core.fork_generation():
        return 0
    return watch.entries(loop)


def running(ring: _core.FrameRing) -> bool:
    """Whether a watcher thread runs for ``ring`` in this process (for tests)."""
    with _WATCHES_LOCK:
        watch = _WATCHES.get(ring)
    return watch is not None and watch.generation == _core.fork_generation() and watch.running


async def wait_for_frame(ring: _core.FrameRing, frame: int, timeout: Optional[float],
                         interrupts_seen: int) -> _core.WaitStatus:
    """The asyncio counterpart of ``ring.wait_for_frame(frame, timeout, interrupts_seen)``.

    Returns ``WaitStatus.ready`` once ``ring.frames_written >= frame``,
    ``interrupted`` once ``ring.interrupt_count`` differs from
    ``interrupts_seen`` (or the ring's waits were closed), ``timeout`` after
    ``timeout`` seconds (None: no limit). Only the calling task waits: the
    event loop goes on. Cancelling the task ends the wait and leaves nothing
    behind.
    """
    if ring.frames_written >= frame:
        return WaitStatus.ready
    if ring.interrupt_count != interrupts_seen:
        return WaitStatus.interrupted
    loop = asyncio.get_running_loop()
    waits = _watch_of(ring).waits(loop)
    if waits is None:
        return WaitStatus.interrupted
    return await waits.wait(loop, frame, interrupts_seen, timeout)


async def wait_until_written(ring: _core.FrameRing, due: Callable[[], Optional[int]], timeout: Optional[float],
                             producing: Callable[[], bool]) -> _core.WaitStatus:
    """Wait until ``ring.frames_written >= due()`` while ``producing()`` says frames may still come.

    ``due()`` is asked again after every wake (a restart may move it) and
    returns None once there is nothing to wait for. Returns ``ready``,
    ``interrupted`` (``due()`` returned None, or the producer stopped first:
    ``producing()`` returned False) or ``timeout`` (``timeout`` seconds in
    all; None: no limit). ``producing()`` and ``due()`` may raise instead,
    for example `RecorderClosedError`; the exception propagates. The loop of
    `FrameStream.__next__`, awaiting instead of blocking.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        # Read the interrupt count before the state so that a stop() or
        # close() in between still ends the wait.
        interrupts = ring.interrupt_count
        frame = due()
        if frame is None:
            return WaitStatus.interrupted
        if ring.frames_written >= frame:
            return WaitStatus.ready
        if not producing():
            return WaitStatus.interrupted
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        if await wait_for_frame(ring, frame, left, interrupts) == WaitStatus.timeout:
            return WaitStatus.timeout
