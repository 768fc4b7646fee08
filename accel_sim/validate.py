"""`accel-sim validate FILE`: every check a command makes before its first sample, without
running anything. The file's kind is read from its keys:

- a run config: what `accel-sim run` does before its first sample (`run.prepare`: the
  config, the dataset files, the network built and mapped onto the chip, the energy
  table resolved against the chip), so that validate accepts exactly what run accepts;
- a sweep or search file: every point's config, then per frontend the data and network,
  per chip the mapping and per point the energy table (what the sweep's runs prepare);
- a chip or an energy table: its schema.
"""
from __future__ import annotations

from pathlib import Path

from .config import ConfigError, file_kind, load_config, load_section, read_yaml
from .costing import prepare_chip, resolve_table
from .run import prepare

__all__ = ["validate_file"]


def validate_file(path: str, overrides: list[str] = ()) -> tuple[list[str], list[str]]:
    """(lines to print, warnings) for a file that passes; raises the error a run would."""
    p = Path(path)
    kind = _kind(p)
    if kind == "config":
        return _config(p, overrides)
    if kind in ("sweep", "search"):
        return _points(p, kind, overrides)
    section = load_section(kind, str(p), overrides)
    if kind == "hardware":
        c = section.cores
        what = (f"chip {section.name}: {c.count} cores on a {c.mesh_width}x{c.mesh_height} "
                f"mesh, {section.sram.size_kib:g} KiB SRAM per core")
        if section.n_chips > 1:
            what += f", {section.n_chips} chips on a {'x'.join(map(str, section.system.chips))} board"
    else:
        what = f"energy table {section.name} ({section.technology}, {section.basis})"
    return [f"{p}: OK ({what})"], []


def _kind(p: Path) -> str:
    if p.is_dir() or not p.is_file():
        load_config(p)  # the run's message for a folder or a missing file
    try:
        data = read_yaml(p.read_text(encoding="utf-8"), str(p))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"cannot read {p}: {exc}"]) from None
    return file_kind(data) or "config"


def _config(p: Path, overrides) -> tuple[list[str], list[str]]:
    cfg = load_config(p, overrides)
    prep = prepare(cfg)
    try:
        what = prep.describe()
    finally:
        prep.family.close(prep.net)
    chip, warnings = "", []
    if prep.setup is not None:
        used = prep.setup.chip.mapping.report(16, 8)["cores_used"]
        chip = (f"; chip {cfg.hardware.name}: {used} cores used, {cfg.run.fidelity} fidelity, "
                f"priced with {prep.setup.table.name}")
        warnings = prep.setup.warnings
    return [f"{p}: OK ({cfg.data.dataset}: {what}{chip})"], warnings


def _points(p: Path, kind: str, overrides) -> tuple[list[str], list[str]]:
    """Every point as its run would prepare it (with `--set` overrides on every point): the
    frontend once per frontend key, the chip once per chip and fidelity, the table per
    point."""
    from .search import load_search
    from .sweep.spec import expand, frontend_key, load_sweep, replay_key

    sw, _ = load_search(p, overrides) if kind == "search" else load_sweep(p, overrides=overrides)
    points = expand(sw, p)
    feasible = [q for q in points if q.config is not None]
    warnings: set[str] = set()
    by_front: dict[str, list] = {}
    for q in feasible:
        by_front.setdefault(frontend_key(q.config), []).append(q)
    for group in by_front.values():
        prep = prepare(group[0].config)
        prep.family.close(prep.net)
        chips = {}
        for q in group:
            if q.config.hardware is None:
                continue
            key = replay_key(q.config)
            if key not in chips:
                chips[key] = prepare_chip(q.config, prep.spec)
            warnings.update(resolve_table(q.config)[1])
    infeasible = len(points) - len(feasible)
    return [f"{p}: OK ({len(points)} points: {len(feasible)} to run on "
            f"{len(by_front)} frontend run(s), {infeasible} infeasible)"], sorted(warnings)
