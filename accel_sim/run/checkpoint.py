"""checkpoint.npz: everything a killed run needs to go on to the result of an uninterrupted
one, for every family.

    position        where the protocol stands (samples, epochs or tasks: the family's unit)
    net_<key>       the family's network state (NetworkFamily.state)
    phase_<name>    per phase opened so far (JSON): its counts, the trace parts written, the
                    chip replay's counts and cycles, and its wall time
    extra           the protocol's own progress (JSON: accuracies so far, a history, ...)

Written atomically (a kill while writing leaves the previous checkpoint).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np

from ..errors import RunError
from .rundir import CHECKPOINT, finished, read_npz, save_npz

__all__ = ["Checkpoint", "save_checkpoint", "load_checkpoint"]


@dataclass
class Checkpoint:
    position: int
    net: dict[str, np.ndarray]
    phases: dict[str, dict] = field(default_factory=dict)
    extra: dict = field(default_factory=dict)


def save_checkpoint(out: Path, ckpt: Checkpoint) -> None:
    arrays = {f"net_{k}": v for k, v in ckpt.net.items()}
    arrays["position"] = np.int64(ckpt.position)
    arrays["extra"] = np.array(json.dumps(ckpt.extra))
    arrays.update({f"phase_{name}": np.array(json.dumps(state))
                   for name, state in ckpt.phases.items()})
    save_npz(out / CHECKPOINT, arrays)


def load_checkpoint(out: Path, net_shapes: Mapping[str, tuple]) -> Checkpoint:
    """The checkpoint of a killed run, checked against this run's network state."""
    path = out / CHECKPOINT
    if not path.is_file():
        raise RunError(f"{out} has no {CHECKPOINT} to resume from" + (
            ": the run finished" if finished(out) else
            " (checkpoints are written every run.checkpoint_every training samples)"))
    required = {"position": (), "extra": ()}
    required.update({f"net_{k}": v for k, v in net_shapes.items()})
    z = read_npz(path, "checkpoint", required)
    try:
        return Checkpoint(
            int(z["position"]), {k[4:]: v for k, v in z.items() if k.startswith("net_")},
            {k[6:]: json.loads(str(v)) for k, v in z.items() if k.startswith("phase_")},
            json.loads(str(z["extra"])))
    except ValueError as exc:
        raise RunError(f"{path} does not match this run: {exc}") from None
