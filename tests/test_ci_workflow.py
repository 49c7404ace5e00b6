"""The users' CI template flows/ci/approxmlp.yml, run here as GitHub Actions would run it.

* The file is valid YAML of the expected shape (fast, in the default suite).
* Its `run:` steps, executed in order by bash with `set -euo pipefail` in a scratch folder,
  with the workflow's `env:` (MODEL and DATA pointed at a small float model and CSV made
  here, as a user would set them) and a GITHUB_STEP_SUMMARY file, all pass and leave a
  verified design, JUnit XML that parses, and the report on the summary page.
  `uses:` steps (checkout, setup-python, upload-artifact) are GitHub's own and are skipped.
  The step with `id: install` needs the network (PyPI, the PyTorch CPU index); this test
  must run offline, so it only checks that step's bash syntax and skips running it when
  approxmlp is already importable, which is exactly the state the step produces (the
  commands then run from this interpreter's bin folder, put first on PATH).
* `approxmlp verify` fails the job (exit 1) on RTL that disagrees with the golden model and
  still writes JUnit XML naming the failure.
* `approxmlp.testing.assert_design_verifies`, used as in a user's own pytest suite.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree as ET

import numpy as np
import pytest
import torch
import yaml

from approxmlp.testing import assert_design_verifies

WORKFLOW = Path(__file__).resolve().parent.parent / "flows" / "ci" / "approxmlp.yml"
BIN = Path(sys.executable).parent


def load_workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def heavy(test):
    """Real Verilator simulation and Yosys synthesis: `make test`, not `pytest -q`."""
    return pytest.mark.sim(pytest.mark.synth(test))


def shell_env(*, keep_pytest: bool = False, **extra: str) -> dict:
    """This environment as a CI shell has it: without pytest's PYTEST_* variables (unless
    ``keep_pytest``: a user's own test suite), with this interpreter's bin first."""
    env = {k: v for k, v in os.environ.items() if keep_pytest or not k.startswith("PYTEST_")}
    env.update(PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", PYTHONIOENCODING="utf-8")
    env.update(extra)
    return env


def bash(script: str, cwd: Path, env: dict, *, check_only: bool = False) -> subprocess.CompletedProcess:
    """A `run:` block as GitHub runs it with `shell: bash` (plus -u: unset variables fail)."""
    argv = ["bash", "--noprofile", "--norc", "-euo", "pipefail"] + (["-n"] if check_only else []) + ["-c", script]
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, encoding="utf-8", timeout=900,
                          check=False)


def test_workflow_is_valid_yaml_of_the_expected_shape():
    wf = load_workflow()
    triggers = wf.get("on", wf.get(True))            # YAML 1.1 reads a bare `on` key as true
    assert {"push", "pull_request"} <= set(triggers)
    assert {"MODEL", "DATA", "TARGET", "APPROXMLP"} <= set(wf["env"])
    from approxmlp.backend.synth import TARGETS
    assert wf["env"]["TARGET"] in TARGETS
    assert wf["defaults"]["run"]["shell"] == "bash"
    steps = wf["jobs"]["hardware"]["steps"]
    for step in steps:
        assert ("uses" in step) != ("run" in step), step
    runs = [s for s in steps if "run" in s]
    assert [s.get("id") for s in runs].count("install") == 1
    assert runs[0]["id"] == "install"                # installs first ...
    for s in runs[1:]:                               # ... and nothing later touches the network
        assert "pip" not in s["run"] and "http" not in s["run"], s
    uploads = [s for s in steps if s.get("uses", "").startswith("actions/upload-artifact")]
    assert uploads and uploads[0]["if"] == "always()" and uploads[0]["with"]["path"].rstrip("/") == "hw"


@pytest.fixture(scope="module")
def workflow_run(tmp_path_factory):
    """Run the template's steps in order in a scratch 'repository'; (folder, step results)."""
    from sklearn.datasets import load_iris

    from approxmlp.frontend.data import load_dataset
    from approxmlp.frontend.floatnet import train_float

    repo = tmp_path_factory.mktemp("repo")
    # The user's files: the data as a CSV with a label column Y, a float PyTorch model.
    X, y = load_iris(return_X_y=True)
    (repo / "data").mkdir()
    csv = repo / "data" / "iris.csv"
    np.savetxt(csv, np.column_stack([X, y]), delimiter=",", fmt="%g", header="f0,f1,f2,f3,Y", comments="")
    data = load_dataset(str(csv))                    # the split compile will use (70/30, seed 0)
    (repo / "models").mkdir()
    torch.save(train_float(data.X_train, data.y_train, (3,), data.n_classes).state_dict(),
               repo / "models" / "iris.pt")

    wf = load_workflow()
    job = wf["jobs"]["hardware"]
    summary = repo / "step_summary.md"
    env = shell_env(**{k: str(v) for k, v in {**wf.get("env", {}), **job.get("env", {})}.items()})
    env.update(MODEL="models/iris.pt", DATA="data/iris.csv", GITHUB_STEP_SUMMARY=str(summary))
    results = []
    for step in job["steps"]:
        if "run" not in step:
            continue
        step_env = dict(env, **{k: str(v) for k, v in step.get("env", {}).items()})
        if step.get("id") == "install":
            syntax = bash(step["run"], repo, step_env, check_only=True)
            assert syntax.returncode == 0, syntax.stderr
            if importlib.util.find_spec("approxmlp") is not None:
                results.append((step["name"], None))  # skipped: needs the network, already done
                continue
            pytest.fail("approxmlp is not importable here and the install step needs the network")
        r = bash(step["run"], repo, step_env)
        results.append((step["name"], r))
        if r.returncode:
            break
    return repo, results


