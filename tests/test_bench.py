"""The benchmark runner behind `make bench`: its reports rendered from a fabricated run
(golden text), its modules' imports, and end to end on one small data set (quick settings)."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from flows.bench import report
from flows.bench import run as bench

from . import bench_data
from .conftest import SHARED, needs_shared

GOLDEN = Path(__file__).parent / "golden" / "bench"
BENCH = Path(bench.__file__).parent


def _old_scaling_run() -> dict:
    """A scaling run on its own, stopped half-way, measured before peak memory read VmHWM."""
    res = bench_data.scaling() | {"via": "python -m flows.bench.scaling", "commit": "bbb2222", "date": "2026-12-05"}
    del res["total_s"], res["load"]
    for row in res["ladder"][:2]:
        del row["train"]["memory"]
    return res


def rendered() -> dict[str, str]:
    """The reports of the fabricated run (:mod:`tests.bench_data`), by file name in ``golden/bench``."""
    from flows.bench import scaling

    rows, meta = bench_data.rows(), bench_data.meta() | {"png": "docs/benchmarks.png"}
    return {"BENCHMARKS.md": report.markdown(rows, meta).rstrip("\n") + "\n\n"
                             + "\n".join(scaling.markdown(bench_data.scaling())),
            "headline.md": report.headline(rows, meta) + "\n",
            "scaling-partial.md": "\n".join(scaling.markdown(_old_scaling_run())) + "\n"}


@pytest.mark.parametrize("name", ["BENCHMARKS.md", "headline.md", "scaling-partial.md"])
def test_reports_of_a_fabricated_run_match_the_golden_text(name):
    """Any change to BENCHMARKS.md's or the README's wording must be deliberate: regenerate with
    ``python -m tests.test_bench``."""
    assert rendered()[name] == (GOLDEN / name).read_text()


def test_render_writes_the_reports_from_the_kept_numbers_alone(tmp_path):
    """``--render``: results.json, meta.json and scaling/scaling.json in, the golden report out
    (plus the sentence saying it was rendered), and the README's headline block replaced."""
    out = tmp_path / "work"
    (out / "scaling").mkdir(parents=True)
    (out / "results.json").write_text(json.dumps(bench_data.rows()))
    (out / "meta.json").write_text(json.dumps(bench_data.meta()))
    (out / "scaling" / "scaling.json").write_text(json.dumps(bench_data.scaling()))
    md, png, readme = tmp_path / "BENCHMARKS.md", tmp_path / "docs" / "benchmarks.png", tmp_path / "README.md"
    readme.write_text(f"# x\n\n{report.HEADLINE_BEGIN}\nold\n{report.HEADLINE_END}\n\nrest\n")
    assert bench.main(["--render", "--out", str(out), "--md", str(md), "--png", str(png), "--readme", str(readme),
                       "--results", str(tmp_path / "results")]) == 0
    text = md.read_text()
    said = re.search(r" This file was written from that run's kept results by `--render` at commit [^.]+\.", text)
    assert said and text.replace(said.group(0), "") == (GOLDEN / "BENCHMARKS.md").read_text()
    assert readme.read_text() == (f"# x\n\n{report.HEADLINE_BEGIN}\n{(GOLDEN / 'headline.md').read_text()}"
                                  f"{report.HEADLINE_END}\n\nrest\n")
    assert png.stat().st_size > 10_000
    assert json.loads((tmp_path / "results" / "results.json").read_text()) == bench_data.rows()


