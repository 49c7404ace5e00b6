"""Verilator's lint (``--lint-only -Wall``) of a design and the primitives it instantiates."""

from __future__ import annotations

import subprocess
from pathlib import Path

from ..errors import ToolError
from .tools import find_verilator
from .verilog.primitives import primitive_sources


def lint(verilog_path: Path, top: str) -> list[str]:
    """Verilator's ``--lint-only -Wall`` findings for ``top`` in ``verilog_path``.

    Returns the first line of each warning or error (``[]`` means clean), so a caller can
    fail, print or count them. Raises :class:`ToolError` only if Verilator cannot run.
    Note that ``-Wall`` includes DECLFILENAME: name the file after the module. The
    ``rtl/`` primitives the design instantiates are linted with it.
    """
    path = Path(verilog_path).resolve()
    if not path.is_file():
        raise ToolError(f"lint: {path} does not exist")
    v = find_verilator()
    # the rtl/ primitives it instantiates: the copies beside it (a design folder's), else the
    # repository's; -y: any other module of its own files (one module per file) beside it
    sources = [str(p) for p in primitive_sources(path.read_text(errors="replace"), near=path.parent)]
    argv = [str(v.executable), "--lint-only", "-Wall", "-Wno-fatal", "-y", str(path.parent), "--top-module", top,
            *sources, str(path)]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, env=v.env(), cwd=path.parent,
                              timeout=300)
    except (OSError, subprocess.SubprocessError) as exc:
        raise ToolError(f"lint: cannot run Verilator: {exc}", argv=argv, cwd=str(path.parent)) from None
    findings = [line for line in (proc.stdout + proc.stderr).splitlines()
                if line.startswith(("%Warning", "%Error")) and not line.startswith("%Error: Exiting due to")]
    if proc.returncode != 0 and not findings:
        raise ToolError("lint: Verilator failed without a diagnostic", argv=argv, cwd=str(path.parent),
                        returncode=proc.returncode)
    return findings
