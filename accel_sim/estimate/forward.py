"""Closed forms of a presentation of a spiking network on the chip: the counts of its
spikes (and of STDP learning), and its steps' cycles (docs/analytical.md)."""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import replace

import numpy as np

from snn_frontend.trace import stdp_event_streams

from ..chip.counting import ChipCounter, StepWork, synapse_unit
from ..chip.dram import DramSteps
from ..chip.soma import SomaSteps
from ..chip.timing import HwRates, pass_cycles, timestep_cycles
from ..chip.topology import ROUTER_COUNTS
from .activity import PhaseActivity

__all__ = ["counts", "passes_cycles", "step_cycles"]


def _not_touched(counter: ChipCounter, q, rates: dict) -> float:
    """Probability that no synaptic event reaches a given neuron of q in a step."""
    p = 1.0
    for pr in counter.incoming[q.name]:
        lam = rates.get(pr.src, 0.0)
        r = lam / counter.spec.population(pr.src).size
        if pr.connectivity == "dense":
            p *= math.exp(-lam)
        elif pr.connectivity in ("all_but_self", "lateral"):
            p *= math.exp(-lam) * (1 + r)  # none, or only the neuron itself
        elif pr.connectivity == "one_to_one":
            p *= math.exp(-r)
        else:
            fan_in = len(pr.connections[0]) / q.size
            p *= math.exp(-r * fan_in)
    return p


def counts(counter: ChipCounter, act: PhaseActivity) -> Counter:
    """Expected counts of one presentation."""
    spec, hw, T, rates = counter.spec, counter.hw, act.steps, act.rates
    burst = 8 * hw.dram.burst_bytes  # bits of a DRAM burst
    cnt: Counter = Counter()
    for pr in spec.projections:
        r = act.per_neuron(pr.src, spec.population(pr.src).size) * T  # spikes of each source
        tbl, f = counter.tables[pr.name], counter.sources[pr.name].fields
        cnt["core", synapse_unit(pr)] += float(tbl.synops.sum(axis=0) @ r)
        if pr.stores_weights:
            cnt["sram", "read_word"] += float(tbl.sram.sum(axis=0) @ r)
            cnt["dram", "read_bit"] += float(tbl.dram_bits.sum(axis=0) @ r)
            acts = float(tbl.act.sum(axis=0) @ r)
            cnt["dram", "activate"] += acts
            cnt["dram", "precharge"] += acts
            cnt["dram", "row_hit"] += float(tbl.dram_bits.sum(axis=0) @ r) / burst - acts
        for action, key in ROUTER_COUNTS:
            cnt["router", action] += float(f[key] @ r)
    cnt["chip", "input_spike"] = T * sum(rates.get(q.name, 0.0) for q in spec.populations
                                         if not q.on_chip)
    cnt["core", "spike_out"] = T * sum(rates.get(q.name, 0.0) for q in spec.chip_populations)
    active = sum(T * _active_share(counter, q, act) * q.size for q in spec.chip_populations)
    cnt["core", "neuron_update_active"] = active
    cnt["core", "neuron_update_idle"] = T * sum(q.size for q in spec.chip_populations) - active
    if hw.sync.barrier:
        cnt["chip", "barrier"] = T
    if act.learn:
        _learning(counter, act, cnt)
    return cnt


