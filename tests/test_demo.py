"""`approxmlp demo` (what `make demo` runs): the whole mission on bundled data, offline."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest


@pytest.mark.slow
@pytest.mark.sim
@pytest.mark.synth
def test_demo_shows_an_approximate_design_5x_smaller_certified_within_its_budget(tmp_path):
    from approxmlp.pipeline.demo import DEMO_BUDGET

    out = tmp_path / "demo-out"
    # as `make demo` runs it: a subprocess whose stdout is not a terminal (no bars, readable log)
    r = subprocess.run([sys.executable, "-m", "approxmlp", "demo", "--out", str(out)], capture_output=True,
                       text=True, env=_python_env() | {"COLUMNS": "160"})
    assert r.returncode == 0, r.stderr
    s = json.loads((out / "explore" / "pareto.json").read_text())
    exact = s["baseline"]
    pick = next(e for e in s["budgets"] if e["max_loss"] == DEMO_BUDGET)
    assert pick["picked_on"] == "validation_accuracy" and pick["confidence"] == 0.9
    chosen = next(p for p in s["points"] if p["id"] == pick["design"])
    # certified: the one-sided 90 % bound of the paired validation loss is within the budget
    assert chosen["loss_bound"] <= DEMO_BUDGET and chosen["validation_loss"]["high"] >= chosen["loss_bound"]
    # and the promise held on the test split, which chose nothing
    assert exact["test_accuracy"] - chosen["test_accuracy"] <= DEMO_BUDGET
    assert chosen["verification"]["passed"] and exact["verification"]["passed"]
    # every design the demo makes is proven: RTL = reference and netlist = RTL (issue 19)
    assert s["formal"]["proofs"] == {"proven": 2 * len(s["points"])}, s["formal"]
    assert exact["area_cm2"] / chosen["area_cm2"] >= 5 and exact["power_mw"] / chosen["power_mw"] >= 5
    lo, hi = chosen["test_interval"]
    assert lo < chosen["test_accuracy"] < hi
    # the table: exact vs approximate, both accuracies, area, power, cells, reductions, vectors
    text = r.stdout
    for label in ("validation accuracy (picked on)", "test accuracy (reported)", "area (cm²)", "power (mW)",
                  "cells", "vectors verified (RTL = golden)", "test loss, paired (points)", "95% intervals"):
        assert label in text, text
    assert f"{chosen['test_accuracy']:.4f} [{lo:.3f}, {hi:.3f}]" in text
    area = re.search(r"area \(cm²\)\s*│\s*([0-9.]+)\s*│\s*([0-9.]+)\s*│\s*([0-9.]+)x", text)
    assert area and float(area[3]) == pytest.approx(exact["area_cm2"] / chosen["area_cm2"], rel=0.01), text
    n = chosen["verification"]["vectors"]
    assert f"{n}/{n}" in text
    rtl = out / "explore" / chosen["rtl"]
    assert f"RTL:    {rtl}" in text and rtl.is_file() and "module top" in rtl.read_text()
    assert f"Pareto: {out / 'explore' / 'pareto.png'}" in text and (out / "explore" / "pareto.png").stat().st_size > 10_000
    assert f"report: {out / 'explore' / 'report.md'}" in text
    assert "\x1b[" not in text and "━" not in r.stderr  # no live bars when stdout is not a terminal


def _python_env() -> dict:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