def _bench_imports(path: Path) -> set[str]:
    """The flows.bench modules ``path`` imports, at the top or inside a function."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module == "flows.bench":
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("flows.bench."):
            names.add(node.module.split(".")[2])
        elif isinstance(node, ast.Import):
            names |= {a.name.split(".")[2] for a in node.names if a.name.startswith("flows.bench.")}
    return names


def test_bench_modules_import_each_other_without_a_circle():
    graph = {p.stem: _bench_imports(p) - {p.stem} for p in BENCH.glob("*.py") if p.stem != "__init__"}
    assert graph["common"] == set(), "flows/bench/common.py is the shared base: it imports no other bench module"
    done: set[str] = set()

    def visit(m: str, path: tuple[str, ...]) -> None:
        if m in path:
            pytest.fail("import circle: " + " -> ".join(path[path.index(m):] + (m,)))
        if m not in done:
            for n in sorted(graph.get(m, ())):
                visit(n, path + (m,))
            done.add(m)

    for m in sorted(graph):
        visit(m, ())


def test_bench_modules_define_repo_and_log_once():
    for p in BENCH.glob("*.py"):
        tree = ast.parse(p.read_text())
        defs = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
        defs |= {t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}
        if p.stem != "common":
            assert not defs & {"REPO", "log", "commit"}, f"{p.name} defines {defs & {'REPO', 'log', 'commit'}}"


def test_the_previous_runs_figures_are_data():
    """history.json has a row per data set it compares, and the table renders from it."""
    from flows.bench.common import history
    from flows.bench.suite import BENCHES

    previous = history()["previous_run"]
    assert set(previous["sets"]) <= {b.name for b in BENCHES}
    assert all(set(v) == {"reduction_1pct", "reduction_5pct", "explore_s"} for v in previous["sets"].values())
    table = "\n".join(report._selection_change(bench_data.rows()))
    assert previous["note"] in table and "| Cardio | 108.7x | 7.5x | 814.3x | 150.0x |" in table


def test_unknown_data_set_is_refused(capsys):
    with pytest.raises(SystemExit) as exc:
        bench.main(["--only", "Nope"])
    assert exc.value.code == 2
    assert "unknown data set Nope" in capsys.readouterr().err


def test_budget_selection_takes_the_smallest_verified_design_certified_within_the_loss():
    """On the loss bound (explore's rule); the point estimate and test accuracy never decide."""
    points = [bench_data.point("exact", 0.90, 10.0, exact=True), bench_data.point("a", 0.895, 4.0, bound=0.009), bench_data.point("b", 0.88, 2.0, bound=0.02),
              bench_data.point("c", 0.86, 1.0, bound=0.05), bench_data.point("d", 0.89, 0.5, bound=0.0, verified=False),
              bench_data.point("e", 0.70, 0.25, bound=0.3, test=0.99),  # would win every budget if test accuracy chose
              bench_data.point("f", 0.90, 0.6, bound=0.051)]  # no loss on its point estimate, but not certified within 5%
    got = bench._budgets(points, "printed")
    assert [e["design"] for e in got["budgets"]] == ["a", "b", "c"]
    assert got["budgets"][1]["accuracy"] == 0.88 and got["budgets"][1]["validation_accuracy"] == 0.88
    assert got["budgets"][1]["test_interval"] == [0.84, 0.9] and got["budgets"][1]["loss_bound"] == 0.02
    assert got["budgets"][0]["reduction"] == pytest.approx(2.5)
    assert got["budgets"][2]["power_reduction"] == pytest.approx(10.0)
    # nothing certified: the exact design is the pick, and the table says how sure each figure is
    alone = bench._budgets([points[0], bench_data.point("g", 0.93, 1.0, bound=0.2)], "printed")
    assert [e["design"] for e in alone["budgets"]] == ["exact"] * 3


def test_half_the_date24_area_picks_on_validation_and_reports_test():
    points = [bench_data.point("exact", 0.95, 40.0, exact=True, test=0.94), bench_data.point("a", 0.93, 6.4, bound=0.05, test=0.90),
              bench_data.point("b", 0.92, 6.0, bound=0.06, test=0.99), bench_data.point("c", 0.96, 6.45, bound=0.0, verified=False, test=0.96),
              bench_data.point("d", 0.97, 6.6, bound=0.0, test=0.97)]
    assert report.most_accurate_under(points, 6.5)["id"] == "a"   # b's better test accuracy never decides
    assert report.most_accurate_under(points, 5.0) is None
    row = {"name": "Pendigits", "published": {"date24": (0.901, 13.0)}, "points": points, "explore_s": 600.0,
           "targets": {"printed": bench._budgets(points, "printed")}}
    text = "\n".join(report._date24_section([row, {"name": "Seeds", "published": {}, "points": []}]))
    line = next(x for x in text.splitlines() if x.startswith("| Pendigits"))
    assert "a, 0.930 / 0.900, 6.4" in line and "(≥ DATE'24)" not in line and "| 600 |" in line
    assert "Seeds" not in text


@pytest.mark.slow
@pytest.mark.sim
@pytest.mark.synth
@needs_shared(SHARED / "datasets" / "seeds")
def test_quick_bench_writes_the_report_and_the_plot(tmp_path):
    md, png, readme = tmp_path / "BENCHMARKS.md", tmp_path / "fronts.png", tmp_path / "README.md"
    readme.write_text(f"# x\n\n{report.HEADLINE_BEGIN}\nold\n{report.HEADLINE_END}\n\nrest\n")
    code = bench.main(["--only", "Seeds", "--quick", "--out", str(tmp_path / "work"), "--md", str(md),
                       "--png", str(png), "--readme", str(readme), "--results", str(tmp_path / "results")])
    assert code == 0
    rows = json.loads((tmp_path / "work" / "results.json").read_text())
    assert [r["name"] for r in rows] == ["Seeds"]
    row = rows[0]
    assert row["topology"] == "7-3-3" and all(p["verified"] for p in row["points"])
    for target in bench.TARGETS:
        exact = row["targets"][target]["exact"]
        assert (exact["luts"] if target.startswith("fpga") else exact["area_cm2"]) > 0
    text = md.read_text()
    assert "| Seeds | 7-3-3 |" in text and "fronts.png" in text and "## Tool speed" in text
    # every design proven (RTL = reference, netlist = RTL), counted in a section of its own
    proved = json.loads((tmp_path / "work" / "proofs.json").read_text())["sets"]["Seeds"]["designs"]
    assert len(proved) == len(row["points"]) and all(d[k]["status"] == "proven" for d in proved
                                                     for k in ("rtl_vs_reference", "netlist_vs_rtl"))
    assert "## Formal proofs" in text and f"| Seeds | {len(proved)} |" in text
    # the exact model with and without shared subexpressions, by the same flows
    shared = json.loads((tmp_path / "work" / "sharing.json").read_text())["rows"]
    assert [r["set"] for r in shared] == ["Seeds"] and shared[0]["lint"] == 0
    assert shared[0]["proof"]["rtl_vs_reference"] == "proven" == shared[0]["proof"]["netlist_vs_rtl"]
    assert "## Shared subexpressions" in text and "| Seeds | 7-3-3 |" in text.split("## Shared subexpressions")[1]
    # the peer step: da4ml on the same exact model (EGFET only when quick), or why not
    import importlib.util

    if importlib.util.find_spec("da4ml") is None:  # make bench installs it; make test does not
        assert "## Peer: da4ml\n\nNot run: da4ml is not installed" in text
    else:
        peer_rows = json.loads((tmp_path / "work" / "peer.json").read_text())["rows"]
        assert [r["set"] for r in peer_rows] == ["Seeds"] and peer_rows[0]["da4ml"]["printed"] > 0
        assert all(peer_rows[0]["verify"][side]["mismatches"] == 0 for side in ("approxmlp", "da4ml"))
        assert "## Peer: da4ml" in text and "| Seeds 7-3-3 |" in text.split("## Peer: da4ml")[1]
    assert png.stat().st_size > 10_000
    head = readme.read_text()
    assert "old" not in head and "| Seeds 7-3-3 |" in head and head.endswith("\nrest\n")
    # --render writes the same report from the run's kept numbers and provenance, running nothing
    md.write_text("stale")
    assert bench.main(["--render", "--out", str(tmp_path / "work"), "--md", str(md), "--png", str(png),
                       "--readme", str(readme), "--results", str(tmp_path / "results")]) == 0
    again = md.read_text()
    said = re.search(r" This file was written from that run's kept results by `--render` at commit [^.]+\.", again)
    assert said and again.replace(said.group(0), "") == text and readme.read_text() == head
    assert bench.main(["--render", "--out", str(tmp_path / "nothing-here")]) == 2


def test_scaling_fits_the_growth_exponent():
    from flows.bench.scaling import LADDER, fit_exponent

    assert fit_exponent([10, 100, 1000], [2.0, 20.0, 200.0]) == pytest.approx(1.0)
    assert fit_exponent([50, 3000], [1.0, 3600.0]) == pytest.approx(2.0, rel=1e-3)
    assert fit_exponent([100], [1.0]) is None and fit_exponent([10, 20], [None, 3.0]) is None
    # the ladder spans ~50 to ~3,000 connections, with one and two hidden layers
    sizes = {"Breast_Cancer": (10, 2), "Cardio": (21, 3), "Pendigits": (16, 10), "digits": (64, 10)}
    conns = []
    for r in LADDER:
        n_in, n_out = sizes[r.name]
        widths = (n_in, *r.hidden, n_out)
        conns.append(sum(a * b for a, b in zip(widths, widths[1:])))
    assert min(conns) < 60 and max(conns) > 2500 and {len(r.hidden) for r in LADDER} == {1, 2}


@pytest.mark.slow
@pytest.mark.sim
@pytest.mark.synth
@needs_shared(SHARED / "datasets" / "splits")
def test_quick_scaling_run_measures_every_step(tmp_path):
    from flows.bench import scaling

    lines, res = scaling.section(SHARED, tmp_path, quick=True)
    assert scaling.ok(res), res
    for row in res["ladder"] + res["digits"]:
        for step in ("train", "explore", "compile"):
            assert row[step]["wall_s"] > 0 and row[step]["peak_mb"] > 50
        assert row["explore"]["verified"] and row["compile"]["passed"]
    text = "\n".join(lines)
    assert "| Breast_Cancer 10-4-2 | 48 |" in text and "| synth |" in text and "### digits" in text


def test_a_step_reports_its_own_peak_memory_not_its_parents():
    """The scaling table's memory column: a small child of a big process is small. (With
    ru_maxrss every step under `make bench` showed the bench process's 745 MB.)"""
    import subprocess
    import sys

    ballast = bytearray(400 << 20)  # this process: 400 MB more, touched
    ballast[::4096] = b"x" * len(ballast[::4096])
    code = "from flows.bench.scaling import _peak_mb; print(_peak_mb()['python_mb'])"
    child = float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                 cwd=Path(__file__).resolve().parents[1]).stdout)
    old = ("import resource; from flows.bench import scaling; "
           "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)")
    inflated = float(subprocess.run([sys.executable, "-c", old], capture_output=True, text=True, check=True,
                                    cwd=Path(__file__).resolve().parents[1]).stdout)
    del ballast
    assert child < 300, child
    if inflated < 400:  # then this kernel does not show the bug, and the test could not catch it
        pytest.skip(f"ru_maxrss does not inherit the parent's size here ({inflated:.0f} MB)")


