"""cocotb bench: apply every vector to every design of an approxmlp simulation run.

The toplevel is the wrapper that :func:`approxmlp.backend.simulate.simulate` generates
(``approxmlp_sim_top``): design ``k`` sits behind ports ``inp_<k>``/``out_<k>``, and the
registered ones share ``clk``. The run (which designs, their vectors, where to write
the results) comes from the manifest named by ``$APPROXMLP_SIM_MANIFEST``; the file
format belongs to :mod:`approxmlp.backend.simulate`, so this module only drives signals.

All designs advance together, one vector per time step, because a step's cost is
mostly the simulator round trip, not the number of signals touched in it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import cocotb
from cocotb.triggers import Timer

from approxmlp.backend.sim_files import MANIFEST_ENV, UNRESOLVED, BenchJob, find_mismatches, load_run, save_outputs


@dataclass
class _Lane:
    """One design's ports and the classes read from it so far."""

    job: BenchJob
    inp: object
    out: object
    rtl: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.rtl = np.full(len(self.job.words), UNRESOLVED, dtype=np.int64)


def _read_class(handle) -> int:
    value = handle.value
    return value.to_unsigned() if value.is_resolvable else UNRESOLVED


async def _step(dut, lanes: list[_Lane], t: int, clocked: bool) -> None:
    """Apply vector ``t`` to every design that has one, let it settle (and clock the
    registered ones), then record what every such design outputs."""
    active = [lane for lane in lanes if t < len(lane.job.words)]
    for lane in active:
        lane.inp.value = lane.job.words[t]
    await Timer(1, unit="ns")
    if clocked:
        # Combinational outputs keep reflecting the same inputs across the edge;
        # registered ones now hold the class of the inputs that were present before it.
        dut.clk.value = 1
        await Timer(1, unit="ns")
        dut.clk.value = 0
    for lane in active:
        lane.rtl[t] = _read_class(lane.out)


def _mismatch_report(lanes: list[_Lane]) -> list[str]:
    """One line per design that disagrees with its golden classes, naming the first
    mismatching sample."""
    lines = []
    for lane in lanes:
        if lane.job.expected is None:
            continue
        bad = find_mismatches(lane.job.inputs, lane.rtl, lane.job.expected)
        if bad:
            lines.append(f"{lane.job.module}: {len(bad)} of {len(lane.rtl)} vectors mismatch, first {bad[0]}")
    return lines


@cocotb.test()
async def run_vectors(dut) -> None:
    """Drive every design of the run, save the RTL classes, fail on any mismatch."""
    run = load_run(Path(os.environ[MANIFEST_ENV]))
    lanes = [_Lane(job, getattr(dut, f"inp_{job.index}"), getattr(dut, f"out_{job.index}"))
             for job in run.jobs]
    clocked = any(job.registered for job in run.jobs)
    dut.clk.value = 0
    for t in range(max(len(lane.job.words) for lane in lanes)):
        await _step(dut, lanes, t, clocked)
    save_outputs(run.results, {lane.job.index: lane.rtl for lane in lanes})
    problems = _mismatch_report(lanes)
    assert not problems, "RTL disagrees with the golden model:\n" + "\n".join(problems)
