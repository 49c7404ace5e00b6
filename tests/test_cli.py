"""Bad input at the command line: exit status 2, one line naming the problem and the fix,
no traceback, and nothing half-written in --out."""

from __future__ import annotations

import json
import os
import random
import shutil
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


# ----------------------------------------------------------------------------- issue 19
# No input that breaks the tool: each defect found, refused with exit 2 and one line.

def test_demo_refuses_a_folder_it_did_not_write(capsys, tmp_path):
    out = tmp_path / "u"
    out.mkdir()
    (out / "model.pt").write_text("mine")
    code, _, err = run(capsys, "demo", "--out", str(out), "-q")
    assert_one_line_failure(code, err, str(out), "did not write", "choose an empty or new folder")
    assert [p.name for p in out.iterdir()] == ["model.pt"] and (out / "model.pt").read_text() == "mine"
    assert [p.name for p in tmp_path.iterdir()] == ["u"]  # no staging folder beside it


@pytest.mark.parametrize("argv", [
    ["compile", "{model}", "--data", "iris", "--out", "{out}", "--no-synth", "--no-verify", "--seed", "-3"],
    ["train", "--data", "iris", "--hidden", "2", "--out", "{out}.pt", "--seed", "99999999999"],
    ["explore", "--model", "{model}", "--data", "iris", "--out", "{out}", "--seed", "-1"],
])
def test_seeds_numpy_cannot_take_exit_2(capsys, tmp_path, good_model, argv):
    out = tmp_path / "out"
    argv = [a.format(model=good_model, out=out) for a in argv]
    code, _, err = run(capsys, *argv, "-q")
    assert_clean_failure(code, err, out, "--seed", "0..4294967295")
    assert not (tmp_path / "out.pt").exists()


def test_an_unexpected_exception_never_exits_1(capsys, tmp_path, good_model, monkeypatch):
    """Exit 1 means "the RTL does not match its model" and nothing else. No input is known
    to raise an unexpected exception any more, so a bug is planted here."""
    def bug(*_, **__):
        raise RuntimeError("planted bug")

    monkeypatch.setattr("approxmlp.pipeline.compiler.compile_model", bug)
    code, _, err = run(capsys, *compile_args(good_model, tmp_path / "out"))
    assert code == 3 and "Traceback" not in err
    (line,) = err.splitlines()
    assert "internal error" in line and "RuntimeError: planted bug" in line and "report it" in line


def test_inspect_refuses_a_binary_file(capsys, tmp_path):
    path = tmp_path / "top.v"
    path.write_bytes(b"\x00\x8b\xff" + bytes(range(256)) * 4)
    code, _, err = run(capsys, "inspect", str(path))
    assert_one_line_failure(code, err, "top.v", "binary file, not Verilog")


def test_inspect_refuses_verilog_it_did_not_write(capsys, tmp_path):
    path = tmp_path / "mine.v"
    path.write_text("module mine(input wire a, output wire b);\n  assign b = a;\nendmodule\n")
    code, out, err = run(capsys, "inspect", str(path))
    assert_one_line_failure(code, err, "mine.v", "not approxmlp-generated RTL")
    assert out == ""


@pytest.fixture(scope="module")
def compiled(tmp_path_factory, good_model) -> Path:
    """A design folder as `compile` writes it (neither simulated nor synthesized: fast)."""
    out = tmp_path_factory.mktemp("compiled") / "hw"
    assert main(compile_args(good_model, out)) == 0
    return out


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:200])


def _rename_module(path: Path) -> None:
    path.write_text(path.read_text().replace("module top (", "module evil ("))


def _layers_x(path: Path) -> None:
    doc = json.loads(path.read_text())
    doc["layers"] = "x"
    path.write_text(json.dumps(doc))


@pytest.mark.parametrize("name, damage, phrases", [
    ("vectors/test.npz", _truncate, ("test.npz", "damaged or truncated", "recompile")),
    ("rtl/top.v", _rename_module, ("declares module evil, not `module top`", "changed since written: rtl/top.v")),
    ("ir.json", _layers_x, ("ir.json", "malformed IR", "recompile")),
])
def test_verify_refuses_a_damaged_folder(capsys, tmp_path, compiled, name, damage, phrases):
    folder = tmp_path / "hw"
    shutil.copytree(compiled, folder)
    damage(folder / name)
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    code, _, err = run(capsys, "verify", str(folder), "-q")
    assert_one_line_failure(code, err, *phrases)
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before


