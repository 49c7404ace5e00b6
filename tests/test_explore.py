"""`approxmlp explore`: the front archive, its thinning, the loss reference and --seed-model."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from approxmlp.search.genome import Population
from approxmlp.search.config import SearchConfig
from approxmlp.search.front import Scored
from approxmlp.search.nsga2 import run_search
from tests.strategies import random_mlp
from tests.test_approx import _search_setup
from tests.test_cli import assert_one_line_failure, run
from tests.test_synth import fake_yosys


def test_loss_budget_is_measured_against_the_reference_accuracy():
    ir, X, y, cost = _search_setup()
    cfg = SearchConfig(population=16, generations=3, seed=0, max_loss=0.0)
    # nothing can beat a perfect reference with zero loss allowed, unless it is perfect too
    res = run_search(ir, X, y, cost, cfg, reference_accuracy=1.0 + 1e-9)
    assert res.front.pop.size == 0 and res.seed_accuracy == pytest.approx(1.0)
    res = run_search(ir, X, y, cost, SearchConfig(population=16, generations=3, seed=0, max_loss=1.0),
                     reference_accuracy=0.5)
    assert res.front.pop.size >= 1


def test_validation_sees_the_greedy_descent_states_the_fit_part_cannot_rank():
    """Where the fit part is fitted perfectly, the front's smallest design dominates every
    state of the descent above it; on validation a larger state can be the better one, and
    it must reach the validated front (digits 64-16-10 had no design left otherwise)."""
    from approxmlp.core.golden import evaluate
    from approxmlp.pipeline.explore import _candidates
    from approxmlp.pipeline.select import Rule, validated_front
    from approxmlp.search.nsga2 import SearchResult
    from tests.conftest import tiny_mlp

    ir = tiny_mlp()
    X = np.array([[a, b, c] for a in range(0, 16, 3) for b in range(0, 16, 5) for c in (0, 7, 15)])
    y = evaluate(ir, X).classes  # the exact design is right on every validation sample
    small = Population.from_mlp(ir, 1)
    small.masks[0][0, 0, :] = 0  # the first hidden neuron reads nothing
    assert (evaluate(small.individual(0), X).classes != y).any()
    # on the fit part both were perfect: the small one alone is on the search's front
    front = Scored(pop=small, acc=np.ones(1), area=np.array([1.0]), power=np.zeros(1), feasible=np.ones(1, bool))
    descent = Scored(pop=Population.from_mlp(ir, 1), acc=np.ones(1), area=np.array([5.0]), power=np.zeros(1),
                     feasible=np.ones(1, bool))
    exact = np.ones(len(y), bool)
    kw = dict(max_loss=1.0, max_power_mw=None, budgets=(), k=1)  # room for one design: the fit front's is not needed
    without = validated_front([_candidates(SearchResult(front=front))], X, y, exact, Rule(), **kw)
    assert without.area.tolist() == [1.0]
    kw["k"] = 2
    got = validated_front([_candidates(SearchResult(front=front, descent=descent))], X, y, exact, Rule(), **kw)
    assert got.area.tolist() == [1.0, 5.0] and got.acc[1] == 1.0 > got.acc[0]


def _float_model(path, hidden: int, n_in: int = 4, n_out: int = 3, seed: int = 0):
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, n_out))
    torch.save(net.state_dict(), path)
    return path


def test_seed_model_of_another_topology_exits_2(capsys, tmp_path):
    base, other = _float_model(tmp_path / "a.pt", 3), _float_model(tmp_path / "b.pt", 5)
    code, _, err = run(capsys, "explore", "--model", str(base), "--seed-model", str(other), "--data", "iris",
                       "--out", str(tmp_path / "x"), "-q")
    assert_one_line_failure(code, err, "--seed-model", "4-5-3", "4-3-3", "--hidden")


@pytest.mark.sim
@pytest.mark.synth
def test_explore_from_a_pow2_seed_model(capsys, tmp_path):
    """The bench's recipe: int-weight baseline, pow2 QAT seed; the seed is realized too."""
    base, seed, lean = tmp_path / "int.pt", tmp_path / "pow2.pt", tmp_path / "lean.pt"
    for path, extra in ((base, ()), (seed, ("--weights", "pow2")),
                        (lean, ("--weights", "pow2", "--weight-bits", "5", "--act-bits", "4"))):
        code, _, err = run(capsys, "train", "--data", "iris", "--hidden", "3", *extra, "--restarts", "1",
                           "--epochs", "40", "--float-epochs", "40", "--out", str(path), "-q")
        assert code == 0, err
    out = tmp_path / "explore"
    code, _, err = run(capsys, "explore", "--model", str(base), "--seed-model", str(seed), "--seed-model", str(lean),
                       "--data", "iris", "--out", str(out), "--population", "16", "--generations", "6",
                       "--max-designs", "2", "-q")
    assert code == 0, err
    s = json.loads((out / "pareto.json").read_text())
    ids = [p["id"] for p in s["points"]]
    # one search per seed model, fronts combined; both seeds realized as trained
    assert ids[0] == "exact" and ids[-2:] == ["seed", "seed1"] and len(ids) == 3 + s["search"]["realized_designs"]
    assert [x["seed"] for x in s["search"]["searches"]] == ["pow2.pt", "lean.pt"]
    assert (out / "checkpoint.npz").is_file() and (out / "checkpoint-1.npz").is_file()
    assert s["search"]["seed_models"] == [str(seed), str(lean)]
    # --max-designs thins a bigger front; each realized point keeps its own estimate
    assert s["search"]["front_designs"] > s["search"]["realized_designs"] == 2
    from approxmlp.cost.design import features
    from approxmlp.cost.model import load_model
    from approxmlp.core.ir import MLP

    cost = load_model("printed")
    for p in s["points"][1:-2]:
        ir = MLP.from_json(json.loads((out / "designs" / p["id"] / "ir.json").read_text()))
        assert p["estimated_area_um2"] == pytest.approx(float(cost.estimate(features(ir)[None])[0][0]))
    assert all(p["verification"]["passed"] for p in s["points"])
    assert s["search"]["seed_model"] == str(seed)
    exact_train = s["points"][0]["train_accuracy"]
    assert s["search"]["reference_train_accuracy"] == pytest.approx(exact_train)
    for p in s["points"][1:-2]:  # the search's designs keep the budget against the *baseline*
        assert p["train_accuracy"] >= exact_train - 0.05 - 1e-9
    # --workers 2: the two searches side by side, in processes of their own: the same fronts,
    # the same checkpoints
    out2 = tmp_path / "explore-2"
    code, _, err = run(capsys, "explore", "--model", str(base), "--seed-model", str(seed), "--seed-model", str(lean),
                       "--data", "iris", "--out", str(out2), "--population", "16", "--generations", "6",
                       "--max-designs", "2", "--workers", "2", "--no-formal", "-q")  # (proofs: above)
    assert code == 0, err
    s2 = json.loads((out2 / "pareto.json").read_text())
    same = ("id", "estimated_area_um2", "area_cm2", "train_accuracy", "validation_accuracy", "test_accuracy", "origin")
    assert [{k: p.get(k) for k in same} for p in s2["points"]] == [{k: p.get(k) for k in same} for p in s["points"]]
    assert s2["search"]["searches"] == s["search"]["searches"]
    for name in ("checkpoint.npz", "checkpoint-1.npz"):
        with np.load(out / name) as a, np.load(out2 / name) as b:
            assert all((a[k] == b[k]).all() for k in a.files if k != "meta")


