"""Count every action of a presentation on the chip, vectorised over its steps.

`ChipCounter.count` turns one SpikeTrace presentation into
  - action totals per component kind (dict (kind, action) -> int), and
  - per-step, per-core work (`StepWork`: the synaptic deliveries projection by
    projection, learning ops and words, DRAM bits, messages) from which the timing
    fidelities derive cycles.
Every fidelity uses these same counts, so they agree on counts exactly.

Everything iterates over the spec's projections (docs/chip.md defines each action): a
spike of a projection's source population reaches the cores holding its targets over its
route (`router.*`), reads its weight row there (`sram.read_word`, spilled words as
`dram.read_bit`) and makes one synaptic operation per target (`core.synop`); a lateral
projection (one scalar strength) reads nothing. Every neuron of every on-chip population
is updated every step: active if a synaptic event reached it in the previous step, idle
otherwise. Plastic STDP projections add, while learning, the read-modify-write of what
the trace's learning events say was written back, the STDP arithmetic at the spikes,
traces, thresholds and whole-matrix passes.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

import numpy as np
from scipy import sparse

from snn_frontend.trace import Presentation, active_stream, stdp_event_streams

from .access import AccessTable, access_tables
from .dram import DramMap, DramSteps, RowBatch
from .backprop import BackpropCounter
from .mapping import Mapping
from .soma import SomaSteps, SomaTable
from .topology import ROUTER_COUNTS, Route, Topology

if TYPE_CHECKING:
    from .timing import CoreLoad

__all__ = ["ChipCounter", "Deliveries", "DeliveryTables", "StepWork", "per_step",
           "synapse_unit", "unit_cycles", "updated_per_core", "updated_per_step",
           "updated_steps_core"]

#: the synapse unit (core action) that processes a projection's synaptic operations
_UNITS = {"sparse": "synop_sparse", "conv2d": "synop_conv", "conv1d": "synop_conv"}


def synapse_unit(pr) -> str:
    """The core action a projection's synaptic operations count as: `synop` (dense and
    every kind without a weight list), `synop_sparse`, or `synop_conv` (SANA-FE's Loihi
    has a synapse unit of each, at its own energy and time)."""
    return _UNITS.get(pr.connectivity, "synop")


def unit_cycles(hw) -> dict[str, int] | None:
    """Cycles per synaptic operation of each synapse unit, when they differ (else None:
    every operation takes cores.synop_cycles)."""
    c = hw.cores
    cycles = {"synop": c.synop_cycles,
              "synop_sparse": c.synop_cycles_sparse or c.synop_cycles,
              "synop_conv": c.synop_cycles_conv or c.synop_cycles}
    return cycles if len(set(cycles.values())) > 1 else None

_ROUTE_FIELDS = ("packets", "hops_ew", "hops_ns", "hops_chip", "local", "max_hops",
                 "max_chip_hops")
#: router actions and the route field each counts (per spike)
_ROUTER_ACTIONS = tuple(a for a, _ in ROUTER_COUNTS)
_ROUTER_FIELDS = tuple(f for _, f in ROUTER_COUNTS)


@dataclass
class DeliveryTables:
    """Every projection's per-spike delivery rows on one chip, for the cores' load per step
    (chip/steps.py): projection g's rows start at `row_base[g]`; a rate projection (every
    source alike) has one row. Built once per chip."""

    rate: np.ndarray  # (P,) int8: 1 when every spike adds the projection's one row
    unit: np.ndarray  # (P,) synapse-unit slot of the projection's operations
    row_base: np.ndarray  # (P,)
    syn_tab: np.ndarray  # (rows, C) synaptic operations per spike per core
    sram_tab: np.ndarray  # (rows, C) SRAM words read per spike per core
    msg_core: np.ndarray  # (rows,) the core sending the spike's messages (-1: the port)
    msg_count: np.ndarray  # (rows,) messages it sends
    unit_cycles: np.ndarray  # (units,) cycles of one operation of each unit slot


@dataclass
class Deliveries:
    """A presentation's synaptic deliveries, projection by projection: projection g's
    spikes of step t are sources `src[ptr[g, t]:ptr[g, t + 1]]` (rows of `tables`)."""

    ptr: np.ndarray  # (P, T + 1)
    src: np.ndarray
    tables: DeliveryTables


def _with_outers(dense: np.ndarray | None, factors: list) -> np.ndarray | None:
    """(T, C) `dense` plus the outer products of its factors [((T,), (C,))]."""
    if dense is None or not factors:
        return dense
    return dense + sum(np.outer(n, k) for n, k in factors)


def _per_core(dense: np.ndarray, factors: list) -> np.ndarray:
    """(C,) `dense` plus its factors' outer products, summed over the steps."""
    return dense.sum(axis=0) + sum(int(n.sum()) * k for n, k in factors)


