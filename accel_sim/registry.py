"""The registries: every component kind, every action it counts, and every phase, once.

Everything else (the energy-table schema, pricing, the chip's counters, the plots, the
tables) reads these. Adding an action means adding it here, defining it in
`docs/chip.md`, and giving it an energy in every shipped table (`configs/energy/`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

__all__ = ["ComponentKind", "COMPONENTS", "COMPONENT_ACTIONS", "PHASES", "LEARNING_PHASES",
           "instances", "action_width_bits"]


@dataclass(frozen=True)
class ComponentKind:
    """A class of hardware blocks: what it counts, how many the chip has, how it is drawn."""

    name: str
    actions: tuple[str, ...]
    count: Callable[[object], int]  # instances on a chip (hardware config -> n)
    color: str  # in the energy plots
    description: str


def _cores(hw) -> int:
    return hw.cores.count


def _tiles(hw) -> int:
    return hw.cores.count // hw.cores.cores_per_tile


def _one(hw) -> int:
    return 1


COMPONENTS: dict[str, ComponentKind] = {c.name: c for c in (
    ComponentKind("core", ("synop", "neuron_update_active", "neuron_update_idle", "spike_out",
                           "stdp_update", "trace_update", "threshold_update", "normalise_op",
                           "decay_op", "surrogate_eval", "weight_grad_add", "weight_grad_mac",
                           "input_grad_mac", "optimizer_op"),
                  _cores, "#1f77b4", "neuron and synapse arithmetic of every core"),
    ComponentKind("sram", ("read_word", "write_word"), _cores, "#ff7f0e",
                  "each core's weight memory"),
    ComponentKind("dram", ("read_bit", "write_bit", "activate"), _one, "#d62728",
                  "off-chip memory holding the weights that do not fit in SRAM"),
    ComponentKind("router", ("hop_ew", "hop_ns", "local_delivery", "inject"), _tiles, "#2ca02c",
                  "one router per tile and the links of the mesh"),
    ComponentKind("chip", ("input_spike", "barrier"), _one, "#9467bd",
                  "the input port and the time-step barrier"),
)}

#: component kind -> the actions it counts
COMPONENT_ACTIONS: dict[str, tuple[str, ...]] = {k: c.actions for k, c in COMPONENTS.items()}

#: the phases of a run, in order
PHASES: tuple[str, ...] = ("train", "label", "infer")
#: phases in which the network learns
LEARNING_PHASES: frozenset[str] = frozenset({"train"})


def instances(hw) -> dict[str, int]:
    """How many blocks of each kind a chip has (static power scales with it)."""
    return {k: c.count(hw) for k, c in COMPONENTS.items()}


def action_width_bits(kind: str, action: str, hw) -> int | None:
    """The width a per-bit energy is multiplied by: an SRAM word, a NoC packet; DRAM
    read/write bits are counted one by one (width 1); None where per-bit makes no sense."""
    if kind == "sram":
        return hw.sram.word_bits
    if kind == "router":
        return hw.noc.packet_bits
    if kind == "dram" and action != "activate":
        return 1
    return None
