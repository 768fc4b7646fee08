"""A sweep file and the points it names.

    version: 1
    base: ../mnist_dc400.yaml            # the config every point starts from (relative to
                                         # this file)
    set: {data.test_samples: 1000}       # overrides for every point (optional)
    grid:                                # every combination of these values
      hardware.sram.size_kib: [32, 64, 128]
      hardware.cores.count: [4, 16]
    zip:                                 # these lists advance together (one axis)
      hardware.noc.cast: [unicast, multicast]
      hardware.noc.packet_bits: [32, 64]
    points:                              # explicit points, each combined with the grid
      - {hardware: edge, energy: generic_45nm}
      - {hardware: loihi_like, energy: loihi_2018}

Every key is a dotted config key and every value is typed as on the command line
(`--set KEY=VALUE`). A point is one of `points` (or nothing) merged with one grid
combination and one zip row. Each point's config is validated before anything runs.
"""
from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from ..config import EXECUTION_ONLY, Config, ConfigError, config_to_dict, load_config, read_yaml
from ..version import __version__

__all__ = [
    "FRONTEND_FREE",
    "Point",
    "SweepFile",
    "expand",
    "frontend_key",
    "load_sweep",
    "replay_key",
]

#: config keys that never change what the frontend computes: points that differ only in
#: these share one frontend run
FRONTEND_FREE = ("name", "hardware", "energy", "run.fidelity", "run.chip_sample", *EXECUTION_ONLY)


class SweepFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = 1
    base: str
    set: dict[str, Any] = {}
    grid: dict[str, list[Any]] = {}
    zip: dict[str, list[Any]] = {}
    points: list[dict[str, Any]] = []
    workers: int | None = None  # default for --workers

    @field_validator("version")
    @classmethod
    def _version(cls, v: int) -> int:
        if v != 1:
            raise ValueError("only version 1 exists")
        return v

    @field_validator("grid")
    @classmethod
    def _grid(cls, v: dict) -> dict:
        empty = [k for k, vals in v.items() if not vals]
        if empty:
            raise ValueError(f"grid axes without values: {', '.join(empty)}")
        return v

    @model_validator(mode="after")
    def _zip_lengths(self):
        lengths = {k: len(v) for k, v in self.zip.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError("zip lists must have the same length, got "
                             + ", ".join(f"{k}: {n}" for k, n in lengths.items()))
        twice = (set(self.grid) & set(self.zip)) | (
            (set(self.grid) | set(self.zip)) & {k for p in self.points for k in p})
        if twice:
            raise ValueError(f"keys swept in more than one place: {', '.join(sorted(twice))}")
        return self


@dataclass(frozen=True)
class Point:
    """One point: its position, the values it sets, and its validated config (None when the
    chip cannot hold the network: `infeasible` says why)."""

    index: int
    values: dict[str, Any]
    overrides: tuple[str, ...]
    config: Config | None
    infeasible: str | None = None

    @property
    def id(self) -> str:
        """Stable across re-runs of the same sweep: a hash of the values it sets."""
        text = json.dumps(self.values, sort_keys=True, default=str)
        return "p" + hashlib.sha256(text.encode()).hexdigest()[:10]

    def label(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.values.items()) or "(base)"


def load_sweep(path: str | Path, model: type[SweepFile] | None = None, what: str = "sweep",
               overrides: Iterable[str] = ()) -> tuple[SweepFile, str]:
    """A sweep file (or a search file: `model`), validated, and its text (kept as given in
    the output directory). `overrides` (`--set KEY=VALUE`) join the file's `set` for every
    point, after it; they are appended to the text as comments, so a sweep directory
    continued with other overrides is another sweep."""
    model = model or SweepFile
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{what} file not found: {p}"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"cannot read {what} file: {exc}"], str(p)) from None
    data = read_yaml(text, str(p))
    if not isinstance(data, dict):
        raise ConfigError([f"a {what} file is a mapping (base, set, grid, zip, points, ...)"],
                          str(p))
    try:
        sw = model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError([".".join(map(str, e["loc"])) + ": " + e["msg"].removeprefix(
            "Value error, ") if e["loc"] else e["msg"].removeprefix("Value error, ")
            for e in exc.errors()], str(p)) from None
    overrides = list(overrides)
    if overrides:
        sw.set = {**sw.set, **_parse_overrides(overrides, sw, what)}
        text += "".join(f"# --set {o}\n" for o in overrides)
    return sw, text


def _parse_overrides(overrides: list[str], sw: SweepFile, what: str) -> dict[str, Any]:
    """`KEY=VALUE` items as {key: typed value}; a key the file sweeps is an error."""
    swept = set(sw.grid) | set(sw.zip) | {k for pt in sw.points for k in pt}
    values, problems = {}, []
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            problems.append(f"--set {item!r}: expected KEY=VALUE, e.g. data.test_samples=1000")
        elif key in swept:
            problems.append(f"--set {key}: the {what} file sweeps this key; edit its values "
                            "there")
        else:
            try:
                values[key] = read_yaml(raw, None) if raw.strip() else None
            except ConfigError as exc:
                problems.append(f"--set {key}: {exc.problems[0]}")
    if problems:
        raise ConfigError(problems)
    return values


def _override(key: str, value: Any) -> str:
    """`key=value` that `--set` parses back to `value` (JSON is YAML)."""
    return f"{key}={json.dumps(value)}"


def _combinations(sw: SweepFile) -> list[dict[str, Any]]:
    keys = list(sw.grid)
    grid = [dict(zip(keys, vals)) for vals in itertools.product(*sw.grid.values())]
    n_zip = len(next(iter(sw.zip.values()))) if sw.zip else 0
    rows = [{k: v[i] for k, v in sw.zip.items()} for i in range(n_zip)] or [{}]
    return [dict(p, **g, **z) for p in (sw.points or [{}]) for g in grid for z in rows]


def expand(sw: SweepFile, sweep_path: str | Path) -> list[Point]:
    """Every point with its validated config. Raises ConfigError with one line per bad point
    (nothing has run). A point whose chip cannot hold the network (a chip-fit check of the
    config) is kept, marked infeasible, and recorded as such instead of run."""
    base = (Path(sweep_path).resolve().parent / sw.base)
    if not base.is_file():
        raise ConfigError([f"base: config file not found: {base} (a relative base is read "
                           "from the sweep file's folder; to change the base config's "
                           "values, keep the file and add --set KEY=VALUE)"], str(sweep_path))
    common = [_override(k, v) for k, v in sw.set.items()]
    points, problems = [], []
    for i, values in enumerate(_combinations(sw)):
        overrides = tuple(common + [_override(k, v) for k, v in values.items()])
        point = Point(i, values, overrides, None)
        try:
            points.append(Point(i, values, overrides, load_config(base, overrides)))
        except ConfigError as exc:
            if exc.infeasible:  # the chip cannot hold the network: recorded, not run
                points.append(Point(i, values, overrides, None,
                                    infeasible="; ".join(exc.problems)))
            else:
                problems.append(f"point {i} ({point.label()}): " + "; ".join(exc.problems))
    if problems:
        raise ConfigError(problems, str(sweep_path))
    return points


def without_keys(data: dict, dotted: tuple[str, ...]) -> dict:
    """A copy of nested plain data without the dotted keys."""
    out = json.loads(json.dumps(data, default=str))
    for key in dotted:
        *head, last = key.split(".")
        node = out
        for part in head:
            node = node.get(part, {}) if isinstance(node, dict) else {}
        if isinstance(node, dict):
            node.pop(last, None)
    return out


def stable_hash(data: Any) -> str:
    """A short hash of plain data and the package version (cache keys)."""
    text = json.dumps([__version__, data], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def frontend_key(cfg: Config) -> str:
    """Equal for configs whose frontend computes the same thing (the trace cache's key)."""
    return stable_hash(without_keys(config_to_dict(cfg), FRONTEND_FREE))


def replay_key(cfg: Config) -> str:
    """Equal for configs that replay the same trace on the same chip the same way (they
    differ at most in the energy table, so they are re-priced, not replayed)."""
    hw = config_to_dict(cfg)["hardware"]
    sample = cfg.run.chip_sample.model_dump() if cfg.run.chip_sample is not None else None
    return stable_hash([frontend_key(cfg), hw, cfg.run.fidelity, sample])
