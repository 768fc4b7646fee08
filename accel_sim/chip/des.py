"""The `simpy` fidelity: a discrete-event model of the chip in SimPy.

Every core is a SimPy process that steps through the presentation, and so is the input
port. Messages are events: a message's arrival at a link, and a job's arrival at its
destination core, are arrivals at whole-cycle times, kept in a calendar and run after
every other event of their cycle (every process resumed at that cycle), ordered among
themselves by the unit keys of chip/messages.py. The model uses SimPy's public API only
(timeouts, events, processes, `Environment.peek`). The resources (each core's network interface and the input port's, every link
between tiles, each core's synapse lanes and SRAM ports, the DRAM channel) are
deterministic FIFO servers: an arriving unit starts at max(now, the resource's
busy-until time), holds it for its service time (the service times of the `event`
fidelity, whose closed form this model checks exactly), and schedules its next event.

Synchronisation:
- `sync.barrier: true`: a barrier ends every step. A core that has done its step's jobs
  and its learning arrives at the barrier; its arrival cycle is known when its last job
  is served, so it is recorded, not scheduled, and the barrier releases every core (an
  event per step) `barrier_cycles` after the last arrival. `event` computes exactly
  these cycles.
- `sync.barrier: false`: no barrier. A core starts step t+1 as soon as its own step t is
  done (neuron phase, every job it receives for step t, learning); messages of a later
  step that reach a core still busy with an earlier one wait in its input queue. The
  input port sends step t's spikes once every core has finished its step-t neuron phase.
  Only this fidelity models it.
Presentations are separated: the next starts when every core has finished the last.
"""
from __future__ import annotations

import heapq
from collections import defaultdict

import numpy as np
import simpy

from snn_frontend.trace import Presentation

from .counting import StepWork
from .messages import DeliveryPlan
from .timing import HwRates, learn_cycles_per_core, pass_cycles

__all__ = ["SimpyChip", "SimpyTimer"]

class _Server:
    """A deterministic FIFO resource: busy until `busy`; `take` returns the start time."""

    __slots__ = ("busy",)

    def __init__(self):
        self.busy = 0

    def take(self, now: int, service: int) -> int:
        start = now if now > self.busy else self.busy
        self.busy = start + service
        return start


class _Calendar:
    """Arrivals at whole cycles, run after every other event of their cycle, in (key,
    order of scheduling) order: one timeout per cycle with arrivals, which defers itself
    while the environment holds other events at that cycle (a process resumed by an
    arrival runs before the next arrival, as a process of that cycle would)."""

    def __init__(self, env: simpy.Environment):
        self.env = env
        self.by_cycle: dict[int, list] = {}
        self.seq = 0

    def at(self, when: int, key: int, fn, a: int, b: int = 0, c: int = 0) -> None:
        heap = self.by_cycle.get(when)
        if heap is None:
            heap = self.by_cycle[when] = []
            self._arm(when, when - self.env.now)
        heapq.heappush(heap, (key, self.seq, fn, a, b, c))
        self.seq += 1

    def _arm(self, when: int, delay: int) -> None:
        self.env.timeout(delay).callbacks.append(lambda _ev: self._drain(when))

    def _drain(self, when: int) -> None:
        """Run the arrivals of cycle `when` (now), each as fn(now, a, b, c)."""
        peek, heap, pop = self.env.peek, self.by_cycle[when], heapq.heappop
        while heap:
            if peek() == when:  # other events of this cycle go first
                self._arm(when, 0)
                return
            _, _, fn, a, b, c = pop(heap)
            fn(when, a, b, c)
        del self.by_cycle[when]


def _slices(keys: np.ndarray, n_keys: int, ids: np.ndarray) -> tuple[list[int], list[int]]:
    """Group `ids` by `keys` (0 <= key < n_keys): (ptr, ids sorted by key, stable), the
    ids of key k being ids[ptr[k]:ptr[k + 1]] (plain lists: sliced once per event)."""
    order = np.argsort(keys, kind="stable")
    ptr = np.zeros(n_keys + 1, np.int64)
    np.cumsum(np.bincount(keys, minlength=n_keys), out=ptr[1:])
    return ptr.tolist(), ids[order].tolist()


def _after(env: simpy.Environment, delay: int, fn) -> None:
    """Call fn() `delay` cycles from now, as an event of that cycle."""
    env.timeout(delay).callbacks.append(lambda _ev: fn())


