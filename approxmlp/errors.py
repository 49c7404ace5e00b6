"""The one exception family of approxmlp.

Library code raises these; only :mod:`approxmlp.cli` turns them into an exit status
(2) and a one-line message. Messages name *where* (an IR path such as
``layer[1].neuron[3].trunc_bits``, a file, a tool), *what was expected* and *what was
found*, and where possible *the fix*.
"""

from __future__ import annotations


class ApproxMLPError(Exception):
    """Base class: a problem the user can fix (bad input, missing tool, ...)."""


class IRError(ApproxMLPError, ValueError):
    """The integer MLP is inconsistent (shapes, widths, values)."""


class ModelError(ApproxMLPError):
    """A model file cannot be read or is not a supported MLP."""


class DataError(ApproxMLPError):
    """A data set cannot be read or does not fit the model."""


class ToolError(ApproxMLPError):
    """An external tool (Verilator, Yosys) is missing or failed.

    Carries the command line, the working directory, the return code and the log path so
    that the one-line message can point the user at the full story.
    """

    def __init__(self, message: str, *, argv: list[str] | None = None, cwd: str | None = None,
                 returncode: int | None = None, log: str | None = None):
        self.argv = argv
        self.cwd = cwd
        self.returncode = returncode
        self.log = log
        parts = [message]
        if returncode is not None:
            parts.append(f"exit status {returncode}")
        if log:
            parts.append(f"see {log}")
        super().__init__("; ".join(parts))


class VerificationError(ApproxMLPError):
    """The RTL disagrees with the golden model."""
