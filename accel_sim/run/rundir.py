"""The run directory: every file a run reads and writes, written atomically, read with
one-line errors (a corrupt, truncated, foreign or mismatched file is an exit-2 error
naming the file and what is wrong, never a traceback), and locked while a process
writes it.

    config.resolved.yaml  run.json  stats.json  summary.txt  energy.csv
    energy_breakdown.png  continual.png  model.npz  checkpoint.npz  trace_<phase>/  .lock
"""
from __future__ import annotations

import errno
import fcntl
import os
import platform
import shutil
import sys
import zipfile
from datetime import datetime
from pathlib import Path
from typing import Mapping

import numpy as np

from snn_frontend.files import atomic_write

from ..config import Config, load_resolved
from ..errors import RunError
from ..machine import cpu_model, peak_rss_mib
from ..report import format_summary, format_tasks, read_json, write_json, write_text
from ..version import __version__

__all__ = ["CHECKPOINT", "MODEL", "RESOLVED", "default_run_dir", "make_run_dir", "remove_created", "write_text",
           "read_npz", "save_npz", "run_info", "write_outputs", "read_json", "write_json",
           "finished", "RunLock", "run_config", "unfinished_message", "read_stats",
           "write_results"]

CHECKPOINT = "checkpoint.npz"
MODEL = "model.npz"
RESOLVED = "config.resolved.yaml"
LOCK = ".lock"


def default_run_dir(cfg: Config, root: str | os.PathLike = "runs") -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path(root) / f"{cfg.name}-{stamp}"


def finished(out: Path) -> bool:
    return (out / "stats.json").is_file()


def unfinished_message(out: Path) -> str:
    """What to tell a user who points at a run that did not finish."""
    if (out / CHECKPOINT).is_file():
        return (f"{out} is an unfinished run (no stats.json): continue it with "
                f"`accel-sim run --resume {out}`")
    return (f"{out} is an unfinished run (no stats.json) and holds no checkpoint: it stopped "
            "before its first one; run its config again")


def read_stats(out: Path) -> dict:
    """stats.json of a finished run (a clear error for a folder that holds no run, or a
    run that did not finish)."""
    out = Path(out)
    if not out.is_dir():
        raise RunError(f"no run directory {out}")
    if not finished(out):
        if (out / RESOLVED).is_file():
            raise RunError(unfinished_message(out))
        raise RunError(f"{out} is not a run directory (no stats.json)")
    return read_json(out / "stats.json")


def run_config(out: Path, overrides=()) -> Config:
    """The config a run directory was run with."""
    path = out / RESOLVED
    if not path.is_file():
        raise RunError(f"{out} is not a run directory (no {RESOLVED})")
    return load_resolved(path, overrides)


# ---------------------------------------------------------------------------- lock
class RunLock:
    """An OS lock (flock) on RUN_DIR/.lock while this process writes the directory. A
    second writer gets an exit-2 error naming the holder (its pid and command line)."""

    def __init__(self, out: Path, what: str):
        self.path, self.what, self._fd = Path(out) / LOCK, what, None

    def __enter__(self) -> "RunLock":
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise RunError(f"cannot lock {self.path.parent}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip() or "another process"
            os.close(fd)
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise RunError(f"cannot lock {self.path.parent}: {exc.strerror}") from None
            raise RunError(f"{self.path.parent} is being written by {holder}; wait for it to "
                           "end or choose another directory") from None
        text = (f"pid {os.getpid()} ({self.what}: {' '.join(sys.argv) or 'python'}, "
                f"since {datetime.now().isoformat(timespec='seconds')})")
        os.ftruncate(fd, 0)
        os.pwrite(fd, text.encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def make_run_dir(out: Path) -> bool:
    """Create the run directory if it is not there; returns whether it was created here
    (what `remove_created` may undo)."""
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunError(f"cannot create run directory {out}: {exc.strerror or exc}") from None
    return created


def remove_created(out: Path, created: bool) -> None:
    """Undo a run directory this process created and that holds no run yet."""
    if created and not (out / CHECKPOINT).exists() and not finished(out):
        shutil.rmtree(out, ignore_errors=True)


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


# ---------------------------------------------------------------------------- files
def run_info(cfg: Config, *, backend: str, samples: dict, timing: dict, started: str,
             ended: str | None, resumed: bool) -> dict:
    """run.json: what ran where: versions, machine, config names, timing, samples, and the
    peak memory so far."""
    import numpy
    import pydantic

    return {
        "name": cfg.name, "seed": cfg.seed, "backend": backend,
        "model": cfg.network.model,
        "chip": cfg.hardware.name if cfg.hardware is not None else None,
        "energy_table": cfg.energy.name if cfg.energy is not None else None,
        "fidelity": cfg.run.fidelity if cfg.hardware is not None else None,
        "threads": cfg.run.threads or os.cpu_count(),
        "versions": {"neuro_accel_sim": __version__, "python": platform.python_version(),
                     "numpy": numpy.__version__, "pydantic": pydantic.__version__},
        "platform": platform.platform(), "cpu_model": cpu_model(), "command": sys.argv,
        "start_time": started, "end_time": ended, "resumed": resumed,
        "timing_s": timing, "samples": samples, "peak_rss_mib": peak_rss_mib(),
    }


def write_results(out: Path, stats: dict, info: dict) -> None:
    """run.json, the reports, and stats.json last: it marks the run finished."""
    write_json(out / "run.json", info)
    write_outputs(out, stats, info)
    write_json(out / "stats.json", stats)


def write_outputs(out: Path, stats: dict, run: dict) -> None:
    """summary.txt, and with a chip energy.csv, per_core.csv, energy_breakdown.png,
    mesh.png and latency.png, from stats."""
    text = format_summary(stats, run)
    tasks = stats.get("accuracy", {}).get("tasks")
    if tasks:
        from ..plot import plot_continual

        text += format_tasks(tasks)
        plot_continual(tasks, out / "continual.png")
    hw = stats.get("hardware")
    if hw and hw.get("phases"):
        from ..plot import plot_energy_breakdown, plot_latency, plot_mesh
        from ..tables import format_hardware_summary, write_energy_csv, write_instance_csv

        text += format_hardware_summary(hw)
        write_energy_csv(hw, out / "energy.csv")
        write_instance_csv(hw, out / "per_core.csv")
        plot_energy_breakdown(hw, out / "energy_breakdown.png", model=run.get("model"))
        plot_mesh(hw, out / "mesh.png")
        plot_latency(hw, out / "latency.png")
    write_text(out / "summary.txt", text)
