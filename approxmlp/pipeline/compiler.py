"""The `compile` flow: model + data -> IR -> Verilog -> verified -> measured, in a folder.

This module only sequences the stages (each lives in its own module and knows nothing of
the others) and owns the output folder. The folder is built in a staging directory next
to ``--out`` and moved into place only when every step succeeded, so a failure never
leaves anything half-written where the user looks.

Output folder (self-contained, like da4ml's):

* ``rtl/top.v``            the bespoke Verilog, with copies of the ``rtl/`` primitives it
  instantiates (``rtl/approxmlp_qrelu.v``, ...) so that the folder synthesizes elsewhere;
* ``ir.json``              the integer MLP it implements (reloadable, hashed in the RTL);
* ``quantizer.json``       how raw features become the input integers;
* ``vectors/test.npz``     test vectors: ``inputs``, ``golden`` classes, ``labels``
  (and ``vectors/test.csv``, the same for humans and other simulators);
* ``model.onnx``           the same design as ONNX (input codes in, class out; bit-exact);
* ``report.json`` / ``report.md``, and ``logs/`` (lint, simulation, synthesis); ``report.json``
  also records the sha256 of every other file (``files``), for `approxmlp verify`.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .. import __version__
from ..backend.verilog import class_width, emit_verilog
from ..backend.verilog.primitives import write_rtl
from ..errors import ApproxMLPError, DataError, IRError, ModelError, VerificationError
from ..core.golden import evaluate
from ..core.ir import MLP
from ..frontend.data import check_bits, check_seed

Progress = Callable[[str], None]

REPORT_SCHEMA = "approxmlp-report/1"


def _quiet(_: str) -> None:
    pass


#: Bit widths a float model is quantized to when no option says otherwise (an integer
#: model, `approxmlp train`'s output, has its own).
DEFAULT_BITS = {"input_bits": 4, "weight_bits": 8, "act_bits": 8}


@dataclass(frozen=True)
class CompileOptions:
    target: str = "printed"
    #: None: the model's own widths (an integer model), else :data:`DEFAULT_BITS`.
    input_bits: int | None = None
    weight_bits: int | None = None
    act_bits: int | None = None
    registered: bool = False
    verify: bool = True
    synth: bool = True
    #: prove RTL = reference and netlist = RTL where that is quick (see :func:`run_formal`)
    formal: bool = True
    clock_hz: float = 5.0
    module: str = "top"
    label: str | None = None
    seed: int = 0
    requantize: bool = False
    onnx: bool = True


def check_options(opts: CompileOptions) -> None:
    """Refuse impossible settings before any work is done."""
    from ..backend.synth import TARGETS

    if opts.target not in TARGETS:
        raise ApproxMLPError(f"unknown target {opts.target!r}; choose one of {', '.join(TARGETS)}")
    for name, lo in (("input_bits", 1), ("weight_bits", 2), ("act_bits", 1)):
        if getattr(opts, name) is not None:
            check_bits("--" + name.replace("_", "-"), getattr(opts, name), lo, 16, ModelError)
    check_seed(opts.seed)
    if not opts.clock_hz > 0:
        raise ApproxMLPError(f"--clock-hz must be positive, not {opts.clock_hz}")


#: The file only `compile` writes into its folder: a folder holding it may be replaced.
COMPILE_MARKS = ("report.json",)


def check_out(out: Path, marks: tuple[str, ...]) -> Path:
    """``out`` resolved, once it is known to be a folder approxmlp may (re)write: new, empty,
    or holding one of ``marks`` (files only approxmlp writes there, e.g. ``report.json``),
    below a path whose existing part is a folder. A user's own files are never replaced."""
    out = Path(out).resolve()
    if out.exists() and not out.is_dir():
        raise ApproxMLPError(f"--out {out} exists and is not a folder; choose another path")
    if out.is_dir() and any(out.iterdir()) and not any((out / m).exists() for m in marks):
        raise ApproxMLPError(f"--out {out} is a non-empty folder that approxmlp did not write; "
                             "choose an empty or new folder")
    check_parents(out)
    return out


