"""Command line: the only place that turns errors into exit codes.

Exit status: 0 success; 1 the RTL disagrees with the golden model; 2 bad input, a
missing tool or a failed tool (one line on stderr, no traceback); 3 an internal error (a
bug, one line on stderr); 130 interrupted.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.table import Table

from . import __version__
from .errors import ApproxMLPError, VerificationError
from .terminal import Steps, TrainProgress, out_console, print_demo, print_summary, print_train_summary



OPT_TARGET = click.option("--target", type=click.Choice(["printed", "printed-cnt", "fpga-ice40", "fpga-xc7"]),
                          default="printed", show_default=True,
                          help="printed = EGFET 1.0 V, printed-cnt = CNT-TFT 3.0 V, or an FPGA family.")


OPT_REQUANTIZE = click.option("--requantize", is_flag=True,
                              help="A QONNX model whose scales the IR cannot express exactly (not a power of two, "
                                   "rounding half to even...) is re-quantized post-training instead of refused.")


def _bits(name: str, default: int, help_: str):
    return click.option(name, type=int, default=default, show_default=True, help=help_)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="approxmlp")
def cli() -> None:
    """Hardware-approximation compiler for tiny MLP classifiers (printed electronics, FPGAs)."""


@cli.command("compile")
@click.argument("model", type=click.Path(path_type=Path))
@OPT_TARGET
@click.option("--data", "data", required=True,
              help="Built-in data set (iris, wine, breast_cancer, digits), a CSV file, or a split folder "
                   "with {X,Y}_{train,test}.npy.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Output folder.")
@click.option("--label", default=None, help="Label column of a CSV (default Y).")
@click.option("--input-bits", type=int, default=None,
              help="Bits per input feature (unsigned) [default: 4; an `approxmlp train` model keeps its own].")
@click.option("--weight-bits", type=int, default=None,
              help="Bits per weight (signed) [default: 8; an `approxmlp train` model keeps its own].")
@click.option("--act-bits", type=int, default=None,
              help="Bits per hidden activation (QReLU output) [default: 8; an `approxmlp train` model keeps its own].")
@click.option("--registered", is_flag=True, help="Register the output (adds clk; 1 cycle latency).")
@click.option("--no-verify", is_flag=True, help="Skip the cocotb/Verilator verification.")
@click.option("--no-synth", is_flag=True, help="Skip Yosys synthesis.")
@click.option("--no-pnr", is_flag=True,
              help="Skip nextpnr place and route (target fpga-ice40: logic cells and Fmax after routing).")
@click.option("--no-formal", is_flag=True,
              help="Skip the formal proofs (RTL = reference circuit, netlist = RTL); by default they run "
                   "on designs of at most 12 kept connections, 120 s per proof.")
@click.option("--clock-hz", type=float, default=5.0, show_default=True, help="Clock for the dynamic power estimate.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the train/test split of CSV and built-in data.")
@OPT_REQUANTIZE
@click.option("--no-onnx", is_flag=True, help="Do not write the design as model.onnx.")
@click.option("-q", "--quiet", is_flag=True, help="No progress lines.")
def compile_cmd(model: Path, target: str, data: str, out: Path, label: str | None, input_bits: int | None,
                weight_bits: int | None, act_bits: int | None, registered: bool, no_verify: bool, no_synth: bool,
                no_pnr: bool, no_formal: bool, clock_hz: float, seed: int, requantize: bool, no_onnx: bool, quiet: bool) -> None:
    """Quantize MODEL (a PyTorch state_dict of Linear/ReLU layers, an ONNX or QONNX MLP, a
    scikit-learn MLPClassifier saved with skops, or an approxmlp model), emit bespoke Verilog,
    verify it against the golden model on every test vector and synthesize it. MODEL may
    also be a design folder (or its ir.json) written by compile or explore: its IR is
    rebuilt as it stands, approximations and all."""
    from .pipeline.compiler import CompileOptions, compile_ir, compile_model

    opts = CompileOptions(target=target, input_bits=input_bits, weight_bits=weight_bits, act_bits=act_bits,
                          registered=registered, verify=not no_verify, synth=not no_synth, pnr=not no_pnr,
                          formal=not no_formal, clock_hz=clock_hz, label=label, seed=seed, requantize=requantize, onnx=not no_onnx)
    steps = Steps(not quiet)
    try:
        if model.is_dir() or model.name == "ir.json":
            report = compile_ir(model, data, out, opts, progress=steps)
        else:
            report = compile_model(model, data, out, opts, progress=steps)
    finally:
        steps.close()
    print_summary(report, out)


@cli.command("train")
@click.option("--data", "data", required=True,
              help="Built-in data set (iris, wine, breast_cancer, digits), a CSV file, or a split folder "
                   "with {X,Y}_{train,test}.npy.")
@click.option("--hidden", type=int, multiple=True, required=True,
              help="Neurons of a hidden layer; repeat for deeper nets (--hidden 8 --hidden 4).")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Model file to write (e.g. model.pt).")
@click.option("--label", default=None, help="Label column of a CSV (default Y).")
@_bits("--input-bits", 4, "Bits per input feature (unsigned).")
@_bits("--weight-bits", 8, "Bits per weight (signed).")
@_bits("--bias-bits", 16, "Bits per bias (signed, at accumulator scale).")
@_bits("--act-bits", 8, "Bits per hidden activation (QReLU output).")
@click.option("--weights", type=click.Choice(["int", "pow2"]), default="int", show_default=True,
              help="int: fixed-point weights; pow2: every weight 0 or ±2^k (shifts instead of multipliers).")
@click.option("--epochs", type=int, default=300, show_default=True, help="Most QAT epochs (early stopping).")
@click.option("--float-epochs", type=int, default=300, show_default=True,
              help="Most epochs of the float warm-up before QAT (0: none).")
@click.option("--lr", type=float, default=0.01, show_default=True, help="Adam learning rate (QAT uses half).")
@click.option("--batch-size", type=int, default=None,
              help="Mini-batch size [default: about 24 batches per epoch, within 32..256].")
@click.option("--patience", type=int, default=40, show_default=True,
              help="Stop after this many epochs without validation progress.")
@click.option("--val-fraction", type=float, default=0.2, show_default=True,
              help="Part of the training set held out for early stopping and model selection.")
@click.option("--class-weight", type=click.Choice(["none", "balanced"]), default="none", show_default=True,
              help="balanced: weight the loss by inverse class frequency.")
@click.option("--restarts", type=int, default=3, show_default=True,
              help="Independent trainings (seeds seed, seed+1, ...); the best on the validation split is kept.")
@click.option("--input-range", type=click.Choice(["auto", "robust", "fit"]), default="auto", show_default=True,
              help="Input quantizer ranges. robust: 1st..99th percentile per feature (outliers saturate); "
                   "fit: min-max; auto: keep the codes of data already on the 2^-bits grid, else robust.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the train/test split of CSV and built-in data (give compile the same --seed) "
                   "and of the training.")
@click.option("--qonnx", "qonnx_path", type=click.Path(path_type=Path), default=None,
              help="Also write the trained model as QONNX (Brevitas export_qonnx) to this file.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def train_cmd(data: str, hidden: tuple[int, ...], out: Path, label: str | None, input_bits: int, weight_bits: int,
              bias_bits: int, act_bits: int, weights: str, epochs: int, float_epochs: int, lr: float,
              batch_size: int | None, patience: int, val_fraction: float, class_weight: str, restarts: int,
              input_range: str, seed: int, qonnx_path: Path | None, quiet: bool) -> None:
    """Quantization-aware training (Brevitas) of an MLP with power-of-two scales; writes an
    integer model that `approxmlp compile` turns into RTL as is, without re-quantizing."""
    from .frontend.data import load_dataset
    from .pipeline.folder import check_parents

    if out.is_dir():
        raise ApproxMLPError(f"--out {out} is a folder; give the model file to write, e.g. {out / 'model.pt'}")
    if qonnx_path is not None and (qonnx_path.is_dir() or qonnx_path.suffix.lower() != ".onnx"):
        raise ApproxMLPError(f"--qonnx {qonnx_path} must name a .onnx file to write, e.g. model.qonnx.onnx")
    check_parents(out)
    steps = Steps(not quiet)
    try:
        steps("importing Brevitas")
        from .frontend import qat

        cfg = qat.TrainConfig(hidden=hidden, input_bits=input_bits, weight_bits=weight_bits, bias_bits=bias_bits,
                              act_bits=act_bits, weights=weights, epochs=epochs, float_epochs=float_epochs, lr=lr,
                              batch_size=batch_size, patience=patience, val_fraction=val_fraction,
                              class_weight=class_weight, seed=seed, restarts=restarts, input_range=input_range)
        steps(f"loading data {data}")
        dataset = load_dataset(data, label=label, seed=seed)
    finally:
        steps.close()
    bar = TrainProgress(not quiet)
    try:
        result = qat.train(dataset, cfg, name=_design_name(out), progress=bar)
    finally:
        bar.close()
    if qonnx_path is not None:   # first: a failed export leaves neither file
        qat.save_qonnx(result, qonnx_path)
    qat.save(result, out)
    print_train_summary(result.summary, out, data, seed)
    if qonnx_path is not None:
        out_console.print(f"QONNX: {qonnx_path} (compiles to the same IR)")


def _design_name(out: Path) -> str:
    name = "".join(c if c.isalnum() or c == "_" else "_" for c in out.stem) or "mlp"
    return name if not name[0].isdigit() else "m_" + name


@cli.command("verify")
@click.argument("folders", nargs=-1, required=True, type=click.Path(path_type=Path), metavar="FOLDER...")
@click.option("--junit", type=click.Path(path_type=Path), default=None,
              help="Also write JUnit XML here (with several folders: NAME-<k>.xml for the k-th).")
@click.option("--formal", is_flag=True,
              help="Also prove the RTL equal to the IR's reference circuit and the netlist equal to the RTL "
                   "(Yosys and ABC, any size); exit 1 on a counterexample.")
@click.option("--formal-timeout", type=float, default=None,
              help="Seconds per proof before it is reported as not proven [default: 600].")
@click.option("-q", "--quiet", is_flag=True)
def verify_cmd(folders: tuple[Path, ...], junit: Path | None, formal: bool, formal_timeout: float | None,
               quiet: bool) -> None:
    """Re-run the RTL of each compiled FOLDER on its test vectors; exit 1 on any mismatch.
    Several folders are simulated in one Verilator build."""
    from .pipeline.verify import failed, verify_folders

    steps = Steps(not quiet)
    try:
        results = verify_folders(folders, junit=junit, formal=formal, formal_timeout=formal_timeout,
                                 progress=steps)
    finally:
        steps.close()
    failures = []
    for folder, result in zip(folders, results):
        head = f"{folder}: " if len(folders) > 1 else ""
        for name in result["changed"] or ():
            out_console.print(f"{head}changed since written: {name}")
        if result.get("rejected"):
            out_console.print(f"{head}Verilator rejects the RTL: {result['rejected']}")
        else:
            out_console.print(f"{head}{result['vectors'] - result['mismatches']}/{result['vectors']} vectors match "
                              f"the golden model ({result['mismatches']} mismatches, {result['lint_warnings']} "
                              "lint warnings)")
        fm = result.get("formal")
        if fm:
            out_console.print(f"{head}formal: RTL = reference: {fm['rtl_vs_reference']}; netlist = RTL: "
                              f"{fm['netlist_vs_rtl']} ({fm['seconds']:.1f} s)")
        if failed(result):
            failures.append(f"{head}{result['message']}")
    if failures:
        raise VerificationError(failures[0] if len(failures) == 1 else
                                f"{len(failures)} of {len(folders)} designs fail; first: {failures[0]}")


@cli.command("export")
@click.argument("folder", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["onnx"]), default="onnx", show_default=True)
@click.option("--out", type=click.Path(path_type=Path), default=None, help="File to write [default: FOLDER/model.onnx].")
def export_cmd(folder: Path, fmt: str, out: Path | None) -> None:
    """Write the design in FOLDER (compile or explore output, exact or approximate) as an ONNX
    model: int64 input codes in, the golden model's class out, bit-exact."""
    from .pipeline.export import export_folder

    info = export_folder(folder, fmt=fmt, out=out)
    out_console.print(f"{info['path']}: input 'codes' (int64, N x {info['n_inputs']}), output 'class'; equals the "
                      f"golden model on {info['vectors']} test vectors" if info.get("vectors") is not None
                      else f"{info['path']} written")


