"""Quantization-aware training (approxmlp.frontend.qat, `approxmlp train`): the Brevitas model and
the exported integer IR compute the same classes, bit for bit; the model file round-trips
into `approxmlp compile` without re-quantization; bad options fail cleanly."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from approxmlp.core import golden
from approxmlp.cli import main
from approxmlp.frontend import qat
from approxmlp.frontend.data import load_dataset
from approxmlp.frontend.float_screen import float_screen
from approxmlp.frontend.input_quantizer import choose_quantizer
from approxmlp.frontend.qat_loop import Split, logits_accuracy
from approxmlp.frontend.train_config import WEIGHT_MODES
from approxmlp.progress import quiet_epochs
from approxmlp.errors import ApproxMLPError, ModelError
from approxmlp.frontend.model_file import INTEGER_MODEL_FORMAT, IntegerModel, load_model

from tests.test_cli import assert_one_line_failure

from approxmlp.frontend import brevitas_net

#: Small but real trainings: a few seconds each on one core.
FAST = dict(epochs=40, float_epochs=60, batch_size=16, patience=20, restarts=1)

CASES = {
    "int-1": ("iris", (4,), "int"),
    "pow2-1": ("iris", (4,), "pow2"),
    "int-2": ("wine", (6, 4), "int"),
    "pow2-2": ("wine", (6, 4), "pow2"),
}


@pytest.fixture(scope="module")
def trained() -> dict:
    """One training per case, shared by the tests of this module."""
    out = {}
    for key, (spec, hidden, weights) in CASES.items():
        data = load_dataset(spec)
        cfg = qat.TrainConfig(hidden=hidden, weights=weights, **FAST)
        out[key] = (data, qat.train(data, cfg, name=f"t_{key.replace('-', '_')}"))
    return out


def _codes(data, result):
    q = result.quantizer
    return np.concatenate([q(data.X_train), q(data.X_test)])


def _logits(net, codes) -> np.ndarray:
    net.eval()
    with torch.no_grad():
        return net(net.codes_to_input(codes)).numpy().astype(np.float64)


# ----------------------------------------------------------------------------- exactness
@pytest.mark.xdist_group("qat_trained")
@pytest.mark.parametrize("case", list(CASES))
def test_brevitas_equals_golden_on_every_sample(trained, case):
    data, res = trained[case]
    codes = _codes(data, res)
    assert np.array_equal(brevitas_net.brevitas_classes(res.net, codes), golden.predict(res.ir, codes))
    assert res.summary["brevitas_equals_golden"] == {"samples": len(codes), "mismatches": 0}
    assert len(res.ir.layers) == len(CASES[case][1]) + 1


@pytest.mark.xdist_group("qat_trained")
@pytest.mark.parametrize("case", list(CASES))
def test_logits_are_the_integer_accumulators(trained, case):
    """Stronger than class agreement: the float logits are exactly acc * 2**e."""
    data, res = trained[case]
    codes = _codes(data, res)
    e = res.layers[-1]["output_scale_log2"]
    scores = golden.evaluate(res.ir, codes).scores
    assert np.array_equal(_logits(res.net, codes), np.ldexp(scores.astype(np.float64), e))


@pytest.mark.xdist_group("qat_trained")
def test_float64_fallback_is_exact_too(trained, monkeypatch):
    """Past 2**24 the check runs Brevitas in float64; the classes must not change."""
    data, res = trained["int-2"]
    codes = _codes(data, res)
    monkeypatch.setattr(brevitas_net, "F32_EXACT", 0)
    logits = brevitas_net.brevitas_logits(res.net, codes, ir=res.ir)
    assert next(res.net.parameters()).dtype == torch.float32  # restored
    e = res.layers[-1]["output_scale_log2"]
    assert np.array_equal(logits, np.ldexp(golden.evaluate(res.ir, codes).scores.astype(np.float64), e))


@pytest.mark.xdist_group("qat_trained")
@pytest.mark.parametrize("case", list(CASES))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 64), corner=st.sampled_from(["random", "zeros", "max", "mixed"]))
def test_brevitas_equals_golden_on_random_codes(trained, case, seed, n, corner):
    data, res = trained[case]
    top = res.quantizer.top
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, top + 1, size=(n, res.ir.n_inputs))
    if corner == "zeros":
        codes[:] = 0
    elif corner == "max":
        codes[:] = top
    elif corner == "mixed":
        codes = rng.choice([0, top], size=codes.shape)
    assert np.array_equal(brevitas_net.brevitas_classes(res.net, codes), golden.predict(res.ir, codes))
    e = res.layers[-1]["output_scale_log2"]
    assert np.array_equal(_logits(res.net, codes),
                          np.ldexp(golden.evaluate(res.ir, codes).scores.astype(np.float64), e))


def test_floor_rounding_on_ties():
    """QuantReLU floors like the IR's arithmetic shift: x.5 steps go down, not to even."""
    net = brevitas_net.QATNet(1, (1,), 2, input_bits=4, act_bits=8)
    act = net.acts[0]
    act.train()
    with torch.no_grad():
        for _ in range(brevitas_net._ActQuant.collect_stats_steps + 1):
            act(torch.tensor([[0.0], [4.0]]))
    act.eval()
    scale = float(act(torch.tensor([[1.0]])).scale.detach())
    x = torch.tensor([[2.5 * scale], [3.5 * scale], [-0.5 * scale]])
    out = act(x)
    assert (out.value / scale).flatten().tolist() == [2.0, 3.0, 0.0]


