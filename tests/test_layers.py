"""The package's import arrows run one way, and nowhere in a circle.

The layer order is read from ``docs/architecture.md`` (its line ``Layers, lowest first:``),
so the document and the code cannot drift apart: every import in ``approxmlp/``, also the
ones inside functions, is checked with :mod:`ast` against it, and the module import graph
is searched for cycles.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "approxmlp"


def layers() -> list[list[str]]:
    """The groups of the ``Layers, lowest first:`` line, lowest first: ``a, b | c | ...``."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    m = re.search(r"^Layers, lowest first: (.+)$", text, re.M)
    assert m, "docs/architecture.md has no line 'Layers, lowest first: ...'"
    return [[name.strip().strip("`") for name in group.split(",")] for group in m.group(1).split("|")]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def resolve(name: str) -> str | None:
    """``name`` (``approxmlp.x.y.z``) as the module it loads: the longest known prefix."""
    parts = name.split(".")
    while parts:
        if ".".join(parts) in MODULES:
            return ".".join(parts)
        parts.pop()
    return None


def imports(module: str) -> set[str]:
    """The approxmlp modules ``module`` imports, anywhere in its body."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            names = [f"{stem}.{a.name}" for a in node.names]  # a submodule, or a name in stem
        else:
            continue
        for n in names:
            if n == "approxmlp" or n.startswith("approxmlp."):
                target = resolve(n)
                if target is not None and target != module:
                    found.add(target)
    return found


def layer_of(module: str, order: list[list[str]]) -> tuple[int, str]:
    """``(layer index, group member)`` of an approxmlp module: by its first component below
    ``approxmlp`` (``approxmlp`` itself is the package's ``__init__``)."""
    parts = module.split(".")
    key = parts[1] if len(parts) > 1 else "approxmlp"
    for k, group in enumerate(order):
        if key in group:
            return k, key
    raise AssertionError(f"{module}: '{key}' is in no layer of docs/architecture.md's 'Layers, lowest first:' line")


def test_every_module_has_a_layer():
    order = layers()
    for module in MODULES:
        layer_of(module, order)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down(module):
    """A module imports only from lower layers or from its own part of its layer (the
    parts of one layer, e.g. ``frontend`` and ``backend``, do not import each other)."""
    order = layers()
    k, own = layer_of(module, order)
    up = []
    for target in sorted(imports(module)):
        j, other = layer_of(target, order)
        if j > k or (j == k and other != own):
            up.append(f"{target} ({' | '.join(', '.join(g) for g in order[j:j + 1])})")
    assert not up, f"{module} imports from a higher or a sibling layer: {', '.join(up)}"


def test_no_import_cycles():
    """No module reaches itself through imports (lazy imports inside functions included)."""
    graph = {m: imports(m) for m in MODULES}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                return stack[stack.index(n):] + [n]
            if n not in state:
                cycle = visit(n)
                if cycle:
                    return cycle
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state:
            cycle = visit(m)
            assert cycle is None, "import cycle: " + " -> ".join(cycle)
