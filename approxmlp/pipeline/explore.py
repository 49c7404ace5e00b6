"""The `explore` flow: genetic approximation search, then every front point made real.

1. load the model (a QAT integer model as is, a float model through PTQ) and the data, and
   cut the training data in two: a *fit* part and a *validation* part (the data set's own
   ``X_val.npy`` pair, or a stratified, seeded ``--val-fraction`` of the training split,
   the same one ``approxmlp train`` early-stops on);
2. run the NSGA-II search (:mod:`approxmlp.search.nsga2`) with fitness on the fit part only
   and the calibrated cost model, checkpointing into the output folder;
3. score the searches' fronts on the validation part: the front that is made real, its
   thinning to ``--max-designs``, every per-budget pick and the power-budget pick use
   validation accuracy, and a loss budget is measured against the exact baseline's
   validation accuracy;
4. make every chosen point *and* the exact baseline real through the one path `compile`
   takes too (:func:`approxmlp.pipeline.realize.realize`: emitted, verified in one
   Verilator build on every test vector, synthesized and proven, each in its folder);
5. write ``pareto.json`` (:mod:`.summary`), ``pareto.png`` and ``report.md``
   (:mod:`approxmlp.backend.report`): per point the fit ("train"),
   validation and test accuracy, per budget the smallest verified design that the
   validation accuracy qualifies, with its test accuracy beside it.

The test split is scored once per realized design and reported, never used to choose:
a figure picked on the data it is reported on would be optimistic.

Each design gets its own folder ``designs/<id>/`` laid out like `compile`'s output, so
``approxmlp verify`` and ``approxmlp inspect`` work on it.
"""

from __future__ import annotations

import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..backend.report import explore_markdown, plot_front
from ..core.golden import evaluate
from ..core.ir import MLP
from ..errors import ApproxMLPError
from ..progress import task
from .compiler import load_model_ir
from .folder import check_out, make_folder, write_json
from .options import CompileOptions, check_options
from .realize import Candidate, realize
from .select import BUDGETS, CONFIDENCE, Rule, validated_front
from .summary import summarize

@dataclass(frozen=True)
class ExploreOptions:
    target: str = "printed"
    population: int = 96
    #: None: :func:`approxmlp.search.config.default_generations` of the model's connections.
    generations: int | None = None
    multipliers: str = "csd2"
    max_loss: float = 0.05
    max_power_mw: float | None = None
    seed: int = 0
    #: Processes: with several seed models their searches side by side (one process each),
    #: else the evaluation of each population.
    workers: int = 1
    scheduler: str | None = None
    resume: bool = False
    #: None: the model's own widths (an integer model), else the compile defaults.
    input_bits: int | None = None
    weight_bits: int | None = None
    act_bits: int | None = None
    label: str | None = None
    #: Models whose weights seed the search (e.g. `train --weights pow2` models), one search
    #: each, fronts combined; the exact baseline and the loss budget stay those of the main
    #: model. A single path is accepted. None or empty: the main model.
    seed_model: Path | tuple[Path, ...] | None = None
    #: Most front points made real (emitted, verified, synthesized): spread along the front.
    max_designs: int = 20
    #: Part of the training split held out for validation, when the data set has no
    #: validation split of its own (every pick is made on it).
    val_fraction: float = 0.2
    #: One-sided confidence that a pick's loss on unseen data is within its budget: a pick's
    #: paired loss against the exact design on the validation part, upper bound at this
    #: level (0: the point estimate).
    confidence: float = CONFIDENCE
    #: Re-quantize a QONNX model the IR cannot express exactly instead of refusing it.
    requantize: bool = False
    #: Prove every realized design (RTL = reference, netlist = RTL) where that is quick.
    formal: bool = True
    #: The largest design (kept connections) proven; None: AUTO_MAX_CONNECTIONS.
    formal_max_connections: int | None = None

    @property
    def seed_models(self) -> tuple[Path, ...]:
        if self.seed_model is None:
            return ()
        if isinstance(self.seed_model, (str, Path)):
            return (Path(self.seed_model),)
        return tuple(Path(p) for p in self.seed_model)


