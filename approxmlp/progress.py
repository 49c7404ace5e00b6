"""Progress: what long steps tell the person waiting for them.

Library code reports through the *progress* object it is handed and never prints:

* calling it announces a step: ``progress("synthesizing 12 designs for printed")``;
* :func:`task` opens a bar that the step advances, with live fields
  (``bar.advance(1, best="0.31 cm²")``), closed by a ``with`` block.

The command line hands in a terminal implementation (:class:`approxmlp.cli.Steps`: rich
bars on a terminal, one line per finished step otherwise, nothing under ``--quiet``);
tests, the bench and library users hand in a plain function, or nothing, and then a task
does nothing at all. So whether a terminal is there is decided in one place.

Two finer-grained callbacks are declared here too, so that every kind of progress has one
home: :data:`EpochProgress` (training, per epoch) and :data:`GenerationProgress` (the
search, per generation).
"""

from __future__ import annotations

from typing import Any, Callable

Progress = Callable[[str], None]


def quiet(_message: str) -> None:
    """The progress of nobody watching."""


class Task:
    """A bar that shows nothing: what :func:`task` gives a progress without bars."""

    def advance(self, n: int = 1, **fields: Any) -> None:
        """``n`` more units done; ``fields`` update the bar's live text."""

    def close(self) -> None:
        """The bar is finished (also on leaving a ``with`` block)."""

    def __enter__(self) -> "Task":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def task(progress: Progress | None, description: str, total: int, **fields: Any) -> Task:
    """A bar of ``total`` units from ``progress`` if it draws bars (it has a ``task``
    method), else a :class:`Task` that does nothing."""
    make = getattr(progress, "task", None)
    return make(description, total, **fields) if make is not None else Task()


#: What training reports per epoch: ``progress(phase, epoch, total_epochs, metrics)``;
#: metrics: ``val_acc``, ``val_loss``, ``best_val_acc``. Phases: ``"float xK"``,
#: ``"qat r/R"`` (pow2 also ``"qat r/R (k/K)"``). A training epoch is too fine a step to
#: announce as a message, so it gets a callback of its own; the CLI draws it as a bar.
EpochProgress = Callable[[str, int, int, dict], None]


def quiet_epochs(phase: str, epoch: int, total: int, metrics: dict) -> None:
    """The epoch progress of nobody watching."""


#: What the search reports per generation: ``progress(generation, log)``, ``log`` the
#: generation's entry of the search history (``min_area``: the smallest estimated area
#: within the budget so far, or None); `explore` turns it into a bar step.
GenerationProgress = Callable[[int, dict], None]
