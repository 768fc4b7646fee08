"""The calendar of the `simpy` fidelity: messages at links, jobs at cores, and (without the
barrier) the cores' and the input port's steps.

This is the reference implementation; `ext/des_kernels.pyx` (`accel_sim.chip._des_kernels`)
mirrors it method by method and is used when built (chip/des.py picks one through
`snn_frontend._backend.kernels(None, "des")`).

Every entry has a whole cycle and a priority (an arrival: its unit's key, see
chip/messages.py; a core or the port: before every arrival) and runs after every other
SimPy event of its cycle. They are kept in one heap ordered by (cycle, priority, order of
scheduling). SimPy drives it with a timeout armed at the earliest entry: when it fires,
every entry earlier than the environment's next event (`Environment.peek`) is run, for
nothing else can happen before it, except one that wakes a process (the last job of the
last core to reach a step's barrier; the end of a barrier-free presentation): that one
runs only at its own cycle, and the next event is looked up again after it. The
resources (network interfaces, links, cores' synapse pipelines, the DRAM channel) are
deterministic FIFO servers: an arriving unit starts at max(cycle, the resource's
busy-until cycle), holds it for its service time and schedules its next arrival.
Results do not depend on the order of entries of one cycle and priority: those touch
different servers or different cores.
"""
from __future__ import annotations

import heapq
from collections import defaultdict

import numpy as np
import simpy

__all__ = ["Arrivals", "template_tables"]

# entry kinds: a message at a link, a job at its core; without the barrier, a core's
# neuron phase over, its jobs done, its learning done; the input port sends a step; the
# presentation is over
_LINK, _JOB, _NEURONS, _JOBS_DONE, _LEARNED, _PORT, _DONE = range(7)
_FIRST = -1  # the priority of cores and the port: before every arrival of their cycle


def template_tables(plan) -> dict[str, np.ndarray]:
    """Each template's positions as nodes (node = node_base[template] + position + 1, the
    message's source being position -1): the link of each node (-1: the source), and the
    positions that follow each node (CSR: child_pos[child_ptr[node]:child_ptr[node + 1]])."""
    base, link, ptr, pos = [0], [], [0], []
    for tpl in plan.templates:
        parents = tpl.parents.tolist()
        link.append(-1)
        link.extend(tpl.links.tolist())
        children: list[list[int]] = [[] for _ in range(len(parents) + 1)]
        for p, q in enumerate(parents):  # by parent (-1: the source), positions ascending
            children[q + 1].append(p)
        for ch in children:
            pos.extend(ch)
            ptr.append(len(pos))
        base.append(base[-1] + len(parents) + 1)
    return {k: np.array(v, np.int64) for k, v in
            dict(node_base=base, node_link=link, child_ptr=ptr, child_pos=pos).items()}


