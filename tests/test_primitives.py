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
