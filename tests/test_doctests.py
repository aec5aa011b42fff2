"""Every example in the installed ``audioring`` package's docstrings runs as written.

The examples are found with ``doctest.DocTestFinder`` in every module of the
package (the public classes live in its ``_``-prefixed modules), one test per
docstring. Each runs in a namespace of its own, empty like a fresh interpreter,
so an example must import what it uses, as a reader copying it would. Only
``__main__`` is not imported: importing it is running the command line.
"""

from __future__ import annotations

import doctest
import importlib
import io
import pkgutil

import pytest

import audioring

NOT_IMPORTED = {"audioring.__main__"}


def package_modules() -> list:
    names = [audioring.__name__] + [
        info.name for info in pkgutil.walk_packages(audioring.__path__, audioring.__name__ + ".")
    ]
    return [importlib.import_module(name) for name in sorted(set(names) - NOT_IMPORTED)]


def find_examples() -> list[doctest.DocTest]:
    finder = doctest.DocTestFinder()
    examples = []
    for module in package_modules():
        # globs={}: an empty namespace, not the module's (which would hide a missing import).
        examples += [test for test in finder.find(module, module.__name__, globs={}) if test.examples]
    return sorted(examples, key=lambda test: test.name)


EXAMPLES = find_examples()


def test_the_docstrings_have_examples():
    # The test below must not pass vacuously. These are the examples of the public classes today;
    # a new example elsewhere is welcome (and run), one of these disappearing is not.
    names = {test.name for test in EXAMPLES}
    assert {"audioring._record.AudioRecord", "audioring._ring.Ring", "audioring._virtual.VirtualInput"} <= names, names
    assert sum(len(test.examples) for test in EXAMPLES) >= 10


@pytest.mark.parametrize("test", EXAMPLES, ids=[test.name for test in EXAMPLES])
def test_docstring_example_runs(test: doctest.DocTest):
    report = io.StringIO()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    try:
        result = runner.run(test, out=report.write)
    finally:
        test.globs.clear()  # what the example made (recorders, rings) goes now, not at the session's end
    assert result.failed == 0, (
        f"{result.failed} of {result.attempted} examples in the docstring of {test.name} "
        f"({test.filename}, line {test.lineno}) failed:\n{report.getvalue()}"
    )
