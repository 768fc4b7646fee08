"""The Python API: price any spiking network's activity on any chip.

    from accel_sim import (NetworkSpec, Population, Projection, SpikeTrace, load_hardware,
                           load_energy_table, simulate, price)

    trace = SpikeTrace.from_rasters(spec, {"input": r_in, "exc": r_exc})  # bool (steps, n)
    hw = load_hardware("loihi_sanafe", overrides=["noc.cast=multicast"])
    result = simulate(trace, hw, fidelity="event")        # counts and cycles
    cost = price(result, load_energy_table("sanafe_loihi"), hw)
    cost.energy_pj.total, cost.energy_pj.by_component["router"], cost.latency_s

`docs/api.md` walks through it. `run_experiment` (accel_sim.run) runs a whole config.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from typing import Iterable, Mapping

import numpy as np

from snn_frontend.trace import SpikeTrace

from .chip import Chip, PhaseResult
from .config import load_section
from .config.energy import EnergyTableConfig
from .config.hardware import HardwareConfig
from .energy import EnergyTable, price_phase
from .errors import ConfigError, PricingWarning
from .executors import LocalExecutor

__all__ = ["load_hardware", "load_energy_table", "simulate", "price", "Cost", "Energy"]


def load_hardware(name_or_path: str | os.PathLike | dict | HardwareConfig,
                  overrides: Iterable[str] = ()) -> HardwareConfig:
    """A chip: a shipped name (`edge`, `loihi_like`, `loihi_sanafe`, ...), a YAML file, or
    a dict; `overrides` like `noc.cast=unicast` (the name then says "(modified)")."""
    return load_section("hardware", name_or_path, overrides)


def load_energy_table(name_or_path: str | os.PathLike | dict | EnergyTableConfig,
                      overrides: Iterable[str] = ()) -> EnergyTableConfig:
    """An energy table: a shipped name (`generic_45nm`, `loihi_2018`, `sanafe_loihi`), a
    YAML file, or a dict."""
    return load_section("energy", name_or_path, overrides)


_GIVEN = {"hardware": (HardwareConfig, "hw must be a chip", "'edge'", "load_hardware"),
          "energy": (EnergyTableConfig, "table must be an energy table", "'generic_45nm'",
                     "load_energy_table")}


def _given(value, section: str, what: str):
    """A chip or table given as its config, a shipped name, a YAML file or a dict."""
    model, need, example, loader = _GIVEN[section]
    if isinstance(value, model):
        return value
    if isinstance(value, (str, os.PathLike, dict)):
        return load_section(section, value)
    raise ConfigError([f"{what}: {need}: a shipped name (e.g. {example}), a YAML file, a dict "
                       f"or {loader}(...); got {type(value).__name__}"])


def simulate(trace: SpikeTrace | Iterable[SpikeTrace], hw, *,
             fidelity: str = "timestep", placement: Mapping[str, np.ndarray] | None = None,
             phase: str | None = None, workers: int = 0, executor=None) -> PhaseResult:
    """Replay a trace (or its parts) on a chip (a HardwareConfig, or a shipped name, a
    YAML file or a dict as `load_hardware` takes): action counts and cycles.

    `placement` maps each on-chip population to a core index per neuron (explicit
    mapping; default: the chip's `mapping`). `phase` names the result (default: the
    trace's phase, else "infer"). `workers` > 0 replays shards of presentations on that
    many local worker processes, or give an `executor` (accel_sim.executors: a local
    pool or a Dask cluster, kept open for more calls): the same result as a serial
    replay, bit for bit."""
    hw = _given(hw, "hardware", "simulate")
    parts = [trace] if isinstance(trace, SpikeTrace) else list(trace)
    if not parts or not all(isinstance(p, SpikeTrace) for p in parts):
        raise ConfigError(["simulate: trace must be a SpikeTrace (or its parts), e.g. "
                           "SpikeTrace.from_rasters(spec, rasters)"])
    first = parts[0]
    chip = Chip(hw, first.spec, fidelity, placement)
    name = phase or first.meta.get("phase", "infer")
    if executor is not None or workers <= 0:
        return chip.replay(parts, name, executor)
    pool = LocalExecutor(workers)
    try:
        return chip.replay(parts, name, pool)
    finally:
        pool.close()


@dataclass(frozen=True)
class Energy:
    """Energy of one phase in pJ: totals, and per component kind."""

    total: float
    dynamic: float
    static: float
    by_component: dict[str, float]  # kind -> total
    dynamic_by_component: dict[str, float]
    static_by_component: dict[str, float]


@dataclass(frozen=True)
class Cost:
    """What a phase costs on a chip with an energy table."""

    energy_pj: Energy
    latency_s: float
    latency_cycles: int
    energy_per_sample_pj: float
    latency_per_sample_s: float
    counts: dict[str, int]
    pj_per_action: dict[str, float]
    table: str
    chip: str

    @property
    def edp_pj_s(self) -> float:
        """Energy-delay product per sample."""
        return self.energy_per_sample_pj * self.latency_per_sample_s


def price(result: PhaseResult, table, hw=None) -> Cost:
    """Counts x pJ per action + static power x simulated time (no re-simulation). `table`
    is an EnergyTableConfig or what `load_energy_table` takes; `hw` defaults to the chip
    the result was simulated on (another chip is an error: its static power and widths
    would price counts it did not make)."""
    table = _given(table, "energy", "price")
    ran_on = result.hardware
    if hw is None:
        if ran_on is None:
            raise ConfigError(["price: give the chip (hw=) the result was simulated on"])
        hw = ran_on
    else:
        hw = _given(hw, "hardware", "price")
        if ran_on is not None and hw != ran_on:
            raise ConfigError([f"price: the result was simulated on chip {ran_on.name!r}, not "
                               f"on {hw.name!r} as given; price it with the chip it ran on "
                               "(leave hw out), or simulate again on the other chip"])
    resolved = EnergyTable(table).resolve(hw)
    for msg in result.warnings:
        warnings.warn(msg, PricingWarning, stacklevel=2)
    ph = price_phase(result.counts, result.cycles, hw.clock_mhz, resolved,
                     samples=result.samples, presentations=result.presentations,
                     time_steps=result.time_steps)
    comp = ph["energy_pj"]["by_component"]
    energy = Energy(ph["energy_pj"]["total"], ph["energy_pj"]["dynamic"], ph["energy_pj"]["static"],
                    {k: v["total"] for k, v in comp.items()},
                    {k: v["dynamic"] for k, v in comp.items()},
                    {k: v["static"] for k, v in comp.items()})
    return Cost(energy, ph["latency_s"], ph["latency_cycles"], ph["energy_per_sample_pj"],
                ph["latency_per_sample_s"], dict(result.counts), ph["pj_per_action"],
                resolved.name, hw.name)
