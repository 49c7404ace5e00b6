"""The reports of a `make bench` run, rendered from its numbers alone (``results.json``,
``meta.json``): BENCHMARKS.md's tables, the README's headline table, the plot of the fronts.
The scaling section is :func:`flows.bench.scaling.markdown`'s; the previous run's figures
come from ``history.json`` (:func:`flows.bench.common.history`)."""

from __future__ import annotations

import math
from pathlib import Path

from approxmlp.pipeline.explore import BUDGETS  # explore's own loss budgets
from flows.bench.common import area as _a
from flows.bench.common import history
from flows.bench.suite import PUBLISHED_NOTE, SEED_LABELS, SEED_TRAINING, TARGETS, train_flags

def _f(v, digits=2, unit=""):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    if isinstance(v, int):
        return f"{v}{unit}"
    return f"{v:.{digits}f}{unit}"


def _x(v):
    return "—" if v is None else f"{v:.1f}x"


def markdown(rows: list[dict], meta: dict) -> str:
    L = ["# Benchmarks", "",
         f"Produced by `make bench` (`python -m flows.bench.run`) on {meta['date']}, {meta['machine']}; "
         f"approxmlp {meta['version']} (commit {meta['commit']}), {meta['yosys']}, {meta['verilator']}. "
         f"Total wall time {meta['total_min']:.1f} min. Every number below comes from that run, "
         "except the *published* columns"
         + (f" and the scaling section, re-run on its own at commit {meta['scaling_rerun']} (see there)."
            if meta.get("scaling_rerun") else ".")
         + (f" This file was written from that run's kept results by `--render` at commit {meta['rendered_at']}."
            if meta.get("rendered_at") else ""), "",
         "Each data set: QAT-trained exact 8-bit baseline (`approxmlp train`, literature topology) and "
         f"{len(SEED_TRAINING)} power-of-two QAT models ("
         + "; ".join(f"{SEED_LABELS[k]}: `{train_flags(how)}`" for k, how in SEED_TRAINING.items())
         + "); then `approxmlp explore --seed-model` each (one search each, fronts combined) with "
         "default settings (NSGA-II, multipliers of at most two signed digits (csd2), input bit masks, truncation, argmax bits; "
         "EGFET cost model; the loss budget is against the exact baseline). Every design in the tables is verified in RTL "
         "(cocotb + Verilator) on 100% of its test vectors and synthesized with Yosys + ABC. *reduction* is "
         "exact / approximate.", "",
         "**Selection is honest, and says how sure it is.** explore holds out a validation part of the training "
         "split (20%, stratified, seed 0), which the search never sees; `approxmlp train` early-stops on it, "
         "so the exact baseline's validation accuracy is somewhat optimistic and the losses against it somewhat "
         "pessimistic. Each loss-budget pick is the smallest verified design whose "
         "*paired* validation loss against the exact design (same samples) is within the budget with 90% "
         "one-sided confidence (Tango's score bound), not its point estimate; where nothing smaller is "
         "certified the exact design is the pick (1.0x). Each cell gives the validation accuracy, then the *test* "
         "accuracy of the same design (scored once, never used to choose): `val / test`, and the paired test loss "
         "against the exact design in points with its 95% interval. A design whose test loss exceeds its budget "
         "is marked †; the raw figures, every interval included, are in `flows/bench/results/results.json`.", ""]
    L += [f"![Pareto fronts]({meta['png']})", ""]
    names = {"printed": "EGFET (1.0 V printed, area cm², power mW)",
             "printed-cnt": "CNT-TFT (3.0 V printed, area cm², power mW)",
             "fpga-ice40": "iCE40 (LUT4 count)"}
    for tg in TARGETS:
        fpga = tg.startswith("fpga")
        L += [f"## {names[tg]}", ""]
        head = "| data set | topology | exact acc (val / test) | exact " + ("LUTs" if fpga else "cm² | exact mW")
        sep = "|---|---|---|---" + ("" if fpga else "|---")
        for b in BUDGETS:
            head += f" | ≤{b:.0%} loss: acc (val / test) / " + ("LUTs / reduction" if fpga else
                                                               "cm² / mW / area, power reduction")
            sep += "|---"
        head += (f" | pow2 QAT seeds ({'; '.join(SEED_LABELS[k] for k in SEED_TRAINING)}): acc (val / test) / "
                 + ("LUTs" if fpga else "cm²"))
        sep += "|---"
        if tg == "printed":
            head += " | published exact cm² | published approx. (1%) cm² | DATE'24: acc / cm²"
            sep += "|---|---|---"
        L += [head + " |", sep + "|"]
        for r in rows:
            if "error" in r:
                L.append(f"| {r['name']} | failed: {r['error']} |")
                continue
            t = r["targets"][tg]
            ex = t["exact"]
            line = (f"| {r['name']}{'¹' if r['note'] else ''} | {r['topology']} | "
                    f"{ex['validation_accuracy']:.3f} / {ex['accuracy']:.3f} | ")
            line += _f(ex["luts"]) if fpga else f"{_a(ex['area_cm2'])} | {_a(ex['power_mw'])}"
            for e in t["budgets"]:
                if e["design"] is None:
                    line += " | none"
                    continue
                acc = f"{_acc_pair(e)}{_dagger(e)}{_test_loss(e)}"
                if fpga:
                    line += f" | {acc} / {_f(e['luts'])} / {_x(e['reduction'])}"
                else:
                    line += (f" | {acc} / {_a(e['area_cm2'])} / {_a(e['power_mw'])} / "
                             f"{_x(e['reduction'])}, {_x(e['power_reduction'])}")
            seeds = [p for p in r["points"] if p["id"].startswith("seed")]
            if not seeds:
                line += " | —"
            for k, sd in enumerate(seeds):
                m = sd[tg]["luts"] if fpga else sd[tg]["area_cm2"]
                line += f"{' | ' if k == 0 else '; '}{_acc_pair(sd)} / {_f(m) if fpga else _a(m)}"
            if tg == "printed":
                pub = r["published"]
                d24 = pub.get("date24")
                line += (f" | {_f(pub['exact_cm2'], 1)} | {_f(pub['approx_1pct_cm2'], 1)} | "
                         + (f"{d24[0]:.3f} / {_a(d24[1])}" if d24 else "—"))
            L.append(line + " |")
        L.append("")
    L += _date24_section(rows)
    L += _selection_change(rows)
    notes = [r for r in rows if r.get("note")]
    if notes:
        L += ["¹ " + "; ".join(f"{r['name']}: {r['note']}" for r in notes) + ".", ""]
    L += [PUBLISHED_NOTE, "",
          "Power is in library units (sum of cell leakage plus a dynamic estimate at 5 Hz). The published "
          "ICCAD'23/DATE'24 scripts scaled PrimeTime watts by 100, so their printed mW are 10x below "
          "library units: compare areas. The CNT-TFT and iCE40 columns re-measure the EGFET front "
          "(the search optimized EGFET area).", ""]
    L += ["## Tool speed", "",
          "Wall time per step (seconds, 2-core machine). *compile* = emit + verify + synth of the exact "
          "design; *explore* = search + emit, verify and synthesize every front point; *re-measure* = the "
          "front on CNT-TFT and iCE40. Fitness evaluation: individual x sample evaluations per second, "
          "vectorized population evaluator vs a per-sample Python loop over the same IR semantics.", "",
          "| data set | train int, pow2 seeds | compile | emit | verify | synth | explore (search) | designs | re-measure "
          "| evals/s vectorized | evals/s loop | ratio |",
          "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            continue
        s = r["eval_speed"]
        L.append(f"| {r['name']} | {r['train_s']:.0f}, {r['train_pow2_s']:.0f} | {r['compile_s']:.1f} | {_f(r['emit_s'], 2)} | "
                 f"{_f(r['verify_s'], 1)} | {_f(r['synth_s'], 1)} | {r['explore_s']:.0f} ({r['search_s']:.0f}) | "
                 f"{len(r['points'])} | {r['resynth_s']:.0f} | {s['vectorized_per_s']:.3g} | {s['loop_per_s']:.3g} | "
                 f"{s['ratio']:.0f}x |")
    L.append("")
    return "\n".join(L)


def _dagger(pick: dict) -> str:
    """† for a budget's pick that lost more than the budget on test (it qualified on validation)."""
    return "†" if pick["test_loss"] > pick["max_loss"] + 1e-12 else ""


def _test_loss(pick: dict) -> str:
    """A pick's paired test loss against the exact design, in points, with its 95 % interval."""
    t = pick.get("test_loss_paired")
    if not t:
        return ""
    return f" (test loss {100 * t['loss']:+.1f} [{100 * t['low']:+.1f}, {100 * t['high']:+.1f}])"


def _acc_pair(p: dict) -> str:
    """``val / test`` accuracy of a pick, an exact baseline or a seed."""
    val = p.get("validation_accuracy")
    test = p["accuracy"] if "accuracy" in p else p["test_accuracy"]
    return f"{val:.3f} / {test:.3f}"


def _selection_change(rows: list[dict]) -> list[str]:
    """This run's EGFET reductions beside the previous run's (also validation-picked): where
    a figure moves, the table says so. The previous run's figures: ``history.json``."""
    previous = history()["previous_run"]
    L = ["### Against the previous run (EGFET area reduction)", "",
         previous["note"], "",
         "| data set | ≤1%: previous | ≤1%: this run | ≤5%: previous | ≤5%: this run | change | "
         "explore s: previous / this run |",
         "|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r or r["name"] not in previous["sets"]:
            continue
        was = previous["sets"][r["name"]]
        old = (was["reduction_1pct"], was["reduction_5pct"], was["explore_s"])
        new = {e["max_loss"]: e.get("reduction") for e in r["targets"]["printed"]["budgets"]}
        pairs = [(old[0], new.get(0.01)), (old[1], new.get(0.05))]
        drops = [f"{'1%' if k == 0 else '5%'} {o / n:.1f}x lower" for k, (o, n) in enumerate(pairs)
                 if n is not None and n < o * 0.95]
        rises = [f"{'1%' if k == 0 else '5%'} {n / o:.1f}x higher" for k, (o, n) in enumerate(pairs)
                 if n is not None and n > o * 1.05]
        change = "; ".join(["drops: " + ", ".join(drops)] * bool(drops) + ["rises: " + ", ".join(rises)] * bool(rises))
        L.append(f"| {r['name']} | {_x(old[0])} | {_x(pairs[0][1])} | {_x(old[1])} | {_x(pairs[1][1])} | "
                 f"{change or 'about the same'} | {old[2]:.0f} / {r['explore_s']:.0f} |")
    return L + [""]


def most_accurate_under(points: list[dict], max_cm2: float) -> dict | None:
    """The verified design of highest *validation* accuracy whose EGFET area is below
    ``max_cm2`` (ties: the smaller), or None."""
    ok = [p for p in points if p["verified"] and not p["exact"] and p["printed"]["area_cm2"] is not None
          and p["printed"]["area_cm2"] < max_cm2]
    return max(ok, key=lambda p: (p["validation_accuracy"], -p["printed"]["area_cm2"]), default=None)


def _date24_section(rows: list[dict]) -> list[str]:
    """Per data set with a DATE'24 design: at half its area, how accurate we are (picked on
    validation), and the per-budget reductions with their test losses."""
    L = ["## At half the area of the DATE'24 designs", "",
         "The DATE'24 genetic-trained designs (Afentaki et al., re-measured with the open flow in "
         "shared/DESIGN-NOTES.md) are the published state of the art. Per data set: among this run's verified "
         "designs under half that area, the most accurate on *validation*, and its test accuracy against DATE'24's; "
         "then the budget picks of the EGFET table with their test losses against the exact baseline's test "
         "accuracy (a ≤5% budget's pick meets it when its test loss is at most 5 points).", "",
         "| data set | DATE'24: test acc / cm² | ours under half that area: design, acc (val / test), cm² | "
         "≤1%: test loss, area / power reduction | ≤5%: test loss, area / power reduction | explore s |",
         "|---|---|---|---|---|---|"]
    for r in rows:
        d24 = r.get("published", {}).get("date24") if "error" not in r else None
        if not d24:
            continue
        best = most_accurate_under(r["points"], d24[1] / 2)
        beats = " (≥ DATE'24)" if best and best["test_accuracy"] >= d24[0] else ""
        ours = "none" if best is None else f"{best['id']}, {_acc_pair(best)}{beats}, {_a(best['printed']['area_cm2'])}"
        cells = []
        for e in r["targets"]["printed"]["budgets"]:
            if e["max_loss"] in (0.01, 0.05):
                cells.append("none" if e["design"] is None else
                             f"{100 * e['test_loss']:+.1f} pt{_dagger(e)}, {_x(e['reduction'])} / "
                             f"{_x(e['power_reduction'])}")
        L.append(f"| {r['name']} | {d24[0]:.3f} / {_a(d24[1])} | {ours} | {cells[0]} | {cells[1]} | "
                 f"{r['explore_s']:.0f} |")
    return L + [""]


HEADLINE_BEGIN, HEADLINE_END = "<!-- bench:headline -->", "<!-- /bench:headline -->"


def headline(rows: list[dict], meta: dict) -> str:
    """The README's opening table: EGFET, exact vs the smallest verified design at 1% and 5% loss."""
    L = ["| data set | exact: test acc / cm² | ≤1% loss: test acc / cm² (area, power reduction) | ≤5% loss: test acc / "
         "cm² (area, power reduction) | published exact / approx. (1%) cm² |", "|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            continue
        t = r["targets"]["printed"]
        cells = []
        for e in t["budgets"]:
            if e["max_loss"] in (0.01, 0.05):
                cells.append("none" if e["design"] is None else
                             f"{e['accuracy']:.3f}{_dagger(e)} / {_a(e['area_cm2'])} ({_x(e['reduction'])}, "
                             f"{_x(e['power_reduction'])})")
        pub = r["published"]
        L.append(f"| {r['name']} {r['topology']} | {t['exact']['accuracy']:.3f} / {_a(t['exact']['area_cm2'])} | "
                 f"{cells[0]} | {cells[1]} | {_f(pub['exact_cm2'], 1)} / {_f(pub['approx_1pct_cm2'], 1)} |")
    L += ["", "Each design is the smallest whose paired validation loss against the exact design is within the budget "
          "with 90% confidence (1.0x: nothing smaller was certified); the test accuracy shown is scored once and "
          "never used to choose; † where it lost more than the budget. "
          f"EGFET printed cells, every design verified in RTL on 100% of its test vectors; from `make bench` "
          f"({meta['date']}, {meta['total_min']:.0f} min on {meta['machine'].split(', Python')[0]}); "
          "published figures from a commercial flow. Details, CNT-TFT, iCE40 and tool speed: "
          "[BENCHMARKS.md](BENCHMARKS.md)."]
    return "\n".join(L)


def update_readme(path: Path, text: str) -> bool:
    """Replace the text between the headline markers of ``path``; False if it has none."""
    if not path.is_file():
        return False
    old = path.read_text()
    if HEADLINE_BEGIN not in old or HEADLINE_END not in old:
        return False
    head, rest = old.split(HEADLINE_BEGIN, 1)
    _, tail = rest.split(HEADLINE_END, 1)
    path.write_text(f"{head}{HEADLINE_BEGIN}\n{text}\n{HEADLINE_END}{tail}")
    return True


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    rows = [r for r in rows if "error" not in r]
    n = len(rows)
    cols = 3 if n > 4 else max(n, 1)
    nrows = max(1, math.ceil(n / cols))
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 3.3 * nrows), dpi=110, squeeze=False)
    for ax, r in zip(axes.flat, rows):
        pts = [p for p in r["points"] if p["verified"] and p["printed"]["area_cm2"]]
        ap = [p for p in pts if not p["exact"]]
        ex = [p for p in pts if p["exact"]]
        for group, fmt, ms, label in ((ap, "o", 4, "approxmlp, verified (95% CI)"),
                                      (ex, "r*", 12, "approxmlp exact (95% CI)")):
            acc = [p["test_accuracy"] for p in group]
            # runs kept from before intervals were recorded have none: points without bars
            iv = [p.get("test_interval") or [a, a] for p, a in zip(group, acc)]
            ax.errorbar([p["printed"]["area_cm2"] for p in group], acc, fmt=fmt, ms=ms, lw=0.7, capsize=1.5,
                        yerr=[[a - i[0] for a, i in zip(acc, iv)], [i[1] - a for a, i in zip(acc, iv)]], label=label)
        pub = r["published"]
        if pub["exact_cm2"]:
            ax.axvline(pub["exact_cm2"], color="grey", ls="--", lw=1, label="published exact")
        if pub["approx_1pct_cm2"]:
            ax.axvline(pub["approx_1pct_cm2"], color="grey", ls=":", lw=1, label="published approx. (1%)")
        ax.set_xscale("log")
        # ticks at 1, 2, 5 x 10^k over a narrow range, decades over a wide one; plain numbers
        lo, hi = ax.get_xlim()
        subs = (1.0, 2.0, 5.0) if math.log10(hi / lo) < 2.5 else (1.0,)
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=subs))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_title(f"{r['name']} {r['topology']}", fontsize=10)
        ax.set_xlabel("EGFET area (cm²)", fontsize=8)
        ax.set_ylabel("test accuracy (reported)", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(True, which="both", alpha=0.3)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    if rows:
        h, lab = axes.flat[0].get_legend_handles_labels()
        seen = dict(zip(lab, h))
        for ax in list(axes.flat)[1:n]:
            for hh, ll in zip(*ax.get_legend_handles_labels()[::-1]):
                seen.setdefault(hh, ll)
        fig.legend(list(seen.values()), list(seen.keys()), loc="lower center", ncol=4, fontsize=8)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
