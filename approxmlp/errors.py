"""The one exception family of approxmlp.

Library code raises these; only :mod:`approxmlp.cli` turns them into an exit status
(2) and a one-line message. Messages name *where* (an IR path such as
``layer[1].neuron[3].trunc_bits``, a file, a tool), *what was expected* and *what was
found*, and where possible *the fix*.
"""

from __future__ import annotations

import numbers
import os
from typing import Any


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
        self.message = message
        # Logs often live in a scratch folder that is gone by the time the message is
        # shown: keep the log's last lines, quoted when the file itself is no longer there.
        self.log_tail = _tail(log) if log else ""
        super().__init__(message)

    def __str__(self) -> str:
        parts = [self.message]
        if self.returncode is not None:
            parts.append(f"exit status {self.returncode}")
        if self.log and os.path.isfile(self.log):
            parts.append(f"see {self.log}")
        elif self.log_tail:
            parts.append(f"its log (since deleted) ended: {self.log_tail}")
        return "; ".join(parts)


def _tail(log: str, lines: int = 3, chars: int = 300) -> str:
    """The last non-empty lines of a log file, joined with `` | ``, at most ``chars`` long."""
    try:
        with open(log, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 4096))
            text = f.read().decode(errors="replace")
    except OSError:
        return ""
    tail = " | ".join([ln.strip() for ln in text.splitlines() if ln.strip()][-lines:])
    return tail if len(tail) <= chars else "..." + tail[-chars:]


class VerificationError(ApproxMLPError):
    """The RTL disagrees with the golden model."""


class TrainError(ApproxMLPError):
    """Bad training options, or training could not produce a model."""


class SynthConfigError(ApproxMLPError, ValueError):
    """A synthesis request that cannot be run: unknown target, missing design file,
    a liberty override for an FPGA target, a malformed top name."""


# Option checks shared by every stage: here, with the errors they raise, so that no stage
# imports another only to validate a number.

def check_bits(option: str, value: Any, lo: int, hi: int, error: type[ApproxMLPError] = DataError) -> int:
    """Validate a bit-width option; the message names the command-line option, since that
    is where the user typed the value."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not lo <= value <= hi:
        raise error(f"{option} must be an integer in {lo}..{hi}, not {value!r}")
    return int(value)


#: Seeds numpy and scikit-learn accept (a 32-bit unsigned integer).
MAX_SEED = 2**32 - 1


def check_seed(seed: Any) -> int:
    """Validate ``--seed`` up front: scikit-learn's splitter and numpy take only 32-bit
    unsigned seeds, and would otherwise fail deep inside with a traceback."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed <= MAX_SEED:
        raise DataError(f"--seed must be an integer in 0..{MAX_SEED}, not {seed!r}; pick another seed")
    return int(seed)
