"""Bad input at the command line: exit status 2, one line naming the problem and the fix,
no traceback, and nothing half-written in --out."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from approxmlp.cli import main
from approxmlp.frontend.floatnet import make_mlp


@pytest.fixture(scope="module")
def good_model(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "iris.pt"
    torch.manual_seed(0)
    torch.save(make_mlp(4, [3], 3).state_dict(), path)
    return path


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def assert_one_line_failure(code: int, err: str, *phrases: str) -> None:
    """Exit status 2 and a single stderr line holding every phrase, no traceback."""
    assert code == 2, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for p in phrases:
        assert p in lines[0], lines[0]


def assert_clean_failure(code: int, err: str, out_dir: Path, *phrases: str) -> None:
    """A one-line failure that also left nothing in (or beside) the output folder."""
    assert_one_line_failure(code, err, *phrases)
    assert not out_dir.exists() or not any(out_dir.iterdir()), list(out_dir.iterdir())
    leftovers = [p for p in out_dir.parent.iterdir() if p.name.startswith(f".{out_dir.name}.")]
    assert not leftovers, leftovers


def compile_args(model: Path, out: Path, *extra: str, data: str = "iris") -> list[str]:
    return ["compile", str(model), "--data", data, "--out", str(out), "--no-synth", "--no-verify", "-q", *extra]


def test_missing_model(capsys, tmp_path):
    out = tmp_path / "out"
    code, _, err = run(capsys, *compile_args(tmp_path / "nope.pt", out))
    assert_clean_failure(code, err, out, "nope.pt", "not found")


def test_corrupt_model(capsys, tmp_path, good_model):
    bad = tmp_path / "corrupt.pt"
    bad.write_bytes(good_model.read_bytes()[:100])
    out = tmp_path / "out"
    code, _, err = run(capsys, *compile_args(bad, out))
    assert_clean_failure(code, err, out, "corrupt.pt")


def test_random_bytes_model(capsys, tmp_path):
    bad = tmp_path / "noise.pt"
    bad.write_bytes(os.urandom(2000))
    out = tmp_path / "out"
    code, _, err = run(capsys, *compile_args(bad, out))
    assert_clean_failure(code, err, out, "noise.pt")


class Evil:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def test_pickle_with_code_is_refused(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bad = tmp_path / "evil.pt"
    torch.save({"state_dict": Evil()}, bad)
    out = tmp_path / "out"
    code, _, err = run(capsys, *compile_args(bad, out))
    assert_clean_failure(code, err, out, "refusing to run code")
    assert not (tmp_path / "PWNED").exists()


def test_whole_module_is_refused(capsys, tmp_path):
    bad = tmp_path / "module.pt"
    torch.save(make_mlp(4, [3], 3), bad)
    out = tmp_path / "out"
    code, _, err = run(capsys, *compile_args(bad, out))
    assert_clean_failure(code, err, out, "state_dict")


def test_non_mlp_model(capsys, tmp_path):
    bad = tmp_path / "conv.pt"
    torch.save(nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU()).state_dict(), bad)
    out = tmp_path / "out"
    code, _, err = run(capsys, *compile_args(bad, out))
    assert_clean_failure(code, err, out, "conv.pt")


def test_layer_shapes_disagree(capsys, tmp_path):
    bad = tmp_path / "shapes.pt"
    torch.save({"0.weight": torch.zeros(3, 4), "0.bias": torch.zeros(3),
                "2.weight": torch.zeros(3, 5), "2.bias": torch.zeros(3)}, bad)
    out = tmp_path / "out"
    code, _, err = run(capsys, *compile_args(bad, out))
    assert_clean_failure(code, err, out, "shapes.pt", "2.weight")


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_nonfinite_weights(capsys, tmp_path, good_model, value):
    sd = torch.load(good_model, weights_only=True)
    sd["0.weight"][1, 2] = value
    bad = tmp_path / "nan.pt"
    torch.save(sd, bad)
    out = tmp_path / "out"
    code, _, err = run(capsys, *compile_args(bad, out))
    assert_clean_failure(code, err, out, "0.weight")


@pytest.mark.parametrize("flag, value", [("--weight-bits", "0"), ("--weight-bits", "17"),
                                         ("--input-bits", "0"), ("--input-bits", "17"),
                                         ("--act-bits", "0"), ("--act-bits", "99")])
def test_bit_widths_out_of_range(capsys, tmp_path, good_model, flag, value):
    out = tmp_path / "out"
    code, _, err = run(capsys, *compile_args(good_model, out, flag, value))
    assert_clean_failure(code, err, out, flag)


def test_csv_without_label_column(capsys, tmp_path, good_model):
    csv = tmp_path / "data.csv"
    csv.write_text("a;b;c;d;klass\n" + "\n".join(f"{i};{i+1};{i+2};{i+3};{i % 3}" for i in range(30)) + "\n")
    out = tmp_path / "out"
    code, _, err = run(capsys, *compile_args(good_model, out, data=str(csv)))
    assert_clean_failure(code, err, out, "--label", "klass")


def test_empty_data_set(capsys, tmp_path, good_model):
    csv = tmp_path / "empty.csv"
    csv.write_text("a;b;c;d;Y\n")
    out = tmp_path / "out"
    code, _, err = run(capsys, *compile_args(good_model, out, data=str(csv)))
    assert_clean_failure(code, err, out, "empty.csv")


def test_model_does_not_fit_data(capsys, tmp_path, good_model):
    out = tmp_path / "out"
    code, _, err = run(capsys, *compile_args(good_model, out, data="wine"))
    assert_clean_failure(code, err, out, "4 inputs", "13 features")


def test_unknown_builtin(capsys, tmp_path, good_model):
    out = tmp_path / "out"
    code, _, err = run(capsys, *compile_args(good_model, out, data="mnist"))
    assert_clean_failure(code, err, out, "mnist")


def test_out_is_foreign_folder(capsys, tmp_path, good_model):
    out = tmp_path / "precious"
    out.mkdir()
    (out / "thesis.tex").write_text("do not delete")
    code, _, err = run(capsys, *compile_args(good_model, out))
    assert code == 2 and "non-empty folder" in err
    assert (out / "thesis.tex").read_text() == "do not delete"


@pytest.mark.parametrize("var, extra", [("APPROXMLP_VERILATOR", []), ("APPROXMLP_YOSYS", ["--no-verify"])])
def test_missing_tool(tmp_path, good_model, var, extra):
    """A fresh process, so that no cached tool lookup hides the missing tool."""
    out = tmp_path / "out"
    argv = ["compile", str(good_model), "--data", "iris", "--out", str(out), "-q"]
    argv += extra if var == "APPROXMLP_YOSYS" else ["--no-synth"]
    env = dict(os.environ, **{var: str(tmp_path / "no-such-tool")})
    r = subprocess.run([sys.executable, "-m", "approxmlp.cli", *argv], capture_output=True, text=True, env=env)
    assert_clean_failure(r.returncode, r.stderr, out, var)


def test_success_writes_the_folder(capsys, tmp_path, good_model):
    out = tmp_path / "out"
    code, stdout, err = run(capsys, *compile_args(good_model, out))
    assert code == 0, err
    for f in ("rtl/top.v", "ir.json", "quantizer.json", "vectors/test.npz", "vectors/test.csv",
              "report.json", "report.md", "model.onnx"):
        assert (out / f).is_file(), f
    assert "golden accuracy" in stdout
    # A second compile into the same folder replaces it.
    code, _, err = run(capsys, *compile_args(good_model, out))
    assert code == 0, err
