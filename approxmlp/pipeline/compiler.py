"""The `compile` flow: model + data -> IR -> Verilog -> verified -> measured, in a folder.

This module only sequences the stages: it reads the model into an IR (an integer model as
it is, a float one through post-training quantization) and hands it to
:func:`~approxmlp.pipeline.realize.realize`, which writes the design folder (its layout
is described there). `approxmlp compile DIR` rebuilds a design folder from its own IR.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..core.golden import evaluate
from ..core.ir import MLP
from ..errors import DataError, ModelError, VerificationError
from ..progress import Progress, quiet
from .folder import COMPILE_MARKS, check_out, load_ir
from .options import DEFAULT_BITS, CompileOptions, check_options
from .realize import Candidate, realize
from .steps import formal_message


def load_model_ir(model_path: Path, data, opts: CompileOptions, progress: Progress = quiet):
    """The IR a model file stands for, with its input quantizer and float accuracy.

    An integer model (`approxmlp train` output) keeps its IR, quantizer and bit widths:
    an --input-bits, --weight-bits or --act-bits other than its own is refused, not
    silently ignored; a float model is quantized post-training (unset widths:
    :data:`DEFAULT_BITS`). Returns ``(ir, quantizer, float_accuracy, opts)``,
    ``opts`` carrying the bit widths actually used.
    """
    from ..frontend.input_quantizer import InputQuantizer
    from ..frontend.loader import load_model
    from ..frontend.model_file import IntegerModel
    from ..frontend.quantize import quantize_ptq

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
                  progress: Progress = quiet) -> dict:
    """The whole `approxmlp compile`: returns the report (also written to ``out``)."""
    from ..frontend.data import load_dataset

    _check(opts, out)
    t0 = time.perf_counter()
    progress(f"loading data {data_spec}")
    data = load_dataset(data_spec, label=opts.label, seed=opts.seed)
    ir, quantizer, float_acc, opts = load_model_ir(Path(model_path), data, opts, progress)
    extra = {"float_accuracy": float_acc} if float_acc is not None else {}
    return build_design(ir, data, quantizer, out, opts, progress=progress, source=Path(model_path), extra=extra,
                        timings={"quantize_s": time.perf_counter() - t0})


def compile_ir(path: Path, data_spec: str, out: Path, opts: CompileOptions, progress: Progress = quiet) -> dict:
    """`approxmlp compile DIR` (or ``DIR/ir.json``): a design folder rebuilt from its IR as
    it stands, approximations and all, with the input quantizer beside it
    (``quantizer.json``): the same IR hash and the same RTL body, e.g. an explore design
    made a folder of its own with other options (``--registered``, another target)."""
    from ..frontend.data import load_dataset
    from ..frontend.input_quantizer import InputQuantizer

    path = Path(path)
    folder = path if path.is_dir() else path.parent
    if not path.is_dir() and path.name != "ir.json":
        raise ModelError(f"{path} is neither a design folder nor its ir.json; pass the folder that "
                         "`approxmlp compile` or `explore` wrote")
    ir = load_ir(folder)
    qpath = folder / "quantizer.json"
    if not qpath.is_file():
        raise ModelError(f"{qpath} not found: an IR compiles with the input quantizer it was made with; "
                         "pass a design folder written by `approxmlp compile` or `explore`")
    try:
        quantizer = InputQuantizer.from_json(json.loads(qpath.read_text()))
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{qpath} cannot be read ({exc}); recompile the design") from None
    for key in ("input_bits", "weight_bits", "act_bits"):
        if getattr(opts, key) is not None:
            option = "--" + key.replace("_", "-")
            raise ModelError(f"{path} is an IR and carries its own bit widths, so {option} cannot apply; "
                             f"drop {option}")
    weights = [abs(int(w)) for layer in ir.layers for row in layer.weights for w in row] or [1]
    opts = replace(opts, input_bits=ir.input_bits, weight_bits=max(2, max(weights).bit_length() + 1),
                   act_bits=max((layer.act_bits for layer in ir.layers[:-1]), default=ir.layers[-1].act_bits))
    _check(opts, out)
    progress(f"loading data {data_spec}")
    data = load_dataset(data_spec, label=opts.label, seed=opts.seed)
    if data.n_features != ir.n_inputs or data.n_classes != ir.n_classes:
        raise DataError(f"{path} is a {ir.topology_str} MLP but the data set has {data.n_features} features and "
                        f"{data.n_classes} classes; pass the data set it was made for")
    return build_design(ir, data, quantizer, out, opts, progress=progress, source=path)


def _check(opts: CompileOptions, out: Path) -> None:
    """Everything that can be refused, before any work: options, the folder, the tools."""
    from ..backend.tools import check_tools

    check_options(opts)
    check_out(out, COMPILE_MARKS)
    check_tools(verilator=opts.verify, yosys=opts.synth, nextpnr=opts.routes)


def build_design(ir: MLP, data, quantizer, out: Path, opts: CompileOptions, *, progress: Progress = quiet,
                 source: Path | None = None, extra: dict | None = None,
                 timings: dict[str, float] | None = None) -> dict:
    """Realize one IR into ``out`` (compile's and train's one design, see
    :func:`~approxmlp.pipeline.realize.realize`) and raise :class:`VerificationError` when
    the RTL disagrees with its golden model or a proof refutes it (the folder stays, for
    the reader to look into)."""
    accuracy = {"golden_train": float(np.mean(evaluate(ir, quantizer(data.X_train)).classes == data.y_train)),
                **(extra or {})}
    (rec,) = realize([Candidate("", ir, accuracy)], out, opts, data=data, quantizer=quantizer, source=source,
                     timings=timings, progress=progress)
    report = rec.report
    if opts.verify and report["verification"]["mismatches"]:
        m = report["verification"]["first_mismatches"][0]
        raise VerificationError(f"RTL disagrees with the golden model on {report['verification']['mismatches']} "
                                f"of {report['verification']['vectors']} vectors (first: sample {m['sample']}, "
                                f"inputs {m['inputs']}, RTL {m['rtl']}, golden {m['golden']}); see {out}/report.md")
    if opts.formal and report["formal"]["counterexample"]:
        raise VerificationError(f"{formal_message(report['formal'])}; see {out}/report.md")
    return report


def _ident(stem: str) -> str:
    """A Verilog-safe design name from a file name."""
    name = "".join(c if c.isalnum() or c == "_" else "_" for c in stem) or "mlp"
    return name if not name[0].isdigit() else "m_" + name
