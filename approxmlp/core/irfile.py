"""Reading an IR back from a design folder's ``ir.json``.

Here, below every stage, because the back ends read design folders too (`inspect` scores
a folder's neurons with the cost model) and must not import the flows that write them.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import IRError, ModelError
from .ir import MLP


def load_ir(folder: Path) -> MLP:
    """The IR of a design folder, with a message naming the file and the fix when it is
    missing or damaged."""
    path = folder / "ir.json"
    if not path.is_file():
        raise ModelError(f"{path} not found; is {folder} a folder written by `approxmlp compile`?")
    try:
        return MLP.from_json(json.loads(path.read_text()))
    except json.JSONDecodeError as exc:
        raise ModelError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno}); recompile the design") from None
    except UnicodeDecodeError:
        raise ModelError(f"{path} is not a text file; recompile the design") from None
    except IRError as exc:
        raise ModelError(f"{path}: {exc}; recompile the design") from None