@cli.command("inspect")
@click.argument("path", type=click.Path(path_type=Path))
def inspect_cmd(path: Path) -> None:
    """List the ports and the neurons of generated RTL (a .v file or a compiled folder)."""
    from .backend.inspect import inspect_rtl

    info = inspect_rtl(path)
    out_console.print(f"module {info['module']}: " + ", ".join(f"{d} {n}[{w}]" for d, n, w in info["ports"]))
    table = Table("neuron", "formula", "approximations", "wires", "area share (est.)")
    for n in info["neurons"]:
        share = "-" if n["area_share"] is None else f"{100 * n['area_share']:.1f} %"
        table.add_row(n["name"], n["formula"], n["approx"], str(n["wires"]), share)
    out_console.print(table)


@cli.command("explore")
@click.option("--model", "model", type=click.Path(path_type=Path), required=True,
              help="The exact baseline (and the search's seed): `approxmlp train` output or a float state_dict.")
@click.option("--seed-model", type=click.Path(path_type=Path), multiple=True,
              help="Seed the search from this model instead (same topology and inputs), e.g. a "
                   "`train --weights pow2` model; repeat it for one search per seed, fronts combined. "
                   "The baseline and --max-loss stay --model's.")
@click.option("--data", "data", required=True, help="Data set (as for compile).")
@OPT_TARGET
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Output folder.")
@click.option("--population", type=int, default=96, show_default=True)
@click.option("--generations", type=int, default=None,
              help="Generations of each search [default: 300; 600 for networks of more than 100 weights].")
