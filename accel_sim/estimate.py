"""`accel-sim estimate`: closed-form counts, memory, energy and latency per phase from the
network spec, the chip and firing rates, without replaying spikes (docs/analytical.md).

Activity (`PhaseActivity`) is a handful of numbers per phase: samples, presentations and
steps per presentation, and the mean events per step of every trace stream (the spikes of
each population and the learning events). It is given (a JSON file) or measured by a
short calibration run of the frontend. The chip enters through the same mapping, access
tables and routes the simulator uses (its structure, computed once): each count is a
rate times a sum over that structure. Spikes are taken as uniform over a population's
neurons and Poisson over steps; the step time is the `timestep` fidelity's formula
averaged over the Poisson distribution of spikes per step.
"""
from __future__ import annotations

import math
import tempfile
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from snn_frontend.spec import NetworkSpec
from snn_frontend.trace import SpikeTrace, grad_stream, optimizer_stream

from .chip.access import burst_bits
from .chip.counting import ChipCounter, StepWork, touched_per_step
from .chip.mapping import Mapping as ChipMapping
from .chip.mapping import load_placement, words_for
from .chip.timing import HwRates, pass_cycles, timestep_cycles
from .chip.topology import Topology
from .costing import price_results, resolve_table, state_bits
from .errors import RunError
from .memory import network_memory
from .report import read_json

__all__ = [
    "PhaseActivity",
    "activities_from_dict",
    "activity_from_traces",
    "activity_of_run",
    "calibrate",
    "estimate",
    "estimate_phase",
]

@dataclass
class PhaseActivity:
    """What one phase does, on average: the input of the closed forms."""

    samples: int
    presentations: float  # per sample (re-presentations of silent samples included)
    steps: float  # per presentation
    rates: dict[str, float]  # stream -> mean events per step (spikes of a population, ...)
    learn: bool = False
    learning: dict = field(default_factory=dict)  # per plastic projection {"pre_updates"}
    state_reset: bool = True
    normalised: float = 0.0  # whole-matrix normalisations per presentation
    decays: float = 0.0  # weight-decay passes per presentation
    # stream -> mean events at each step of a presentation (absent: `rates` at every
    # step); a latency code fires early, a rest after the input carries nothing
    profile: dict[str, list[float]] = field(default_factory=dict)
    # stream -> fraction of the steps with at least one event (absent: Poisson);
    # winner-take-all layers fire in bursts, so their spikes share fewer steps
    occupancy: dict[str, float] = field(default_factory=dict)
    # stream -> each neuron's share of its events (absent: uniform); the weights a spike
    # reads, and whether they are in SRAM or DRAM, depend on which neuron fired
    neurons: dict[str, list[float]] = field(default_factory=dict)
    # population -> neurons updated as active per step, measured (absent: from the rates)
    active: dict[str, float] = field(default_factory=dict)
    # a -> b -> E[N_a N_b] / (E[N_a] E[N_b]) of the streams' events per presentation
    # (absent: 1, independent); samples with more input events have more gradient entries
    comoments: dict[str, dict[str, float]] = field(default_factory=dict)
    # a -> b -> mean events of b at earlier steps of the presentation, per event of a (a:
    # a gradient stream, or "<gradient stream>:last" for each neuron's last entry); the
    # backward's multiply-adds pair each entry with the input events before it
    preceding: dict[str, dict[str, float]] = field(default_factory=dict)
    # gradient stream -> neurons whose last entry is at each step, per presentation
    # (entries come in runs of steps near the threshold; the backward walk of a neuron
    # starts at its last one)
    last: dict[str, list[float]] = field(default_factory=dict)

    def comoment(self, a: str, b: str) -> float:
        return self.comoments.get(a, {}).get(b, 1.0)

    def per_neuron(self, stream: str, n: int) -> np.ndarray:
        """(n,) events per step of each neuron (or index) of a stream."""
        lam = self.rates.get(stream, 0.0)
        share = self.neurons.get(stream)
        return lam * np.asarray(share, float) if share is not None else np.full(n, lam / n)

    def per_step(self, stream: str) -> np.ndarray:
        """Mean events of a stream at each step of a presentation."""
        prof = self.profile.get(stream)
        if prof is None:
            return np.full(max(round(self.steps), 1), self.rates.get(stream, 0.0))
        return np.asarray(prof, float)


