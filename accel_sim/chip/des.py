"""The `simpy` fidelity: a discrete-event model of the chip in SimPy.

A presentation is a SimPy process in the chip's environment. Its messages and jobs are
entries of a calendar (chip/arrivals.py; compiled in ext/des_kernels.pyx): a message's
arrival at a link, a job's arrival at its destination core, at whole-cycle times, run
after every other event of their cycle, ordered among themselves by the unit keys of
chip/messages.py. SimPy drives the calendar: a timeout at its earliest entry, which runs
every entry before the environment's next event. The resources (each core's network
interface and the input port's, every link between tiles, each core's synapse lanes and
SRAM ports, the DRAM channel) are deterministic FIFO servers: an arriving unit starts at
max(now, the resource's busy-until time), holds it for its service time (the service
times of the `event` fidelity, whose closed form this model checks exactly), and
schedules its next arrival.

Synchronisation:
- `sync.barrier: true`: a barrier ends every step. One process begins every core's step
  at the barrier's release, and the input port is a process that sends each step's input
  spikes after the longest neuron phase. A core that has done its step's jobs and its
  learning arrives at the barrier; its arrival cycle is known when its last job is
  served, so it is recorded, not scheduled, and the barrier releases every core (an
  event per step) `barrier_cycles` after the last arrival. `event` computes exactly these
  cycles.
- `sync.barrier: false`: no barrier. A core starts step t+1 as soon as its own step t is
  done (neuron phase, every job it receives for step t, learning); messages of a later
  step that reach a core still busy with an earlier one wait in its input queue. The
  input port sends step t's spikes once every core has finished its step-t neuron phase.
  The cores and the port are entries of the calendar too (a core's neuron phase over,
  its jobs done, its learning done; the port's step), each run before the arrivals of
  its cycle, as a process resumed at that cycle would be; the presentation's process
  waits for the last core. Only this fidelity models it.
Presentations are separated: the next starts when every core has finished the last.
"""
from __future__ import annotations

import numpy as np
import simpy

from snn_frontend._backend import kernels
from snn_frontend.trace import Presentation

from .counting import StepWork
from .arrivals import template_tables
from .event import job_dram_cycles
from .messages import DeliveryPlan
from .timing import HwRates, learn_cycles_per_core, pass_cycles

__all__ = ["SimpyChip", "SimpyTimer"]