@click.option("--multipliers", type=click.Choice(["int", "pow2", "csd2", "csd3"]), default="csd2", show_default=True,
              help="Values the constant multipliers may take: any integer, 0/±2^k, or 2/3 signed digits.")
@click.option("--max-loss", type=float, default=0.05, show_default=True,
              help="Largest accuracy loss against the exact baseline (fraction): on the fit part of the "
                   "training data in the search, on the validation part for the front.")
@click.option("--val-fraction", type=float, default=0.2, show_default=True,
              help="Part of the training split held out for validation (every pick is made on it), unless "
                   "the split folder has X_val.npy/Y_val.npy; the same default as `approxmlp train`.")
@click.option("--confidence", type=float, default=0.9, show_default=True,
              help="One-sided confidence that a pick's loss is within its budget: the pick is the smallest "
                   "design whose paired validation loss against the exact design has its upper bound at this "
                   "level within the budget (0: the point estimate).")
@click.option("--max-power-mw", type=float, default=None, help="Power budget (estimated static power, mW).")
@click.option("--max-designs", type=int, default=20, show_default=True,
              help="Most front points to emit, verify and synthesize (spread along the front).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--workers", type=int, default=1, show_default=True,
              help="Processes: the seed models' searches side by side, or with one seed model the population's evaluation.")
