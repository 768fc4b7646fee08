# cython: language_level=3
"""Compiled calendar of the `simpy` fidelity (accel_sim.chip._des_kernels).

Mirror of accel_sim/chip/arrivals.py (`Arrivals`), method by method, with the same
entries in the same order and so the same cycles: the heap is an array of structs
ordered by (cycle, priority, order of scheduling), the FIFO servers' busy-until cycles
and the presentation's arrays are typed buffers. SimPy still drives it (a timeout at the
earliest entry; `_fire` runs every entry before the environment's next event), and the
processes it wakes are called back in Python: `release` when the last core reaches a
step's barrier, `finished` when a barrier-free presentation is over.
"""
import heapq

import numpy as np

cimport cython
from libc.stdint cimport INT64_MAX, int64_t
from libc.stdlib cimport free, malloc, realloc

cdef enum:  # entry kinds: a message at a link, a job at its core; without the barrier, a
    LINK = 0  # core's neuron phase over, its jobs done, its learning done; the input port
    JOB = 1  # sends a step; the presentation is over
    NEURONS = 2
    JOBS_DONE = 3
    LEARNED = 4
    PORT = 5
    DONE = 6
    FIRST = -1  # the priority of cores and the port: before every arrival of their cycle


cdef struct Arrival:
    int64_t when
    int64_t prio
    int64_t seq
    int64_t kind
    int64_t a  # the message (LINK), the job (JOB), the core, or the step (PORT)
    int64_t b  # the template node the message reaches (LINK)


cdef inline bint earlier(const Arrival* x, const Arrival* y) noexcept nogil:
    """(cycle, priority, order of scheduling) order."""
    if x.when != y.when:
        return x.when < y.when
    if x.prio != y.prio:
        return x.prio < y.prio
    return x.seq < y.seq


cdef inline int64_t take(int64_t[::1] busy, Py_ssize_t k, int64_t now,
                         int64_t service) noexcept nogil:
    """FIFO server k: start at max(now, busy until), hold it `service` cycles."""
    cdef int64_t begin = now if now > busy[k] else busy[k]
    busy[k] = begin + service
    return begin


def _i64(a):
    return np.ascontiguousarray(a, np.int64)


