"""The flows a user runs: they sequence the stages and own the output folders.

:mod:`.compiler` (``approxmlp compile``: model -> verified, measured design),
:mod:`.explore` (``approxmlp explore``: search, then every front point made real), both
ending in :mod:`.realize` (IRs -> design folders, the one writer) on the folders of
:mod:`.folder`; :mod:`.verify` (``approxmlp verify``: re-simulate a design folder),
:mod:`.export` and :mod:`.demo`.
"""
