"""`accel-sim report`: regenerate a finished run's reports, or re-price its recorded counts
and cycles with another energy table (no re-simulation)."""
from __future__ import annotations

import os
from pathlib import Path

from ..costing import price_results, resolve_table
from ..errors import RunError
from .rundir import RunLock, read_json, read_stats, run_config, write_json, write_outputs

__all__ = ["reprice"]


def reprice(run_dir: str | os.PathLike, energy: str | None = None) -> Path:
    """Regenerate a run's reports; with `energy` (a table name or file), re-price the
    recorded counts and cycles with that table into RUN_DIR/reprice-<table>/. Returns the
    directory written."""
    out = Path(run_dir)
    stats = read_stats(out)
    run = read_json(out / "run.json")
    with RunLock(out, "report"):
        if energy is None:
            write_outputs(out, stats, run)
            return out
        hw = stats.get("hardware")
        if not hw:
            raise RunError(f"{out} has no hardware results to re-price (run it with a chip)")
        cfg = run_config(out, [f"energy={energy}"])
        table, warnings = resolve_table(cfg)
        new = dict(hw, energy_table=table.name, technology=table.technology, basis=table.basis,
                   warnings=warnings, phases=price_results(hw["phases"], table, hw["clock_mhz"]))
        dest = out / f"reprice-{table.name}"
        try:
            dest.mkdir(exist_ok=True)
        except OSError as exc:
            raise RunError(f"cannot create {dest}: {exc.strerror or exc}") from None
        stats = dict(stats, hardware=new)
        write_json(dest / "stats.json", stats)
        write_outputs(dest, stats, run)
        return dest