@dataclass
class StepWork:
    """Per-step (rows) and per-core (columns) work of one presentation."""

    deliveries: Deliveries | None  # the synaptic deliveries (None: `load` given instead)
    # (T, C) stdp_update (plus `learn_pre`'s outer products: `learn_ops_total`); None
    # when not learning
    learn_ops: np.ndarray | None
    # (T, C) SRAM words read + written by learning (plus `learn_words_pre`'s outer
    # products: `learn_words_total`)
    learn_words: np.ndarray | None
    dram_bits: np.ndarray  # (T,) bits moved over the DRAM interface
    dram_streams: np.ndarray  # (T,) access streams that touched DRAM
    port_messages: np.ndarray  # (T,) packets sent through the input port
    spikes: np.ndarray  # (T,) spikes that have somewhere to go (inputs and on-chip)
    max_hops: np.ndarray  # (T,) longest route used in the step
    pass_words: np.ndarray  # (C,) SRAM words of the whole-matrix passes (0 if none)
    pass_ops: np.ndarray  # (C,) multiplies of the whole-matrix passes
    pass_dram_bits: int
    # the row buffers' outcomes (chip/dram.py); None: nothing touched DRAM
    dram_rows: DramSteps | None = None
    # (T,) the most chip-to-chip hops on a route used in the step, and the messages over
    # the busiest chip-to-chip link (None: one chip)
    max_chip_hops: np.ndarray | None = None
    chip_link_messages: np.ndarray | None = None
    # the cores' load per step (timing.CoreLoad) the deliveries make, once reduced (or
    # given: the closed-form estimate's expected load)
    load: CoreLoad | None = None
    # chips with per-neuron soma time (cores.soma_cycles), else None:
    soma: SomaSteps | None = None  # each core's soma work in each step
    # synapse unit (core action) -> (C,) its synaptic operations on each core
    unit_per_core: dict[str, np.ndarray] | None = None
    sram_per_core: np.ndarray | None = None  # (C,) delivery SRAM words summed over the steps
    updated: dict[str, np.ndarray] | None = None  # population -> (T,) neurons updated active
    # what the counts were made of, for the per-instance results: population -> (spikes per
    # step, their neurons), the step of each spike, and which neurons events reached
    fired: dict | None = None
    fired_steps: dict | None = None
    reached: dict | None = None
    # chips with per-neuron soma time: what computes `spike_soma` when first read (only the
    # fidelities that follow each message read it)
    soma_positions: Callable[[], dict] | None = field(default=None, repr=False)
    _spike_soma: dict | None = field(default=None, repr=False)
    # learning's cycles once reduced (timing.learn_load); not carried by dataclasses.replace
    _learn_load: tuple | None = field(default=None, init=False, repr=False)
    # stdp_update of every core holding a projection's targets at each presynaptic spike,
    # kept as its factors: ((T,) spikes per step, (C,) operations per spike on each core)
    learn_pre: list = field(default_factory=list)
    # the read-modify-write words of presynaptic spikes whose sources all hold the same
    # words on each core (a dense projection from the port), as factors: ((T,) words
    # rows per step, (C,) words of one row on each core)
    learn_words_pre: list = field(default_factory=list)

    def learn_ops_total(self) -> np.ndarray | None:
        """(T, C) every stdp_update: `learn_ops` plus `learn_pre`'s outer products."""
        return _with_outers(self.learn_ops, self.learn_pre)

    def learn_ops_per_core(self) -> np.ndarray:
        """(C,) stdp_update of each core over the presentation."""
        return _per_core(self.learn_ops, self.learn_pre)

    def learn_words_total(self) -> np.ndarray | None:
        """(T, C) every learning word: `learn_words` plus `learn_words_pre`'s outer products."""
        return _with_outers(self.learn_words, self.learn_words_pre)

    def learn_words_per_core(self) -> np.ndarray:
        """(C,) learning words of each core over the presentation."""
        return _per_core(self.learn_words, self.learn_words_pre)

    @property
    def shape(self) -> tuple[int, int]:
        """(steps, cores)."""
        return len(self.spikes), len(self.pass_words)

    @property
    def neuron_cycles(self) -> np.ndarray | None:
        """(T, C) each core's soma cycles in each step (chips with per-neuron soma time)."""
        return None if self.soma is None else self.soma.dense

    @property
    def spike_soma(self) -> dict[str, np.ndarray] | None:
        """Population -> for each of its spikes, the soma cycles of its core up to and
        including its neuron (chips with per-neuron soma time, else None)."""
        if self._spike_soma is None and self.soma_positions is not None:
            self._spike_soma = self.soma_positions()
        return self._spike_soma


@dataclass
class _Source:
    """Route figures of every presynaptic neuron of one projection."""

    fields: dict[str, np.ndarray]  # _ROUTE_FIELDS -> (n_src,)
    routes: list[Route]
    from_port: bool
    core: np.ndarray | None  # core of each source (None: the input port)
    # every source alike (one route, the same per-core work, nothing in DRAM): its spikes
    # are counted per step only, not one by one (the dense input projection)
    alike: bool = False
    route_table: np.ndarray | None = None  # (n_src, 5): _ROUTER_FIELDS of each source

    def __post_init__(self):
        self.route_table = np.stack([self.fields[f] for f in _ROUTER_FIELDS], axis=1)


