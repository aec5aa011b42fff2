"""The benchmark cases, one module each, in report order.

Every case module has:

* ``TITLE``: its heading;
* ``run(ctx: harness.context.RunContext) -> dict``: measure (the dict is
  stored in the JSON as is);
* ``targets(result) -> list`` of ``{"label", "met", "measured"}``: the
  targets judged from a stored result (``met`` None: nothing qualified);
* ``markdown(result) -> list`` of lines; optionally ``chart(result, path,
  stamp)``;
* optionally ``worker(spec) -> dict``: the part that runs in a fresh process
  (``benchmarks/worker.py``).

Every case measures here and reports in its own module, ``reports/<case>.py``
(``TITLE``, ``targets``, ``markdown``, ``chart``, reading only the stored
result), which the case module imports and offers as its own: measuring and
reporting apart. Cases import ``harness`` and their own report module only,
never each other.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from types import ModuleType

#: Report order. Names are also the keys in the JSON and the --cases choices.
CASE_NAMES = ("callback", "read", "stall", "capacity", "e2e", "ring_write", "convert", "share", "asyncio", "disk",
              "drift")


def load(names: Iterable[str] = CASE_NAMES) -> dict[str, ModuleType]:
    return {name: importlib.import_module(f"cases.{name}") for name in names}
