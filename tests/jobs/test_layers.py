"""Imports go one way: jobs use services, services never use jobs; the MightyCall package uses nothing of the app."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "vsync"


def imported_modules(path: Path) -> set[str]:
    """Every absolute module a file imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
    return found


@pytest.mark.parametrize("path", sorted((PACKAGE / "services").rglob("*.py")), ids=lambda p: p.name)
def test_services_never_import_jobs(path):
    assert not {m for m in imported_modules(path) if m == "vsync.jobs" or m.startswith("vsync.jobs.")}


@pytest.mark.parametrize("path", sorted((PACKAGE / "mightycall").rglob("*.py")),
                         ids=lambda p: str(p.relative_to(PACKAGE)))
def test_the_mightycall_package_imports_nothing_of_the_app(path):
    assert not {m for m in imported_modules(path)
                if (m == "vsync" or m.startswith("vsync.")) and not m.startswith("vsync.mightycall")}
