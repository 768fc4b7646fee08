"""What a network's activity costs on a chip: set the chip up (checked before anything
runs) and price simulated phases with an energy table.

These pieces are shared by `accel-sim run`, `report --energy`, `sweep`, `estimate` and
the API: pricing itself is `energy.price_phase`, applied here to every phase.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from snn_frontend.spec import NetworkSpec

from .chip import Chip, active_warnings
from .chip.mapping import load_placement
from .energy import (EnergyTable, ResolvedTable, message_model_warning, price_instances,
                     price_phase)

__all__ = ["ChipSetup", "prepare_chip", "resolve_table", "state_bits", "price_results",
           "hardware_stats"]


@dataclass
class ChipSetup:
    chip: Chip
    table: ResolvedTable
    warnings: list[str]


def prepare_chip(cfg, spec: NetworkSpec) -> ChipSetup | None:
    """Map the spec onto the config's chip and resolve its energy table against it: an
    impossible chip or a table that cannot price it is an exit-2 error here, before any
    training. None when the config has no chip."""
    hw = cfg.hardware
    if hw is None:
        return None
    placement = load_placement(hw.placement_file) if hw.placement_file else None
    chip = Chip(hw, spec, cfg.run.fidelity, placement)
    return ChipSetup(chip, *resolve_table(cfg))


def resolve_table(cfg) -> tuple[ResolvedTable, list[str]]:
    """The config's energy table resolved against its chip, and any warning about it."""
    warning = message_model_warning(cfg.energy, cfg.hardware)
    return EnergyTable(cfg.energy).resolve(cfg.hardware), [warning] if warning else []


def state_bits(cfg) -> int:
    """The one width of neuron state, for the memory section and the chip alike: the
    network's when it is fixed point; a floating-point network's state is stored in the
    chip's format (`hardware.formats.state_bits`), or as float32 without a chip."""
    fmt = cfg.network.state_format
    if fmt.kind == "fixed" or cfg.hardware is None:
        return fmt.storage_bits
    return cfg.hardware.formats.state_bits


def price_results(results: Mapping[str, Mapping], table: ResolvedTable, clock_mhz: float) -> dict:
    """stats.json `hardware.phases`: each phase's counts and cycles priced with the table.
    `results`: phase -> {counts, cycles (or latency_cycles), samples, presentations,
    time_steps}."""
    return {name: _priced(r, table, clock_mhz) for name, r in results.items()}


def _priced(r: Mapping, table: ResolvedTable, clock_mhz: float) -> dict:
    """One phase priced; a sampled replay's (`sampled`) also at both ends of its latency
    interval: static energy grows with latency, dynamic energy is exact."""
    def at(cycles):
        return price_phase(r["counts"], cycles, clock_mhz, table, samples=r["samples"],
                           presentations=r["presentations"], time_steps=r["time_steps"])

    latency = r.get("latency_cycles", r.get("cycles"))
    out = at(latency)
    if r.get("instances"):
        out["instances"] = r["instances"]
        out["per_instance"] = price_instances(r["instances"], latency, clock_mhz, table)
    if r.get("first_step_cycles"):
        out["first_step_cycles"] = r["first_step_cycles"]
    sampled = r.get("sampled")
    if sampled:
        ends = [at(c) for c in sampled["latency_cycles_interval"]]
        out["sampled"] = sampled
        out["interval"] = {key: [e[key] for e in ends] for key in (
            "latency_s", "latency_per_sample_s", "energy_per_sample_pj")}
        out["interval"]["latency_cycles"] = list(sampled["latency_cycles_interval"])
        out["interval"]["energy_pj"] = [e["energy_pj"]["total"] for e in ends]
        out["interval"]["level"] = sampled["level"]
    return out


def hardware_stats(cfg, setup: ChipSetup, results: Mapping[str, Mapping], state_bits: int) -> dict:
    """stats.json `hardware`: the chip, the table, the mapping report and the priced phases."""
    hw, t = cfg.hardware, setup.table
    return {"chip": hw.name, "energy_table": t.name, "technology": t.technology,
            "basis": t.basis, "fidelity": cfg.run.fidelity, "clock_mhz": hw.clock_mhz,
            "mapping": setup.chip.mapping.report(state_bits, hw.formats.trace_bits),
            "warnings": setup.warnings + active_warnings(
                sorted({q for r in results.values() for q in r.get("without_active", ())}), hw),
            "phases": price_results(results, t, hw.clock_mhz)}
