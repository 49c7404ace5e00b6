"""The compile report's human views (backend/report.py): user text (model and file names,
data specs, cell names) can neither break a Markdown table nor add lines or markup; the
summary rows say what ran and what was skipped."""

from __future__ import annotations

import copy

from hypothesis import given, settings
from hypothesis import strategies as st

from approxmlp.backend.report import markdown, md, plain, summary_rows

SPECIAL = "\\|<>`[]"


def report(text: str = "m") -> dict:
    """A compile report as compile writes it (exact, verified, synthesized), ``text`` in
    every field a user chooses."""
    return {"schema": "approxmlp-report/1", "approxmlp_version": "0.1.0", "target": "printed",
            "model": {"source": f"{text}.pt", "name": text, "topology": "4-5-3", "input_bits": 4, "weight_bits": 8,
                      "act_bits": 8, "ir_sha256": "ab" * 32, "exact": True},
            "data": {"spec": f"data/{text}.csv", "train": 105, "test": 45, "classes": 3},
            "accuracy": {"golden": 0.8, "rtl": 0.8, "float_accuracy": 0.8222},
            "verification": {"vectors": 45, "mismatches": 0, "passed": True, "lint_warnings": 0,
                             "simulator": f"Verilator 5.048 {text}"},
            "area_cm2": 1.23456, "power_mw": 0.5, "static_power_mw": 0.4, "dynamic_power_mw": 1e-4, "cell_count": 57,
            "synthesis": {"cells": {"INVX1": 3, f"{text}_CELL": 2}, "tool": f"Yosys 0.50 {text}", "clock_hz": 5},
            "formal": {"rtl_vs_reference": "proven", "netlist_vs_rtl": "proven", "seconds": 1.25},
            "timings": {"emit_s": 0.01, "verify_s": 3.0}}


def unescaped(line: str, ch: str) -> int:
    """How many times ``ch`` occurs in ``line`` as markup, not escaped with a backslash."""
    n, i = 0, 0
    while i < len(line):
        if line[i] == "\\":
            i += 2
            continue
        n += line[i] == ch
        i += 1
    return n


def unescape(text: str) -> str:
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text) and text[i + 1] in SPECIAL:
            i += 1
        out.append(text[i])
        i += 1
    return "".join(out)


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_plain_is_one_printable_line_and_keeps_printable_text(text):
    p = plain(text)
    assert p.isprintable() and "\n" not in p and "\r" not in p
    if text.isprintable():
        assert p == text


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_md_escapes_every_markup_character_and_nothing_is_lost(text):
    m = md(text)
    for ch in "|<>`[]":
        assert unescaped(m, ch) == 0, m
    assert unescape(m) == plain(text)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab|<>`[]\\\n\r\u2028*_#- ")), min_size=1, max_size=20))
def test_user_text_cannot_break_the_report(text):
    """Same lines as with a harmless name, every table row still has its columns."""
    safe, evil = markdown(report("m")).splitlines(), markdown(report(text)).splitlines()
    assert len(evil) == len(safe)
    for a, b in zip(safe, evil):
        if a.startswith("|"):
            assert unescaped(b, "|") == unescaped(a, "|"), b
        assert b[:2] == a[:2]  # no line starts as something else (a heading, a list, a table)
        for ch in "<>`[]":  # no HTML, code or link the report did not write itself
            assert unescaped(b, ch) == unescaped(a, ch), b


def test_the_report_names_what_ran():
    text = markdown(report("iris_mlp"))
    assert text.startswith("# approxmlp report: iris_mlp → printed\n")
    assert "| vectors verified | 45/45 (0 mismatches, 0 lint warnings) |" in text
    assert "| area | 1.2346 cm² |" in text and "| cells | 57 |" in text
    assert "| formal: netlist = RTL | proven (1.2 s) |" in text
    assert "## Cells" in text and "| INVX1 | 3 |" in text
    assert "- timings: emit_s 0.0, verify_s 3.0" in text
    assert "skipped" not in text


def test_skipped_steps_say_so():
    r = copy.deepcopy(report())
    r["verification"] = {"vectors": 0, "mismatches": None, "passed": None, "skipped": True}
    for k in ("area_cm2", "synthesis"):
        r.pop(k)
    r["formal"] = None
    rows = dict(summary_rows(r))
    assert rows["vectors verified"] == "skipped (--no-verify)"
    assert rows["synthesis"] == "skipped (--no-synth)"
    assert rows["formal"] == "skipped (--no-formal)"
    assert "area" not in rows and "cells" not in rows


def test_an_approximate_fpga_design_with_mismatches():
    r = report()
    r["model"]["exact"] = False
    r.pop("area_cm2")
    r |= {"luts": 120, "carries": 7, "ffs": 0}
    r["verification"] |= {"mismatches": 2, "first_mismatches": [{"sample": 3, "inputs": [1, 2], "rtl": 0, "golden": 1}]}
    rows = dict(summary_rows(r))
    assert rows["design"] == "approximate" and rows["LUTs"] == "120" and rows["carries / FFs"] == "7 / 0"
    assert rows["vectors verified"].startswith("43/45 (2 mismatches")
    assert "| 3 | [1, 2] | 0 | 1 |" in markdown(r)
