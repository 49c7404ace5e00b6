"""The flows a user runs: they sequence the stages and own the output folders.

:mod:`.compiler` (``approxmlp compile``: model -> verified, measured design),
:mod:`.explore` (``approxmlp explore``: search, then every front point made real),
:mod:`.verify` (``approxmlp verify``: re-simulate a design folder) and :mod:`.demo`.
"""