def test_a_scaling_section_run_on_its_own_says_so_in_the_header_and_the_section(tmp_path):
    """--render of a run whose scaling.json came from `python -m flows.bench.scaling` later
    names that commit: the file must not claim every number is from the one make bench run."""
    from flows.bench import scaling

    meta = {"date": "2026-12-06", "machine": "m", "version": "0.1.0", "commit": "aaa1111", "yosys": "Yosys 0.70",
            "verilator": "Verilator 5.048", "total_min": 90.0, "png": "fronts.png"}
    text = report.markdown([], meta | {"scaling_rerun": "bbb2222"})
    assert "except the *published* columns and the scaling section, re-run on its own at commit bbb2222" in text
    assert "re-run on its own" not in report.markdown([], meta)
    standalone = scaling.markdown({"via": "python -m flows.bench.scaling", "commit": "bbb2222", "date": "2026-12-06"})
    assert "From `python -m flows.bench.scaling` at commit bbb2222 on 2026-12-06" in "\n".join(standalone)
    assert " at commit " not in "\n".join(scaling.markdown({"via": "make bench"}))


def test_a_scaling_network_run_again_synthesizes_again(tmp_path, monkeypatch):
    """A network trained afresh starts with an empty synthesis cache: an earlier run's netlist
    of the same (deterministic) design would make its compile and synth times a lookup."""
    from flows.bench import scaling

    out = tmp_path / "net"
    (out / "synth-cache").mkdir(parents=True)
    (out / "synth-cache" / "netlist-of-an-earlier-run").write_text("stale")
    seen = []

    def step(job):
        seen.append((job["kind"], sorted(p.name for p in Path(job["cache"]).glob("*"))))
        return {"wall_s": 1.0, "search_s": 1.0, "realize_s": 1.0}

    monkeypatch.setattr(scaling, "run_step", step)
    scaling.run_network(scaling.Rung("digits", "digits", (3,)), tmp_path, out, explore={}, train={}, seed=0)
    assert seen == [("train", []), ("compile", []), ("explore", [])]


