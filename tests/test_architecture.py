"""docs/architecture.md describes the package as it is: every stage folder and module named."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "architecture.md"


def test_architecture_names_every_folder_and_module():
    text = DOC.read_text()
    pkg = ROOT / "approxmlp"
    folders = sorted(p for p in pkg.iterdir() if p.is_dir() and (p / "__init__.py").is_file())
    assert {f.name for f in folders} == {"frontend", "core", "cost", "search", "backend", "pipeline"}
    for folder in folders:
        assert f"{folder.name}/" in text, folder.name
        for mod in folder.glob("*.py"):
            if mod.name != "__init__.py":
                assert mod.name in text, f"{folder.name}/{mod.name} is not in {DOC.name}"
        for sub in folder.iterdir():
            if sub.is_dir() and (sub / "__init__.py").is_file():
                assert f"{folder.name}/{sub.name}/" in text, sub
    for mod in pkg.glob("*.py"):
        if mod.name not in ("__init__.py", "__main__.py"):
            assert mod.name in text, mod.name
    # and nothing it names as a module is missing
    import re

    for name in re.findall(r"([a-z_][a-z_/]*/[a-z_]+\.py)", text):
        assert (pkg / name).is_file() or (ROOT / name).is_file(), name
