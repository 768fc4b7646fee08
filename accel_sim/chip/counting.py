"""Count every action of a presentation on the chip, vectorised over its steps.

`count_presentation` turns one SpikeTrace presentation into
  - action totals per component class (dict (class, action) -> int), and
  - per-step, per-core work (synops, SRAM words, learning ops, DRAM bits,
    packets) from which the fidelity models derive cycles.
Both fidelities use these same counts, so they agree on counts exactly.

Actions (docs/chip.md): an input spike enters at the input port (chip.input_spike),
is one multicast packet (router.inject + hops) to every core holding excitatory
neurons, reads its weight row there (sram.read_word, or dram.read_bit for spilled
words) and makes one synop per target. An excitatory spike (core.spike_out) goes
to its inhibitory partner (router.local_delivery on the same core, else a unicast
packet), one word and one synop there. An inhibitory spike is multicast to every
excitatory core and reads its row of the all-but-self inh->exc block. Every
neuron is updated every step: active if it received a synaptic event in the
previous step, idle otherwise. Learning adds per input spike a read-modify-write
of its row (stdp_update per weight), per excitatory spike of its column, traces
(pre traces replicated in every excitatory core), thresholds and normalisation.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from snn_frontend.trace import Presentation

from .access import AccessTables
from .mapping import Mapping
from .noc import Mesh

__all__ = ["Counter_", "StepWork", "ChipCounter"]

Counter_ = Counter  # (component class, action) -> count


@dataclass
class StepWork:
    """Per-step (rows) and per-core (columns) work of one presentation."""

    synops: np.ndarray  # (T, C)
    sram_reads: np.ndarray  # (T, C) delivery reads
    learn_ops: np.ndarray  # (T, C) stdp_update
    learn_words: np.ndarray  # (T, C) SRAM words read + written by learning
    dram_bits: np.ndarray  # (T,) bits moved over the DRAM interface
    dram_streams: np.ndarray  # (T,) access streams that touched DRAM
    in_packets: np.ndarray  # (T,) input spikes injected at the port
    core_packets: np.ndarray  # (T,) exc + inh spikes leaving cores
    max_hops: np.ndarray  # (T,) longest route used in the step
    normalise_words: np.ndarray  # (C,) SRAM words of the whole-matrix passes (0 if none)
    normalise_dram_bits: int
    passes: int = 0  # whole-matrix passes: normalisation + weight decay / leak


class ChipCounter:
    """Precomputed routes and access tables for one (network, chip) pair."""

    def __init__(self, mapping: Mapping):
        m, hw = mapping, mapping.hw
        self.m, self.hw = m, hw
        self.acc = AccessTables.build(m)
        net = m.net
        mesh = Mesh(hw.cores.mesh_width, hw.cores.mesh_height)
        self.mesh = mesh
        multicast = hw.noc.cast == "multicast"
        exc_cores = m.exc_cores
        self.in_route = mesh.route(tuple(hw.noc.input_port), exc_cores, multicast)
        by_core = {c: mesh.route(mesh.xy(c), exc_cores, multicast) for c in range(m.n_cores)}
        self.inh_routes = [by_core[int(c)] for c in m.inh_core]
        self.ei_routes = [mesh.route(mesh.xy(int(m.exc_core[j])), [int(m.inh_core[j])], False)
                          for j in range(min(net.n_exc, net.n_inh))]
        r = lambda routes, f: np.array([getattr(x, f) for x in routes], np.int64)  # noqa: E731
        self.inh_r = {f: r(self.inh_routes, f) for f in ("hops_ew", "hops_ns", "packets", "local", "max_hops")}
        # direct lateral inhibition: exc j multicasts a scalar-strength spike to every exc core
        self.lat_r = {f: r([by_core[int(c)] for c in m.exc_core], f)
                      for f in ("hops_ew", "hops_ns", "packets", "local", "max_hops")}
        self.lat_synops = (m.k_exc[:, None] - (m.exc_core[None, :] == np.arange(m.n_cores)[:, None])
                           ).astype(np.int64)  # (C, n_exc)
        self.ei_r = {f: r(self.ei_routes, f) for f in ("hops_ew", "hops_ns", "packets", "local", "max_hops")}
        self.n_exc_cores = len(exc_cores)

    # ------------------------------------------------------------------ one
    def count(self, p: Presentation, *, learn: bool, reset_rest: bool) -> tuple[Counter, StepWork]:
        m, a, net, hw = self.m, self.acc, self.m.net, self.hw
        T, C = p.n_steps, m.n_cores
        ni, ne, nh = (p.counts[k].astype(np.int64) for k in ("input", "exc", "inh"))
        ii, ie, ih = (p.indices[k].astype(np.int64) for k in ("input", "exc", "inh"))
        step_in, step_e, step_h = (np.repeat(np.arange(T), n) for n in (ni, ne, nh))
        s_in, s_e, s_h = int(ni.sum()), int(ne.sum()), int(nh.sum())
        cnt: Counter = Counter()

        # ---- per-step per-core work (delivery) --------------------------------
        synops = np.outer(ni, m.k_exc)
        in_rows = _per_step(a.in_sram[:, ii], step_in, T)
        sram = in_rows.copy()
        dram_bits = _per_step(a.in_dram_bits[:, ii], step_in, T).sum(axis=1)
        streams = _per_step((a.in_dram[:, ii] > 0).astype(np.int64), step_in, T).sum(axis=1)
        act = int(a.in_act[:, ii].sum())
        if s_e and net.lateral:  # no weights: each core adds the scalar to k_c - [self]
            synops += _per_step(self.lat_synops[:, ie], step_e, T)
        elif s_e:
            dst = m.inh_core[ie]
            np.add.at(synops, (step_e, dst), 1)
            np.add.at(sram, (step_e, dst), a.ei_sram[ie])
            np.add.at(dram_bits, step_e, a.ei_dram_bits[ie])
            np.add.at(streams, step_e, (a.ei_dram[ie] > 0).astype(np.int64))
            act += int(a.ei_act[ie].sum())
        if s_h:
            synops += _per_step(a.inh_synops[:, ih], step_h, T)
            sram += _per_step(a.inh_sram[:, ih], step_h, T)
            dram_bits += _per_step(a.inh_dram_bits[:, ih], step_h, T).sum(axis=1)
            streams += _per_step((a.inh_dram[:, ih] > 0).astype(np.int64), step_h, T).sum(axis=1)
            act += int(a.inh_act[:, ih].sum())
        cnt["core", "synop"] = int(synops.sum())
        cnt["sram", "read_word"] = int(sram.sum())
        cnt["dram", "read_bit"] = int(dram_bits.sum())
        cnt["dram", "activate"] = act

        # ---- spikes, packets, hops --------------------------------------------
        ir = self.in_route
        er = self.lat_r if net.lateral else self.ei_r
        cnt["chip", "input_spike"] = s_in
        cnt["core", "spike_out"] = s_e + s_h
        for action, f in (("inject", "packets"), ("hop_ew", "hops_ew"), ("hop_ns", "hops_ns"),
                          ("local_delivery", "local")):
            cnt["router", action] = (s_in * getattr(ir, f) + int(er[f][ie].sum())
                                     + int(self.inh_r[f][ih].sum()))
        max_hops = np.where(ni > 0, ir.max_hops, 0)
        if s_e:
            np.maximum.at(max_hops, step_e, er["max_hops"][ie])
        if s_h:
            np.maximum.at(max_hops, step_h, self.inh_r["max_hops"][ih])

        # ---- neuron updates: active if a synaptic event arrived last step ----
        prev_in, prev_h, prev_e = (np.concatenate([[0], x[:-1]]) for x in (ni, nh, ne))
        prev_inhib = prev_e if net.lateral else prev_h  # spikes that inhibit all but their source
        act_exc = np.where((prev_in > 0) | (prev_inhib >= 2), net.n_exc,
                           np.where(prev_inhib == 1, net.n_exc - 1, 0))
        active = int(act_exc.sum() + (0 if net.lateral else prev_e.sum()))
        total = T * (net.n_exc + net.n_inh)
        cnt["core", "neuron_update_active"] = active
        cnt["core", "neuron_update_idle"] = total - active
        if hw.sync.barrier:
            cnt["chip", "barrier"] = T

        # ---- learning ------------------------------------------------------------
        learn_ops = np.zeros((T, C), np.int64)
        learn_words = np.zeros((T, C), np.int64)
        norm_words = np.zeros(C, np.int64)
        norm_bits = passes = 0
        if learn:
            # STDP arithmetic at the spikes (accumulated, with timestep-based updates) ...
            if net.depression:
                learn_ops += np.outer(ni, m.k_exc)
            if s_e:
                np.add.at(learn_ops, (step_e, m.exc_core[ie]), net.n_in)
            # ... and the read-modify-write of what is written back (the trace's events)
            if "row_update" in p.counts:
                rc, ri = p.counts["row_update"].astype(np.int64), p.indices["row_update"].astype(np.int64)
                cc_, ci = p.counts["col_update"].astype(np.int64), p.indices["col_update"].astype(np.int64)
            else:  # a trace without events: D&C writes at every spike
                rc, ri = (ni, ii) if net.depression else (ni * 0, ii[:0])
                cc_, ci = ne, ie
            step_r, step_c = np.repeat(np.arange(T), rc), np.repeat(np.arange(T), cc_)
            learn_words += 2 * _per_step(a.in_sram[:, ri], step_r, T)
            dram_w = _per_step(a.in_dram_bits[:, ri], step_r, T).sum(axis=1)
            act_l = int(a.in_act[:, ri].sum())
            if len(ci):
                np.add.at(learn_words, (step_c, m.exc_core[ci]), 2 * a.col_sram[ci])
                np.add.at(dram_w, step_c, a.col_dram_bits[ci])
                act_l += int(a.col_act[ci].sum())
            cnt["core", "stdp_update"] = int(learn_ops.sum())
            rmw_sram = int(learn_words.sum()) // 2
            cnt["sram", "read_word"] += rmw_sram
            cnt["sram", "write_word"] += rmw_sram
            cnt["dram", "read_bit"] += int(dram_w.sum())
            cnt["dram", "write_bit"] += int(dram_w.sum())
            cnt["dram", "activate"] += 2 * act_l
            dram_bits = dram_bits + 2 * dram_w
            cnt["core", "trace_update"] = (T * (self.n_exc_cores * net.n_in + 2 * net.n_exc)
                                           + s_in * self.n_exc_cores + 2 * s_e)
            cnt["core", "threshold_update"] = T * net.n_exc + s_e + (net.n_exc if reset_rest else 0)
            # whole-matrix passes: the normalisation before the presentation and the weight
            # decay / leak passes after it; each reads, scales and writes every weight
            if p.normalised:
                cnt["core", "normalise_op"] = net.n_in * net.n_exc
            if p.decays:
                cnt["core", "decay_op"] = p.decays * net.n_in * net.n_exc
            passes = int(p.normalised) + p.decays
            if passes:
                norm_words = passes * a.block_sram
                norm_bits = passes * int(a.block_dram_bits.sum())
                cnt["sram", "read_word"] += int(norm_words.sum())
                cnt["sram", "write_word"] += int(norm_words.sum())
                cnt["dram", "read_bit"] += norm_bits
                cnt["dram", "write_bit"] += norm_bits
                cnt["dram", "activate"] += 2 * passes * int(a.block_act.sum())
        work = StepWork(synops, sram, learn_ops, learn_words, dram_bits, streams, ni, ne + nh,
                        max_hops, norm_words, 2 * norm_bits, passes)
        return cnt, work


def _per_step(values: np.ndarray, step_of: np.ndarray, T: int) -> np.ndarray:
    """Sum the columns of values (C, S), one per spike in step order, by step -> (T, C)."""
    C, S = values.shape
    if S == 0:
        return np.zeros((T, C), np.int64)
    cs = np.zeros((C, S + 1), np.int64)
    np.cumsum(values, axis=1, out=cs[:, 1:])
    ptr = np.searchsorted(step_of, np.arange(T + 1))  # spikes are in step order
    return (cs[:, ptr[1:]] - cs[:, ptr[:-1]]).T
