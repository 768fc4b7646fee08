"""The registries, each in this one place: component kinds and the actions they count,
the phases of a run, the chip's timing fidelities and the network families.

Everything else reads these: the config schema is generated from them (fidelities,
phases, families' sections), the energy-table schema, pricing, the chip's counters, the
plots and the tables. Component kinds and phases are fixed here; fidelities and network
families are plug-ins that register themselves when their module is imported (the
package imports the built-in ones):

    register_fidelity(Fidelity("event", barrier_free=False, description=..., timer=EventTimer))
    register_family(StdpFamily())

Adding an action means adding it here, defining it in `docs/chip.md`, and giving it an
energy in every shipped table (`configs/energy/`), or naming in its kind's `priced_as`
the action a table that leaves it out prices it as (the synapse units `synop_sparse` and
`synop_conv` are priced as `synop` there). docs/architecture.md has the recipes.
"""
from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass
from typing import Any, Callable

from .errors import ConfigError

__all__ = ["ComponentKind", "COMPONENTS", "COMPONENT_ACTIONS", "DURATIONS", "PHASES", "LEARNING_PHASES",
           "instances", "action_width_bits", "Fidelity", "register_fidelity", "fidelities",
           "fidelity", "register_family", "unregister_family", "families", "family_of",
           "model_names", "generation", "DEFAULT_MODEL", "plugin_modules", "import_plugins"]


# ------------------------------------------------------------------ component kinds
@dataclass(frozen=True)
class ComponentKind:
    """A class of hardware blocks: what it counts, how many the chip has, how it is drawn."""

    name: str
    actions: tuple[str, ...]
    count: Callable[[object], int]  # instances on a chip (hardware config -> n)
    color: str  # in the energy plots
    description: str
    # actions a table may leave out: they are then priced as the named action
    priced_as: tuple[tuple[str, str], ...] = ()
    # time its instances' units spend in low-power states, counted like actions (unit-
    # cycles, name -> state: "retention" or "off") and priced as static power saved
    durations: tuple[tuple[str, str], ...] = ()
    units: Callable[[object], int] | None = None  # an instance's units (a core's SRAM banks)

    def fallback(self, action: str) -> str | None:
        """The action an omitted `action` is priced as (None: the table must price it)."""
        return dict(self.priced_as).get(action)


def _cores(hw) -> int:
    return hw.n_cores


def _tiles(hw) -> int:
    return hw.n_cores // hw.cores.cores_per_tile


def _one(hw) -> int:
    return 1


def _chips(hw) -> int:
    return hw.n_chips


COMPONENTS: dict[str, ComponentKind] = {c.name: c for c in (
    ComponentKind("core", ("synop", "synop_sparse", "synop_conv", "neuron_update_active",
                           "neuron_update_idle", "spike_out",
                           "stdp_update", "trace_update", "threshold_update", "normalise_op",
                           "decay_op", "surrogate_eval", "weight_grad_add", "weight_grad_mac",
                           "input_grad_mac", "optimizer_op"),
                  _cores, "#1f77b4", "neuron and synapse arithmetic of every core",
                  # a table without per-kind synapse units prices them all as synop
                  priced_as=(("synop_sparse", "synop"), ("synop_conv", "synop"))),
    ComponentKind("sram", ("read_word", "write_word", "wake"), _cores, "#ff7f0e",
                  "each core's weight memory (its banks: on, in retention or off)",
                  durations=(("retention_bank_cycles", "retention"), ("off_bank_cycles", "off")),
                  units=lambda hw: hw.sram.banks),
    ComponentKind("dram", ("read_bit", "write_bit", "activate", "precharge", "row_hit"), _one,
                  "#d62728",
                  "off-chip memory holding the weights that do not fit in SRAM (one per system)"),
    ComponentKind("router", ("hop_ew", "hop_ns", "hop_chip", "local_delivery", "inject"), _tiles,
                  "#2ca02c", "one router per tile, the links of the mesh and between chips"),
    ComponentKind("chip", ("input_spike", "barrier"), _chips, "#9467bd",
                  "each chip's pads and clock; the input port and the time-step barrier"),
)}

#: component kind -> the actions it counts
COMPONENT_ACTIONS: dict[str, tuple[str, ...]] = {k: c.actions for k, c in COMPONENTS.items()}
#: "kind.duration" keys of the counts (time in a low-power state, not actions) -> state
DURATIONS: dict[str, str] = {f"{k}.{d}": state for k, c in COMPONENTS.items()
                             for d, state in c.durations}


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
    if kind == "dram" and action in ("read_bit", "write_bit"):
        return 1
    return None


# ------------------------------------------------------------------------- phases
#: the phases of a run, in order
PHASES: tuple[str, ...] = ("train", "label", "infer")
#: phases in which the network learns (the chip needs a learning unit for them)
LEARNING_PHASES: frozenset[str] = frozenset({"train"})


