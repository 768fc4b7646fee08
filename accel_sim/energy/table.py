"""Energy tables: validate, then resolve against a chip into pJ per action.

Resolution turns width- and capacity-dependent entries into one number per
(component class, action) for this chip (SRAM per-bit energies interpolated
log-linearly in capacity and multiplied by the word width, DRAM per-bit
energies picked by DRAM kind, NoC per-bit energies times the packet width), and
static power into a total per class (instances x per-instance power).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..config.energy import EnergyTableConfig
from ..errors import TableError
from ..registry import COMPONENT_ACTIONS, COMPONENTS, action_width_bits, instances

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
                    if comp != "dram" or action == "activate":
                        raise TableError(f"{key}: pj_per_bit_by_kind is for dram read/write")
                    if hw.dram.kind not in a.pj_per_bit_by_kind:
                        raise TableError(f"{key}: no energy for dram kind {hw.dram.kind!r} "
                                         f"(table has {', '.join(a.pj_per_bit_by_kind)})")
                    value = a.pj_per_bit_by_kind[hw.dram.kind]
                pj[comp, action] = float(value)
                sources[comp, action] = (a.source if given == action else
                                         f"as {comp}.{given} (the table gives no {action}): "
                                         f"{a.source}")
            per = spec.static_mw or 0.0
            if spec.static_mw_per_kib is not None:
                per = spec.static_mw_per_kib * hw.sram.size_kib
            static[comp] = float(per) * inst[comp]
        c = self.cfg
        return ResolvedTable(c.name, c.technology, c.basis, pj, static, sources)
