"""`approxmlp compile DIR` (or ``DIR/ir.json``): a design folder rebuilt from its own IR,
approximations and all: the same IR hash and the same RTL body (issue 21)."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from approxmlp.backend.verilog import emit_verilog
from approxmlp.cli import main
from approxmlp.frontend.floatnet import make_mlp
from approxmlp.pipeline.folder import load_ir


@pytest.fixture(scope="module")
def design(tmp_path_factory) -> Path:
    """A design folder as explore leaves one: an approximate ``ir.json`` beside the
    ``quantizer.json`` it was made with."""
    root = tmp_path_factory.mktemp("design")
    model = root / "iris.pt"
    torch.manual_seed(0)
    torch.save(make_mlp(4, [3], 3).state_dict(), model)
    exact = root / "exact"
    assert main(["compile", str(model), "--data", "iris", "--out", str(exact), "--no-verify", "--no-synth",
                 "--no-formal", "--no-onnx", "-q"]) == 0
    ir = load_ir(exact)
    first = ir.layers[0]
    approx = (replace(first.approx[0], product_trunc=2, act_trunc=1),) + first.approx[1:]
    ir = replace(ir, layers=(replace(first, approx=approx),) + ir.layers[1:], name="iris_p00")
    folder = root / "designs" / "p00"
    folder.mkdir(parents=True)
    (folder / "ir.json").write_text(ir.dumps() + "\n")
    shutil.copyfile(exact / "quantizer.json", folder / "quantizer.json")
    return folder


def body(verilog: str) -> list[str]:
    """The RTL below its header comment (which names the source file)."""
    lines = verilog.splitlines()
    return lines[next(k for k, line in enumerate(lines) if not line.startswith("//")):]


@pytest.mark.parametrize("which", ["folder", "ir.json"])
def test_compile_rebuilds_a_design_from_its_ir(tmp_path, design, which):
    ir = load_ir(design)
    assert not ir.is_exact
    out = tmp_path / "rebuilt"
    arg = design if which == "folder" else design / "ir.json"
    assert main(["compile", str(arg), "--data", "iris", "--out", str(out), "--no-verify", "--no-synth",
                 "--no-formal", "-q"]) == 0
    again = load_ir(out)
    assert again.digest == ir.digest
    assert json.loads((out / "report.json").read_text())["model"]["ir_sha256"] == ir.digest
    assert body((out / "rtl" / "top.v").read_text()) == body(emit_verilog(ir, module="top"))
    assert (out / "quantizer.json").read_text() == (design / "quantizer.json").read_text()


def test_an_ir_keeps_its_own_bit_widths(capsys, tmp_path, design):
    code = main(["compile", str(design), "--data", "iris", "--out", str(tmp_path / "o"), "--weight-bits", "4",
                 "--no-verify", "--no-synth", "--no-formal", "-q"])
    err = capsys.readouterr().err
    assert code == 2 and "--weight-bits" in err and "carries its own bit widths" in err


def test_an_ir_without_its_quantizer_is_refused(capsys, tmp_path, design):
    lone = tmp_path / "lone"
    lone.mkdir()
    shutil.copyfile(design / "ir.json", lone / "ir.json")
    code = main(["compile", str(lone / "ir.json"), "--data", "iris", "--out", str(tmp_path / "o"),
                 "--no-verify", "--no-synth", "--no-formal", "-q"])
    err = capsys.readouterr().err
    assert code == 2 and "quantizer.json not found" in err


@pytest.mark.sim
def test_a_rebuilt_design_verifies(tmp_path, design):
    out = tmp_path / "rebuilt"
    assert main(["compile", str(design), "--data", "iris", "--out", str(out), "--no-synth", "--no-formal",
                 "-q"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["verification"]["passed"] and report["verification"]["mismatches"] == 0