def _random_mlp(n_in: int, hidden: int, n_out: int, seed: int = 0):
    return random_mlp((n_in, hidden, n_out), np.random.default_rng(seed), weights="pow2", bias=200, shift=3,
                      name=f"r{n_in}")


def _changed_genes(a: Population, b: Population) -> np.ndarray:
    """Per individual, how many genes differ between two populations of the same base."""
    n = (a.cmp_drop != b.cmp_drop).sum(axis=1)
    for arrs in ("weights", "masks", "biases", "product_trunc", "act_trunc"):
        for x, y in zip(getattr(a, arrs), getattr(b, arrs)):
            n = n + (x != y).reshape(len(x), -1).sum(axis=1)
    return n


@pytest.mark.parametrize("shape", [(4, 2, 3), (16, 5, 10), (64, 8, 10)])
def test_children_get_the_same_number_of_gene_changes_whatever_the_network_size(shape):
    """The mutation strength is set in gene changes per child (log-uniform in 1..mutations),
    not per gene: with per-gene rates a 16-5-10 child took ~15 changes at once and fell
    outside the loss budget, a 4-2-3 child ~2."""
    from approxmlp.search.front import Scored
    from approxmlp.search.operators import offspring

    cfg = SearchConfig(population=400, mutations=16.0, p_crossover=0.0, seed=0)
    pop = Population.from_mlp(_random_mlp(*shape), cfg.population)
    parents = Scored(pop=pop, acc=np.zeros(pop.size), area=np.zeros(pop.size), power=np.zeros(pop.size),
                     feasible=np.ones(pop.size, bool))
    kids = offspring(parents, cfg, np.random.default_rng(1))
    changes = _changed_genes(pop, kids)
    # log-uniform on [1, 16] has mean 15 / ln 16 = 5.4 changes; a few land on no-op values
    # (a weight at the end of its range, a truncation at 0 stepping down)
    assert 3.0 <= changes.mean() <= 6.5, changes.mean()
    assert changes.max() <= 40