if __name__ == "__main__":  # regenerate the golden reports after a deliberate change of wording
    for name, text in rendered().items():
        (GOLDEN / name).write_text(text)


def test_rule_sweep_replays_the_pick_rule_at_other_levels():
    """A design that clears 1% on its point estimate (1 of 100 validation samples worse)
    but not with 90% confidence: the point-estimate replay picks it, the 90% one keeps the
    exact design; a design 1 worse and 1 better clears 2% at 0 and 90% alike."""
    from flows.bench.rule_sweep import bound, markdown, replay

    def point(ident, area, worse, better, test_loss):
        return {"id": ident, "area_cm2": area, "verification": {"passed": True}, "loss_bound": 0.0,
                "validation_loss": {"n": 100, "worse": worse, "better": better},
                "test_loss": {"loss": test_loss}}

    pareto = {"points": [point("exact", 10.0, 0, 0, 0.0), point("p00", 1.0, 1, 0, 0.03),
                         point("p01", 2.0, 1, 1, 0.0)],
              "budgets": [{"max_loss": 0.01}, {"max_loss": 0.05}]}
    assert bound(pareto["points"][1]["validation_loss"], 0) == 0.01
    assert bound(pareto["points"][1]["validation_loss"], 0.9) > 0.03
    loose = replay(pareto, 0.0)
    assert [r["design"] for r in loose] == ["p00", "p00"] and loose[0]["over"] and loose[0]["reduction"] == 10.0
    strict = replay(pareto, 0.9)
    assert strict[0]["design"] == "exact" and not strict[0]["over"]
    assert strict[1]["design"] == "p00" and strict[1]["test_loss"] == 0.03 and not strict[1]["over"]
    rows = [{"level": 0.9, "over": 0, "picks": 2, "worst_excess": -0.01, "medians": {0.01: 1.0, 0.05: 10.0}}]
    assert "| 90% | 0 of 2 | -1.0 | 1.0x | 10.0x |" in markdown(rows)


