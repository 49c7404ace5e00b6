"""A fabricated `make bench` run: the numbers its reports are rendered from (``results.json``,
``meta.json``, ``scaling.json``), small but touching every branch of the renderers: a failed
data set, a footnote, published and DATE'24 figures, a budget with no pick, a pick over its
budget on test (†), seeds, the comparison with the previous run, a failed scaling network."""

from __future__ import annotations

TARGETS = ("printed", "printed-cnt", "fpga-ice40")


def point(i: str, val: float, area: float, *, bound: float | None = None, verified: bool = True,
          exact: bool = False, test: float | None = None) -> dict:
    """A realized design as the bench keeps it; ``bound``: its loss bound (exact: 0)."""
    loss = {"loss": 0.0, "low": -0.01, "high": 0.01, "n": 100, "worse": 0, "better": 0}
    test = val if test is None else test
    p = {"id": i, "exact": exact, "validation_accuracy": val, "test_accuracy": test,
         "validation_interval": [val - 0.05, val + 0.03], "test_interval": [test - 0.04, test + 0.02],
         "validation_loss": loss, "test_loss": loss, "loss_bound": 0.0 if exact else bound,
         "verified": verified, "vectors": "100/100"}
    p["printed"] = {"area_cm2": area, "power_mw": area * 3, "luts": None, "carries": None}
    p["printed-cnt"] = {"area_cm2": area / 7, "power_mw": area / 2, "luts": None, "carries": None}
    p["fpga-ice40"] = {"area_cm2": None, "power_mw": None, "luts": int(area * 10) + 3, "carries": 4}
    return p


def _row(name: str, topology: str, points: list[dict], *, published: dict, note: str = "",
         explore_s: float = 300.0) -> dict:
    from flows.bench.run import _budgets

    return {"name": name, "spec": f"splits/{name}", "note": note, "published": published, "topology": topology,
            "train": 300, "test": 100, "train_s": 41.2, "train_pow2_s": 88.9, "compile_s": 12.25, "emit_s": 0.031,
            "verify_s": 6.54, "synth_s": 5.1, "float_accuracy": 0.9, "explore_s": explore_s, "search_s": 200.4,
            "selection": {"samples": 60, "confidence": 0.9, "finest_budget": 0.01, "rule": "bound"},
            "evaluations": 4000, "points": points, "resynth_s": 30.6,
            "targets": {tg: _budgets(points, tg) for tg in TARGETS},
            "eval_speed": {"vectorized_per_s": 2.5e6, "loop_per_s": 1.1e4, "ratio": 227.3}, "ok": True}


def rows() -> list[dict]:
    """Three data sets: Cardio (in the previous run, with DATE'24 figures), Seeds (a footnote,
    one budget without a pick, a pick that lost more than its budget on test), one failed."""
    cardio = [point("exact", 0.90, 30.0, exact=True, test=0.89), point("a", 0.895, 4.0, bound=0.009, test=0.885),
              point("b", 0.88, 0.55, bound=0.02, test=0.80), point("c", 0.86, 0.2, bound=0.05),
              point("seed", 0.87, 3.0, bound=0.04), point("seed1", 0.85, 1.5, bound=0.06)]
    seeds = [point("exact", 0.93, 2.0, exact=True), point("s1", 0.92, 0.12345, bound=0.03, test=0.85)]
    return [_row("Cardio", "21-3-3", cardio, published={"exact_cm2": 33.4, "approx_1pct_cm2": 6.1,
                                                       "source": "", "date24": [0.873, 1.42]}, explore_s=156.0),
            _row("Seeds", "7-3-3", seeds, note="a data set of our own choosing",
                 published={"exact_cm2": None, "approx_1pct_cm2": 2.2, "source": "", "date24": None}),
            {"name": "Pendigits", "error": "RuntimeError: verification failed"}]


def meta() -> dict:
    return {"commit": "abc1234", "date": "2026-12-06", "machine": "x86_64, 2 CPUs, Python 3.11.7",
            "version": "0.1.0", "yosys": "Yosys 0.50", "verilator": "Verilator 5.036", "total_min": 123.4}


def _step(wall: float, peak: float = 200.0, **extra) -> dict:
    return {"wall_s": wall, "peak_mb": peak, "python_mb": peak, "tools_mb": 50.0, "memory": "VmHWM", **extra}


def _network(name: str, hidden: list[int], topology: str, connections: int, scale: float) -> dict:
    pts = [{"id": "exact", "exact": True, "validation_accuracy": 0.95, "test_accuracy": 0.94, "area_cm2": 120.0 * scale,
            "power_mw": 3.0 * scale, "cells": 900, "passed": True, "vectors": 360, "mismatches": 0},
           {"id": "p1", "exact": False, "validation_accuracy": 0.93, "test_accuracy": 0.925, "area_cm2": 12.5 * scale,
            "power_mw": 0.4 * scale, "cells": None, "passed": False, "vectors": 360, "mismatches": 2}]
    budgets = [{"max_loss": 0.01, "design": None},
               {"max_loss": 0.05, "design": "p1", "validation_accuracy": 0.93, "test_accuracy": 0.925,
                "area_cm2": 12.5 * scale, "area_reduction": 9.6}]
    return {"name": name, "hidden": hidden, "explore_settings": {},
            "train": _step(20.0 * scale, topology=topology, connections=connections, test_accuracy=0.94),
            "compile": _step(8.0 * scale, emit_s=0.1, verify_s=4.0 * scale, synth_s=3.0 * scale, synth_cached=False,
                             area_cm2=120.0 * scale, cells=900, vectors=360, passed=True),
            "explore": _step(60.0 * scale, search_s=40.0 * scale, realize_s=20.0 * scale, evaluations=1000,
                             designs=2, verified=True, points=pts, budgets=budgets)}


def scaling() -> dict:
    """A scaling run: two ladder rungs and a failed one, one digits row."""
    return {"ladder": [_network("Breast_Cancer", [4], "10-4-2", 48, 1.0),
                       _network("digits", [32, 16], "64-32-16-10", 2720, 30.0),
                       {"name": "Cardio", "hidden": [3], "error": "train of cardio_3 failed (exit 1): boom"}],
            "digits": [_network("digits", [16], "64-16-10", 1184, 12.0)],
            "ladder_s": 1800.0, "digits_s": 900.0, "total_s": 2700.0, "quick": False,
            "ladder_explore": {"population": 24, "generations": 20, "max_designs": 3}, "cpus": 2,
            "load": [1.5, 2.25], "via": "make bench"}
