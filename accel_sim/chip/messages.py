"""Every message and every synaptic delivery of a presentation, in one deterministic order.

The `event` and `simpy` fidelities follow the same units of work, in the same order:
- a *message* is one packet of one spike of one projection (multicast: one per spike;
  unicast: one per destination core), leaving its source (a core, or the input port)
  along a path of links (a tree for multicast) given by a *template*;
- a *job* is the synaptic work of one spike at one destination core: it arrives with a
  message (at the message's leaf link), or directly for a local delivery.

Units are keyed by their rank in (step, projection in spec order, spike in trace order,
local deliveries then messages in route order). Every resource serves its work FIFO by
(arrival time, key), so both fidelities resolve ties the same way.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from snn_frontend.trace import Presentation

from .counting import ChipCounter, synapse_unit

__all__ = ["Template", "DeliveryPlan", "Deliveries"]


@dataclass(frozen=True)
class Template:
    """One message's path: links (global ids) in tree order with their parent positions,
    and the destination cores with the position of the link each leaves from (-1: none)."""

    links: np.ndarray
    parents: np.ndarray
    dests: np.ndarray
    leaves: np.ndarray


@dataclass
class Deliveries:
    """The units of one presentation (see module docstring), as arrays."""

    # messages (M,)
    msg_step: np.ndarray
    msg_key: np.ndarray
    msg_src_core: np.ndarray  # -1: the input port
    msg_template: np.ndarray
    msg_soma: np.ndarray  # soma cycles of the source's core up to its neuron (0 unless known)
    # jobs (J,)
    job_step: np.ndarray
    job_key: np.ndarray
    job_core: np.ndarray
    job_msg: np.ndarray  # message index, -1: a local delivery
    job_leaf: np.ndarray  # link position in the message's template, -1: no link
    job_src_core: np.ndarray  # -1: the input port
    job_soma: np.ndarray  # as msg_soma, for the spike the job comes from
    job_syn: np.ndarray
    job_words: np.ndarray
    job_dram_bits: np.ndarray
    job_dram_words: np.ndarray
    job_spike: np.ndarray  # the job's spike, in the trace's projection-major order
    # cycles per synaptic operation of each job's synapse unit (None: all alike)
    job_synop_cycles: np.ndarray | None = None


class DeliveryPlan:
    """Templates and per-source unit lists of one (spec, chip) pair."""

    def __init__(self, counter: ChipCounter, rates):
        self.cc, self.rates = counter, rates
        spec = counter.spec
        link_id: dict[tuple, int] = {}
        templates: list[Template] = []
        tid_of: dict[tuple, int] = {}
        self.units: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        for pr in spec.projections:
            src = counter.sources[pr.name]
            ptr, kind, what = [0], [], []
            for r in src.routes:
                for d in r.local_cores:
                    kind.append(0)
                    what.append(d)
                for msg in r.messages:
                    key = (msg[0], msg[1])
                    if key not in tid_of:
                        dests, tree, leaves = msg
                        ids = [link_id.setdefault(link, len(link_id)) for link, _ in tree]
                        tid_of[key] = len(templates)
                        templates.append(Template(np.array(ids, np.int64),
                                                  np.array([p for _, p in tree], np.int64),
                                                  np.array(dests, np.int64),
                                                  np.array(leaves, np.int64)))
                    kind.append(1)
                    what.append(tid_of[key])
                ptr.append(len(kind))
            self.units[pr.name] = (np.array(ptr, np.int64), np.array(kind, np.int64),
                                   np.array(what, np.int64))
        self.templates = templates
        self.n_links = len(link_id)
        # latency of each link (east-west, north-south, or between chips) and the cycles a
        # message holds it (its flits: a chip-to-chip link has its own width)
        self.link_lat = np.zeros(len(link_id), np.int64)
        self.link_flits = np.full(len(link_id), rates.flits, np.int64)
        for link, lid in link_id.items():
            if counter.topo.crosses_chips(link):
                self.link_lat[lid], self.link_flits[lid] = rates.hop_lat_chip, rates.flits_chip
            else:
                self.link_lat[lid] = rates.hop_lat_ew if link[1] == link[3] else rates.hop_lat_ns
        self.link_order = _topological(templates, len(link_id))
        # (template, position) users of every link, in a fixed order
        users = defaultdict(list)
        for t, tpl in enumerate(templates):
            for pos, lid in enumerate(tpl.links):
                users[int(lid)].append((t, pos))
        self.link_users = users

    @cached_property
    def flat(self) -> dict[str, np.ndarray]:
        """The plan as flat int64 arrays, projections in spec order (the compiled `event`
        kernel's input): per projection its sources' unit lists (`unit_ptr` from
        `unit_base`, absolute into `unit_kind`, `unit_what`), source cores (-1: the port),
        and per (destination core, source) a job's service cycles, SRAM read latency and
        DRAM channel cycles (0: nothing spilled): tables (C, stride) from `tab_base` (stride 1 when every source is
        alike: column 0);
        templates' links (with each link's topological rank), parents, destinations and
        leaves (CSR); links' latency; per source (from `src_base`) the messages, link traversals and jobs
        of one of its spikes."""
        cc, spec, m, r = self.cc, self.cc.spec, self.cc.m, self.rates
        unit_ptr, kind, what, cores = [], [], [], []
        tabs = {k: [] for k in ("service", "read", "dram_service")}
        unit_base, src_base, tab_base, stride = [0], [0], [0], []
        units = 0
        per_synop = cc.unit_cycles
        for pr in spec.projections:
            ptr, k, w = self.units[pr.name]
            unit_ptr.append(ptr + units)
            kind.append(k)
            what.append(w)
            units += len(k)
            unit_base.append(unit_base[-1] + len(ptr))
            n_src = spec.population(pr.src).size
            cores.append(m.core[pr.src].astype(np.int64) if spec.population(pr.src).on_chip
                         else np.full(n_src, -1, np.int64))
            src_base.append(src_base[-1] + n_src)
            # each job's figures, as `presentation` gives them (column 0 when alike)
            t, alike = cc.tables[pr.name], cc.sources[pr.name].alike
            cols = slice(0, 1) if alike else slice(None)
            keep = alike or pr.stores_weights
            syn = t.synops[:, cols]
            words = t.sram[:, cols] if keep else np.zeros_like(syn)
            stored = pr.stores_weights and not alike
            cycles = per_synop[synapse_unit(pr)] if per_synop is not None else None
            bits = t.dram_bits[:, cols] if stored else np.zeros_like(syn)
            streams = (t.dram[:, cols] > 0).astype(np.int64) if stored else np.zeros_like(syn)
            for key, table in (("service", r.service_cycles(syn, words, cycles)),
                               ("read", np.where(words > 0, r.read_lat, 0)),
                               ("dram_service", np.where(bits > 0, r.dram_cycles(bits, streams), 0))):
                tabs[key].append(np.ascontiguousarray(table, np.int64).ravel())
            stride.append(1 if alike else n_src)
            tab_base.append(tab_base[-1] + len(tabs["service"][-1]))
        tpl = self.templates
        # per source neuron of each projection: a spike's messages, link traversals, jobs
        n_links = np.array([len(t.links) for t in tpl] or [0], np.int64)
        n_dests = np.array([len(t.dests) for t in tpl] or [0], np.int64)
        per_src = {"src_messages": [], "src_traversals": [], "src_jobs": []}
        for pr in spec.projections:
            ptr, k, w = self.units[pr.name]
            is_msg = k == 1
            sums = lambda v: np.add.reduceat(np.append(v, 0), ptr[:-1]) * (np.diff(ptr) > 0)  # noqa: E731
            per_src["src_messages"].append(sums(is_msg.astype(np.int64)))
            per_src["src_traversals"].append(sums(np.where(is_msg, n_links[np.where(is_msg, w, 0)], 0)))
            per_src["src_jobs"].append(sums(np.where(is_msg, n_dests[np.where(is_msg, w, 0)], 1)))
        rank = np.empty(self.n_links, np.int64)
        rank[np.array(self.link_order, np.int64)] = np.arange(self.n_links)
        csr = lambda parts: np.cumsum([0] + [len(x) for x in parts]).astype(np.int64)  # noqa: E731
        cat = lambda parts: (np.concatenate(parts).astype(np.int64) if parts  # noqa: E731
                             else np.zeros(0, np.int64))
        return {
            "unit_base": np.array(unit_base, np.int64), "unit_ptr": cat(unit_ptr),
            "unit_kind": cat(kind), "unit_what": cat(what),
            "src_base": np.array(src_base, np.int64), "src_core": cat(cores),
            "tab_base": np.array(tab_base, np.int64), "tab_stride": np.array(stride, np.int64),
            "alike": np.array([cc.sources[pr.name].alike for pr in spec.projections], np.int64),
            **{k: cat(v) for k, v in tabs.items()},
            "tl_ptr": csr([t.links for t in tpl]), "tl_links": cat([t.links for t in tpl]),
            "tl_parents": cat([t.parents for t in tpl]),
            "td_ptr": csr([t.dests for t in tpl]), "td_dests": cat([t.dests for t in tpl]),
            "td_leaves": cat([t.leaves for t in tpl]),
            "tl_rank": rank[cat([t.links for t in tpl])], "link_lat": self.link_lat.astype(np.int64),
            "link_flits": self.link_flits,
            **{k: cat(v) for k, v in per_src.items()},
        }

    def presentation(self, p: Presentation, spike_soma: dict | None = None) -> Deliveries:
        """The units of one presentation; `spike_soma` (StepWork.spike_soma) gives each
        spike's position in its core's soma work, where known."""
        cc, spec, m = self.cc, self.cc.spec, self.cc.m
        rows = []  # per projection: (step, proj, spike, unit idx, src, kind, what, soma)
        base = 0  # the projection's first spike in the trace's projection-major order
        for order, pr in enumerate(spec.projections):
            idx = p.indices[pr.src].astype(np.int64)
            base += len(idx)
            if not len(idx):
                continue
            step = np.repeat(np.arange(p.n_steps), p.counts[pr.src].astype(np.int64))
            ptr, kind, what = self.units[pr.name]
            n = ptr[idx + 1] - ptr[idx]
            spike = np.repeat(np.arange(len(idx)), n)
            first = np.repeat(ptr[idx], n)
            unit = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)
            soma = (spike_soma[pr.src][spike] if spike_soma and pr.src in spike_soma
                    else np.zeros(len(spike), np.int64))
            rows.append((step[spike], np.full(len(spike), order), base - len(idx) + spike, unit,
                         idx[spike], kind[first + unit], what[first + unit], soma))
        if not rows:
            e = np.zeros(0, np.int64)
            return Deliveries(e, e, e, e, e, e, e, e, e, e, e, e, e, e, e, e, e)
        step, proj, spike, unit, src, kind, what, soma = (np.concatenate(c) for c in zip(*rows))
        # rows are in (spike, unit) order within each projection: sort by (step, projection)
        order = np.argsort(step * len(spec.projections) + proj, kind="stable")
        step, proj, spike, src, kind, what, soma = (step[order], proj[order], spike[order],
                                                    src[order], kind[order], what[order],
                                                    soma[order])
        key = np.arange(len(order), dtype=np.int64)
        src_core = np.full(len(order), -1, np.int64)
        for o, pr in enumerate(spec.projections):
            if spec.population(pr.src).on_chip:
                sel = proj == o
                src_core[sel] = m.core[pr.src][src[sel]]
        is_msg = kind == 1
        msg_units = np.flatnonzero(is_msg)
        msg_template = what[msg_units]
        msg_index = np.full(len(order), -1, np.int64)
        msg_index[msg_units] = np.arange(len(msg_units))
        # jobs: local deliveries, and one per destination of every message
        tpl_dests = [t.dests for t in self.templates]
        tpl_leaves = [t.leaves for t in self.templates]
        n_dest = np.array([len(d) for d in tpl_dests], np.int64)
        per_msg = n_dest[msg_template] if len(msg_units) else np.zeros(0, np.int64)
        rep = np.where(is_msg, 0, 1)
        rep[msg_units] = per_msg
        job_unit = np.repeat(np.arange(len(order)), rep)
        within = np.arange(int(rep.sum())) - np.repeat(np.cumsum(rep) - rep, rep)
        job_core = np.empty(len(job_unit), np.int64)
        job_leaf = np.full(len(job_unit), -1, np.int64)
        local = ~is_msg[job_unit]
        job_core[local] = what[job_unit[local]]
        mj = np.flatnonzero(~local)
        if len(mj):
            flat_d = np.concatenate(tpl_dests)
            flat_l = np.concatenate(tpl_leaves)
            start = np.concatenate([[0], np.cumsum(n_dest)[:-1]])
            pos = start[what[job_unit[mj]]] + within[mj]
            job_core[mj] = flat_d[pos]
            job_leaf[mj] = flat_l[pos]
        job_proj = proj[job_unit]
        job_src = src[job_unit]
        syn = np.zeros(len(job_unit), np.int64)
        words = np.zeros_like(syn)
        dbits = np.zeros_like(syn)
        dwords = np.zeros_like(syn)
        for o, pr in enumerate(spec.projections):
            sel = np.flatnonzero(job_proj == o)
            if not len(sel):
                continue
            t = cc.tables[pr.name]
            d = job_core[sel]
            if cc.sources[pr.name].alike:  # every source alike, nothing in DRAM
                syn[sel], words[sel] = t.synops[d, 0], t.sram[d, 0]
                continue
            s = job_src[sel]
            syn[sel] = t.synops[d, s]
            if pr.stores_weights:
                words[sel], dbits[sel], dwords[sel] = t.sram[d, s], t.dram_bits[d, s], t.dram[d, s]
        per_synop = None
        if cc.unit_cycles is not None:
            cycles = np.array([cc.unit_cycles[synapse_unit(pr)] for pr in spec.projections])
            per_synop = cycles[job_proj] if len(cycles) else np.zeros(0, np.int64)
        return Deliveries(step[msg_units], key[msg_units], src_core[msg_units], msg_template,
                          soma[msg_units], step[job_unit], key[job_unit], job_core,
                          msg_index[job_unit], job_leaf, src_core[job_unit], soma[job_unit], syn,
                          words, dbits, dwords, spike[job_unit], per_synop)


def _topological(templates: list[Template], n_links: int) -> list[int]:
    """Link ids in an order where every link comes after its parents in every template
    (XY routing never makes a cycle of link dependencies)."""
    nxt: dict[int, set[int]] = defaultdict(set)
    indeg = np.zeros(n_links, np.int64)
    for tpl in templates:
        for pos, lid in enumerate(tpl.links):
            par = tpl.parents[pos]
            if par >= 0:
                a, b = int(tpl.links[par]), int(lid)
                if b not in nxt[a]:
                    nxt[a].add(b)
                    indeg[b] += 1
    ready = sorted(np.flatnonzero(indeg == 0).tolist(), reverse=True)
    order = []
    while ready:
        lid = ready.pop()
        order.append(lid)
        for b in sorted(nxt[lid]):
            indeg[b] -= 1
            if indeg[b] == 0:
                ready.append(b)
    if len(order) != n_links:
        raise RuntimeError("the routes' link dependencies have a cycle")
    return order