# ----------------------------------------------------------------------------- weights
@pytest.mark.xdist_group("qat_trained")
@pytest.mark.parametrize("case", ["pow2-1", "pow2-2"])
def test_pow2_weights_are_powers_of_two(trained, case):
    _, res = trained[case]
    top = 1 << (res.summary["config"]["weight_bits"] - 2)
    for layer in res.ir.layers:
        a = np.abs(layer.weight_matrix)
        nz = a[a != 0]
        assert nz.size, "a layer with only zero weights"
        assert np.all(nz & (nz - 1) == 0), layer.weight_matrix
        assert nz.max() <= top


@pytest.mark.xdist_group("qat_trained")
@pytest.mark.parametrize("case", ["int-1", "int-2"])
def test_int_weights_and_biases_fit_their_widths(trained, case):
    _, res = trained[case]
    cfg = res.summary["config"]
    wmax = (1 << (cfg["weight_bits"] - 1)) - 1
    bmax = 1 << (cfg["bias_bits"] - 1)
    for layer in res.ir.layers:
        assert np.abs(layer.weight_matrix).max() <= wmax
        assert -bmax <= layer.bias_vector.min() and layer.bias_vector.max() < bmax
        # not degenerate: the weights use most of their range
        assert np.abs(layer.weight_matrix).max() > wmax // 4


@pytest.mark.xdist_group("qat_trained")
@pytest.mark.parametrize("case", list(CASES))
def test_learns_something(trained, case):
    data, res = trained[case]
    majority = np.bincount(data.y_test).max() / len(data.y_test)
    assert res.summary["accuracy"]["test"] > majority + 0.2
    assert res.summary["accuracy"]["test"] == pytest.approx(
        float(np.mean(golden.predict(res.ir, res.quantizer(data.X_test)) == data.y_test)))


def test_pow2_projection_is_straight_through():
    w = torch.tensor([0.0, 0.74, 0.76, -3.0, -2.9, 1.5, 1e-30], requires_grad=True)
    p = brevitas_net.pow2_project(w)
    assert p.tolist() == pytest.approx([0.0, 0.5, 1.0, -4.0, -2.0, 2.0, 2.0**math.floor(math.log2(1e-30))])
    p.sum().backward()
    assert w.grad.tolist() == [1.0] * 7


def _screen(spec="wine", hidden=(4,), **kw):
    data = load_dataset(spec)
    cfg = qat.TrainConfig(hidden=hidden, **{**dict(float_epochs=30, batch_size=16, patience=10, restarts=2,
                                                   float_candidates=6), **kw})
    q = choose_quantizer(data, cfg.input_bits)
    split = data.validation_split(cfg.val_fraction, cfg.seed)
    net = brevitas_net.QATNet(data.n_features, hidden, data.n_classes)
    d = Split(net.codes_to_input(q(split.X_fit)), torch.tensor(split.y_fit),
                   net.codes_to_input(q(split.X_val)), torch.tensor(split.y_val))
    return data, cfg, net, d, float_screen((data.n_features, *hidden, data.n_classes), d, cfg,
                                                 torch.nn.CrossEntropyLoss(), quiet_epochs)


