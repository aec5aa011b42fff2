"""The reports of the cases whose report is large enough to stand apart: one module per case, named as it.

A report module holds a case's ``TITLE``, ``targets``, ``markdown`` and ``chart`` (see
``cases/__init__.py``), reading only the stored result, and the case module
imports and offers them as its own, so ``run.py`` sees one interface per
case. Measuring stays in ``cases/``; report modules import ``harness`` only.
"""
