"""One scenario in a fresh process: ``benchmarks/worker.py case '<json spec>'``.

A fresh process per recorder run gives each recorder its own PortAudio, its
own process CPU clock (``time.process_time`` counts only it), and no memory
or threads left over from another recorder. The worker prints one JSON line;
anything it says on stderr is kept (the last lines) with the result.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Optional

WORKER = Path(__file__).resolve().parents[1] / "worker.py"


def child_command(*args: str) -> list:
    """The command line of a child process of the harness (``worker.py`` with `args`)."""
    return [sys.executable, str(WORKER), *args]


def run_worker(spec: dict, timeout: float, env: Optional[dict] = None) -> dict:
    """Run `spec` (``{"case": <case module>, ...}``) in a fresh process; its JSON result, or an error record."""
    command = child_command("case", json.dumps(spec))
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                                env={**os.environ, **(env or {})})
    except subprocess.TimeoutExpired as error:
        return {"error": f"worker timed out after {timeout:.0f} s", "stderr": str(error.stderr)[-2000:]}
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode != 0 or not lines:
        return {"error": f"worker exited with {result.returncode}", "stderr": _stderr_tail(result.stderr)}
    data = json.loads(lines[-1])
    noise = [line for line in result.stderr.splitlines() if line.strip()]
    if noise:
        data["worker_stderr_lines"] = len(noise)
        data["worker_stderr_tail"] = noise[-5:]
    return data


def _stderr_tail(stderr: str, size: int = 3000) -> str:
    """The end of a failed worker's stderr, from its last traceback on if it printed one (what extension modules
    print at exit, such as nanobind's leak reports, would otherwise push the traceback out)."""
    start = stderr.rfind("Traceback (most recent call last)")
    if start < 0 or len(stderr) - start <= size:
        return stderr[-size:]
    return stderr[start:start + size // 2] + "\n[...]\n" + stderr[-size // 2:]
