"""Issue acceptance on the literature's reference splits, end to end through the CLI:
a float model trained with plain PyTorch and saved as a state_dict compiles for the
printed and iCE40 targets, and the RTL matches the golden model on 100% of test vectors;
the compact liberty gives the same area as the full PDK library on these designs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from approxmlp.cli import main
from approxmlp.frontend.data import load_dataset
from approxmlp.frontend.floatnet import float_predict, train_float
from tests.conftest import PDK, REFERENCE_TOPOLOGIES, SPLITS, needs_shared

pytestmark = [pytest.mark.slow, pytest.mark.sim, pytest.mark.synth, needs_shared(SPLITS)]


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    out = {}
    for name, hidden in REFERENCE_TOPOLOGIES.items():
        data = load_dataset(str(SPLITS / name))
        net = train_float(data.X_train, data.y_train, hidden, data.n_classes, epochs=300)
        # a classifier that always answers one class folds to a constant circuit (no cells)
        assert len(set(float_predict(net, data.X_test).tolist())) > 1, name
        out[name] = root / f"{name}.pt"
        torch.save(net.state_dict(), out[name])
    return out


@pytest.mark.parametrize("target", ["printed", "fpga-ice40"])
@pytest.mark.parametrize("name", list(REFERENCE_TOPOLOGIES))
def test_reference_split_compiles_and_verifies(models, tmp_path, name, target):
    out = tmp_path / f"{name}-{target}"
    code = main(["compile", str(models[name]), "--data", str(SPLITS / name), "--target", target,
                 "--out", str(out), "-q"])
    assert code == 0
    rep = json.loads((out / "report.json").read_text())
    hidden = REFERENCE_TOPOLOGIES[name]
    assert rep["model"]["topology"].split("-")[1:-1] == [str(h) for h in hidden]
    ver = rep["verification"]
    assert ver["vectors_by_kind"]["test"] == rep["data"]["test"] > 0 and ver["vectors"] > 2000
    assert ver["mismatches"] == 0 and ver["lint_warnings"] == 0
    assert rep["accuracy"]["rtl"] == rep["accuracy"]["golden"]
    if target == "printed":
        assert rep["area_cm2"] > 0 and rep["power_mw"] > 0 and rep["cell_count"] > 0
    else:
        assert rep["luts"] > 0


@needs_shared(PDK)
@pytest.mark.parametrize("name", list(REFERENCE_TOPOLOGIES))
def test_compact_liberty_area_equals_full_library(models, tmp_path, name):
    from approxmlp.backend.synth import synthesize

    out = tmp_path / name
    assert main(["compile", str(models[name]), "--data", str(SPLITS / name), "--out", str(out),
                 "--no-verify", "--no-synth", "-q"]) == 0
    rtl = out / "rtl" / "top.v"
    for target, lib in (("printed", PDK / "egfet" / "EGFET_1.0V_TT_25C.lib"),
                        ("printed-cnt", PDK / "cnt_tft" / "CNT_TFT_3.0V_TT_25C.lib")):
        compact = synthesize(rtl, "top", target, tmp_path / f"{name}-{target}-compact")
        full = synthesize(rtl, "top", target, tmp_path / f"{name}-{target}-full", liberty=lib)
        assert full.area_um2 > 0
        assert abs(compact.area_um2 - full.area_um2) / full.area_um2 <= 0.01, (target, compact.cells, full.cells)
        assert abs(compact.static_power_mw - full.static_power_mw) / full.static_power_mw <= 0.01
