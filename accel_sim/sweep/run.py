"""`accel-sim sweep`: run every point of a sweep file on an executor, sharing frontend runs.

    expand and validate every point (nothing runs if one is bad)
    -> one frontend run per frontend key (its traces cached in SWEEP_DIR/cache/<key>/)
    -> one replay per (trace, chip, fidelity), priced for each energy table of its points
    -> each finished point recorded at once (points/<id>/, results.csv)
    -> pareto.png and summary.md

Re-running the same command continues a killed sweep: finished points and finished frontend
runs are kept, everything else is redone (a killed frontend run resumes from its
checkpoint).
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from tqdm import tqdm

from ..chip import merge_totals
from ..config import config_to_dict
from ..errors import RunError
from ..executors import Task, make_executor
from ..report import read_json, write_json, write_text
from ..run.rundir import finished
from .results import INFER_ENERGY, plot_pareto, point_row, write_csv, write_summary
from .spec import Point, expand, frontend_key, load_sweep, replay_key
from .tasks import frontend_task, price_points, replay_shard_task, replay_task

__all__ = ["SweepOutcome", "default_sweep_dir", "run_sweep"]


@dataclass
class SweepOutcome:
    out: Path
    rows: list[dict]
    frontend_runs: int = 0  # frontend runs this invocation performed (cache misses)
    replays: int = 0  # chip replays this invocation performed
    wall_s: float = 0.0
    executor: str = "local"
    workers: int = 1
    timing: dict = field(default_factory=dict)

    def count(self, status: str) -> int:
        return sum(r["status"] == status for r in self.rows)


def default_sweep_dir(sweep_path: str | os.PathLike) -> Path:
    """sweeps/<file stem>: the same command finds the same directory (and resumes)."""
    return Path("sweeps") / Path(sweep_path).stem


def _prepare(out: Path, text: str) -> None:
    try:
        (out / "points").mkdir(parents=True, exist_ok=True)
        (out / "cache").mkdir(exist_ok=True)
    except OSError as exc:
        raise RunError(f"cannot create sweep directory {out}: {exc.strerror or exc}") from None
    given = out / "sweep.yaml"
    if given.is_file() and given.read_text(encoding="utf-8") != text:
        raise RunError(f"{out} holds another sweep (its sweep.yaml differs); choose another "
                       "--out, or delete it to start over")
    write_text(given, text)


def _frontend_config(point: Point, threads: int) -> dict:
    """The point's config without its chip, saving the trace of every phase it runs."""
    d = config_to_dict(point.config)
    d.update(hardware=None, energy=None)
    d["run"].update(trace_phases=list(d["run"]["phases"]), threads=threads, progress=False)
    return d


class _Recorder:
    """Rows as points finish: each one written at once (point.json, results.csv)."""

    def __init__(self, out: Path, points: list[Point], bar):
        self.out, self.bar = out, bar
        self.by_id = {p.id: p for p in points}
        self.rows: dict[str, dict] = {}

    def point_dir(self, p: Point) -> Path:
        return self.out / "points" / p.id

    def add(self, p: Point, status: str, error: str, wall_s: float) -> None:
        d = self.point_dir(p)
        stats = read_json(d / "stats.json") if status == "ok" else None
        if status != "ok":
            d.mkdir(parents=True, exist_ok=True)
        write_json(d / "point.json", {"index": p.index, "values": p.values, "status": status,
                                      "error": error, "wall_s": wall_s,
                                      "overrides": list(p.overrides)})
        self.rows[p.id] = point_row(p, status, error, wall_s, stats, str(d))
        write_csv(list(self.rows.values()), self.out / "results.csv")
        self._progress()

    def restore(self, p: Point) -> bool:
        """A point finished by an earlier invocation: its row, and True."""
        d = self.point_dir(p)
        if not (finished(d) and (d / "point.json").is_file()):
            return False
        info = read_json(d / "point.json")
        if info.get("status") != "ok":
            return False
        self.rows[p.id] = point_row(p, "ok", "", info.get("wall_s", 0.0),
                                    read_json(d / "stats.json"), str(d))
        return True

    def _progress(self) -> None:
        self.bar.update(1)
        ok = [r for r in self.rows.values() if isinstance(r.get(INFER_ENERGY), float)]
        if ok:
            best = min(ok, key=lambda r: r[INFER_ENERGY])
            self.bar.set_postfix_str(f"best: point {best['index']}, "
                                     f"{best[INFER_ENERGY] * 1e-6:.4g} µJ/inference")