def test_a_longer_genome_gets_more_generations_unless_the_user_names_them():
    """300 generations, 600 above 100 weights (Pendigits 16-5-10: 130), by default only."""
    from approxmlp.pipeline.explore import ExploreOptions
    from approxmlp.search.config import default_generations

    assert default_generations(4 * 3 + 3 * 3) == 300     # Balance 4-3-3
    assert default_generations(21 * 3 + 3 * 3) == 300    # Cardio 21-3-3
    assert default_generations(100) == 300
    assert default_generations(16 * 5 + 5 * 10) == 600   # Pendigits 16-5-10
    assert default_generations(64 * 16 + 16 * 10) == 600  # capped: digits 64-16-10
    assert ExploreOptions().generations is None and ExploreOptions(generations=42).generations == 42


def _split_folder(folder, data, permute_test: bool = False, with_val: bool = False):
    """``data`` as a split folder (one-hot labels, as the reference splits); optionally with
    the test labels randomly permuted, or with a validation split of its own."""
    folder.mkdir(parents=True)
    onehot = lambda y: np.eye(data.n_classes)[y]  # noqa: E731
    y_test = np.random.default_rng(5).permutation(data.y_test) if permute_test else data.y_test
    X_train, y_train = data.X_train, data.y_train
    if with_val:
        n = len(y_train) // 4
        np.save(folder / "X_val.npy", X_train[:n])
        np.save(folder / "Y_val.npy", onehot(y_train[:n]))
        X_train, y_train = X_train[n:], y_train[n:]
    np.save(folder / "X_train.npy", X_train)
    np.save(folder / "Y_train.npy", onehot(y_train))
    np.save(folder / "X_test.npy", data.X_test)
    np.save(folder / "Y_test.npy", onehot(y_test))
    return folder


