"""The public API as docs/plugins.md lists it: every name imports, and the built-in plugins
and the example plugin import nothing else from zoo (they use zoo as a third party would)."""

from __future__ import annotations

import ast
import importlib
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def listed() -> dict[str, set[str]]:
    text = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- public-api -->\n```text\n(.*?)```", text, re.S)
    assert block, "docs/plugins.md lost its public API block"
    api = {}
    for line in block.group(1).strip().splitlines():
        module, _, names = line.partition(": ")
        api[module] = {name.strip() for name in names.split(",")}
    return api


def test_every_listed_name_imports():
    for module, names in listed().items():
        imported = importlib.import_module(module)
        missing = sorted(n for n in names if not hasattr(imported, n))
        assert not missing, f"{module} lacks {missing}"


def test_plugins_import_only_the_public_api():
    api = listed()
    sources = [*ROOT.glob("plugins/*.py"), *ROOT.glob("exporters/*.py"),
               *ROOT.glob("examples/**/*.py")]  # fmt: skip
    for path in sources:
        own = "zoo.plugins" if path.parent.name == "plugins" else "zoo.exporters"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom) or not (node.module or "").startswith("zoo"):
                continue
            module = node.module or ""
            if module != "zoo" and not module.startswith("zoo."):
                continue
            if "examples" not in path.parts and module.startswith(own):
                continue  # a built-in package's own modules
            names = {alias.name for alias in node.names}
            unlisted = names - api.get(module, set())
            assert not unlisted, (
                f"{path.relative_to(ROOT)} imports {sorted(unlisted)} from {module}"
            )


def moved() -> list[tuple[str, str]]:
    text = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- moved -->\n```text\n(.*?)```", text, re.S)
    assert block, "docs/plugins.md lost its list of moved paths"
    return [tuple(line.split(" -> ")) for line in block.group(1).strip().splitlines()]


@pytest.mark.parametrize(("old", "new"), moved())
def test_a_moved_path_still_imports_with_a_warning(old, new, monkeypatch):
    """A plugin written before the role layout keeps working for a release, and is told where
    the name went."""
    if old.startswith("zoo.runtime."):  # an attribute of a package that kept its name
        package, _, name = old.rpartition(".")
        with pytest.warns(DeprecationWarning, match=re.escape(new)):
            value = getattr(importlib.import_module(package), name)
        module, _, attr = new.rpartition(".")
        assert value is getattr(importlib.import_module(module), attr)
        return
    monkeypatch.delitem(sys.modules, old, raising=False)
    with pytest.warns(DeprecationWarning, match=re.escape(new)):
        module = importlib.import_module(old)
    assert module is importlib.import_module(new)
    assert sys.modules[old] is module


def test_a_name_zoo_does_not_have_is_still_an_error():
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("zoo.no_such_module")
    with pytest.raises(AttributeError, match="no attribute"):
        importlib.import_module("zoo.runtime").no_such_name  # noqa: B018