class ChipCounter:
    """Routes and access tables for one (spec, chip) pair; counts presentations."""

    def __init__(self, mapping: Mapping, topology: Topology):
        m, spec = mapping, mapping.spec
        self.m, self.hw, self.topo, self.spec = m, m.hw, topology, spec
        self.dram = DramMap(m)
        self.tables: dict[str, AccessTable] = access_tables(m, self.dram)
        self.sources: dict[str, _Source] = {}
        for pr in spec.projections:
            from_port = not spec.population(pr.src).on_chip
            src_core = None if from_port else m.core[pr.src]
            routes = [topology.route(None if from_port else int(src_core[s]), m.dest_cores(pr.name, s))
                      for s in range(spec.population(pr.src).size)]
            fields = {f: np.array([getattr(r, f) for r in routes], np.int64) for f in _ROUTE_FIELDS}
            t = self.tables[pr.name]
            alike = (from_port and len(set(map(id, routes))) == 1 and not t.dram.any()
                     and (t.synops == t.synops[:, :1]).all() and (t.sram == t.sram[:, :1]).all())
            self.sources[pr.name] = _Source(fields, routes, from_port, src_core, bool(alike))
        self.has_outgoing = {p.name: bool(spec.outgoing(p.name)) for p in spec.populations}
        self._chip_links()
        # projections with spilled words: DRAM bits and access streams per source
        self.spills = {name: ((t.dram_bits.sum(axis=0), (t.dram > 0).sum(axis=0))
                              if t.dram.any() else None) for name, t in self.tables.items()}
        # the SRAM words of each STDP projection's rows, source-major (per_step's product)
        self.sram_by_src = {pr.name: np.ascontiguousarray(self.tables[pr.name].sram.T)
                            for pr in spec.projections if pr.plastic == "stdp"}
        self.row_words = {name: t.sum(axis=1) for name, t in self.sram_by_src.items()}
        # a whole-matrix pass of each STDP projection: its activations and row hits
        self.pass_rows = {pr.name: self._pass_rows(pr.name) for pr in spec.projections
                          if pr.plastic == "stdp"}
        self.soma = m.hw.cores.soma_cycles
        if self.soma is not None:  # each core's neurons in mapping order: spec order, then slot
            pops = spec.chip_populations
            base = np.zeros(m.n_cores, np.int64)
            pos = {}
            for q in pops:
                pos[q.name] = base[m.core[q.name]] + m.slot[q.name]
                base += m.k[q.name]
            core_all = np.concatenate([m.core[q.name] for q in pops])
            pos_all = np.concatenate([pos[q.name] for q in pops])
            self._order = np.lexsort((pos_all, core_all))  # neurons in (core, position) order
            self._rank = np.empty(len(core_all), np.int64)
            self._rank[self._order] = np.arange(len(core_all))
            self._core_sorted = core_all[self._order]
            self._pop_offset = dict(zip([q.name for q in pops],
                                        np.cumsum([0] + [q.size for q in pops])[:-1].tolist()))
            self._soma_table = SomaTable(m.neurons_per_core(), np.array(
                [m.k[q.name] for q in pops], np.int64).reshape(len(pops), m.n_cores),
                self.soma.idle, self.soma.active)
        self.incoming = {p.name: spec.incoming(p.name) for p in spec.populations}
        self.backprop = (BackpropCounter(m, topology, self.tables)
                         if any(pr.plastic == "bptt" for pr in spec.projections) else None)
        self.chip_pops = spec.chip_populations  # the populations on the cores, in spec order
        self.dst_cores = {p.name: int((m.k[p.name] > 0).sum()) for p in self.chip_pops}
        self.unit_cycles = unit_cycles(m.hw)
        self.delivery_tables = self._delivery_tables()

    def _delivery_tables(self) -> DeliveryTables:
        """Each projection's delivery rows (one for a projection whose sources are alike),
        its synapse unit's slot (one slot when every unit takes synop_cycles)."""
        m, C = self.m, self.m.n_cores
        slots = list(self.unit_cycles) if self.unit_cycles is not None else ["synop"]
        cycles = ([self.unit_cycles[u] for u in slots] if self.unit_cycles is not None
                  else [m.hw.cores.synop_cycles])
        rate, unit, base, syn, sram, core, count = [], [], [], [], [], [], []
        rows = 0
        for pr in self.spec.projections:
            tbl, src = self.tables[pr.name], self.sources[pr.name]
            keep = slice(0, 1) if src.alike else slice(None)
            n = tbl.synops[:, keep].shape[1]
            rate.append(src.alike)
            unit.append(slots.index(synapse_unit(pr)) if self.unit_cycles is not None else 0)
            base.append(rows)
            rows += n
            syn.append(tbl.synops[:, keep].T)
            sram.append(tbl.sram[:, keep].T if pr.stores_weights or src.alike
                        else np.zeros((n, C), np.int64))
            if src.from_port:
                core.append(np.full(n, -1, np.int64))
                count.append(np.zeros(n, np.int64))
            else:
                core.append(np.asarray(src.core, np.int64))
                count.append(src.fields["packets"])

        def cat(parts, shape):
            return (np.ascontiguousarray(np.concatenate(parts), np.int64) if parts
                    else np.zeros(shape, np.int64))

        return DeliveryTables(np.array(rate, np.int8), np.array(unit, np.int64),
                              np.array(base, np.int64), cat(syn, (0, C)), cat(sram, (0, C)),
                              cat(core, 0), cat(count, 0), np.array(cycles, np.int64))

    # ------------------------------------------------------------------ one
    def count(self, p: Presentation, *, learn: bool, learning: dict,
              state_reset: bool) -> tuple[Counter, StepWork]:
        """Counts and per-step work of one presentation. `learning`: per plastic projection
        {"pre_updates": bool}; `state_reset`: the rest between samples is a reset (the
        thresholds' decay through it is one update per neuron)."""
        m, spec, hw = self.m, self.spec, self.hw
        T, C = p.n_steps, m.n_cores
        cnt: Counter = Counter()
        spikes = {name: (p.counts[name].astype(np.int64), p.indices[name].astype(np.int64))
                  for name in spec.names}
        steps = {name: np.repeat(np.arange(T), n) for name, (n, _) in spikes.items()}

        dram_bits = np.zeros(T, np.int64)
        streams = np.zeros(T, np.int64)
        port = np.zeros(T, np.int64)
        max_hops = np.zeros(T, np.int64)
        max_chip = np.zeros(T, np.int64)
        chip_load = np.zeros((T, self.n_chip_links), np.int64) if self.n_chip_links else None
        rows: list[RowBatch] = []  # the DRAM streams, for the row buffers
        row_spikes: list[np.ndarray] = []  # each delivery stream's spike (trace order)
        routers = dict.fromkeys(_ROUTER_ACTIONS, 0)
        # synapse unit -> (C,) its synaptic operations per core; SRAM words read per core
        unit_pc: dict[str, np.ndarray] = {}
        sram_pc = np.zeros(C, np.int64)
        # the deliveries, projection by projection (their load per step: timing.core_load)
        ptr = np.zeros((len(spec.projections), T + 1), np.int64)
        src_of: list[np.ndarray] = []
        base = 0
        for g, pr in enumerate(spec.projections):
            n, idx = spikes[pr.src]
            ptr[g, 0] = base
            if not len(idx):
                ptr[g, 1:] = base
                continue
            np.cumsum(n, out=ptr[g, 1:])
            ptr[g, 1:] += base
            base += len(idx)
            src_of.append(idx)
            st, tbl, src = steps[pr.src], self.tables[pr.name], self.sources[pr.name]
            f = src.fields
            if chip_load is not None:  # messages over each chip-to-chip link, per step
                self._add_chip_load(chip_load, pr.name, src.alike, n, st, idx)
            unit = synapse_unit(pr)
            if src.alike:  # spikes x the one source's figures
                total = int(n.sum())
                self._add_unit(unit, total * tbl.synops[:, 0], unit_pc)
                sram_pc += total * tbl.sram[:, 0]
                for action, v in zip(_ROUTER_ACTIONS, src.route_table[0].tolist()):
                    routers[action] += total * v
                one = 1 if self.topo.multicast else int(f["packets"][0] + f["local"][0])
                port += n * one
                max_hops = np.maximum(max_hops, np.where(n > 0, f["max_hops"][0], 0))
                max_chip = np.maximum(max_chip, np.where(n > 0, f["max_chip_hops"][0], 0))
                continue
            # sums over the spikes of per-source figures: by source (a histogram) when the
            # spikes are many, else spike by spike (the same sums)
            hist = np.bincount(idx, minlength=len(src.routes)) if 4 * len(idx) > len(src.routes) else None
            # the few spikes' rows of the source-major delivery tables (a column gather of
            # the core-major access table would stride through all of it)
            rows_of = self.delivery_tables.row_base[g] + idx
            if pr.connectivity == "dense":
                pc = int(n.sum()) * m.k[pr.dst].astype(np.int64)
            else:
                pc = (self.delivery_tables.syn_tab[rows_of].sum(axis=0) if hist is None
                      else tbl.synops @ hist)
            self._add_unit(unit, pc, unit_pc)
            if pr.stores_weights:
                sram_pc += (self.delivery_tables.sram_tab[rows_of].sum(axis=0) if hist is None
                            else tbl.sram @ hist)
                spill = self.spills[pr.name]
                if spill is not None:  # bits and access streams per source; the streams
                    dram_bits += np.bincount(st, spill[0][idx], T).astype(np.int64)
                    streams += np.bincount(st, spill[1][idx], T).astype(np.int64)
                    sp, sid = self.dram.read_streams(pr.name, idx)
                    rows.append(RowBatch(st[sp], g, self.dram.reads[pr.name][2], sid))
                    row_spikes.append(ptr[g, 0] + sp)
            # _ROUTER_FIELDS, summed over the spikes
            used = src.route_table[idx].sum(axis=0) if hist is None else hist @ src.route_table
            for action, v in zip(_ROUTER_ACTIONS, used.tolist()):
                routers[action] += v
            if src.from_port:  # the port sends one multicast packet, or a copy per destination
                load = (np.ones(len(idx), np.int64) if self.topo.multicast
                        else f["packets"][idx] + f["local"][idx])
                port += np.bincount(st, load, T).astype(np.int64)
            np.maximum.at(max_hops, st, f["max_hops"][idx])
            np.maximum.at(max_chip, st, f["max_chip_hops"][idx])
        deliveries = Deliveries(ptr, np.concatenate(src_of) if src_of else np.zeros(0, np.int64),
                                self.delivery_tables)
        for unit, pc in unit_pc.items():
            cnt["core", unit] = int(pc.sum())
        if not unit_pc:
            cnt["core", "synop"] = 0
        cnt["sram", "read_word"] = int(sram_pc.sum())
        cnt["dram", "read_bit"] = int(dram_bits.sum())
        for action in ("activate", "precharge", "row_hit"):  # the row buffers' (_rows)
            cnt["dram", action] = 0
        for action, v in routers.items():
            cnt["router", action] = v

        in_pops = [q.name for q in spec.populations if not q.on_chip]
        chip_pops = [q.name for q in self.chip_pops]
        cnt["chip", "input_spike"] = sum(int(spikes[q][0].sum()) for q in in_pops)
        cnt["core", "spike_out"] = sum(int(spikes[q][0].sum()) for q in chip_pops)
        moving = sum((spikes[q][0] for q in spec.names if self.has_outgoing[q]),
                     np.zeros(T, np.int64))

        # ---- neuron updates: active or idle (updated_per_step) ----
        reached = {q.name: _Reached(self.incoming[q.name], q.size, spikes, steps, T)
                   for q in self.chip_pops
                   if active_stream(q.name) not in p.counts and not q.biased}
        updated = {q.name: updated_per_step(q, self.incoming[q.name], p, spikes, steps,
                                            reached.get(q.name))
                   for q in self.chip_pops}
        active = sum(int(u.sum()) for u in updated.values())
        total = T * sum(q.size for q in self.chip_pops)
        cnt["core", "neuron_update_active"] = active
        cnt["core", "neuron_update_idle"] = total - active
        if hw.sync.barrier:
            cnt["chip", "barrier"] = T

        learn_ops = learn_words = None
        # the presynaptic spikes' STDP arithmetic and words as factors (StepWork.learn_pre,
        # learn_words_pre)
        learn_pre: list = []
        words_pre: list = []
        pass_words = np.zeros(C, np.int64)
        pass_ops = np.zeros(C, np.int64)
        pass_bits = 0
        if learn:
            learn_ops = np.zeros((T, C), np.int64)
            learn_words = np.zeros((T, C), np.int64)
            dram_bits = dram_bits + self._learning(p, cnt, spikes, steps, T, learning, state_reset,
                                                   learn_ops, learn_pre, learn_words, words_pre,
                                                   rows)
            if self.backprop is not None:
                words, ops, bits = self.backprop.count(p, spikes, steps, T, cnt, learn_ops,
                                                       learn_words, dram_bits)
                pass_words += words
                pass_ops += ops
                pass_bits += bits
            passes = int(p.normalised) + p.decays
            for pr in spec.projections:
                if pr.plastic != "stdp" or not passes:
                    continue
                n_src = spec.population(pr.src).size
                tbl = self.tables[pr.name]
                k = m.k[pr.dst]
                if p.normalised:
                    cnt["core", "normalise_op"] += n_src * int(k.sum())
                if p.decays:
                    cnt["core", "decay_op"] += p.decays * n_src * int(k.sum())
                words = passes * tbl.block_sram
                bits = passes * int(tbl.block_dram_bits.sum())
                pass_words += words
                pass_ops += passes * n_src * k
                pass_bits += 2 * bits
                cnt["sram", "read_word"] += int(words.sum())
                cnt["sram", "write_word"] += int(words.sum())
                cnt["dram", "read_bit"] += bits
                cnt["dram", "write_bit"] += bits
                acts, hits = self.pass_rows[pr.name]
                cnt["dram", "activate"] += passes * acts
                cnt["dram", "precharge"] += passes * acts
                cnt["dram", "row_hit"] += passes * hits
        work = StepWork(deliveries, learn_ops, learn_words, dram_bits, streams, port, moving,
                        max_hops, pass_words, pass_ops, pass_bits,
                        dram_rows=self._rows(cnt, rows, row_spikes, T, base),
                        max_chip_hops=max_chip if self.hw.n_chips > 1 else None,
                        chip_link_messages=(chip_load.max(axis=1)
                                            if chip_load is not None else None),
                        learn_pre=learn_pre, learn_words_pre=words_pre)
        work.unit_per_core, work.sram_per_core, work.updated = unit_pc, sram_pc, updated
        work.fired, work.fired_steps, work.reached = spikes, steps, reached
        if self.soma is not None:
            self._soma(p, spikes, steps, T, work)
        return cnt, work

    def _add_chip_load(self, load: np.ndarray, name: str, alike: bool, n: np.ndarray,
                       step_of: np.ndarray, src: np.ndarray) -> None:
        """Add one projection's messages over each chip-to-chip link per step to `load`
        (T, links): the (step x source) spike counts times the sources' link rows; sources
        alike cross the same links, so their load is the spikes per step times one row."""
        links = self.chip_links[name]
        if not links.nnz:
            return
        if alike:
            load += np.outer(n, links.getrow(0).toarray()[0])
            return
        counts = sparse.csr_matrix((np.ones(len(src), np.int64), (step_of, src)),
                                   shape=(len(n), links.shape[0]))
        per_step = (counts @ links).tocoo()  # canonical: no duplicate (step, link)
        load[per_step.row, per_step.col] += per_step.data

    @staticmethod
    def _add_unit(unit: str, per_core: np.ndarray, unit_pc: dict) -> None:
        """Add one projection's synaptic operations per core to its synapse unit's."""
        unit_pc[unit] = unit_pc[unit] + per_core if unit in unit_pc else per_core

    def _soma(self, p: Presentation, spikes, steps, T: int, work: StepWork) -> None:
        """Per-neuron soma time: each core's soma work per step (idle, active and spike
        cycles of its neurons: soma.SomaSteps), and what tells where in it each spike's
        neuron is done (its messages leave then when the soma does not block synapses),
        computed when read."""
        m, soma, C = self.m, self.soma, self.m.n_cores
        whole, add = [], [(steps[q.name], m.core[q.name][spikes[q.name][1]],
                           np.full(len(steps[q.name]), soma.spike, np.int64))
                          for q in self.chip_pops]
        for q in self.chip_pops:
            w, (t, c, n) = updated_steps_core(q, self.incoming[q.name], m.core[q.name], C, p,
                                              spikes, steps, work.reached.get(q.name))
            whole.append(w)
            add.append((t, c, soma.active * n))
        none = np.zeros(0, np.int64)
        work.soma = self._soma_table.steps(
            np.stack(whole, axis=1) if whole else np.zeros((T, 0), bool),
            *(np.concatenate([a[i] for a in add] + [none]) for i in range(3)))
        work.soma_positions = partial(self._soma_positions, p, spikes, steps, T, work.reached)

    def _soma_positions(self, p: Presentation, spikes, steps, T: int, reached) -> dict:
        """Where in its core's soma work each spike's neuron is done: the soma cycles of the
        core's neurons up to and including it, in mapping order, at the steps with spikes
        only (StepWork.spike_soma)."""
        soma, C = self.soma, self.m.n_cores
        fired = [steps[q.name] for q in self.chip_pops]
        ts = np.unique(np.concatenate(fired)) if fired else np.zeros(0, np.int64)
        row = np.zeros(T, np.int64)
        row[ts] = np.arange(len(ts))
        N = len(self._order)
        cost = np.full((len(ts), N), soma.idle, np.int64)  # (steps with spikes, neurons)
        for q in self.chip_pops:
            off = self._pop_offset[q.name]
            active = active_rows(q, p, ts, reached.get(q.name))
            cost[:, self._rank[off:off + q.size]] += soma.active * active
            idx = spikes[q.name][1]
            np.add.at(cost, (row[steps[q.name]], self._rank[off + idx]), soma.spike)
        # cum[i, r]: soma cycles of the first r sorted neurons; a core's are a stretch of them
        cum = np.zeros((len(ts), N + 1), np.int64)
        np.cumsum(cost, axis=1, out=cum[:, 1:])
        first = np.searchsorted(self._core_sorted, np.arange(C))
        start_of = first[self._core_sorted]  # each sorted neuron's core's first position
        out = {}
        for q in self.chip_pops:
            r = self._rank[self._pop_offset[q.name] + spikes[q.name][1]]
            i = row[steps[q.name]]
            out[q.name] = cum[i, r + 1] - cum[i, start_of[r]]
        return out

    def _chip_links(self) -> None:
        """Per projection, the chip-to-chip links one spike of each source crosses
        (n_src x links, sparse), for the links' load at the `timestep` fidelity."""
        index: dict = {}
        self.chip_links, self.n_chip_links = {}, 0
        if self.hw.n_chips == 1:
            return
        per_route: dict[int, list[int]] = {}  # a Route (shared by its sources) -> link ids
        for pr in self.spec.projections:
            rows, cols = [], []
            for i, route in enumerate(self.sources[pr.name].routes):
                ids = per_route.get(id(route))
                if ids is None:
                    ids = per_route[id(route)] = [
                        index.setdefault(link, len(index)) for _, tree, _ in route.messages
                        for link, _ in tree if self.topo.crosses_chips(link)]
                rows.extend([i] * len(ids))
                cols.extend(ids)
            self.chip_links[pr.name] = (rows, cols)
        self.n_chip_links = len(index)
        for pr in self.spec.projections:
            rows, cols = self.chip_links[pr.name]
            self.chip_links[pr.name] = sparse.csr_matrix(
                (np.ones(len(rows), np.int64), (rows, cols)),
                shape=(len(self.sources[pr.name].routes), max(self.n_chip_links, 1)))

    def _pass_rows(self, name: str) -> tuple[int, int]:
        """Activations and row hits of one whole-matrix pass over a projection's spilled
        words: each core's block read, then written, from closed banks."""
        blk = self.dram.blocks[name]
        ids = np.flatnonzero(np.diff(blk.ptr) > 0)
        if not len(ids):
            return 0, 0
        (acts, _, hits), = self.dram.outcomes([RowBatch(np.zeros(len(ids), np.int64), 0, blk, ids, 2)])
        return int(acts.sum()), int(hits.sum())

    def _rows(self, cnt: Counter, rows: list[RowBatch], row_spikes: list[np.ndarray], T: int,
              n_spikes: int) -> DramSteps | None:
        """The row buffers' outcomes of a presentation's DRAM streams: counts
        (`dram.activate`, `dram.precharge`, `dram.row_hit`) and the per-step and
        per-delivery figures."""
        if not rows:
            return None
        out = self.dram.outcomes(rows)
        # every stream's rows are counted; the deliveries' are timed (write-backs take
        # their bytes at the bandwidth, as the event and simpy fidelities time learning
        # by the cores' lanes and ports)
        acts_t, conflicts_t = np.zeros(T, np.int64), np.zeros(T, np.int64)
        for b, (a, c, h) in zip(rows, out):
            cnt["dram", "activate"] += int(a.sum())
            cnt["dram", "precharge"] += int(a.sum())
            cnt["dram", "row_hit"] += int(h.sum())
            if b.repeat == 1:
                acts_t += np.bincount(b.step, a, T).astype(np.int64)
                conflicts_t += np.bincount(b.step, c, T).astype(np.int64)
        reads = [(b, o) for b, o in zip(rows, out) if b.repeat == 1]  # the deliveries
        cat = lambda parts: (np.concatenate(parts).astype(np.int64) if parts  # noqa: E731
                             else np.zeros(0, np.int64))
        ptr = np.zeros(n_spikes + 1, np.int64)
        np.cumsum(np.bincount(cat(row_spikes), minlength=n_spikes), out=ptr[1:])
        names = [pr.name for pr in self.spec.projections]
        return DramSteps(acts_t, conflicts_t, ptr,
                         cat([self.dram.core_of(names[b.rank], b.ids) for b, _ in reads]),
                         cat([o[0] for _, o in reads]), cat([o[1] for _, o in reads]))

    def _learning(self, p: Presentation, cnt: Counter, spikes, steps, T: int, learning: dict,
                  state_reset: bool, learn_ops: np.ndarray, learn_pre: list,
                  learn_words: np.ndarray, words_pre: list,
                  batches: list[RowBatch]) -> np.ndarray:
        """STDP counts of every plastic projection (the presynaptic spikes' arithmetic as
        factors in `learn_pre`, the rest in `learn_ops`; the words of rows alike on every
        core as factors in `words_pre`, the rest in `learn_words`); returns the extra DRAM
        bits per step and adds the write-backs' DRAM streams to `batches`."""
        m, spec = self.m, self.spec
        dram = np.zeros(T, np.int64)
        ops_total = words_total = 0
        post_traced = set()
        P = len(spec.projections)
        for g, pr in enumerate(spec.projections):
            if pr.plastic != "stdp":
                continue
            pre_updates = bool(learning.get(pr.name, {}).get("pre_updates", True))
            tbl = self.tables[pr.name]
            n_src = spec.population(pr.src).size
            ni, ii = spikes[pr.src]
            ne, ie = spikes[pr.dst]
            # STDP arithmetic at the spikes (accumulated with timestep-based updates) ...
            if pre_updates:
                learn_pre.append((ni, m.k[pr.dst]))
            if len(ie):
                np.add.at(learn_ops, (steps[pr.dst], m.core[pr.dst][ie]), n_src)
                ops_total += len(ie) * n_src
            # ... and the read-modify-write of what was written back (the learning events)
            rows, cols = stdp_event_streams(pr.name)
            if rows in p.counts:
                rc, ri = p.counts[rows].astype(np.int64), p.indices[rows].astype(np.int64)
                cc, ci = p.counts[cols].astype(np.int64), p.indices[cols].astype(np.int64)
            else:  # no write-back events: the stdp rule writes back at every spike (the
                # presynaptic one's row, when it updates rows, and the postsynaptic one's column)
                rc, ri = (ni, ii) if pre_updates else (ni * 0, ii[:0])
                cc, ci = ne, ie
            step_r, step_c = np.repeat(np.arange(T), rc), np.repeat(np.arange(T), cc)
            if self.sources[pr.name].alike:  # every row the same words on each core
                words_pre.append((2 * rc, self.sram_by_src[pr.name][0]))
            else:
                learn_words += per_step(self.sram_by_src[pr.name], ri, step_r, T, times=2)
            words_total += 2 * int(self.row_words[pr.name][ri].sum())
            spill = self.spills[pr.name]
            dram_w = (np.bincount(step_r, spill[0][ri], T).astype(np.int64) if spill is not None
                      else np.zeros(T, np.int64))
            if spill is not None:  # each row written back: read, then write
                sp, sid = self.dram.read_streams(pr.name, ri)
                batches.append(RowBatch(step_r[sp], P + 2 * g, self.dram.reads[pr.name][2], sid, 2))
                batches.append(RowBatch(step_c, P + 2 * g + 1, self.dram.columns[pr.name], ci, 2))
            if len(ci):
                np.add.at(learn_words, (step_c, m.core[pr.dst][ci]), 2 * tbl.col_sram[ci])
                words_total += 2 * int(tbl.col_sram[ci].sum())
                dram_w += np.bincount(step_c, tbl.col_dram_bits[ci], T).astype(np.int64)
            cnt["dram", "read_bit"] += int(dram_w.sum())
            cnt["dram", "write_bit"] += int(dram_w.sum())
            dram += 2 * dram_w
            # presynaptic traces, replicated in every core holding targets, and their sets
            cores = self.dst_cores[pr.dst]
            cnt["core", "trace_update"] += T * cores * n_src + int(ni.sum()) * cores
            post_traced.add(pr.dst)
        cnt["core", "stdp_update"] = ops_total + sum(int(n.sum()) * int(k.sum())
                                                     for n, k in learn_pre)
        rmw = words_total // 2
        cnt["sram", "read_word"] += rmw
        cnt["sram", "write_word"] += rmw
        for name in post_traced:  # postsynaptic traces decay every step, set at a spike
            q = spec.population(name)
            cnt["core", "trace_update"] += len(q.trace_vars) * (T * q.size + int(spikes[name][0].sum()))
        for q in self.chip_pops:  # adaptive thresholds decay every step, rise at a spike
            if q.kind == "adaptive_lif":
                cnt["core", "threshold_update"] += (T * q.size + int(spikes[q.name][0].sum())
                                                    + (q.size if state_reset else 0))
        return dram


