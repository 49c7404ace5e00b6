"""Quantization-aware training with Brevitas, exported bit-exactly to the integer IR.

The orchestration: :func:`train` (float screening, QAT, export, the exactness check) and
the model files it writes (:func:`save`, :func:`save_qonnx`). The pieces live beside it:
:mod:`.train_config` (the options), :mod:`.brevitas_net` (the network and its export: the
only Brevitas import), :mod:`.qat_loop` (the epochs), :mod:`.float_screen` (the float
warm-up), :mod:`.pow2_search` (power-of-two weights) and :mod:`.input_quantizer`.

**The network** (:class:`QATNet`) is ``QuantIdentity -> (QuantLinear -> QuantReLU) x H ->
QuantLinear``. Every scale is a power of two, so the hardware needs only shifts:

* the input is the hardware's integer codes ``q = quantizer(X)`` fed as ``q * 2**-input_bits``
  through a ``QuantIdentity`` whose scale is *fixed* at ``2**-input_bits``: it returns the
  codes unchanged, so the network is trained on exactly the integers the circuit receives;
* weights: per-tensor fixed point (``Int8WeightPerTensorFixedPoint`` at ``weight_bits``),
  or with ``weights="pow2"`` a straight-through projection of the float weights onto
  ``0, ±2**k`` *before* that same kind of Brevitas quantizer (whose integer range is then
  ``±2**(weight_bits-2)``, so that no power of two is clipped to ``2**(weight_bits-1) - 1``):
  Brevitas still does the quantization, and it is exact on powers of two;
* biases: ``IntBias`` at ``bias_bits``, whose scale is input scale x weight scale, i.e. the
  accumulator scale: the IR adds the very same integer to the accumulator;
* hidden activations: ``QuantReLU`` with a learned power-of-two scale and **floor**
  rounding (the IR's rescale is an arithmetic right shift; Brevitas' default
  round-half-even would differ on ties), ``act_bits`` unsigned;
* the last layer returns float logits ``acc * 2**e``: the IR keeps it linear, shift 0,
  and the argmax of the two agrees, ties included (both take the lowest index).

**Exactness by construction.** Every tensor Brevitas multiplies is an integer times a power
of two, so its float32 arithmetic is exact while the integer accumulators stay below
2**24 (:func:`brevitas_classes` switches to float64 past that), and
``acc_int = W_int @ x_int + b_int`` (IR), ``y = clamp(floor(acc_int * 2**(e_acc - e_act)),
0, 2**act_bits - 1)`` = ``clamp(acc_int >> shift, ...)`` with ``shift = e_act - e_acc``.
:func:`export_ir` reads the integers back from Brevitas' own quantizers (nothing is
re-quantized) and :func:`train` checks the equality on every training and test sample.

**Training** (:func:`train`): a float warm-up, then QAT, both with Adam on mini-batches,
a cosine learning rate and early stopping on a stratified validation split carved from
the training set. The warm-up trains ``float_candidates`` float networks side by side (one
batched model, :func:`float_screen`): with a hidden layer of a few neurons, where the
float optimization lands is a lottery (Pendigits 16-5-10: 0.67 to 0.96 validation
accuracy over 16 starts). The ``restarts`` best on validation go on to QAT, and the best
quantized one on that validation split wins. Power-of-two weights oscillate between neighbouring powers under
plain straight-through training, so the pow2 QAT also (Nagel et al. 2022; Zhou et al.
2017) dampens that oscillation, freezes the weights in stages, picks per-neuron scale
factors that the float function does not see but the rounding does
(:func:`pow2_rescale`) and ends with a discrete local search (:func:`pow2_local_search`).

Input ranges: data already on the ``k / 2**bits`` grid (the literature's splits) keep
their codes; other data get per-feature 1st..99th percentile ranges (outliers saturate),
which beats min-max ranges on skewed sensor data (Cardio: +2 points).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from ..core import golden
from ..core.ir import MLP, signed_width
from ..errors import DataError, TrainError
from ..progress import EpochProgress, quiet_epochs
from .brevitas_net import QATNet, calibrate_activations, check_exact, export_ir
from .dataset import Dataset
from .float_screen import float_screen
from .input_quantizer import InputQuantizer, choose_quantizer
from .pow2_search import qat_pow2
from .qat_loop import Split, auto_batch_size, class_weights, logits_accuracy, run_epochs
from .train_config import TrainConfig

#: ``quantization`` entry of the exported IR's meta.
SCHEME = "qat-brevitas-pow2-scales"


@dataclass
class TrainResult:
    """What :func:`train` produced: the IR, the input quantizer, the trained Brevitas
    network, per-layer scale exponents and a JSON-able summary (accuracies, ranges,
    timings, configuration) that also goes into the model file."""

    ir: MLP
    quantizer: InputQuantizer
    net: QATNet
    summary: dict[str, Any]
    layers: list[dict] = field(default_factory=list)


def train(data: Dataset, cfg: TrainConfig, *, name: str = "mlp", progress: EpochProgress = quiet_epochs) -> TrainResult:
    """QAT of ``data`` with ``cfg`` (see the module docstring). The exported IR is checked
    against the Brevitas model on every training and test sample before it is returned."""
    if not isinstance(cfg, TrainConfig):
        raise TypeError("cfg must be a TrainConfig")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: a thread pool costs far more than it gives
    try:
        return _train(data, cfg, name, progress)
    finally:
        torch.set_num_threads(threads)


def _train(data: Dataset, cfg: TrainConfig, name: str, progress: EpochProgress) -> TrainResult:
    t0 = time.perf_counter()
    if len(np.unique(data.y_train)) < 2:
        raise DataError(f"{data.name}: the training split holds a single class; a classifier needs at least two")
    quantizer = choose_quantizer(data, cfg.input_bits, cfg.input_range)
    # The validation split is also the one explore picks designs on, so this model's
    # validation accuracy is somewhat optimistic (it early-stops and picks its restarts on
    # it). Choosing on a part of its own instead was measured and cost the exact models
    # 1.2-2.2 points of test accuracy (fewer samples to learn from): see the README.
    split = data.validation_split(cfg.val_fraction, cfg.seed)
    codes_fit, codes_val, codes_test = quantizer(split.X_fit), quantizer(split.X_val), quantizer(data.X_test)
    if cfg.batch_size is None:
        cfg = replace(cfg, batch_size=auto_batch_size(len(codes_fit)))
    loss_fn = nn.CrossEntropyLoss(weight=class_weights(split.y_fit, data.n_classes, cfg.class_weight))
    y_fit, y_val = torch.tensor(split.y_fit, dtype=torch.long), torch.tensor(split.y_val, dtype=torch.long)
    y_test = torch.tensor(data.y_test, dtype=torch.long)

    def make_net() -> QATNet:
        return QATNet(data.n_features, cfg.hidden, data.n_classes, input_bits=cfg.input_bits,
                      weight_bits=cfg.weight_bits, bias_bits=cfg.bias_bits, act_bits=cfg.act_bits, weights=cfg.weights)

    torch.manual_seed(cfg.seed)
    probe = make_net()
    d = Split(probe.codes_to_input(codes_fit), y_fit, probe.codes_to_input(codes_val), y_val)
    starts = []
    if cfg.float_epochs:  # the float optima of many starts, the restarts best ones go on to QAT
        starts = float_screen((data.n_features, *cfg.hidden, data.n_classes), d, cfg, loss_fn, progress)
    runs = []
    for r in range(cfg.restarts):
        seed = cfg.seed + r
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        net = make_net()
        tag = f"{r + 1}/{cfg.restarts}"
        fbest: dict = {}
        if starts:
            with torch.no_grad():
                for lin, w, b in zip(net.linears, starts[r].weights, starts[r].biases):
                    lin.weight.copy_(w)
                    lin.bias.copy_(b)
            fbest = starts[r].best
        with torch.no_grad():
            float_test = logits_accuracy(net.forward_float(net.codes_to_input(codes_test)), y_test)
        calibrate_activations(net, d.x, cfg, gen)
        if cfg.weights == "pow2":
            qat_pow2(net, d, cfg, loss_fn, gen, tag, progress)
        qbest = run_epochs(net, net.forward, d, epochs=cfg.epochs, lr=cfg.lr / 2, cfg=cfg, loss_fn=loss_fn, gen=gen,
                        phase=f"qat {tag}", progress=progress)
        runs.append({"seed": seed, "net": net, "float": fbest, "qat": qbest, "float_test": float_test})
    best = max(runs, key=lambda r: (r["qat"]["val_acc"], -r["qat"]["val_loss"], -r["seed"]))
    net = best["net"]

    meta = {"quantization": SCHEME, "weights": cfg.weights, "source": data.name, "train_seed": best["seed"],
            "input_bits": cfg.input_bits, "weight_bits": cfg.weight_bits, "bias_bits": cfg.bias_bits,
            "act_bits": cfg.act_bits, "input_lo": json.dumps(quantizer.lo.tolist()),
            "input_hi": json.dumps(quantizer.hi.tolist()), "class_names": json.dumps(list(data.classes))}
    ir, info = export_ir(net, name=name, meta=meta)
    ir = ir.with_meta(scale_log2=json.dumps([rec["output_scale_log2"] for rec in info]))

    codes_all = np.concatenate([codes_fit, codes_val, codes_test])
    mism = check_exact(net, ir, codes_all)
    if mism:
        raise TrainError(f"internal error: the Brevitas model and the exported IR disagree on {mism} of "
                         f"{len(codes_all)} samples; please report this with the command line")
    if cfg.weights == "pow2":
        a = np.abs(np.concatenate([layer.weight_matrix.ravel() for layer in ir.layers]))
        if np.any(a & (a - 1)):
            raise TrainError("internal error: a pow2 weight is not a power of two; please report this")

    def acc(codes: np.ndarray, y: np.ndarray) -> float:
        return float(np.mean(golden.predict(ir, codes) == y)) if len(y) else float("nan")

    summary = {
        "data": data.name, "topology": ir.topology_str, "weights": cfg.weights, "seed": best["seed"],
        "restarts": cfg.restarts,
        "float_accuracy": {"val": best["float"].get("val_acc"), "test": best["float_test"]},
        "accuracy": {"train": acc(codes_fit, split.y_fit), "val": acc(codes_val, split.y_val),
                     "test": acc(codes_test, data.y_test)},
        "validation": split.source,
        "epochs": {"float": best["float"].get("epochs_run", 0), "float_best": best["float"].get("epoch", 0),
                   "qat": best["qat"]["epochs_run"], "qat_best": best["qat"]["epoch"]},
        "brevitas_equals_golden": {"samples": int(len(codes_all)), "mismatches": 0},
        "ranges": layer_ranges(ir, np.concatenate([codes_fit, codes_val]), info),
        "config": asdict(cfg) | {"hidden": list(cfg.hidden), "pow2_stages": list(cfg.pow2_stages)},
        "train_seconds": round(time.perf_counter() - t0, 2),
        "ir_sha256": ir.digest,
    }
    return TrainResult(ir=ir, quantizer=quantizer, net=net, summary=summary, layers=info)


def layer_ranges(ir: MLP, codes: np.ndarray, info: Sequence[dict] = ()) -> list[dict]:
    """Per layer: integer weight and bias ranges, shift, the accumulator and output ranges
    seen on ``codes`` and the worst-case accumulator width (for the training summary)."""
    from ..core.ranges import analyze

    ev = golden.evaluate(ir, codes, trace=True)
    bounds = analyze(ir)
    x, out = codes, []
    for k, layer in enumerate(ir.layers):
        W, b = layer.weight_matrix, layer.bias_vector
        acc = x @ W.T + b
        rec = {"layer": k, "shape": f"{layer.n_in}->{layer.n_out}", "activation": layer.activation,
               "weights": [int(W.min()), int(W.max())], "biases": [int(b.min()), int(b.max())],
               "shift": layer.shift, "act_bits": layer.act_bits if layer.activation == "qrelu" else None,
               "acc_seen": [int(acc.min()), int(acc.max())],
               "acc_bits_worst": signed_width(min(n.acc_lo for n in bounds[k]), max(n.acc_hi for n in bounds[k])),
               "out_seen": [int(ev.outputs[k].min()), int(ev.outputs[k].max())]}
        if k < len(info):
            rec["scale_log2"] = info[k]["output_scale_log2"]
        out.append(rec)
        x = ev.outputs[k]
    return out


def save(result: TrainResult, path: Any) -> None:
    """Write the trained model in the integer model format that ``approxmlp compile``
    (:func:`approxmlp.frontend.model_file.load_model`) compiles as is; see
    :func:`approxmlp.frontend.model_file.save_integer_model`."""
    import brevitas

    from .. import __version__
    from .model_file import save_integer_model

    s = result.summary
    cfg = s["config"]
    meta = {
        "producer": f"approxmlp {__version__} train (brevitas {brevitas.__version__}, torch {torch.__version__})",
        "quantization": SCHEME, "weights": cfg["weights"], "input_bits": cfg["input_bits"],
        "weight_bits": cfg["weight_bits"], "bias_bits": cfg["bias_bits"], "act_bits": cfg["act_bits"],
        "float_accuracy": s["float_accuracy"]["test"], "accuracy": s["accuracy"],
        "class_names": json.loads(dict(result.ir.meta).get("class_names", "[]")),
        "training": s,
    }
    save_integer_model(path, result.ir, result.quantizer, meta)


def save_qonnx(result: TrainResult, path: Any) -> None:
    """Write the trained Brevitas network as QONNX (``brevitas.export.export_qonnx``): integer
    ``Quant`` nodes with power-of-two scales on the input, the weights, the biases and the
    activations (floor rounding). The graph takes ``codes * 2**-input_bits``; the input
    quantizer (raw features to codes) and the class names go into its ``metadata_props``
    (``approxmlp.input_lo``, ``approxmlp.input_hi``, ``approxmlp.class_names``), so that
    ``approxmlp compile`` reads the same IR from it as from the ``.pt`` (checked here)."""
    import os
    import tempfile
    from pathlib import Path

    import onnx
    from brevitas.export import export_qonnx

    from .loader import load_onnx

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    net = result.net
    net.eval()
    tmpdir = tempfile.mkdtemp(prefix=f".{p.name}.", dir=p.parent)
    try:
        raw = Path(tmpdir) / "export.onnx"
        import logging
        import warnings

        quiet = logging.getLogger("torch.onnx")   # "torchvision is not installed" notes of the exporter
        level = quiet.level
        quiet.setLevel(logging.ERROR)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                export_qonnx(net, input_t=net.codes_to_input(np.zeros((1, result.ir.n_inputs), dtype=np.int64)),
                             export_path=str(raw), verbose=False)
        finally:
            quiet.setLevel(level)
        model = onnx.load(str(raw))    # our own file: its external data, if any, come along
        meta = {"approxmlp.input_lo": json.dumps(result.quantizer.lo.tolist()),
                "approxmlp.input_hi": json.dumps(result.quantizer.hi.tolist()),
                "approxmlp.ir_sha256": result.ir.digest}
        names = dict(result.ir.meta).get("class_names")
        if names:
            meta["approxmlp.class_names"] = names
        onnx.helper.set_model_props(model, meta)
        final = Path(tmpdir) / p.name
        onnx.save(model, str(final))
        back = load_onnx(final)
        if back.ir.digest != result.ir.digest:
            raise TrainError("internal error: the QONNX export does not compile to the trained IR; please report this")
        os.replace(final, p)
    finally:
        import shutil

        shutil.rmtree(tmpdir, ignore_errors=True)
