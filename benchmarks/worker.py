#!/usr/bin/env python3
"""Entry point of every child process the harness starts (not for direct use).

``worker.py case '<json spec>'``: run ``cases.<spec["case"]>.worker(spec)``
and print its result as one JSON line (``harness/workers.py``).
``worker.py ramp SERVER TARGET_PREFIX [ENCODING [PORTS]]``: the frame-clock
ramp JACK client (``harness/ramp.py``), until stdin closes.

Run as a script, this file's directory (``benchmarks/``) is on ``sys.path``,
so ``harness`` and ``cases`` import as packages.
"""

from __future__ import annotations

import importlib
import json
import sys


def main(argv: list) -> int:
    if len(argv) == 2 and argv[0] == "case":
        spec = json.loads(argv[1])
        module = importlib.import_module(f"cases.{spec['case']}")
        print(json.dumps(module.worker(spec), default=float), flush=True)
        return 0
    if 3 <= len(argv) <= 5 and argv[0] == "ramp":
        from harness.ramp import ramp_client_main

        return ramp_client_main(*argv[1:])
    raise SystemExit("usage: worker.py case JSON | worker.py ramp SERVER TARGET_PREFIX [ENCODING [PORTS]] (started "
                     "by benchmarks/run.py)")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
