"""Energy tables: validate, then resolve against a chip into pJ per action.

Resolution turns width- and capacity-dependent entries into one number per
(component class, action) for this chip (SRAM per-bit energies interpolated
log-linearly in capacity and multiplied by the word width, DRAM per-bit
energies picked by DRAM kind, NoC per-bit energies times the packet width), and
static power into a total per class (instances x per-instance power).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..config.energy import EnergyTableConfig
from ..errors import TableError
from ..registry import COMPONENT_ACTIONS, COMPONENTS, DURATIONS, action_width_bits, instances

__all__ = ["EnergyTable", "ResolvedTable", "TableError", "interp_log", "message_model_warning"]


def message_model_warning(table: EnergyTableConfig, hw) -> str | None:
    """A table calibrated for one message model priced on a chip that uses another: its
    per-message and per-hop numbers do not mean the same there (a warning, not an error)."""
    want = table.calibrated_for
    if want is None or (want.cast, want.local) == (hw.noc.cast, hw.noc.local):
        return None
    return (f"energy table {table.name} is calibrated for noc.cast={want.cast}, "
            f"noc.local={want.local}; chip {hw.name} uses cast={hw.noc.cast}, "
            f"local={hw.noc.local}: its per-message energies are not comparable")


def interp_log(points: dict[float, float], x: float) -> float:
    """Log-linear interpolation in x (clamped to the end points)."""
    xs = sorted(points)
    if x <= xs[0]:
        return points[xs[0]]
    if x >= xs[-1]:
        return points[xs[-1]]
    for lo, hi in zip(xs, xs[1:]):
        if lo <= x <= hi:
            f = (math.log(x) - math.log(lo)) / (math.log(hi) - math.log(lo))
            return points[lo] + f * (points[hi] - points[lo])
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class ResolvedTable:
    name: str
    technology: str
    basis: str
    pj: dict[tuple[str, str], float]  # (class, action) -> pJ per action on this chip
    static_mw: dict[str, float]  # class -> total static power of all its instances
    sources: dict[tuple[str, str], str]
    # class -> leakage in retention / leakage when on (memories whose table gives it)
    retention_ratio: dict[str, float] = field(default_factory=dict)
    # class -> its units on the chip (all cores' SRAM banks), for the durations
    units: dict[str, int] = field(default_factory=dict)

    def saved_pj_per_cycle(self, key: str, clock_mhz: float) -> float:
        """Static energy one unit saves per cycle in the low-power state of the duration
        `key` ("kind.duration", registry.DURATIONS): all of its share of the class's
        leakage when off, all but `retention_ratio` of it in retention (a table without
        it cannot be resolved for a chip that uses retention)."""
        comp = key.split(".", 1)[0]
        kept = self.retention_ratio[comp] if DURATIONS[key] == "retention" else 0.0
        per_unit_mw = self.static_mw.get(comp, 0.0) / self.units[comp]
        return per_unit_mw * (1.0 - kept) * 1e3 / clock_mhz  # mW x 1 cycle, in pJ


class EnergyTable:
    def __init__(self, cfg: EnergyTableConfig):
        self.cfg = cfg

    @property
    def name(self) -> str:
        return self.cfg.name

    def resolve(self, hw) -> ResolvedTable:
        pj, sources, static = {}, {}, {}
        inst = instances(hw)
        for comp, actions in COMPONENT_ACTIONS.items():
            spec = self.cfg.components[comp]
            for action in actions:
                given = action if action in spec.actions else COMPONENTS[comp].fallback(action)
                a = spec.actions[given]
                key = f"energy.components.{comp}.actions.{action}"
                if a.energy_pj is not None:
                    value = a.energy_pj
                elif a.pj_per_bit is not None:
                    width = action_width_bits(comp, action, hw)
                    if width is None:
                        raise TableError(f"{key}: pj_per_bit is defined for sram, router and "
                                         "dram read/write only; use energy_pj")
                    value = a.pj_per_bit * width
                elif a.pj_per_bit_by_kib is not None:
                    if comp != "sram":
                        raise TableError(f"{key}: pj_per_bit_by_kib is for sram actions only")
                    value = interp_log(a.pj_per_bit_by_kib, hw.sram.size_kib) * hw.sram.word_bits
                else:
                    by_kind, per_bit = ((a.pj_per_bit_by_kind, True) if a.pj_per_bit_by_kind is not None
                                        else (a.energy_pj_by_kind, False))
                    if comp != "dram" or per_bit != (action_width_bits(comp, action, hw) == 1):
                        raise TableError(f"{key}: pj_per_bit_by_kind is for dram read/write, "
                                         "energy_pj_by_kind for dram activate/precharge")
                    if hw.dram.kind not in by_kind:
                        raise TableError(f"{key}: no energy for dram kind {hw.dram.kind!r} "
                                         f"(table has {', '.join(by_kind)})")
                    value = by_kind[hw.dram.kind]
                pj[comp, action] = float(value)
                sources[comp, action] = (a.source if given == action else
                                         f"as {comp}.{given} (the table gives no {action}): "
                                         f"{a.source}")
            per = spec.static_mw or 0.0
            if spec.static_mw_per_kib is not None:
                per = spec.static_mw_per_kib * hw.sram.size_kib
            static[comp] = float(per) * inst[comp]
        c = self.cfg
        retention = {comp: float(spec.retention_ratio) for comp, spec in c.components.items()
                     if spec.retention_ratio is not None}
        if hw.power.sram == "retention_when_idle" and "sram" not in retention:
            raise TableError(f"energy table {c.name} gives no sram.retention_ratio (leakage in "
                             "retention), which hardware.power.sram: retention_when_idle needs")
        units = {k: inst[k] * kind.units(hw) for k, kind in COMPONENTS.items() if kind.units}
        return ResolvedTable(c.name, c.technology, c.basis, pj, static, sources, retention,
                             units)
