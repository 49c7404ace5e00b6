"""The fronts again, on the same trained models: what an emitter or search change does to the picks.

    python -m flows.bench.fronts [--out bench-out] [--only Pendigits ...] [--previous flows/bench/results/results.json]
                                 [--searches bench-out/earlier]

``make bench`` trains every model (QAT, about half of its two hours) before it explores. A
change of the arithmetic (shared subexpressions) or of the search leaves those models as
they are, so this step re-runs only `explore`, with the bench's own settings
(:func:`flows.bench.run.explore_options`), on the models of a finished run
(``OUT/<set>/model*.pt``), into ``OUT/<set>/explore-again``, and compares set by set with
the run's committed figures (``--previous``): per EGFET budget, the pick's area, validation
and test accuracy, before and after; the explore wall time; and on Pendigits the most
accurate verified design under 6.5 cm². Everything is chosen on validation, as explore
chooses; test figures are reported, never used. Writes ``OUT/fronts.json`` and prints the
Markdown section.

``--searches DIR`` takes the searches of an earlier run of this step (``DIR/<set>/explore-again``'s
checkpoints) instead of running them again: what follows them (the faithful descent,
selection, realization) is today's code, the searches are that run's, bit for bit (explore
resumes a finished search from its last checkpoint). For a change of the selection alone, in
minutes rather than an hour; the explore times it reports are then not those of a search.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import time
from pathlib import Path

from flows.bench.common import REPO, area, keep_standalone, log
from flows.bench.report import most_accurate_under
from flows.bench.run import _budgets, explore_options, points_of
from flows.bench.suite import BENCHES

#: The Pendigits criterion of issue 22: the most accurate verified design below this area.
PENDIGITS_CAP_CM2 = 6.5


def run_set(name: str, out: Path, shared: Path, seed: int = 0, searches: Path | None = None,
            generations: int | None = None) -> dict:
    """Explore one set's stored models again; its EGFET picks and timings. ``searches``: an
    earlier run's folder whose finished searches are resumed instead of run again."""
    from approxmlp.pipeline.explore import run_explore

    b = next(b for b in BENCHES if b.name == name)
    folder = out / name
    spec = str(shared / "datasets" / b.spec)
    opts = explore_options(folder, quick=False, seed=seed)
    if generations is not None:
        opts = dataclasses.replace(opts, generations=generations)
    if searches is not None:
        done = sorted((searches / name / "explore-again").glob("checkpoint*.npz"))
        if not done:
            raise SystemExit(f"--searches: no checkpoints in {searches / name / 'explore-again'}")
        (folder / "explore-again").mkdir(parents=True, exist_ok=False)
        for f in done:
            shutil.copy2(f, folder / "explore-again" / f.name)
        opts = dataclasses.replace(opts, resume=True)
    log(f"{name}: explore again (bench settings, models of the finished run"
        + (f", searches of {searches})" if searches is not None else ")"))
    t = time.perf_counter()
    summary = run_explore(folder / "model.pt", spec, folder / "explore-again", opts, progress=lambda m: None)
    points = points_of(summary)
    return {"name": name, "explore_s": round(time.perf_counter() - t, 1), "search_s": summary["search"]["seconds"],
            "points": points, "printed": _budgets(points, "printed"),
            "verified": sum(p["verified"] for p in points), "designs": len(points)}


def compare(now: dict, before: dict) -> dict:
    """Per budget, the previous and the new pick; Pendigits' best design under the cap."""
    rows = []
    for b_new, b_old in zip(now["printed"]["budgets"], before["targets"]["printed"]["budgets"]):
        rows.append({"max_loss": b_new["max_loss"],
                     **{f"{k}_{when}": d.get(k) for when, d in (("before", b_old), ("now", b_new))
                        for k in ("design", "area_cm2", "validation_accuracy", "accuracy", "origin")}})
    out = {"name": now["name"], "budgets": rows,
           "exact_before": before["targets"]["printed"]["exact"]["area_cm2"],
           "exact_now": now["printed"]["exact"]["area_cm2"],
           "exact_test_before": before["targets"]["printed"]["exact"]["accuracy"],
           "exact_test_now": now["printed"]["exact"]["accuracy"],
           "explore_s_before": before.get("explore_s"), "explore_s_now": now["explore_s"],
           "verified": f"{now['verified']}/{now['designs']}"}
    if now["name"] == "Pendigits":
        for when, pts in (("before", before["points"]), ("now", now["points"])):
            p = most_accurate_under(pts, PENDIGITS_CAP_CM2)
            out[f"under_cap_{when}"] = None if p is None else {
                "design": p["id"], "area_cm2": p["printed"]["area_cm2"],
                "validation_accuracy": p["validation_accuracy"], "test_accuracy": p["test_accuracy"]}
    return out


def _pct(v) -> str:
    return "—" if v is None else f"{100 * v:.1f}"