def check_parents(path: Path) -> None:
    """Refuse a path below a file (``--out afile/sub``), which the OS would only answer
    with "File exists" or "Not a directory"."""
    for parent in Path(path).resolve().parents:
        if parent.exists():
            if not parent.is_dir():
                raise ApproxMLPError(f"--out {path}: {parent} is a file, not a folder; choose another path")
            return


def make_folder(path: Path) -> None:
    """``mkdir -p`` of (a parent of) ``--out`` whose failure names it and a fix, not the raw
    OS error."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ApproxMLPError(f"--out {path}: cannot create it ({exc.strerror or exc}); "
                             "choose a folder you can write to") from None


@dataclass
class Staging:
    """A sibling temp folder that becomes ``out`` on :meth:`commit`, or vanishes.

    ``marks`` name files that only approxmlp writes into such a folder: an existing ``out``
    is replaced only if it holds one (or is empty)."""

    out: Path
    marks: tuple[str, ...] = COMPILE_MARKS
    path: Path = field(init=False)

    def __enter__(self) -> "Staging":
        self.out = check_out(self.out, self.marks)
        make_folder(self.out.parent)
        try:
            self.path = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.", dir=self.out.parent))
        except OSError as exc:
            raise ApproxMLPError(f"--out {self.out}: cannot write in {self.out.parent} "
                                 f"({exc.strerror or exc}); choose a folder you can write to") from None
        return self

    def commit(self) -> None:
        """Replace ``out`` by the staged folder: the old one is moved aside first, so that
        a failure leaves either of them whole."""
        old = None
        if self.out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.old.", dir=self.out.parent))
            self.out.rename(old / self.out.name)
        try:
            self.path.rename(self.out)
        except OSError:
            if old is not None:
                (old / self.out.name).rename(self.out)
            raise
        finally:
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)

    def __exit__(self, *exc) -> None:
        if self.path.exists():
            shutil.rmtree(self.path, ignore_errors=True)


def file_hashes(folder: Path) -> dict[str, str]:
    """The sha256 of every file in a design folder but ``report.json`` (which records
    them), by path relative to the folder: how `approxmlp verify` tells which files
    changed since they were written."""
    return {f.relative_to(folder).as_posix(): hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted(folder.rglob("*")) if f.is_file() and f != folder / "report.json"}


def write_vectors(folder: Path, inputs: np.ndarray, golden: np.ndarray, labels: np.ndarray | None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    npz = folder / "test.npz"
    arrays = {"inputs": inputs.astype(np.int64), "golden": golden.astype(np.int64)}
    if labels is not None:
        arrays["labels"] = labels.astype(np.int64)
    np.savez_compressed(npz, **arrays)
    header = ",".join([f"x{i}" for i in range(inputs.shape[1])] + ["golden"] + (["label"] if labels is not None else []))
    cols = [inputs, golden[:, None]] + ([labels[:, None]] if labels is not None else [])
    np.savetxt(folder / "test.csv", np.hstack(cols), fmt="%d", delimiter=",", header=header, comments="")
    return npz


def read_vectors(folder: Path) -> dict[str, np.ndarray]:
    npz = folder / "vectors" / "test.npz"
    if not npz.is_file():
        raise DataError(f"{npz} not found; is {folder} a folder written by `approxmlp compile`?")
    try:
        with np.load(npz, allow_pickle=False) as f:
            vec = {k: f[k] for k in f.files}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, KeyError) as exc:  # a damaged .npz
        raise DataError(f"{npz} cannot be read ({type(exc).__name__}: {exc}); it is damaged or truncated: "
                        "recompile the design") from None
    missing = [k for k in ("inputs", "golden") if k not in vec]
    if missing:
        raise DataError(f"{npz} lacks {', '.join(missing)}; recompile the design")
    return vec


def load_ir(folder: Path) -> MLP:
    path = folder / "ir.json"
    if not path.is_file():
        raise ModelError(f"{path} not found; is {folder} a folder written by `approxmlp compile`?")
    try:
        return MLP.from_json(json.loads(path.read_text()))
    except json.JSONDecodeError as exc:
        raise ModelError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno}); recompile the design") from None
    except UnicodeDecodeError:
        raise ModelError(f"{path} is not a text file; recompile the design") from None
    except IRError as exc:
        raise ModelError(f"{path}: {exc}; recompile the design") from None


def with_extra_vectors(ir: MLP, inputs: np.ndarray, expected: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict]:
    """The test vectors followed by :func:`approxmlp.core.vectors.extra_vectors` (random
    inputs, corners, QReLU edges, argmax near-ties) with their golden classes, and how
    many of each kind (``exact_ties``: how many vectors in all tie on the best score)."""
    from ..core.vectors import exact_ties, extra_vectors

    extra = extra_vectors(ir)
    X = np.concatenate([np.asarray(inputs, dtype=np.int64)] + list(extra.values()))
    y = np.concatenate([np.asarray(expected, dtype=np.int64)] + [evaluate(ir, v).classes for v in extra.values()])
    kinds = {"test": int(len(inputs))} | {k: int(len(v)) for k, v in extra.items()}
    kinds["exact_ties"] = exact_ties(ir, X)
    return X, y, kinds


def run_verification(ir: MLP, rtl: Path, inputs: np.ndarray, expected: np.ndarray, logs: Path, *,
                     module: str, registered: bool, progress: Progress = _quiet) -> dict:
    """Lint with ``verilator -Wall``, then simulate with cocotb every test vector and the
    extra vectors of :func:`with_extra_vectors`; a dict for the report (``rtl_classes``:
    the RTL's classes of the test vectors)."""
    from ..backend.simulate import SimDesign, lint, simulate
    from ..backend.tools import verilator_version

    progress("linting the RTL (verilator --lint-only -Wall)")
    warnings = lint(rtl, module)
    logs.mkdir(parents=True, exist_ok=True)
    (logs / "lint.log").write_text("\n".join(warnings) + ("\n" if warnings else ""))
    X, y, kinds = with_extra_vectors(ir, inputs, expected)
    design = SimDesign(module=module, verilog=rtl.read_text(), inputs=X, expected=y,
                       input_bits=ir.input_bits, out_width=class_width(ir.n_classes), registered=registered,
                       primitives_dir=rtl.parent)
    with tempfile.TemporaryDirectory(prefix="approxmlp-sim-") as build:
        res = simulate([design], Path(build), progress=progress)[0]
        shutil.copyfile(res.log, logs / "sim.log")
    mism = [dict(sample=m.sample, inputs=list(m.inputs), rtl=m.rtl, golden=m.golden) for m in res.mismatches]
    return {"vectors": int(res.vectors), "vectors_by_kind": kinds, "mismatches": len(mism),
            "passed": res.ok and not warnings, "lint_warnings": len(warnings), "first_mismatches": mism[:10],
            "simulator": verilator_version(), "rtl_classes": res.rtl[:len(inputs)]}


def netlist_of(folder: Path, report: dict) -> Path | None:
    """The mapped netlist synthesis kept in a design folder (named in its report), if any."""
    name = (report.get("synthesis") or {}).get("netlist")
    path = Path(folder) / name if name else None
    return path if path is not None and path.is_file() else None


def run_formal(ir: MLP, rtl: Path, folder: Path, report: dict, *, registered: bool, module: str = "top",
               timeout: float | None = None, auto: bool = False, progress: Progress = _quiet) -> dict:
    """The report's ``formal`` entry for the design in ``folder`` (its netlist and target
    read from ``report``). ``auto``: the default run of compile and explore, which skips
    networks of more than :data:`~approxmlp.backend.formal.AUTO_MAX_CONNECTIONS` weights
    and gives each proof :data:`~approxmlp.backend.formal.AUTO_TIMEOUT_S`."""
    from ..backend import formal

    if auto and formal.connections(ir) > formal.AUTO_MAX_CONNECTIONS:
        why = formal.skipped(f"{formal.connections(ir)} connections, more than the "
                             f"{formal.AUTO_MAX_CONNECTIONS} proven by default; run `approxmlp verify DIR --formal`")
        return formal.result_entry(why, why)
    if timeout is None:
        timeout = formal.AUTO_TIMEOUT_S if auto else formal.DEFAULT_TIMEOUT_S
    progress(f"proving RTL = reference and netlist = RTL (Yosys SAT, at most {timeout:g} s each)")
    return formal.prove_design(ir, rtl, netlist=netlist_of(folder, report), target=report.get("target"),
                               registered=registered, module=module, timeout=timeout)


def formal_message(entry: dict) -> str:
    """The one line that says which proof found a counterexample."""
    for key, what in (("rtl_vs_reference", "the RTL differs from the IR's reference circuit"),
                      ("netlist_vs_rtl", "the synthesized netlist differs from the RTL")):
        if str(entry.get(key, "")).startswith("counterexample"):
            return f"formal: {what}: {entry[key]}"
    return ""


def run_synthesis(rtl: Path, opts: CompileOptions, dest: Path, progress: Progress = _quiet) -> dict:
    """Synthesize in a scratch folder and keep what a reader needs in ``dest`` (the Yosys
    log, the statistics, the mapped netlist); the report names them relative to the
    design folder (``dest``'s parent), so they stay valid when the folder moves."""
    from ..backend.synth import synthesize

    progress(f"synthesizing for {opts.target} (Yosys + ABC)")
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="approxmlp-synth-") as work:
        res = synthesize(rtl, opts.module, opts.target, Path(work), clock_hz=opts.clock_hz)
        out = res.to_json()
        for key, name in (("log", "yosys.log"), ("stat_json", "synth_stat.json"), ("netlist", "netlist.v")):
            src = getattr(res, key, None)
            if src is not None and Path(src).is_file():
                shutil.copyfile(src, dest / name)
                out[key] = f"{dest.name}/{name}"
            else:
                out.pop(key, None)
    out.pop("liberty", None)
    return out