@cython.final
cdef class Arrivals:
    """The chip's FIFO servers and the calendar of one SimPy environment (the interface of
    accel_sim.chip.arrivals.Arrivals)."""

    cdef object env, release, finished, queued
    cdef list armed
    cdef readonly int64_t events
    cdef int64_t seq, T, cores_left, C, out_service, message_cycles, port_service, port_delay
    cdef int64_t dram_busy, leaves, parties
    cdef int64_t barrier_cycles
    cdef bint soma_blocks
    cdef int64_t[::1] node_link, child_ptr, child_pos, link_lat, link_flits, out_busy, link_busy, core_busy
    cdef int64_t[::1] job_prio, job_core, job_step, job_soma, job_svc, job_read, job_dsvc
    cdef int64_t[::1] msg_key, msg_node, msg_soma, nc, learn, pending, end, step_of
    cdef int64_t[::1] arrived, latest, neurons_left, step_end, msgs_ptr, msgs_ids, local_ptr, local_ids, via_ptr, via_ids
    cdef unsigned char[::1] barrier_armed, waiting
    cdef Arrival* heap
    cdef Py_ssize_t n, cap

    def __cinit__(self):
        self.heap = NULL
        self.n = self.cap = 0

    def __dealloc__(self):
        free(self.heap)

    def __init__(self, env, int64_t n_cores, dict tables, link_lat, link_flits,
                 int64_t out_service, int64_t message_cycles, int64_t port_service,
                 int64_t port_delay, soma_blocks):
        self.env, self.C = env, n_cores
        self.out_service, self.message_cycles = out_service, message_cycles
        self.port_service, self.port_delay = port_service, port_delay
        self.link_flits = _i64(link_flits).copy()
        self.soma_blocks = bool(soma_blocks)
        self.node_link = _i64(tables["node_link"])
        self.child_ptr, self.child_pos = _i64(tables["child_ptr"]), _i64(tables["child_pos"])
        self.link_lat = _i64(link_lat).copy()
        self.out_busy = np.zeros(n_cores + 1, np.int64)  # cores' interfaces, then the port
        self.link_busy = np.zeros(len(link_lat), np.int64)
        self.core_busy = np.zeros(n_cores, np.int64)
        self.dram_busy = 0
        self.armed = []  # cycles of the calendar's pending timeouts (a heap)
        self.events = 0  # arrivals scheduled
        self.seq = 0  # entries scheduled (their order among equals)
        self.cap = 1024
        self.heap = <Arrival*>malloc(self.cap * sizeof(Arrival))
        if self.heap == NULL:
            raise MemoryError()

    # ------------------------------------------------------------ presentation
    def start(self, dict w, Py_ssize_t T, int64_t parties, int64_t barrier_cycles, release,
              finished):
        """Take one presentation's arrays (every int64 array of `des_work`)."""
        cdef Py_ssize_t TC = T * self.C
        self.job_prio, self.job_core, self.job_step = (_i64(w["job_prio"]), _i64(w["job_core"]),
                                                       _i64(w["job_step"]))
        self.job_soma, self.job_svc = _i64(w["job_soma"]), _i64(w["job_svc"])
        self.job_read, self.job_dsvc = _i64(w["job_read"]), _i64(w["job_dsvc"])
        self.msg_key, self.msg_node, self.msg_soma = (_i64(w["msg_key"]), _i64(w["msg_node"]),
                                                      _i64(w["msg_soma"]))
        self.nc, self.learn = _i64(w["nc"]), _i64(w["learn"])
        self.pending = _i64(w["pending"]).copy()
        self.msgs_ptr, self.msgs_ids = _i64(w["msgs_ptr"]), _i64(w["msgs_ids"])
        self.local_ptr, self.local_ids = _i64(w["local_ptr"]), _i64(w["local_ids"])
        self.via_ptr, self.via_ids = _i64(w["via_ptr"]), _i64(w["via_ids"])
        self.leaves, self.T = w["leaves"], T
        self.end = np.zeros(TC, np.int64)
        self.barrier_armed = np.zeros(TC, np.uint8)
        self.waiting = np.zeros(TC, np.uint8)
        self.step_of = np.full(self.C, -1, np.int64)
        self.queued = {}
        self.parties, self.barrier_cycles = parties, barrier_cycles
        self.arrived, self.latest = np.zeros(T, np.int64), np.zeros(T, np.int64)
        self.release, self.finished = release, finished
        self.neurons_left = np.full(T, self.C, np.int64)  # cores still in the neuron phase
        self.cores_left = self.C  # cores still stepping
        self.step_end = np.zeros(T, np.int64)  # when the last core ends each step

    def begin_all(self, int64_t t, int64_t now):
        """With the barrier: every core begins step t at `now`, in core order, and goes to
        the barrier when its last job and its learning are done."""
        cdef int64_t c
        for c in range(self.C):
            self._begin_step(t, c, now)
            self._to_barrier(t * self.C + c, now)
        self._arm_next()

    def begin_free(self, int64_t now):
        """Without the barrier: every core begins step 0 at `now`; each goes on by itself
        (neuron phase, its jobs of the step, learning, the next step), and the input port
        sends step t once every core's step-t neuron phase is over; `finished()` is called
        when the last core ends the last step."""
        cdef int64_t c
        for c in range(self.C):
            self._core_begin(c, 0, now)
        self._arm_next()

    def step_ends(self):
        """Without the barrier: when the last core ended each step."""
        return np.asarray(self.step_end).tolist()

    def begin_step(self, int64_t t, int64_t c, int64_t now):
        return self._begin_step(t, c, now)

    cdef int64_t _begin_step(self, int64_t t, int64_t c, int64_t now) except -1:
        """Core c begins step t at `now`: its neuron phase, then (or, if the soma does not
        block, as its neurons fire) its spikes' local jobs and messages; returns when the
        neuron phase (and, without blocking, the chain of sends) is over."""
        cdef int64_t C = self.C, i = t * C + c, end, k
        cdef int64_t nc = self.nc[i]
        self.step_of[c] = t
        if self.soma_blocks:
            end = take(self.core_busy, c, now, nc) + nc
            self._inject(t, c, end, now)
        else:
            k = t * (C + 1) + c + 1
            end = now + nc + self.message_cycles * (self.msgs_ptr[k + 1] - self.msgs_ptr[k])
            self._inject(t, c, -1, now)
        if end > self.end[i]:
            self.end[i] = end
        return end

    def inject(self, int64_t t, int64_t src, int64_t when, int64_t start):
        """`_inject`, with the calendar armed for what it scheduled."""
        self._inject(t, src, when, start)
        self._arm_next()

    cdef int _inject(self, int64_t t, int64_t src, int64_t when, int64_t start) except -1:
        """Local jobs and messages of source `src` (a core, or -1: the input port) at step t,
        ready at `when`, or (-1) as each neuron fires after `start`, the soma waiting while
        its core sends; the messages leave one after another through its interface."""
        cdef int64_t C = self.C, k = t * (C + 1) + src + 1, n, j, m, r, ready, begin
        cdef int64_t out = src if src >= 0 else C
        for n in range(self.local_ptr[k], self.local_ptr[k + 1]):
            j = self.local_ids[n]
            self._push(when if when >= 0 else start + self.job_soma[j], self.job_prio[j],
                       JOB, j, 0)
        r = 0
        for n in range(self.msgs_ptr[k], self.msgs_ptr[k + 1]):
            m = self.msgs_ids[n]
            ready = when if when >= 0 else start + self.msg_soma[m] + self.message_cycles * r
            if out == C:  # the input port, fed by the host link
                begin = take(self.out_busy, out, ready, self.port_service)
                self._fan_out(m, self.msg_node[m], begin + self.port_delay)
            else:
                begin = take(self.out_busy, out, ready, self.out_service)
                self._fan_out(m, self.msg_node[m], begin + self.message_cycles)
            r += 1
        return 0

    cdef int _serve_queued(self, int64_t t, int64_t c, int64_t now) except -1:
        """Without the barrier: serve at `now` the jobs of step t that reached core c while
        it was in an earlier step, in (arrival, priority) order."""
        if self.queued:
            for _, _, j in sorted(self.queued.pop(t * self.C + c, ())):
                self._serve(j, now)
        return 0

    cdef int _to_barrier(self, int64_t i, int64_t now) except -1:
        """With the barrier: core and step i go to the barrier when their last job and their
        learning are done (now, if every job is done)."""
        self.barrier_armed[i] = 1
        if self.pending[i] == 0:
            self._arrive_barrier(i, now)
        return 0

    # -------------------------------------------- cores without the barrier
    cdef int _core_begin(self, int64_t c, int64_t t, int64_t now) except -1:
        """Core c begins step t: the neuron phase and its sends, then the jobs that came
        early."""
        cdef int64_t end = self._begin_step(t, c, now)
        self._serve_queued(t, c, now)
        if end > now:
            return self._push(end, FIRST, NEURONS, c, 0)
        return self._neurons_done(c, now)

    cdef int _neurons_done(self, int64_t c, int64_t now) except -1:
        """Core c's neuron phase is over: the port may send the step; the core waits for the
        step's last job."""
        cdef int64_t t = self.step_of[c], i = t * self.C + c
        self.neurons_left[t] -= 1
        if self.neurons_left[t] == 0:
            self._push(now, FIRST, PORT, t, 0)  # after the steps before it
        if self.pending[i]:
            self.waiting[i] = 1  # the job that completes them wakes the core at once
            return 0
        return self._jobs_done(c, now)

    cdef int _jobs_done(self, int64_t c, int64_t now) except -1:
        """Every job of core c's step has come: the core waits for the last to be done."""
        cdef int64_t i = self.step_of[c] * self.C + c
        return self._push(self.end[i] if self.end[i] > now else now, FIRST, JOBS_DONE, c, 0)

    cdef int _learn(self, int64_t c, int64_t now) except -1:
        """Core c's jobs are done: it learns."""
        cdef int64_t i = self.step_of[c] * self.C + c
        cdef int64_t finish = self.end[i] + self.learn[i]
        if finish > now:
            return self._push(finish, FIRST, LEARNED, c, 0)
        return self._step_over(c, now)

    cdef int _step_over(self, int64_t c, int64_t now) except -1:
        """Core c has learnt: its step ends; it begins the next, or it is done."""
        cdef int64_t t = self.step_of[c]
        if now > self.step_end[t]:
            self.step_end[t] = now
        if t + 1 < self.T:
            return self._core_begin(c, t + 1, now)
        self.cores_left -= 1
        if self.cores_left == 0:
            self._push(now, FIRST, DONE, 0, 0)
        return 0

    cdef int _port_sends(self, int64_t t, int64_t now) except -1:
        """Every core's neuron phase of step t is over: the input port sends the step."""
        return self._inject(t, -1, now, now)

    # ---------------------------------------------------------------- calendar
    cdef int _push(self, int64_t when, int64_t prio, int64_t kind, int64_t a,
                   int64_t b) except -1:
        cdef Arrival* grown
        cdef Arrival x
        cdef Py_ssize_t pos, up
        if self.n == self.cap:
            grown = <Arrival*>realloc(self.heap, 2 * self.cap * sizeof(Arrival))
            if grown == NULL:
                raise MemoryError()
            self.heap, self.cap = grown, 2 * self.cap
        x.when, x.prio, x.seq, x.kind, x.a, x.b = when, prio, self.seq, kind, a, b
        self.seq += 1
        if kind <= JOB:
            self.events += 1
        pos = self.n
        self.n += 1
        while pos > 0:  # sift up
            up = (pos - 1) >> 1
            if not earlier(&x, &self.heap[up]):
                break
            self.heap[pos] = self.heap[up]
            pos = up
        self.heap[pos] = x
        return 0

    cdef Arrival _pop(self) noexcept:
        cdef Arrival top = self.heap[0], last
        cdef Py_ssize_t pos = 0, child, n
        self.n -= 1
        n = self.n
        if n:
            last = self.heap[n]
            while True:  # sift down
                child = 2 * pos + 1
                if child >= n:
                    break
                if child + 1 < n and earlier(&self.heap[child + 1], &self.heap[child]):
                    child += 1
                if not earlier(&self.heap[child], &last):
                    break
                self.heap[pos] = self.heap[child]
                pos = child
            self.heap[pos] = last
        return top

    cdef int _arm_next(self) except -1:
        """Keep a timeout armed at or before the earliest arrival."""
        cdef int64_t when
        if self.n and (not self.armed or self.heap[0].when < self.armed[0]):
            when = self.heap[0].when
            heapq.heappush(self.armed, when)
            self.env.timeout(when - self.env.now).callbacks.append(self._fire)
        return 0

    def _fire(self, _ev):
        heapq.heappop(self.armed)
        self._drain(self.env.now)
        self._arm_next()

    cdef int64_t _next_event(self) except -1:
        nxt = self.env.peek()
        return INT64_MAX if nxt == float("inf") else nxt

    cdef int _drain(self, int64_t now) except -1:
        """Run the entries before the environment's next event (one that wakes a process
        only at `now`)."""
        cdef int64_t nxt = self._next_event()
        cdef Arrival x
        while self.n:
            if self.heap[0].when >= nxt:
                break
            if self.heap[0].kind == DONE or (self.heap[0].kind == JOB
                                             and self._wakes(self.heap[0].a)):
                if self.heap[0].when > now:
                    break
                x = self._pop()
                if x.kind == DONE:
                    self.finished()
                else:
                    self._job(x.when, x.a)
                nxt = self._next_event()
                continue
            x = self._pop()
            self._run(x.when, x.kind, x.a, x.b)
        return 0

    cdef int _run(self, int64_t now, int64_t kind, int64_t a, int64_t b) except -1:
        """One entry that wakes no process."""
        if kind == LINK:
            return self._link(now, a, b)
        if kind == JOB:
            return self._job(now, a)
        if kind == NEURONS:
            return self._neurons_done(a, now)
        if kind == JOBS_DONE:
            return self._learn(a, now)
        if kind == LEARNED:
            return self._step_over(a, now)
        return self._port_sends(a, now)

    # ---------------------------------------------------------------- arrivals
    cdef int _fan_out(self, int64_t m, int64_t node, int64_t depart) except -1:
        """Message m leaves template node `node` at `depart`: it reaches the links that
        follow, and its jobs there reach their cores."""
        cdef int64_t prio = self.msg_key[m] * self.C, tpl_base = self.msg_node[m], n, j, v
        for n in range(self.child_ptr[node], self.child_ptr[node + 1]):
            self._push(depart, prio, LINK, m, tpl_base + self.child_pos[n] + 1)
        v = m * self.leaves + node - tpl_base
        for n in range(self.via_ptr[v], self.via_ptr[v + 1]):
            j = self.via_ids[n]
            self._push(depart, self.job_prio[j], JOB, j, 0)
        return 0

    cdef int _link(self, int64_t now, int64_t m, int64_t node) except -1:
        cdef int64_t lid = self.node_link[node]
        cdef int64_t begin = take(self.link_busy, lid, now, self.link_flits[lid])
        return self._fan_out(m, node, begin + self.link_lat[lid])

    cdef bint _wakes(self, int64_t j) noexcept:
        """Would serving job j now release the barrier (the last job of the last core to
        reach it)?"""
        cdef int64_t c = self.job_core[j], t = self.job_step[j], i = t * self.C + c
        return (self.pending[i] == 1 and self.barrier_armed[i]
                and self.arrived[t] + 1 == self.parties)

    cdef int _job(self, int64_t now, int64_t j) except -1:
        cdef int64_t c = self.job_core[j], t = self.job_step[j]
        if t > self.step_of[c]:  # no barrier: the core is still in an earlier step
            self.queued.setdefault(t * self.C + c, []).append((now, self.job_prio[j], j))
            return 0
        return self._serve(j, now)

    cdef int _serve(self, int64_t j, int64_t now) except -1:
        cdef int64_t c = self.job_core[j], t = self.job_step[j], i = t * self.C + c
        cdef int64_t svc = self.job_svc[j], dsvc = self.job_dsvc[j], begin
        cdef int64_t done = take(self.core_busy, c, now, svc) + svc + self.job_read[j]
        if dsvc:
            begin = now if now > self.dram_busy else self.dram_busy
            self.dram_busy = begin + dsvc
            if begin + dsvc > done:
                done = begin + dsvc
        if done > self.end[i]:
            self.end[i] = done
        self.pending[i] -= 1
        if self.pending[i] == 0:
            if self.barrier_armed[i]:
                self._arrive_barrier(i, now)
            elif self.waiting[i]:
                self.waiting[i] = 0
                self._jobs_done(c, now)
        return 0

    cdef int _arrive_barrier(self, int64_t i, int64_t now) except -1:
        """Core and step i reach the barrier once learning is done: a cycle, not an event;
        the last of the cores' arrivals schedules the release `barrier_cycles` later."""
        cdef int64_t t = i // self.C
        cdef int64_t when = (self.end[i] if self.end[i] > now else now) + self.learn[i]
        self.arrived[t] += 1
        if when > self.latest[t]:
            self.latest[t] = when
        if self.arrived[t] == self.parties:
            self.release(t, self.latest[t] + self.barrier_cycles)
        return 0
