"""Design folders on disk: who may write where, atomically, and reading them back.

Every flow owns its output folder through this module: :func:`check_out` refuses a folder
approxmlp did not write, :class:`Staging` builds one beside its destination and renames it
into place only when complete, and the readers (:func:`load_ir`, :func:`read_vectors`,
:func:`read_report`) turn a damaged file into a message that names it and the fix.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core.irfile import load_ir
from ..errors import ApproxMLPError, DataError

__all__ = ["COMPILE_MARKS", "Staging", "check_out", "check_parents", "file_hashes", "json_default", "load_ir",
           "make_folder", "netlist_of", "read_report", "read_vectors", "write_json", "write_vectors"]

#: The file only `compile` writes into its folder: a folder holding it may be replaced.
COMPILE_MARKS = ("report.json",)


def check_out(out: Path, marks: tuple[str, ...]) -> Path:
    """``out`` resolved, once it is known to be a folder approxmlp may (re)write: new, empty,
    or holding one of ``marks`` (files only approxmlp writes there, e.g. ``report.json``),
    below a path whose existing part is a folder. A user's own files are never replaced."""
    out = Path(out).resolve()
    if out.exists() and not out.is_dir():
        raise ApproxMLPError(f"--out {out} exists and is not a folder; choose another path")
    if out.is_dir() and any(out.iterdir()) and not any((out / m).exists() for m in marks):
        raise ApproxMLPError(f"--out {out} is a non-empty folder that approxmlp did not write; "
                             "choose an empty or new folder")
    check_parents(out)
    return out


def check_parents(path: Path) -> None:
    """Refuse a path below a file (``--out afile/sub``), which the OS would only answer
    with "File exists" or "Not a directory"."""
    for parent in Path(path).resolve().parents:
        if parent.exists():
            if not parent.is_dir():
                raise ApproxMLPError(f"--out {path}: {parent} is a file, not a folder; choose another path")
            return


def make_folder(path: Path) -> None:
    """``mkdir -p`` of (a parent of) ``--out`` whose failure names it and a fix, not the raw
    OS error."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ApproxMLPError(f"--out {path}: cannot create it ({exc.strerror or exc}); "
                             "choose a folder you can write to") from None


@dataclass
class Staging:
    """A sibling temp folder that becomes ``out`` on :meth:`commit`, or vanishes.

    ``marks`` name files that only approxmlp writes into such a folder: an existing ``out``
    is replaced only if it holds one (or is empty)."""

    out: Path
    marks: tuple[str, ...] = COMPILE_MARKS
    path: Path = field(init=False)

    def __enter__(self) -> "Staging":
        self.out = check_out(self.out, self.marks)
        make_folder(self.out.parent)
        try:
            self.path = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.", dir=self.out.parent))
        except OSError as exc:
            raise ApproxMLPError(f"--out {self.out}: cannot write in {self.out.parent} "
                                 f"({exc.strerror or exc}); choose a folder you can write to") from None
        return self

    def commit(self) -> None:
        """Replace ``out`` by the staged folder: the old one is moved aside first, so that
        a failure leaves either of them whole."""
        old = None
        if self.out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.old.", dir=self.out.parent))
            self.out.rename(old / self.out.name)
        try:
            self.path.rename(self.out)
        except OSError:
            if old is not None:
                (old / self.out.name).rename(self.out)
            raise
        finally:
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)

    def __exit__(self, *exc) -> None:
        if self.path.exists():
            shutil.rmtree(self.path, ignore_errors=True)


def file_hashes(folder: Path) -> dict[str, str]:
    """The sha256 of every file in a design folder but ``report.json`` (which records
    them), by path relative to the folder: how `approxmlp verify` tells which files
    changed since they were written."""
    return {f.relative_to(folder).as_posix(): hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted(folder.rglob("*")) if f.is_file() and f != folder / "report.json"}


def write_vectors(folder: Path, inputs: np.ndarray, golden: np.ndarray, labels: np.ndarray | None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    npz = folder / "test.npz"
    arrays = {"inputs": inputs.astype(np.int64), "golden": golden.astype(np.int64)}
    if labels is not None:
        arrays["labels"] = labels.astype(np.int64)
    np.savez_compressed(npz, **arrays)
    header = ",".join([f"x{i}" for i in range(inputs.shape[1])] + ["golden"] + (["label"] if labels is not None else []))
    cols = [inputs, golden[:, None]] + ([labels[:, None]] if labels is not None else [])
    np.savetxt(folder / "test.csv", np.hstack(cols), fmt="%d", delimiter=",", header=header, comments="")
    return npz


def read_vectors(folder: Path) -> dict[str, np.ndarray]:
    npz = folder / "vectors" / "test.npz"
    if not npz.is_file():
        raise DataError(f"{npz} not found; is {folder} a folder written by `approxmlp compile`?")
    try:
        with np.load(npz, allow_pickle=False) as f:
            vec = {k: f[k] for k in f.files}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, KeyError) as exc:  # a damaged .npz
        raise DataError(f"{npz} cannot be read ({type(exc).__name__}: {exc}); it is damaged or truncated: "
                        "recompile the design") from None
    missing = [k for k in ("inputs", "golden") if k not in vec]
    if missing:
        raise DataError(f"{npz} lacks {', '.join(missing)}; recompile the design")
    return vec


def read_report(folder: Path) -> dict:
    """A design folder's ``report.json`` ({} when there is none: a folder written by hand)."""
    path = Path(folder) / "report.json"
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path} cannot be read ({exc}); recompile the design") from None


def netlist_of(folder: Path, report: dict) -> Path | None:
    """The mapped netlist synthesis kept in a design folder (named in its report), if any."""
    name = (report.get("synthesis") or {}).get("netlist")
    path = Path(folder) / name if name else None
    return path if path is not None and path.is_file() else None


def write_json(path: Path, obj) -> None:
    """``obj`` as indented JSON, numpy scalars and arrays and paths converted."""
    Path(path).write_text(json.dumps(obj, indent=1, default=json_default) + "\n")


def json_default(o):
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serializable: {type(o).__name__}")
