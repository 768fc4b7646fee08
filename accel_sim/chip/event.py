"""The `event` fidelity: every message and job of a presentation through FIFO resources,
solved in closed form, vectorised (the same model as the `simpy` fidelity, exactly).

Resources, each a FIFO server that takes its work in (arrival, key) order (keys:
chip/messages.py) and holds it for a whole number of cycles:
- each core's network interface: `max(flits, message_cycles)` per message, the message
  leaving `message_cycles` after it starts; the input port: `max(host link flits,
  message_cycles)`, leaving `message_cycles + host latency` after it starts;
- each link between tiles: `flits` per message (a chip-to-chip link: its own), the
  message reaching the next router `router + link latency` cycles after it starts;
- each core's synapse lanes and SRAM ports: first the neuron phase of the step
  (`ceil(neurons / neuron_lanes)`), then every job `max(ceil(synops / synapse_lanes),
  ceil(words / ports))`, done `read_latency` cycles later when it read SRAM;
- the DRAM channel: a job with spilled words, from its arrival at the core,
  `ceil(bytes / bytes per cycle) + row miss`.
A core's step ends when its last job (and DRAM transfer) is done, then it learns
(`learning cycles`); with the barrier the next step starts when every core has finished,
plus `barrier_cycles`. Whole-matrix passes run before the first step.

A FIFO with fixed service times obeys finish_p = max(arrive_p, finish_{p-1}) + s_p, which
has the closed form cumsum + running maximum; resources of one kind are solved together
by giving each its own stretch of the time axis. Links are solved level by level of the
routes' dependency order. Steps are independent between barriers, so a whole
presentation is one set of array operations. Only barrier-synchronised chips: without a
barrier, steps overlap and only `simpy` models it.
"""
from __future__ import annotations

import numpy as np

from snn_frontend._backend import kernels
from snn_frontend.trace import Presentation

from .counting import StepWork
from .messages import DeliveryPlan
from .timing import HwRates, learn_cycles_per_core, pass_cycles

__all__ = ["event_cycles", "fifo", "job_dram_cycles", "EventTimer"]


def job_dram_cycles(dl, work: StepWork, r: HwRates, n_cores: int) -> np.ndarray:
    """Each job's DRAM channel cycles: its transfer and a hit's latency, plus its rows'
    activations and conflicts (chip/dram.py); 0 for a job with nothing in DRAM."""
    cycles = np.where(dl.job_dram_bits > 0, r.dram_cycles(
        dl.job_dram_bits, (dl.job_dram_words > 0).astype(np.int64)), 0)
    if work.dram_rows is None:
        return cycles
    return cycles + work.dram_rows.job_cycles(dl.job_spike, dl.job_core, n_cores, r)


def fifo(arrive: np.ndarray, service: np.ndarray) -> np.ndarray:
    """Finish times of FIFO jobs in service order: f_p = max(a_p, f_{p-1}) + s_p."""
    total = np.cumsum(service)
    return total + np.maximum.accumulate(arrive - (total - service))


def _serve(server: np.ndarray, arrive: np.ndarray, key: np.ndarray, service: np.ndarray,
           span: int) -> tuple[np.ndarray, np.ndarray]:
    """Start times of jobs on many FIFO servers at once (each server its own time stretch),
    and the service order (by server, then arrival, then key). Jobs come roughly in
    (arrival, key) order per server, which the sort exploits."""
    if not len(arrive):
        return arrive, np.zeros(0, np.int64)
    small = np.int16 if int(server.max()) < (1 << 15) else np.int32  # int16: a radix sort
    by_server = np.argsort(server.astype(small), kind="stable")
    k = int(key.max()) + 2
    place = server[by_server] * span + arrive[by_server]
    if int(place.max()) < (1 << 62) // k:  # one int64 sort key: (place, key)
        within = np.argsort(place * k + key[by_server] + 1, kind="stable")
    else:
        within = np.lexsort((key[by_server], place))
    order = by_server[within]
    shift = server[order] * span
    fin = fifo(arrive[order] + shift, service[order])
    start = np.empty_like(arrive)
    start[order] = fin - service[order] - shift
    return start, order