def test_float_screen_ranks_its_networks_and_hands_them_over_intact():
    """Every screened network, loaded into a QATNet, scores on validation what the screen
    recorded for it; the list is best first."""
    data, cfg, net, d, starts = _screen()
    assert len(starts) == cfg.float_candidates
    assert sorted({s.best["candidate"] for s in starts}) == list(range(cfg.float_candidates))
    accs = []
    for s in starts:
        with torch.no_grad():
            for lin, w, b in zip(net.linears, s.weights, s.biases):
                lin.weight.copy_(w)
                lin.bias.copy_(b)
            accs.append(logits_accuracy(net.forward_float(d.xv), d.yv))
        assert accs[-1] == pytest.approx(s.best["val_acc"], abs=1e-6)
    assert accs == sorted(accs, reverse=True)


def test_float_screen_is_batched_training_not_one_network():
    """The networks start apart and end apart (a broadcast bug would train one network K
    times); at least as many as restarts are screened."""
    _, cfg, _, _, starts = _screen(float_candidates=1, restarts=3)
    assert len(starts) == 3
    w = [s.weights[0] for s in starts]
    assert not torch.equal(w[0], w[1]) and not torch.equal(w[1], w[2])


def test_deterministic_for_a_seed():
    data = load_dataset("iris")
    cfg = qat.TrainConfig(hidden=(3,), epochs=5, float_epochs=5, batch_size=16, restarts=1, seed=3)
    assert qat.train(data, cfg).ir.digest == qat.train(data, cfg).ir.digest


# ----------------------------------------------------------------------------- export / load
@pytest.mark.xdist_group("qat_trained")
def test_model_file_round_trip(trained, tmp_path):
    data, res = trained["int-2"]
    path = tmp_path / "model.pt"
    qat.save(res, path)
    raw = torch.load(path, weights_only=True)  # plain tensors and JSON-able metadata only
    assert raw["format"] == INTEGER_MODEL_FORMAT
    assert all(t.dtype == torch.int64 for t in raw["tensors"].values())
    json.dumps(raw["metadata"])
    m = load_model(path)
    assert isinstance(m, IntegerModel)
    assert m.ir == res.ir and m.ir.digest == res.ir.digest
    assert m.quantizer == res.quantizer
    assert m.weight_bits == 8 and m.act_bits == 8
    assert np.array_equal(m.predict(data.X_test), golden.predict(res.ir, res.quantizer(data.X_test)))


@pytest.mark.xdist_group("qat_trained")
def test_loader_does_not_import_brevitas(tmp_path, trained):
    import subprocess
    import sys

    _, res = trained["int-1"]
    path = tmp_path / "model.pt"
    qat.save(res, path)
    code = ("import sys; from approxmlp.frontend.model_file import load_model; m = load_model(sys.argv[1]); "
            "assert 'brevitas' not in sys.modules, 'brevitas imported'; print(m.ir.digest)")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == res.ir.digest


@pytest.mark.xdist_group("qat_trained")
def test_tampered_model_is_refused(tmp_path, trained):
    _, res = trained["int-1"]
    path = tmp_path / "model.pt"
    qat.save(res, path)
    raw = torch.load(path, weights_only=True)
    raw["tensors"]["layers.0.weight"][0, 0] += 1
    torch.save(raw, path)
    with pytest.raises(ModelError, match="digest"):
        load_model(path)
    raw["format"] = "approxmlp-integer-mlp/99"
    torch.save(raw, path)
    with pytest.raises(ModelError, match="unsupported model format"):
        load_model(path)
    raw["format"] = INTEGER_MODEL_FORMAT
    raw["tensors"]["layers.0.weight"] = raw["tensors"]["layers.0.weight"].float()
    torch.save(raw, path)
    with pytest.raises(ModelError, match="integer tensor"):
        load_model(path)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_train_then_compile_uses_the_ir_as_is(capsys, tmp_path):
    model = tmp_path / "m.pt"
    code, out, err = run(capsys, "train", "--data", "iris", "--hidden", "3", "--hidden", "3", "--out", str(model),
                         "--epochs", "30", "--float-epochs", "40", "--batch-size", "16", "--restarts", "1",
                         "--weights", "pow2", "-q")
    assert code == 0, err
    assert "Brevitas = golden" in out and "150/150" in out
    trained = load_model(model)
    folder = tmp_path / "design"
    code, out, err = run(capsys, "compile", str(model), "--data", "iris", "--out", str(folder), "--no-synth",
                         "--no-verify", "-q")
    assert code == 0, err
    report = json.loads((folder / "report.json").read_text())
    assert report["model"]["ir_sha256"] == trained.ir.digest
    assert report["model"]["topology"] == "4-3-3-3"
    assert report["accuracy"]["golden"] == pytest.approx(trained.metadata["accuracy"]["test"])
    assert report["model"]["meta"]["weights"] == "pow2"


