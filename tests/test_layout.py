"""The shape of the code, checked like behaviour: the role subpackages form layers that import
only downwards, no import circle exists (imports inside functions count too), the core never
imports a family or exporter, and the server is imported by its command alone."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# where each installed package's modules live in the repository
PACKAGES = {
    "zoo": ROOT / "zoo",
    "zoo.plugins": ROOT / "plugins",
    "zoo.exporters": ROOT / "exporters",
}


def modules() -> dict[str, Path]:
    found = {}
    for package, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            parts = path.relative_to(folder).with_suffix("").parts
            name = ".".join((package, *parts)).removesuffix(".__init__")
            if package == "zoo" and parts[0] in ("plugins", "exporters"):
                continue
            found[name] = path
    return found


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The zoo modules ``name`` imports anywhere in its code (functions included)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    named: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            named.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, *([node.module] if node.module else [])])
            named.add(base)
            named.update(f"{base}.{alias.name}" for alias in node.names)
    resolved = set()
    for target in named:
        while target and target not in known:
            target = target.rpartition(".")[0]
        if target and target != name:
            resolved.add(target)
    return resolved


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in edges:
        if v not in index:
            visit(v)
    return found


def test_the_checker_finds_a_circle():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_circle():
    assert circles(graph()) == []


PLUGINS = ("zoo.plugins", "zoo.exporters")


def test_the_core_imports_no_family_or_exporter():
    """The core speaks to families and exporters only through the hooks."""
    for name, targets in graph().items():
        if name.startswith(PLUGINS) or name == "zoo.testing":
            continue
        assert not {t for t in targets if t.startswith(PLUGINS)}, name


def test_the_server_is_imported_by_its_command_alone():
    for name, targets in graph().items():
        if name.startswith("zoo.serving") or name == "zoo.cli.serve":
            continue
        assert not {t for t in targets if t.startswith("zoo.serving")}, name


# The core's layers, from the bottom up (docs/architecture.md): a module may import from its
# own layer and the layers below, never above. The package ``zoo`` itself holds the names a
# plugin registers with, so it sits with the contract.
LAYERS = [
    {"zoo.errors", "zoo._moved"},
    {"zoo.base"},
    {"zoo.contract", "zoo"},
    {"zoo.registry"},
    {"zoo.store"},
    {"zoo.data"},
    {"zoo.runtime"},
    {"zoo.training"},
    {"zoo.judge"},
    {"zoo.api"},
    {"zoo.evaluation", "zoo.testing"},
    {"zoo.serving"},
    {"zoo.cli", "zoo.__main__"},
]


def layer(module: str) -> int | None:
    for depth, unit in enumerate(LAYERS):
        if module in unit or any(module.startswith(f"{u}.") for u in unit - {"zoo"}):
            return depth
    return None  # families and exporters, beside the core


def upward_imports(edges: dict[str, set[str]]) -> list[tuple[str, str]]:
    found = []
    for name, targets in edges.items():
        here = layer(name)
        for target in targets:
            there = layer(target)
            if here is not None and there is not None and there > here:
                found.append((name, target))
    return sorted(found)


def test_the_layer_checker_finds_an_upward_import():
    assert upward_imports({"zoo.store.sources": {"zoo.base.files", "zoo.data.loading"}}) == [
        ("zoo.store.sources", "zoo.data.loading")
    ]


def test_every_core_module_has_a_layer():
    assert [m for m in graph() if layer(m) is None and not m.startswith(PLUGINS)] == []


def test_the_layers_import_only_downwards():
    assert upward_imports(graph()) == []


def test_each_subpackage_says_what_it_owns_and_may_import():
    for folder in sorted((ROOT / "zoo").iterdir()):
        init = folder / "__init__.py"
        if init.is_file():
            doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or ""
            assert "may import" in doc.lower(), folder.name
