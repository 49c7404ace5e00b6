"""The search's settings: population, generations, the value set of the multipliers, the
accuracy and power constraints, the mix and strength of the mutations."""

from __future__ import annotations

from dataclasses import dataclass

#: Generations of a search when none are asked for, and where the longer genome gets more.
GENERATIONS = 300
GENERATIONS_LARGE = 600
LARGE_CONNECTIONS = 100


def default_generations(connections: int) -> int:
    """Generations of a search over a network of ``connections`` weights when the user names
    none: 300, and 600 above 100 connections. The genome (a mask, a multiplier value and a
    truncation per connection) grows with the network, and a fixed number of generations
    leaves a long one less explored: on Pendigits 16-5-10 (130 connections) 600 generations
    made the most accurate verified design under 6.5 cm² 91.4 % on test (300: 90.5 %) for
    twice the search time, while on the small literature sets (21-72 connections) 450 changed
    no median pick (BENCHMARKS.md, *Fronts explored again*). Capped: a 1,000-connection
    network costs minutes per generation, its user sets ``--generations``."""
    return GENERATIONS_LARGE if connections > LARGE_CONNECTIONS else GENERATIONS


@dataclass(frozen=True)
class SearchConfig:
    population: int = 96
    generations: int = GENERATIONS
    multipliers: str = "csd2"       # value set of the constant multipliers
    weight_bits: int = 8
    max_loss: float = 0.05          # on training accuracy, against the seed model
    max_power_mw: float | None = None
    seed: int = 0
    p_weight: float = 0.04          # per-gene mutation probabilities
    p_mask: float = 0.04
    p_trunc: float = 0.05
    p_prune: float = 0.02           # remove a connection outright (mask 0), or restore one
    p_crossover: float = 0.7
    p_bias: float = 0.05            # per neuron: a bias step (lets a neuron re-centre after a cut)
    #: Mutation strength per child, in gene changes: drawn log-uniformly from 1..mutations
    #: and turned into per-gene probabilities (the p_* above set the mix). Fixed per-gene
    #: probabilities scale with the network: Pendigits' 130 connections took ~15 changes per
    #: child, nearly every child fell outside the loss budget and the search stalled at the
    #: seed (2.6x); a small net needs the strong moves to reach the tiny designs. Drawing the
    #: strength per child serves both (Pendigits 6.3x, estimated, at 5 % loss).
    mutations: float = 16.0
    # -- memetic step (approxmlp/search/memetic.py): every memetic_every generations (0: never),
    # memetic_children cut-and-retrained children of each of memetic_parents archive
    # designs join the offspring
    memetic_every: int = 4
    memetic_parents: int = 8
    memetic_children: int = 2
    memetic_cuts: float = 8.0       # cuts per child: log-uniform in 1..memetic_cuts
    memetic_candidates: int = 128   # single cuts evaluated per child (a sample on a big network)
    memetic_steps: int = 60         # retraining steps (Adam, mini-batches of 1024, cosine decay)
    memetic_lr: float = 0.015
    # a greedy descent by cuts from the seed design at the start (0 steps: none), its states
    # join the first population (approxmlp/search/memetic.py greedy_descent)
    greedy_steps: int = 100
    greedy_per_step: int = 4
    greedy_retrain_every: int = 1
    # a faithful descent from the *exact* design (0 steps: none), without retraining: cuts
    # that keep its own decisions on the fit part, down to faithful_floor agreement; its
    # states are candidates for the tight budgets (approxmlp/search/memetic.py faithful_descent).
    # One descent per step size (largest share of the area a step may save): the coarse one
    # reaches further for the same steps, the fine one keeps more decisions per area saved
    # near the exact end. Measured on the bench models, smallest design certified within 1 %
    # (estimated area, coarse / fine): Pendigits 1.73x / 2.04x, Cardio 2.51x / 2.93x,
    # WhiteWine 2.89x / 2.82x, RedWine 2.54x / 1.91x; both together take the better of the two.
    faithful_steps: int = 300
    faithful_floor: float = 0.98
    faithful_step_areas: tuple[float, ...] = (0.03, 0.0075)
