"""The work of a sweep, as functions of plain dicts that return plain dicts (what a process
pool or a Dask worker is handed):

- `frontend_task`: one frontend run without a chip that saves the trace of every phase: the
  trace cache entry shared by every point with the same frontend key;
- `replay_task`: replays a cached trace once on one chip at one fidelity, then prices it for
  each point of the group (points that differ only in the energy table) and writes each
  point's run directory.

A problem of the input (an impossible chip, a missing file) is a point's recorded failure,
returned as `{"status": "failed", "error": line}`; anything else is a crash and propagates.
"""
from __future__ import annotations

import os
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

from snn_frontend.trace import SpikeTrace

from ..config import dump_config, parse_config
from ..costing import ChipSetup, hardware_stats, prepare_chip, resolve_table, state_bits
from ..errors import USER_ERRORS
from ..run import resume_experiment, run_experiment
from ..run.rundir import (
    MODEL,
    RESOLVED,
    RunLock,
    finished,
    make_run_dir,
    read_json,
    run_info,
    write_results,
    write_text,
)

__all__ = ["error_line", "frontend_task", "replay_task", "replay_shard_task", "price_points"]


def error_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def frontend_task(task: dict) -> dict:
    """{"config": dict, "out": path} -> {"status", "error", "wall_s"}. Runs the frontend once
    (resuming a killed one from its checkpoint); a finished entry is reused."""
    out = Path(task["out"])
    t0 = time.perf_counter()
    try:
        if not finished(out):
            if (out / "checkpoint.npz").is_file():
                resume_experiment(out, progress=False)
            else:
                if out.exists():  # killed before its first checkpoint
                    shutil.rmtree(out)
                run_experiment(parse_config(task["config"]), out, progress=False)
    except USER_ERRORS as exc:
        return {"status": "failed", "error": error_line(exc),
                "wall_s": time.perf_counter() - t0}
    return {"status": "ok", "error": "", "wall_s": time.perf_counter() - t0}


def _link(src: Path, dst: Path) -> None:
    """The cached model in a point's directory without a copy where the disk allows."""
    if not src.is_file() or dst.exists():
        return
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def replay_task(task: dict) -> list[dict]:
    """{"cache": dir, "points": [{"id", "config": dict, "out": dir}, ...]} (same trace, chip
    and fidelity) -> one {"id", "status", "error", "wall_s"} per point."""
    t0 = time.perf_counter()
    shard = replay_shard_task({"cache": task["cache"], "config": task["points"][0]["config"]})
    return price_points(task["cache"], task["points"], shard["results"], shard["error"],
                        time.perf_counter() - t0)


def replay_shard_task(task: dict) -> dict:
    """{"cache": dir, "config": dict, "shard": [k, n] (optional)} -> {"results": {phase:
    PhaseReplay.totals()}, "error"}: the config's chip replays the cached trace of every
    phase, or only its k-th of n shards of presentations (a sweep with fewer replays than
    workers spreads each over several; the shards' totals add up to the whole)."""
    cache = Path(task["cache"])
    cfg = parse_config(task["config"])
    if cfg.hardware is None:
        return {"results": None, "error": ""}
    k, n = task.get("shard", (0, 1))
    try:
        spec = next(SpikeTrace.parts(cache / f"trace_{cfg.run.phases[0]}")).spec
        setup = prepare_chip(cfg, spec)
        results = {}
        for phase in cfg.run.phases:
            ph = setup.chip.phase(phase, sample=cfg.run.chip_sample if n == 1 else None)
            if n == 1:
                for part in SpikeTrace.parts(cache / f"trace_{phase}"):
                    ph.consume(part)
            else:
                trace = SpikeTrace.load(cache / f"trace_{phase}")
                bounds = trace.shard_bounds(n)
                if k < len(bounds):  # fewer presentations than shards: this one is empty
                    ph.consume(trace.select(*bounds[k]))
            results[phase] = ph.totals()
    except USER_ERRORS as exc:
        return {"results": None, "error": error_line(exc)}
    return {"results": results, "error": ""}


def price_points(cache: str | Path, points: list[dict], results: dict | None, error: str,
                 replay_s: float) -> list[dict]:
    """Write each point's run directory from the cached frontend run and the chip's
    `results` ({phase: totals}, None without a chip), priced with the point's table;
    one {"id", "status", "error", "wall_s"} per point (the replay's time on the first)."""
    cache = Path(cache)
    cached_stats = read_json(cache / "stats.json")
    cached_run = read_json(cache / "run.json")
    setup, phases = None, None
    rows = []
    for k, p in enumerate(points):
        t1 = time.perf_counter()
        if error:
            rows.append({"id": p["id"], "status": "failed", "error": error,
                         "wall_s": replay_s if k == 0 else 0.0})
            continue
        cfg = parse_config(p["config"])
        try:
            stats = dict(cached_stats)
            if results is not None:
                if setup is None:  # the chip once (its mapping report), each point's table
                    spec = next(SpikeTrace.parts(cache / f"trace_{cfg.run.phases[0]}")).spec
                    setup = prepare_chip(cfg, spec)
                    phases = {ph: _as_result(t) for ph, t in results.items()}
                else:
                    setup = ChipSetup(setup.chip, *resolve_table(cfg))
                stats["hardware"] = hardware_stats(cfg, setup, phases, state_bits(cfg))
            _write_point(Path(p["out"]), cfg, stats, cached_run, cache,
                         replay_s if k == 0 else 0.0)
        except USER_ERRORS as exc:
            rows.append({"id": p["id"], "status": "failed", "error": error_line(exc),
                         "wall_s": time.perf_counter() - t1})
            continue
        rows.append({"id": p["id"], "status": "ok", "error": "",
                     "wall_s": (replay_s if k == 0 else 0.0) + time.perf_counter() - t1})
    return rows


def _as_result(totals: dict) -> dict:
    """PhaseResult.as_dict() of a phase's merged totals."""
    out = {k: totals[k] for k in ("cycles", "samples", "presentations", "time_steps",
                                  "without_active", "sampled", "instances",
                                  "first_step_cycles") if k in totals}
    return dict(out, counts=dict(sorted(totals["counts"].items())))


def _write_point(out: Path, cfg, stats: dict, cached_run: dict, cache: Path,
                 simulate_s: float) -> None:
    """A point's run directory: its own config, the cached frontend's figures and its
    chip's; stats.json last (it marks the point finished)."""
    make_run_dir(out)
    with RunLock(out, "sweep point"):
        write_text(out / RESOLVED, dump_config(cfg))
        now = datetime.now(UTC).isoformat()
        timing = dict(cached_run.get("timing_s", {}), simulate=simulate_s)
        info = run_info(cfg, backend=cached_run.get("backend", "?"),
                        samples=cached_run.get("samples", {}), timing=timing,
                        started=cached_run.get("start_time", now), ended=now, resumed=False)
        info["frontend_cache"] = str(cache)
        _link(cache / MODEL, out / MODEL)
        write_results(out, stats, info)