@pytest.mark.sim
@pytest.mark.synth
def test_picks_do_not_depend_on_the_test_labels(tmp_path):
    """Issue 11: the same explore on a split whose test labels are randomly permuted picks the
    very same designs (IR hashes) for every budget: the test split only ever gets reported."""
    from approxmlp.frontend.data import load_dataset
    from approxmlp.frontend.floatnet import train_float
    from approxmlp.pipeline.explore import ExploreOptions, run_explore

    data = load_dataset("breast_cancer")
    real = _split_folder(tmp_path / "real", data)
    shuffled = _split_folder(tmp_path / "shuffled", data, permute_test=True)
    net = train_float(data.X_train, data.y_train, (3,), data.n_classes, epochs=60, seed=0)
    model = tmp_path / "model.pt"
    torch.save(net.state_dict(), model)
    opts = ExploreOptions(population=16, generations=8, max_designs=5, seed=0)
    a = run_explore(model, str(real), tmp_path / "a", opts)
    b = run_explore(model, str(shuffled), tmp_path / "b", opts)

    def picks(s):
        ids = {p["id"]: p["ir_sha256"] for p in s["points"]}
        return [(e["max_loss"], e["design"] and ids[e["design"]]) for e in s["budgets"]]

    assert picks(a) == picks(b) and any(d for _, d in picks(a))
    assert [p["ir_sha256"] for p in a["points"]] == [p["ir_sha256"] for p in b["points"]]
    assert [p["validation_accuracy"] for p in a["points"]] == [p["validation_accuracy"] for p in b["points"]]
    # ...while the test accuracies it reports did change with the labels
    assert [p["test_accuracy"] for p in a["points"]] != [p["test_accuracy"] for p in b["points"]]
    assert a["points"][0]["test_accuracy"] > 0.8 > b["points"][0]["test_accuracy"]


@pytest.mark.sim
@pytest.mark.synth
def test_pareto_json_and_report_show_train_validation_and_test(tmp_path):
    """Every point carries the three accuracies, each with its 95 % interval, and its paired
    losses against the exact design; each budget line names the design the loss bound
    certified, with its validation and test figures; a split folder's own X_val is used."""
    from approxmlp.frontend.data import load_dataset
    from approxmlp.frontend.floatnet import train_float
    from approxmlp.backend.report import fmt_acc, fmt_loss
    from approxmlp.pipeline.explore import ExploreOptions, run_explore
    from approxmlp.stats import accuracy_interval

    data = load_dataset("wine")
    folder = _split_folder(tmp_path / "split", data, with_val=True)
    net = train_float(data.X_train, data.y_train, (3,), data.n_classes, epochs=60, seed=0)
    torch.save(net.state_dict(), tmp_path / "m.pt")
    s = run_explore(tmp_path / "m.pt", str(folder), tmp_path / "x",
                    ExploreOptions(population=16, generations=6, max_designs=4, max_power_mw=50.0))
    n_val = len(data.y_train) // 4
    assert s["selection"]["samples"] == {"train": len(data.y_train) - n_val, "validation": n_val,
                                         "test": len(data.y_test)}
    assert s["selection"]["validation"] == "given with the data" and s["selection"]["picked_on"] == "validation_accuracy"
    on_disk = json.loads((tmp_path / "x" / "pareto.json").read_text())
    for p in on_disk["points"]:
        assert {"train_accuracy", "validation_accuracy", "test_accuracy"} <= set(p)
        assert p["picked_on"] == (None if p["exact"] else "validation_accuracy")
        n_test = p["test_loss"]["n"]
        assert n_test == len(data.y_test) and p["validation_loss"]["n"] == n_val
        assert p["test_interval"] == pytest.approx(list(accuracy_interval(round(p["test_accuracy"] * n_test), n_test)))
        assert p["test_loss"]["low"] <= p["test_loss"]["loss"] <= p["test_loss"]["high"]
        # where each design comes from: the search, or the faithful descent from the exact design
        assert p["exact"] == ("origin" not in p)
        assert p.get("origin") in (None, "search from the model", "faithful descent from the exact design")
    base = on_disk["baseline"]
    assert base["loss_bound"] == 0 and base["test_loss"]["worse"] == base["test_loss"]["better"] == 0
    report = (tmp_path / "x" / "report.md").read_text()
    assert "validation accuracy (picked on)" in report and "never used to choose" in report
    assert "95% intervals" in report and "90% confidence" in report
    for e in on_disk["budgets"]:
        assert e["picked_on"] == "validation_accuracy" and e["confidence"] == 0.9
        assert e["design"]  # the exact design at worst
        p = next(q for q in on_disk["points"] if q["id"] == e["design"])
        assert e["loss_bound"] == p["loss_bound"] <= e["max_loss"]
        # no verified design smaller than the pick is certified within the budget
        assert not [q for q in on_disk["points"] if q["verification"]["passed"] and q["loss_bound"] is not None
                    and q["loss_bound"] <= e["max_loss"] and q["area_cm2"] < p["area_cm2"]]
        assert e["test_accuracy"] == p["test_accuracy"] and e["test_loss"] == p["test_loss"]
        assert (f"| {e['design']} | {fmt_acc(e['validation_accuracy'], e['validation_interval'])} | "
                f"{fmt_loss(e['validation_loss'])} |") in report
    pb = on_disk["power_budget"]
    fits = [p for p in on_disk["points"] if p["verification"]["passed"] and p["power_mw"] <= 50.0]
    assert pb["design"] == max(fits, key=lambda p: (p["validation_accuracy"], -p["power_mw"]))["id"]
    for p in on_disk["points"]:  # the front table: each design's origin and figures
        origin = p.get("origin", "the exact design")
        assert (f"| {p['id']} | {origin} | {p['train_accuracy']:.4f} | "
                f"{fmt_acc(p['validation_accuracy'], p['validation_interval'])} "
                f"| {fmt_loss(p['validation_loss'])} |") in report


