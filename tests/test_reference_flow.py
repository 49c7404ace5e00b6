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

# One worker for the whole module under `make test` (--dist loadgroup): its trained models and
# compiles are shared by the tests (module fixtures), not redone on each worker.
pytestmark = [pytest.mark.slow, pytest.mark.sim, pytest.mark.synth, needs_shared(SPLITS),
              pytest.mark.xdist_group("reference_flow")]


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


@pytest.fixture(scope="module")
def compiled(models, tmp_path_factory):
    """``compiled(name, target, *flags)``: the folder of that `approxmlp compile` run, each
    distinct run made once per module (the targets share one RTL, so one verification)."""
    root = tmp_path_factory.mktemp("compiled")
    done: dict[tuple, Path] = {}

    def compile_(name: str, target: str, *flags: str) -> Path:
        key = (name, target, flags)
        if key not in done:
            out = root / "-".join((name, target, *(f.strip("-") for f in flags)))
            assert main(["compile", str(models[name]), "--data", str(SPLITS / name), "--target", target,
                         "--out", str(out), "-q", *flags]) == 0
            done[key] = out
        return done[key]

    return compile_


def _assert_verified(rep: dict, name: str) -> None:
    """The design's topology is the literature's and its RTL matched the golden model on
    every test vector (and thousands more), lint-clean."""
    hidden = REFERENCE_TOPOLOGIES[name]
    assert rep["model"]["topology"].split("-")[1:-1] == [str(h) for h in hidden]
    ver = rep["verification"]
    assert ver["vectors_by_kind"]["test"] == rep["data"]["test"] > 0 and ver["vectors"] > 2000
    assert ver["mismatches"] == 0 and ver["lint_warnings"] == 0
    assert rep["accuracy"]["rtl"] == rep["accuracy"]["golden"]


@pytest.mark.parametrize("name", list(REFERENCE_TOPOLOGIES))
def test_reference_split_compiles_and_verifies_for_printed(compiled, name):
    rep = json.loads((compiled(name, "printed") / "report.json").read_text())
    _assert_verified(rep, name)
    assert rep["area_cm2"] > 0 and rep["power_mw"] > 0 and rep["cell_count"] > 0


@pytest.mark.parametrize("name", list(REFERENCE_TOPOLOGIES))
def test_reference_split_compiles_for_ice40_with_the_verified_rtl(compiled, name):
    """The RTL does not depend on the target: the iCE40 compile's is byte for byte the
    printed compile's, which is verified on 100% of the test vectors (not simulated twice)."""
    # --no-pnr: place and route is tested on its own (tests/test_pnr.py), 20-70 s a design
    printed, ice40 = compiled(name, "printed"), compiled(name, "fpga-ice40", "--no-verify", "--no-pnr")
    _assert_verified(json.loads((printed / "report.json").read_text()), name)
    rep = json.loads((ice40 / "report.json").read_text())
    assert (ice40 / "rtl" / "top.v").read_bytes() == (printed / "rtl" / "top.v").read_bytes()
    assert rep["model"]["ir_sha256"] == json.loads((printed / "report.json").read_text())["model"]["ir_sha256"]
    assert rep["target"] == "fpga-ice40" and rep["luts"] > 0


@needs_shared(PDK)
@pytest.mark.parametrize("name", list(REFERENCE_TOPOLOGIES))
def test_compact_liberty_area_equals_full_library(compiled, tmp_path, name):
    """The compact EGFET figures are the printed compile's own synthesis (same RTL, target and
    library); the CNT-TFT ones are synthesized here."""
    from approxmlp.backend.synth import synthesize

    out = compiled(name, "printed")
    rtl, rep = out / "rtl" / "top.v", json.loads((out / "report.json").read_text())
    for target, lib in (("printed", PDK / "egfet" / "EGFET_1.0V_TT_25C.lib"),
                        ("printed-cnt", PDK / "cnt_tft" / "CNT_TFT_3.0V_TT_25C.lib")):
        if target == "printed":
            syn = rep["synthesis"]
            compact = (syn["area_um2"], syn["static_power_mw"], syn["cells"])
        else:
            c = synthesize(rtl, "top", target, tmp_path / f"{name}-{target}-compact")
            compact = (c.area_um2, c.static_power_mw, c.cells)
        full = synthesize(rtl, "top", target, tmp_path / f"{name}-{target}-full", liberty=lib)
        assert full.area_um2 > 0
        assert abs(compact[0] - full.area_um2) / full.area_um2 <= 0.01, (target, compact[2], full.cells)
        assert abs(compact[1] - full.static_power_mw) / full.static_power_mw <= 0.01
