"""Shared subexpressions across a layer (core/sharing.py): the plan adds up to every
neuron's weights exactly, shares only what occurs twice and overlaps, and is deterministic;
the emitted RTL with sharing equals the golden model and is proven by the sums' algebra
(backend/sum_proof.py), which must also refuse an edited shared term."""

from __future__ import annotations

import random
import re

import numpy as np
import pytest

from approxmlp.backend.formal import prove_rtl_vs_reference
from approxmlp.backend.verilog import emit_verilog
from approxmlp.core.ir import MLP, Layer, NeuronApprox
from approxmlp.core.ranges import analyze
from approxmlp.core.ir import unsigned_width
from approxmlp.core.sharing import ALL_BITS, operand_bounds, share_layer


def _expand(plan, ref, scale, out, bounds):
    """A summand's wire value as coefficients over (input, mask) operands and products,
    the constant under key "1" (a negated part ~b is 2**w - 1 - b)."""
    if ref.kind == "s":
        t = plan.terms[ref.index]
        _expand(plan, t.a, scale, out, bounds)
        if t.negate:
            wb = plan.terms[t.b.index].width if t.b.kind == "s" else unsigned_width(bounds[(t.b.index, t.b.mask)])
            out["1"] = out.get("1", 0) + scale * (((1 << wb) - 1) << t.shift)
            _expand(plan, t.b, -(scale << t.shift), out, bounds)
        else:
            _expand(plan, t.b, scale << t.shift, out, bounds)
    else:
        key = (ref.kind, ref.index, ref.mask)
        out[key] = out.get(key, 0) + scale


def _random_layer_mlp(rng: random.Random, n_in: int, n_out: int, approx: bool) -> MLP:
    weights = tuple(tuple(rng.choice([0, rng.randint(-60, 60)]) for _ in range(n_in)) for _ in range(n_out))
    apx = tuple(NeuronApprox(input_masks=tuple(rng.choice([15, 15, 0b1110, 0b1100, 0]) for _ in range(n_in)),
                             product_trunc=rng.choice([0, 0, 1, 2])) if approx else NeuronApprox()
                for _ in range(n_out))
    return MLP(n_inputs=n_in, input_bits=4, name="r", layers=(
        Layer(weights=weights, biases=tuple(rng.randint(-50, 50) for _ in range(n_out)), shift=2, act_bits=8,
              approx=apx),
        Layer(weights=tuple(tuple(rng.randint(-20, 20) for _ in range(n_out)) for _ in range(3)),
              biases=(0, 1, -1), activation="linear")))


@pytest.mark.parametrize("seed", range(12))
def test_every_neuron_adds_up_to_its_weights(seed):
    rng = random.Random(seed)
    mlp = _random_layer_mlp(rng, rng.randint(3, 12), rng.randint(2, 8), approx=seed % 2 == 1)
    for neurons in analyze(mlp):
        plan = share_layer(neurons)
        bounds = operand_bounds(neurons)
        for j, r in enumerate(neurons):
            got: dict = {}
            for s in plan.summands[j]:
                _expand(plan, s.ref, s.sign << s.shift, got, bounds)
            # what the wires add up to, plus the offsets the neuron adds to its constant
            assert got.pop("1", 0) + plan.offset(j) == 0
            want: dict = {}
            for p in r.pos + r.neg:
                key = ("p", p.index, ALL_BITS) if p.trunc else ("x", p.index, p.mask)
                want[key] = want.get(key, 0) + (p.weight if not p.trunc else (1 if p.weight > 0 else -1))
            assert {k: v for k, v in got.items() if v} == want
        for t in plan.terms:  # a term is read by some neuron, and its parts overlap in bit columns
            assert t.users
        assert share_layer(neurons) == plan  # deterministic


def test_a_pair_in_two_neurons_is_built_once():
    # 5*x0 + 10*x1 and 5*x0 + 10*x1 - ... : x0 + (x1 << 1) at shift 0 and 2
    mlp = MLP(n_inputs=3, input_bits=4, name="p", layers=(
        Layer(weights=((5, 10, 1), (5, 10, -3)), biases=(0, 0), shift=0, act_bits=8),
        Layer(weights=((1, -1), (-1, 1)), biases=(0, 0), activation="linear")))
    plan = share_layer(analyze(mlp)[0])
    assert plan.terms and plan.terms[0].users == (0, 1)
    assert share_layer(analyze(mlp)[0], share=False).terms == ()
    text = emit_verilog(mlp)
    assert re.search(r"wire \[\d+:0\] s0_0 = .*// = .*; read by n0, n1", text), text


def test_no_pair_without_overlapping_bits():
    # x0 + (x1 << 4) of two 4-bit operands is a concatenation: nothing to share
    mlp = MLP(n_inputs=2, input_bits=4, name="c", layers=(
        Layer(weights=((1, 16), (1, 16)), biases=(0, 0), shift=0, act_bits=8),
        Layer(weights=((1, -1), (-1, 1)), biases=(0, 0), activation="linear")))
    assert share_layer(analyze(mlp)[0]).terms == ()


@pytest.mark.sim
@pytest.mark.synth
@pytest.mark.parametrize("seed", [3, 8])
def test_a_shared_layer_is_proven_by_the_sums_algebra_and_an_edit_is_caught(tmp_path, seed):
    from approxmlp.backend.simulate import SimDesign, simulate
    from approxmlp.backend.verilog.argmax import class_width
    from approxmlp.core.golden import evaluate

    rng = random.Random(seed)
    mlp = _random_layer_mlp(rng, 8, 5, approx=seed % 2 == 1)
    text = emit_verilog(mlp)
    assert "s0_0 =" in text
    rtl = tmp_path / "top.v"
    rtl.write_text(text)
    proof = prove_rtl_vs_reference(mlp, rtl, tmp_path / "p", timeout=300)
    assert proof.proven, proof.text
    sums = (tmp_path / "p" / "sums.txt").read_text().splitlines()
    assert sums and all(line.endswith(": proven") for line in sums), sums
    x = np.random.default_rng(seed).integers(0, 16, size=(300, 8))
    design = SimDesign(module="top", verilog=text, inputs=x, expected=evaluate(mlp, x).classes, input_bits=4,
                       out_width=class_width(mlp.n_classes), registered=False)
    assert all(r.ok for r in simulate([design], tmp_path / "sim"))
    # the first shared term reads its second part one bit further up: a different function
    line = next(l for l in text.splitlines() if "s0_0 =" in l)
    edited = re.sub(r"<< (\d+)\)", lambda m: f"<< {int(m.group(1)) + 1})", line, count=1)
    if edited == line:
        edited = line.replace(" + ", " + 2 * ", 1)
    (tmp_path / "bad.v").write_text(text.replace(line, edited))
    bad = prove_rtl_vs_reference(mlp, tmp_path / "bad.v", tmp_path / "q", timeout=300)
    assert bad.failed, bad.text
    # the neurons that read the term are not proven by algebra (their sum differs, or the
    # term may now overflow its wire), and the miter finds the inputs
    assert any(not line.endswith(": proven") for line in (tmp_path / "q" / "sums.txt").read_text().splitlines())
