"""`approxmlp inspect`: what is in a generated RTL file, read back with pyverilog.

The RTL is parsed (not grepped) so the port list is the one a simulator sees; neuron
blocks are then grouped by the IR-path names the emitter gives every wire
(``l<layer>_n<neuron>_...``) and described with the emitter's own comments.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from ..errors import ApproxMLPError
from .verilog.module import GENERATED_BY

_NEURON = re.compile(r"^l(\d+)_n(\d+)(?:_|$)")


def _parse(text: str):
    from pyverilog.vparser.parser import VerilogParser

    with tempfile.TemporaryDirectory() as tables:  # ply writes its parser tables somewhere
        parser = VerilogParser(outputdir=tables, debug=False)
        try:
            return parser.parse(text, debug=0)
        except Exception as exc:  # pyverilog raises ParseError / bare Exceptions
            raise ApproxMLPError(f"cannot parse the RTL: {exc}") from None


def _width(node) -> int:
    w = getattr(node, "width", None)
    if w is None:
        return 1
    return int(w.msb.value) - int(w.lsb.value) + 1


def area_shares(folder: Path) -> dict[str, float]:
    """Each neuron's share of the estimated area, from the folder's ``ir.json`` and the
    cost model of its target (rough gate equivalents when no model is calibrated)."""
    import json

    import numpy as np

    from ..core.irfile import load_ir
    from ..cost.design import neuron_features
    from ..cost.features import GATE_EQUIVALENTS
    from ..cost.model import load_model

    ir = load_ir(folder)
    target = "printed"
    if (folder / "report.json").is_file():
        target = json.loads((folder / "report.json").read_text()).get("target", target)
    feats = neuron_features(ir)
    model = load_model(target)
    coeff = np.array(model.area[1:]) if model else GATE_EQUIVALENTS
    cost = {f"l{li}_n{j}": float(f @ coeff) for (li, j), f in feats.items()}
    total = sum(cost.values()) or 1.0
    return {k: v / total for k, v in cost.items()}


def inspect_rtl(path: Path) -> dict:
    path = Path(path)
    shares: dict[str, float] = {}
    if path.is_dir():
        if (path / "ir.json").is_file():
            shares = area_shares(path)
        path = path / "rtl" / "top.v"
    if not path.is_file():
        raise ApproxMLPError(f"{path} not found; pass a .v file or a folder written by `approxmlp compile`")
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        raise ApproxMLPError(f"{path} is a binary file, not Verilog; pass a top.v written by approxmlp "
                             "or its design folder") from None
    if not text.startswith(GENERATED_BY):
        raise ApproxMLPError(f"{path} is not approxmlp-generated RTL (its first line is not "
                             f"'{GENERATED_BY} ...'); inspect reads only what `approxmlp compile` or "
                             "`explore` wrote: pass such a top.v or its design folder")
    ast = _parse(text)
    from pyverilog.vparser import ast as vast

    mods = [d for d in ast.description.definitions if isinstance(d, vast.ModuleDef)]
    if not mods:
        raise ApproxMLPError(f"{path} holds no module")
    mod = mods[0]
    ports = []
    for p in mod.portlist.ports:
        first = p.first
        ports.append((type(first).__name__.lower(), first.name, _width(first)))
    wires: dict[str, int] = {}
    for item in mod.items:
        if isinstance(item, vast.Decl):
            for d in item.list:
                if isinstance(d, vast.Wire):
                    m = _NEURON.match(d.name)
                    if m:
                        wires[f"l{m.group(1)}_n{m.group(2)}"] = wires.get(f"l{m.group(1)}_n{m.group(2)}", 0) + 1
    neurons = []
    for m in re.finditer(r"// -- layer\[(\d+)\]\.neuron\[(\d+)\]: (.*)\n((?:[ \t]*//    .*\n)*)", text):
        li, j, formula, approx = m[1], m[2], m[3], ""
        for line in m[4].splitlines():  # a long formula or record continues on lines of its own
            part = line.strip()[2:].strip()
            if part.startswith("approximations:"):
                approx = part.removeprefix("approximations:")
            elif part.startswith("constant"):
                continue
            elif approx:
                approx += " " + part
            else:
                formula += " " + part
        name = f"l{li}_n{j}"
        neurons.append({"name": name, "formula": formula.strip(), "approx": approx.strip() or "exact",
                        "wires": wires.get(name, 0), "area_share": shares.get(name)})
    return {"module": mod.name, "ports": ports, "neurons": neurons, "path": str(path)}
