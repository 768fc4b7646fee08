"""The one run driver: every family's run is these steps, composed.

    prepare: load the data -> build the network -> its spec -> map it onto the chip and
             resolve the energy table                    (all that `validate` checks too)
    start:   the run directory (locked), config.resolved.yaml, run.json
    run:     the family's protocol (phases stream their traces into the chip's replay;
             checkpoints as configured)
    finish:  stats.json (accuracy, frontend counts, memory, priced chip phases, model),
             model.npz, run.json with the timing, summary.txt, energy.csv, plots

`run_experiment(cfg, out_dir)` is the library entry point behind `accel-sim run`;
`resume_experiment(run_dir)` continues a killed run from its checkpoint to the result of
an uninterrupted one.
"""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from snn_frontend.spec import NetworkSpec

from .. import registry
from ..config import dump_config
from ..costing import ChipSetup, hardware_stats, prepare_chip, state_bits
from ..errors import RunError
from ..memory import network_memory
from .checkpoint import load_checkpoint
from .context import Run
from .family import NetworkFamily
from .rundir import (
    CHECKPOINT,
    MODEL,
    RESOLVED,
    RunLock,
    finished,
    make_run_dir,
    remove_created,
    run_config,
    run_info,
    save_npz,
    write_json,
    write_results,
    write_text,
)

__all__ = ["Prepared", "prepare", "run_experiment", "resume_experiment", "collect_stats",
           "progress_enabled"]


@dataclass
class Prepared:
    """A config made ready to run: everything that can stop a run has been checked."""

    cfg: object
    family: NetworkFamily
    data: object
    net: object
    spec: NetworkSpec
    setup: ChipSetup | None
    load_s: float
    t0: float  # perf_counter() when preparing began (the run's total time counts from it)

    def describe(self) -> str:
        return self.family.describe(self.cfg, self.data, self.net, self.spec)


def prepare(cfg) -> Prepared:
    """Load the data, build the network, map it onto the chip: what `validate` checks and
    `run` does before its first sample (an impossible chip or table fails here)."""
    family = registry.family_of(cfg)
    t0 = time.perf_counter()
    data = family.load_data(cfg)
    load_s = time.perf_counter() - t0
    net = family.build(cfg, data)
    try:
        spec = family.spec(cfg, net)
        setup = prepare_chip(cfg, spec)
    except BaseException:
        family.close(net)
        raise
    return Prepared(cfg, family, data, net, spec, setup, load_s, t0)


def progress_enabled(cfg, progress: bool | None) -> bool:
    if progress is not None:
        return progress
    if cfg.run.progress is not None:
        return cfg.run.progress
    return sys.stderr.isatty()


# ------------------------------------------------------------------------- a run
def run_experiment(cfg, out_dir: str | os.PathLike, *, progress: bool | None = None) -> dict:
    """Run every configured phase and write the run directory; returns stats."""
    out = Path(out_dir)
    _check_free(out)
    prep = prepare(cfg)  # nothing is written before the run is known to be possible
    try:
        created = make_run_dir(out)
        with RunLock(out, "run"):
            _check_free(out)  # a run may have finished here while this one prepared
            try:
                write_text(out / RESOLVED, dump_config(cfg))
            except BaseException:
                remove_created(out, created)
                raise
            return _execute(prep, out, progress_enabled(cfg, progress), resume=False,
                            created=created)
    finally:
        prep.family.close(prep.net)


def _check_free(out: Path) -> None:
    if finished(out) or (out / CHECKPOINT).exists():
        raise RunError(f"{out} already holds a run; choose another --out or use --resume {out}")


def resume_experiment(run_dir: str | os.PathLike, *, progress: bool | None = None) -> dict:
    """Continue a killed run from its last checkpoint (same result as uninterrupted)."""
    out = Path(run_dir)
    cfg = run_config(out)
    if finished(out):
        raise RunError(f"{out} is finished (stats.json is written); there is nothing to resume")
    with RunLock(out, "resume"):
        prep = prepare(cfg)
        try:
            return _execute(prep, out, progress_enabled(cfg, progress), resume=True,
                            created=False)
        finally:
            prep.family.close(prep.net)


def _execute(prep: Prepared, out: Path, show: bool, *, resume: bool, created: bool) -> dict:
    started, t0 = datetime.now(UTC).isoformat(), prep.t0
    family = prep.family
    run = Run(prep.cfg, out, family, prep.data, prep.net, prep.spec, prep.setup, show)
    if resume:
        run.resume = load_checkpoint(out, {k: v.shape for k, v in family.state(run.net).items()})
        family.load_state(run.net, run.resume.net)
    _warn_if_slow(family.backend(run.net))
    try:
        write_json(out / "run.json", _info(run, prep, started, None, time.perf_counter() - t0))
    except BaseException:
        remove_created(out, created)
        raise
    try:
        accuracy = family.run(run)
    finally:
        run.close()
    return _finish(run, prep, accuracy, started, t0)


def _warn_if_slow(backend: str) -> None:
    if backend != "cython":
        print("accel-sim: the compiled kernels are not built; running the slow NumPy "
              "reference (reinstall with a C compiler: pip install -e .)", file=sys.stderr)


def _finish(run: Run, prep: Prepared, accuracy: dict, started: str, t0: float) -> dict:
    out = run.out
    stats = collect_stats(run, accuracy)
    save_npz(out / MODEL, run.family.model_arrays(run))
    run.family.finish(run)
    info = _info(run, prep, started, datetime.now(UTC).isoformat(), time.perf_counter() - t0)
    write_results(out, stats, info)
    return stats


def timing(run: Run, load_s: float, total_s: float) -> dict:
    """Wall seconds: loading, each phase's frontend (its time minus the chip replay that
    ran inside it), the replay of all phases (with replay workers: this process's time
    submitting and waiting for them; `simulate_workers`: the workers' own), and the whole
    run. None is negative."""
    out = {"load": load_s}
    out.update({name: max(ph.elapsed_s - ph.replay_s, 0.0) for name, ph in run.phases.items()})
    if run.setup is not None:
        out["simulate"] = sum(ph.replay_s for ph in run.phases.values())
        workers = sum(ph.replay_worker_s for ph in run.phases.values())
        if workers:
            out["simulate_workers"] = workers
    out["total"] = total_s
    return out


def _info(run: Run, prep: Prepared, started: str, ended: str | None, total_s: float) -> dict:
    return run_info(run.cfg, backend=run.family.backend(run.net),
                    samples=run.family.samples(run.cfg, run.data),
                    timing=timing(run, prep.load_s, total_s), started=started, ended=ended,
                    resumed=run.resume is not None)


def collect_stats(run: Run, accuracy: dict) -> dict:
    """stats.json: accuracy, the frontend's counts per phase, memory, the chip's priced
    phases and the family's model figures."""
    cfg = run.cfg
    stats: dict = {
        "accuracy": accuracy,
        "frontend": {name: dict(ph.counts.as_dict(), per_sample=ph.counts.per_sample())
                     for name, ph in run.phases.items()},
        "memory": network_memory(run.spec, state_bits(cfg))}
    if run.setup is not None:
        results = {name: ph.result.as_dict() for name, ph in run.phases.items()
                   if ph.result is not None}
        stats["hardware"] = hardware_stats(cfg, run.setup, results, state_bits(cfg))
    stats["model"] = run.family.model_stats(run)
    nb = run.family.neurobench(run)
    if nb is not None:
        stats["neurobench"] = nb
    return stats