def activity_from_traces(parts) -> PhaseActivity:
    """The activity of a recorded phase (its trace parts)."""
    totals: Counter = Counter()
    occupied: Counter = Counter()
    active: Counter = Counter()
    per_index: dict[str, np.ndarray] = {}
    per_step: dict[str, np.ndarray] = {}
    per_pres: list[dict[str, float]] = []
    last: dict[str, np.ndarray] = {}
    pairs: dict[str, Counter] = {}
    events: Counter = Counter()
    steps = pres = samples = normalised = decays = 0
    meta = None
    for part in parts:
        meta = meta or part.meta
        spec = part.spec
        sizes = _stream_sizes(spec)
        for s in part.streams:
            totals[s] += part.total(s)
            occupied[s] += int((part.counts[s] > 0).sum())
            if s in sizes:
                hits = np.bincount(part.indices[s].astype(np.int64), minlength=sizes[s])
                per_index[s] = per_index.get(s, 0) + hits
        for p in part:
            for s in part.streams:
                c = p.counts[s].astype(float)
                acc = per_step.setdefault(s, np.zeros(0))
                if len(acc) < len(c):
                    acc = per_step[s] = np.concatenate([acc, np.zeros(len(c) - len(acc))])
                acc[:len(c)] += c
            for q, n in _active_updates(spec, p).items():
                active[q] += n
            per_pres.append({s: float(p.counts[s].sum()) for s in part.streams})
            earlier = {b: np.concatenate([[0], np.cumsum(p.counts[b], dtype=np.int64)[:-1]])
                       for b in part.streams}
            for s in part.streams:
                if s.endswith(":grad") and p.counts[s].any():
                    st = np.repeat(np.arange(p.n_steps), p.counts[s].astype(np.int64))
                    end = np.full(int(p.indices[s].max()) + 1, -1)
                    np.maximum.at(end, p.indices[s].astype(np.int64), st)
                    ends = end[end >= 0]
                    hist = np.bincount(ends, minlength=p.n_steps).astype(float)
                    acc = last.get(s)
                    last[s] = hist if acc is None else acc[:len(hist)] + hist[:len(acc)]
                    for key, at in ((s, st), (f"{s}:last", ends)):
                        row = pairs.setdefault(key, Counter())
                        for b, cum in earlier.items():
                            row[b] += int(cum[at].sum())
                        events[key] += len(at)
        steps += part.n_steps
        pres += part.n_presentations
        samples += int((part.attempt == 0).sum())
        normalised += int(part.normalised.sum())
        decays += int(part.decays.sum())
    if meta is None:
        raise RunError("the trace is empty: nothing to estimate from")
    st = max(steps, 1)
    return PhaseActivity(samples, pres / max(samples, 1), steps / max(pres, 1),
                         {s: n / st for s, n in totals.items()},
                         learn=bool(meta.get("learn", False)), learning=meta.get("learning", {}),
                         state_reset=bool(meta.get("state_reset", True)),
                         normalised=normalised / max(pres, 1), decays=decays / max(pres, 1),
                         profile={s: (v / max(pres, 1)).tolist() for s, v in per_step.items()},
                         occupancy={s: n / st for s, n in occupied.items()},
                         neurons={s: (h / h.sum()).tolist() for s, h in per_index.items()
                                  if h.sum()},
                         active={q: n / st for q, n in active.items()},
                         comoments=_comoments(per_pres),
                         last={s: (v / max(pres, 1)).tolist() for s, v in last.items()},
                         preceding={a: {b: n / max(events[a], 1) for b, n in row.items()}
                                    for a, row in pairs.items()})


