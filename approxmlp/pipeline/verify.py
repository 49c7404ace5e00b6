"""`approxmlp verify DIR`: re-simulate a compiled design folder, for users' CI.

The expected classes are recomputed from ``ir.json`` with the golden model (not trusted
from the vectors file), so the check covers the IR, the vectors and the RTL together.
Optionally writes JUnit XML, one test case per design, so CI systems show the result.
With ``formal``, the RTL is also proven equal to the IR's reference circuit and the kept
netlist equal to the RTL (:mod:`approxmlp.backend.formal`), and the answers are written
into the folder's ``report.json``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree as ET

import numpy as np

from ..backend.sim_files import declared_modules
from ..backend.verilog import class_width
from ..core.ir import MLP
from .folder import file_hashes, load_ir, read_vectors
from .steps import formal_message, run_formal, with_extra_vectors
from ..errors import DataError
from ..core.golden import evaluate


#: The logs `verify` itself rewrites: recorded by compile, but not compared.
VERIFY_LOGS = ("logs/lint.log", "logs/sim.log")


def verify_folder(folder: Path, *, junit: Path | None = None, formal: bool = False,
                  formal_timeout: float | None = None, progress=lambda _: None) -> dict:
    """Re-simulate a design folder. The result's ``changed`` lists the files that differ
    from the sha256 ``report.json`` recorded when they were written (None for a folder
    written before approxmlp recorded them); changed files are still checked as they are
    now, so an edited ``rtl/top.v`` that computes another function still fails. With
    ``formal``, the proofs too (their answers written into ``report.json``)."""
    return verify_folders([folder], junit=junit, formal=formal, formal_timeout=formal_timeout,
                          progress=progress)[0]


@dataclass
class _Folder:
    """One design folder, read and checked, ready to simulate."""

    folder: Path
    ir: MLP
    inputs: np.ndarray
    golden: np.ndarray
    report: dict
    registered: bool
    changed: list[str] | None
    note: str
    rtl: Path
    module: str
    sources: list[Path]


def _prepare(folder: Path) -> _Folder:
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder} is not a folder; pass the --out folder of `approxmlp compile`")
    ir = load_ir(folder)
    vec = read_vectors(folder)
    golden = evaluate(ir, vec["inputs"]).classes
    stale = int(np.sum(golden != vec["golden"]))
    if stale:
        raise DataError(f"{folder}/vectors/test.npz disagrees with ir.json on {stale} vectors; recompile the design")
    rep = _report(folder)
    registered = bool(rep.get("registered", False))
    changed = changed_files(folder, rep.get("files"))
    note = f" (changed since written: {', '.join(changed)})" if changed else ""
    module = "top"
    rtl = folder / "rtl" / f"{module}.v"
    if not rtl.is_file():
        raise DataError(f"{rtl} not found; is {folder} a folder written by `approxmlp compile`?")
    declared = declared_modules(rtl.read_text(errors="replace"))
    if module not in declared:
        found = f"module {', '.join(declared)}" if declared else "no module"
        raise DataError(f"{rtl} declares {found}, not `module {module}`{note}; restore it or recompile the design")
    # the top first, then any other RTL file of the folder (modules it instantiates)
    sources = [rtl] + sorted(p for p in rtl.parent.glob("*.v") if p != rtl)
    return _Folder(folder, ir, vec["inputs"], golden, rep, registered, changed, note, rtl, module, sources)


def renamed_modules(text: str, prefix: str) -> tuple[str, dict[str, str]]:
    """``text`` with every module it declares renamed ``prefix + name`` (every use of the
    identifier, so the text stays consistent), and the renaming: how the designs of
    several folders, each with its ``module top``, share one Verilator build."""
    names = {name: prefix + name for name in declared_modules(text)}
    if not names:
        return text, names
    pattern = re.compile(r"(?<![A-Za-z0-9_$])(" + "|".join(map(re.escape, names)) + r")(?![A-Za-z0-9_$])")
    return pattern.sub(lambda m: names[m.group(1)], text), names


def verify_folders(folders, *, junit: Path | None = None, formal: bool = False,
                   formal_timeout: float | None = None, progress=lambda _: None) -> list[dict]:
    """:func:`verify_folder` for several design folders at once, one result each in order.

    Every folder's RTL is linted on its own (``verilator --lint-only -Wall``, its log in the
    folder's ``logs/lint.log``) and then all are simulated in ONE Verilator build (their
    modules renamed apart: each folder declares ``module top``), which is what makes
    checking many designs cheap: a build costs seconds, a design in it milliseconds. A
    folder whose RTL Verilator rejects outright (a lint ``%Error``) is left out of the
    shared build, so it cannot fail the others, and fails with that error. ``junit``:
    one test suite per folder."""
    from ..backend.lint import lint
    from ..backend.sim_files import SimDesign
    from ..backend.simulate import simulate
    from ..backend.tools import verilator_version

    preps = [_prepare(f) for f in folders]
    progress(f"linting {len(preps)} design(s) (verilator --lint-only -Wall)")
    with ThreadPoolExecutor(max_workers=max(1, min(len(preps), os.cpu_count() or 1))) as pool:
        findings = list(pool.map(lambda p: lint(p.rtl, p.module), preps))   # one process each, every core
    designs, lanes, results = [], {}, []
    for k, (p, warnings) in enumerate(zip(preps, findings)):
        logs = p.folder / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        (logs / "lint.log").write_text("\n".join(warnings) + ("\n" if warnings else ""))
        X, y, kinds = with_extra_vectors(p.ir, p.inputs, p.golden)
        res = {"vectors": len(X), "vectors_by_kind": kinds, "mismatches": 0, "passed": False,
               "lint_warnings": len(warnings), "first_mismatches": [], "simulator": verilator_version(),
               "changed": p.changed}
        errors = [w for w in warnings if w.startswith("%Error")]
        if errors:
            res["rejected"] = errors[0]
            res["message"] = f"Verilator rejects {p.rtl}: {errors[0]}{p.note}"
        else:
            text = "\n".join(src.read_text(errors="replace") for src in p.sources)
            module = p.module
            if len(preps) > 1:
                text, names = renamed_modules(text, f"approxmlp_v{k}_")
                module = names[p.module]
            lanes[k] = len(designs)
            designs.append(SimDesign(module=module, verilog=text, inputs=X, expected=y, input_bits=p.ir.input_bits,
                                     out_width=class_width(p.ir.n_classes), registered=p.registered))
        results.append(res)
    sims = []
    if designs:
        with tempfile.TemporaryDirectory(prefix="approxmlp-sim-") as build:
            sims = simulate(designs, Path(build), progress=progress)
            for k, lane in lanes.items():
                shutil.copyfile(sims[lane].log, preps[k].folder / "logs" / "sim.log")
    for k, (p, res) in enumerate(zip(preps, results)):
        if k in lanes:
            sim = sims[lanes[k]]
            mism = [dict(sample=m.sample, inputs=list(m.inputs), rtl=m.rtl, golden=m.golden) for m in sim.mismatches]
            res.update(mismatches=len(mism), passed=sim.ok and not res["lint_warnings"], first_mismatches=mism[:10])
            msg = ""
            if mism:
                m = mism[0]
                msg = (f"RTL disagrees with the golden model on {len(mism)} of {res['vectors']} vectors "
                       f"(first: sample {m['sample']}, inputs {m['inputs']}, RTL {m['rtl']}, golden {m['golden']})"
                       f"{p.note}")
            elif res["lint_warnings"]:
                msg = f"verilator -Wall reports {res['lint_warnings']} warnings{p.note}; see {p.folder}/logs/lint.log"
            res["message"] = msg
        if formal:
            res["formal"] = run_formal(p.ir, p.rtl, p.folder, p.report, registered=p.registered, module=p.module,
                                       timeout=formal_timeout, progress=progress)
            report_path = p.folder / "report.json"
            if report_path.is_file():
                report_path.write_text(json.dumps(p.report | {"formal": res["formal"]}, indent=1) + "\n")
            if res["formal"]["counterexample"] and not res["message"]:
                res["message"] = formal_message(res["formal"]) + p.note
        if junit is not None:
            write_junit(junit if len(preps) == 1 else Path(junit).with_name(f"{Path(junit).stem}-{k}{Path(junit).suffix}"),
                        p.folder, res)
    return results


def failed(res: dict) -> bool:
    """Whether a :func:`verify_folder` result fails: a mismatch, a lint warning, RTL
    Verilator rejects, or a counterexample."""
    fm = res.get("formal")
    return bool(res["mismatches"] or res["lint_warnings"] or res.get("rejected") or (fm and fm["counterexample"]))


def _report(folder: Path) -> dict:
    path = folder / "report.json"
    if not path.is_file():
        return {}
    try:
        rep = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise DataError(f"{path} is not valid JSON; recompile the design") from None
    if not isinstance(rep, dict):
        raise DataError(f"{path} holds no report object; recompile the design")
    return rep


def changed_files(folder: Path, recorded) -> list[str] | None:
    """The recorded files (``report.json``'s ``files``: path -> sha256) that are gone or
    whose content changed since, by path, a gone one marked so; the logs `verify` itself
    rewrites are left out. None when nothing was recorded."""
    if not isinstance(recorded, dict):
        return None
    now = file_hashes(folder)
    return [name if name in now else f"{name} (deleted)" for name, digest in recorded.items()
            if name not in VERIFY_LOGS and now.get(name) != digest]


def write_junit(path: Path, folder: Path, res: dict) -> None:
    suite = ET.Element("testsuite", name="approxmlp.pipeline.verify", tests="2",
                       failures=str(int(bool(res["mismatches"])) + int(bool(res["lint_warnings"]))))
    lint = ET.SubElement(suite, "testcase", classname=f"approxmlp.{folder.name}", name="lint")
    if res["lint_warnings"]:
        ET.SubElement(lint, "failure", message=f"{res['lint_warnings']} lint warnings")
    sim = ET.SubElement(suite, "testcase", classname=f"approxmlp.{folder.name}",
                        name=f"rtl_equals_golden[{res['vectors']} vectors]")
    if res["mismatches"]:
        ET.SubElement(sim, "failure", message=res["message"])
    if res.get("changed"):
        ET.SubElement(sim, "system-out").text = "".join(f"changed since written: {name}\n"
                                                       for name in res["changed"])
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(suite).write(path, encoding="unicode", xml_declaration=True)
