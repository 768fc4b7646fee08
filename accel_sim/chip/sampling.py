"""Sampled simulation (`run.chip_sample`), as architecture simulators sample (SMARTS):
every presentation is replayed at the fastest fidelity (the auxiliary, `timestep`), a
random sample of them also at the detailed one (`event`, `simpy`), and the phase's
detailed latency is the ratio estimate

    R = sum(y_i) / sum(x_i) over the sample,   Y = R * X

with y the detailed and x the auxiliary cycles of a presentation and X the auxiliary
total over all N presentations. Its standard error (Cochran, Sampling Techniques, 3rd ed.,
eq. 6.9, from the paired differences d_i = y_i - R x_i over the n sampled) is

    se(Y) = N * sqrt((1 - n/N) * s_d^2 / n),   s_d^2 = sum(d_i^2) / (n - 1)

and the 95 % interval Y +- t(0.975, n-1) se(Y). Presentations are independent between
barriers, so they are the sampling units. Counts are the same at every fidelity, so they
come from the auxiliary replay of every presentation: only latency (and the static energy
it sets) is estimated.

A sample is drawn by seeded keys u_j, uniform on [0, 1), one per presentation in the
phase's order (`presentation_keys`): `fraction: f` replays the presentations with
u_j < f as they come (Bernoulli sampling); `presentations: n` the n with the smallest keys
(a simple random sample of exactly n: a reservoir held until the phase ends). A barrier-
free chip's auxiliary replay is the same chip with barriers (the only thing the fastest
fidelity models): a correlated auxiliary is all the ratio estimator needs.
"""
from __future__ import annotations

import base64
import heapq
import math
import time
import zlib

import numpy as np
from scipy import stats

from snn_frontend.trace import SpikeTrace, concatenate

from .. import registry
from ..errors import RunError

__all__ = ["SampledReplay", "presentation_keys", "ratio_interval"]

_KEY_BLOCK = 4096  # keys drawn per seeded block: the same keys however the trace is cut


def presentation_keys(seed: int, phase: str, start: int, n: int) -> np.ndarray:
    """The sampling keys of presentations [start, start + n) of a phase: uniform on [0, 1),
    a function of (seed, phase, position) only."""
    salt = zlib.crc32(phase.encode())
    first, last = start // _KEY_BLOCK, (start + n - 1) // _KEY_BLOCK if n else start // _KEY_BLOCK
    blocks = [np.random.default_rng([seed, salt, b]).random(_KEY_BLOCK)
              for b in range(first, last + 1)]
    keys = np.concatenate(blocks) if blocks else np.zeros(0)
    off = start - first * _KEY_BLOCK
    return keys[off:off + n]


def ratio_interval(y: np.ndarray, x: np.ndarray, x_total: float, n_total: int,
                   level: float = 0.95) -> dict:
    """The ratio estimate of the total of y over n_total units from the paired sample
    (y, x), x's total known; its standard error and `level` interval (module docstring)."""
    y, x = np.asarray(y, float), np.asarray(x, float)
    n = len(y)
    if n < 2:
        raise ValueError(f"a sampled replay needs at least 2 sampled presentations (got {n})")
    if not 0 < n <= n_total:
        raise ValueError(f"{n} sampled of {n_total} presentations")
    ratio = y.sum() / x.sum()
    estimate = ratio * x_total
    d = y - ratio * x
    se = n_total * math.sqrt(max(0.0, 1 - n / n_total) * d.var(ddof=1) / n)
    q = float(stats.t.ppf(0.5 + level / 2, n - 1))
    return {"estimate": float(estimate), "ratio": float(ratio), "se": se, "level": level,
            "interval": [float(estimate - q * se), float(estimate + q * se)]}


