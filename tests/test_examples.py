"""Every script in examples/ runs as a user would run it (a subprocess with an OUT_DIR) and
produces what its docstring promises. Real training, Verilator and Yosys: `make test` only."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from approxmlp.backend.inspect import inspect_rtl

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def heavy(test):
    """Trains, simulates with Verilator and synthesizes with Yosys: `make test`, not `pytest -q`."""
    return pytest.mark.sim(pytest.mark.synth(pytest.mark.slow(test)))


def run_example(name: str, *args, cwd: Path, ok: bool = True) -> subprocess.CompletedProcess:
    """Run examples/<name> with this Python from an unrelated folder (the examples must not
    depend on the current directory or on `approxmlp` being on PATH)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}  # as from a shell
    env["PYTHONIOENCODING"] = "utf-8"
    r = subprocess.run([sys.executable, str(EXAMPLES / name), *map(str, args)], cwd=cwd, env=env,
                       capture_output=True, text=True, encoding="utf-8", timeout=600, check=False)
    if ok:
        assert r.returncode == 0, f"{name} exited {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    assert "Traceback" not in r.stderr, r.stderr
    return r


def test_every_example_has_a_test_and_a_usage_docstring():
    scripts = sorted(p.name for p in EXAMPLES.glob("*.py"))
    assert scripts == ["01_compile_pytorch_model.py", "02_train_qat.py", "03_explore_power_budget.py",
                       "04_read_the_rtl.py", "05_compile_sklearn_model.py", "06_brevitas_to_qonnx.py"]
    for name in scripts:
        text = (EXAMPLES / name).read_text()
        assert text.startswith('"""') and f"python examples/{name} [OUT_DIR]" in text, name