def test_random_bytes_are_not_a_pytorch_file(capsys, tmp_path):
    bad = tmp_path / "noise.pt"
    bad.write_bytes(b"\x00" + random.Random(0).randbytes(2000))  # neither a zip nor a pickle
    out = tmp_path / "out"
    code, _, err = run(capsys, *compile_args(bad, out))
    assert_clean_failure(code, err, out, "noise.pt is not a PyTorch file")
    assert "refusing to run code" not in err


def test_input_bits_other_than_the_qat_models_own_are_refused(capsys, tmp_path):
    model = tmp_path / "qat.pt"
    code, _, err = run(capsys, "train", "--data", "iris", "--hidden", "2", "--epochs", "2", "--float-epochs", "2",
                       "--restarts", "1", "--out", str(model), "-q")
    assert code == 0, err
    out = tmp_path / "out"
    code, _, err = run(capsys, *compile_args(model, out, "--input-bits", "6"))
    assert_clean_failure(code, err, out, "qat.pt", "4-bit inputs", "--input-bits 6", "drop --input-bits")
    code, _, err = run(capsys, *compile_args(model, out, "--input-bits", "4"))  # its own: fine
    assert code == 0, err
    assert json.loads((out / "report.json").read_text())["model"]["input_bits"] == 4


def test_out_below_a_file_names_the_file(capsys, tmp_path, good_model):
    afile = tmp_path / "afile"
    afile.write_text("mine")
    code, _, err = run(capsys, *compile_args(good_model, afile / "sub"))
    assert_one_line_failure(code, err, f"{afile} is a file, not a folder", "choose another path")
    assert "File exists" not in err and afile.read_text() == "mine"


def test_out_that_cannot_be_written_names_out_not_a_temp_file(capsys, tmp_path, good_model):
    parent = tmp_path / "ro"
    parent.mkdir()
    parent.chmod(0o555)
    if os.access(parent, os.W_OK):  # root writes anywhere but in /sys
        parent = Path("/sys")
        if not parent.is_dir():
            pytest.skip("no folder this user cannot write in")
    out = parent / "out"
    try:
        code, _, err = run(capsys, *compile_args(good_model, out))
    finally:
        (tmp_path / "ro").chmod(0o755)
    assert_one_line_failure(code, err, f"--out {out}", "choose a folder you can write to")
    assert f"{parent}/." not in err  # not the name of a staging folder
    assert not out.exists()


def test_report_records_every_file_and_verify_names_the_changed_ones(capsys, tmp_path, compiled):
    files = json.loads((compiled / "report.json").read_text())["files"]
    assert set(files) == {"rtl/top.v", "ir.json", "quantizer.json", "vectors/test.npz", "vectors/test.csv",
                          "model.onnx", "report.md"}
    assert all(len(h) == 64 for h in files.values())


@pytest.mark.sim
def test_verify_names_changed_files_and_still_checks_them(capsys, tmp_path, good_model):
    import re

    hw = tmp_path / "hw"
    code, _, err = run(capsys, "compile", str(good_model), "--data", "iris", "--out", str(hw), "--no-synth", "-q")
    assert code == 0, err
    assert {"logs/lint.log", "logs/sim.log"} <= set(json.loads((hw / "report.json").read_text())["files"])
    code, out, err = run(capsys, "verify", str(hw), "-q")
    assert code == 0 and "changed" not in out, (out, err)  # its own logs, rewritten, are not changes
    rtl = hw / "rtl" / "top.v"
    rtl.write_text(rtl.read_text().replace("// Topology", "// edited by hand; Topology"))
    junit = tmp_path / "junit.xml"
    code, out, err = run(capsys, "verify", str(hw), "-q", "--junit", str(junit))
    assert code == 0, err
    assert "changed since written: rtl/top.v\n" in out
    match = re.search(r"(\d+)/(\d+) vectors match", out)  # the 45 test vectors and the extra ones
    assert match and match[1] == match[2] and int(match[1]) > 45, out
    assert "changed since written: rtl/top.v" in junit.read_text()
    # a change of function is still simulated and still fails, naming the changed file
    # (this untrained model's classes are all 2: its argmax is pruned to a constant)
    text, n = re.subn(r"^    assign out = 2'd2;$", "    assign out = 2'd1;", rtl.read_text(), flags=re.MULTILINE)
    assert n == 1
    rtl.write_text(text)
    code, out, err = run(capsys, "verify", str(hw), "-q")
    assert code == 1 and "Traceback" not in err
    (line,) = err.splitlines()
    assert "RTL disagrees with the golden model" in line and "changed since written: rtl/top.v" in line