def _mapper(opts: ExploreOptions):
    """``map`` for population chunks: in-process, a local process pool, or a Dask cluster."""
    if opts.scheduler:
        try:
            from distributed import Client
        except ImportError:
            raise ApproxMLPError("--scheduler needs Dask: pip install 'dask[distributed]'") from None
        try:
            client = Client(opts.scheduler, timeout=10)
        except OSError as exc:
            raise ApproxMLPError(f"cannot reach the Dask scheduler at {opts.scheduler} ({exc}); "
                                 "check the address or drop --scheduler") from None

        def dask_map(fn, items):
            return client.gather(client.map(fn, items, pure=False))

        return dask_map, client.close
    if opts.workers > 1:
        pool = ProcessPoolExecutor(max_workers=opts.workers)
        return pool.map, pool.shutdown
    return map, lambda: None


#: Files only explore writes into its folder: one of them makes a folder its own (to
#: resume or re-run into); any other non-empty folder is refused.
EXPLORE_MARKS = ("checkpoint.npz", "pareto.json")


def run_explore(model_path: Path, data_spec: str, out: Path, opts: ExploreOptions, progress=lambda _: None) -> dict:
    """The whole `approxmlp explore` (see the module docstring); returns the summary also
    written to ``out/pareto.json``. Everything that can be refused is refused before the
    search (options, the folder, the tools); a folder this run created is removed again if
    it fails before writing anything in it."""
    from ..backend.tools import check_tools

    copts = CompileOptions(target=opts.target, input_bits=opts.input_bits, weight_bits=opts.weight_bits,
                           act_bits=opts.act_bits, label=opts.label, seed=opts.seed, requantize=opts.requantize)
    check_options(copts)
    if not 0 <= opts.max_loss < 1:
        raise ApproxMLPError(f"--max-loss must be in 0..1 (a fraction: 0.05 is 5 points), not {opts.max_loss}")
    if isinstance(opts.confidence, bool) or not 0 <= opts.confidence < 1:
        raise ApproxMLPError(f"--confidence must be in 0..1 (0.9: the loss bound holds with 90 % confidence; "
                             f"0: pick on the point estimate), not {opts.confidence}")
    if opts.population < 4 or (opts.generations is not None and opts.generations < 1) or opts.max_designs < 1:
        raise ApproxMLPError("--population must be >= 4, --generations >= 1 and --max-designs >= 1")
    if opts.max_power_mw is not None and not opts.max_power_mw > 0:
        raise ApproxMLPError(f"--max-power-mw must be a positive power budget in mW, not {opts.max_power_mw}; "
                             "give one such as --max-power-mw 3, or drop it")
    out = check_out(out, EXPLORE_MARKS)
    if opts.resume and not (out / "checkpoint.npz").is_file():
        raise ApproxMLPError(f"--resume: {out / 'checkpoint.npz'} not found, there is no search to resume; "
                             "run without --resume to start afresh")
    check_tools(verilator=True, yosys=True, nextpnr=copts.routes)
    created = not out.exists()
    try:
        return _explore(model_path, data_spec, out, opts, copts, progress)
    except BaseException:
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()
        raise


