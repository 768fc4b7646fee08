"""Exact frontend operation counts, derived from spike totals per presentation.

Every count is a closed form of what the kernels do (docs/equations.md):

    synaptic_events   = input*N + exc*1 + inh*(N-1)     (fan-outs: all-to-all,
                                                          one-to-one, all-but-self)
                      = input*N + exc*(N-1)              (direct lateral inhibition)
    neuron_updates    = steps * (N + N_inh)              (exc + inh, every step)
    weight_updates    = input*N [if depression] + exc*n_in (learning: STDP arithmetic)
    weight_writes     = rows*N + cols*n_in               (weights written back; equal to
                                                          weight_updates unless buffered)
    decay_ops         = n_in*N per weight decay / ASP leak pass
    normalisation_ops = normalisations * n_in*N          (one multiply per weight)
    trace_updates     = steps*(n_in + 2N) + input + 2*exc (decays + sets; learning)
    theta_updates     = steps*N + exc (+ N per reset)    (decay + increment; learning; a
                                                          reset decays theta through the rest)
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

__all__ = ["FrontendCounts"]


@dataclass
class FrontendCounts:
    samples: int = 0
    presentations: int = 0
    time_steps: int = 0
    idle_rest_steps: int = 0  # rest steps replaced by a state reset (not integrated)
    input_spikes: int = 0
    exc_spikes: int = 0
    inh_spikes: int = 0
    synaptic_events: int = 0
    neuron_updates: int = 0
    weight_updates: int = 0
    weight_writes: int = 0
    decay_ops: int = 0
    normalisation_ops: int = 0
    trace_updates: int = 0
    theta_updates: int = 0

    def add_presentation(self, *, n_in: int, n_exc: int, steps: int, idle_rest_steps: int,
                         spikes: tuple[int, int, int], learn: bool, normalised: bool,
                         lateral: bool = False, depression: bool = True,
                         writes: tuple[int, int] | None = None, decays: int = 0) -> None:
        s_in, s_exc, s_inh = (int(x) for x in spikes)
        self.presentations += 1
        self.time_steps += steps
        self.idle_rest_steps += idle_rest_steps
        self.input_spikes += s_in
        self.exc_spikes += s_exc
        self.inh_spikes += s_inh
        if lateral:
            self.synaptic_events += s_in * n_exc + s_exc * (n_exc - 1)
            self.neuron_updates += steps * n_exc
        else:
            self.synaptic_events += s_in * n_exc + s_exc + s_inh * (n_exc - 1)
            self.neuron_updates += steps * 2 * n_exc
        if normalised:
            self.normalisation_ops += n_in * n_exc
        self.decay_ops += decays * n_in * n_exc
        if learn:
            self.weight_updates += (s_in * n_exc if depression else 0) + s_exc * n_in
            rows, cols = writes if writes is not None else (s_in if depression else 0, s_exc)
            self.weight_writes += rows * n_exc + cols * n_in
            self.trace_updates += steps * (n_in + 2 * n_exc) + s_in + 2 * s_exc
            self.theta_updates += steps * n_exc + s_exc + (n_exc if idle_rest_steps else 0)

    def merge(self, other: "FrontendCounts") -> None:
        for k, v in asdict(other).items():
            setattr(self, k, getattr(self, k) + v)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    def load(self, d: dict[str, int]) -> None:
        """Take the counts of `as_dict` (a resumed run's)."""
        for k, v in d.items():
            setattr(self, k, v)

    def per_sample(self) -> dict[str, float]:
        n = max(self.samples, 1)
        return {k: v / n for k, v in asdict(self).items() if k != "samples"}
