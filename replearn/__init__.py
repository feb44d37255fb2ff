"""replearn: learn representations and make them useful.

The code lives in three layers mapped into this package by pyproject.toml:
``replearn.lib`` (folder ``lib/``, the science), ``replearn.tasks`` (``tasks/``,
Prefect tasks) and ``replearn.flows`` (``flows/``, Prefect flows and the CLI).
"""

__version__ = "0.1.0"
