"""Human views of the reports: a design's Markdown and terminal summary table, and
`explore`'s Markdown and Pareto plot (the numbers' formats shared by both and the CLI)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


#: Characters that would start Markdown markup inside a table cell: a cell break, raw HTML,
#: code, a link.
_MD_SPECIAL = set("\\|<>`[]")


def plain(text: Any) -> str:
    """``text`` as one line of printable characters, fit to quote in a generated file: a
    control character (a newline in a file name would end a Verilog comment and start
    code) is written as its Python escape, ``\\n``."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))


def md(text: Any) -> str:
    """``text`` for a Markdown report: :func:`plain`, and markup characters escaped."""
    return "".join("\\" + c if c in _MD_SPECIAL else c for c in plain(text))


def _pct(v: Any) -> str:
    return "—" if v is None else f"{100 * v:.2f} %"


def pnr_summary(p: dict) -> str:
    """One line for a place-and-route result (:class:`approxmlp.backend.pnr.PnrResult` as JSON)."""
    if not p.get("fits"):
        return f"does not fit ({' or '.join(d.upper() for d in p.get('tried', ()))})"
    fmax = f"{p['fmax_mhz']:.1f} MHz" if p.get("fmax_mhz") is not None else "no timed path"
    return (f"{p['logic_cells']} of {p['device_cells']} logic cells on {p['device'].upper()}, "
            f"{p['carries']} carries, Fmax {fmax} (harness: {p['harness_ffs']} flip-flops)")


def summary_rows(r: dict) -> list[tuple[str, str]]:
    """(label, value) pairs shared by the Markdown report and the terminal table."""
    acc = r.get("accuracy", {})
    ver = r.get("verification", {})
    rows = [("target", r.get("target", "?")),
            ("topology", f"{r['model']['topology']} ({r['model']['input_bits']}-bit inputs, "
                         f"{r['model']['weight_bits']}-bit weights, {r['model']['act_bits']}-bit activations)"),
            ("design", "exact" if r["model"].get("exact", True) else "approximate")]
    if acc.get("float_accuracy") is not None:
        rows.append(("float accuracy (test)", _pct(acc["float_accuracy"])))
    rows.append(("golden accuracy (test)", _pct(acc.get("golden"))))
    rows.append(("RTL accuracy (test)", _pct(acc.get("rtl"))))
    if ver.get("skipped"):
        rows.append(("vectors verified", "skipped (--no-verify)"))
    else:
        rows.append(("vectors verified", f"{ver.get('vectors', 0) - (ver.get('mismatches') or 0)}/{ver.get('vectors', 0)} "
                                         f"({ver.get('mismatches')} mismatches, {ver.get('lint_warnings', 0)} lint warnings)"))
    if r.get("area_cm2") is not None:
        rows.append(("area", f"{r['area_cm2']:.4f} cm²"))
        rows.append(("power", f"{r['power_mw']:.4f} mW (static {r.get('static_power_mw', 0):.4f}, "
                              f"dynamic {r.get('dynamic_power_mw', 0):.2e} at "
                              f"{r.get('synthesis', {}).get('clock_hz', 5)} Hz)"))
        rows.append(("cells", f"{r.get('cell_count')}"))
    if r.get("luts") is not None:
        rows.append(("LUTs", str(r["luts"])))
        rows.append(("carries / FFs", f"{r.get('carries')} / {r.get('ffs')}"))
    pnr = (r.get("synthesis") or {}).get("pnr")
    if pnr:
        rows.append(("iCE40 after routing", pnr_summary(pnr)))
    if "synthesis" not in r:
        rows.append(("synthesis", "skipped (--no-synth)"))
    fm = r.get("formal")
    if fm:
        rows.append(("formal: RTL = reference", fm["rtl_vs_reference"]))
        rows.append(("formal: netlist = RTL", f"{fm['netlist_vs_rtl']} ({fm['seconds']:.1f} s)"))
    elif "formal" in r:
        rows.append(("formal", "skipped (--no-formal)"))
    return rows