def load_model_ir(model_path: Path, data, opts: CompileOptions, progress: Progress = _quiet):
    """The IR a model file stands for, with its input quantizer and float accuracy.

    An integer model (`approxmlp train` output) keeps its IR, quantizer and bit widths:
    an --input-bits, --weight-bits or --act-bits other than its own is refused, not
    silently ignored; a float model is quantized post-training (unset widths:
    :data:`DEFAULT_BITS`). Returns ``(ir, quantizer, float_accuracy, opts)``,
    ``opts`` carrying the bit widths actually used.
    """
    from dataclasses import replace

    from ..frontend.data import InputQuantizer
    from ..frontend.loader import load_model
    from ..frontend.quantize import IntegerModel, quantize_ptq

    progress(f"loading model {model_path}")
    model = load_model(Path(model_path), requantize=opts.requantize)
    if model.n_inputs != data.n_features:
        raise DataError(f"{model_path} takes {model.n_inputs} inputs but the data set has {data.n_features} "
                        "features; pass the data set the model was trained on")
    if model.n_classes != data.n_classes:
        raise DataError(f"{model_path} has {model.n_classes} outputs but the data set has {data.n_classes} "
                        "classes; pass the data set the model was trained on")
    name = _ident(Path(model_path).stem)
    if isinstance(model, IntegerModel):
        progress("integer model: compiling its IR as is (no re-quantization)")
        ir = replace(model.ir, name=name)
        own = {"input_bits": ir.input_bits, "weight_bits": model.weight_bits, "act_bits": model.act_bits}
        for key, bits in own.items():
            asked = getattr(opts, key)
            if asked is not None and asked != bits:
                option = "--" + key.replace("_", "-")
                what = {"input_bits": "inputs", "weight_bits": "weights", "act_bits": "activations"}[key]
                raise ModelError(f"{model_path} is an integer model trained with {bits}-bit {what}, "
                                 f"so {option} {asked} cannot apply; drop {option}, "
                                 f"or retrain with `approxmlp train {option} {asked}`")
        opts = replace(opts, **own)
        fa = model.metadata.get("float_accuracy")
        return ir, model.quantizer, (fa if isinstance(fa, float) else None), opts
    opts = replace(opts, **{k: v for k, v in DEFAULT_BITS.items() if getattr(opts, k) is None})
    quantizer = model.input_quantizer(opts.input_bits) or InputQuantizer.fit(data.X_train, opts.input_bits)
    progress("quantizing (post-training, power-of-two scales)")
    ir = quantize_ptq(model, quantizer, quantizer(data.X_train), weight_bits=opts.weight_bits,
                      act_bits=opts.act_bits, name=name)
    float_acc = float(np.mean(model.predict(data.X_test) == data.y_test))
    if "requantized" in model.metadata:
        golden_acc = float(np.mean(evaluate(ir, quantizer(data.X_test)).classes == data.y_test))
        progress(f"re-quantized ({model.metadata['requantized']}): test accuracy {float_acc:.4f} with the model's "
                 f"own weights in float arithmetic -> {golden_acc:.4f} after PTQ ({golden_acc - float_acc:+.4f})")
        ir = ir.with_meta(requantized=model.metadata["requantized"])
    return ir, quantizer, float_acc, opts