def run_sweep(sweep_path: str | os.PathLike, out: str | os.PathLike | None = None, *,
              executor: str = "local", workers: int | None = None,
              scheduler: str | None = None, progress: bool | None = None,
              overrides: Iterable[str] = ()) -> SweepOutcome:
    """Run (or continue) a sweep; returns its rows and what this invocation ran.
    `overrides` (`KEY=VALUE`) set config keys of every point (load_sweep)."""
    t0 = time.perf_counter()
    sw, text = load_sweep(sweep_path, overrides=overrides)
    points = expand(sw, sweep_path)  # every point validated before anything runs
    out = Path(out) if out is not None else default_sweep_dir(sweep_path)
    _prepare(out, text)
    show = progress if progress is not None else os.isatty(2)
    outcome = SweepOutcome(out, [])
    with tqdm(total=len(points), desc="sweep", unit="point", disable=not show,
              dynamic_ncols=True) as bar:
        rec = _Recorder(out, points, bar)
        todo = []
        for p in points:
            if rec.restore(p):
                bar.update(1)
            elif p.infeasible is not None:
                rec.add(p, "infeasible", p.infeasible, 0.0)
            else:
                todo.append(p)
        if todo:
            ex = make_executor(executor, workers or sw.workers, scheduler)
            outcome.executor, outcome.workers = ex.name, ex.workers
            try:
                _run_points(ex, todo, rec, outcome)
            finally:
                ex.close()
    outcome.rows = sorted(rec.rows.values(), key=lambda r: r["index"])
    write_csv(outcome.rows, out / "results.csv")
    swept = [k for k in outcome.rows[0] if k in {k for p in points for k in p.values}] \
        if outcome.rows else []
    plot_pareto(outcome.rows, out / "pareto.png", swept=swept)
    write_summary(outcome.rows, swept, out / "summary.md", f"Sweep {Path(sweep_path).name}")
    outcome.wall_s = time.perf_counter() - t0
    return outcome


def _run_points(ex, todo: list[Point], rec: _Recorder, outcome: SweepOutcome) -> None:
    out = rec.out
    threads = max(1, (os.cpu_count() or 1) // max(ex.workers, 1))
    by_key: dict[str, list[Point]] = {}
    for p in todo:
        by_key.setdefault(frontend_key(p.config), []).append(p)
    # 1. the frontend runs the cache lacks
    fronts = [Task(f"frontend-{k}", frontend_task,
                   {"config": _frontend_config(ps[0], threads), "out": str(out / "cache" / k)})
              for k, ps in by_key.items() if not finished(out / "cache" / k)]
    t1 = time.perf_counter()
    for task, result, crash in ex.run(fronts):
        outcome.frontend_runs += 1
        error = crash or (result["error"] if result["status"] != "ok" else "")
        if error:
            key = task.key.removeprefix("frontend-")
            for p in by_key.pop(key):
                rec.add(p, "failed", f"frontend: {error}", 0.0)
    outcome.timing["frontend_s"] = time.perf_counter() - t1
    # 2. one replay per trace x chip x fidelity, priced per energy table
    groups: dict[tuple[str, str], list[Point]] = {}
    for k, ps in by_key.items():
        for p in ps:
            groups.setdefault((k, replay_key(p.config)), []).append(p)
    payloads = {(k, rk): {"cache": str(out / "cache" / k),
                          "points": [{"id": p.id, "config": config_to_dict(p.config),
                                      "out": str(rec.point_dir(p))} for p in ps]}
                for (k, rk), ps in groups.items()}
    t1 = time.perf_counter()
    shards = ex.workers // len(groups) if groups else 1
    # a sampled replay (run.chip_sample) draws its sample over the whole phase: not sharded
    sampled = any(pl["points"][0]["config"]["run"].get("chip_sample") for pl in payloads.values())
    if shards > 1 and not sampled:  # fewer replays than workers: each one spread over several
        _replay_sharded(ex, payloads, shards, rec, outcome)
    else:
        replays = [Task(f"replay-{rk}", replay_task, pl) for (_, rk), pl in payloads.items()]
        for task, result, crash in ex.run(replays):
            outcome.replays += 1
            if crash:
                for p in task.payload["points"]:
                    rec.add(rec.by_id[p["id"]], "failed", crash, 0.0)
                continue
            for row in result:
                rec.add(rec.by_id[row["id"]], row["status"], row["error"], row["wall_s"])
    outcome.timing["replay_s"] = time.perf_counter() - t1


def _replay_sharded(ex, payloads: dict, n: int, rec: _Recorder,
                    outcome: SweepOutcome) -> None:
    """Each replay as n shards of presentations on the workers; their totals merged in
    order (the serial replay's figures) and the points priced and written here."""
    tasks = [Task(f"replay-{rk}-{k}", replay_shard_task,
                  {"cache": pl["cache"], "config": pl["points"][0]["config"], "shard": [k, n]})
             for (_, rk), pl in payloads.items() for k in range(n)]
    done: dict[str, dict] = {}
    for task, result, crash in ex.run(tasks):
        done[task.key] = {"results": None, "error": crash} if crash else result
    for (_, rk), pl in payloads.items():
        outcome.replays += 1
        parts = [done[f"replay-{rk}-{k}"] for k in range(n)]
        error = next((p["error"] for p in parts if p["error"]), "")
        results = None
        if not error and parts[0]["results"] is not None:
            results = {ph: merge_totals([p["results"][ph] for p in parts])
                       for ph in parts[0]["results"]}
        # the replay's time: its shards' on the workers, added
        replay_s = sum(r["wall_s"] for r in results.values()) if results else 0.0
        for row in price_points(pl["cache"], pl["points"], results, error, replay_s):
            rec.add(rec.by_id[row["id"]], row["status"], row["error"], row["wall_s"])