def markdown(r: dict) -> str:
    lines = [f"# approxmlp report: {md(r['model']['name'])} → {md(r['target'])}", "",
             "| | |", "|---|---|"]
    lines += [f"| {k} | {md(v)} |" for k, v in summary_rows(r)]
    syn = r.get("synthesis")
    if syn and syn.get("cells"):
        lines += ["", "## Cells", "", "| cell | count |", "|---|---|"]
        lines += [f"| {md(c)} | {n} |" for c, n in sorted(syn["cells"].items())]
    ver = r.get("verification", {})
    if ver.get("first_mismatches"):
        lines += ["", "## First mismatches", "", "| sample | inputs | RTL | golden |", "|---|---|---|---|"]
        lines += [f"| {m['sample']} | {m['inputs']} | {m['rtl']} | {m['golden']} |" for m in ver["first_mismatches"]]
    lines += ["", "## Provenance", "",
              f"- approxmlp {r.get('approxmlp_version')}; IR sha256 `{r['model']['ir_sha256']}`",
              f"- model: {md(r['model'].get('source'))}; data: {md(r['data']['spec'])} "
              f"({r['data']['train']} train / {r['data']['test']} test samples, {r['data']['classes']} classes)"]
    if ver.get("simulator"):
        lines.append(f"- simulator: {md(ver['simulator'])}")
    if syn and syn.get("tool"):
        lines.append(f"- synthesis: {md(syn['tool'])}")
    if r.get("timings"):
        lines.append("- timings: " + ", ".join(f"{k} {v:.1f}" for k, v in r["timings"].items()))
    return "\n".join(lines) + "\n"


def plot_front(summary: dict, path: Path) -> None:
    """Accuracy against cost: validation accuracy (what every pick is made on) filled, the
    same designs' test accuracy hollow, each with its 95 % interval as an error bar; the
    exact baseline a star."""
    import matplotlib
    import numpy as np

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric = summary["metric"]
    pts = [p for p in summary["points"] if p[metric] is not None]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    approx = [p for p in pts if not p["exact"]]
    xs = np.array([p[metric] for p in approx], dtype=float)

    def bars(part: str, points: list[dict]) -> np.ndarray:
        acc = np.array([p[f"{part}_accuracy"] for p in points])
        iv = np.array([p[f"{part}_interval"] for p in points]).reshape(-1, 2)
        return np.vstack([acc - iv[:, 0], iv[:, 1] - acc])

    if approx:
        # drawn a little apart so that the two intervals of one design stay readable
        ax.errorbar(xs / 1.03, [p["validation_accuracy"] for p in approx], yerr=bars("validation", approx), fmt="o",
                    color="C0", ms=4, lw=0.8, capsize=2, zorder=2, label="validation accuracy (picked on), 95% CI")
        ax.errorbar(xs * 1.03, [p["test_accuracy"] for p in approx], yerr=bars("test", approx), fmt="o", mfc="none",
                    color="C1", ms=4, lw=0.8, capsize=2, zorder=2, label="test accuracy (reported), 95% CI")
    b = summary["baseline"]
    ax.errorbar([b[metric] / 1.03], [b["validation_accuracy"]], yerr=bars("validation", [b]), fmt="r*", ms=12,
                capsize=2, label="exact baseline (validation)")
    ax.errorbar([b[metric] * 1.03], [b["test_accuracy"]], yerr=bars("test", [b]), fmt="r*", mfc="none", ms=12,
                capsize=2, label="exact baseline (test)")
    ax.set_xscale("log")
    ax.set_xlabel("area (cm²)" if metric == "area_cm2" else "LUTs")
    ax.set_ylabel("accuracy")
    ax.set_title(f"{summary['data']} on {summary['target']}: designs picked on validation")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def fmt(value, digits: int = 4) -> str:
    """Areas and powers for people: fixed decimals; LUT counts as integers; None as a dash."""
    if value is None:
        return "—"
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}f}"


def fmt_acc(acc: float, interval) -> str:
    """An accuracy with its 95 % interval: ``0.9415 [0.896, 0.968]``."""
    return f"{acc:.4f} [{interval[0]:.3f}, {interval[1]:.3f}]"


def fmt_loss(loss: dict) -> str:
    """A paired loss in points with its 95 % interval: ``+1.2 [-0.4, +2.9]``."""
    return f"{100 * loss['loss']:+.1f} [{100 * loss['low']:+.1f}, {100 * loss['high']:+.1f}]"


