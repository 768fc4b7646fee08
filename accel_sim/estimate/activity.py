"""The activity of a phase: what the closed forms take (docs/analytical.md), measured from
a run's traces or a short calibration run of the frontend, or given as a file."""
from __future__ import annotations

import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from snn_frontend.spec import NetworkSpec
from snn_frontend.trace import SpikeTrace, is_grad_stream, stdp_event_streams

from ..chip.counting import updated_per_step
from ..errors import RunError
from ..report import read_json

__all__ = ["PhaseActivity", "activities_from_dict", "activity_from_traces",
           "activity_of_run", "calibrate", "last_key"]


def last_key(stream: str) -> str:
    """The pseudo-stream of each neuron's last entry of a gradient stream (its pairs with
    earlier input events: `PhaseActivity.preceding`)."""
    return f"{stream}:last"


def stream_of_last(key: str) -> str:
    """The gradient stream behind a `last_key` (or the key itself)."""
    return key.removesuffix(":last")


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
                if is_grad_stream(s) and p.counts[s].any():
                    st = np.repeat(np.arange(p.n_steps), p.counts[s].astype(np.int64))
                    end = np.full(int(p.indices[s].max()) + 1, -1)
                    np.maximum.at(end, p.indices[s].astype(np.int64), st)
                    ends = end[end >= 0]
                    hist = np.bincount(ends, minlength=p.n_steps).astype(float)
                    acc = last.get(s)
                    last[s] = hist if acc is None else acc[:len(hist)] + hist[:len(acc)]
                    for key, at in ((s, st), (last_key(s), ends)):
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
    """Neurons updated as active in a presentation, per population (the chip's rule,
    chip/counting.updated_per_step)."""
    T = p.n_steps
    spikes = {q: (p.counts[q].astype(np.int64), p.indices[q].astype(np.int64))
              for q in spec.names}
    steps = {q: np.repeat(np.arange(T), n) for q, (n, _) in spikes.items()}
    return {q.name: int(updated_per_step(q, spec.incoming(q.name), p, spikes, steps).sum())
            for q in spec.chip_populations}


def _stream_sizes(spec: NetworkSpec) -> dict[str, int]:
    """Streams whose events are indexed by neuron: populations, STDP rows (source) and
    columns (target)."""
    sizes = {q.name: q.size for q in spec.populations}
    for pr in spec.projections:
        rows, cols = stdp_event_streams(pr.name)
        sizes[rows] = spec.population(pr.src).size
        sizes[cols] = spec.population(pr.dst).size
    return sizes


def activities_from_dict(d: dict) -> dict[str, PhaseActivity]:
    """The `activity` of an `estimate --json` output (or written by hand)."""
    return {phase: PhaseActivity(**a) for phase, a in d.items()}



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
    from .. import registry
    from ..config import config_to_dict, parse_config
    from ..run import run_experiment

    d = config_to_dict(cfg)
    d.update(hardware=None, energy=None)
    data, run = d["data"], d["run"]
    full = registry.family_of(cfg).phase_samples(cfg)
    for key in ("train_samples", "test_samples"):
        data[key] = samples if data.get(key) is None else min(samples, data[key])
    if data.get("label_samples") is not None:
        data["label_samples"] = min(samples, data["label_samples"])
    if "epochs" in d["learning"]:
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