def _comoments(per_pres: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """E[N_a N_b] / (E[N_a] E[N_b]) over presentations, for the streams with events."""
    keys = list(dict.fromkeys(k for d in per_pres for k in d))
    names = [s for s in keys if any(d.get(s) for d in per_pres)]
    x = np.array([[d.get(s, 0.0) for s in names] for d in per_pres])
    if not len(x):
        return {}
    mean = x.mean(axis=0)
    second = x.T @ x / len(x)
    ratio = second / np.outer(mean, mean)
    return {a: {b: float(ratio[i, j]) for j, b in enumerate(names)} for i, a in enumerate(names)}


def _active_updates(spec: NetworkSpec, p) -> dict[str, int]:
    """Neurons updated as active in a presentation, per population (the rule the chip
    counts by: reached by a synaptic event in the previous step, or the `:active` stream)."""
    T = p.n_steps
    spikes = {q: (p.counts[q].astype(np.int64), p.indices[q].astype(np.int64))
              for q in spec.names}
    steps = {q: np.repeat(np.arange(T), n) for q, (n, _) in spikes.items()}
    out = {}
    for q in spec.chip_populations:
        given = f"{q.name}:active"
        if given in p.counts:
            out[q.name] = int(p.counts[given].sum())
        else:
            out[q.name] = int(touched_per_step(spec.incoming(q.name), q.size, spikes, steps,
                                               T)[:-1].sum())
    return out


def _stream_sizes(spec: NetworkSpec) -> dict[str, int]:
    """Streams whose events are indexed by neuron: populations, STDP rows (source) and
    columns (target)."""
    sizes = {q.name: q.size for q in spec.populations}
    for pr in spec.projections:
        sizes[f"{pr.name}:row"] = spec.population(pr.src).size
        sizes[f"{pr.name}:col"] = spec.population(pr.dst).size
    return sizes


def activities_from_dict(d: dict) -> dict[str, PhaseActivity]:
    """The `activity` of an `estimate --json` output (or written by hand)."""
    return {phase: PhaseActivity(**a) for phase, a in d.items()}


# ------------------------------------------------------------------- closed forms
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
            fan_in = len(pr.pairs[0]) / q.size
            p *= math.exp(-r * fan_in)
    return p


def _counts(counter: ChipCounter, act: PhaseActivity) -> Counter:
    """Expected counts of one presentation."""
    spec, hw, T, rates = counter.spec, counter.hw, act.steps, act.rates
    cnt: Counter = Counter()
    for pr in spec.projections:
        r = act.per_neuron(pr.src, spec.population(pr.src).size) * T  # spikes of each source
        tbl, f = counter.tables[pr.name], counter.sources[pr.name].fields
        cnt["core", "synop"] += float(tbl.synops.sum(axis=0) @ r)
        if pr.stores_weights:
            cnt["sram", "read_word"] += float(tbl.sram.sum(axis=0) @ r)
            cnt["dram", "read_bit"] += float(tbl.dram_bits.sum(axis=0) @ r)
            cnt["dram", "activate"] += float(tbl.act.sum(axis=0) @ r)
        for action, key in (("inject", "packets"), ("hop_ew", "hops_ew"), ("hop_ns", "hops_ns"),
                            ("local_delivery", "local")):
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
        row_s, col_s = f"{pr.name}:row", f"{pr.name}:col"
        if row_s in rates:  # the trace's learning events: the rows and columns written
            rows, cols = act.per_neuron(row_s, n_src) * T, act.per_neuron(col_s, n_dst) * T
        else:  # D&C writes at every spike
            rows = act.per_neuron(pr.src, n_src) * T * (1.0 if pre_updates else 0.0)
            cols = act.per_neuron(pr.dst, n_dst) * T
        words = float(tbl.sram.sum(axis=0) @ rows + tbl.col_sram @ cols)
        bits = float(tbl.dram_bits.sum(axis=0) @ rows + tbl.col_dram_bits @ cols)
        cnt["sram", "read_word"] += words
        cnt["sram", "write_word"] += words
        cnt["dram", "read_bit"] += bits
        cnt["dram", "write_bit"] += bits
        cnt["dram", "activate"] += 2 * float(tbl.act.sum(axis=0) @ rows + tbl.col_act @ cols)
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
            cnt["dram", "activate"] += 2 * passes * int(tbl.block_act.sum())
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
                                  "learn_words")}
    w.update(dram_bits=0.0, streams=0.0, port=0.0, max_hops=0.0)
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
        w["deliveries"] += (tbl.synops > 0) @ share
        if pr.stores_weights:
            w["sram"] += tbl.sram @ share
            w["dram_bits"] += float(tbl.dram_bits.sum(axis=0) @ share)
            w["streams"] += float((tbl.dram > 0).sum(axis=0) @ share)
        if src.from_port:
            per = (np.ones(n_src) if counter.topo.multicast else f["packets"] + f["local"])
            w["port"] += float(per @ share)
        else:
            w["core_msgs"] += np.bincount(src.core, f["packets"] * share, C)
        w["max_hops"] += float(f["max_hops"] @ share)
        if act.learn and pr.plastic == "stdp":
            pre = bool(act.learning.get(pr.name, {}).get("pre_updates", True))
            if pre:
                w["learn_ops"] += share.sum() * m.k[pr.dst]
                w["learn_words"] += 2 * (tbl.sram @ share)
                w["dram_bits"] += 2 * float(tbl.dram_bits.sum(axis=0) @ share)
    return w