@click.option("--scheduler", default=None, help="Address of a Dask scheduler to evaluate on.")
@click.option("--resume", is_flag=True, help="Continue from DIR/checkpoint.npz.")
@click.option("--no-formal", is_flag=True,
              help="Skip the formal proofs of the realized designs (run by default on designs of at most "
                   "12 kept connections, 120 s per proof; `verify --formal` proves any).")
@click.option("--label", default=None, help="Label column of a CSV.")
@OPT_REQUANTIZE
@click.option("-q", "--quiet", is_flag=True)
def explore_cmd(model: Path, seed_model: tuple[Path, ...], data: str, target: str, out: Path, population: int,
                generations: int | None, multipliers: str, max_loss: float, val_fraction: float, confidence: float,
                max_power_mw: float | None, max_designs: int, seed: int,
                workers: int, scheduler: str | None, resume: bool, no_formal: bool, label: str | None,
                requantize: bool,
                quiet: bool) -> None:
    """Genetic search (NSGA-II) over hardware approximations; every Pareto point is emitted,
    verified on every test vector and synthesized."""
    from .backend.report import fmt, fmt_acc, fmt_loss
    from .pipeline.explore import ExploreOptions, run_explore

    opts = ExploreOptions(target=target, population=population, generations=generations, multipliers=multipliers,
                          max_loss=max_loss, max_power_mw=max_power_mw, seed=seed, workers=workers,
                          scheduler=scheduler, resume=resume, label=label, seed_model=seed_model or None,
                          max_designs=max_designs, val_fraction=val_fraction, confidence=confidence,
                          requantize=requantize, formal=not no_formal)
    steps = Steps(not quiet)
    try:
        summary = run_explore(model, data, out, opts, progress=steps)
    finally:
        steps.close()
    metric = summary["metric"]
    table = Table("budget", "design", "val acc (picked on)", "val loss (pts)", "test acc", "test loss (pts)", metric,
                  "power mW", "area red.", "power red.", title=f"approxmlp explore: {summary['data']} on {target}")
    b = summary["baseline"]
    table.add_row("exact", "exact", fmt_acc(b["validation_accuracy"], b["validation_interval"]), "",
                  fmt_acc(b["test_accuracy"], b["test_interval"]), "", fmt(b[metric]), fmt(b["power_mw"], 3),
                  "1.00x", "1.00x")
    for e in summary["budgets"]:
        if e["design"] is None:
            table.add_row(f"{e['max_loss']:.0%}", "none", "", "", "", "", "", "", "", "")
            continue
        pr = f"{e['power_reduction']:.2f}x" if e.get("power_reduction") else "-"
        ar = f"{e['area_reduction']:.2f}x" if e.get("area_reduction") else "-"
        table.add_row(f"{e['max_loss']:.0%}", e["design"], fmt_acc(e["validation_accuracy"], e["validation_interval"]),
                      fmt_loss(e["validation_loss"]), fmt_acc(e["test_accuracy"], e["test_interval"]),
                      fmt_loss(e["test_loss"]), fmt(e[metric]), fmt(e["power_mw"], 3), ar, pr)
    out_console.print(table)
    sel = summary["selection"]
    out_console.print(f"picked on validation ({sel['samples']['validation']} samples, {sel['validation']}): "
                      f"{sel['rule']}; test ({sel['samples']['test']} samples) reported, never used to choose; "
                      "brackets: 95% intervals; losses paired against the exact design, in points")
    for e in summary["budgets"]:
        if e.get("note"):
            out_console.print(f"{e['max_loss']:.0%}: {e['note']}")
    fm = summary.get("formal") or {}
    out_console.print(f"formal: {fm.get('summary', 'skipped (--no-formal)')}")
    out_console.print(f"Pareto front: {out / 'pareto.json'}, {out / 'pareto.png'}; designs in {out / 'designs'}")