def test_rule_sweep_replays_the_committed_results_to_the_bench_picks():
    """The raw rows committed beside BENCHMARKS.md replay, at explore's default confidence, to
    the very picks the bench made (so the README's sweeps can be rechecked without a work
    folder); a design with no cells (every connection cut) is an infinite reduction."""
    import json

    from approxmlp.pipeline.explore import ExploreOptions
    from flows.bench.rule_sweep import as_pareto, replay, sweep_results

    path = bench.REPO / "flows" / "bench" / "results" / "results.json"
    rows = [r for r in json.loads(path.read_text()) if "points" in r]
    assert len(rows) == 9
    for row in rows:
        got = [r["design"] for r in replay(as_pareto(row), ExploreOptions().confidence)]
        want = [b["design"] or "exact" for b in row["targets"]["printed"]["budgets"]]
        assert got == want, row["name"]
    (level,) = sweep_results(path, [ExploreOptions().confidence])
    over = sum(b["design"] not in (None, "exact") and b["test_loss"] > b["max_loss"]
               for row in rows for b in row["targets"]["printed"]["budgets"])
    assert level["picks"] == 27 and level["over"] == over
    constant = {"points": [{"id": "exact", "area_cm2": 4.0, "verification": {"passed": True}, "loss_bound": 0.0,
                            "validation_loss": {"n": 500, "worse": 0, "better": 0}},
                           {"id": "p00", "area_cm2": 0.0, "verification": {"passed": True}, "loss_bound": 0.0,
                            "validation_loss": {"n": 500, "worse": 0, "better": 0}, "test_loss": {"loss": 0.0}}],
                "budgets": [{"max_loss": 0.05}]}
    assert replay(constant, 0.9)[0]["reduction"] == float("inf")


@pytest.mark.skipif(not (bench.REPO / "bench-out").is_dir(), reason="no bench-out/ (run make bench)")
def test_rule_sweep_at_the_default_level_gives_the_bench_picks():
    """Replayed at explore's default confidence, every budget gets the design explore picked."""
    import json

    from approxmlp.pipeline.explore import ExploreOptions
    from flows.bench.rule_sweep import replay

    for path in sorted((bench.REPO / "bench-out").glob("*/explore/pareto.json")):
        pareto = json.loads(path.read_text())
        got = [r["design"] for r in replay(pareto, ExploreOptions().confidence)]
        assert got == [b["design"] for b in pareto["budgets"]], path


