"""`approxmlp demo`: the whole mission on a data set that ships inside scikit-learn, offline.

1. quantization-aware training (Brevitas) of the exact 8-bit baseline, a 30-3-2 MLP on the
   Wisconsin breast cancer data (scikit-learn's copy: no download);
2. `explore` with a small, fixed budget (NSGA-II, 64 x 100, power-of-two multipliers,
   operand bit masks, truncations, argmax bits): every front point and the exact
   design emitted, verified on every test vector with cocotb + Verilator, synthesized
   with Yosys + ABC onto the EGFET printed cells;
3. the smallest verified design whose paired *validation* loss against the exact baseline
   is within 5 % with 90 % confidence, side by side with it: accuracy (validation, on which it was picked; test, reported), area,
   power, cells, the reductions, the vectors verified, and where to open its RTL.

About a minute and a half on two cores. Everything lands in ``OUT/``: ``model.pt`` and
``explore/`` (``pareto.json``, ``pareto.png``, ``report.md``, ``designs/<id>/``).
"""

from __future__ import annotations

from pathlib import Path

from ..progress import Progress, quiet

DEMO_DATA = "breast_cancer"
DEMO_HIDDEN = (3,)
#: The loss budget of the pick, in points of accuracy against the exact design. 5 %, not 1 %:
#: the validation part holds 80 samples, and a 1 % loss is less than one of them; the pick
#: must be certified (explore's 90 % bound on the paired loss), and no design but the exact
#: one can certify 1 % on 80 samples unless it is better on several of them.
DEMO_BUDGET = 0.05
#: The search's budget: small and fixed, so the demo takes the same minute or two anywhere.
DEMO_SEARCH = {"population": 64, "generations": 100, "max_designs": 8}
#: Every design the demo makes is proven (RTL = reference, netlist = RTL): the exact 30-3-2
#: has 96 connections, past explore's default limit; the nine proofs take ~20 s here.
DEMO_PROVE_UP_TO = 160


def run_demo(out: Path, *, target: str = "printed", progress: Progress = quiet, train_progress=None) -> dict:
    """Train, explore and pick (see the module docstring). Returns the explore summary with
    ``demo``: the exact and the chosen design (their pareto.json points) and the paths a
    reader opens. ``train_progress`` receives QAT's per-epoch progress (and is closed, if it
    can be, when training ends)."""
    from ..frontend import qat
    from ..frontend.data import load_dataset
    from .explore import ExploreOptions, run_explore
    from .folder import Staging
    from .select import BUDGETS

    data = load_dataset(DEMO_DATA)
    topology = "-".join(map(str, (data.n_features, *DEMO_HIDDEN, data.n_classes)))
    # Made beside OUT and moved into place when complete: an earlier demo's folder is
    # replaced whole, a folder of the user's own is refused before any work.
    out = Path(out)
    with Staging(out, marks=("explore/pareto.json",)) as stage:
        progress(f"quantization-aware training of a {topology} MLP on {DEMO_DATA} (Brevitas, 8-bit)")
        kw = {"progress": train_progress} if train_progress is not None else {}
        result = qat.train(data, qat.TrainConfig(hidden=DEMO_HIDDEN, restarts=1), name="demo", **kw)
        if hasattr(train_progress, "close"):
            train_progress.close()
        qat.save(result, stage.path / "model.pt")
        summary = run_explore(stage.path / "model.pt", DEMO_DATA, stage.path / "explore",
                              ExploreOptions(target=target, formal_max_connections=DEMO_PROVE_UP_TO,
                                             **DEMO_SEARCH), progress=progress)
        stage.commit()
    model, explore_dir = out / "model.pt", out / "explore"
    pick = summary["budgets"][BUDGETS.index(DEMO_BUDGET)]
    points = {p["id"]: p for p in summary["points"]}
    chosen = points.get(pick["design"])
    summary["demo"] = {"budget": DEMO_BUDGET, "topology": topology, "exact": summary["baseline"], "chosen": chosen,
                       "pick": pick, "model": str(model), "folder": str(explore_dir),
                       "rtl": str(explore_dir / chosen["rtl"]) if chosen else None,
                       "pareto_png": str(explore_dir / "pareto.png"), "report": str(explore_dir / "report.md")}
    return summary
