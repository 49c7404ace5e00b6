"""What `approxmlp train` may be asked: :class:`TrainConfig`, validated on construction.

Apart from the training itself so that the options can be checked (and their messages
tested) without importing torch or Brevitas.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..core.ir import MAX_DATA_BITS
from ..errors import TrainError, check_bits
from .input_quantizer import INPUT_RANGES

#: Weight quantizer choices.
WEIGHT_MODES = ("int", "pow2")
#: Class weighting choices for the loss.
CLASS_WEIGHTS = ("none", "balanced")


@dataclass(frozen=True)
class TrainConfig:
    """Everything :func:`train` needs besides the data (the CLI options map 1:1; the
    ``pow2_*`` fields tune the power-of-two training and have no option)."""

    hidden: tuple[int, ...] = (3,)
    input_bits: int = 4
    weight_bits: int = 8
    #: 16, not 8: an 8-bit bias at accumulator scale costs 0.5..1 point on three of the
    #: five reference sets, and the circuit is sized by the trained values, not by this limit.
    bias_bits: int = 16
    act_bits: int = 8
    weights: str = "int"
    epochs: int = 300              # most QAT epochs (early stopping usually ends far sooner)
    float_epochs: int = 300        # most float warm-up epochs (0: QAT from scratch)
    lr: float = 0.01               # Adam; QAT runs at half of it
    batch_size: int | None = None  # None: auto_batch_size(training samples)
    patience: int = 40             # epochs without validation progress before stopping
    val_fraction: float = 0.2
    class_weight: str = "none"
    seed: int = 0
    restarts: int = 3
    #: Float networks trained side by side (one batched model) before QAT; the ``restarts``
    #: best on validation go on to QAT. A tiny hidden layer makes the float optimum a
    #: lottery: 16 Pendigits 16-5-10 starts range from 0.67 to 0.96 validation accuracy.
    float_candidates: int = 16
    input_range: str = "auto"
    weight_decay: float = 1e-4
    pow2_stages: tuple[float, ...] = (0.5, 0.75, 0.875, 1.0)
    pow2_stage_epochs: int = 40
    pow2_damp: float = 10.0
    pow2_rescale: int = 1
    pow2_search: int = 2

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden", tuple(self.hidden))
        object.__setattr__(self, "pow2_stages", tuple(self.pow2_stages))
        if not self.hidden:
            raise TrainError("--hidden is required: give at least one hidden layer size, e.g. --hidden 3")
        for h in self.hidden:
            if isinstance(h, bool) or not isinstance(h, (int, np.integer)) or not 1 <= h <= 4096:
                raise TrainError(f"--hidden sizes must be integers in 1..4096, not {h!r}")
        check_bits("--input-bits", self.input_bits, 1, MAX_DATA_BITS, TrainError)
        check_bits("--weight-bits", self.weight_bits, 2, 16, TrainError)
        check_bits("--bias-bits", self.bias_bits, 2, 16, TrainError)
        check_bits("--act-bits", self.act_bits, 1, MAX_DATA_BITS, TrainError)
        if self.weights not in WEIGHT_MODES:
            raise TrainError(f"--weights must be one of {', '.join(WEIGHT_MODES)}, not {self.weights!r}")
        if self.class_weight not in CLASS_WEIGHTS:
            raise TrainError(f"--class-weight must be one of {', '.join(CLASS_WEIGHTS)}, not {self.class_weight!r}")
        if self.input_range not in INPUT_RANGES:
            raise TrainError(f"--input-range must be one of {', '.join(INPUT_RANGES)}, not {self.input_range!r}")
        for name, lo in (("epochs", 1), ("float_epochs", 0), ("batch_size", 1), ("patience", 1), ("restarts", 1),
                         ("float_candidates", 1),
                         ("seed", 0), ("pow2_stage_epochs", 1), ("pow2_rescale", 0), ("pow2_search", 0)):
            v = getattr(self, name)
            if name == "batch_size" and v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
                raise TrainError(f"--{name.replace('_', '-')} must be an integer >= {lo}, not {v!r}")
        for name, v, ok in (("lr", self.lr, lambda v: v > 0), ("weight-decay", self.weight_decay, lambda v: v >= 0),
                            ("pow2-damp", self.pow2_damp, lambda v: v >= 0),
                            ("val-fraction", self.val_fraction, lambda v: 0 < v < 1)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not ok(v):
                raise TrainError(f"--{name} is out of range: {v!r}")
        if not self.pow2_stages or self.pow2_stages[-1] != 1.0 or list(self.pow2_stages) != sorted(self.pow2_stages):
            raise TrainError(f"pow2_stages must be increasing fractions ending with 1.0, not {self.pow2_stages}")
