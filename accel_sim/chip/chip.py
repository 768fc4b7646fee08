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

import threading
import time
import uuid
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Iterable, Mapping

import numpy as np
import simpy

from snn_frontend.spec import NetworkSpec
from snn_frontend.trace import SpikeTrace, active_stream

from .. import registry
from ..errors import ConfigError, RunError
from ..registry import Fidelity
from .counting import ChipCounter
from .des import SimpyTimer
from .event import EventTimer
from .instances import InstanceCounter, InstancePlan, add_instances
from .mapping import Mapping as ChipMapping
from .power import SramPower
from .timing import HwRates, TimestepTimer
from .topology import Topology

__all__ = ["Chip", "PhaseResult", "ShardedReplay", "active_warnings", "merge_totals",
           "replay_shard"]

for _f in (  # the built-in fidelities, fastest first
        Fidelity("timestep", barrier_free=False, timer=TimestepTimer,
                 description="cycles per step from the counts, lanes, ports and bandwidth"),
        Fidelity("event", barrier_free=False, timer=EventTimer,
                 description="every message through its links, SRAM ports, synapse lanes and "
                             "the DRAM channel as FIFO servers, in closed form (equals simpy)"),
        Fidelity("simpy", barrier_free=True, timer=SimpyTimer,
                 description="the discrete-event reference in SimPy; the only one for chips "
                             "without a per-step barrier")):
    registry.register_fidelity(_f)


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
    hardware: object = field(default=None, repr=False, compare=False)  # the chip it ran on
    # on-chip populations whose updates a `state` rule chip counted by `input`: the trace
    # had no `<population>:active` stream for them
    without_active: tuple[str, ...] = ()
    # a sampled replay (run.chip_sample): cycles are its estimate, this says how it was
    # made and its interval (chip/sampling.py); None: every presentation replayed in detail
    sampled: dict | None = None
    # per-instance counts and busy cycles (chip/instances.py); the first presentation's
    # cycles per step
    instances: dict | None = None
    first_step_cycles: list[int] = field(default_factory=list)

    def as_dict(self) -> dict:
        out = {"counts": self.counts, "cycles": self.cycles, "samples": self.samples,
               "presentations": self.presentations, "time_steps": self.time_steps,
               "without_active": list(self.without_active)}
        for key in ("sampled", "instances"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.first_step_cycles:
            out["first_step_cycles"] = self.first_step_cycles
        return out

    @property
    def warnings(self) -> list[str]:
        """What pricing these counts should say about them."""
        return active_warnings(self.without_active, self.hardware)


def active_warnings(populations, hw) -> list[str]:
    """The warning for populations a `state` update rule chip counted without the
    frontend's `:active` stream ([] when there are none)."""
    if not populations:
        return []
    name = getattr(hw, "name", "the chip")
    return [f"chip {name} counts a neuron update as active when the neuron's state changed "
            f"(cores.update_rule: state), but the trace has no ':active' stream for "
            f"{', '.join(populations)}: their updates were counted as active only when input "
            "reached them, so neuron-update energy and time are low for neurons that leak or "
            "hold a charge; run the network with a frontend that writes the stream (e.g. "
            "snn_frontend.sanafe_lif)"]


class Chip:
    def __init__(self, hw, spec: NetworkSpec, fidelity: str = "timestep",
                 placement: Mapping[str, np.ndarray] | None = None):
        fid = registry.fidelity(fidelity)
        if not hw.sync.barrier and not fid.barrier_free:
            free = [f.name for f in registry.fidelities().values() if f.barrier_free]
            raise ConfigError([f"the {fid.name} fidelity models chips with a barrier after "
                               f"every step; chip {hw.name} has none (sync.barrier: false): "
                               f"use fidelity {' or '.join(free)}"])
        self.hw, self.spec, self.fidelity, self.placement = hw, spec, fidelity, placement
        self.env = simpy.Environment()
        self.topology = Topology(hw)
        self.mapping = ChipMapping(spec, hw, placement)
        self.counter = ChipCounter(self.mapping, self.topology)
        self.rates = HwRates(hw, self.mapping, self.topology)
        self.instance_plan = InstancePlan(self)  # links and routes of the per-instance results
        self.power = SramPower.of(hw, self.mapping)  # SRAM bank states (None: always on)
        self.timer = fid.timer(self)
        self.token = uuid.uuid4().hex  # names this chip to the workers that rebuild it

    def phase(self, name: str, executor=None, sample=None):
        """A consumer that replays trace parts as they come (for streaming): here, or with
        an executor (accel_sim.executors) on its workers, shard by shard; with `sample`
        (config.ChipSample), a sample of the presentations at this fidelity and every one
        at the fastest (chip/sampling.py)."""
        if sample is not None:
            from .sampling import SampledReplay

            return SampledReplay(self, name, sample, executor)
        return PhaseReplay(self, name) if executor is None else ShardedReplay(self, name, executor)

    def recipe(self) -> dict:
        """What builds this chip again elsewhere (a worker replaying a shard), and the
        token under which the worker keeps what it built for the next shard."""
        return {"hw": self.hw, "spec": self.spec.to_dict(), "fidelity": self.fidelity,
                "placement": self.placement, "token": self.token}

    def replay(self, parts: Iterable[SpikeTrace] | SpikeTrace, name: str,
               executor=None, sample=None) -> PhaseResult:
        if isinstance(parts, SpikeTrace):
            parts = [parts]
        ph = self.phase(name, executor, sample)
        for part in parts:
            ph.consume(part)
        return ph.finish()


class PhaseReplay:
    worker_s = 0.0  # the replay runs in this process (ShardedReplay: its workers' seconds)

    def __init__(self, chip: Chip, name: str):
        self.chip = chip
        self.result = PhaseResult(name, hardware=chip.hw)  # cycles: this phase's own
        self._totals: Counter = Counter()
        self._without_active: set[str] = set()
        self._instances = InstanceCounter(chip)

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
        state_rule = chip.hw.cores.update_rule == "state"
        for pres in part:
            if state_rule:
                self._without_active.update(
                    q.name for q in chip.spec.chip_populations
                    if active_stream(q.name) not in pres.counts)
            counts, work = chip.counter.count(pres, learn=learn, learning=learning,
                                              state_reset=state_reset)
            for (kind, action), n in counts.items():
                self._totals[f"{kind}.{action}"] += n
            self._instances.add(pres, work, learn=learn, learning=learning,
                                state_reset=state_reset)
            before = chip.timer.events
            cycles = yield from chip.timer.presentation(pres, work)
            step_cycles = chip.timer.last_step_cycles
            if chip.power is not None:
                states = chip.power.presentation(pres, work, step_cycles)
                step_cycles = step_cycles + states.step_extra_cycles
                extra = int(states.step_extra_cycles.sum())
                if extra:  # the banks' wake-ups lengthen their steps
                    yield chip.env.timeout(extra)
                    cycles += extra
                for key, per_core in states.counts().items():
                    self._totals[key] += int(per_core.sum())
                self._instances.add_cores(states.counts())
            if not res.first_step_cycles:
                res.first_step_cycles = [int(c) for c in step_cycles]
            res.simpy_events += chip.timer.events - before
            res.presentation_cycles.append(int(cycles))
            res.cycles += int(cycles)
            res.presentations += 1
            res.time_steps += pres.n_steps
            if pres.attempt == 0:
                res.samples += 1

    def restore(self, state: dict) -> None:
        """Continue from a checkpointed PhaseResult (a resumed run)."""
        self._totals.update(state["counts"])
        r = self.result
        r.samples, r.presentations, r.time_steps, r.cycles, r.wall_s = (
            state["samples"], state["presentations"], state["time_steps"], state["cycles"],
            state.get("wall_s", 0.0))
        self._without_active.update(state.get("without_active", ()))
        if "instances" not in state:
            raise RunError("the checkpoint was written by an earlier version of "
                           "neuro-accel-sim (no per-instance counts): run the config again")
        self._instances.load(state["instances"])
        r.first_step_cycles = list(state["first_step_cycles"])

    def snapshot(self) -> dict:
        r = self.result
        return {"counts": dict(self._totals), "cycles": int(r.cycles),
                "samples": r.samples, "presentations": r.presentations,
                "time_steps": r.time_steps, "wall_s": r.wall_s,
                "without_active": sorted(self._without_active),
                "instances": self._instances.totals(dict(self._totals)),
                "first_step_cycles": list(r.first_step_cycles)}

    def totals(self) -> dict:
        """What this replay counted and timed, for another replay to `absorb`."""
        return dict(self.snapshot(), presentation_cycles=list(self.result.presentation_cycles),
                    simpy_events=self.result.simpy_events)

    def absorb(self, totals: dict) -> None:
        """Add a replay of the presentations that follow (a shard replayed elsewhere):
        counts, cycles and presentations add, as if they had been replayed here."""
        self._instances.load(add_instances(self._instances.totals(dict(self._totals)),
                                           totals["instances"]))
        self._totals.update(totals["counts"])
        self._without_active.update(totals["without_active"])
        r = self.result
        if not r.first_step_cycles:
            r.first_step_cycles = list(totals["first_step_cycles"])
        r.samples += totals["samples"]
        r.presentations += totals["presentations"]
        r.time_steps += totals["time_steps"]
        r.cycles += totals["cycles"]
        r.presentation_cycles += totals["presentation_cycles"]
        r.simpy_events += totals["simpy_events"]

    def finish(self) -> PhaseResult:
        r = self.result
        r.counts = dict(sorted(self._totals.items()))
        r.without_active = tuple(sorted(self._without_active))
        r.instances = self._instances.totals(r.counts)
        return r


def merge_totals(shards: list[dict]) -> dict:
    """The totals (PhaseReplay.totals) of consecutive shards of one phase, as one replay of
    them all would give."""
    counts: Counter = Counter()
    out = {"samples": 0, "presentations": 0, "time_steps": 0, "cycles": 0, "simpy_events": 0,
           "wall_s": 0.0, "presentation_cycles": [], "without_active": set(), "instances": None,
           "first_step_cycles": []}
    for t in shards:
        counts.update(t["counts"])
        out["instances"] = add_instances(out["instances"], t["instances"])
        out["first_step_cycles"] = out["first_step_cycles"] or t["first_step_cycles"]
        for key in ("samples", "presentations", "time_steps", "cycles", "simpy_events",
                    "wall_s"):
            out[key] += t[key]
        out["presentation_cycles"] += t["presentation_cycles"]
        out["without_active"] |= set(t["without_active"])
    return dict(out, counts=dict(counts), without_active=sorted(out["without_active"]))


class WorkerChips:
    """The chips a worker process built for shards, kept under the token of the chip they
    rebuild (Chip.recipe): the next shard of the same chip takes an idle one instead of
    building it again (~0.2 s on a 128-core chip, where a shard of 100 presentations
    replays in 0.05 s at `timestep`). A chip's replays are independent of what it
    replayed before (every presentation starts after a barrier, from its own counts), so
    a kept chip gives the result a new one would. Only the newest token's chips are
    kept; a chip in use by one thread (a Dask worker may run several) is not lent to
    another."""

    def __init__(self):
        self._lock = threading.Lock()
        self._token: str | None = None
        self._idle: list[Chip] = []

    def take(self, recipe: dict) -> Chip:
        with self._lock:
            if recipe["token"] == self._token and self._idle:
                return self._idle.pop()
        chip = Chip(recipe["hw"], NetworkSpec.from_dict(recipe["spec"]), recipe["fidelity"],
                    recipe["placement"])
        chip.token = recipe["token"]  # the chip it rebuilds
        return chip

    def give(self, chip: Chip) -> None:
        with self._lock:
            if chip.token != self._token:
                self._token, self._idle = chip.token, []
            self._idle.append(chip)


_WORKER_CHIPS = WorkerChips()  # a worker process's own (replay_shard runs in workers)


def replay_shard(job: dict) -> dict:
    """A worker's task: {"chip": Chip.recipe(), "phase": name, "trace": SpikeTrace} replayed
    on a chip of its own (built, or kept from a shard before: WorkerChips); its totals
    (PhaseReplay.totals). A barrier ends every presentation, so presentations replay
    independently: shards add up exactly."""
    chip = _WORKER_CHIPS.take(job["chip"])
    ph = chip.phase(job["phase"])
    ph.consume(job["trace"])
    out = ph.totals()
    out["wall_s"] = ph.result.wall_s
    _WORKER_CHIPS.give(chip)
    return out


class ShardedReplay:
    """A PhaseReplay whose parts the executor's workers replay: each part is cut into one
    shard per worker, each shard replayed on a chip of its own (`replay_shard`), and the
    shards' totals are added in order, so the result is the serial replay's, bit for bit.
    Submitting returns at once (the frontend goes on while the workers replay); `wall_s`
    is the time this process spent submitting and waiting, `worker_s` the workers'."""

    def __init__(self, chip: Chip, name: str, executor):
        self._local = PhaseReplay(chip, name)
        self.result = self._local.result
        self.executor = executor
        self._job = {"chip": chip.recipe(), "phase": name}
        self._pending: deque = deque()
        self.worker_s = 0.0

    def consume(self, part: SpikeTrace) -> None:
        chip = self._local.chip
        if part.spec != chip.spec:
            raise ValueError(f"the trace is of another network than the chip was built for "
                             f"({part.spec.names} vs {chip.spec.names})")
        t0 = time.perf_counter()
        for shard in part.shards(self.executor.workers):
            self._pending.append(self.executor.submit(replay_shard, dict(self._job, trace=shard)))
        # merge what is done; hold at most a few shards per worker in flight
        self._collect(keep=4 * self.executor.workers)
        self.result.wall_s += time.perf_counter() - t0

    def _collect(self, keep: int) -> None:
        """Absorb finished shards in order; wait while more than `keep` are pending."""
        while self._pending and (self._pending[0].done() or len(self._pending) > keep):
            totals = self._pending.popleft().result()
            self.worker_s += totals.pop("wall_s")
            self._local.absorb(totals)

    def _drain(self) -> None:
        """Wait for every shard in flight and absorb it (timed as this replay's)."""
        t0 = time.perf_counter()
        self._collect(keep=0)
        self.result.wall_s += time.perf_counter() - t0

    def snapshot(self) -> dict:
        self._drain()
        return self._local.snapshot()

    def restore(self, state: dict) -> None:
        self._local.restore(state)

    def finish(self) -> PhaseResult:
        self._drain()
        return self._local.finish()
