"""What every benchmark flow shares: where the repository is, the log line, a run's provenance
(the commit it ran at), the figures of earlier runs (``history.json``), and how an area or a
power is written in a table. Imports nothing else of :mod:`flows.bench`: the other modules
import it, never each other in a circle."""

from __future__ import annotations

import functools
import json
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
#: Figures and notes of earlier runs that the reports compare with (data, not code).
HISTORY = Path(__file__).with_name("history.json")


def log(msg: str) -> None:
    """One line of a long run's progress, with the time of day."""
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def commit() -> str:
    """The checked-out commit, marked when the package or the flows differ from it (the
    provenance of a run: this one's, or a scaling section's run on its own)."""

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return ""

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    if git("status", "--porcelain", "--untracked-files=no", "--", "approxmlp", "flows"):
        head += " + local changes"
    return head


@functools.cache
def history() -> dict:
    """``history.json``: the previous run's figures and the notes about older measurements."""
    return json.loads(HISTORY.read_text())


def area(v: float | None) -> str:
    """An area or power for a table: three significant digits, however small."""
    if v is None:
        return "—"
    return f"{v:.1f}" if v >= 100 else f"{v:.3g}"


def provenance(res: dict, what: str = "") -> str:
    """The sentence a report section adds when its step ran on its own, after ``make bench``
    (``res`` holds ``via``, ``commit`` and ``date``): `` From `python -m ...` at commit X on
    D<what>.``; nothing when ``make bench`` ran it."""
    if not res.get("via") or res.get("via") == "make bench":
        return ""
    return f" From `{res['via']}` at commit {res['commit']} on {res['date']}{what}."


def keep_standalone(out: Path, name: str, res: dict, via: str, markdown) -> dict:
    """A step run on its own on a finished run (``python -m flows.bench.<step>``): its result
    with its provenance, kept as ``out/<name>`` (where ``--render`` finds it) and its
    section printed."""
    res = res | {"via": via, "commit": commit(), "date": time.strftime("%Y-%m-%d")}
    (out / name).write_text(json.dumps(res, indent=1) + "\n")
    print("\n".join(markdown(res)))
    return res
