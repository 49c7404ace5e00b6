"""Human views of a compile report: the Markdown file and the terminal summary table."""

from __future__ import annotations

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
