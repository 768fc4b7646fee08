"""Cycles of a presentation, in two fidelities that share the same counts.

Step structure (both): neuron phase -> spike delivery over the NoC and synaptic
accumulation at the destination cores (weights from SRAM, spilled weights from
DRAM) -> learning (STDP read-modify-write) -> barrier.

`timestep`: per step and core, work / throughput: synops / synapse_lanes, SRAM
words / (banks x ports), DRAM bytes / bandwidth + a row miss per access stream,
input packets serialised at the input port, plus the longest route's hop latency
to fill the pipeline. Cores run in parallel; the slowest core sets the step.

`event`: every spike packet is followed through every link of its XY route (or
multicast tree) and every destination core's SRAM ports / synapse lanes, and the
DRAM channel, each a FIFO resource with a busy-until time: a packet starts on a
resource at max(its arrival, the resource's busy-until) and holds it for its
service time. The FIFO recurrence  start_p = max(arrive_p, finish_{p-1})  is
evaluated exactly for all packets of a presentation at once (closed form with
running maxima, in route order over a topological order of the links), which is
what a SimPy process per packet with busy-until resources computes, at a
fraction of the cost. It differs from `timestep` where packets contend
(queueing at shared links and cores) or arrive spread out (overlap).
"""
from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

from snn_frontend.trace import Presentation

from .counting import ChipCounter, StepWork

__all__ = ["timestep_cycles", "event_cycles", "HwRates"]


