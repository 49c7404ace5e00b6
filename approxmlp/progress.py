"""Progress: what long steps tell the person waiting for them.

Library code reports through the *progress* object it is handed and never prints:

* calling it announces a step: ``progress("synthesizing 12 designs for printed")``;
* :func:`task` opens a bar that the step advances, with live fields
  (``bar.advance(1, best="0.31 cm²")``), closed by a ``with`` block.

The command line hands in a terminal implementation (:class:`approxmlp.cli.Steps`: rich
bars on a terminal, one line per finished step otherwise, nothing under ``--quiet``);
tests, the bench and library users hand in a plain function, or nothing, and then a task
does nothing at all. So whether a terminal is there is decided in one place.
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
