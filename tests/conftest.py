"""audioring's own test suite: under CI a skipped test fails the run, whatever skipped it.

``CI=true`` (also ``1`` or ``yes``, as the audioring pytest plugin reads it) or
``--audio-servers=require`` (or the ini option ``audio_servers = require``)
turns every skip into a failure that names the test and the skip's reason:
``pytest.skip``, ``pytest.importorskip``, ``skipif`` and ``skip`` marks, a
fixture's skip, a module-level skip at collection (then a collection error,
which stops the run). A run that skipped something did not test it, so CI
cannot pass that way; on a developer's machine skips stay skips.

Expected failures (``xfail``, strict in this project) are not skips and are
left alone.

There is no allow-list: nothing skips on the CI machine (Linux, CPython 3.11,
root). ``skipif(not linux)`` (test_ring.py, test_shared.py) never fires there,
tflite-support (wheels up to CPython 3.11) is installed, and the other-user
tests of test_shared.py have root. A skip that must be allowed on CI would be
added here by name, with the reason it cannot run there, and reviewed as such.

This lives here, not in the plugin ``audioring.testing`` ships, on purpose:
users' suites keep their own skip policy.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import Any

import pytest

from audioring.testing.pytest_plugin import _must_start

_CI_VALUES = ("true", "1", "yes")


def _skips_fail(config: pytest.Config) -> bool:
    """Whether this run forbids skips: CI=true, or audio servers required (the plugin's policy)."""
    if os.environ.get("CI", "").strip().lower() in _CI_VALUES:
        return True
    return config.pluginmanager.has_plugin("audioring") and _must_start(config)


def _reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    """The skip's reason as pytest reports it (``Skipped: ...``), with where it was raised."""
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        path, line, message = longrepr
        return f"{message} ({path}:{line})"
    return str(longrepr)


def _as_failure(report: pytest.TestReport | pytest.CollectReport, what: str) -> None:
    report.outcome = "failed"
    report.longrepr = (f"{what} was skipped, and skips fail this run (CI=true or --audio-servers=require): "
                       f"{_reason(report)}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if report.skipped and not hasattr(report, "wasxfail") and _skips_fail(item.config):
        _as_failure(report, item.nodeid)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[None, Any, None]:
    outcome = yield
    report: pytest.CollectReport = outcome.get_result()
    if report.skipped and _skips_fail(collector.config):
        _as_failure(report, collector.nodeid)