def _slices(keys: np.ndarray, n_keys: int, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Group `ids` by `keys` (0 <= key < n_keys): (ptr, ids sorted by key, stable), the
    ids of key k being ids[ptr[k]:ptr[k + 1]]."""
    order = np.argsort(keys, kind="stable")
    ptr = np.zeros(n_keys + 1, np.int64)
    np.cumsum(np.bincount(keys, minlength=n_keys), out=ptr[1:])
    return ptr, np.ascontiguousarray(ids[order], np.int64)


def des_work(plan: DeliveryPlan, r: HwRates, node_base: np.ndarray, p: Presentation,
             work: StepWork) -> dict:
    """One presentation's jobs and messages as int64 arrays (the calendar's input): per
    job its priority among a cycle's arrivals (unit key x cores + core), core, step,
    service, SRAM read latency and DRAM cycles, soma position; per message its priority,
    template's source node and soma position; per (step, core) the neuron phase, learning
    and jobs expected; and as CSR slices, the messages and local jobs of each (step,
    source: a core, or -1 the port) and the jobs reached from each (message, leaf
    position + 1)."""
    C, T = plan.cc.m.n_cores, p.n_steps
    dl = plan.presentation(p, work.spike_soma)
    i64 = lambda a: np.ascontiguousarray(a, np.int64)  # noqa: E731
    w = {"job_prio": i64(dl.job_key * C + dl.job_core), "job_core": i64(dl.job_core),
         "job_step": i64(dl.job_step), "job_soma": i64(dl.job_soma),
         "job_svc": i64(r.service_cycles(dl.job_syn, dl.job_words, dl.job_synop_cycles)),
         "job_read": i64(np.where(dl.job_words > 0, r.read_lat, 0)),
         "job_dsvc": i64(job_dram_cycles(dl, work, r, C)),
         "msg_key": i64(dl.msg_key), "msg_node": i64(node_base[dl.msg_template]),
         "msg_soma": i64(dl.msg_soma),
         "nc": i64(r.neuron_phase(work).ravel()),
         "learn": i64(learn_cycles_per_core(work, r).ravel()),
         "pending": i64(np.bincount(dl.job_step * C + dl.job_core, minlength=T * C))}
    w["msgs_ptr"], w["msgs_ids"] = _slices(dl.msg_step * (C + 1) + dl.msg_src_core + 1,
                                           T * (C + 1), np.arange(len(dl.msg_step)))
    local = dl.job_msg < 0
    w["local_ptr"], w["local_ids"] = _slices((dl.job_step * (C + 1) + dl.job_src_core + 1)[local],
                                             T * (C + 1), np.flatnonzero(local))
    leaves = int(dl.job_leaf.max(initial=-1)) + 2
    w["via_ptr"], w["via_ids"] = _slices((dl.job_msg * leaves + dl.job_leaf + 1)[~local],
                                         len(dl.msg_step) * leaves, np.flatnonzero(~local))
    w["leaves"] = leaves
    return w


def _after(env: simpy.Environment, delay: int, fn) -> None:
    """Call fn() `delay` cycles from now, as an event of that cycle."""
    env.timeout(delay).callbacks.append(lambda _ev: fn())


class SimpyChip:
    """The chip's processes in one SimPy environment (`presentation` is a process); the
    resources and the messages' and jobs' arrivals are an `Arrivals` calendar (chip/arrivals.py,
    or compiled)."""

    def __init__(self, env: simpy.Environment, plan: DeliveryPlan, r: HwRates, barrier: bool):
        self.env, self.plan, self.r, self.barrier = env, plan, r, barrier
        self.C = plan.cc.m.n_cores
        tables = template_tables(plan)
        self.node_base = tables["node_base"]
        self.backend, module = kernels(None, "des")
        self.arr = module.Arrivals(env, self.C, tables, plan.link_lat, plan.link_flits,
                                   r.out_service, r.message_cycles, r.port_service,
                                   r.port_delay, r.soma_blocks)

    @property
    def events(self) -> int:
        """Arrivals the model scheduled (for the events-per-second figure)."""
        return self.arr.events

    # ------------------------------------------------------------- presentation
    def presentation(self, p: Presentation, work: StepWork):
        """SimPy process: one presentation; its value is the presentation's cycles."""
        env, r, C = self.env, self.r, self.C
        T = p.n_steps
        t0 = env.now
        w = des_work(self.plan, r, self.node_base, p, work)
        most = w["nc"].reshape(T, C).max(axis=1, initial=0).tolist()
        passes = pass_cycles(work, r)
        if passes:
            yield env.timeout(passes)
        if self.barrier and T:
            self._release = [env.event() for _ in range(T)]
            self._released_at = [0] * T  # the cycle each step ends
            self.arr.start(w, T, C, r.barrier, self._release_at, None)
            yield simpy.AllOf(env, [env.process(self._cores_in_step(T)),
                                    env.process(self._port(T, most))])
        elif T:  # the cores and the port step through the calendar by themselves
            done = env.event()
            self.arr.start(w, T, 0, 0, None, done.succeed)
            self.arr.begin_free(env.now)
            yield done
        ends = (self._released_at if self.barrier else self.arr.step_ends()) if T else []
        self.last_step_cycles = np.diff([t0] + ends)
        return env.now - t0

    def _release_at(self, t: int, cycle: int) -> None:
        """Every core reached step t's barrier: it releases them at `cycle`."""
        self._released_at[t] = cycle
        _after(self.env, cycle - self.env.now, self._release[t].succeed)

    # ------------------------------------------------------------------ cores
    def _cores_in_step(self, T: int):
        """With the barrier: at each release every core begins its step, in core order, and
        goes to the barrier when its last job and its learning are done (a cycle told to
        the barrier); one process sleeps until the next release."""
        for t in range(T):
            self.arr.begin_all(t, self.env.now)
            yield self._release[t]

    def _port(self, T: int, most: list[int]):
        """With the barrier, the input port: step t's input spikes leave once the cores'
        neuron phases are over (the longest after the step starts)."""
        env = self.env
        for t in range(T):
            if most[t] and self.r.soma_blocks:
                yield env.timeout(most[t])
            self.arr.inject(t, -1, env.now, env.now)
            if t + 1 < T:
                yield self._release[t]


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