def compile_model(model_path: Path, data_spec: str, out: Path, opts: CompileOptions,
                  progress: Progress = _quiet) -> dict:
    """The whole `approxmlp compile`: returns the report (also written to ``out``)."""
    from ..backend.tools import check_tools
    from ..frontend.data import load_dataset

    check_options(opts)
    check_out(out, COMPILE_MARKS)
    check_tools(verilator=opts.verify, yosys=opts.synth)
    t0 = time.perf_counter()
    progress(f"loading data {data_spec}")
    data = load_dataset(data_spec, label=opts.label, seed=opts.seed)
    ir, quantizer, float_acc, opts = load_model_ir(Path(model_path), data, opts, progress)
    extra = {"float_accuracy": float_acc} if float_acc is not None else {}
    return build_design(ir, data, quantizer, out, opts, progress=progress, source=Path(model_path), extra=extra,
                        timings={"quantize_s": time.perf_counter() - t0})


def _ident(stem: str) -> str:
    """A Verilog-safe design name from a file name."""
    name = "".join(c if c.isalnum() or c == "_" else "_" for c in stem) or "mlp"
    return name if not name[0].isdigit() else "m_" + name


def build_design(ir: MLP, data, quantizer, out: Path, opts: CompileOptions, *, progress: Progress = _quiet,
                 source: Path | None = None, extra: dict | None = None,
                 timings: dict[str, float] | None = None) -> dict:
    """Emit, verify and measure one IR into ``out`` (shared by compile, train and explore)."""
    timings = dict(timings or {})
    Xq_test = quantizer(data.X_test)
    Xq_train = quantizer(data.X_train)
    ev = evaluate(ir, Xq_test)
    acc_golden = float(np.mean(ev.classes == data.y_test))
    acc_train = float(np.mean(evaluate(ir, Xq_train).classes == data.y_train))
    src_text = source.name if source else None
    with Staging(out) as stage:
        root = stage.path
        t = time.perf_counter()
        rtl = write_rtl(root / "rtl" / "top.v",
                        emit_verilog(ir, module=opts.module, registered=opts.registered, source=src_text))
        timings["emit_s"] = time.perf_counter() - t
        (root / "ir.json").write_text(ir.dumps() + "\n")
        (root / "quantizer.json").write_text(json.dumps(quantizer.to_json(), indent=1) + "\n")
        write_vectors(root / "vectors", Xq_test, ev.classes, data.y_test)
        report: dict = {
            "schema": REPORT_SCHEMA,
            "approxmlp_version": __version__,
            "target": opts.target,
            "model": {"source": str(source) if source else None, "name": ir.name,
                      "topology": ir.topology_str, "input_bits": ir.input_bits,
                      "weight_bits": opts.weight_bits, "act_bits": opts.act_bits,
                      "ir_sha256": ir.digest, "exact": ir.is_exact, "meta": dict(ir.meta)},
            "data": {"spec": data.name, "train": int(len(data.y_train)), "test": int(len(data.y_test)),
                     "classes": int(data.n_classes)},
            "accuracy": {"golden": acc_golden, "golden_train": acc_train, "rtl": None},
            "verification": {"vectors": 0, "mismatches": None, "passed": None, "skipped": not opts.verify},
            "rtl": "rtl/top.v",
            "registered": opts.registered,
        }
        report["accuracy"].update(extra or {})
        if opts.onnx:
            from ..backend.onnx_export import check_exact, write_onnx

            try:
                check_exact(ir)
            except ModelError as exc:   # accumulators past 2**53: no exact float64 graph
                report["onnx"] = {"skipped": str(exc)}
            else:
                progress("writing model.onnx (checked with onnxruntime on every test vector)")
                t = time.perf_counter()
                report["onnx"] = write_onnx(ir, root / "model.onnx", check_codes=Xq_test)
                timings["onnx_s"] = time.perf_counter() - t
        if opts.verify:
            t = time.perf_counter()
            ver = run_verification(ir, rtl, Xq_test, ev.classes, root / "logs", module=opts.module,
                                   registered=opts.registered, progress=progress)
            timings["verify_s"] = time.perf_counter() - t
            rtl_classes = ver.pop("rtl_classes")
            report["accuracy"]["rtl"] = float(np.mean(rtl_classes == data.y_test))
            report["verification"] = ver | {"skipped": False}
        if opts.synth:
            t = time.perf_counter()
            syn = run_synthesis(rtl, opts, root / "logs", progress)
            timings["synth_s"] = time.perf_counter() - t
            report["synthesis"] = syn
            for key in ("area_cm2", "power_mw", "static_power_mw", "dynamic_power_mw", "cells",
                        "cell_count", "luts", "carries", "ffs"):
                if syn.get(key) is not None:
                    report[key] = syn[key]
        if opts.formal:
            t = time.perf_counter()
            report["formal"] = run_formal(ir, rtl, root, report, registered=opts.registered, module=opts.module,
                                          auto=True, progress=progress)
            timings["formal_s"] = time.perf_counter() - t
        else:
            report["formal"] = None  # --no-formal: the report says so
        report["timings"] = {k: round(v, 3) for k, v in timings.items()}
        from ..backend.report import markdown

        (root / "report.md").write_text(markdown(report))
        report["files"] = file_hashes(root)
        (root / "report.json").write_text(json.dumps(report, indent=1, sort_keys=False, default=_json_default) + "\n")
        stage.commit()
    if opts.verify and report["verification"]["mismatches"]:
        m = report["verification"]["first_mismatches"][0]
        raise VerificationError(f"RTL disagrees with the golden model on {report['verification']['mismatches']} "
                                f"of {report['verification']['vectors']} vectors (first: sample {m['sample']}, "
                                f"inputs {m['inputs']}, RTL {m['rtl']}, golden {m['golden']}); see {out}/report.md")
    if opts.formal and report["formal"]["counterexample"]:
        raise VerificationError(f"{formal_message(report['formal'])}; see {out}/report.md")
    return report


def _json_default(o):
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serializable: {type(o).__name__}")
