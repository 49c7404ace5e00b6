"""cocotb bench of ``rtl/approxmlp_rescale.v``: every accumulator value whose result
fits, against :func:`primitive_models.rescale`. Parameters from
``$APPROXMLP_PRIMITIVE_PARAMS``; launched by ``tests/test_primitives.py``."""

from __future__ import annotations

import json
import os

import cocotb
from cocotb.triggers import Timer

from primitive_models import rescale, rescale_inputs


@cocotb.test()
async def exhaustive(dut) -> None:
    p = json.loads(os.environ["APPROXMLP_PRIMITIVE_PARAMS"])
    bad = []
    for acc in rescale_inputs(**p):
        dut.acc.value = acc & ((1 << p["ACC_W"]) - 1)
        await Timer(1, unit="ns")
        got, want = dut.out.value.to_signed(), rescale(acc, **p)
        if got != want:
            bad.append(f"acc {acc}: out {got}, expected {want}")
    assert not bad, f"{len(bad)} mismatches, first {bad[:3]}"
