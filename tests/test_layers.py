"""Who may import whom (`ARCHITECTURE.md`, "Layers, and who may import whom"), read from the imports
of every module in `vsync/`: at the top and inside functions, relative ones resolved. Naming a job by
its dotted path in a string (`vsync.queue.enqueue("vsync.jobs.sync.run_sync_job", ...)`) is not an
import, and is how services reach jobs.

Every module belongs to one layer (the longest prefix in `LAYERS` that names it):

| layer      | modules                                  | why it is there                                          |
|------------|------------------------------------------|----------------------------------------------------------|
| foundation | config, errors, extensions, tenancy,     | building blocks with no domain: settings, error types,   |
|            | crypto, phones, redaction, timeutil,     | extension instances, the tenant filter, the job queue;   |
|            | queue                                    | every layer may use them                                 |
| mightycall | mightycall                               | the provider's client and simulator, apart from the app  |
| models     | models                                   | the tables, typed; they know the tenant filter only      |
| query      | query                                    | the query vocabulary (window, filters) over the models   |
| metrics    | metrics                                  | the KPI engine over models and the query vocabulary      |
| services   | services                                 | domain operations, one function each                     |
| web        | http                                     | request ids, the error envelope, log context             |
| auth       | auth                                     | principals and sign-in, used by every edge               |
| edges      | api, admin, webhooks, cli                | parse, authorise, call a service, render                 |
| app        | vsync (the package itself)               | the app factory, which wires every layer                 |
| jobs       | jobs (worker, schedule and cron included)| thin RQ jobs; the worker builds the app                  |

What each rule allows, beyond a layer's own modules:

| importer   | may import                                                                                  |
|------------|---------------------------------------------------------------------------------------------|
| models     | `extensions` (the declarative base, `db`) and `tenancy` (the mixins that scope a model)     |
| mightycall | nothing of the app                                                                          |
| services   | foundation, `mightycall`, models, `query`, `metrics`: never jobs, the web, auth or edges    |
| metrics    | foundation, models, `query`                                                                 |
| anything   | `jobs` only from jobs themselves and the app factory                                        |
| edges      | never `jobs`                                                                                |

And across layers no import leads back: a layer that imports another is not reachable from it.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "vsync"

LAYERS = {
    "vsync.config": "foundation",
    "vsync.errors": "foundation",
    "vsync.extensions": "foundation",
    "vsync.tenancy": "foundation",
    "vsync.crypto": "foundation",
    "vsync.phones": "foundation",
    "vsync.redaction": "foundation",
    "vsync.timeutil": "foundation",
    "vsync.queue": "foundation",
    "vsync.mightycall": "mightycall",
    "vsync.models": "models",
    "vsync.query": "query",
    "vsync.metrics": "metrics",
    "vsync.services": "services",
    "vsync.http": "web",
    "vsync.auth": "auth",
    "vsync.api": "edges",
    "vsync.admin": "edges",
    "vsync.webhooks": "edges",
    "vsync.cli": "edges",
    "vsync": "app",
    "vsync.jobs": "jobs",
}
MODELS_MAY_IMPORT = ("vsync.models", "vsync.extensions", "vsync.tenancy")
SERVICES_MAY_IMPORT = {"foundation", "mightycall", "models", "query", "metrics", "services"}
METRICS_MAY_IMPORT = {"foundation", "models", "query", "metrics"}
JOBS_IMPORTED_BY = {"jobs", "app"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def layer_of(module: str) -> str | None:
    prefixes = [prefix for prefix in LAYERS if _within(module, prefix)]
    return LAYERS[max(prefixes, key=len)] if prefixes else None


@cache
def imports_of(module: str) -> frozenset[str]:
    """The app's modules `module` imports; `from package import name` counts as the submodule when
    `name` is one, so `from vsync import crypto` is `vsync.crypto`, not the app factory."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            found.update(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names)
    return frozenset(name for name in found if _within(name, "vsync"))


def _modules_in(*layers: str) -> list[str]:
    return [module for module in MODULES if layer_of(module) in layers]


@cache
def layer_graph() -> dict[str, frozenset[str]]:
    graph: dict[str, set[str]] = {}
    for module in MODULES:
        for imported in imports_of(module):
            if layer_of(imported) not in (None, layer_of(module)):
                graph.setdefault(layer_of(module), set()).add(layer_of(imported))
    return {layer: frozenset(targets) for layer, targets in graph.items()}


def path_between(start: str, goal: str) -> list[str] | None:
    """The layers from `start` to `goal` along imports, or None when no import leads there."""
    seen, frontier = {start}, [[start]]
    while frontier:
        route = frontier.pop(0)
        if route[-1] == goal:
            return route
        for layer in sorted(layer_graph().get(route[-1], ())):
            if layer not in seen:
                seen.add(layer)
                frontier.append([*route, layer])
    return None


@pytest.mark.parametrize("module", MODULES)
def test_every_module_belongs_to_a_layer(module):
    assert layer_of(module) is not None, f"add {module} to LAYERS, with why it sits there"


@pytest.mark.parametrize("module", _modules_in("models"))
def test_models_import_only_extensions_and_tenancy(module):
    assert {m for m in imports_of(module) if not any(_within(m, allowed) for allowed in MODELS_MAY_IMPORT)} == set()


@pytest.mark.parametrize("module", _modules_in("mightycall"))
def test_the_mightycall_package_imports_nothing_of_the_app(module):
    assert {m for m in imports_of(module) if not _within(m, "vsync.mightycall")} == set()


@pytest.mark.parametrize("module", _modules_in("services"))
def test_services_use_only_models_query_metrics_the_client_and_the_foundation(module):
    assert {m for m in imports_of(module) if layer_of(m) not in SERVICES_MAY_IMPORT} == set()


@pytest.mark.parametrize("module", _modules_in("metrics"))
def test_metrics_uses_only_models_query_and_the_foundation(module):
    assert {m for m in imports_of(module) if layer_of(m) not in METRICS_MAY_IMPORT} == set()


@pytest.mark.parametrize("module", [m for m in MODULES if layer_of(m) not in JOBS_IMPORTED_BY])
def test_jobs_are_imported_only_by_jobs_and_the_app_factory(module):
    assert {m for m in imports_of(module) if layer_of(m) == "jobs"} == set()


@pytest.mark.parametrize("module", _modules_in("edges"))
def test_edges_never_import_jobs(module):
    assert {m for m in imports_of(module) if _within(m, "vsync.jobs")} == set()


@pytest.mark.parametrize("module", MODULES)
def test_no_import_leads_back_into_the_importing_layer(module):
    own = layer_of(module)
    cycles = {
        imported: path_between(layer_of(imported), own)
        for imported in sorted(imports_of(module))
        if layer_of(imported) not in (None, own)
    }
    assert {imported: route for imported, route in cycles.items() if route} == {}