def test_the_proofs_section_counts_every_answer():
    """A run's proof counts as BENCHMARKS.md shows them: a timeout and a counterexample are
    named, never folded into "proven"; a section proved on its own names its commit."""
    from flows.bench import proofs

    def d(name, a, b, conns=10):
        return {"design": name, "connections": conns, "rtl_vs_reference": {"status": a, "seconds": 2.0, "text": a},
                "netlist_vs_rtl": {"status": b, "seconds": 3.0, "text": b}}

    res = {"timeout_s": 60.0, "wall_s": 120.0, "sets": {
        "Cardio": {"designs": [d("exact", "proven", "proven", 38), d("p01", "proven", "timeout", 12)], "wall_s": 70},
        "Seeds": {"designs": [d("exact", "counterexample", "proven")], "wall_s": 50}}}
    text = "\n".join(proofs.markdown(res))
    assert "| Cardio | 2 | 12-38 | 2 proven, 4 s, slowest 2.0 s | 1 proven, 1 not proven in time, 6 s, slowest 3.0 s | 70 |" \
        in text, text
    assert "| Seeds | 1 | 10-10 | 0 proven, 1 COUNTEREXAMPLE" in text
    assert "4 of 6 proofs proven" in text and " at commit " not in text
    alone = "\n".join(proofs.markdown(res | {"via": "python -m flows.bench.proofs", "commit": "abc1234",
                                             "date": "2026-12-07"}))
    assert "From `python -m flows.bench.proofs` at commit abc1234 on 2026-12-07" in alone


def test_fronts_again_compares_each_budget_pick_and_the_pendigits_cap():
    """flows/bench/fronts.py: the picks of a new explore against the run's, set by set;
    choices on validation only (a design with better test accuracy never decides)."""
    from flows.bench import fronts

    before_pts = [bench_data.point("exact", 0.95, 40.0, exact=True, test=0.94),
                  bench_data.point("a", 0.945, 9.0, bound=0.009), bench_data.point("b", 0.93, 6.2, bound=0.02, test=0.91),
                  bench_data.point("c", 0.90, 2.0, bound=0.05)]
    now_pts = [bench_data.point("exact", 0.95, 30.0, exact=True, test=0.94),
               bench_data.point("a", 0.945, 6.4, bound=0.009, test=0.93), bench_data.point("b", 0.93, 4.6, bound=0.02),
               bench_data.point("c", 0.90, 1.5, bound=0.05), bench_data.point("t", 0.80, 1.0, bound=0.2, test=0.99)]
    before = {"name": "Pendigits", "explore_s": 380.0, "points": before_pts,
              "targets": {"printed": bench._budgets(before_pts, "printed")}}
    now = {"name": "Pendigits", "explore_s": 400.0, "points": now_pts, "printed": bench._budgets(now_pts, "printed"),
           "verified": 5, "designs": 5}
    got = fronts.compare(now, before)
    assert [(b["design_before"], b["design_now"]) for b in got["budgets"]] == [("a", "a"), ("b", "b"), ("c", "c")]
    assert got["budgets"][0]["area_cm2_before"] == 9.0 and got["budgets"][0]["area_cm2_now"] == 6.4
    assert got["exact_before"] == 40.0 and got["exact_now"] == 30.0
    assert got["under_cap_before"]["design"] == "b" and got["under_cap_now"]["design"] == "a"
    assert got["under_cap_now"]["test_accuracy"] == 0.93
    text = "\n".join(fronts.markdown({"sets": [got], "note": ""}))
    assert "| Pendigits | 1% | a, 9, 94.5 / 94.5 | a, 6.4, 94.5 / 93.0 | 0.71 | 40 / 30 | 380 / 400 |" in text
    assert "now a at 6.40 cm², validation 94.5%, test 93.0%" in text
    assert "|  | 2% | b, 6.2, 93.0 / 91.0 | b, 4.6, 93.0 / 93.0 | 0.74 |  |  |" in text
    # the promise: before, the 2% pick lost 3 points on test (exact 94.0, b 91.0): one over, by 1
    assert "| before | 1 of 3 | +1.0 | 4.4x / 6.5x / 20.0x | — |" in text
    assert "| now | 0 of 3 | +0.0 | 4.7x / 6.5x / 20.0x | 0 |" in text
