"""The house rules that keep the code base in layers, checked on the source (every import, also inside functions).

* Only ``opencem.engine`` talks to DuckDB or Spark: every other module goes through an Engine.
* The top-level parts of ``opencem`` (packages such as ``nps``, modules such as ``workspace``) import
  each other without a cycle, so each stage can be read, tested and replaced on its own.
"""

from __future__ import annotations

import ast
import graphlib
from collections.abc import Iterator
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "opencem"
ENGINE_ONLY = ("duckdb", "pyspark")
# the top-level parts: packages (nps, engine, ...) and modules (workspace, vocabulary, ...)
PARTS = {p.name for p in SRC.iterdir() if p.is_dir() and any(p.glob("*.py"))} | {
    p.stem for p in SRC.glob("*.py") if p.stem != "__init__"}


def _modules() -> Iterator[tuple[str, Path]]:
    """(dotted module name, file) for every module of opencem."""
    for path in sorted(SRC.rglob("*.py")):
        parts = ("opencem",) + path.relative_to(SRC).with_suffix("").parts
        yield ".".join(parts[:-1] if parts[-1] == "__init__" else parts), path


def _imports(module: str, path: Path) -> Iterator[tuple[str, int]]:
    """(absolute module name, line) of every import in a file, relative ones resolved; ``from a import b``
    gives ``a.b`` (b may be a module)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                yield f"{base}.{alias.name}" if alias.name != "*" else base, node.lineno
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "import_module"
              and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            yield node.args[0].value, node.lineno


def _part(module: str) -> str | None:
    """The top-level part of opencem a module belongs to (``opencem.nps.score`` -> ``nps``); None for anything
    else (other libraries, ``opencem`` itself, ``opencem.__version__``)."""
    parts = module.split(".")
    return parts[1] if parts[0] == "opencem" and len(parts) > 1 and parts[1] in PARTS else None


def test_only_the_engine_imports_duckdb_or_spark():
    offenders = [
        f"{path.relative_to(SRC.parent)}:{line} imports {name}"
        for module, path in _modules() if _part(module) != "engine"
        for name, line in _imports(module, path) if name.split(".")[0] in ENGINE_ONLY
    ]
    assert not offenders, "only opencem.engine may import duckdb or pyspark; use an Engine instead:\n" + "\n".join(offenders)


def test_no_import_cycle_between_the_parts_of_opencem():
    graph: dict[str, set[str]] = {}
    where: dict[tuple[str, str], str] = {}  # edge -> first import that makes it, for the message
    for module, path in _modules():
        src = _part(module)
        if src is None:  # opencem/__init__.py
            continue
        graph.setdefault(src, set())
        for name, line in _imports(module, path):
            dst = _part(name)
            if dst is not None and dst != src:
                graph[src].add(dst)
                where.setdefault((src, dst), f"{path.relative_to(SRC.parent)}:{line} imports {name}")
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as e:
        chain = e.args[1][::-1]  # graphlib lists each part before the one that imports it: reversed, x imports y
        imports = [where[(x, y)] for x, y in zip(chain, chain[1:])]
        raise AssertionError(f"import cycle between parts of opencem: {' -> '.join(chain)}\n" + "\n".join(imports)) from None


# the parts each of these may import (besides other libraries); the rest of the order is kept by the no-cycle test
ALLOWED = {
    "segments": {"engine", "vocabulary", "geo", "contracts", "workspace", "nps", "measure", "twin", "errors", "indicators"},
    "churn": {"engine", "vocabulary", "geo", "contracts", "workspace", "nps", "measure", "twin", "errors", "indicators"},
    # the HTTP API reads the stages' tables as files: it calls no stage
    "api": {"engine", "vocabulary", "geo", "contracts", "workspace", "ingest", "errors"},
    # a stream runs the stages' own steps on each micro-batch
    "stream": {"engine", "vocabulary", "geo", "contracts", "workspace", "ingest", "measure", "nps", "twin", "errors", "indicators"},
}


def test_layers_import_only_the_parts_below_them():
    offenders = [
        f"{path.relative_to(SRC.parent)}:{line} imports {name}"
        for module, path in _modules() if _part(module) in ALLOWED
        for name, line in _imports(module, path)
        if _part(name) not in (None, _part(module)) and _part(name) not in ALLOWED[_part(module)]
    ]
    assert not offenders, "a part imports one above it:\n" + "\n".join(offenders)


def test_only_the_cli_and_the_demo_import_churn():
    offenders = [
        f"{path.relative_to(SRC.parent)}:{line} imports {name}"
        for module, path in _modules() if _part(module) not in ("churn", "cli", "demo")
        for name, line in _imports(module, path) if _part(name) == "churn"
    ]
    assert not offenders, "churn is a top stage: only cli and demo import it:\n" + "\n".join(offenders)