def markdown(res: dict) -> list[str]:
    L = ["## Fronts explored again", "",
         "The bench's models explored again after an arithmetic change, with the same settings; per "
         "EGFET budget, the pick (smallest verified design within budget, chosen on validation) before "
         "and now: area cm², validation / test accuracy %." + (f" {res['note']}" if res.get("note") else "")
         + (" The searches are those of an earlier run of this step, resumed from its checkpoints "
            f"(`--searches {res['searches_of']}`): *explore s now* counts the faithful descent, the "
            "selection and the realization only." if res.get("searches_of") else "")
         + (f" Each search ran {res['generations']} generations." if res.get("generations") else ""), "",
         "| set | budget | before: design, cm², val / test | now: design, cm², val / test | area now/before | "
         "exact cm² before / now | explore s before / now |", "|---|---|---|---|---|---|---|"]
    for s in res["sets"]:
        for k, b in enumerate(s["budgets"]):
            ratio = (b["area_cm2_now"] / b["area_cm2_before"]) if b["area_cm2_before"] and b["area_cm2_now"] else None
            L.append(f"| {s['name'] if k == 0 else ''} | {100 * b['max_loss']:.0f}% | {b['design_before']}, "
                     f"{area(b['area_cm2_before'])}, {_pct(b['validation_accuracy_before'])} / "
                     f"{_pct(b['accuracy_before'])} | {b['design_now']}, {area(b['area_cm2_now'])}, "
                     f"{_pct(b['validation_accuracy_now'])} / {_pct(b['accuracy_now'])} | "
                     f"{'—' if ratio is None else f'{ratio:.2f}'} | "
                     + (f"{area(s['exact_before'])} / {area(s['exact_now'])} | "
                        f"{s['explore_s_before']:.0f} / {s['explore_s_now']:.0f}" if k == 0 else " | ") + " |")
    for s in res["sets"]:
        if "under_cap_now" in s:
            L += ["", f"{s['name']}: the most accurate verified design under {PENDIGITS_CAP_CM2} cm² (by validation): "
                  + "; ".join(f"{when} {d['design']} at {d['area_cm2']:.2f} cm², validation "
                              f"{_pct(d['validation_accuracy'])}%, test {_pct(d['test_accuracy'])}%"
                              if d else f"{when}: none" for when, d in (("before", s["under_cap_before"]),
                                                                      ("now", s["under_cap_now"])))
                  + "."]
    return L + [""] + promise(res)


def promise(res: dict) -> list[str]:
    """Do the picks keep their promise (issue 18)? Before and now: how many picks lose more
    than their budget on test (against the exact design's test accuracy), the largest excess,
    the median area reduction per budget over the sets, and how many picks the faithful
    descent made."""
    import statistics

    L = ["| run | picks over budget on test | largest excess (points) | median reduction 1% / 2% / 5% | "
         "picks from the faithful descent |", "|---|---|---|---|---|"]
    for when in ("before", "now"):
        over, excess, red, faithful, n = 0, 0.0, {}, 0, 0
        for s in res["sets"]:
            exact_area, exact_test = s[f"exact_{when}"], s.get(f"exact_test_{when}")
            for b in s["budgets"]:
                n += 1
                red.setdefault(b["max_loss"], []).append(exact_area / b[f"area_cm2_{when}"])
                faithful += str(b.get(f"origin_{when}") or "").startswith("faithful")
                if exact_test is not None and b[f"accuracy_{when}"] is not None:
                    over_by = exact_test - b[f"accuracy_{when}"] - b["max_loss"]
                    if over_by > 1e-12:
                        over += 1
                        excess = max(excess, 100 * over_by)
        med = " / ".join(f"{statistics.median(v):.1f}x" for _, v in sorted(red.items()))
        L.append(f"| {when} | {over} of {n} | {excess:+.1f} | {med} | {faithful if when == 'now' else '—'} |")
    return L + [""]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=REPO / "bench-out")
    ap.add_argument("--only", action="append", default=None, metavar="NAME")
    ap.add_argument("--previous", type=Path, default=REPO / "flows" / "bench" / "results" / "results.json")
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    ap.add_argument("--note", default="", help="a sentence for the section (e.g. how loaded the machine was)")
    ap.add_argument("--searches", type=Path, default=None, metavar="DIR",
                    help="resume the finished searches of an earlier run of this step instead of running them")
    ap.add_argument("--generations", type=int, default=None,
                    help="explore's --generations for this run (default: the bench's, explore's default)")
    a = ap.parse_args(argv)
    before = {r["name"]: r for r in json.loads(a.previous.read_text())}
    names = a.only or [b.name for b in BENCHES]
    sets = []
    for name in names:
        now = run_set(name, a.out, a.shared, searches=a.searches, generations=a.generations)
        sets.append(compare(now, before[name]))
        (a.out / name / "explore-again" / "fronts.json").write_text(json.dumps(now, indent=1, default=str) + "\n")
        log(f"{name}: done in {now['explore_s']:.0f} s")
    keep_standalone(a.out, "fronts.json", {"sets": sets, "note": a.note,
                                           "searches_of": None if a.searches is None else str(a.searches),
                                           "generations": a.generations}, "python -m flows.bench.fronts", markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
