"""The Chip: one mapping, its components, one SimPy environment for simulated time.

Components only count named actions (picojoules live in the energy table).
`replay` is a SimPy process per phase: every presentation of the SpikeTrace is
counted (vectorised over its steps), its cycles come from the chosen fidelity,
and the environment advances by them; `env.now` is the chip's simulated time
in cycles.
"""
from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable

import numpy as np
import simpy

from snn_frontend.trace import SpikeTrace

from .counting import ChipCounter
from .latency import HwRates, _Topology, event_cycles, timestep_cycles
from .mapping import Mapping, NetworkShape

__all__ = ["Chip", "Component", "PhaseResult", "FIDELITIES"]

FIDELITIES = ("timestep", "event")


class Component:
    """A class of hardware blocks (all cores, all SRAMs, ...) and its action counts."""

    def __init__(self, kind: str, instances: int):
        self.kind, self.instances = kind, instances
        self.counts: Counter = Counter()

    def count(self, action: str, n: int) -> None:
        self.counts[action] += int(n)

    def __repr__(self) -> str:
        return f"Component({self.kind!r} x{self.instances})"


@dataclass
class PhaseResult:
    phase: str
    counts: dict[str, int] = field(default_factory=dict)  # "class.action" -> n
    cycles: int = 0
    samples: int = 0
    presentations: int = 0
    time_steps: int = 0
    wall_s: float = 0.0
    presentation_cycles: list[int] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"counts": self.counts, "cycles": self.cycles, "samples": self.samples,
                "presentations": self.presentations, "time_steps": self.time_steps}


class Chip:
    def __init__(self, hw, net: NetworkShape, fidelity: str = "timestep"):
        if fidelity not in FIDELITIES:
            raise ValueError(f"fidelity must be one of {FIDELITIES}")
        self.hw, self.net, self.fidelity = hw, net, fidelity
        self.env = simpy.Environment()
        self.mapping = Mapping(net, hw)
        self.counter = ChipCounter(self.mapping)
        self.rates = HwRates(hw, self.mapping)
        self._topo = _Topology(self.counter) if fidelity == "event" else None
        n = hw.cores.count
        self.components = {"core": Component("core", n), "sram": Component("sram", n),
                           "router": Component("router", n), "dram": Component("dram", 1),
                           "chip": Component("chip", 1)}

    # ----------------------------------------------------------------- replay
    def phase(self, name: str, *, learn: bool, reset_rest: bool) -> "PhaseReplay":
        """A consumer that replays trace parts as they come (for streaming)."""
        return PhaseReplay(self, name, learn, reset_rest)

    def replay(self, parts: Iterable[SpikeTrace], name: str, *, learn: bool,
               reset_rest: bool = True) -> PhaseResult:
        ph = self.phase(name, learn=learn, reset_rest=reset_rest)
        for part in parts:
            ph.consume(part)
        return ph.finish()

    def presentation_cycles(self, pres, work) -> np.ndarray:
        if self.fidelity == "event":
            return event_cycles(pres, work, self.counter, self.rates, self._topo)
        return timestep_cycles(work, self.rates, self.mapping)


class PhaseReplay:
    def __init__(self, chip: Chip, name: str, learn: bool, reset_rest: bool):
        self.chip, self.learn, self.reset_rest = chip, learn, reset_rest
        self.result = PhaseResult(name)  # cycles: this phase's own (phases may interleave)
        self._totals: Counter = Counter()
        self._samples: set[int] = set()

    def consume(self, part: SpikeTrace) -> None:
        chip = self.chip
        t0 = time.perf_counter()
        proc = chip.env.process(self._run(part))
        chip.env.run(until=proc)
        self.result.wall_s += time.perf_counter() - t0

    def _run(self, part: SpikeTrace):
        chip, res = self.chip, self.result
        for pres in part:
            counts, work = chip.counter.count(pres, learn=self.learn, reset_rest=self.reset_rest)
            for (comp, action), n in counts.items():
                chip.components[comp].count(action, n)
                self._totals[f"{comp}.{action}"] += n
            cycles = int(chip.presentation_cycles(pres, work).sum())
            res.presentation_cycles.append(cycles)
            res.cycles += cycles
            res.presentations += 1
            res.time_steps += pres.n_steps
            if pres.attempt == 0:
                res.samples += 1
            yield chip.env.timeout(cycles)

    def restore(self, state: dict) -> None:
        """Continue from a checkpointed PhaseResult (training resume)."""
        self._totals.update(state["counts"])
        r = self.result
        r.samples, r.presentations, r.time_steps, r.cycles = (
            state["samples"], state["presentations"], state["time_steps"], state["cycles"])

    def snapshot(self) -> dict:
        r = self.result
        return {"counts": dict(self._totals), "cycles": int(r.cycles),
                "samples": r.samples, "presentations": r.presentations,
                "time_steps": r.time_steps}

    def finish(self) -> PhaseResult:
        r = self.result
        r.counts = dict(sorted(self._totals.items()))
        return r
