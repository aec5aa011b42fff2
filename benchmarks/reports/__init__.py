"""The reports of the cases: one module per case, named as it.

A report module holds a case's ``TITLE``, ``targets``, ``markdown`` and, if it has one, ``chart``
(see ``cases/__init__.py``), reading only the stored result, and the case module
imports and offers them as its own, so ``run.py`` sees one interface per
case. Measuring stays in ``cases/``; report modules import ``harness`` only
(what a case's two halves both need is in ``harness/``, e.g. ``harness/conversions.py``).
"""