@cli.command("demo")
@click.option("--out", type=click.Path(path_type=Path), default=Path("demo-out"), show_default=True)
@OPT_TARGET
@click.option("-q", "--quiet", is_flag=True)
def demo_cmd(out: Path, target: str, quiet: bool) -> None:
    """The whole flow on bundled data, offline, in about a minute and a half: QAT, a genetic
    approximation search, and the smallest verified design certified within 5% loss of
    the exact one, side by side with it."""
    from .pipeline.demo import run_demo

    steps = Steps(not quiet)
    bar = TrainProgress(not quiet)
    try:
        summary = run_demo(out, target=target, progress=steps, train_progress=bar)
    finally:
        bar.close()
        steps.close()
    print_demo(summary)


def _fail(message: str) -> None:
    """One line on stderr: no markup, no wrapping, no traceback."""
    click.echo("approxmlp: " + " ".join(message.split()), err=True)


#: Exit status of an unexpected exception (a bug): not 1, which only means "the RTL
#: disagrees with the golden model", and not 2, which promises the user can fix the input.
INTERNAL_ERROR = 3


def main(argv: list[str] | None = None) -> int:
    try:
        rv = cli.main(args=argv, prog_name="approxmlp", standalone_mode=False)
        return rv if isinstance(rv, int) else 0
    except click.exceptions.Abort:
        _fail("interrupted")
        return 130
    except KeyboardInterrupt:
        _fail("interrupted")
        return 130
    except click.ClickException as exc:
        exc.show()
        return 2
    except VerificationError as exc:
        _fail(f"verification failed: {exc}")
        return 1
    except ApproxMLPError as exc:
        _fail(f"error: {exc}")
        return 2
    except OSError as exc:
        _fail(f"error: {exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else "")
              + "; check the path, its permissions and the free space")
        return 2
    except Exception as exc:  # a bug: never exit 1, which means "the RTL does not match"
        _fail(f"internal error ({type(exc).__name__}: {exc}); this is a bug in approxmlp {__version__}, "
              "please report it with the command line that caused it")
        return INTERNAL_ERROR


if __name__ == "__main__":
    sys.exit(main())