def updated_per_step(q, incoming, p: Presentation, spikes, steps, reached=None) -> np.ndarray:
    """(T,) neurons of population q updated as active at each step: as the trace's
    `<population>:active` stream says (a frontend that knows the state), else all of them
    when they have a bias (it changes them every step), else those a synaptic event reached
    in the previous step (events of the last step reach nothing in the presentation);
    `reached`: the latter, when already known."""
    T = p.n_steps
    given = active_stream(q.name)
    if given in p.counts:
        return p.counts[given].astype(np.int64)
    if q.biased:
        return np.full(T, q.size, np.int64)
    touched = _Reached(incoming, q.size, spikes, steps, T) if reached is None else reached
    touched = touched.per_step(q.size, T)
    return np.concatenate([[0], touched[:-1]]) if T else touched


def updated_per_core(q, incoming, core: np.ndarray, C: int, p: Presentation, spikes,
                     steps, reached=None) -> np.ndarray:
    """(C,) updates of population q's neurons counted active over the presentation, per
    core (`core`: each neuron's): the neurons `updated_per_step` counts, each on its core."""
    T = p.n_steps
    given = active_stream(q.name)
    if given in p.counts:
        return np.bincount(core[p.indices[given].astype(np.int64)], minlength=C)
    k = np.bincount(core, minlength=C)
    if q.biased:
        return T * k
    r = _Reached(incoming, q.size, spikes, steps, T) if reached is None else reached
    before_last = np.arange(T) < T - 1  # events of the last step reach nothing
    whole = r.full & before_last
    out = int(whole.sum()) * k
    left_out = r.left_out & before_last & ~whole  # all but one neuron
    out += int(left_out.sum()) * k
    np.subtract.at(out, core[r.who[left_out[r.ex_step]]], 1)
    t, j = r.keys // q.size, r.keys % q.size
    keep = before_last[t] & ~r.full[t] & ~r.left_out[t]
    return out + np.bincount(core[j[keep]], minlength=C)