def _explore(model_path: Path, data_spec: str, out: Path, opts: ExploreOptions, copts: CompileOptions,
             progress) -> dict:
    from ..cost.model import load_model as load_cost
    from ..frontend.data import load_dataset
    from ..search.config import SearchConfig, default_generations
    from ..search.nsga2 import make_evaluator, run_search

    cost = load_cost(opts.target)
    if cost is None:
        raise ApproxMLPError(f"no calibrated cost model for target {opts.target}; "
                             "run `python -m flows.bench.calibrate_cost` to make one")
    progress(f"loading data {data_spec}")
    data = load_dataset(data_spec, label=opts.label, seed=opts.seed)
    split = data.validation_split(opts.val_fraction, opts.seed)
    ir, quantizer, float_acc, used = load_model_ir(Path(model_path), data, copts, progress)
    parts = Parts(fit=(quantizer(split.X_fit), split.y_fit), val=(quantizer(split.X_val), split.y_val),
                  test=(quantizer(data.X_test), data.y_test), validation=split.source)
    seeds = _seed_irs(opts, ir, quantizer, data, copts, progress)  # each integer seed keeps its own widths
    if opts.generations is None:  # the genome's length: every weight of the topology, kept or cut
        opts = replace(opts, generations=default_generations(sum(la.n_in * la.n_out for la in ir.layers)))
    copts = used
    reference = parts.accuracy(ir, "fit")
    make_folder(out)
    cfg = SearchConfig(population=opts.population, generations=opts.generations, multipliers=opts.multipliers,
                       weight_bits=max(2, copts.weight_bits), max_loss=opts.max_loss,
                       max_power_mw=opts.max_power_mw, seed=opts.seed)
    side_by_side = opts.workers > 1 and not opts.scheduler and len(seeds) > 1
    mapper, close = (map, lambda: None) if side_by_side else _mapper(opts)
    t0 = time.perf_counter()
    results = []
    try:
        evaluator = make_evaluator(*parts.fit, cost, mapper)
        # one search per seed model (their IRs differ in activation widths and scales, so they
        # cannot share a population); each checkpoints on its own
        if side_by_side:
            results = _searches_side_by_side(seeds, parts, cost, cfg, out, opts, reference, progress)
        else:
            for k, (label, seed_ir) in enumerate(seeds):
                progress(f"searching from {label}: NSGA-II, {cfg.population} x {cfg.generations} generations, "
                         f"{cfg.multipliers} multipliers")
                with task(progress, "generations", cfg.generations, best_within_budget="—") as bar:
                    results.append(run_search(seed_ir, *parts.fit, cost, cfg, evaluate=evaluator,
                                              checkpoint=_checkpoint(out, k), resume=opts.resume,
                                              reference_accuracy=reference, progress=_search_bar(bar, opts.target)))
        faithful = _faithful(ir, parts, cost, cfg, evaluator, reference, progress)
    finally:
        close()
    t_search = time.perf_counter() - t0
    rule = Rule(opts.confidence)
    progress(f"re-scoring the candidates on {len(parts.val[1])} validation samples")
    pools = [_candidates(r) for r in results] + ([faithful] if faithful is not None else [])
    names = [f"search from {label}" for label, _ in seeds] + ["faithful descent from the exact design"]
    front = validated_front(pools, *parts.val, parts.correct(ir, "val"), rule,
                            max_loss=cfg.max_loss, max_power_mw=cfg.max_power_mw, budgets=BUDGETS, k=opts.max_designs)
    candidates = [("exact", ir)] + [(f"p{k:02d}", front.design(k, name=f"{ir.name}_p{k:02d}"))
                                    for k in range(front.size)]
    for k, (label, seed_ir) in enumerate(seeds):
        if seed_ir is not ir:  # the seed models as trained, for comparison
            candidates.append(("seed" if k == 0 else f"seed{k}", seed_ir))
    designs = _realize(candidates, data, quantizer, parts, out, replace(copts, formal=opts.formal, formal_max_connections=opts.formal_max_connections, onnx=False),
                       progress)
    origin = {id(pool.pop): name for pool, name in zip(pools, names)}
    summary = summarize(designs, float_acc, results, front, opts, t_search, data, parts, [lbl for lbl, _ in seeds], rule,
                        origins=[origin[id(pop)] for pop, _ in front.sources])
    write_json(out / "pareto.json", summary)
    plot_front(summary, out / "pareto.png")
    (out / "report.md").write_text(explore_markdown(summary))
    return summary


