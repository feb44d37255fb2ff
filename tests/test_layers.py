"""DESIGN.md's layering: lib/ never imports prefect, mlflow, tasks or flows."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

LIB = Path(__file__).resolve().parents[1] / "lib"
FORBIDDEN = re.compile(r"^\s*(import|from)\s+(prefect|mlflow|replearn\.tasks|replearn\.flows|tasks|flows)\b", re.M)


def test_lib_sources_do_not_import_orchestration():
    offenders = [str(p) for p in LIB.rglob("*.py") if FORBIDDEN.search(p.read_text())]
    assert offenders == []


def test_importing_every_lib_module_loads_neither_prefect_nor_mlflow():
    modules = ["replearn.lib." + ".".join(p.relative_to(LIB).with_suffix("").parts)
               for p in LIB.rglob("*.py") if p.name != "__init__.py"]
    code = ("import importlib, sys\n"
            f"for m in {modules!r}: importlib.import_module(m)\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('prefect', 'mlflow'))\n"
            "print(','.join(bad))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
    assert len(modules) >= 10
