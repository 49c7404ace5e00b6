"""Search checkpoints: plain ``.npz`` (no pickle), written atomically after every
generation, so a killed run resumes where it stopped and reaches the same front as an
uninterrupted one."""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ..errors import ApproxMLPError
from .config import SearchConfig
from .front import Scored, pareto_front
from .genome import Population

CHECKPOINT_FORMAT = "approxmlp-search/1"


_GENES = ("weights", "masks", "biases", "product_trunc", "act_trunc")


def _arrays(s: Scored, prefix: str = "") -> dict[str, np.ndarray]:
    arrays = {"acc": s.acc, "area": s.area, "power": s.power, "feasible": s.feasible, "cmp_drop": s.pop.cmp_drop}
    for li in range(len(s.pop.weights)):
        for name in _GENES:
            arrays[f"{name}_{li}"] = getattr(s.pop, name)[li]
    return {prefix + k: v for k, v in arrays.items()}


def _scored(arrays: dict[str, np.ndarray], base, prefix: str = "") -> Scored:
    a = {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
    n = len(base.layers)
    pop = Population(base=base, cmp_drop=a["cmp_drop"],
                     **{name: [a[f"{name}_{li}"] for li in range(n)] for name in _GENES})
    return Scored(pop=pop, acc=a["acc"], area=a["area"], power=a["power"], feasible=a["feasible"])


def save_checkpoint(path: Path, gen: int, s: Scored, rng: np.random.Generator, cfg: SearchConfig,
                    history: list[dict], seed_acc: float, evaluations: int, archive: Scored | None = None,
                    descent: Scored | None = None) -> None:
    """Atomic: written beside, then renamed, so an interrupt never leaves half a file.
    Holds the population, the archive of every non-dominated design seen so far and the
    greedy descent's states."""
    arrays = _arrays(s)
    if archive is not None:
        arrays.update(_arrays(archive, "archive."))
    if descent is not None:
        arrays.update(_arrays(descent, "descent."))
    meta = {"format": CHECKPOINT_FORMAT, "generation": gen, "config": asdict(cfg), "history": history,
            "rng": rng.bit_generator.state, "base_digest": s.pop.base.digest, "seed_accuracy": seed_acc,
            "evaluations": evaluations}
    arrays["meta"] = np.array(json.dumps(meta))
    tmp = path.with_name(path.name + ".tmp.npz")
    try:
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _search_settings(config: dict) -> dict:
    """The settings a checkpoint must agree on to be resumed, as stored (JSON: tuples come
    back as lists): all but the faithful descent's, which runs after the search from the
    exact design and leaves the search's state alone."""
    return {k: v for k, v in config.items() if not k.startswith("faithful_")}


def load_checkpoint(path: Path, base, cfg: SearchConfig):
    try:
        with np.load(path, allow_pickle=False) as f:
            meta = json.loads(str(f["meta"]))
            arrays = {k: f[k] for k in f.files if k != "meta"}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:  # missing, truncated, damaged
        raise ApproxMLPError(f"cannot read checkpoint {path} ({exc}); delete it or run without --resume") from None
    if meta.get("format") != CHECKPOINT_FORMAT or meta.get("base_digest") != base.digest:
        raise ApproxMLPError(f"checkpoint {path} belongs to another model or version; delete it or run without --resume")
    if _search_settings(meta["config"]) != _search_settings(json.loads(json.dumps(asdict(cfg)))):
        raise ApproxMLPError(f"checkpoint {path} was written with other search settings; "
                             "resume with the same options or delete it")
    s = _scored({k: v for k, v in arrays.items() if "." not in k}, base)
    archive = _scored(arrays, base, "archive.") if "archive.acc" in arrays else pareto_front(s)
    descent = _scored(arrays, base, "descent.") if "descent.acc" in arrays else None
    rng = np.random.default_rng()
    rng.bit_generator.state = meta["rng"]
    return (meta["generation"], s, rng, meta["history"], meta["seed_accuracy"], meta["evaluations"], archive,
            descent)


def read_archive(path: Path, base_of) -> Scored | None:
    """The archive of checkpoint ``path`` (every non-dominated design its search kept), for
    tools that study what a search visited (``flows/bench/calibrate_cost.py --sharing``);
    ``base_of(digest)`` gives the seed design the checkpoint's genes apply to, or None.
    None when that design is unknown or the checkpoint holds no archive."""
    with np.load(path, allow_pickle=False) as f:
        meta = json.loads(str(f["meta"]))
        base = base_of(meta.get("base_digest"))
        if base is None or "archive.acc" not in f.files:
            return None
        return _scored({k: f[k] for k in f.files if k.startswith("archive.")}, base, "archive.")
