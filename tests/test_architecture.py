"""The import graph stays true: composition root (incident_bot) -> handlers -> bot core -> retrieval, no cycles,
no folder of more than 15 modules."""

import ast
from pathlib import Path

import networkx as nx

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("incident_bot", "bot", "handlers", "retrieval")
MAX_MODULES_PER_FOLDER = 15


def _files(pkg: str) -> list[Path]:
    return sorted((REPO / pkg).rglob("*.py"))


def _module(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(path: Path) -> set[str]:
    """Every module name an import statement names (type-only imports count), absolute or relative."""
    package = _module(path) if path.name == "__init__.py" else _module(path).rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            out.add(base)
            out.update(f"{base}.{a.name}" for a in node.names)
    return out


def _graph() -> nx.DiGraph:
    modules = {_module(f): f for pkg in PACKAGES for f in _files(pkg)}
    graph = nx.DiGraph()
    graph.add_nodes_from(modules)
    for name, path in modules.items():
        for target in _imported(path):
            while target and target not in modules:  # `from pkg import name` where name is not a module
                target = target.rpartition(".")[0]
            if target and target != name and not name.startswith(target + "."):  # a package's own __init__
                graph.add_edge(name, target)
    return graph


def _tops(path: Path) -> set[str]:
    return {name.split(".")[0] for name in _imported(path)}


def test_retrieval_imports_neither_bot_nor_handlers_nor_slack() -> None:
    for f in _files("retrieval"):
        assert not _tops(f) & {"incident_bot", "bot", "handlers", "slack_bolt", "slack_sdk", "fastapi"}, f


def test_bot_core_imports_neither_the_edge_nor_the_composition_root_nor_web_types() -> None:
    for f in _files("bot"):  # no exemptions: the composition root lives above the edge, in incident_bot/
        assert not _tops(f) & {
            "incident_bot",
            "handlers",
            "slack_bolt",
            "slack_sdk",
            "fastapi",
            "starlette",
        }, f


def test_handlers_never_import_the_composition_root() -> None:
    for f in _files("handlers"):
        assert "incident_bot" not in _tops(f), f


def test_no_import_cycles() -> None:
    """Every import counts: type-only ones and imports inside functions too."""
    cycles = list(nx.simple_cycles(_graph()))
    assert cycles == [], cycles[:5]


def test_no_folder_holds_more_than_fifteen_modules() -> None:
    for pkg in PACKAGES:
        for folder in [REPO / pkg, *(d for d in (REPO / pkg).rglob("*") if d.is_dir())]:
            modules = [f for f in folder.glob("*.py")]
            assert len(modules) <= MAX_MODULES_PER_FOLDER, (folder, len(modules))


def test_no_handler_opens_a_session_or_writes_sql() -> None:
    """Listeners and routes call the incident service; the service offers the reads they need."""
    for f in _files("handlers"):
        text = f.read_text()
        assert "sessions()" not in text and "from sqlalchemy import select" not in text, f


def test_no_session_query_or_naive_utcnow() -> None:
    for pkg in PACKAGES:
        for f in _files(pkg):
            text = f.read_text()
            assert "session.query(" not in text and "datetime.utcnow(" not in text, f
