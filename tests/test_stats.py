"""approxmlp.stats: the intervals every figure carries and the bound every pick is made on."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from approxmlp.stats import _tango_z, accuracy_interval, finest_budget, paired_loss


def _pairs(n: int, worse: int, better: int) -> tuple[np.ndarray, np.ndarray]:
    """Reference and design correctness on ``n`` samples with the given discordant counts."""
    ref = np.ones(n, bool)
    des = np.ones(n, bool)
    des[:worse] = False
    ref[worse:worse + better] = False
    return ref, des


def test_accuracy_interval_is_wilsons():
    # Wilson's score interval for 81 of 100 at 95 % (Newcombe 1998, table I: 0.7222-0.8749)
    lo, hi = accuracy_interval(81, 100)
    assert lo == pytest.approx(0.7222, abs=1e-4) and hi == pytest.approx(0.8749, abs=1e-4)
    assert accuracy_interval(0, 0) == (0.0, 1.0)


def test_tango_reduces_to_mcnemar_at_no_difference():
    # at delta 0 Tango's statistic is McNemar's (worse - better) / sqrt(worse + better)
    assert _tango_z(7, 3, 200, 0.0) == pytest.approx(4 / np.sqrt(10))


@pytest.mark.parametrize("n,worse,better", [(44, 12, 2), (80, 0, 2), (500, 40, 37), (30, 5, 0)])
def test_paired_interval_inverts_tangos_score_test(n, worse, better):
    """Each end of the interval is where Tango's score statistic, with the restricted maximum
    likelihood of the discordant cells found numerically (not by the closed form the module
    uses), reaches -z and +z."""
    from scipy.optimize import minimize_scalar
    from scipy.stats import norm

    def z_numeric(delta):
        rest = n - worse - better
        lo, hi = max(0.0, -delta) + 1e-12, (1 - delta) / 2 - 1e-12

        def nll(p21):
            return -(worse * np.log(p21 + delta) + better * np.log(p21) + rest * np.log(1 - 2 * p21 - delta))

        p21 = minimize_scalar(nll, bounds=(lo, hi), method="bounded", options={"xatol": 1e-12}).x
        return (worse - better - n * delta) / np.sqrt(n * (2 * p21 + delta * (1 - delta)))

    got = paired_loss(*_pairs(n, worse, better))
    z = norm.ppf(0.975)
    assert got.loss == pytest.approx((worse - better) / n)
    assert z_numeric(got.high) == pytest.approx(-z, abs=1e-3)
    if got.low > -1:
        assert z_numeric(got.low) == pytest.approx(z, abs=1e-3)


def test_agreement_on_every_sample_still_bounds_the_loss_away_from_zero():
    """No discordant sample: the bound is z^2 / (n + z^2), the finest budget n samples certify
    (about 2.7 / n at 95 % one-sided): 80 validation samples cannot certify 1 %."""
    ref, des = _pairs(80, 0, 0)
    got = paired_loss(ref, des, 0.95, sided=1)
    assert got.loss == 0 and got.high == pytest.approx(finest_budget(80, 0.95)) == pytest.approx(2.706 / 82.706, rel=1e-3)
    assert finest_budget(80, 0.9) > 0.01 > finest_budget(400, 0.9)


def test_few_disagreements_give_a_tighter_interval_than_many_at_the_same_loss():
    """The point of pairing: a design faithful to the exact one is certified where a
    different classifier of the same accuracy is not."""
    faithful = paired_loss(*_pairs(500, 3, 0), 0.9, sided=1)
    different = paired_loss(*_pairs(500, 40, 37), 0.9, sided=1)
    assert faithful.loss == different.loss == pytest.approx(0.006)
    assert faithful.high < 0.015 < different.high


@settings(max_examples=60, deadline=None)
@given(st.integers(20, 400), st.data())
def test_interval_holds_the_estimate_and_tightens_with_confidence(n, data):
    worse = data.draw(st.integers(0, n))
    better = data.draw(st.integers(0, n - worse))
    ref, des = _pairs(n, worse, better)
    wide = paired_loss(ref, des, 0.95)
    narrow = paired_loss(ref, des, 0.8)
    assert -1 <= wide.low <= narrow.low <= wide.loss <= narrow.high <= wide.high <= 1
    one = paired_loss(ref, des, 0.9, sided=1)
    assert narrow.high == pytest.approx(one.high, abs=1e-9)  # one-sided 90 % = two-sided 80 %


def test_paired_samples_must_match():
    with pytest.raises(ValueError, match="differ in number"):
        paired_loss(np.ones(3, bool), np.ones(4, bool))