class HwRates:
    """Per-cycle throughputs and latencies of a chip, in cycles."""

    def __init__(self, hw, mapping):
        c, s, n, d = hw.cores, hw.sram, hw.noc, hw.dram
        self.syn_lanes, self.neuron_lanes, self.learn_lanes = (
            c.synapse_lanes, c.neuron_lanes, c.learning_lanes)
        self.ports = s.banks * s.ports_per_bank
        self.read_lat, self.write_lat = s.read_latency_cycles, s.write_latency_cycles
        self.flits = -(-n.packet_bits // n.link_width_bits)
        self.hop_lat = n.router_latency_cycles + n.link_latency_cycles
        cycle_ns = 1e3 / hw.clock_mhz
        self.dram_bytes_per_cycle = d.bandwidth_gb_s * cycle_ns  # GB/s * ns = bytes
        # every access stream opens a new row (weight rows are not adjacent in DRAM): a miss
        self.dram_miss = math.ceil(d.row_miss_ns / cycle_ns)
        self.barrier = hw.sync.barrier_cycles if hw.sync.barrier else 0
        per_core = mapping.k_exc + mapping.k_inh
        self.neuron_cycles = int(-(-int(per_core.max()) // self.neuron_lanes))


def _ceil_div(a, b):
    return -(-a // b)


def _learn_cycles(work: StepWork, r: HwRates) -> np.ndarray:
    ops = _ceil_div(work.learn_ops, r.learn_lanes)
    mem = _ceil_div(work.learn_words, r.ports) + np.where(work.learn_words > 0, r.write_lat, 0)
    return np.maximum(ops, mem).max(axis=1)


def _normalise_cycles(work: StepWork, r: HwRates, mapping) -> int:
    if not work.normalise_words.any():
        return 0
    mem = int(_ceil_div(2 * work.normalise_words, r.ports).max())
    ops = int(_ceil_div(work.passes * mapping.net.n_in * mapping.k_exc, r.learn_lanes).max())
    dram = math.ceil(work.normalise_dram_bits / 8 / r.dram_bytes_per_cycle)
    return max(mem, ops) + dram


def _dram_cycles(bits: np.ndarray, streams: np.ndarray, r: HwRates) -> np.ndarray:
    return np.ceil(bits / 8 / r.dram_bytes_per_cycle).astype(np.int64) + streams * r.dram_miss


def timestep_cycles(work: StepWork, r: HwRates, mapping) -> np.ndarray:
    """Cycles of each step (T,), the normalisation pass added to the first step."""
    service = np.maximum(_ceil_div(work.synops, r.syn_lanes),
                         _ceil_div(work.sram_reads, r.ports)
                         + np.where(work.sram_reads > 0, r.read_lat, 0)).max(axis=1)
    port = work.in_packets * r.flits
    fill = work.max_hops * r.hop_lat
    dram = _dram_cycles(work.dram_bits, work.dram_streams, r)
    # the port, the cores and the DRAM channel work in parallel (pipelined delivery)
    deliver = np.maximum(np.maximum(port, service), dram) + fill
    deliver = np.where((work.in_packets + work.core_packets) > 0, deliver, 0)
    steps = r.neuron_cycles + deliver + _learn_cycles(work, r) + r.barrier
    if len(steps):
        steps[0] += _normalise_cycles(work, r, mapping)
    return steps


# ------------------------------------------------------------------- event
class _Topology:
    """Routes as link lists, and a topological order of the links (XY is acyclic)."""

    def __init__(self, cc: ChipCounter):
        self.cc = cc
        m = cc.m
        self.trees: dict[object, list[tuple[tuple, int]]] = {}  # key -> [(link, parent idx)]
        self.leaves: dict[object, dict[int, int]] = {}  # key -> {dest core: link idx or -1}
        mesh = cc.mesh
        port = tuple(m.hw.noc.input_port)
        multicast = m.hw.noc.cast == "multicast"
        self._add(("in",), port, m.exc_cores, multicast)
        for c in range(m.n_cores):
            self._add(("inh", c), mesh.xy(c), m.exc_cores, multicast)
        pairs = {(int(m.exc_core[j]), int(m.inh_core[j])) for j in range(min(m.net.n_exc, m.net.n_inh))}
        for a, b in pairs:
            self._add(("exc", a, b), mesh.xy(a), [b], False)
        # topological order of links: Kahn over "link -> next link" edges of all routes
        nxt, indeg = defaultdict(set), defaultdict(int)
        links = set()
        for tree in self.trees.values():
            for link, parent in tree:
                links.add(link)
                if parent >= 0:
                    p = tree[parent][0]
                    if link not in nxt[p]:
                        nxt[p].add(link)
                        indeg[link] += 1
        order, ready = [], sorted(link for link in links if indeg[link] == 0)
        while ready:
            link = ready.pop()
            order.append(link)
            for n in sorted(nxt[link]):
                indeg[n] -= 1
                if indeg[n] == 0:
                    ready.append(n)
        self.order = order
        self.users: dict[tuple, list[tuple[object, int, int]]] = defaultdict(list)
        for tkey, tree in self.trees.items():
            for li, (link, parent) in enumerate(tree):
                self.users[link].append((tkey, li, parent))

    def _add(self, key, src, dests, multicast):
        mesh = self.cc.mesh
        tree: list[tuple[tuple, int]] = []
        index: dict[tuple, int] = {}
        leaves: dict[int, int] = {}
        for d in dests:
            prev = -1
            path = mesh.path(src, mesh.xy(d))
            if not multicast:  # a unicast packet per destination: separate trees per dest
                key_d = key + ("to", d)
                self.trees[key_d] = [(link, i - 1) for i, link in enumerate(path)]
                self.leaves[key_d] = {d: len(path) - 1}
                continue
            for link in path:
                if link not in index:
                    index[link] = len(tree)
                    tree.append((link, prev))
                prev = index[link]
            leaves[d] = prev
        if multicast:
            self.trees[key] = tree
            self.leaves[key] = leaves


def _fifo(arrive: np.ndarray, service: np.ndarray) -> np.ndarray:
    """Finish times of FIFO jobs (sorted by arrival): f_p = max(a_p, f_{p-1}) + s_p."""
    S = np.cumsum(service)
    return S + np.maximum.accumulate(arrive - (S - service))


def event_cycles(p: Presentation, work: StepWork, cc: ChipCounter, r: HwRates,
                 topo: _Topology) -> np.ndarray:
    """Cycles of each step with packet-level contention (see module docstring)."""
    m, a = cc.m, cc.acc
    T = p.n_steps
    big = np.int64(1) << np.int64(40)  # steps are separated by the barrier: disjoint time ranges
    base = np.arange(T, dtype=np.int64) * big + r.neuron_cycles
    ii, ie, ih = (p.indices[k].astype(np.int64) for k in ("input", "exc", "inh"))
    step_in, step_e, step_h = (np.repeat(np.arange(T), p.counts[k].astype(np.int64))
                               for k in ("input", "exc", "inh"))
    # packets: (group key, injection time, spike index, kind)
    groups: dict[object, tuple[np.ndarray, np.ndarray, str]] = {}
    if len(ii):
        groups[("in",)] = (base[step_in], ii, "in")
    for c in np.unique(m.inh_core[ih]) if len(ih) else []:
        sel = m.inh_core[ih] == c
        groups[("inh", int(c))] = (base[step_h[sel]], ih[sel], "inh")
    if len(ie) and m.net.lateral:  # lateral inhibition: multicast along the same trees
        for c in np.unique(m.exc_core[ie]):
            sel = m.exc_core[ie] == c
            groups[("inh", int(c))] = (base[step_e[sel]], ie[sel], "lat")
    elif len(ie):
        pair = m.exc_core[ie] * m.n_cores + m.inh_core[ie]
        for key in np.unique(pair):
            sel = pair == key
            groups[("exc", int(key // m.n_cores), int(key % m.n_cores))] = (
                base[step_e[sel]], ie[sel], "exc")
    unicast = m.hw.noc.cast == "unicast"
    # the tree each group's packets follow (unicast: one copy per destination)
    trees: dict[object, tuple[np.ndarray, np.ndarray, str]] = {}
    for key, (t0, idx, kind) in groups.items():
        if kind == "exc":
            trees[key + ("to", key[2])] = (t0, idx, kind)
        elif unicast:
            for d in m.exc_cores:
                trees[key + ("to", d)] = (t0, idx, kind)
        else:
            trees[key] = (t0, idx, kind)
    # links in topological order; each is a FIFO server of `flits` cycles per packet
    depart: dict[tuple[object, int], np.ndarray] = {}
    for link in topo.order:
        users = [(tkey, li, trees[tkey][0] if parent < 0 else depart[(tkey, parent)])
                 for tkey, li, parent in topo.users[link] if tkey in trees]
        if not users:
            continue
        arr = np.concatenate([u[2] for u in users])
        order = np.argsort(arr, kind="stable")
        start = _fifo(arr[order], np.full(len(arr), r.flits, np.int64)) - r.flits
        out = np.empty_like(arr)
        out[order] = start + r.hop_lat
        pos = 0
        for tkey, li, x in users:
            depart[(tkey, li)] = out[pos:pos + len(x)]
            pos += len(x)
    # destination cores: FIFO service of every packet's synaptic work
    per_core: dict[int, list[tuple[np.ndarray, np.ndarray]]] = defaultdict(list)
    dram_jobs: list[tuple[np.ndarray, np.ndarray]] = []
    for tkey, (t0, idx, kind) in trees.items():
        for d, leaf in topo.leaves[tkey].items():
            arr = t0 if leaf < 0 else depart[(tkey, leaf)]
            if kind == "in":
                syn = np.full(len(idx), int(m.k_exc[d]))
                words, dbits, dwords = a.in_sram[d, idx], a.in_dram_bits[d, idx], a.in_dram[d, idx]
            elif kind == "inh":
                syn = a.inh_synops[d, idx]
                words, dbits, dwords = a.inh_sram[d, idx], a.inh_dram_bits[d, idx], a.inh_dram[d, idx]
            elif kind == "lat":  # a scalar strength: accumulates, no weight reads
                syn = cc.lat_synops[d, idx]
                words = dbits = dwords = np.zeros(len(idx), np.int64)
            else:
                syn = np.ones(len(idx), np.int64)
                words, dbits, dwords = a.ei_sram[idx], a.ei_dram_bits[idx], a.ei_dram[idx]
            # pipelined lanes and ports: a packet occupies them for its share of cycles
            # (the next packet's work fills the rest); the read latency is paid at the end
            occupancy = np.maximum(syn / r.syn_lanes, words / r.ports)
            per_core[d].append((arr, occupancy, np.where(words > 0, r.read_lat, 0)))
            if dbits.any():
                sel = dbits > 0
                # fractional cycles: a burst train of several jobs is not rounded job by job
                dram_jobs.append((arr[sel].astype(np.float64),
                                  dbits[sel] / 8 / r.dram_bytes_per_cycle
                                  + r.dram_miss * (dwords[sel] > 0), np.zeros(int(sel.sum()))))
    # local deliveries at the source (exc -> inh on the same core, multicast to own core)
    end = base.copy()
    for jobs in list(per_core.values()) + ([dram_jobs] if dram_jobs else []):
        arr = np.concatenate([j[0] for j in jobs])
        svc = np.concatenate([j[1] for j in jobs])
        lat = np.concatenate([j[2] for j in jobs])
        o = np.argsort(arr, kind="stable")
        step = (arr[o] // big).astype(np.int64)
        # absolute times keep steps apart (a job never waits for the previous step's);
        # float64 resolves them to 1/8 cycle at these magnitudes (< 2**50)
        fin = _fifo(arr[o].astype(np.float64), svc[o].astype(np.float64)) + lat[o]
        np.maximum.at(end, step, np.ceil(fin).astype(np.int64))
    deliver = end - base
    return (r.neuron_cycles + deliver + _learn_cycles(work, r) + r.barrier
            + np.where(np.arange(T) == 0, _normalise_cycles(work, r, m), 0))
