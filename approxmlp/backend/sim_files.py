"""What a simulation run takes and gives, and the files it shares with the cocotb bench.

:class:`SimDesign` (a design and its vectors) goes in, :class:`SimResult` comes out. The
bench ``sim/mlp_bench.py`` runs in the simulator's own Python, so everything it needs to
read its job and write its results back lives here, on both sides of the files
(:func:`write_run` / :func:`load_run`, :func:`save_outputs` / :func:`load_outputs`), and the
wrapper top that puts every design of a run side by side (:func:`wrapper_verilog`); the
build and the run are :mod:`approxmlp.backend.simulate`'s.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .. import PACKAGE_DIR
from ..errors import DataError
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