def updated_steps_core(q, incoming, core: np.ndarray, C: int, p: Presentation, spikes,
                       steps, reached=None) -> tuple[np.ndarray, tuple]:
    """Population q's neurons counted active at each step (`updated_per_step`'s), per core
    (`core`: each neuron's), in two parts: the (T,) steps at which all of them are, and
    the rest as additions (steps, cores, neurons) to those steps' per-core counts (-1 at a
    whole step where all but one neuron are)."""
    T = p.n_steps
    given = active_stream(q.name)
    if given in p.counts:  # each neuron at most once a step, as updated_per_step counts them
        st = np.repeat(np.arange(T), p.counts[given].astype(np.int64))
        key, n = np.unique(st * C + core[p.indices[given].astype(np.int64)], return_counts=True)
        return np.zeros(T, bool), (key // C, key % C, n)
    if q.biased:
        none = np.zeros(0, np.int64)
        return np.ones(T, bool), (none, none, none)
    r = _Reached(incoming, q.size, spikes, steps, T) if reached is None else reached
    # events of step t make the neurons they reached active at step t + 1
    whole = np.zeros(T, bool)
    whole[1:] = r.full[:-1]
    before_last = r.ex_step < T - 1
    left = r.ex_step[before_last] + 1
    whole[left] = True
    t, j = r.keys // q.size, r.keys % q.size
    keep = (t < T - 1) & ~r.full[t] & ~r.left_out[t]
    return whole, (np.concatenate([left, t[keep] + 1]),
                   np.concatenate([core[r.who[before_last]], core[j[keep]]]),
                   np.concatenate([np.full(len(left), -1, np.int64),
                                   np.ones(int(keep.sum()), np.int64)]))


def active_rows(q, p: Presentation, ts: np.ndarray, reached) -> np.ndarray:
    """(len(ts), n) population q's neurons updated active at steps `ts`: as the trace's
    `:active` stream says, all of them when biased, else those `reached` (its _Reached)
    says a synaptic event reached at the step before."""
    T, n = p.n_steps, q.size
    out = np.zeros((len(ts), n), bool)
    row = np.full(T + 1, -1, np.int64)
    row[ts] = np.arange(len(ts))
    given = active_stream(q.name)
    if given in p.counts:
        st = np.repeat(np.arange(T), p.counts[given].astype(np.int64))
        r = row[st]
        out[r[r >= 0], p.indices[given].astype(np.int64)[r >= 0]] = True
        return out
    if q.biased:
        out[:] = True
        return out
    prev = ts - 1
    ok = prev >= 0
    out[ok & reached.full[prev]] = True
    left = np.flatnonzero(ok & reached.left_out[prev])  # all but one neuron
    if len(left):
        who = np.zeros(T, np.int64)
        who[reached.ex_step] = reached.who
        out[left] = True
        out[left, who[prev[left]]] = False
    t, j = reached.keys // n, reached.keys % n
    r = row[t + 1]
    out[r[r >= 0], j[r >= 0]] = True
    return out


class _Reached:
    """Which neurons of a population of `n` (its `incoming` projections) a synaptic event
    reached at each step: every neuron at `full` steps; at `left_out` steps all but
    neuron `who[i]` of step `ex_step[i]` (one entry per such step); at the other steps the
    neurons of `keys` (step * n + neuron, distinct). `spikes`: population -> (per-step
    counts, indices); `steps`: population -> the step of each spike."""

    def __init__(self, incoming, n: int, spikes, steps, T: int):
        full = np.zeros(T, bool)
        keys = []  # step * n + neuron, for events that reach single neurons
        excluded = []  # (step, neuron): all but this neuron reached
        for pr in incoming:
            cnt, idx = spikes[pr.src]
            if not len(idx):
                continue
            st = steps[pr.src]
            if pr.connectivity == "dense":
                full |= cnt > 0
            elif pr.connectivity in ("all_but_self", "lateral"):
                full |= cnt >= 2
                single = np.flatnonzero(cnt == 1)
                if len(single):
                    first = np.concatenate([[0], np.cumsum(cnt)[:-1]])[single]
                    excluded.append((single, idx[first]))
            elif pr.connectivity == "one_to_one":
                keys.append(st * n + idx)
            else:
                pre, post = pr.connections
                order = np.argsort(pre, kind="stable")
                starts = np.searchsorted(pre[order], idx)
                ends = np.searchsorted(pre[order], idx, side="right")
                reps = ends - starts
                flat = np.concatenate([order[a:b] for a, b in zip(starts, ends)]) if len(idx) else []
                keys.append(np.repeat(st, reps) * n + post[np.asarray(flat, np.int64)])
        self.keys = np.unique(np.concatenate(keys)) if keys else np.zeros(0, np.int64)
        self.left_out = np.zeros(T, bool)
        self.ex_step = self.who = np.zeros(0, np.int64)
        if len(excluded) == 1:  # one projection leaves out one neuron per step at most
            t, who = excluded[0]
            if len(self.keys):  # reached by another event too: all are
                full[t[np.isin(t * n + who, self.keys)]] = True
            one = ~full[t]
            self.ex_step, self.who = t[one], who[one]
            self.left_out[self.ex_step] = True
        elif excluded:  # steps where all but one neuron were reached
            st_ex = np.concatenate([e[0] for e in excluded])
            who = np.concatenate([e[1] for e in excluded])
            order = np.lexsort((who, st_ex))
            st_ex, who = st_ex[order], who[order]
            first = np.ones(len(st_ex), bool)
            first[1:] = st_ex[1:] != st_ex[:-1]
            # two different neurons left out at one step: between them, all are reached
            differ = np.zeros(len(st_ex), bool)
            differ[1:] = (st_ex[1:] == st_ex[:-1]) & (who[1:] != who[:-1])
            every = np.zeros(T, bool)
            every[st_ex[differ]] = True
            every[st_ex[first]] |= np.isin(st_ex[first] * n + who[first], self.keys)  # reached too
            full |= every
            t = st_ex[first]
            one = ~full[t]
            self.ex_step, self.who = t[one], who[first][one]
            self.left_out[self.ex_step] = True
        self.full = full

    def per_step(self, n: int, T: int) -> np.ndarray:
        """(T,) neurons reached at each step."""
        partial = (np.bincount(self.keys // n, minlength=T)[:T] if len(self.keys)
                   else np.zeros(T, np.int64))
        return np.where(self.full, n, np.where(self.left_out, n - 1, partial)).astype(np.int64)


def per_step(values: np.ndarray, src: np.ndarray, step_of: np.ndarray, T: int, *,
             times: int = 1) -> np.ndarray:
    """Sum the rows `src` of values (n_src, C), `times` per spike (of step `step_of`), by
    step -> (T, C): the spikes' (step x source) counts times the table, one sparse product
    (a C-contiguous table: scipy would copy a transposed view at every call)."""
    n_src, C = values.shape
    if not len(src):
        return np.zeros((T, C), np.int64)
    counts = sparse.csr_matrix((np.full(len(src), times, np.int64), (step_of, src)),
                               shape=(T, n_src))
    return np.asarray((counts @ values), np.int64).reshape(T, C)