class _Barrier:
    """The per-step barrier: releases every core `cycles` after the last one arrives."""

    def __init__(self, env: simpy.Environment, parties: int, cycles: int, steps: int):
        self.env, self.parties, self.cycles = env, parties, cycles
        self.arrived = [0] * steps
        self.latest = [0] * steps  # the last arrival so far at each step's barrier
        self.release = [env.event() for _ in range(steps)]
        self.released_at = [0] * steps  # the cycle each step ends

    def arrive_at(self, t: int, when: int) -> None:
        """A core will reach step t's barrier at cycle `when` (>= now). Nothing but the
        barrier waits on an arrival, so it is a number, not an event: once every core has
        said when, the release is scheduled `cycles` after the last of them."""
        self.arrived[t] += 1
        if when > self.latest[t]:
            self.latest[t] = when
        if self.arrived[t] == self.parties:
            self.released_at[t] = self.latest[t] + self.cycles
            _after(self.env, self.released_at[t] - self.env.now, self.release[t].succeed)


class SimpyChip:
    """The chip's resources in one SimPy environment; `presentation` is a process."""

    def __init__(self, env: simpy.Environment, plan: DeliveryPlan, r: HwRates, barrier: bool):
        self.env, self.plan, self.r, self.barrier = env, plan, r, barrier
        C = plan.cc.m.n_cores
        self.C = C
        self.out = [_Server() for _ in range(C + 1)]  # cores' network interfaces + the port
        self.links = [_Server() for _ in range(plan.n_links)]
        self.cores = [_Server() for _ in range(C)]
        self.dram = _Server()
        # per template: its link ids, and the positions that follow each position (-1: source)
        self.tpl_links = [tpl.links.tolist() for tpl in plan.templates]
        self.children = []
        for tpl in plan.templates:
            ch = defaultdict(list)
            for pos, par in enumerate(tpl.parents.tolist()):
                ch[par].append(pos)
            self.children.append(dict(ch))
        self._link_lat = plan.link_lat.tolist()
        self._calendar = _Calendar(env)
        # an arrival at cycle `when`, after every process resumed at that cycle and after
        # arrivals of lower priority (unit key x cores + core: see chip/messages.py)
        self._at = self._calendar.at

    @property
    def events(self) -> int:
        """Arrivals the model scheduled (for the events-per-second figure)."""
        return self._calendar.seq

    # ------------------------------------------------------------- presentation
    def presentation(self, p: Presentation, work: StepWork):
        """SimPy process: one presentation; its value is the presentation's cycles."""
        env, r, C = self.env, self.r, self.C
        T = p.n_steps
        t0 = env.now
        dl = self.plan.presentation(p, work.spike_soma)
        nc = r.neuron_phase(work)
        self._nc = nc.tolist()  # (T, C) neuron phase of each core
        self._most = nc.max(axis=1, initial=0).tolist()
        self._msg_soma, self._job_soma = dl.msg_soma.tolist(), dl.job_soma.tolist()
        # per job, as Python lists (indexed once per event)
        self._key, self._core, self._step = (dl.job_key.tolist(), dl.job_core.tolist(),
                                             dl.job_step.tolist())
        self._job_prio = (dl.job_key * C + dl.job_core).tolist()  # among a cycle's arrivals
        self._svc = r.service_cycles(dl.job_syn, dl.job_words, dl.job_synop_cycles).tolist()
        self._read = np.where(dl.job_words > 0, r.read_lat, 0).tolist()
        self._dsvc = np.where(dl.job_dram_bits > 0, r.dram_cycles(
            dl.job_dram_bits, (dl.job_dram_words > 0).astype(np.int64)), 0).tolist()
        self._msg_key = dl.msg_key.tolist()
        self._msg_tpl = dl.msg_template.tolist()
        self._learn = learn_cycles_per_core(work, r).tolist()
        # jobs expected per (step, core); messages and local jobs per (step, source)
        self._pending = np.bincount(dl.job_step * C + dl.job_core, minlength=T * C).tolist()
        # messages and local jobs of each (step, source: a core, or -1 the port), and the
        # jobs reached from each (message, leaf position: -1 its source), as slices of one
        # list each (ascending within a slice): key -> ids[ptr[key]:ptr[key + 1]]
        self._msgs = _slices(dl.msg_step * (C + 1) + dl.msg_src_core + 1, T * (C + 1),
                             np.arange(len(dl.msg_step)))
        local = dl.job_msg < 0
        self._local = _slices((dl.job_step * (C + 1) + dl.job_src_core + 1)[local],
                              T * (C + 1), np.flatnonzero(local))
        self._leaves = int(dl.job_leaf.max(initial=-1)) + 2
        self._via = _slices((dl.job_msg * self._leaves + dl.job_leaf + 1)[~local],
                            len(dl.msg_step) * self._leaves, np.flatnonzero(~local))
        passes = pass_cycles(work, r)
        if passes:
            yield env.timeout(passes)
        self._step_of = [-1] * C  # the step each core is in
        self._end = [0] * (T * C)  # when each core's jobs of a step are done
        self._queued = defaultdict(list)  # jobs that reached a core before their step began
        self._waiting = {}  # step * C + core -> event: a core waits for its jobs of the step
        self._armed = [False] * (T * C)  # with the barrier: the core goes there when done
        self._neuron_done = [[env.event() for _ in range(C)] for _ in range(T)] if not self.barrier else None
        barrier = _Barrier(env, C, r.barrier, T) if self.barrier else None
        self._barrier = barrier
        self._step_end = [0] * T  # without the barrier: when the last core ends each step
        port = env.process(self._port(T, barrier))
        if barrier is not None:  # every core starts its step at the release: one process
            cores = [env.process(self._cores_in_step(T, barrier))]
        else:
            cores = [env.process(self._core_steps(c, T)) for c in range(C)]
        yield simpy.AllOf(env, cores + [port])
        ends = barrier.released_at if barrier is not None else self._step_end
        self.last_step_cycles = np.diff([t0] + ends)
        return env.now - t0

    # ------------------------------------------------------------------ cores
    def _begin_step(self, t: int, c: int, now: int) -> int:
        """Core c begins step t at `now`: its neuron phase, then (or, without blocking, as
        its neurons fire) its spikes' local jobs and messages; returns when the neuron
        phase (and the chain of sends, without blocking) is over."""
        nc = self._nc[t][c]
        self._step_of[c] = t
        if self.r.soma_blocks:  # the neuron phase holds the core's synapse pipeline, then it sends
            end = self.cores[c].take(now, nc) + nc
            self._inject(t, c, end, now)
        else:  # messages leave as neurons fire; the chain of soma work and sends ends
            ptr = self._msgs[0]
            k = t * (self.C + 1) + c + 1
            end = now + nc + self.r.message_cycles * (ptr[k + 1] - ptr[k])
            self._inject(t, c, None, now)
        i = t * self.C + c
        self._end[i] = max(self._end[i], end)
        return end

    def _cores_in_step(self, T: int, barrier: _Barrier):
        """With the barrier: at each release every core begins its step, in core order, and
        goes to the barrier when its last job and its learning are done (a cycle told to
        the barrier); one process sleeps until the next release."""
        C = self.C
        for t in range(T):
            now = self.env.now
            for c in range(C):
                self._begin_step(t, c, now)
                i = t * C + c
                self._armed[i] = True
                if self._pending[i] == 0:
                    self._to_barrier(i)
            yield barrier.release[t]

    def _core_steps(self, c: int, T: int):
        """Without the barrier, core c: per step, the neuron phase, its spikes' messages,
        its jobs, learning, and straight on to the next step."""
        env, C = self.env, self.C
        for t in range(T):
            now = env.now
            end = self._begin_step(t, c, now)
            for _, _, j in sorted(self._queued.pop((t, c), ())):
                self._serve_job(j, now)
            if end > now:
                yield env.timeout(end - now)
            self._neuron_done[t][c].succeed()
            yield from self._jobs_done(t, c)
            finish = self._end[t * C + c] + self._learn[t][c]
            if finish > env.now:
                yield env.timeout(finish - env.now)
            self._step_end[t] = max(self._step_end[t], env.now)

    def _to_barrier(self, i: int) -> None:
        """Core and step `i` (t * C + c) arrive at the barrier once learning is done."""
        t, c = divmod(i, self.C)
        self._barrier.arrive_at(t, max(self._end[i], self.env.now) + self._learn[t][c])

    def _port(self, T: int, barrier: _Barrier | None):
        """The input port: step t's input spikes leave once the cores' neuron phase is over
        (with the barrier: the longest neuron phase after the step starts)."""
        env = self.env
        for t in range(T):
            if barrier is None:
                yield simpy.AllOf(env, self._neuron_done[t])
            elif self._most[t] and self.r.soma_blocks:
                yield env.timeout(self._most[t])
            self._inject(t, -1, env.now, env.now)
            if barrier is not None and t + 1 < T:
                yield barrier.release[t]

    def _inject(self, t: int, src: int, when: int | None, start: int) -> None:
        """Local jobs and messages of source `src` (a core, or -1: the port) at step t, ready
        at `when`, or (None) as each neuron fires after the step's `start`, the soma waiting
        while its core sends; the messages leave one after another through its network
        interface."""
        r = self.r
        k = t * (self.C + 1) + src + 1
        ptr, ids = self._local
        for j in ids[ptr[k]:ptr[k + 1]]:
            self._at(when if when is not None else start + self._job_soma[j],
                     self._job_prio[j], self._arrive_job, j)
        ptr, ids = self._msgs
        msgs = ids[ptr[k]:ptr[k + 1]]
        if not msgs:
            return
        server = self.out[src if src >= 0 else self.C]
        svc, lat = r.out_service, r.message_cycles
        via_ptr, via_ids = self._via
        at, prio, arrive_job = self._at, self._job_prio, self._arrive_job
        for k, m in enumerate(msgs):
            ready = when if when is not None else start + self._msg_soma[m] + r.message_cycles * k
            depart = server.take(ready, svc) + lat
            tpl = self._msg_tpl[m]
            key = self._msg_key[m] * self.C
            for pos in self.children[tpl].get(-1, ()):
                self._at(depart, key, self._arrive_link, m, tpl, pos)
            v = m * self._leaves
            for j in via_ids[via_ptr[v]:via_ptr[v + 1]]:
                at(depart, prio[j], arrive_job, j)

    def _jobs_done(self, t: int, c: int):
        """Wait until core c has done every job of step t (the job that completes them
        wakes the core at once; the core then waits for their end)."""
        i = t * self.C + c
        if self._pending[i]:
            ev = self._waiting[i] = self.env.event()
            yield ev
        yield self.env.timeout(max(self._end[i] - self.env.now, 0))

    # ------------------------------------------------------------- callbacks
    def _arrive_link(self, now: int, m: int, tpl: int, pos: int) -> None:
        r = self.r
        lid = self.tpl_links[tpl][pos]
        depart = self.links[lid].take(now, r.flits) + self._link_lat[lid]
        key = self._msg_key[m] * self.C
        for child in self.children[tpl].get(pos, ()):
            self._at(depart, key, self._arrive_link, m, tpl, child)
        ptr, ids = self._via
        v = m * self._leaves + pos + 1
        prio = self._job_prio
        for j in ids[ptr[v]:ptr[v + 1]]:
            self._at(depart, prio[j], self._arrive_job, j)

    def _arrive_job(self, now: int, j: int, _b: int = 0, _c: int = 0) -> None:
        c, t = self._core[j], self._step[j]
        if t > self._step_of[c]:  # no barrier: the core is still in an earlier step
            self._queued[t, c].append((now, self._key[j], j))
            return
        self._serve_job(j, now)

    def _serve_job(self, j: int, now: int) -> None:
        c, i = self._core[j], self._step[j] * self.C + self._core[j]
        svc = self._svc[j]
        done = self.cores[c].take(now, svc) + svc + self._read[j]
        dsvc = self._dsvc[j]
        if dsvc:
            done = max(done, self.dram.take(now, dsvc) + dsvc)
        if done > self._end[i]:
            self._end[i] = done
        self._pending[i] -= 1
        if self._pending[i] == 0:
            if self._armed[i]:
                self._to_barrier(i)
            elif i in self._waiting:  # else the core finds them done when it asks
                self._waiting.pop(i).succeed()


class SimpyTimer:
    """The `simpy` fidelity as the chip drives it: each presentation a SimPy process in
    the chip's environment."""

    def __init__(self, chip):
        self.env = chip.env
        self.plan = DeliveryPlan(chip.counter, chip.rates)
        self.des = SimpyChip(chip.env, self.plan, chip.rates, chip.hw.sync.barrier)

    @property
    def events(self) -> int:
        return self.des.events

    @property
    def last_step_cycles(self):
        """Cycles of each step of the last presentation (from one step's end to the next)."""
        return self.des.last_step_cycles

    def presentation(self, p: Presentation, work: StepWork):
        """SimPy process body (driven with `yield from`): returns the presentation's cycles."""
        return (yield self.env.process(self.des.presentation(p, work)))
