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
from pathlib import Path
from xml.etree import ElementTree as ET

import numpy as np

from ..backend.simulate import declared_modules
from .folder import file_hashes, load_ir, read_vectors
from .steps import formal_message, run_formal, run_verification
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
    res = run_verification(ir, rtl, vec["inputs"], golden, folder / "logs", module=module,
                           registered=registered, progress=progress)
    res.pop("rtl_classes")
    res["changed"] = changed
    msg = ""
    if res["mismatches"]:
        m = res["first_mismatches"][0]
        msg = (f"RTL disagrees with the golden model on {res['mismatches']} of {res['vectors']} vectors "
               f"(first: sample {m['sample']}, inputs {m['inputs']}, RTL {m['rtl']}, golden {m['golden']}){note}")
    elif res["lint_warnings"]:
        msg = f"verilator -Wall reports {res['lint_warnings']} warnings{note}; see {folder}/logs/lint.log"
    if formal:
        res["formal"] = run_formal(ir, rtl, folder, rep, registered=registered, module=module,
                                   timeout=formal_timeout, progress=progress)
        report_path = folder / "report.json"
        if report_path.is_file():
            report_path.write_text(json.dumps(rep | {"formal": res["formal"]}, indent=1) + "\n")
        if res["formal"]["counterexample"] and not msg:
            msg = formal_message(res["formal"]) + note
    res["message"] = msg
    if junit is not None:
        write_junit(junit, folder, res)
    return res


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