def _poisson(lam: np.ndarray, n: np.ndarray) -> np.ndarray:
    """(len(lam), len(n)) Poisson probabilities of n events at each mean in lam."""
    lam = np.asarray(lam, float)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        logp = n * np.log(lam) - lam - np.array([math.lgamma(x + 1) for x in n])
    p = np.where(lam > 0, np.exp(logp), (n == 0).astype(float))
    return p / p.sum(axis=1, keepdims=True)


def _step_cycles(counter: ChipCounter, rates_hw: HwRates, act: PhaseActivity) -> float:
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
        synops=col * w["synops"], sram_reads=col * w["sram"], deliveries=col * w["deliveries"],
        learn_ops=col * w["learn_ops"] if act.learn else None,
        learn_words=col * w["learn_words"] if act.learn else None,
        dram_bits=n * w["dram_bits"], dram_streams=n * w["streams"], port_messages=n * w["port"],
        core_messages=col * w["core_msgs"], spikes=n, max_hops=np.where(n > 0, w["max_hops"], 0),
        pass_words=np.zeros(C), pass_ops=np.zeros(C), pass_dram_bits=0, neuron_cycles=soma)
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
    srcs = {pr.src for pr in counter.incoming[q.name]}
    prof = {src: act.per_step(src) for src in srcs}
    steps = max((len(v) for v in prof.values()), default=1)
    reached = [1 - _not_touched(counter, q, {src: v[t] for src, v in prof.items() if t < len(v)})
               for t in range(steps - 1)]  # events of step t make step t + 1 active
    return float(np.sum(reached)) / steps


def _pass_cycles(counter: ChipCounter, rates_hw: HwRates, act: PhaseActivity) -> float:
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
    zero, zeros = np.zeros(1), np.zeros((1, C))
    one = StepWork(synops=zeros, sram_reads=zeros, deliveries=zeros, learn_ops=None,
                   learn_words=None, dram_bits=zero, dram_streams=zero, port_messages=zero,
                   core_messages=zeros, spikes=zero, max_hops=zero, pass_words=words,
                   pass_ops=ops, pass_dram_bits=bits)
    return passes * pass_cycles(one, rates_hw)


