"""What exactly is being timed: the checkout's commit, the build's commit, the installed package.

Rules (``benchmarks/README.md``, "Provenance"):

* the checkout must equal HEAD: ``git status --porcelain`` empty, untracked
  files counting (the same test CMake uses for the build's ``+dirty``);
* the imported ``audioring`` must be a build of HEAD:
  ``audioring._core.__git_revision__`` (the 40-hex commit its CMake run saw,
  ``+dirty`` if that tree had changes, ``unknown`` outside git) equals HEAD;
* otherwise the run is refused, unless ``--allow-dirty``, which stamps the
  result as dirty and names every difference.

Every result file records all of it: HEAD, the tree's changes, the build's
revision, and where the package was imported from (path, version).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Optional

REPO = Path(__file__).resolve().parents[2]


def _git(*args: str) -> Optional[str]:
    try:
        return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, check=True,
                              timeout=30).stdout
    except (OSError, subprocess.CalledProcessError, subprocess.TimeoutExpired):
        return None


def checkout_state() -> dict:
    """HEAD of the checkout and its differences from HEAD (untracked files included)."""
    head = _git("rev-parse", "HEAD")
    changes = _git("status", "--porcelain", "--untracked-files=normal")
    return {
        "repository": str(REPO),
        "head": head.strip() if head else None,
        "changes": changes.splitlines() if changes else [],
    }


def build_state() -> dict:
    """The imported audioring: the revision its compiled module was built from, and where it lives."""
    import audioring
    from audioring import _core

    return {
        "build_revision": getattr(_core, "__git_revision__", "unknown (no __git_revision__ in this build)"),
        "package_init": str(Path(audioring.__file__).resolve()),
        "core_module": str(Path(_core.__file__).resolve()),
        "version": audioring.__version__,
    }


def problems(checkout: dict, build: dict) -> list:
    """Why these numbers would not be the numbers of HEAD (empty: they are)."""
    found = []
    if checkout["head"] is None:
        found.append(f"{checkout['repository']} is not a git checkout (or git is missing)")
    if checkout["changes"]:
        shown = ", ".join(line.strip() for line in checkout["changes"][:8])
        more = f" and {len(checkout['changes']) - 8} more" if len(checkout["changes"]) > 8 else ""
        found.append(f"the checkout differs from HEAD (git status --porcelain: {shown}{more})")
    if checkout["head"] is not None and build["build_revision"] != checkout["head"]:
        found.append(f"the imported audioring ({build['package_init']}) was built from {build['build_revision']}, "
                     f"not from HEAD {checkout['head']}; reinstall it from this checkout")
    return found


def provenance(allow_dirty: bool) -> dict:
    """The provenance record of a run; raises SystemExit if it may not run (see the module's rules)."""
    checkout, build = checkout_state(), build_state()
    found = problems(checkout, build)
    if found and not allow_dirty:
        raise SystemExit("refusing to benchmark (rerun with --allow-dirty to time it anyway, stamped dirty):\n  - "
                         + "\n  - ".join(found))
    return {"checkout": checkout, "build": build, "dirty": bool(found), "dirty_reasons": found}


def provenance_line(record: dict) -> str:
    """One line for the head of a report and the foot of a chart."""
    head = record["checkout"]["head"] or "unknown"
    text = f"commit {head[:12]}, build {_short(record['build']['build_revision'])}"
    return text + (" — DIRTY (--allow-dirty)" if record["dirty"] else "")


def _short(revision: str) -> str:
    commit, plus, suffix = revision.partition("+")
    return commit[:12] + plus + suffix if len(commit) == 40 else revision
