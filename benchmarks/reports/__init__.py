"""The reports of cases whose rendering lives apart from their measuring: ``reports.<case>`` has the case's
``TITLE``, ``targets(result)``, ``markdown(result)`` and ``chart(result, path, stamp)``, read from the stored
result alone (``cases/__init__.py`` says what each does); the case module re-exports them."""
