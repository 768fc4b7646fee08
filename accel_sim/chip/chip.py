"""The Chip: one network spec mapped onto one chip, with one SimPy environment.

Components only count named actions (picojoules live in the energy table). A phase is
replayed presentation by presentation: every presentation of the SpikeTrace is counted
(vectorised over its steps) and timed by the chosen fidelity, and the environment's
clock advances by its cycles, so `env.now` is the chip's simulated time in cycles.
With `simpy` the presentation *is* a SimPy process: cores, messages and the barrier are
its events (chip/des.py); `event` computes exactly the same cycles in closed form
(chip/event.py) and `timestep` derives them from the counts (chip/timing.py).
"""
from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Mapping

import numpy as np
import simpy

from snn_frontend.spec import NetworkSpec
from snn_frontend.trace import SpikeTrace

from .counting import ChipCounter
from .des import SimpyChip
from .event import _levels, event_cycles
from .mapping import Mapping as ChipMapping
from .messages import DeliveryPlan
from .timing import HwRates, timestep_cycles
from .topology import Topology

__all__ = ["Chip", "PhaseResult", "FIDELITIES"]

#: timing fidelities, fastest first
FIDELITIES = ("timestep", "event", "simpy")


@dataclass
class PhaseResult:
    """Counts and simulated time of one phase on one chip (what pricing needs)."""

    phase: str
    counts: dict[str, int] = field(default_factory=dict)  # "kind.action" -> n
    cycles: int = 0
    samples: int = 0
    presentations: int = 0
    time_steps: int = 0
    wall_s: float = 0.0
    presentation_cycles: list[int] = field(default_factory=list)
    simpy_events: int = 0  # events the `simpy` fidelity processed (0 for the others)

    def as_dict(self) -> dict:
        return {"counts": self.counts, "cycles": self.cycles, "samples": self.samples,
                "presentations": self.presentations, "time_steps": self.time_steps}


class Chip:
    def __init__(self, hw, spec: NetworkSpec, fidelity: str = "timestep",
                 placement: Mapping[str, np.ndarray] | None = None):
        if fidelity not in FIDELITIES:
            raise ValueError(f"fidelity must be one of {', '.join(FIDELITIES)}")
        if fidelity == "event" and not hw.sync.barrier:
            raise ValueError("the event fidelity models barrier-synchronised chips; a chip "
                             "without a barrier (sync.barrier: false) needs fidelity simpy")
        self.hw, self.spec, self.fidelity = hw, spec, fidelity
        self.env = simpy.Environment()
        self.topology = Topology(hw)
        self.mapping = ChipMapping(spec, hw, placement)
        self.counter = ChipCounter(self.mapping, self.topology)
        self.rates = HwRates(hw, self.mapping, self.topology)
        self.plan = DeliveryPlan(self.counter, self.rates) if fidelity != "timestep" else None
        self._levels = _levels(self.plan) if fidelity == "event" else None
        self._des = (SimpyChip(self.env, self.plan, self.rates, hw.sync.barrier)
                     if fidelity == "simpy" else None)

    def phase(self, name: str) -> "PhaseReplay":
        """A consumer that replays trace parts as they come (for streaming)."""
        return PhaseReplay(self, name)

    def replay(self, parts: Iterable[SpikeTrace] | SpikeTrace, name: str) -> PhaseResult:
        if isinstance(parts, SpikeTrace):
            parts = [parts]
        ph = self.phase(name)
        for part in parts:
            ph.consume(part)
        return ph.finish()


class PhaseReplay:
    def __init__(self, chip: Chip, name: str):
        self.chip = chip
        self.result = PhaseResult(name)  # cycles: this phase's own (phases may interleave)
        self._totals: Counter = Counter()

    def consume(self, part: SpikeTrace) -> None:
        chip = self.chip
        if part.spec != chip.spec:
            raise ValueError(f"the trace is of another network than the chip was built for "
                             f"({part.spec.names} vs {chip.spec.names})")
        t0 = time.perf_counter()
        proc = chip.env.process(self._run(part))
        chip.env.run(until=proc)
        self.result.wall_s += time.perf_counter() - t0

    def _run(self, part: SpikeTrace):
        chip, res, meta = self.chip, self.result, part.meta
        learn = bool(meta.get("learn", False))
        learning = meta.get("learning", {})
        state_reset = bool(meta.get("state_reset", True))
        for pres in part:
            counts, work = chip.counter.count(pres, learn=learn, learning=learning,
                                              state_reset=state_reset)
            for (kind, action), n in counts.items():
                self._totals[f"{kind}.{action}"] += n
            if chip.fidelity == "simpy":
                before = chip._des.events
                cycles = yield chip.env.process(chip._des.presentation(pres, work))
                res.simpy_events += chip._des.events - before
            else:
                if chip.fidelity == "event":
                    steps = event_cycles(pres, work, chip.plan, chip.rates, chip._levels)
                else:
                    steps = timestep_cycles(work, chip.rates)
                cycles = int(steps.sum())
                yield chip.env.timeout(cycles)
            res.presentation_cycles.append(int(cycles))
            res.cycles += int(cycles)
            res.presentations += 1
            res.time_steps += pres.n_steps
            if pres.attempt == 0:
                res.samples += 1

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