def explore_markdown(s: dict) -> str:
    """`explore`'s ``report.md``: the budget picks, the front, what every figure was measured on."""
    metric = s["metric"]
    unit = "cm²" if metric == "area_cm2" else "LUTs"
    b = s["baseline"]
    sel = s["selection"]
    n = sel["samples"]
    conf = sel["confidence"]
    lines = [f"# approxmlp explore: {md(s['data'])} on {md(s['target'])}", "",
             f"Exact baseline: validation accuracy {fmt_acc(b['validation_accuracy'], b['validation_interval'])}, "
             f"test accuracy {fmt_acc(b['test_accuracy'], b['test_interval'])}, {fmt(b[metric])} {unit}, "
             f"power {fmt(b['power_mw'], 3)} mW.", "",
             f"Every design below is picked on the **validation** part ({n['validation']} samples: "
             f"{sel['validation']}); the search's fitness used the other {n['train']} training samples; "
             f"**test accuracy** ({n['test']} samples) is scored once per design and reported, never used "
             f"to choose. The pick rule: {sel['rule']}. A loss is *paired*: the design against the exact one "
             "on the same samples, in points; brackets are 95% intervals "
             f"({sel['intervals']}). The finest budget {n['validation']} validation samples can certify at "
             f"{conf:.0%} confidence is {sel['finest_budget']:.1%}.", "",
             "| loss budget | design | validation accuracy (picked on) | validation loss | loss bound | "
             "test accuracy | test loss | " + unit + " | power (mW) | area reduction | power reduction |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    notes = []
    for e in s["budgets"]:
        if e["design"] is None:
            lines.append(f"| {e['max_loss']:.0%} | none | | | | | | | | | |")
        else:
            lines.append(f"| {e['max_loss']:.0%} | {e['design']} | {_pick_cells(e, metric)} |")
        if e.get("note"):
            notes.append(f"- {e['max_loss']:.0%}: {e['note']}.")
    if notes:
        lines += [""] + notes
    pb = s.get("power_budget")
    if pb:
        lines += ["", f"Power budget {pb['max_power_mw']:g} mW (synthesized power): " + (
            f"{pb['design']}, the most accurate verified design on validation that fits: validation accuracy "
            f"{fmt_acc(pb['validation_accuracy'], pb['validation_interval'])}, test accuracy "
            f"{fmt_acc(pb['test_accuracy'], pb['test_interval'])}, {fmt(pb[metric])} {unit}, "
            f"{fmt(pb['power_mw'], 3)} mW." if pb["design"] else "no verified design fits.")]
    lines += ["", "## Front", "",
              "| id | origin | train acc | validation acc | validation loss | loss bound | test acc | test loss | "
              + unit + " | power (mW) | verified |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for p in s["points"]:
        v = p["verification"]
        bound = "—" if p["loss_bound"] is None else f"{100 * p['loss_bound']:+.1f}"
        origin = p.get("origin") or ("the exact design" if p["exact"] else "a seed model as trained")
        lines.append(f"| {p['id']} | {md(origin)} | {p['train_accuracy']:.4f} | "
                     f"{fmt_acc(p['validation_accuracy'], p['validation_interval'])} | {fmt_loss(p['validation_loss'])} | "
                     f"{bound} | {fmt_acc(p['test_accuracy'], p['test_interval'])} | {fmt_loss(p['test_loss'])} | "
                     f"{fmt(p[metric])} | {fmt(p['power_mw'], 3)} | {v['vectors'] - v['mismatches']}/{v['vectors']} |")
    lines += ["", "*train*: the part of the training split the search fitted; *validation*: the part every "
              "choice was made on; *test*: the held-out split, reported only. *loss bound*: the one-sided "
              f"{conf:.0%} upper bound on the validation loss that the pick rule compares with a budget "
              "(— for the seed models as trained, shown for comparison, never picked).", "",
              "![Pareto front](pareto.png)", ""]
    return "\n".join(lines)


def _pick_cells(e: dict, metric: str) -> str:
    pr = f"{e['power_reduction']:.2f}x" if e.get("power_reduction") else "—"
    ar = f"{e['area_reduction']:.2f}x" if e.get("area_reduction") else "—"
    return (f"{fmt_acc(e['validation_accuracy'], e['validation_interval'])} | {fmt_loss(e['validation_loss'])} | "
            f"{100 * e['loss_bound']:+.1f} | {fmt_acc(e['test_accuracy'], e['test_interval'])} | "
            f"{fmt_loss(e['test_loss'])} | {fmt(e[metric])} | {fmt(e['power_mw'], 3)} | {ar} | {pr}")
