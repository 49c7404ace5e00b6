"""The hand-written primitives of ``rtl/`` and how generated designs use them.

The emitter writes only what is particular to a design (its products, sums and wiring);
what every design repeats (the saturating QReLU, the linear rescale, the argmax
comparator) is one reviewed, parameterized module in the repository's top-level ``rtl/``
folder (no ``__init__.py``: Verilog, not Python; a wheel ships it as ``approxmlp/rtl``), each with its own cocotb test in ``sim/``. A generated module instantiates them
with named parameters, and whoever writes or reads a design finds the modules it needs
here: :func:`used_primitives` from the design's text, :func:`primitive_sources` their
files (the design folder's own copies first), :func:`copy_primitives` to put copies
beside a design so that its folder stays self-contained, and :func:`bundle` the design
and its primitives as one text for tools that take a single file (Yosys runs, proofs).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterable
from pathlib import Path

from ... import PACKAGE_DIR
from ...errors import ApproxMLPError

#: The primitives, in the order they are listed and bundled.
PRIMITIVES = ("approxmlp_qrelu", "approxmlp_rescale", "approxmlp_ge")

_INSTANCE = re.compile(r"^\s*(approxmlp_[a-z0-9_]+)\s+#\(", re.MULTILINE)
_DECLARED = re.compile(r"^\s*module\s+([A-Za-z_][A-Za-z0-9_$]*)", re.MULTILINE)


def rtl_dir() -> Path:
    """The ``rtl/`` folder: ``approxmlp/rtl`` inside an installed wheel (pyproject maps it
    there, as ``flows/``), else ``rtl/`` of the source tree (editable install)."""
    for path in (PACKAGE_DIR / "rtl", PACKAGE_DIR.parent / "rtl"):
        if (path / f"{PRIMITIVES[0]}.v").is_file():
            return path
    raise ApproxMLPError(f"the primitive library {PACKAGE_DIR.parent / 'rtl'} is missing; reinstall approxmlp "
                         "(pip install -e . from its source tree)")


def used_primitives(verilog: str) -> list[str]:
    """The primitives ``verilog`` instantiates, in :data:`PRIMITIVES` order. A module the
    text declares itself is not looked up: a text that carries its primitives already, or
    carries them renamed (``verify`` of several folders in one build)."""
    found = set(_INSTANCE.findall(verilog)) - set(_DECLARED.findall(verilog))
    unknown = found - set(PRIMITIVES)
    if unknown:
        raise ApproxMLPError(f"the design instantiates {sorted(unknown)}, which rtl/ does not hold")
    return [p for p in PRIMITIVES if p in found]


def primitive_sources(verilog: str, near: Path | None = None) -> list[Path]:
    """The files of the primitives ``verilog`` uses: the copy in folder ``near`` (a design
    folder's ``rtl/``) where there is one, so that a design is checked with the modules it
    carries, else the repository's."""
    out = []
    for name in used_primitives(verilog):
        own = Path(near) / f"{name}.v" if near is not None else None
        out.append(own if own is not None and own.is_file() else rtl_dir() / f"{name}.v")
    return out


def copy_primitives(verilog: str, dest: Path) -> list[Path]:
    """Copy the primitives ``verilog`` uses into folder ``dest``; returns the copies."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    copies = []
    for name in used_primitives(verilog):
        copies.append(dest / f"{name}.v")
        shutil.copyfile(rtl_dir() / f"{name}.v", copies[-1])
    return copies


def bundle(verilog: str, near: Path | None = None) -> str:
    """``verilog`` followed by the primitives it uses: one self-contained source text."""
    parts = [verilog] + [p.read_text() for p in primitive_sources(verilog, near)]
    return "\n".join(part.rstrip("\n") + "\n" for part in parts)


def unique(paths: Iterable[Path]) -> list[Path]:
    """``paths`` without repeats (by file name), in order."""
    seen, out = set(), []
    for p in paths:
        if p.name not in seen:
            seen.add(p.name)
            out.append(p)
    return out


def write_rtl(path: Path, verilog: str) -> Path:
    """Write a design's ``verilog`` to ``path`` (a design folder's ``rtl/top.v``) and copies
    of the primitives it uses beside it: what every design-folder writer calls."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(verilog)
    copy_primitives(verilog, path.parent)
    return path
