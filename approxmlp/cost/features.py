"""The cost model's features: what they are called, in which order, and their common unit.

Defined once, here, for the two ways of counting them (:mod:`.design`, one IR at a time,
the oracle; :mod:`.population`, a whole search population at once) and for the fitted
model (:mod:`.model`), whose coefficients are refused if they were fitted to other counts.
"""

from __future__ import annotations

import numpy as np

FEATURES = ("fa", "ha", "fa_carry", "ha_carry", "act_gates", "sat_or", "cmp_bits", "cmp_const_bits",
            "mux_bits", "neurons")
#: Position of each feature in a feature vector.
INDEX = {name: k for k, name in enumerate(FEATURES)}
FA, HA, FA_CARRY, HA_CARRY = INDEX["fa"], INDEX["ha"], INDEX["fa_carry"], INDEX["ha_carry"]
#: The adder features, which a layer's shared terms scale (:mod:`.sharing`).
ADDERS = [FA, HA, FA_CARRY, HA_CARRY]
#: Bump whenever what a feature counts changes: coefficients fitted to other counts are refused.
FEATURES_VERSION = 2

#: Rough gate equivalents of the features (their common unit for the caps below).
GATE_EQUIVALENTS = np.array([5.0, 2.0, 3.0, 1.0, 1.0, 1.0, 3.0, 1.5, 3.0, 0.0])
GATE_EQUIVALENTS.setflags(write=False)
#: Logic-size bounds ``(a, b)``: ``a * 2 ** (b * k)`` gate equivalents per output bit of a
#: function of ``k`` input bits, for one neuron (its operand bits) and for the whole class
#: output (the primary input bits it depends on). Chosen on the calibration sample
#: (flows/bench/calibrate_cost.py); ABC gets nowhere near the theoretical bound.
NEURON_CAP = (0.1, 0.75)
DESIGN_CAP = (1.0, 0.75)


def cap(f: np.ndarray, n_out, n_in, param: tuple[float, float]) -> np.ndarray:
    """The factor (<= 1) that caps the hardware counted in ``f`` (features last) at the
    logic-size bound of ``n_out`` functions of ``n_in`` input bits,
    ``a * n_out * 2 ** (b * n_in)`` gate equivalents with ``(a, b) = param``; elementwise
    over the leading axes (a 0-d array for one feature vector). Past 40 input bits the
    bound never binds."""
    gates = f @ GATE_EQUIVALENTS
    limit = param[0] * n_out * 2.0 ** (param[1] * np.minimum(n_in, 64))
    factor = np.where(gates <= limit, 1.0, limit / np.where(gates > 0, gates, 1.0))
    return np.where(np.asarray(n_in) > 40, 1.0, factor)