def _learning(counter: ChipCounter, act: PhaseActivity, cnt: Counter) -> None:
    m, spec, T, rates = counter.m, counter.spec, act.steps, act.rates
    burst = 8 * counter.hw.dram.burst_bytes  # bits of a DRAM burst
    post_traced = set()
    passes = act.normalised + act.decays
    for pr in spec.projections:
        if pr.plastic != "stdp":
            continue
        pre_updates = bool(act.learning.get(pr.name, {}).get("pre_updates", True))
        tbl = counter.tables[pr.name]
        n_src, n_dst = spec.population(pr.src).size, spec.population(pr.dst).size
        lam_src, lam_dst = rates.get(pr.src, 0.0), rates.get(pr.dst, 0.0)
        k = m.k[pr.dst]
        cnt["core", "stdp_update"] += T * ((lam_src * k.sum() if pre_updates else 0.0)
                                           + lam_dst * n_src)
        row_s, col_s = stdp_event_streams(pr.name)
        if row_s in rates:  # the trace's learning events: the rows and columns written
            rows, cols = act.per_neuron(row_s, n_src) * T, act.per_neuron(col_s, n_dst) * T
        else:  # no write-back events: the stdp rule writes back at every spike
            rows = act.per_neuron(pr.src, n_src) * T * (1.0 if pre_updates else 0.0)
            cols = act.per_neuron(pr.dst, n_dst) * T
        words = float(tbl.sram.sum(axis=0) @ rows + tbl.col_sram @ cols)
        bits = float(tbl.dram_bits.sum(axis=0) @ rows + tbl.col_dram_bits @ cols)
        cnt["sram", "read_word"] += words
        cnt["sram", "write_word"] += words
        cnt["dram", "read_bit"] += bits
        cnt["dram", "write_bit"] += bits
        # a row written back was just read (the write finds its rows open); a column's
        # scattered words are read, then written, each pass opening its rows
        acts = float(tbl.act.sum(axis=0) @ rows) + 2 * float(tbl.col_act @ cols)
        cnt["dram", "activate"] += acts
        cnt["dram", "precharge"] += acts
        cnt["dram", "row_hit"] += 2 * bits / burst - acts
        cores = counter.dst_cores[pr.dst]
        cnt["core", "trace_update"] += T * cores * (n_src + lam_src)
        post_traced.add(pr.dst)
        if passes:
            ops = n_src * int(k.sum())
            cnt["core", "normalise_op"] += act.normalised * ops
            cnt["core", "decay_op"] += act.decays * ops
            w = passes * int(tbl.block_sram.sum())
            b = passes * int(tbl.block_dram_bits.sum())
            cnt["sram", "read_word"] += w
            cnt["sram", "write_word"] += w
            cnt["dram", "read_bit"] += b
            cnt["dram", "write_bit"] += b
            acts, hits = counter.pass_rows[pr.name]
            cnt["dram", "activate"] += passes * acts
            cnt["dram", "precharge"] += passes * acts
            cnt["dram", "row_hit"] += passes * hits
    for name in post_traced:
        q = spec.population(name)
        cnt["core", "trace_update"] += len(q.trace_vars) * T * (q.size + rates.get(name, 0.0))
    for q in spec.chip_populations:
        if q.kind == "adaptive_lif":
            cnt["core", "threshold_update"] += (T * (q.size + rates.get(q.name, 0.0))
                                                + (q.size if act.state_reset else 0))


def _per_spike(counter: ChipCounter, act: PhaseActivity) -> dict:
    """The mean work of one spike that moves (the sources' spikes weighted by their rates)."""
    m, spec, C = counter.m, counter.spec, counter.m.n_cores
    rates = act.rates
    lam = sum(rates.get(q.name, 0.0) for q in spec.populations if counter.has_outgoing[q.name])
    w = {k: np.zeros(C) for k in ("synops", "sram", "deliveries", "core_msgs", "learn_ops",
                                  "learn_words", "synop_time")}
    w.update(dram_bits=0.0, streams=0.0, acts=0.0, port=0.0, max_hops=0.0, max_chip_hops=0.0)
    if lam <= 0:
        return w
    for pr in spec.projections:
        n_src = spec.population(pr.src).size
        share = act.per_neuron(pr.src, n_src) / lam  # each source neuron's share of a spike
        if not share.any():
            continue
        tbl, src = counter.tables[pr.name], counter.sources[pr.name]
        f = src.fields
        w["synops"] += tbl.synops @ share
        if counter.unit_cycles is not None:  # synapse units of their own speed
            w["synop_time"] += (tbl.synops @ share) * (
                counter.unit_cycles[synapse_unit(pr)] / counter.hw.cores.synapse_lanes)
        w["deliveries"] += (tbl.synops > 0) @ share
        if pr.stores_weights:
            w["sram"] += tbl.sram @ share
            w["dram_bits"] += float(tbl.dram_bits.sum(axis=0) @ share)
            w["streams"] += float((tbl.dram > 0).sum(axis=0) @ share)
            w["acts"] += float(tbl.act.sum(axis=0) @ share)
        if src.from_port:
            per = (np.ones(n_src) if counter.topo.multicast else f["packets"] + f["local"])
            w["port"] += float(per @ share)
        else:
            w["core_msgs"] += np.bincount(src.core, f["packets"] * share, C)
        w["max_hops"] += float(f["max_hops"] @ share)
        w["max_chip_hops"] += float(f["max_chip_hops"] @ share)
        if act.learn and pr.plastic == "stdp":
            pre = bool(act.learning.get(pr.name, {}).get("pre_updates", True))
            if pre:
                w["learn_ops"] += share.sum() * m.k[pr.dst]
                w["learn_words"] += 2 * (tbl.sram @ share)
                w["dram_bits"] += 2 * float(tbl.dram_bits.sum(axis=0) @ share)
    return w


