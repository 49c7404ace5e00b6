"""cocotb bench of ``rtl/approxmlp_ge.v``: every pair of operands, ``ge == (a >= b)`` as
numbers of their own widths. Parameters from ``$APPROXMLP_PRIMITIVE_PARAMS``; launched
by ``tests/test_primitives.py``."""

from __future__ import annotations

import json
import os

import cocotb
from cocotb.triggers import Timer

from primitive_models import as_number


@cocotb.test()
async def exhaustive(dut) -> None:
    p = json.loads(os.environ["APPROXMLP_PRIMITIVE_PARAMS"])
    aw, bw, signed = p["A_W"], p["B_W"], bool(p["SIGNED"])
    bad = []
    for a in range(1 << aw):
        for b in range(1 << bw):
            dut.a.value, dut.b.value = a, b
            await Timer(1, unit="ns")
            want = int(as_number(a, aw, signed) >= as_number(b, bw, signed))
            got = int(dut.ge.value)
            if got != want:
                bad.append(f"a {a:#x}, b {b:#x}: ge {got}, expected {want}")
    assert not bad, f"{len(bad)} mismatches, first {bad[:3]}"