# ---------------------------------------------------------- plug-in registries
_FIDELITIES: dict[str, "Fidelity"] = {}
_FAMILIES: dict[str, Any] = {}  # family name -> NetworkFamily (accel_sim/run/family.py)
_MODELS: dict[str, str] = {}  # network.model -> family name
_generation = [0]  # bumped at every registration: generated schemas are rebuilt
_entry_points_read = [False]

#: the `network.model` of a config that names none
DEFAULT_MODEL = "diehl_cook"


def generation() -> int:
    """Changes whenever a fidelity or family is (un)registered."""
    return _generation[0]


@dataclass(frozen=True)
class Fidelity:
    """A timing model of the chip. `timer(chip)` returns an object whose
    `presentation(pres, work)` is a SimPy process returning the presentation's cycles."""

    name: str
    barrier_free: bool  # can it model a chip without a per-step barrier (sync.barrier: false)?
    description: str
    timer: Callable[[Any], Any]


def register_fidelity(f: Fidelity) -> Fidelity:
    if f.name in _FIDELITIES and _FIDELITIES[f.name] is not f:
        raise ValueError(f"fidelity {f.name!r} is registered already")
    _FIDELITIES[f.name] = f
    _generation[0] += 1
    return f


def fidelities() -> dict[str, Fidelity]:
    """The registered fidelities, fastest first (in registration order)."""
    _installed_plugins()
    return dict(_FIDELITIES)


def fidelity(name: str) -> Fidelity:
    _installed_plugins()
    try:
        return _FIDELITIES[name]
    except KeyError:
        raise ConfigError([f"unknown fidelity {name!r}; known: {', '.join(_FIDELITIES)}"]) from None


def register_family(family: Any) -> Any:
    """Register a network family (an object with `name`, `models`, `network_config`,
    `learning_config`, ...: accel_sim/run/family.py). Its models become `network.model`
    values of every config from now on."""
    for attr in ("name", "models", "network_config", "learning_config"):
        if not hasattr(family, attr):
            raise TypeError(f"a network family needs `{attr}` (see accel_sim/run/family.py)")
    if family.name in _FAMILIES:
        raise ValueError(f"network family {family.name!r} is registered already")
    taken = [m for m in family.models if m in _MODELS]
    if taken:
        raise ValueError(f"network.model {', '.join(taken)} belongs to family "
                         f"{_MODELS[taken[0]]!r} already")
    _FAMILIES[family.name] = family
    _MODELS.update({m: family.name for m in family.models})
    _generation[0] += 1
    return family


def unregister_family(name: str) -> None:
    family = _FAMILIES.pop(name)
    for m in family.models:
        _MODELS.pop(m, None)
    _generation[0] += 1


def plugin_modules() -> tuple[str, ...]:
    """The modules outside this package that registered a family or fidelity: a worker
    process imports them (import_plugins) before it reads a config. (Installed plug-ins
    register through the `accel_sim.plugins` entry point group on import anyway.)"""
    mods = [type(f).__module__ for f in _FAMILIES.values()]
    mods += [getattr(f.timer, "__module__", "") for f in _FIDELITIES.values()]
    return tuple(dict.fromkeys(m for m in mods if m and not m.startswith(("accel_sim.",
                                                                          "__main__"))))


def import_plugins(modules) -> None:
    """Import the modules that register plug-ins (those not registered yet)."""
    for name in modules:
        importlib.import_module(name)


def _installed_plugins() -> None:
    """Import the installed plug-ins once, on first use of a plug-in registry: the modules
    named by the `accel_sim.plugins` entry point group (a package's
    `[project.entry-points."accel_sim.plugins"]`)."""
    if _entry_points_read[0]:
        return
    _entry_points_read[0] = True
    from importlib.metadata import entry_points

    for ep in entry_points(group="accel_sim.plugins"):
        ep.load()


def families() -> dict[str, Any]:
    """The registered families by name."""
    _installed_plugins()
    return dict(_FAMILIES)


def model_names() -> tuple[str, ...]:
    """Every `network.model` some registered family answers."""
    _installed_plugins()
    return tuple(_MODELS)


def family_of(model: str) -> Any:
    """The family that runs `network.model` = model (a config, or the name)."""
    if not isinstance(model, str):
        model = model.network.model
    _installed_plugins()
    name = _MODELS.get(model)
    if name is None:
        close = difflib.get_close_matches(model, list(_MODELS), n=1, cutoff=0.6)
        raise ConfigError([f"network.model: unknown model {model!r}"
                           + (f"; did you mean {close[0]!r}?" if close else "")
                           + f" (known: {', '.join(_MODELS)})"])
    return _FAMILIES[name]
