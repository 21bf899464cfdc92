"""The product's packages form layers: each module imports only from its own layer or earlier ones, and no two
modules import each other, directly or through others. Imports are read with ``ast``, so an import inside a
function counts as much as one at the top of the file."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("tokenization", "datamodules", "lightning_modules", "callbacks", "cli")


def module_files(root: Path = ROOT) -> dict[str, Path]:
    return {f"{layer}.{path.stem}": path for layer in LAYERS for path in sorted((root / layer).glob("*.py"))}


def _type_checking_only(tree: ast.Module) -> set[ast.AST]:
    """Import nodes under ``if TYPE_CHECKING:``: annotations only, never executed."""
    guarded: set[ast.AST] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            guarded |= {n for stmt in node.body for n in ast.walk(stmt)}
    return guarded


def imported_modules(path: Path, root: Path, *, at_runtime: bool) -> list[tuple[str, int]]:
    """Every ``(imported name, line)`` of a file: ``import a.b`` gives ``a.b``; ``from a import b`` gives ``a`` and
    ``a.b`` (``b`` may be a module). With ``at_runtime``, imports under ``if TYPE_CHECKING:`` are left out."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    skip = _type_checking_only(tree) if at_runtime else set()
    found = []
    for node in ast.walk(tree):
        if node in skip:
            continue
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = ".".join(path.relative_to(root).with_suffix("").parts[: -node.level])
                base = ".".join(p for p in (package, node.module) if p)
            else:
                base = node.module or ""
            found.append((base, node.lineno))
            found += [(f"{base}.{alias.name}", node.lineno) for alias in node.names]
    return found


def layer_violations(files: dict[str, Path], root: Path = ROOT) -> list[str]:
    violations = []
    for module, path in files.items():
        own = LAYERS.index(module.split(".")[0])
        for name, line in imported_modules(path, root, at_runtime=False):
            top = name.split(".")[0]
            if top in LAYERS and LAYERS.index(top) > own:
                violations.append(f"{path.relative_to(root).as_posix()}:{line} imports {name} ({top} is above {LAYERS[own]})")
    return violations


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph[node]):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def runtime_import_graph(files: dict[str, Path], root: Path = ROOT) -> dict[str, set[str]]:
    return {
        module: {name for name, _ in imported_modules(path, root, at_runtime=True) if name in files and name != module}
        for module, path in files.items()
    }


def test_every_import_respects_the_layers() -> None:
    files = module_files()
    assert {module.split(".")[0] for module in files} == set(LAYERS), "a layer moved or is empty: update LAYERS"
    violations = layer_violations(files)
    assert not violations, "\n".join(violations)


def test_no_import_cycles() -> None:
    files = module_files()
    graph = runtime_import_graph(files)
    cycles = import_cycles(graph)
    described = [" <-> ".join(f"{m} (imports {sorted(graph[m] & set(c))})" for m in c) for c in cycles]
    assert not cycles, "\n".join(described)


def test_the_checks_catch_an_upward_import_and_a_cycle(tmp_path) -> None:
    for layer in ("tokenization", "cli"):
        (tmp_path / layer).mkdir()
    (tmp_path / "tokenization" / "a.py").write_text("def f():\n    from cli import b\n")
    (tmp_path / "tokenization" / "b.py").write_text("import tokenization.c\n")
    (tmp_path / "tokenization" / "c.py").write_text("from tokenization import b\n")
    (tmp_path / "tokenization" / "d.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import tokenization.e\n")
    (tmp_path / "tokenization" / "e.py").write_text("import tokenization.d\n")
    (tmp_path / "cli" / "b.py").write_text("from tokenization.a import f\n")
    files = module_files(tmp_path)
    assert layer_violations(files, tmp_path) == ["tokenization/a.py:2 imports cli (cli is above tokenization)",
                                       "tokenization/a.py:2 imports cli.b (cli is above tokenization)"]
    assert import_cycles(runtime_import_graph(files, tmp_path)) == [
        ["cli.b", "tokenization.a"],
        ["tokenization.b", "tokenization.c"],
    ]

