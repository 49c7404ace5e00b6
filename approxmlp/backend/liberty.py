"""Printed cell libraries: the per-cell figures of a liberty file, and what a mapped
netlist's cell counts cost in area and power (:func:`printed_costs`).

Apart from :mod:`.synth` (which runs Yosys) because it is pure arithmetic on a parsed
file: it also re-prices a result against another library with the same cell names.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..errors import SynthConfigError, ToolError


@dataclass(frozen=True)
class CellFigures:
    """What the flow needs to know about one library cell, in fixed units."""

    area_um2: float
    leakage_nw: float
    input_cap_pf: float      # summed over the cell's input pins


@dataclass(frozen=True)
class Library:
    """Per-cell figures of a liberty file, converted to µm², nW and pF."""

    name: str
    voltage: float           # nominal supply (V), for the dynamic-power estimate
    cells: Mapping[str, CellFigures]


_POWER_UNITS = {"pw": 1e-3, "nw": 1.0, "uw": 1e3, "mw": 1e6, "w": 1e9}      # -> nW
_CAP_UNITS = {"ff": 1e-3, "pf": 1.0, "nf": 1e3}                              # -> pF


def _leakage_scale(lib) -> float:
    """nW per library leakage unit, from ``leakage_power_unit : "1nW"``."""
    raw = str(lib.get("leakage_power_unit") or "1nW").strip('"').strip().lower()
    m = re.fullmatch(r"([0-9.e+-]+)\s*([a-z]+)", raw)
    if not m or m.group(2) not in _POWER_UNITS:
        raise SynthConfigError(f"unsupported leakage_power_unit {raw!r} in liberty file")
    return float(m.group(1)) * _POWER_UNITS[m.group(2)]


def _cap_scale(lib) -> float:
    """pF per library capacitance unit, from ``capacitive_load_unit (1,pf)``."""
    raw = lib.get("capacitive_load_unit") or [1, "pf"]
    try:
        value, unit = raw
        return float(value) * _CAP_UNITS[str(unit).lower()]
    except (TypeError, ValueError, KeyError):
        raise SynthConfigError(f"unsupported capacitive_load_unit {raw!r} in liberty file") from None


def _cell_figures(cell, leak_scale: float, cap_scale: float) -> CellFigures:
    caps = (float(pin.get("capacitance") or 0.0) for pin in cell.get_groups("pin")
            if str(pin.get("direction")) == "input")
    return CellFigures(area_um2=float(cell.get("area") or 0.0),
                       leakage_nw=float(cell.get("cell_leakage_power") or 0.0) * leak_scale,
                       input_cap_pf=sum(caps) * cap_scale)


@functools.lru_cache(maxsize=16)
def _parse_library(path: Path, _mtime_ns: int, _size: int) -> Library:
    from liberty.parser import parse_liberty

    try:
        lib = parse_liberty(path.read_text(errors="replace"))
    except Exception as exc:  # noqa: BLE001 -- liberty-parser raises bare Exceptions on syntax errors
        raise SynthConfigError(f"cannot parse liberty file {path}: {exc}") from None
    leak, cap = _leakage_scale(lib), _cap_scale(lib)
    cells = {str(c.args[0]): _cell_figures(c, leak, cap) for c in lib.get_groups("cell")}
    return Library(name=str(lib.args[0]) if lib.args else path.stem,
                   voltage=float(lib.get("nom_voltage") or 1.0), cells=cells)


def read_library(path: Path) -> Library:
    """Parse a liberty file (cached; a file edited since is parsed again)."""
    path = Path(path).resolve()
    try:
        st = path.stat()
    except OSError as exc:
        raise SynthConfigError(f"liberty file {path} cannot be read: {exc.strerror}") from None
    return _parse_library(path, st.st_mtime_ns, st.st_size)


def printed_costs(cells: Mapping[str, int], lib: Library, *, clock_hz: float = 5.0, activity: float = 0.5,
                  log: Path | None = None) -> dict:
    """Area (µm², cm²) and power (mW) of mapped cell counts, from the library's per-cell
    figures; also re-prices a result against another library with the same cell names."""
    unknown = sorted(set(cells) - set(lib.cells))
    if unknown:
        raise ToolError(f"the mapped netlist contains cells the library {lib.name} does not describe: "
                        f"{', '.join(unknown)} (unmapped logic, e.g. a latch or an unsupported flip-flop)",
                        log=str(log) if log else None)
    area = sum(lib.cells[c].area_um2 * n for c, n in cells.items())
    leak_nw = sum(lib.cells[c].leakage_nw * n for c, n in cells.items())
    cap_pf = sum(lib.cells[c].input_cap_pf * n for c, n in cells.items())
    static_mw = leak_nw * 1e-6
    dynamic_mw = activity * (cap_pf * 1e-12) * lib.voltage ** 2 * clock_hz * 1e3
    return {"area_um2": area, "area_cm2": area / 1e8, "static_power_mw": static_mw,
            "dynamic_power_mw": dynamic_mw, "power_mw": static_mw + dynamic_mw}