def _bptt(counter: ChipCounter, act: PhaseActivity, cnt: Counter) -> dict:
    """The backward pass and the optimiser of a BPTT training presentation (one sample):
    counts into cnt; returns the expected per-step, per-core learning work (ops, words),
    DRAM bits per step, and the optimiser's whole-matrix pass (docs/analytical.md)."""
    bp, m, spec = counter.backprop, counter.m, counter.spec
    T = len(act.per_step(spec.populations[0].name))
    C = m.n_cores
    ops, words, dram = np.zeros((T, C)), np.zeros((T, C)), np.zeros(T)
    buffer_bits = np.zeros(C)
    pass_words, pass_ops, pass_bits = np.zeros(C), np.zeros(C), 0.0
    optimiser = 0.0
    share = bp.state_sram  # the SRAM share of each core's gradient state

    def rmw(w_tc: np.ndarray, sram: np.ndarray | None = None) -> None:
        """Read-modify-write of gradient words (T, C), sram of them in SRAM (default: the
        core's share)."""
        sram = w_tc * share if sram is None else sram
        words[:] += 2 * sram
        cnt["sram", "read_word"] += sram.sum()
        cnt["sram", "write_word"] += sram.sum()
        bits = (w_tc - sram).sum(axis=1) * bp.one_word_bits
        dram[:] += 2 * bits
        cnt["dram", "read_bit"] += bits.sum()
        cnt["dram", "write_bit"] += bits.sum()

    def grads(q: str):  # expected entries per step, and each core's share of them
        name = grad_stream(q)
        if name not in act.rates:
            return None
        who = act.per_neuron(name, spec.population(q).size)
        on_core = np.bincount(m.core[q], who, C)
        return act.per_step(name), on_core / max(on_core.sum(), 1e-300), who

    for pr in bp.projs:
        k = pr.k.astype(float)
        src_t = act.per_step(pr.src)
        src_before = np.concatenate([[0.0], np.cumsum(src_t)[:-1]])  # spikes at steps < t
        early = src_t.copy()
        early[-1] = 0.0  # a spike at the last step reaches nothing
        g_dst = None if pr.dst_readout else grads(pr.dst)
        if g_dst is not None:  # sparse: the gradient entries
            g_t, sigma, _ = g_dst
            ops += np.outer(g_t, sigma)
            cnt["core", "surrogate_eval"] += g_t.sum()
            index_bits = int(np.ceil(np.log2(max(spec.population(pr.dst).size, 2))))
            buffer_bits += sigma * g_t.sum() * (bp.state_bits + index_bits)
        elif not pr.dst_readout:  # dense: every neuron at every step >= 1
            ops[1:] += k
            cnt["core", "surrogate_eval"] += k.sum() * max(T - 1, 0)
            buffer_bits += bp.state_bits * k * max(T - 1, 0)
        idx_bits = int(np.ceil(np.log2(max(pr.n_src, 2))))
        buffer_bits += idx_bits * early.sum() * (k > 0)
        # weight gradient
        if g_dst is None:  # every input event adds a gradient row (binary spikes)
            arrive = np.concatenate([[0.0], early[:-1]])  # a spike at t is added at t + 1
            ops += np.outer(arrive, k)
            cnt["core", "weight_grad_add"] += early.sum() * k.sum()
            row = words_for(pr.k, bp.grad_bits, bp.word) * (k > 0)  # a gradient row per core
            rmw(np.outer(arrive, row), np.outer(arrive, np.round(row * share)))
        else:  # per entry at t, one MAC per src spike before t
            g_t, sigma, _ = g_dst
            macs_t = _paired(act, grad_stream(pr.dst), pr.src, g_t, src_before)
            macs = np.outer(macs_t, sigma)
            ops += macs
            cnt["core", "weight_grad_mac"] += macs.sum()
            rmw(macs)
        # input gradient
        if pr.src_on_chip:
            g_src = grads(pr.src)
            tbl = counter.tables[pr.name]
            if g_src is None or (g_dst is None and not pr.dst_readout):  # dense
                ops[1:] += pr.n_src * k
                cnt["core", "input_grad_mac"] += (pr.n_src * k).sum() * max(T - 1, 0)
                words[1:] += tbl.block_sram
                cnt["sram", "read_word"] += tbl.block_sram.sum() * max(T - 1, 0)
                dram[1:] += tbl.block_dram_bits.sum()
                cnt["dram", "read_bit"] += tbl.block_dram_bits.sum() * max(T - 1, 0)
                need = np.full(pr.n_src, float(max(T - 1, 0)))
            elif pr.dst_readout:  # one weight row per src entry at a step <= T-2
                gs_t, _, who = g_src
                e_t = gs_t.copy()
                e_t[-1] = 0.0
                per_row = who / max(who.sum(), 1e-300)
                at = np.concatenate([[0.0], e_t[:-1]])
                ops += np.outer(at, k)
                cnt["core", "input_grad_mac"] += e_t.sum() * k.sum()
                row_sram = tbl.sram @ per_row
                words += np.outer(at, row_sram)
                cnt["sram", "read_word"] += e_t.sum() * row_sram.sum()
                bits = float(tbl.dram_bits.sum(axis=0) @ per_row)
                dram += at * bits
                cnt["dram", "read_bit"] += e_t.sum() * bits
                need = e_t.sum() * per_row
            else:  # the backward walk: per dst neuron, the src entries before its last one
                gs_t, _, who_src = g_src
                gd_t, sigma_dst, who_dst = g_dst
                before = np.concatenate([[0.0], np.cumsum(gs_t)[:-1]])
                rho = act.comoment(grad_stream(pr.dst), grad_stream(pr.src))
                ends = act.last.get(grad_stream(pr.dst))
                if ends is not None:  # measured: neurons ending their entries at each step
                    ends = np.asarray(ends[:T])
                    per_t = _paired(act, f"{grad_stream(pr.dst)}:last", grad_stream(pr.src),
                                    ends, before[:len(ends)])
                    on = np.outer(per_t, sigma_dst)
                else:  # Poisson entries per neuron: P(its last entry is at t)
                    lam = np.outer(who_dst / max(who_dst.sum(), 1e-300), gd_t)  # (n_dst, T)
                    after = np.cumsum(lam[:, ::-1], axis=1)[:, ::-1]  # entries at >= t
                    none_after = np.exp(-np.concatenate([after[:, 1:],
                                                         np.zeros((len(lam), 1))], axis=1))
                    p_last = (1 - np.exp(-lam)) * none_after
                    on = np.zeros((T, C))
                    np.add.at(on.T, m.core[pr.dst], rho * p_last * before)
                ops += on
                total = on.sum()
                cnt["core", "input_grad_mac"] += total
                frac = pr.block_sram / np.maximum(pr.block_words, 1)
                cnt["sram", "read_word"] += float(on.sum(axis=0) @ frac)
                words += on
                spilled = on @ (1 - frac)
                dram += spilled * bp.one_word_bits
                cnt["dram", "read_bit"] += spilled.sum() * bp.one_word_bits
                need = gs_t.sum() * who_src / max(who_src.sum(), 1e-300)
            for action, key in (("inject", "packets"), ("hop_ew", "hops_ew"),
                                ("hop_ns", "hops_ns"), ("local_delivery", "local")):
                cnt["router", action] += float(pr.back[key] @ need)
        # the optimiser, once per batch
        n_opt = act.rates.get(optimizer_stream(pr.name), 0.0) * act.steps
        if n_opt:
            n_w = pr.n_src * pr.k
            cnt["core", "optimizer_op"] += n_opt * n_w.sum()
            moments = 3 * pr.grad_words
            sram_m = np.round(moments * bp.state_sram)
            w_dram = pr.block_words - pr.block_sram
            opt_words = pr.block_sram + sram_m
            bits = float((burst_bits(w_dram, bp.word, bp.dram)
                          + burst_bits((moments - sram_m).astype(np.int64), bp.word,
                                       bp.dram)).sum())
            pass_words += opt_words  # one optimiser step; n_opt of them per presentation
            pass_ops += n_w
            pass_bits += 2 * bits
            optimiser = n_opt
            for what in ("read_word", "write_word"):
                cnt["sram", what] += n_opt * opt_words.sum()
            cnt["dram", "read_bit"] += n_opt * bits
            cnt["dram", "write_bit"] += n_opt * bits
    # the backward's state: written in the forward, read back
    state_words = np.ceil(buffer_bits / bp.word)
    in_sram = np.minimum(state_words, bp.free_after_state)
    spilled_bits = float(burst_bits(np.ceil(state_words - in_sram).astype(np.int64), bp.word,
                                    bp.dram).sum())
    for what in ("read_word", "write_word"):
        cnt["sram", what] += in_sram.sum()
    cnt["dram", "write_bit"] += spilled_bits
    cnt["dram", "read_bit"] += spilled_bits
    words[0] += in_sram
    dram[0] += 2 * spilled_bits
    return {"ops": ops, "words": words, "dram_bits": dram, "optimiser": optimiser,
            "pass": (pass_words, pass_ops, pass_bits)}


