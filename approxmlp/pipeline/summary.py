"""`explore`'s summary (``pareto.json``): every realized design's figures with their
intervals, and each budget's pick among them, with what it was picked on.

Apart from the flow because it is the one place the summary's layout is made: the flow
hands it the realized rows and the searches' results, the report module renders it.
"""

from __future__ import annotations

from pathlib import Path

from .. import __version__
from ..stats import REPORT_LEVEL, accuracy_interval, paired_loss
from .select import BUDGETS, Rule, most_accurate_within_power, smallest_within


def _metric(row: dict) -> tuple[str, float | None]:
    syn = row["synthesis"]
    if syn.get("area_cm2") is not None:
        return "area_cm2", syn["area_cm2"]
    return "luts", syn.get("luts")


#: The accuracy every choice is made on. Test accuracy is reported beside it, never used.
PICKED_ON = "validation_accuracy"


def _figures(row: dict, base: dict, rule: Rule) -> dict:
    """A realized design's accuracies with 95 % intervals, its paired losses against the
    exact design (``base``) on the same validation and test samples with 95 % intervals,
    and the pick rule's one-sided bound on its validation loss."""
    out = {}
    for part, key in (("validation", "val_correct"), ("test", "test_correct")):
        c = row[key]
        out[f"{part}_interval"] = list(accuracy_interval(int(c.sum()), c.size, REPORT_LEVEL))
        out[f"{part}_loss"] = paired_loss(base[key], c, REPORT_LEVEL).to_json()
    out["loss_bound"] = 0.0 if row is base else rule.bound(base["val_correct"], row["val_correct"])
    return out


def summarize(rows: list[dict], float_acc, results, front, opts, t_search: float, data,
               parts, seed_labels: list[str], rule: Rule, origins: list[str] | None = None) -> dict:
    """``results``: one search result per seed model; ``front``: the points made real (the
    searches' candidates re-scored on validation, see ``select.validated_front``), in the
    order of ``rows[1:]``; ``origins``: where each of them comes from (which search, or the
    faithful descent), in the same order."""
    base = rows[0]
    points = []
    for row in rows:
        syn = row["synthesis"]
        pickable = not row["id"].startswith("seed")  # the seed models as trained: shown, not picked
        fig = _figures(row, base, rule)
        if not pickable:
            fig["loss_bound"] = None
        points.append({"id": row["id"], "train_accuracy": row["train_accuracy"],
                       "validation_accuracy": row["validation_accuracy"], "test_accuracy": row["test_accuracy"],
                       **fig,
                       "rtl_accuracy": row["rtl_accuracy"], "estimated_area_um2": None,
                       "area_cm2": syn.get("area_cm2"), "power_mw": syn.get("power_mw"),
                       "luts": syn.get("luts"), "cells": syn.get("cell_count"),
                       "rtl": str(Path("designs") / row["id"] / "rtl" / "top.v"),
                       "verification": row["verification"], "formal": row["formal"],
                       "ir_sha256": row["ir"].digest,
                       "exact": row["id"] == "exact",
                       "picked_on": PICKED_ON if pickable and row["id"] != "exact" else None})
    for k in range(front.size):
        points[k + 1]["estimated_area_um2"] = float(front.area[k])
        points[k + 1]["estimated_power_mw"] = float(front.power[k])
        if origins is not None:
            points[k + 1]["origin"] = origins[k]
    metric, base_cost = _metric(base)
    base = points[0]
    verified = lambda p: p["verification"]["passed"]  # noqa: E731
    n_val = len(parts.val[1])
    finest = rule.finest(n_val)
    budgets = []
    for b in BUDGETS:
        best = smallest_within(points, b, lambda p: p[metric], verified)
        entry = {"max_loss": b, "design": best["id"] if best else None, "picked_on": PICKED_ON,
                 "confidence": rule.confidence, "resolvable": finest <= b + 1e-12,
                 "note": _budget_note(b, best, n_val, rule)}
        if best:
            entry.update(_pick_figures(best, base, metric, base_cost))
        budgets.append(entry)
    summary = {"approxmlp_version": __version__, "target": opts.target, "data": data.name,
               "metric": metric, "baseline": points[0], "float_accuracy": float_acc,
               "selection": {"picked_on": PICKED_ON, "validation": parts.validation,
                             "samples": {"train": len(parts.fit[1]), "validation": n_val,
                                         "test": len(parts.test[1])},
                             "rule": "the smallest verified design whose paired validation loss against the exact "
                                     f"design is within the budget with {rule.confidence:.0%} one-sided confidence "
                                     "(Tango's score bound)" if rule.confidence else
                                     "the smallest verified design whose validation loss (point estimate) is "
                                     "within the budget",
                             "confidence": rule.confidence, "finest_budget": finest,
                             "intervals": f"{REPORT_LEVEL:.0%} two-sided: Wilson for accuracies, Tango for paired "
                                          "losses against the exact design on the same samples",
                             "test": "scored once per realized design and reported; never used to choose",
                             "loss_budgets": "points of validation accuracy below the exact baseline's, paired"},
               "search": {"population": opts.population, "generations": opts.generations,
                          "multipliers": opts.multipliers, "max_loss": opts.max_loss,
                          "max_power_mw": opts.max_power_mw, "seed": opts.seed,
                          "evaluations": sum(r.evaluations for r in results),
                          "seed_model": str(opts.seed_models[0]) if opts.seed_models else None,
                          "seed_models": [str(p) for p in opts.seed_models],
                          "reference_train_accuracy": results[0].seed_accuracy, "seconds": round(t_search, 2),
                          "front_designs": front.non_dominated, "realized_designs": front.size,
                          "searches": [{"seed": label, "evaluations": r.evaluations, "front_designs": r.front.pop.size}
                                       for label, r in zip(seed_labels, results)],
                          "history": results[0].history},
               "points": points, "budgets": budgets, "formal": _formal_summary(points)}
    if opts.max_power_mw is not None:
        best = most_accurate_within_power(points, opts.max_power_mw, verified)
        summary["power_budget"] = {"max_power_mw": opts.max_power_mw, "design": best["id"] if best else None,
                                   "picked_on": PICKED_ON,
                                   **(_pick_figures(best, base, metric, base_cost) if best else {})}
    return summary