class Arrivals:
    """The chip's FIFO servers and the calendar of one SimPy environment.

    Per chip: `n_cores`, the template tables, links' latency and the rates. Per
    presentation (`start`): the jobs' and messages' arrays (chip/des.py, `des_work`), the
    step count, the barrier (parties, 0: none, and its cycles) and a callback into the
    processes: `release(t, cycle)` when the last core reaches step t's barrier (its
    release cycle), or (without the barrier) `finished()` when the last core has ended
    the last step."""

    def __init__(self, env: simpy.Environment, n_cores: int, tables: dict, link_lat: np.ndarray,
                 link_flits: np.ndarray, out_service: int, message_cycles: int,
                 port_service: int, port_delay: int, soma_blocks: bool):
        self.env, self.C = env, n_cores
        self.message_cycles = message_cycles
        # each network interface's service and delay before a message leaves (the port's last)
        self.service = [out_service] * n_cores + [port_service]
        self.delay = [message_cycles] * n_cores + [port_delay]
        self.link_flits = link_flits.tolist()
        self.soma_blocks = bool(soma_blocks)
        self.node_link = tables["node_link"].tolist()
        self.child_ptr, self.child_pos = tables["child_ptr"].tolist(), tables["child_pos"].tolist()
        self.link_lat = link_lat.tolist()
        self.out_busy = [0] * (n_cores + 1)  # cores' network interfaces, then the input port
        self.link_busy = [0] * len(self.link_lat)
        self.core_busy = [0] * n_cores
        self.dram_busy = 0
        self.heap: list[tuple] = []
        self.armed: list[int] = []  # cycles of the calendar's pending timeouts (a heap)
        self.events = 0  # arrivals scheduled
        self.seq = 0  # entries scheduled (their order among equals)

    # ------------------------------------------------------------ presentation
    def start(self, w: dict, T: int, parties: int, barrier_cycles: int, release,
              finished) -> None:
        """Take one presentation's arrays (every int64 array of `des_work`)."""
        self.w = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in w.items()}
        self.leaves, self.T = w["leaves"], T
        C = self.C
        self.pending = list(self.w["pending"])
        self.end = [0] * (T * C)
        self.barrier_armed = [False] * (T * C)
        self.waiting = [False] * (T * C)
        self.step_of = [-1] * C
        self.queued = defaultdict(list)
        self.parties, self.barrier_cycles = parties, barrier_cycles
        self.arrived, self.latest = [0] * T, [0] * T
        self.release, self.finished = release, finished
        self.neurons_left = [C] * T  # without the barrier: cores still in their neuron phase
        self.cores_left = C  # cores still stepping
        self.step_end = [0] * T  # when the last core ends each step

    def begin_all(self, t: int, now: int) -> None:
        """With the barrier: every core begins step t at `now`, in core order, and goes to
        the barrier when its last job and its learning are done."""
        for c in range(self.C):
            self.begin_step(t, c, now)
            self._to_barrier(t * self.C + c, now)
        self._arm_next()

    def begin_free(self, now: int) -> None:
        """Without the barrier: every core begins step 0 at `now`; each goes on by itself
        (neuron phase, its jobs of the step, learning, the next step), and the input port
        sends step t once every core's step-t neuron phase is over; `finished()` is called
        when the last core ends the last step."""
        for c in range(self.C):
            self._core_begin(c, 0, now)
        self._arm_next()

    def begin_step(self, t: int, c: int, now: int) -> int:
        """Core c begins step t at `now`: its neuron phase, then (or, if the soma does not
        block, as its neurons fire) its spikes' local jobs and messages; returns when the
        neuron phase (and, without blocking, the chain of sends) is over."""
        w, C = self.w, self.C
        nc = w["nc"][t * C + c]
        self.step_of[c] = t
        if self.soma_blocks:  # the neuron phase holds the synapse pipeline, then it sends
            end = self._take_core(c, now, nc) + nc
            self._inject(t, c, end, now)
        else:
            ptr = w["msgs_ptr"]
            k = t * (C + 1) + c + 1
            end = now + nc + self.message_cycles * (ptr[k + 1] - ptr[k])
            self._inject(t, c, -1, now)
        i = t * C + c
        if end > self.end[i]:
            self.end[i] = end
        return end

    def inject(self, t: int, src: int, when: int, start: int) -> None:
        """`_inject`, with the calendar armed for what it scheduled."""
        self._inject(t, src, when, start)
        self._arm_next()

    def _inject(self, t: int, src: int, when: int, start: int) -> None:
        """Local jobs and messages of source `src` (a core, or -1: the input port) at step t,
        ready at `when`, or (-1) as each neuron fires after `start`, the soma waiting while
        its core sends; the messages leave one after another through its interface."""
        w, C = self.w, self.C
        k = t * (C + 1) + src + 1
        ptr, ids, prio, soma = w["local_ptr"], w["local_ids"], w["job_prio"], w["job_soma"]
        for n in range(ptr[k], ptr[k + 1]):
            j = ids[n]
            self._push(when if when >= 0 else start + soma[j], prio[j], _JOB, j, 0, 0)
        ptr, ids, msg_soma = w["msgs_ptr"], w["msgs_ids"], w["msg_soma"]
        out = src if src >= 0 else C
        for r, n in enumerate(range(ptr[k], ptr[k + 1])):
            m = ids[n]
            ready = when if when >= 0 else start + msg_soma[m] + self.message_cycles * r
            b = self.out_busy[out]
            begin = ready if ready > b else b
            self.out_busy[out] = begin + self.service[out]
            self._fan_out(m, w["msg_node"][m], begin + self.delay[out])

    def _serve_queued(self, t: int, c: int, now: int) -> None:
        """Without the barrier: serve at `now` the jobs of step t that reached core c while
        it was in an earlier step, in (arrival, priority) order."""
        for _, _, j in sorted(self.queued.pop(t * self.C + c, ())):
            self._serve(j, now)

    def step_ends(self) -> list[int]:
        """Without the barrier: when the last core ended each step."""
        return list(self.step_end)

    def _to_barrier(self, i: int, now: int) -> None:
        """With the barrier: core and step i go to the barrier when their last job and their
        learning are done (now, if every job is done)."""
        self.barrier_armed[i] = True
        if self.pending[i] == 0:
            self._arrive_barrier(i, now)

    # -------------------------------------------- cores without the barrier
    def _core_begin(self, c: int, t: int, now: int) -> None:
        """Core c begins step t: the neuron phase and its sends, then the jobs that came
        early."""
        end = self.begin_step(t, c, now)
        self._serve_queued(t, c, now)
        if end > now:
            self._push(end, _FIRST, _NEURONS, c, 0, 0)
        else:
            self._neurons_done(c, now)

    def _neurons_done(self, c: int, now: int) -> None:
        """Core c's neuron phase is over: the port may send the step; the core waits for the
        step's last job."""
        t = self.step_of[c]
        self.neurons_left[t] -= 1
        if self.neurons_left[t] == 0:
            self._push(now, _FIRST, _PORT, t, 0, 0)  # after the steps before it
        i = t * self.C + c
        if self.pending[i]:
            self.waiting[i] = True  # the job that completes them wakes the core at once
        else:
            self._jobs_done(c, now)

    def _jobs_done(self, c: int, now: int) -> None:
        """Every job of core c's step has come: the core waits for the last to be done."""
        i = self.step_of[c] * self.C + c
        self._push(max(self.end[i], now), _FIRST, _JOBS_DONE, c, 0, 0)

    def _learn(self, c: int, now: int) -> None:
        """Core c's jobs are done: it learns."""
        i = self.step_of[c] * self.C + c
        finish = self.end[i] + self.w["learn"][i]
        if finish > now:
            self._push(finish, _FIRST, _LEARNED, c, 0, 0)
        else:
            self._step_over(c, now)

    def _step_over(self, c: int, now: int) -> None:
        """Core c has learnt: its step ends; it begins the next, or it is done."""
        t = self.step_of[c]
        if now > self.step_end[t]:
            self.step_end[t] = now
        if t + 1 < self.T:
            self._core_begin(c, t + 1, now)
            return
        self.cores_left -= 1
        if self.cores_left == 0:
            self._push(now, _FIRST, _DONE, 0, 0, 0)

    def _port_sends(self, t: int, now: int) -> None:
        """Every core's neuron phase of step t is over: the input port sends the step."""
        self._inject(t, -1, now, now)

    # ---------------------------------------------------------------- calendar
    def _push(self, when: int, prio: int, kind: int, a: int, b: int, c: int) -> None:
        heapq.heappush(self.heap, (when, prio, self.seq, kind, a, b, c))
        self.seq += 1
        if kind <= _JOB:
            self.events += 1

    def _arm_next(self) -> None:
        """Keep a timeout armed at or before the earliest arrival."""
        if self.heap and (not self.armed or self.heap[0][0] < self.armed[0]):
            when = self.heap[0][0]
            heapq.heappush(self.armed, when)
            self.env.timeout(when - self.env.now).callbacks.append(self._fire)

    def _fire(self, _ev) -> None:
        heapq.heappop(self.armed)
        self._drain(self.env.now)
        self._arm_next()

    def _drain(self, now: int) -> None:
        """Run the entries before the environment's next event (one that wakes a process
        only at `now`)."""
        heap, pop, peek = self.heap, heapq.heappop, self.env.peek
        nxt = peek()
        while heap:
            when, _, _, kind, a, b, c = heap[0]
            if when >= nxt:
                break
            if kind == _DONE or (kind == _JOB and self._wakes(a)):
                if when > now:
                    break
                pop(heap)
                if kind == _DONE:
                    self.finished()
                else:
                    self._job(when, a)
                nxt = peek()
                continue
            pop(heap)
            self._run(when, kind, a, b, c)

    def _run(self, now: int, kind: int, a: int, b: int, c: int) -> None:
        """One entry that wakes no process."""
        if kind == _LINK:
            self._link(now, a, b, c)
        elif kind == _JOB:
            self._job(now, a)
        elif kind == _NEURONS:
            self._neurons_done(a, now)
        elif kind == _JOBS_DONE:
            self._learn(a, now)
        elif kind == _LEARNED:
            self._step_over(a, now)
        else:
            self._port_sends(a, now)

    # ---------------------------------------------------------------- arrivals
    def _fan_out(self, m: int, node: int, depart: int) -> None:
        """Message m leaves template node `node` at `depart`: it reaches the links that
        follow, and its jobs there reach their cores."""
        w = self.w
        prio = w["msg_key"][m] * self.C
        tpl_base = w["msg_node"][m]
        for n in range(self.child_ptr[node], self.child_ptr[node + 1]):
            self._push(depart, prio, _LINK, m, tpl_base + self.child_pos[n] + 1, 0)
        ptr, ids, jprio = w["via_ptr"], w["via_ids"], w["job_prio"]
        v = m * self.leaves + node - tpl_base
        for n in range(ptr[v], ptr[v + 1]):
            j = ids[n]
            self._push(depart, jprio[j], _JOB, j, 0, 0)

    def _link(self, now: int, m: int, node: int, _c: int) -> None:
        lid = self.node_link[node]
        b = self.link_busy[lid]
        begin = now if now > b else b
        self.link_busy[lid] = begin + self.link_flits[lid]
        self._fan_out(m, node, begin + self.link_lat[lid])

    def _wakes(self, j: int) -> bool:
        """Would serving job j now release the barrier (the last job of the last core to
        reach it)?"""
        w, C = self.w, self.C
        c, t = w["job_core"][j], w["job_step"][j]
        i = t * C + c
        return (self.pending[i] == 1 and self.barrier_armed[i]
                and self.arrived[t] + 1 == self.parties)

    def _job(self, now: int, j: int) -> None:
        w = self.w
        c, t = w["job_core"][j], w["job_step"][j]
        if t > self.step_of[c]:  # no barrier: the core is still in an earlier step
            self.queued[t * self.C + c].append((now, w["job_prio"][j], j))
            return
        self._serve(j, now)

    def _take_core(self, c: int, now: int, service: int) -> int:
        b = self.core_busy[c]
        begin = now if now > b else b
        self.core_busy[c] = begin + service
        return begin

    def _serve(self, j: int, now: int) -> None:
        w, C = self.w, self.C
        c, t = w["job_core"][j], w["job_step"][j]
        i = t * C + c
        svc = w["job_svc"][j]
        done = self._take_core(c, now, svc) + svc + w["job_read"][j]
        dsvc = w["job_dsvc"][j]
        if dsvc:
            begin = now if now > self.dram_busy else self.dram_busy
            self.dram_busy = begin + dsvc
            done = max(done, begin + dsvc)
        if done > self.end[i]:
            self.end[i] = done
        self.pending[i] -= 1
        if self.pending[i] == 0:
            if self.barrier_armed[i]:
                self._arrive_barrier(i, now)
            elif self.waiting[i]:
                self.waiting[i] = False
                self._jobs_done(c, now)

    def _arrive_barrier(self, i: int, now: int) -> None:
        """Core and step i reach the barrier once learning is done: a cycle, not an event;
        the last of the cores' arrivals schedules the release `barrier_cycles` later."""
        t = i // self.C
        when = max(self.end[i], now) + self.w["learn"][i]
        self.arrived[t] += 1
        if when > self.latest[t]:
            self.latest[t] = when
        if self.arrived[t] == self.parties:
            self.release(t, self.latest[t] + self.barrier_cycles)