def _levels(plan: DeliveryPlan) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Links grouped so that every link's parents are in an earlier group; per group its
    users as arrays: (template, position in it, link, parent position or -1)."""
    level = np.zeros(plan.n_links, np.int64)
    for lid in plan.link_order:
        for t, pos in plan.link_users[lid]:
            par = plan.templates[t].parents[pos]
            if par >= 0:
                level[lid] = max(level[lid], level[plan.templates[t].links[par]] + 1)
    groups: dict[int, list[tuple[int, int, int, int]]] = {}
    for lid in plan.link_order:
        for t, pos in plan.link_users[lid]:
            groups.setdefault(int(level[lid]), []).append(
                (t, pos, lid, int(plan.templates[t].parents[pos])))
    return [tuple(np.array(col, np.int64) for col in zip(*groups[k])) for k in sorted(groups)]


def event_cycles(p: Presentation, work: StepWork, plan: DeliveryPlan, r: HwRates,
                 levels: list[tuple]) -> np.ndarray:
    """Cycles of each step (T,) of one presentation."""
    T, C = p.n_steps, plan.cc.m.n_cores
    dl = plan.presentation(p, work.spike_soma)
    nc = r.neuron_phase(work)  # (T, C)
    most = nc.max(axis=1) if C else np.zeros(T, np.int64)
    learn = learn_cycles_per_core(work, r)
    svc = r.service_cycles(dl.job_syn, dl.job_words, dl.job_synop_cycles)
    dram_svc = job_dram_cycles(dl, work, r, C)
    n_links = np.array([len(t.links) for t in plan.templates] or [0], np.int64)
    # an upper bound of each step's length: all its work one after another
    msg_links = n_links[dl.msg_template] if len(dl.msg_step) else np.zeros(0, np.int64)
    bound = (most + 1 + learn.max(axis=1, initial=0)
             + np.bincount(dl.msg_step, max(r.out_service, r.port_service) + r.port_delay
                           + msg_links * (int(plan.link_flits.max(initial=0))
                                          + int(plan.link_lat.max(initial=0))), T)
             + np.bincount(dl.job_step, svc + r.read_lat + dram_svc, T)).astype(np.int64)
    start = np.concatenate([[0], np.cumsum(bound)[:-1]]).astype(np.int64)
    span = int(bound.sum()) + 1
    # network interfaces: cores' and the input port's (server C, fed by the host link)
    from_core = dl.msg_src_core >= 0
    src = np.where(from_core, dl.msg_src_core, C)
    if r.soma_blocks:  # a core's messages leave after its neuron phase, the port's after all
        ready = start[dl.msg_step] + np.where(
            from_core, nc[dl.msg_step, np.maximum(dl.msg_src_core, 0)], most[dl.msg_step])
    else:  # as each neuron fires, the soma waiting while its core sends (one serial chain)
        group = dl.msg_step * (C + 1) + src
        o = np.argsort(group, kind="stable")
        firsts = np.searchsorted(group[o], group[o])
        rank = np.empty(len(o), np.int64)
        rank[o] = np.arange(len(o)) - firsts
        ready = start[dl.msg_step] + dl.msg_soma + r.message_cycles * rank
    port = src == C
    depart = (_serve(src, ready, dl.msg_key, np.where(port, r.port_service, r.out_service), span)[0]
              + np.where(port, r.port_delay, r.message_cycles))
    # links, level by level: every message of every template that uses a link of the
    # level, at once (a link serves its messages in (arrival, key) order, whatever order
    # they are listed in); dep: each message's departure from each link of its template
    order_t = np.argsort(dl.msg_template, kind="stable")
    bounds = np.searchsorted(dl.msg_template[order_t], np.arange(len(plan.templates) + 1))
    dep = np.zeros((len(dl.msg_step), int(n_links.max(initial=0)) or 1), np.int64)
    for tpl, pos, lid, par in levels:
        n = bounds[tpl + 1] - bounds[tpl]  # messages of each user's template
        total = int(n.sum())
        if not total:
            continue
        first = np.repeat(bounds[tpl] - (np.cumsum(n) - n), n)
        ms_all = order_t[first + np.arange(total)]
        pos_all, links, par_all = np.repeat(pos, n), np.repeat(lid, n), np.repeat(par, n)
        arr = np.where(par_all < 0, depart[ms_all], dep[ms_all, np.maximum(par_all, 0)])
        dep[ms_all, pos_all] = _serve(links, arr, dl.msg_key[ms_all],
                                      plan.link_flits[links], span)[0] + plan.link_lat[links]
    # jobs at the destination cores
    job_arr = np.empty(len(dl.job_step), np.int64)
    local = dl.job_msg < 0
    js, jc = dl.job_step[local], dl.job_src_core[local]
    if r.soma_blocks:
        job_arr[local] = start[js] + np.where(jc >= 0, nc[js, np.maximum(jc, 0)], most[js])
    else:
        job_arr[local] = start[js] + dl.job_soma[local]
    direct = ~local & (dl.job_leaf < 0)
    job_arr[direct] = depart[dl.job_msg[direct]]
    via = np.flatnonzero(~local & (dl.job_leaf >= 0))
    job_arr[via] = dep[dl.job_msg[via], dl.job_leaf[via]]
    # the neuron phase is each core's first job of a step; it only delays the jobs of a
    # (step, core) when one of them arrives before it is over, so it is a job only there
    neuron_end = start[:, None] + nc  # (T, C)
    if r.soma_blocks:
        early = np.unique((dl.job_step * C + dl.job_core)[
            job_arr < neuron_end[dl.job_step, dl.job_core]])
    else:  # the soma does not hold the synapse pipeline; its chain of sends ends the step
        early = np.zeros(0, np.int64)
        sent = np.bincount(dl.msg_step[from_core] * C + dl.msg_src_core[from_core],
                           minlength=T * C).reshape(T, C)
        neuron_end = neuron_end + r.message_cycles * sent
    steps_c, cores_c = early // C, early % C
    server = np.concatenate([cores_c, dl.job_core])
    arrive = np.concatenate([start[steps_c], job_arr])
    key = np.concatenate([np.full(len(early), -1, np.int64), dl.job_key])
    service = np.concatenate([nc[steps_c, cores_c], svc])
    began, order = _serve(server, arrive, key, service, span)
    done = began + service + np.concatenate([np.zeros(len(early), np.int64),
                                             np.where(dl.job_words > 0, r.read_lat, 0)])
    # served by core, then time: each (core, step) is one stretch of `order`
    end = neuron_end.ravel().copy()
    if len(order):
        seg = (np.concatenate([steps_c, dl.job_step]) * C + server)[order]
        first = np.flatnonzero(np.concatenate([[True], seg[1:] != seg[:-1]]))
        end[seg[first]] = np.maximum(end[seg[first]], np.maximum.reduceat(done[order], first))
    # the DRAM channel (one server) in (arrival at the core, key, core) order
    d = np.flatnonzero(dl.job_dram_bits > 0)
    if len(d):
        ds = _serve(np.zeros(len(d), np.int64), job_arr[d], dl.job_key[d] * C + dl.job_core[d],
                    dram_svc[d], span)[0]
        np.maximum.at(end, dl.job_step[d] * C + dl.job_core[d], ds + dram_svc[d])
    step_end = (end.reshape(T, C) + learn).max(axis=1)
    cycles = step_end - start + r.barrier
    if T:
        cycles[0] += pass_cycles(work, r)
    return cycles


class EventTimer:
    """The `event` fidelity as the chip drives it: `event_cycles` compiled
    (ext/event_kernels.pyx, the same cycles), or this module's NumPy reference
    (ACCEL_SIM_BACKEND=numpy, or no compiler)."""

    events = 0  # it schedules no SimPy events of its own

    def __init__(self, chip):
        self.env, self.rates = chip.env, chip.rates
        self.plan = DeliveryPlan(chip.counter, chip.rates)
        self.backend, module = kernels(None, "event")
        self.event_cycles = module.event_cycles
        self.levels = _levels(self.plan) if self.backend == "numpy" else None
        if self.backend == "cython":  # its tables, built with the chip as the routes are
            self.plan.flat  # noqa: B018 (a cached property, computed here)

    def presentation(self, p: Presentation, work: StepWork):
        """SimPy process body (driven with `yield from`): the chip's clock advances by the
        presentation's cycles, which it returns."""
        self.last_step_cycles = self.event_cycles(p, work, self.plan, self.rates, self.levels)
        cycles = int(self.last_step_cycles.sum())
        yield self.env.timeout(cycles)
        return cycles