# ----------------------------------------------------------------------------- issue 19
def _explore(*extra: str, model: Path, out: Path) -> list[str]:
    return ["explore", "--model", str(model), "--data", "iris", "--out", str(out), "--population", "8",
            "--generations", "2", "--max-designs", "1", "-q", *extra]


def test_explore_refuses_a_folder_it_did_not_write(capsys, tmp_path):
    model, out = _float_model(tmp_path / "a.pt", 3), tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    code, _, err = run(capsys, *_explore(model=model, out=out))
    assert_one_line_failure(code, err, str(out), "did not write")
    assert [p.name for p in out.iterdir()] == ["notes.txt"] and (out / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("extra, phrases", [
    (("--max-power-mw", "-1"), ("--max-power-mw must be a positive", "-1")),
    (("--resume",), ("--resume", "checkpoint.npz not found", "run without --resume")),
])
def test_nonsense_options_are_refused_before_the_search(capsys, tmp_path, extra, phrases):
    model, out = _float_model(tmp_path / "a.pt", 3), tmp_path / "x"
    code, _, err = run(capsys, *_explore(*extra, model=model, out=out))
    assert_one_line_failure(code, err, *phrases)
    assert not out.exists()


def test_resume_from_a_truncated_checkpoint_exits_2(capsys, tmp_path):
    model, out = _float_model(tmp_path / "a.pt", 3), tmp_path / "x"
    out.mkdir()
    np.savez(out / "checkpoint.npz", acc=np.zeros(1000))
    ckpt = out / "checkpoint.npz"
    ckpt.write_bytes(ckpt.read_bytes()[:300])
    before = ckpt.read_bytes()
    code, _, err = run(capsys, *_explore("--resume", model=model, out=out))
    assert_one_line_failure(code, err, "cannot read checkpoint", "checkpoint.npz", "without --resume")
    assert [p.name for p in out.iterdir()] == ["checkpoint.npz"] and ckpt.read_bytes() == before


def test_a_seed_model_of_another_size_is_named(capsys, tmp_path):
    model, seed = _float_model(tmp_path / "a.pt", 3), _float_model(tmp_path / "wide.pt", 3, n_in=5)
    out = tmp_path / "x"
    code, _, err = run(capsys, *_explore("--seed-model", str(seed), model=model, out=out))
    assert_one_line_failure(code, err, "wide.pt takes 5 inputs", "4 features")
    assert not out.exists()


def test_an_unreachable_scheduler_leaves_no_folder(capsys, tmp_path):
    model, out = _float_model(tmp_path / "a.pt", 3), tmp_path / "x"
    code, _, err = run(capsys, *_explore("--scheduler", "tcp://127.0.0.1:9", model=model, out=out))
    assert_one_line_failure(code, err, "cannot reach the Dask scheduler", "drop --scheduler")
    assert list(tmp_path.iterdir()) == [tmp_path / "a.pt"]


def test_ctrl_c_before_the_first_generation_leaves_no_folder(tmp_path):
    """A real SIGINT while the first generation is evaluated: its checkpoint comes some
    seconds after the folder appears (a 200-individual population on breast_cancer)."""
    model, out = _float_model(tmp_path / "bc.pt", 3, n_in=30, n_out=2), tmp_path / "x"
    argv = ["explore", "--model", str(model), "--data", "breast_cancer", "--out", str(out), "--population", "200",
            "--generations", "5", "-q"]
    # SIGINT as a terminal delivers it, even where this test runs with it ignored (nohup, a
    # background job), which the child would otherwise inherit and keep
    proc = subprocess.Popen([sys.executable, "-m", "approxmlp.cli", *argv], stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    while not out.exists() and proc.poll() is None:
        time.sleep(0.02)
    assert not (out / "checkpoint.npz").exists()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and err.strip() == "approxmlp: interrupted"
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["bc.pt"]


def _cli(*argv: str, **env: str) -> subprocess.CompletedProcess:
    """A fresh process: the tool look-ups are cached per process."""
    return subprocess.run([sys.executable, "-m", "approxmlp.cli", *argv], capture_output=True, text=True,
                          env=dict(os.environ, **env), timeout=600)


def test_a_yosys_that_does_not_run_is_found_before_the_search(tmp_path):
    model, out = _float_model(tmp_path / "a.pt", 3), tmp_path / "x"
    t0 = time.perf_counter()
    r = _cli(*_explore("--generations", "300", model=model, out=out), APPROXMLP_YOSYS="/bin/false")
    assert_one_line_failure(r.returncode, r.stderr, "/bin/false -V", "APPROXMLP_YOSYS")
    assert time.perf_counter() - t0 < 60 and not out.exists()


@pytest.mark.sim
@pytest.mark.slow
def test_a_failed_synthesis_leaves_no_half_made_design_folder(tmp_path):
    model, out = _float_model(tmp_path / "a.pt", 3), tmp_path / "x"
    r = _cli(*_explore(model=model, out=out), APPROXMLP_YOSYS=str(fake_yosys(tmp_path)))
    assert_one_line_failure(r.returncode, r.stderr, "Yosys failed", "ERROR: fake failure of printed.ys")
    assert "see /" not in r.stderr  # the scratch log is gone: its last line is quoted instead
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.npz"]  # resumable, no designs/


@pytest.mark.sim
@pytest.mark.synth
@pytest.mark.slow
def test_explore_records_its_files_and_resumes_into_its_own_folder(capsys, tmp_path):
    model, out = _float_model(tmp_path / "a.pt", 3), tmp_path / "x"
    code, _, err = run(capsys, *_explore(model=model, out=out))
    assert code == 0, err
    for design in (out / "designs").iterdir():
        files = json.loads((design / "report.json").read_text())["files"]
        assert {"rtl/top.v", "ir.json", "vectors/test.npz", "logs/yosys.log"} <= set(files), design
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no staging folder left
    code, _, err = run(capsys, *_explore("--resume", model=model, out=out))
    assert code == 0, err
