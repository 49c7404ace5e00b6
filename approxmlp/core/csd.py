"""Canonical signed digits: how many adders a constant multiplier needs.

Shared by the value sets of the search (a ``csd2`` weight has at most two digits), the
cost model (one adder row per digit) and the Verilog emitter (one shifted term per digit).
"""

from __future__ import annotations


def csd(n: int) -> list[tuple[int, int]]:
    """Canonical signed digits of ``n >= 0`` as ``[(shift, +1|-1), ...]``, high first.

    CSD (non-adjacent form) has the fewest nonzero digits of any signed-digit form, so
    a constant multiplier needs the fewest adders: 7 = 8 - 1, 29 = 32 - 4 + 1.
    """
    digits = []
    k = 0
    while n:
        if n & 1:
            d = 2 - (n & 3)  # +1 if n % 4 == 1, -1 if n % 4 == 3
            digits.append((k, d))
            n -= d
        n >>= 1
        k += 1
    return digits[::-1]
