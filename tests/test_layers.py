"""The layers of docs/design.md, as built: which package may import which, and what each package holds.

    cli/ -> flows/ -> tasks/ -> lib/
              |         |
              +-> infra/ (home, tracking, cache, runners, fan-out, run context, stage outputs)
    serving/ (pyfuncs, registry lookups) -> lib/, infra/
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LIB = REPO / "lib"

#: package -> replearn packages (or modules) it must never import
NEVER = {
    "lib": ("replearn.tasks", "replearn.flows", "replearn.infra", "replearn.serving", "replearn.cli"),
    "infra": ("replearn.tasks", "replearn.flows", "replearn.serving", "replearn.cli"),
    "tasks": ("replearn.flows", "replearn.cli"),
    "serving": ("replearn.tasks", "replearn.flows", "replearn.cli"),
    "flows": ("replearn.cli",),
}
#: what the CLI may import from replearn: flows, serving, infra and the input-error type
CLI_MAY = ("replearn.flows", "replearn.serving", "replearn.infra", "replearn.lib.errors")


def _imports(path: Path) -> list[str]:
    """Every module name ``path`` imports (absolute imports; ``from a import b`` gives ``a.b`` and ``a``)."""
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            names += [f"{node.module}.{a.name}" for a in node.names]
    return names


def _sources(package: str) -> list[Path]:
    return sorted((REPO / package).rglob("*.py"))


def _under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_each_layer_imports_only_downwards():
    offenders = [f"{p.relative_to(REPO)} imports {name}" for package, banned in NEVER.items()
                 for p in _sources(package) for name in _imports(p) if _under(name, banned)]
    assert offenders == []


def test_lib_sources_do_not_import_orchestration():
    offenders = [f"{p.relative_to(REPO)} imports {name}" for p in _sources("lib") for name in _imports(p)
                 if _under(name, ("prefect", "mlflow"))]
    assert offenders == []


def test_cli_calls_flows_and_serving_only():
    offenders = []
    for p in _sources("cli"):
        for name in _imports(p):
            if name.startswith("replearn.") and not _under(name, CLI_MAY + ("replearn.cli",)):
                # ``from replearn.lib import errors`` lists replearn.lib itself: allowed only with errors
                if name == "replearn.lib" and f"{name}.errors" in _imports(p):
                    continue
                offenders.append(f"{p.relative_to(REPO)} imports {name}")
    assert offenders == []


def test_tasks_modules_hold_tasks():
    """tasks/ holds Prefect tasks: every module defines at least one ``@task``."""
    empty = []
    for p in _sources("tasks"):
        if p.name == "__init__.py":
            continue
        tree = ast.parse(p.read_text())
        decorated = [d for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) for d in n.decorator_list]
        names = {(d.func if isinstance(d, ast.Call) else d) for d in decorated}
        if not any(getattr(n, "id", getattr(n, "attr", "")) == "task" for n in names):
            empty.append(p.name)
    assert empty == []


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


def test_the_design_document_is_in_the_repository_and_names_every_package():
    design = (REPO / "docs" / "design.md").read_text()
    for package in ("lib/", "tasks/", "flows/", "infra/", "serving/", "cli/", "deployments/"):
        assert package in design
