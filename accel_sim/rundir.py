"""The run directory: every file a run reads and writes, written atomically, read with
one-line errors (a corrupt, truncated, foreign or mismatched file is an exit-2 error
naming the file and what is wrong, never a traceback).

    config.resolved.yaml  run.json  stats.json  summary.txt  energy.csv
    energy_breakdown.png  continual.png  model.npz  checkpoint.npz  trace_<phase>/
"""
from __future__ import annotations

import os
import platform
import sys
import zipfile
from datetime import datetime
from pathlib import Path
from typing import Mapping

import numpy as np

from snn_frontend.files import atomic_write

from .config import Config, dump_config
from .errors import RunError
from .machine import cpu_model
from .report import format_summary, format_tasks, read_json, write_json, write_text

__all__ = ["CHECKPOINT", "MODEL", "default_run_dir", "prepare_dir", "read_npz", "save_npz",
           "load_checkpoint", "run_info", "write_outputs", "read_json", "write_json",
           "finished"]

CHECKPOINT = "checkpoint.npz"
MODEL = "model.npz"


def default_run_dir(cfg: Config, root: str | os.PathLike = "runs") -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path(root) / f"{cfg.name}-{stamp}"


def prepare_dir(out: Path, cfg: Config) -> None:
    """Create the run directory and write the config as run (rerunnable)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunError(f"cannot create run directory {out}: {exc.strerror or exc}") from None
    write_text(out / "config.resolved.yaml", dump_config(cfg))


def finished(out: Path) -> bool:
    return (out / "stats.json").is_file()


# ----------------------------------------------------------------------------- npz
def read_npz(path: Path, what: str, required: Mapping[str, tuple | None] = {}) -> dict:
    """All arrays of an .npz; `required` names arrays that must be there, with their shape
    (None: any). One clear RunError for a missing, corrupt or mismatched file."""
    try:
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise RunError(f"{what} {path} does not exist") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise RunError(f"{what} {path} is not a readable .npz ({exc})") from None
    for key, shape in required.items():
        if key not in arrays:
            raise RunError(f"{what} {path} has no '{key}' array: not a {what} of this project")
        if shape is not None and arrays[key].shape != tuple(shape):
            raise RunError(f"{what} {path}: '{key}' is {arrays[key].shape}, this run needs "
                           f"{tuple(shape)} (another network?)")
    return arrays


def save_npz(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    with atomic_write(path) as fh:
        np.savez(fh, **arrays)


def load_checkpoint(out: Path, shapes: Mapping[str, tuple]) -> dict:
    """The checkpoint of a killed run, checked against this run's arrays (`shapes`)."""
    path = out / CHECKPOINT
    if not path.is_file():
        raise RunError(f"{out} has no {CHECKPOINT} to resume from" + (
            ": the run finished" if finished(out) else
            " (checkpoints are written every run.checkpoint_every training samples)"))
    return read_npz(path, "checkpoint", {"position": (), "elapsed_s": (), **shapes})


# ---------------------------------------------------------------------------- files
def run_info(cfg: Config, *, backend: str, samples: dict, timing: dict, started: str,
             ended: str | None, resumed: bool) -> dict:
    """run.json: what ran where: versions, machine, config names, timing, samples."""
    import numpy
    import pydantic

    from . import __version__

    return {
        "name": cfg.name, "seed": cfg.seed, "backend": backend,
        "model": cfg.network.model,
        "chip": cfg.hardware.name if cfg.hardware is not None else None,
        "energy_table": cfg.energy.name if cfg.energy is not None else None,
        "threads": cfg.run.threads or os.cpu_count(),
        "versions": {"neuro_accel_sim": __version__, "python": platform.python_version(),
                     "numpy": numpy.__version__, "pydantic": pydantic.__version__},
        "platform": platform.platform(), "cpu_model": cpu_model(), "command": sys.argv,
        "start_time": started, "end_time": ended, "resumed": resumed,
        "timing_s": timing, "samples": samples,
    }


def write_outputs(out: Path, stats: dict, run: dict) -> None:
    """summary.txt, and with a chip energy.csv and energy_breakdown.png, from stats."""
    text = format_summary(stats, run)
    tasks = stats.get("accuracy", {}).get("tasks")
    if tasks:
        from .plot import plot_continual

        text += format_tasks(tasks)
        plot_continual(tasks, out / "continual.png")
    hw = stats.get("hardware")
    if hw and hw.get("phases"):
        from .plot import plot_energy_breakdown
        from .tables import format_hardware_summary, write_energy_csv

        text += format_hardware_summary(hw)
        write_energy_csv(hw, out / "energy.csv")
        plot_energy_breakdown(hw, out / "energy_breakdown.png", model=run.get("model"))
    write_text(out / "summary.txt", text)