def _paired(act: PhaseActivity, a: str, b: str, a_t: np.ndarray, b_before: np.ndarray
            ) -> np.ndarray:
    """Per step, the pairs (event of a, earlier event of b): a's events at each step times
    b's events before it; with the measured pairs per event of a, scaled to that total
    (without them, samples are taken as independent: the mean comoment of a and b)."""
    per_t = a_t * b_before
    given = act.preceding.get(a, {}).get(b)
    if given is None:
        return act.comoment(a.removesuffix(":last"), b) * per_t
    total = given * a_t.sum()
    return per_t * (total / per_t.sum()) if per_t.sum() > 0 else np.full_like(per_t, total / len(per_t))


def _bptt_cycles(work: dict, r: HwRates) -> float:
    """Cycles of the backward (per step: the busiest core's learning work, then the
    DRAM channel) and of the optimiser steps, per presentation."""
    ops, words = work["ops"], work["words"]
    learn = np.maximum(np.ceil(ops / r.learn_lanes),
                       np.ceil(words / r.ports) + np.where(words > 0, r.write_lat, 0))
    dram = np.ceil(work["dram_bits"] / 8 / r.dram_bytes_per_cycle)
    total = float(learn.max(axis=1).sum() + dram.sum())
    if work["optimiser"]:
        pw, po, pb = work["pass"]
        C = len(pw)
        zero, zeros = np.zeros(1), np.zeros((1, C))
        one = StepWork(synops=zeros, sram_reads=zeros, deliveries=zeros, learn_ops=None,
                       learn_words=None, dram_bits=zero, dram_streams=zero,
                       port_messages=zero, core_messages=zeros, spikes=zero, max_hops=zero,
                       pass_words=pw.astype(np.int64), pass_ops=po.astype(np.int64),
                       pass_dram_bits=int(pb))
        total += work["optimiser"] * pass_cycles(one, r)
    return total


