"""The import direction stays true: composition root -> handlers -> bot core -> retrieval."""

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
COMPOSITION = {"incident_bot/runtime.py", "incident_bot/cli/main.py", "incident_bot/demo/run.py"}


def _imports(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module.split(".")[0])
    return out


def _files(pkg: str) -> list[Path]:
    return sorted((REPO / pkg).rglob("*.py"))


def test_retrieval_imports_neither_bot_nor_handlers_nor_slack() -> None:
    for f in _files("retrieval"):
        assert not _imports(f) & {"bot", "handlers", "slack_bolt", "slack_sdk", "fastapi"}, f


def test_bot_core_imports_no_handlers_and_no_slack_bolt() -> None:
    for f in _files("bot"):
        if str(f.relative_to(REPO)) in COMPOSITION:
            continue
        assert not _imports(f) & {"handlers", "slack_bolt", "fastapi"}, f


def test_no_session_query_or_naive_utcnow() -> None:
    for pkg in ("bot", "handlers", "retrieval"):
        for f in _files(pkg):
            text = f.read_text()
            assert "session.query(" not in text and "datetime.utcnow(" not in text, f


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_retrieval_has_no_import_cycle() -> None:
    """Imports inside functions count too: a lazy import that closes a cycle only hides it."""
    files = {_module_name(f): f for f in _files("retrieval")}
    graph: dict[str, set[str]] = {}
    for name, f in files.items():
        deps: set[str] = set()
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                deps.add(node.module)
                deps.update(f"{node.module}.{a.name}" for a in node.names)
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names)
        graph[name] = {d for d in deps if d in files and d != name}

    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        assert name not in path, " -> ".join([*path[path.index(name):], name])
        if name in done:
            return
        for dep in sorted(graph[name]):
            visit(dep, [*path, name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])
