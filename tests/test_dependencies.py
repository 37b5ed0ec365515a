"""Every third-party package the code imports is declared in a requirements .in file, so a fresh install
from the compiled files has it by our choice and at our pin, not because another package happens to
pull it in. The app's code (vsync/, migrations/) needs it in requirements.in; tests and benchmarks may
take it from requirements-dev.in."""

from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

from vsync import ROOT

FIRST_PARTY = {"vsync", "tests", "bench", "migrations", "wsgi"}
RUNTIME_CODE = ("vsync", "migrations")
TEST_CODE = ("tests", "bench")


def _normalized(distribution: str) -> str:
    return re.sub(r"[-_.]+", "-", distribution).lower()


def _declared(*names: str) -> set[str]:
    """The distributions named in these .in files (options such as `-c` and `-r` are not read)."""
    declared = set()
    for name in names:
        for line in (ROOT / name).read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line and not line.startswith("-"):
                declared.add(_normalized(re.split(r"[\s\[<>=!~;]", line, maxsplit=1)[0]))
    return declared


def _imported(folder: str) -> dict[str, Path]:
    """Each top-level module imported anywhere under `folder` (absolute imports), with one file importing it."""
    modules = {}
    for path in sorted((ROOT / folder).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                modules.setdefault(name.split(".")[0], path.relative_to(ROOT))
    return modules


def _undeclared(folders: tuple[str, ...], declared: set[str]) -> list[str]:
    distributions = packages_distributions()
    missing = []
    for folder in folders:
        for module, path in sorted(_imported(folder).items()):
            if module in sys.stdlib_module_names or module in FIRST_PARTY:
                continue
            providers = {_normalized(name) for name in distributions.get(module, [])}
            if not providers & declared:
                missing.append(f"{module} (imported in {path}; installed by {sorted(providers) or 'nothing'})")
    return missing


@pytest.mark.parametrize(
    ("folders", "files"),
    [
        (RUNTIME_CODE, ("requirements.in",)),
        (TEST_CODE, ("requirements.in", "requirements-dev.in")),
    ],
    ids=["runtime", "tests"],
)
def test_every_imported_package_is_declared_in_a_requirements_in_file(folders, files):
    assert _undeclared(folders, _declared(*files)) == []


def test_an_import_that_no_in_file_declares_is_found():
    missing = _undeclared(("vsync",), _declared("requirements.in") - {"itsdangerous"})
    assert len(missing) == 1 and missing[0].startswith("itsdangerous (imported in vsync/")