def estimate_phase(counter: ChipCounter, rates_hw: HwRates, act: PhaseActivity) -> dict:
    """{counts, cycles, samples, presentations, time_steps} of a phase (what pricing takes)."""
    pres = act.presentations * act.samples
    per = _counts(counter, act)
    cycles = act.steps * _step_cycles(counter, rates_hw, act) + _pass_cycles(counter, rates_hw,
                                                                             act)
    if act.learn and counter.backprop is not None:
        cycles += _bptt_cycles(_bptt(counter, act, per), rates_hw)
    cycles *= pres
    return {"counts": {f"{k}.{a}": v * pres for (k, a), v in sorted(per.items()) if v},
            "cycles": cycles, "samples": act.samples, "presentations": pres,
            "time_steps": pres * act.steps}


def estimate(cfg, spec: NetworkSpec, activity: dict[str, PhaseActivity]) -> dict:
    """The estimate of every phase with activity: the stats.json-like dict `accel-sim
    estimate --json` prints."""
    if cfg.hardware is None:
        raise RunError("estimate needs a chip: add hardware and energy to the config")
    hw = cfg.hardware
    placement = load_placement(hw.placement_file) if hw.placement_file else None
    mapping = ChipMapping(spec, hw, placement)
    topology = Topology(hw)
    counter = ChipCounter(mapping, topology)
    rates_hw = HwRates(hw, mapping, topology)
    table, warnings = resolve_table(cfg)
    results = {phase: estimate_phase(counter, rates_hw, act) for phase, act in activity.items()}
    priced = price_results(results, table, hw.clock_mhz)
    return {
        "chip": hw.name, "energy_table": table.name, "clock_mhz": hw.clock_mhz,
        "warnings": warnings,
        "memory_bytes": network_memory(spec, cfg.network.state_format.storage_bits)["total_bytes"],
        "mapping": mapping.report(state_bits(cfg), hw.formats.trace_bits),
        "activity": {p: asdict(a) for p, a in activity.items()},
        "phases": {p: {"counts": r["counts"], "energy_pj": r["energy_pj"]["total"],
                       "energy_per_sample_pj": r["energy_per_sample_pj"],
                       "latency_s": r["latency_s"], "latency_per_sample_s":
                       r["latency_per_sample_s"], "latency_cycles": r["latency_cycles"],
                       "energy_by_component_pj": {c: v["total"] for c, v in
                                                  r["energy_pj"]["by_component"].items()}}
                   for p, r in priced.items()},
    }


