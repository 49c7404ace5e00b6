"""Genetic training with hardware approximations in the loop.

:mod:`.genome` holds a population of approximate variants of one IR as stacked arrays and
evaluates them bit-exactly on whole data sets; :mod:`.nsga2` composes the NSGA-II search
from small seeded operators. The search reads the IR and the cost model and returns new
IRs; it never touches files other than its checkpoint.
"""
