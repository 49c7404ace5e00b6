"""The pick rule at other confidence levels, replayed on a finished bench run.

    python -m flows.bench.rule_sweep bench-out            # the bench's work folder
    python -m flows.bench.rule_sweep bench-out --levels 0 0.8 0.9 0.95
    python -m flows.bench.rule_sweep bench-out/faithful2 --run explore-again   # a fronts run
    python -m flows.bench.rule_sweep --results flows/bench/results/valfraction-0.4.json  # committed rows

Why: the default ``--confidence`` trades test overshoots (a pick that loses more than its
budget on the test split) against reductions (a stricter bound sends more budgets to a
larger design, or to the exact one). Tango's bound on a paired loss depends only on the
validation counts (samples, where the design is worse, where it is better), which every
realized point of ``pareto.json`` keeps, so each budget's pick can be replayed at any level
without re-running the search: the realized designs are fixed, only the rule moves. Level
0 is the point estimate (the rule before the bound). The test split is only scored here,
as in the bench: it says what each rule *would have* promised, it chooses nothing.
``--results`` replays the raw rows a run commits beside BENCHMARKS.md (``results.json`` and
the like keep every realized design's counts too), so the sweep needs no work folder.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import numpy as np

from approxmlp.pipeline.select import smallest_within
from approxmlp.stats import paired_loss


def bound(loss: dict, level: float) -> float:
    """The one-sided upper bound at ``level`` on a paired loss ``{"n", "worse", "better"}``
    (level 0: the point estimate)."""
    n, worse, better = loss["n"], loss["worse"], loss["better"]
    if level == 0:
        return (worse - better) / n
    ref = np.ones(n, bool)
    des = np.ones(n, bool)
    ref[:better] = False                    # the design right where the exact one is wrong
    des[better:better + worse] = False      # and wrong where it is right
    return paired_loss(ref, des, level=level, sided=1).high


def replay(pareto: dict, level: float) -> list[dict]:
    """Per budget of ``pareto`` (a ``pareto.json``): the pick at ``level``, its area
    reduction and its test loss. The exact design is the fallback, as in explore."""
    exact = next(p for p in pareto["points"] if p["id"] == "exact")
    pts = []
    for p in pareto["points"]:
        # the seed models as trained are shown for comparison, never picked (no bound)
        if p.get("validation_loss") and p.get("area_cm2") is not None and p.get("loss_bound") is not None:
            pts.append(dict(p, replay_bound=bound(p["validation_loss"], level)))
    out = []
    for b in pareto["budgets"]:
        pick = smallest_within(pts, b["max_loss"], cost=lambda p: p["area_cm2"],
                               verified=lambda p: bool((p.get("verification") or {}).get("passed")),
                               bound_key="replay_bound") or exact
        test = (pick.get("test_loss") or {}).get("loss", 0.0)
        # a design that cut every connection is a constant: no cells at all
        reduction = exact["area_cm2"] / pick["area_cm2"] if pick["area_cm2"] else float("inf")
        out.append({"budget": b["max_loss"], "design": pick["id"], "reduction": reduction,
                    "test_loss": test, "over": test > b["max_loss"] + 1e-12})
    return out


def as_pareto(row: dict) -> dict:
    """A bench results row (``flows/bench/run.py``: one data set, its realized designs with
    their EGFET figures and validation counts) in the shape :func:`replay` reads."""
    from approxmlp.pipeline.select import BUDGETS

    points = [{"id": p["id"], "area_cm2": p["printed"]["area_cm2"], "verification": {"passed": p["verified"]},
               **{k: p.get(k) for k in ("validation_loss", "loss_bound", "test_loss")}} for p in row["points"]]
    return {"points": points, "budgets": [{"max_loss": b} for b in BUDGETS]}


def sweep(folder: Path, levels: list[float], run: str = "explore") -> list[dict]:
    """One summary per level over every ``<set>/<run>/pareto.json`` under ``folder`` (``run``:
    ``explore`` for ``make bench``, ``explore-again`` for ``python -m flows.bench.fronts``)."""
    runs = {p.parents[1].name: json.loads(p.read_text()) for p in sorted(Path(folder).glob(f"*/{run}/pareto.json"))}
    if not runs:
        raise SystemExit(f"no */{run}/pareto.json under {folder}: run `make bench` (or pass its --out folder)")
    return sweep_runs(runs, levels)


def sweep_results(path: Path, levels: list[float]) -> list[dict]:
    """The sweep over a committed results file's rows (the sets that ran)."""
    rows = json.loads(Path(path).read_text())
    return sweep_runs({r["name"]: as_pareto(r) for r in rows if "points" in r}, levels)


def sweep_runs(runs: dict[str, dict], levels: list[float]) -> list[dict]:
    """One summary per level over ``runs`` (set name -> its ``pareto.json``)."""
    rows = []
    for level in levels:
        picks = [(name, r) for name, p in runs.items() for r in replay(p, level)]
        by_budget: dict[float, list[float]] = {}
        for _, r in picks:
            by_budget.setdefault(r["budget"], []).append(r["reduction"])
        rows.append({"level": level, "sets": len(runs), "picks": len(picks),
                     "over": sum(r["over"] for _, r in picks),
                     "worst_excess": max(r["test_loss"] - r["budget"] for _, r in picks),
                     "medians": {b: statistics.median(v) for b, v in sorted(by_budget.items())}})
    return rows


def markdown(rows: list[dict]) -> str:
    """The sweep as a Markdown table."""
    budgets = list(rows[0]["medians"])
    head = ("| confidence | picks over budget on test | worst excess (points) | "
            + " | ".join(f"median reduction {b:.0%}" for b in budgets) + " |")
    lines = [head, "|" + "---|" * (3 + len(budgets))]
    for r in rows:
        name = "point estimate" if r["level"] == 0 else f"{100 * r['level']:g}%"
        lines.append(f"| {name} | {r['over']} of {r['picks']} | {100 * r['worst_excess']:+.1f} | "
                     + " | ".join(f"{r['medians'][b]:.1f}x" for b in budgets) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path, nargs="?", help="The bench's work folder (its --out, default bench-out/).")
    ap.add_argument("--results", type=Path, default=None, metavar="FILE",
                    help="Replay a committed results file instead (e.g. flows/bench/results/results.json).")
    ap.add_argument("--levels", type=float, nargs="+", default=[0.0, 0.7, 0.8, 0.9, 0.95])
    ap.add_argument("--run", default="explore", help="the explore folder of each set: explore (make bench) or "
                    "explore-again (python -m flows.bench.fronts)")
    a = ap.parse_args(argv)
    if (a.folder is None) == (a.results is None):
        ap.error("give the bench's work folder or --results FILE (one of them)")
    rows = sweep_results(a.results, a.levels) if a.results else sweep(a.folder, a.levels, a.run)
    print(markdown(rows), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
