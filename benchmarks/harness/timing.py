"""Timing calls in batches: how many calls per batch, batches taking turns, medians and tails.

A batch is timed as a whole (one clock read before, one after) and divided by
its calls, so the clock's own cost vanishes for sub-microsecond calls; the
statistics are over batches. Statements that are compared with each other
(a ring read and numpy's slice) take turns batch by batch, so a slow stretch
of a shared machine falls on all of them alike and their ratio stays fair.
"""

from __future__ import annotations

import gc
import statistics
import time
import timeit
from dataclasses import dataclass
from typing import Callable, Optional

#: batch(calls) -> nanoseconds that `calls` calls took.
Batch = Callable[[int], int]


@dataclass(frozen=True)
class Budget:
    """How long to time one thing: `seconds`, but at least `least` and at most `most` batches,
    each batch grown until it lasts `min_batch_ns`. A call slower than the whole budget is still
    timed `least` times: slow cases are capped by time, not by a count of calls."""

    seconds: float
    least: int
    most: int
    min_batch_ns: int

    def as_dict(self) -> dict:
        return {"seconds": self.seconds, "least": self.least, "most": self.most, "min_batch_ns": self.min_batch_ns}


def percentile(sorted_values: list, fraction: float) -> float:
    """The value at `fraction` (0..1) of already sorted values (nearest rank)."""
    return sorted_values[min(len(sorted_values) - 1, int(round(fraction * (len(sorted_values) - 1))))]


def summarize(per_call_ns: list) -> dict:
    """Median, tails (10th, 90th, 99th percentile), min and max of per-call nanoseconds, and the count."""
    values = sorted(per_call_ns)
    return {
        "median_ns": statistics.median(values),
        "p10_ns": percentile(values, 0.10),
        "p90_ns": percentile(values, 0.90),
        "p99_ns": percentile(values, 0.99),
        "min_ns": values[0],
        "max_ns": values[-1],
        "samples": len(values),
    }


def statement(stmt: str, namespace: dict) -> Batch:
    """A batch of `stmt` compiled by timeit into its loop, so no extra Python call is timed
    (a lambda around the statement would add one call frame to every call)."""
    timer = timeit.Timer(stmt, globals=namespace, timer=time.perf_counter_ns)
    return lambda calls: int(timer.timeit(calls))


def calls_per_batch(batch: Batch, min_batch_ns: int, max_calls: int, before: Optional[Callable[[], None]]) -> int:
    """Grow the batch until one lasts `min_batch_ns` (or `max_calls`); the first batch warms up."""
    calls = 1
    if before:
        before()
    elapsed = batch(calls)
    while elapsed < min_batch_ns and calls < max_calls:
        calls = min(max_calls, calls * (2 if elapsed * 4 > min_batch_ns else 8))
        if before:
            before()
        elapsed = batch(calls)
    return calls


def time_together(
    batches: dict[str, Batch],
    budget: Budget,
    max_calls: Optional[dict[str, int]] = None,
    before: Optional[dict[str, Callable[[], None]]] = None,
    keep: bool = False,
) -> dict[str, dict]:
    """Time several things taking turns batch by batch; per thing: summary and calls per batch.

    `before[name]()` runs before each of that thing's batches, untimed (to
    refill or drain what a call consumes). The garbage collector is off
    while timing, as in timeit. With `keep`, each summary also holds
    ``per_call_ns``, the per-call time of every batch in order (to pool
    batches timed in several turns, e.g. in other processes, before summarizing).
    """
    max_calls = max_calls or {}
    before = before or {}
    names = list(batches)
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        calls = {n: calls_per_batch(batches[n], budget.min_batch_ns, max_calls.get(n, 1 << 22), before.get(n))
                 for n in names}
        per_call: dict[str, list] = {n: [] for n in names}
        deadline = time.perf_counter() + budget.seconds * len(names)
        rounds = 0
        while rounds < budget.most and (rounds < budget.least or time.perf_counter() < deadline):
            for k in range(len(names)):
                name = names[(k + rounds) % len(names)]  # a different one goes first each round
                if name in before:
                    before[name]()
                per_call[name].append(batches[name](calls[name]) / calls[name])
            rounds += 1
    finally:
        if gc_was_enabled:
            gc.enable()
    return {n: {**summarize(per_call[n]), "calls_per_batch": calls[n], **({"per_call_ns": per_call[n]} if keep else {})}
            for n in names}


def time_one(batch: Batch, budget: Budget, max_calls: int = 1 << 22,
             before: Optional[Callable[[], None]] = None) -> dict:
    """Time one thing alone (`time_together` with one entry)."""
    return time_together({"it": batch}, budget, {"it": max_calls}, {"it": before} if before else None)["it"]