@pytest.mark.xdist_group("ci_workflow")
@heavy
def test_workflow_run_steps_pass(workflow_run):
    repo, results = workflow_run
    ran = [(name, r) for name, r in results if r is not None]
    assert [name for name, _ in ran] == ["Compile, verify and synthesize", "Re-verify the RTL (JUnit for the test report)",
                                         "Results on the run's summary page"]
    for name, r in ran:
        assert r.returncode == 0, f"step {name!r} exited {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    hw = repo / "hw"
    assert (hw / "rtl" / "top.v").is_file() and (hw / "report.json").is_file()
    found = re.search(r"^(\d+)/\1 vectors match the golden model \(0 mismatches, 0 lint warnings\)$", ran[1][1].stdout,
                      re.MULTILINE)
    n = json.loads((hw / "report.json").read_text())["verification"]["vectors"]
    assert found and int(found[1]) == n > 45
    suite = ET.parse(hw / "junit.xml").getroot()
    assert suite.tag == "testsuite" and suite.get("tests") == "2" and suite.get("failures") == "0"
    assert [c.get("name") for c in suite.iter("testcase")] == ["lint", f"rtl_equals_golden[{n} vectors]"]
    assert not list(suite.iter("failure"))
    text = (repo / "step_summary.md").read_text(encoding="utf-8")
    assert text.startswith("# approxmlp report: iris → printed") and f"| vectors verified | {n}/{n} " in text


@pytest.fixture(scope="module")
def tampered(workflow_run, tmp_path_factory) -> Path:
    """A copy of the compiled folder whose RTL swaps the two sides of the first argmax
    node (the loser's class is taken): still lint-clean Verilog, wrong classes."""
    repo, _ = workflow_run
    bad = tmp_path_factory.mktemp("tampered") / "hw"
    shutil.copytree(repo / "hw", bad)
    rtl = bad / "rtl" / "top.v"
    text, n = re.subn(r"^(\s*wire .*am1_0_i = am1_0_ge \? )(\S+) : (\S+);", r"\1\3 : \2;", rtl.read_text(),
                      count=1, flags=re.MULTILINE)
    assert n == 1
    rtl.write_text(text)
    (bad / "junit.xml").unlink()
    return bad


@pytest.mark.xdist_group("ci_workflow")
@heavy
def test_verify_exits_1_on_tampered_rtl_and_writes_junit(tampered):
    junit = tampered / "junit.xml"
    # Run from inside this pytest process's environment (PYTEST_CURRENT_TEST set), as a user's
    # own test suite would: the one-line failure must hold there too.
    env = shell_env(keep_pytest=True)
    assert "PYTEST_CURRENT_TEST" in env
    r = subprocess.run([str(BIN / "approxmlp"), "verify", str(tampered), "--junit", str(junit), "-q"],
                       capture_output=True, text=True, encoding="utf-8", env=env, check=False)
    assert r.returncode == 1, (r.stdout, r.stderr)
    (line,) = r.stderr.splitlines()
    m = re.fullmatch(r"approxmlp: verification failed: RTL disagrees with the golden model on (\d+) of (\d+) vectors "
                     r"\(first: sample \d+, inputs \[.*\], RTL \d, golden \d\) "
                     r"\(changed since written: rtl/top\.v\)", line)  # the tampered file, named
    assert m and 0 < int(m[1]) and int(m[2]) > 45, line
    suite = ET.parse(junit).getroot()
    assert suite.get("failures") == "1"
    (failure,) = suite.iter("failure")
    assert failure.get("message") == line.removeprefix("approxmlp: verification failed: ")
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert cases[f"rtl_equals_golden[{m[2]} vectors]"].find("failure") is failure
    assert cases["lint"].find("failure") is None       # the tamper is lint-clean: a pure mismatch


@pytest.mark.xdist_group("ci_workflow")
@heavy
def test_assert_design_verifies_in_a_users_test_suite(workflow_run, tampered):
    # In your own tests/test_hardware.py, after `approxmlp compile ... --out hw`:
    #     from approxmlp.testing import assert_design_verifies
    #     def test_classifier_hardware():
    #         assert_design_verifies("hw")
    repo, _ = workflow_run
    result = assert_design_verifies(repo / "hw")
    assert result["vectors_by_kind"]["test"] == 45 and result["mismatches"] == 0 and result["lint_warnings"] == 0
    with pytest.raises(AssertionError, match=r"RTL disagrees with the golden model on \d+ of \d+ vectors"):
        assert_design_verifies(tampered)
