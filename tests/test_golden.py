"""The golden model against a per-sample reference written straight from the semantics."""

from __future__ import annotations

from hypothesis import given, settings

from approxmlp.core.golden import evaluate, reference_class
from tests.strategies import mlps_with_inputs


reference = reference_class


def test_tiny_by_hand(tiny):
    # x = (5, 2, 7): n0 = qrelu4((15 - 4 + 0 + 4) >> 1) = 7; n1 = qrelu4((14 - 3) >> 1) = 5
    # out0 = 2*7 - 5 = 9, out1 = -7 + 15 + 1 = 9 -> tie -> class 0
    ev = evaluate(tiny, [[5, 2, 7]], trace=True)
    assert ev.outputs[0].tolist() == [[7, 5]]
    assert ev.outputs[1].tolist() == [[9, 9]]
    assert ev.classes.tolist() == [0]


def test_tiny_approx_by_hand(tiny_approx):
    ev = evaluate(tiny_approx, [[7, 2, 7]], trace=True)
    # n0: (3*(7&0b1010) - 2*2 + 0 + 4) >> 1 = 3   (the third connection is removed)
    # n1: products 7->6, 2->2, 7->6 (1 LSB dropped): (14 - 3) >> 1 = 5 -> act_trunc 1 -> 4
    assert ev.outputs[0].tolist() == [[3, 4]]
    # out0 = 2*3 - 4 = 2 -> cmp_drop 1 -> 2 ; out1 = -3 + 12 + 1 = 10 -> class 1
    assert ev.outputs[1].tolist() == [[2, 10]]
    assert ev.classes.tolist() == [1] == [reference(tiny_approx, [7, 2, 7])]


@settings(max_examples=150, deadline=None)
@given(mlps_with_inputs())
def test_vectorized_equals_reference(case):
    mlp, X = case
    got = evaluate(mlp, X).classes.tolist()
    assert got == [reference(mlp, list(map(int, x))) for x in X]