def _checkpoint(out: Path, k: int) -> Path:
    """Where the search from the ``k``-th seed model checkpoints."""
    return out / ("checkpoint.npz" if k == 0 else f"checkpoint-{k}.npz")


def _searches_side_by_side(seeds, parts: "Parts", cost, cfg, out: Path, opts: "ExploreOptions", reference: float,
                           progress) -> list:
    """The seed models' searches at once, one process each (up to ``opts.workers``), each
    evaluating in its own process: a search is one process's work for minutes (its memetic
    retraining and greedy descent are not split up), so with several seed models this is
    where the cores go. Each search is the one a single process would run (same seed, same
    checkpoints, same front); their generations report into one bar. Processes are spawned,
    not forked: the parent has run torch already."""
    import multiprocessing
    import queue

    ctx = multiprocessing.get_context("spawn")
    labels = ", ".join(label for label, _ in seeds)
    progress(f"searching from {labels} side by side ({min(opts.workers, len(seeds))} processes): NSGA-II, "
             f"{cfg.population} x {cfg.generations} generations each, {cfg.multipliers} multipliers")
    with ctx.Manager() as manager, ProcessPoolExecutor(max_workers=min(opts.workers, len(seeds)),
                                                       mp_context=ctx) as pool:
        ticks = manager.Queue()
        futures = [pool.submit(_search_in_process, seed_ir, *parts.fit, cost, cfg, _checkpoint(out, k), opts.resume,
                               reference, ticks) for k, (_, seed_ir) in enumerate(seeds)]
        with task(progress, "generations", cfg.generations * len(seeds), best_within_budget="—") as bar:
            step = _search_bar(bar, opts.target)
            while True:
                done = all(f.done() for f in futures)
                try:
                    while True:
                        step(0, {"min_area": ticks.get(timeout=0.2 if not done else 0)})
                except queue.Empty:
                    pass
                if done:
                    break
        return [f.result() for f in futures]  # a search's error is raised here, as in one process


def _search_in_process(seed_ir: MLP, X: np.ndarray, y: np.ndarray, cost, cfg, checkpoint: Path, resume: bool,
                       reference: float, ticks):
    """One seed model's search in a worker process; each generation's smallest estimated area
    within the budget goes to ``ticks`` for the parent's bar."""
    from ..search.nsga2 import run_search

    return run_search(seed_ir, X, y, cost, cfg, checkpoint=checkpoint, resume=resume, reference_accuracy=reference,
                      progress=lambda gen, log: ticks.put(log.get("min_area")))


def _search_bar(bar, target: str):
    """The search's per-generation callback: one step of ``bar`` and the smallest estimated
    area within the budget found so far."""
    best = [None]

    def step(gen: int, log: dict) -> None:
        a = log.get("min_area")
        if a is not None and (best[0] is None or a < best[0]):
            best[0] = a
        shown = "—" if best[0] is None else (f"{best[0] / 1e8:.3g} cm² (est.)" if target.startswith("printed")
                                             else f"{best[0]:.0f} LUTs (est.)")
        bar.advance(1, best_within_budget=shown)

    return step


@dataclass(frozen=True, eq=False)
class Parts:
    """The three disjoint parts of the data as hardware integers and labels: ``fit`` (the
    search's fitness), ``val`` (every choice) and ``test`` (reported only)."""

    fit: tuple[np.ndarray, np.ndarray]
    val: tuple[np.ndarray, np.ndarray]
    test: tuple[np.ndarray, np.ndarray]
    validation: str  # where the validation part comes from, for the report

    def correct(self, mlp: MLP, part: str) -> np.ndarray:
        """Per sample of ``part``: is ``mlp``'s class the label?"""
        X, y = getattr(self, part)
        return evaluate(mlp, X).classes == y

    def accuracy(self, mlp: MLP, part: str) -> float:
        return float(np.mean(self.correct(mlp, part)))