class SampledReplay:
    """A PhaseReplay (consume, snapshot, restore, finish) that replays every presentation at
    the fastest fidelity and a sample at the chip's own, and estimates its latency."""

    def __init__(self, chip, name: str, sample, executor=None):
        fastest = next(iter(registry.fidelities()))
        hw = chip.hw
        if not hw.sync.barrier:
            hw = hw.model_copy(update={"sync": hw.sync.model_copy(update={"barrier": True})})
        twin = type(chip)(hw, chip.spec, fastest, chip.placement)
        twin.counter = chip.counter  # the chip's own counts (a barrier twin counts barriers)
        self.plan = sample
        self.name = name
        self.auxiliary = twin.phase(name)
        self.detailed = chip.phase(name, executor)
        self.result = self.auxiliary.result  # counts and steps of every presentation
        self.fidelities = (fastest, chip.fidelity)
        self._seen = 0           # presentations so far
        self._sampled: list[int] = []  # positions replayed in detail, in order (fraction)
        self._reservoir: list[tuple[float, int, SpikeTrace]] = []  # (-key, position, trace)
        self._detail_s = 0.0

    # ---- the stream ----------------------------------------------------------------
    def consume(self, part: SpikeTrace) -> None:
        self.auxiliary.consume(part)
        t0 = time.perf_counter()
        keys = presentation_keys(self.plan.seed, self.name, self._seen, part.n_presentations)
        if self.plan.fraction is not None:
            chosen = np.flatnonzero(keys < self.plan.fraction)
            if len(chosen):
                self._sampled.extend(int(self._seen + k) for k in chosen)
                self.detailed.consume(part.take(chosen))
        else:
            self._offer(part, keys)
        self._seen += part.n_presentations
        self._detail_s += time.perf_counter() - t0

    def _offer(self, part: SpikeTrace, keys: np.ndarray) -> None:
        """Keep the presentations with the `presentations` smallest keys so far."""
        n, heap = self.plan.presentations, self._reservoir
        for k in np.argsort(keys, kind="stable"):
            entry = (-float(keys[k]), self._seen + int(k))
            if len(heap) < n:
                heapq.heappush(heap, (*entry, part.take([k])))
            elif entry[0] > heap[0][0]:
                heapq.heapreplace(heap, (*entry, part.take([k])))
            else:
                break  # keys ascending: no later one of this part is smaller

    # ---- checkpoints -------------------------------------------------------------------
    def snapshot(self) -> dict:
        state = self.auxiliary.snapshot()
        det = self.detailed.snapshot()
        state["sample"] = {
            "seen": self._seen, "sampled": list(self._sampled),
            "auxiliary_cycles": list(self.auxiliary.result.presentation_cycles),
            "detailed": det,
            "detailed_cycles": list(self.detailed.result.presentation_cycles),
            "reservoir": [[k, pos, base64.b64encode(t.to_bytes()).decode()]
                          for k, pos, t in self._reservoir]}
        return state

    def restore(self, state: dict) -> None:
        self.auxiliary.restore(state)
        s = state["sample"]
        self.auxiliary.result.presentation_cycles[:] = s["auxiliary_cycles"]
        self.detailed.restore(s["detailed"])
        self.detailed.result.presentation_cycles[:] = s["detailed_cycles"]
        self._seen, self._sampled = s["seen"], list(s["sampled"])
        self._reservoir = [(k, pos, SpikeTrace.from_bytes(base64.b64decode(b), "checkpoint"))
                           for k, pos, b in s["reservoir"]]
        heapq.heapify(self._reservoir)

    # ---- the estimate ----------------------------------------------------------------
    def totals(self) -> dict:
        """The finished estimate as PhaseReplay.totals() gives a replay (with `sampled`)."""
        r = self.finish()
        return dict(self.auxiliary.snapshot(), cycles=r.cycles, sampled=r.sampled,
                    presentation_cycles=list(r.presentation_cycles),
                    simpy_events=r.simpy_events)

    def finish(self):
        t0 = time.perf_counter()
        if self._reservoir:
            kept = sorted(self._reservoir, key=lambda e: e[1])
            self._sampled = [pos for _, pos, _ in kept]
            self.detailed.consume(concatenate([t for _, _, t in kept]))
        detailed = self.detailed.finish()
        r = self.auxiliary.finish()
        x = np.asarray(r.presentation_cycles, float)
        y = np.asarray(detailed.presentation_cycles, float)
        if len(y) != len(self._sampled):
            raise RuntimeError(f"{len(y)} detailed replays for {len(self._sampled)} sampled "
                               "presentations")
        if len(y) < 2:
            raise RunError(f"run.chip_sample: {len(y)} of the {len(x)} presentations of phase "
                           f"{self.name} were sampled; an interval needs at least 2 (raise "
                           "fraction, or give presentations: n)")
        auxiliary_cycles = int(r.cycles)
        est = ratio_interval(y, x[self._sampled], auxiliary_cycles, len(x))
        r.cycles = int(round(est["estimate"]))
        r.simpy_events = detailed.simpy_events
        r.sampled = {"fidelity": self.fidelities[1], "auxiliary": self.fidelities[0],
                     "presentations": len(y), "of": len(x), "seed": self.plan.seed,
                     "fraction": self.plan.fraction, "auxiliary_cycles": auxiliary_cycles,
                     "sampled_cycles": int(y.sum()), "ratio": est["ratio"],
                     "se_cycles": est["se"], "level": est["level"],
                     "latency_cycles_interval": est["interval"]}
        self._detail_s += time.perf_counter() - t0
        r.wall_s += self._detail_s  # the detailed replay ran inside these stretches
        return r