# --------------------------------------------------------------------- activity
def activity_of_run(run_dir: str | Path) -> tuple[NetworkSpec, dict[str, PhaseActivity]]:
    """The spec and activity of a run that saved its traces (`run.trace_phases`)."""
    run_dir = Path(run_dir)
    traces = sorted(run_dir.glob("trace_*"))
    if not traces:
        raise RunError(f"{run_dir} holds no traces (trace_<phase>/): run it with "
                       "run.trace_phases listing its phases, or let estimate calibrate")
    out, spec = {}, None
    for t in traces:
        phase = t.name.removeprefix("trace_")
        parts = list(SpikeTrace.parts(t))
        spec = spec or parts[0].spec
        out[phase] = activity_from_traces(parts)
    return spec, out


def calibrate(cfg, samples: int, progress: bool = False) -> tuple[NetworkSpec, dict, dict]:
    """Measure the activity with a short frontend run (no chip) on `samples` samples per
    phase; the phases' sample counts are then set to the config's. Returns the spec, the
    activity and the calibration run's stats (its accuracy)."""
    from .config import config_to_dict, parse_config
    from .pipeline import run_experiment

    d = config_to_dict(cfg)
    d.update(hardware=None, energy=None)
    data, run = d["data"], d["run"]
    full = _phase_samples(cfg)
    for key in ("train_samples", "test_samples"):
        data[key] = samples if data.get(key) is None else min(samples, data[key])
    if "label_samples" in data and data["label_samples"] is not None:
        data["label_samples"] = min(samples, data["label_samples"])
    if "learning" in d:
        d["learning"]["epochs"] = 1
    run.update(trace_phases=list(run["phases"]), checkpoint_every=0)
    with tempfile.TemporaryDirectory() as tmp:
        run_experiment(parse_config(d), Path(tmp) / "calibration", progress=progress)
        spec, act = activity_of_run(Path(tmp) / "calibration")
        stats = read_json(Path(tmp) / "calibration" / "stats.json")
    for phase, a in act.items():
        n = full.get(phase)
        if n:
            a.samples = n
    return spec, act, stats


def _phase_samples(cfg) -> dict[str, int | None]:
    """Samples per phase of the full run (None: not known without reading the data)."""
    d = cfg.data
    if cfg.network.model == "surrogate":  # reading the whole set would latency-code it
        return {"train": d.train_samples and d.train_samples * cfg.learning.epochs,
                "infer": d.test_samples}
    from .pipeline import load_data

    data = load_data(cfg)
    return {"train": len(data.train) * cfg.learning.epochs, "label": len(data.label),
            "infer": len(data.test)}