def _candidates(result):
    """What a search offers for validation: its front, and its greedy descent's states
    (``SearchResult.descent``: the designs between the seed and the front that the fit
    part cannot tell apart once it is fitted perfectly)."""
    from ..search.front import merge

    return result.front if result.descent is None else merge(result.front, result.descent)


def _faithful(ir: MLP, parts: Parts, cost, cfg, evaluate, reference: float, progress):
    """The faithful descent's states (:func:`search.memetic.faithful_descent`: the exact
    design cut where that keeps its own decisions on the fit part), scored like a search's
    designs; None when ``cfg.faithful_steps`` is 0. They keep the exact model's constants less
    the digits cut: ``--multipliers`` sets the searches' value set, not theirs."""
    from ..search.evaluate import PopulationEvaluator
    from ..search.genome import Population
    from ..search.memetic import faithful_descent
    from ..search.nsga2 import score

    if not cfg.faithful_steps or not cfg.faithful_step_areas:
        return None
    progress(f"faithful descent from the exact design (down to {cfg.faithful_floor:.0%} of its decisions kept)")
    exact = Population.from_mlp(ir, 1)
    samples = PopulationEvaluator(parts.fit[0])  # the fit part's encodings, once for every path
    paths = [faithful_descent(exact, parts.fit[0], cost, steps=cfg.faithful_steps, floor=cfg.faithful_floor,
                              step_area=a, seed=cfg.seed, evaluator=samples) for a in cfg.faithful_step_areas]
    states = Population.concat(paths)
    return score(states, evaluate, cost, cfg, reference) if states.size else None


def _seed_irs(opts: ExploreOptions, ir: MLP, quantizer, data, copts: CompileOptions, progress) -> list[tuple[str, MLP]]:
    """The IRs that seed the searches, with a label: each ``opts.seed_models``' (which must
    read the same inputs as the main model: same topology, same input quantizer), or the
    main model's own."""
    if not opts.seed_models:
        return [("the model", ir)]
    seeds = []
    for path in opts.seed_models:
        seed_ir, seed_q, _, _ = load_model_ir(Path(path), data, copts, progress)
        if seed_ir.topology_str != ir.topology_str:
            raise ApproxMLPError(f"--seed-model {path} is {seed_ir.topology_str} but --model is "
                                 f"{ir.topology_str}; train the seed with the same --hidden sizes")
        if seed_q.to_json() != quantizer.to_json():
            raise ApproxMLPError(f"--seed-model {path} quantizes the inputs differently from --model; "
                                 "train both on the same data with the same --input-bits and --input-range")
        seeds.append((Path(path).name, seed_ir))
    return seeds


def _realize(candidates: list[tuple[str, MLP]], data, quantizer, parts: Parts, out: Path, opts: CompileOptions,
             progress) -> list[dict]:
    """Every candidate made real in ``designs/<id>/`` (:func:`~approxmlp.pipeline.realize.realize`:
    one Verilator build for all, staged, atomic), as the rows the summary is made of: the
    realized report's figures and each design's per-sample correctness on validation and test."""
    cands = [Candidate(ident, mlp, {"golden_train": parts.accuracy(mlp, "fit"),
                                    "golden_validation": parts.accuracy(mlp, "val")})
             for ident, mlp in candidates]
    records = realize(cands, out / "designs", opts, data=data, quantizer=quantizer, marks=("exact",),
                      progress=progress)
    rows = []
    for rec in records:
        rep, acc = rec.report, rec.report["accuracy"]
        val_correct, test_correct = parts.correct(rec.ir, "val"), rec.golden == data.y_test
        rows.append({"id": rec.id, "ir": rec.ir, "train_accuracy": acc["golden_train"],
                     "val_correct": val_correct, "test_correct": test_correct,
                     "validation_accuracy": float(val_correct.mean()),
                     "test_accuracy": float(test_correct.mean()),  # reported, never chosen on
                     "rtl_accuracy": acc["rtl"], "verification": rep["verification"],
                     "synthesis": rep.get("synthesis", {}), "formal": rep["formal"]})
    return rows