def _budget_note(budget: float, best: dict | None, n_val: int, rule: Rule) -> str:
    """What a budget line must say beside its pick: when the validation part is too small to
    certify the budget at all, and what was done about it."""
    if best is None or not best["exact"]:
        return ""
    finest = rule.finest(n_val)
    if finest > budget + 1e-12:
        return (f"{budget:.0%} of {n_val} validation samples is {budget * n_val:.2g} samples: finer than they can "
                f"certify at {rule.confidence:.0%} confidence for a design that agrees with the exact one (finest: "
                f"{finest:.1%}), and no design was better on enough of them, so the exact design is kept")
    return f"no smaller design is within {budget:.0%} with {rule.confidence:.0%} confidence: the exact design is kept"


def _formal_summary(points: list[dict]) -> dict | None:
    """How many realized designs each proof settled, for the report and the command line."""
    entries = [p["formal"] for p in points if p.get("formal")]
    if not entries:
        return None
    counts = {}
    for e in entries:
        for key in ("rtl_vs_reference", "netlist_vs_rtl"):
            word = e[key].split(":")[0].split(" within")[0]
            counts[word] = counts.get(word, 0) + 1
    text = ", ".join(f"{n} {w}" for w, n in sorted(counts.items()))
    return {"proofs": counts, "seconds": round(sum(e["seconds"] for e in entries), 1),
            "summary": f"{len(entries)} designs, 2 proofs each: {text}"}


def _pick_figures(p: dict, base: dict, metric: str, base_cost) -> dict:
    """What a pick line reports: the accuracies with their intervals (validation qualified it;
    test is beside it), the paired losses, cost, power and the reductions against the exact
    baseline."""
    return {"validation_accuracy": p["validation_accuracy"], "validation_interval": p["validation_interval"],
            "validation_loss": p["validation_loss"], "loss_bound": p["loss_bound"],
            "test_accuracy": p["test_accuracy"], "test_interval": p["test_interval"], "test_loss": p["test_loss"],
            metric: p[metric], "power_mw": p["power_mw"],
            "area_reduction": (base_cost / p[metric]) if p[metric] else None,
            "power_reduction": (base["power_mw"] / p["power_mw"]) if p.get("power_mw") else None}