def _rows(acts: np.ndarray) -> DramSteps | None:
    """Row-buffer figures of the expected steps: every stream's rows activated, each after
    a conflict (the order of the spikes, which decides the hits, is not known: a bound)."""
    if not acts.any():
        return None
    e = np.zeros(0, np.int64)
    return DramSteps(acts, acts, np.zeros(1, np.int64), e, e, e)


def _poisson(lam: np.ndarray, n: np.ndarray) -> np.ndarray:
    """(len(lam), len(n)) Poisson probabilities of n events at each mean in lam."""
    lam = np.asarray(lam, float)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        logp = n * np.log(lam) - lam - np.array([math.lgamma(x + 1) for x in n])
    p = np.where(lam > 0, np.exp(logp), (n == 0).astype(float))
    return p / p.sum(axis=1, keepdims=True)


def step_cycles(counter: ChipCounter, rates_hw: HwRates, act: PhaseActivity) -> float:
    """Expected cycles of one step: the timestep formula over Poisson spikes per step, at
    each step's mean (the profile of a presentation)."""
    w = _per_spike(counter, act)
    spec, C = counter.spec, counter.m.n_cores
    moving = [q.name for q in spec.populations if counter.has_outgoing[q.name]]
    lam_t = sum((act.per_step(q) for q in moving), np.zeros(1))
    n = np.arange(int(lam_t.max() + 12 * math.sqrt(lam_t.max()) + 12) + 1, dtype=float)
    col = n[:, None]
    soma = None
    if counter.soma is not None:
        s = counter.soma
        per_core = counter.m.neurons_per_core().astype(float)
        active = sum(_active_share(counter, q, act) * counter.m.k[q.name]
                     for q in spec.chip_populations)
        soma = np.broadcast_to(s.idle * per_core + s.active * active, (len(n), C)) + col * 0
    work = StepWork(
        deliveries=None, learn_ops=col * w["learn_ops"] if act.learn else None,
        learn_words=col * w["learn_words"] if act.learn else None,
        dram_bits=n * w["dram_bits"], dram_streams=n * w["streams"], port_messages=n * w["port"],
        spikes=n, max_hops=np.where(n > 0, w["max_hops"], 0),
        pass_words=np.zeros(C), pass_ops=np.zeros(C), pass_dram_bits=0,
        soma=None if soma is None else SomaSteps.of_dense(soma),
        dram_rows=_rows(n * w["acts"]),
        max_chip_hops=(np.where(n > 0, w["max_chip_hops"], 0) if counter.hw.n_chips > 1
                       else None))
    synop_cycles = (col * w["synop_time"] if counter.unit_cycles is not None
                    else -(-(col * w["synops"]) // rates_hw.syn_lanes) * rates_hw.synop_cycles)
    work.load = rates_hw.step_load(synop_cycles, col * w["sram"], col * w["deliveries"],
                                   col * w["core_msgs"], rates_hw.neuron_phase(work))
    pmf = _poisson(lam_t, n)  # (steps, n)
    per_t = pmf @ timestep_cycles(work, rates_hw)
    for occ_t, extra in _column_cycles(counter, rates_hw, act, work):
        per_t += occ_t * (pmf @ extra)
    return float(per_t.mean())


def _column_cycles(counter: ChipCounter, r: HwRates, act: PhaseActivity,
                   work: StepWork) -> list[tuple[np.ndarray, np.ndarray]]:
    """Postsynaptic spikes while learning: each updates its fan-in column on its own core
    (and its spilled words over the DRAM channel), so a step that holds them waits for
    the core that received the most (their count per core Poisson, k on the busiest).
    Per plastic projection: the fraction of each step of the profile that holds such
    spikes, and the extra cycles of each row of `work` when it does."""
    out = []
    if not act.learn:
        return out
    base = timestep_cycles(work, r)
    spec, m = counter.spec, counter.m
    busiest = np.argmax(work.learn_ops.sum(axis=0) + work.learn_words.sum(axis=0))
    for pr in spec.projections:
        if pr.plastic != "stdp":
            continue
        lam = act.rates.get(pr.dst, 0.0)
        cores = int((m.k[pr.dst] > 0).sum())
        if lam <= 0 or not cores:
            continue
        occ = act.occupancy.get(pr.dst, 1 - math.exp(-lam))  # steps with a spike of dst
        burst = lam / occ  # spikes in such a step, spread over the cores
        occ_t = np.minimum(act.per_step(pr.dst) / burst, 1.0)
        n_src = spec.population(pr.src).size
        who = act.per_neuron(pr.dst, spec.population(pr.dst).size)
        who = who / who.sum()
        tbl = counter.tables[pr.name]
        col_words, col_bits = 2 * float(tbl.col_sram @ who), 2 * float(tbl.col_dram_bits @ who)
        extra = np.zeros(len(base))
        for k, p in _busiest(burst, cores):
            ops, words = work.learn_ops.copy(), work.learn_words.copy()
            ops[:, busiest] += k * n_src
            words[:, busiest] += k * col_words
            post = replace(work, learn_ops=ops, learn_words=words,
                           dram_bits=work.dram_bits + burst * col_bits,
                           spikes=np.maximum(work.spikes, 1))
            extra += p * (timestep_cycles(post, r) - base)
        out.append((occ_t, extra))
    return out


def _busiest(burst: float, cores: int) -> list[tuple[int, float]]:
    """P(the busiest of `cores` cores receives k of a step's spikes), k >= 1, for a step
    with spikes: per-core counts Poisson(burst / cores), given that there is one at all."""
    mu = burst / cores
    k = np.arange(int(mu + 12 * math.sqrt(mu) + 12))
    logp = k * math.log(mu) - mu - np.array([math.lgamma(x + 1) for x in k])
    cdf = np.clip(np.cumsum(np.exp(logp)), 0, 1)
    p_max = np.diff(np.concatenate([[0.0], cdf ** cores]))
    p_max[1:] /= max(1 - p_max[0], 1e-300)
    return list(zip(k[1:].tolist(), p_max[1:].tolist()))


def _active_share(counter: ChipCounter, q, act: PhaseActivity) -> float:
    """Mean fraction of q's neurons updated as active per step: measured, or the chance
    that a synaptic event reached a neuron in the previous step of the profile."""
    if q.name in act.active:
        return act.active[q.name] / q.size
    if q.biased:  # a bias changes every neuron every step
        return 1.0
    srcs = {pr.src for pr in counter.incoming[q.name]}
    prof = {src: act.per_step(src) for src in srcs}
    steps = max((len(v) for v in prof.values()), default=1)
    reached = [1 - _not_touched(counter, q, {src: v[t] for src, v in prof.items() if t < len(v)})
               for t in range(steps - 1)]  # events of step t make step t + 1 active
    return float(np.sum(reached)) / steps


def passes_cycles(counter: ChipCounter, rates_hw: HwRates, act: PhaseActivity) -> float:
    """Cycles of the whole-matrix passes per presentation."""
    passes = act.normalised + act.decays
    if not act.learn or not passes:
        return 0.0
    C = counter.m.n_cores
    words, ops, bits = np.zeros(C, np.int64), np.zeros(C, np.int64), 0
    for pr in counter.spec.projections:
        if pr.plastic == "stdp":
            tbl = counter.tables[pr.name]
            words += tbl.block_sram
            ops += counter.spec.population(pr.src).size * counter.m.k[pr.dst]
            bits += 2 * int(tbl.block_dram_bits.sum())
    zero = np.zeros(1)
    one = StepWork(deliveries=None, learn_ops=None, learn_words=None, dram_bits=zero,
                   dram_streams=zero, port_messages=zero, spikes=zero, max_hops=zero,
                   pass_words=words, pass_ops=ops, pass_dram_bits=bits)
    return passes * pass_cycles(one, rates_hw)