@pytest.fixture(scope="module")
def example01(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """Example 01 run once, read by the tests of 01 and 04 (which must share an xdist worker)."""
    out = tmp_path_factory.mktemp("ex") / "01"
    return out, run_example("01_compile_pytorch_model.py", out, cwd=out.parent)


@heavy
@pytest.mark.xdist_group("example01")
def test_01_compile_pytorch_model(example01):
    out, r = example01
    hw = out / "hw"
    assert (out / "wine.pt").is_file() and (hw / "rtl" / "top.v").is_file()
    report = json.loads((hw / "report.json").read_text())
    v = report["verification"]
    assert v["passed"] and v["mismatches"] == 0 and v["vectors_by_kind"]["test"] == 54 and v["vectors"] > 2000
    assert report["target"] == "printed" and report["area_cm2"] > 0 and report["power_mw"] > 0
    assert report["accuracy"]["rtl"] >= 0.9
    assert f"on 54 test vectors; {v['vectors']} vectors simulated (0 mismatches); area {report['area_cm2']:.2f} cm²" in r.stdout
    assert f"RTL: {hw / 'rtl' / 'top.v'}" in r.stdout


@heavy
def test_02_train_qat(tmp_path):
    out = tmp_path / "02"
    r = run_example("02_train_qat.py", out, cwd=tmp_path)
    rows = {}
    for weights in ("int", "pow2"):
        assert (out / f"{weights}.pt").is_file()
        report = json.loads((out / f"{weights}-hw" / "report.json").read_text())
        assert report["verification"]["passed"] and report["verification"]["vectors_by_kind"]["test"] == 171
        assert report["accuracy"]["rtl"] >= 0.9, (weights, report["accuracy"])
        line = re.search(rf"^{weights} +([0-9.]+) +\d+/\d+ +([0-9.]+) +([0-9.]+) +(\S+)$", r.stdout, re.MULTILINE)
        assert line, r.stdout
        assert float(line[1]) == pytest.approx(report["accuracy"]["rtl"], abs=1e-4)
        assert float(line[2]) == pytest.approx(report["area_cm2"], abs=0.01)
        assert Path(line[4]) == out / f"{weights}-hw" / "rtl" / "top.v"
        rows[weights] = report
    # Every product a shift: the power-of-two design must be clearly smaller.
    assert rows["pow2"]["area_cm2"] < rows["int"]["area_cm2"] / 2
    assert "power-of-two weights:" in r.stdout


@heavy
def test_03_explore_power_budget_picks_a_verified_design_within_3_mw(tmp_path):
    out = tmp_path / "03"
    r = run_example("03_explore_power_budget.py", out, cwd=tmp_path)
    summary = json.loads((out / "explore" / "pareto.json").read_text())
    fits = [p for p in summary["points"] if p["verification"]["passed"] and p["power_mw"] <= 3.0]
    # the pick is made on validation accuracy (test accuracy only reported)
    best = max(fits, key=lambda p: (p["validation_accuracy"], -p["power_mw"]))
    assert summary["power_budget"]["design"] == best["id"] and summary["power_budget"]["picked_on"] == "validation_accuracy"
    assert re.search(rf"^Chosen on validation: {best['id']}: validation accuracy {best['validation_accuracy']:.4f} "
                     rf".* test accuracy {best['test_accuracy']:.4f} .* {best['power_mw']:.3f} mW ", r.stdout,
                     re.MULTILINE), r.stdout
    rtl = out / "explore" / best["rtl"]
    assert f"RTL: {rtl}\n" in r.stdout and rtl.is_file()
    design = rtl.parent.parent
    assert json.loads((design / "report.json").read_text())["verification"]["passed"]


@heavy
def test_03_explore_power_budget_says_when_nothing_fits(tmp_path):
    out = tmp_path / "03"
    r = run_example("03_explore_power_budget.py", out, 0.1, cwd=tmp_path, ok=False)
    assert r.returncode == 1, r.stderr
    assert "No verified design fits 0.1 mW. The lowest-power one is " in r.stdout
    assert "Chosen" not in r.stdout and "RTL:" not in r.stdout


@heavy
@pytest.mark.xdist_group("example01")
def test_04_read_the_rtl(example01, tmp_path):
    out01, _ = example01
    out = tmp_path / "04"
    r = run_example("04_read_the_rtl.py", out, out01 / "hw", cwd=tmp_path)
    assert r.stdout.startswith("// -- layer[0].neuron[0]: qrelu4((+7*x0 -2*x1 +4) >>> 1)")
    info = inspect_rtl(out / "hand_made.v")
    assert [n["name"] for n in info["neurons"]] == ["l0_n0", "l0_n1", "l1_n0", "l1_n1"]
    assert "(x0 & 4'b1100)" in r.stdout                # the hand-set operand mask, as the RTL reads it
    assert re.search(r"l0_n0 .* \d+\.\d %", r.stdout)  # area shares of the compiled wine design
    # Without a compiled folder it still runs, and says where the area shares would come from.
    r = run_example("04_read_the_rtl.py", tmp_path / "solo" / "04", cwd=tmp_path)
    assert f"(no compiled design at {tmp_path / 'solo' / '01' / 'hw'}: run examples/01" in r.stdout


@pytest.mark.sim
@pytest.mark.slow
def test_05_compile_sklearn_model(tmp_path):
    out = tmp_path / "05"
    r = run_example("05_compile_sklearn_model.py", out, cwd=tmp_path)
    report = json.loads((out / "hw" / "report.json").read_text())
    acc, v = report["accuracy"], report["verification"]
    assert v["passed"] and v["vectors_by_kind"]["test"] == 54 and v["vectors"] > 54 and v["mismatches"] == 0
    assert acc["float_accuracy"] >= 0.9 and acc["golden"] >= 0.9
    assert (f"float accuracy (scikit-learn) {acc['float_accuracy']:.4f}   quantized (golden = RTL) "
            f"{acc['golden']:.4f}   RTL verified on 54/54 test vectors") in r.stdout
    assert (out / "wine.skops").is_file() and (out / "wine.onnx").is_file() and (out / "hw" / "model.onnx").is_file()


@pytest.mark.sim
@pytest.mark.slow
def test_06_brevitas_to_qonnx(tmp_path):
    out = tmp_path / "06"
    r = run_example("06_brevitas_to_qonnx.py", out, cwd=tmp_path)
    report = json.loads((out / "hw" / "report.json").read_text())
    assert report["model"]["meta"]["quantization"] == "qonnx-pow2-scales"
    v = report["verification"]
    assert v["passed"] and v["vectors_by_kind"]["test"] == 45 and v["vectors"] > 45
    assert "QONNX execution = design on 45/45 test vectors; RTL verified on 45/45" in r.stdout
