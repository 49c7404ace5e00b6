"""The rtl/ primitives: each parameterization lint-clean alone under ``-Wall`` and its own
cocotb bench (sim/<primitive>_bench.py) passing against the Python model
(sim/primitive_models.py), exhaustively over the inputs its callers may present."""

from __future__ import annotations

import subprocess

import pytest

from approxmlp.backend.simulate import run_primitive_bench
from approxmlp.backend.tools import find_verilator
from approxmlp.backend.verilog.primitives import PRIMITIVES, rtl_dir

CASES = [
    ("approxmlp_qrelu", dict(ACC_W=8, SHIFT=2, OUT_W=4, TRUNC=0, CAN_NEG=1, CAN_SAT=1)),
    ("approxmlp_qrelu", dict(ACC_W=7, SHIFT=0, OUT_W=4, TRUNC=2, CAN_NEG=0, CAN_SAT=0)),
    ("approxmlp_qrelu", dict(ACC_W=9, SHIFT=3, OUT_W=3, TRUNC=1, CAN_NEG=0, CAN_SAT=1)),
    # readers that read only the low bits: the value saturates at 2**SAT_W - 1 all the same
    ("approxmlp_qrelu", dict(ACC_W=10, SHIFT=1, OUT_W=3, SAT_W=6, TRUNC=1, CAN_NEG=1, CAN_SAT=1)),
    ("approxmlp_qrelu", dict(ACC_W=9, SHIFT=2, OUT_W=4, SAT_W=6, TRUNC=0, CAN_NEG=0, CAN_SAT=0)),
    ("approxmlp_rescale", dict(ACC_W=8, SHIFT=2, DROP=0, OUT_W=6)),
    ("approxmlp_rescale", dict(ACC_W=5, SHIFT=2, DROP=4, OUT_W=5)),
    ("approxmlp_ge", dict(A_W=4, B_W=6, SIGNED=1)),
    ("approxmlp_ge", dict(A_W=5, B_W=3, SIGNED=0)),
]


def _ids(case):
    module, params = case
    return module.removeprefix("approxmlp_") + "-" + "-".join(f"{k}{v}" for k, v in params.items())


def test_every_primitive_has_a_case_and_a_bench():
    assert {m for m, _ in CASES} == set(PRIMITIVES)
    for name in PRIMITIVES:
        assert (rtl_dir() / f"{name}.v").is_file()
        assert (rtl_dir().parent / "sim" / f"{name}_bench.py").is_file()


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_primitive_lint_clean(case):
    module, params = case
    v = find_verilator()
    argv = [str(v.executable), "--lint-only", "-Wall", *(f"-G{k}={n}" for k, n in params.items()),
            str(rtl_dir() / f"{module}.v")]
    r = subprocess.run(argv, capture_output=True, text=True, env=v.env(), cwd=rtl_dir())
    assert r.returncode == 0 and "%Warning" not in r.stdout + r.stderr, r.stdout + r.stderr


@pytest.mark.sim
@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_primitive_bench(tmp_path, case):
    module, params = case
    assert run_primitive_bench(module, params, tmp_path / "sim") == 1


def _design_folder(tmp_path, ir):
    """A design folder as the writers leave it (rtl/top.v beside its primitives), with
    the sha256 of every file recorded, without simulation or synthesis."""
    import json

    import numpy as np

    from approxmlp.backend.verilog import emit_verilog
    from approxmlp.backend.verilog.primitives import write_rtl
    from approxmlp.core.golden import evaluate
    from approxmlp.pipeline.folder import file_hashes, write_vectors

    folder = tmp_path / "design"
    write_rtl(folder / "rtl" / "top.v", emit_verilog(ir))
    (folder / "ir.json").write_text(ir.dumps() + "\n")
    X = np.array([[1, 2, 3], [15, 0, 7], [9, 9, 9], [0, 15, 3]])
    write_vectors(folder / "vectors", X, evaluate(ir, X).classes, None)
    report = {"target": "printed", "registered": False, "files": file_hashes(folder)}
    (folder / "report.json").write_text(json.dumps(report) + "\n")
    return folder


def test_design_folder_carries_the_primitives_it_uses(tmp_path, tiny):
    folder = _design_folder(tmp_path, tiny)
    assert sorted(p.name for p in (folder / "rtl").iterdir()) == sorted(["top.v", *(f"{p}.v" for p in PRIMITIVES)])
    for name in PRIMITIVES:
        assert (folder / "rtl" / f"{name}.v").read_text() == (rtl_dir() / f"{name}.v").read_text()


@pytest.mark.sim
def test_verify_names_a_changed_primitive_and_checks_the_folder_copy(tmp_path, capsys, tiny):
    """A design folder is checked with the primitives it carries: an edited copy is named,
    and one that computes another function fails the simulation."""
    from approxmlp.cli import main

    folder = _design_folder(tmp_path, tiny)
    qrelu = folder / "rtl" / "approxmlp_qrelu.v"
    qrelu.write_text(qrelu.read_text() + "// reviewed again\n")
    assert main(["verify", str(folder), "-q"]) == 0
    assert "changed since written: rtl/approxmlp_qrelu.v" in capsys.readouterr().out
    # a QReLU that never saturates nor clamps negatives: another function
    qrelu.write_text(qrelu.read_text().replace("assign out = under ? {OUT_W{1'b0}} : over ? ones : value;",
                                               "assign out = value;"))
    assert main(["verify", str(folder), "-q"]) == 1
    err = capsys.readouterr().err
    assert "RTL disagrees with the golden model" in err and "rtl/approxmlp_qrelu.v" in err
