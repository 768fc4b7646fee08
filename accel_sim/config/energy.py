"""Schema of an energy table (Accelergy ERT style): component class -> action -> pJ.

Every number carries its source. An action's energy is given as exactly one of
  energy_pj                 pJ per action;
  pj_per_bit                pJ per bit, times the action's width (SRAM word bits,
                            DRAM bits are counted one by one, NoC packet bits);
  pj_per_bit_by_kib         SRAM pJ per bit by capacity in KiB, interpolated
                            log-linearly in capacity (clamped at the ends), times word bits;
  pj_per_bit_by_kind        DRAM pJ per bit by the chip's `dram.kind` (lpddr4, ddr3, ...);
  energy_pj_by_kind         DRAM pJ per action (activate, precharge) by `dram.kind`.
Static power is `static_mw` per component instance, or `static_mw_per_kib` for
memories (times capacity). Pricing (accel_sim/energy) resolves these against the
chip once; components only count.
"""
from __future__ import annotations

from typing import Annotated, Literal, Optional

from pydantic import Field, model_validator

from ..registry import COMPONENT_ACTIONS, COMPONENTS
from .base import Section

__all__ = ["EnergyTableConfig", "ActionEnergy", "ComponentEnergy"]

NonNeg = Annotated[float, Field(ge=0)]

class ActionEnergy(Section):
    energy_pj: Optional[NonNeg] = None
    pj_per_bit: Optional[NonNeg] = None
    pj_per_bit_by_kib: Optional[dict[Annotated[float, Field(gt=0)], NonNeg]] = None
    pj_per_bit_by_kind: Optional[dict[str, NonNeg]] = None
    energy_pj_by_kind: Optional[dict[str, NonNeg]] = None
    source: Annotated[str, Field(min_length=1)]

    @model_validator(mode="after")
    def _one(self):
        kinds = ("energy_pj", "pj_per_bit", "pj_per_bit_by_kib", "pj_per_bit_by_kind",
                 "energy_pj_by_kind")
        given = [k for k in kinds if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of {', '.join(kinds)}"
                             + (f" (got {', '.join(given)})" if given else ""))
        if self.pj_per_bit_by_kib is not None and not self.pj_per_bit_by_kib:
            raise ValueError("pj_per_bit_by_kib needs at least one capacity")
        return self


class ComponentEnergy(Section):
    static_mw: Optional[NonNeg] = None
    static_mw_per_kib: Optional[NonNeg] = None
    static_source: Optional[str] = None
    # memories: leakage in retention as a share of leakage when on (power.sram)
    retention_ratio: Optional[Annotated[float, Field(ge=0, le=1)]] = None
    retention_source: Optional[str] = None
    actions: dict[str, ActionEnergy] = {}

    @model_validator(mode="after")
    def _static(self):
        if self.static_mw is not None and self.static_mw_per_kib is not None:
            raise ValueError("give static_mw or static_mw_per_kib, not both")
        if (self.static_mw or self.static_mw_per_kib) and not self.static_source:
            raise ValueError("static power needs a static_source")
        if self.retention_ratio is not None and not self.retention_source:
            raise ValueError("retention_ratio needs a retention_source")
        return self


class MessageModel(Section):
    """The message model a table's per-message and per-hop numbers were calibrated for."""

    cast: Literal["multicast", "unicast"]
    local: Literal["free", "network"]


class EnergyTableConfig(Section):
    version: Literal[1] = 1
    name: Annotated[str, Field(min_length=1)]
    technology: Annotated[str, Field(min_length=1)]  # node and voltage, e.g. "45 nm, 0.9 V"
    basis: Literal["measured", "pre_silicon", "derived", "calibrated"]
    source: Annotated[str, Field(min_length=1)]
    notes: Optional[str] = None
    # None: the numbers hold for any message model (per hop, per delivery)
    calibrated_for: Optional[MessageModel] = None
    components: dict[Literal[tuple(COMPONENT_ACTIONS)], ComponentEnergy]  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _known_actions(self):
        problems = []
        for comp, spec in self.components.items():
            known = COMPONENT_ACTIONS[comp]
            for action in spec.actions:
                if action not in known:
                    problems.append(f"components.{comp}.actions.{action}: unknown action; "
                                    f"{comp} counts {', '.join(known)}")
            missing = [a for a in known if a not in spec.actions
                       and COMPONENTS[comp].fallback(a) is None]
            if missing:
                problems.append(f"components.{comp}: no energy for {', '.join(missing)} "
                                "(write 0 with a source if it is free or included elsewhere)")
        missing_comp = [c for c in COMPONENT_ACTIONS if c not in self.components]
        if missing_comp:
            problems.append(f"components: missing {', '.join(missing_comp)}")
        if problems:
            raise ValueError("; ".join(problems))
        return self