# ----------------------------------------------------------------------------- bad options
@pytest.mark.parametrize("args,phrase", [
    (["--input-bits", "0"], "--input-bits"),
    (["--input-bits", "17"], "--input-bits"),
    (["--weight-bits", "0"], "--weight-bits"),
    (["--weight-bits", "17"], "--weight-bits"),
    (["--act-bits", "0"], "--act-bits"),
    (["--act-bits", "17"], "--act-bits"),
    (["--bias-bits", "0"], "--bias-bits"),
    (["--bias-bits", "17"], "--bias-bits"),
    (["--hidden", "0"], "--hidden"),
    (["--hidden", "4", "--hidden", "-1"], "--hidden"),
    (["--epochs", "0"], "--epochs"),
    (["--val-fraction", "1.5"], "--val-fraction"),
    (["--restarts", "0"], "--restarts"),
    (["--seed", "-1"], "--seed"),
    (["--lr", "0"], "--lr"),
])
def test_bad_options_exit_2(capsys, tmp_path, args, phrase):
    model = tmp_path / "m.pt"
    argv = ["train", "--data", "iris", "--out", str(model), "-q"] + args
    if "--hidden" not in args:
        argv += ["--hidden", "3"]
    code, _, err = run(capsys, *argv)
    assert_one_line_failure(code, err, phrase)
    assert not model.exists()


def test_one_class_data_set_exits_2(capsys, tmp_path):
    csv = tmp_path / "one.csv"
    csv.write_text("a;b;Y\n" + "".join(f"{i};{i * 2};yes\n" for i in range(20)))
    code, _, err = run(capsys, "train", "--data", str(csv), "--hidden", "3", "--out", str(tmp_path / "m.pt"), "-q")
    assert_one_line_failure(code, err, "single class")


def test_out_is_a_folder_exits_2(capsys, tmp_path):
    code, _, err = run(capsys, "train", "--data", "iris", "--hidden", "3", "--out", str(tmp_path), "-q")
    assert_one_line_failure(code, err, "folder")


def test_config_errors_are_approxmlp_errors():
    with pytest.raises(ApproxMLPError):
        qat.TrainConfig(hidden=())
    with pytest.raises(ApproxMLPError):
        qat.TrainConfig(weights="float")


# ----------------------------------------------------------------------------- reference sets
#: (data set, hidden, minimum test accuracy of the integer model, int and pow2 weights): the
#: literature's exact baselines, on its reference splits (Pendigits and WhiteWine fixed
#: 2026-12-02). RedWine (11-2-6, minimum 0.56) left this list on 2026-12-07: its two
#: trainings were 190 s of `make test` (the second slowest test) for the path WhiteWine
#: (the same eleven features, seven classes) already takes; `make bench` trains all nine.
REFERENCE = [
    ("splits/Breast_Cancer", (3,), 0.95),
    ("splits/Cardio", (3,), 0.88),
    ("splits/Pendigits", (5,), 0.93),
    ("splits/WhiteWine", (4,), 0.53),
]


@pytest.mark.slow
@pytest.mark.parametrize("spec,hidden,minimum", REFERENCE,
                         ids=lambda v: Path(v).stem if isinstance(v, str) else None)
def test_reference_data_sets(spec, hidden, minimum, datasets):
    data = load_dataset(str(datasets / spec))
    accs = {}
    for weights in WEIGHT_MODES:
        res = qat.train(data, qat.TrainConfig(hidden=hidden, weights=weights))
        codes = _codes(data, res)
        assert np.array_equal(brevitas_net.brevitas_classes(res.net, codes), golden.predict(res.ir, codes))
        accs[weights] = float(np.mean(golden.predict(res.ir, res.quantizer(data.X_test)) == data.y_test))
        print(f"{spec} {weights}: test {accs[weights]:.4f}, float {res.summary['float_accuracy']['test']:.4f}, "
              f"{res.summary['train_seconds']:.0f} s")
    assert accs["int"] >= minimum
    assert accs["pow2"] >= accs["int"] - 0.02

