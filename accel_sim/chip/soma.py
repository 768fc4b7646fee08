"""Each core's soma cycles in each step of a presentation, for chips with per-neuron soma
time (`cores.soma_cycles`), kept compact.

At most steps a population's neurons are updated all or none (a dense input projection
reaches every one of them, a bias updates them all), so step t's soma cycles on the cores
are one of a few rows, `rows[kind[t]]` (every neuron's idle cost plus the active cost of
the populations wholly updated at t), plus a few additions (t, core, cycles): the
populations updated in part, the spikes. The timing reads the per-step maxima, the
per-core sums and the rows of a few steps, without the (steps x cores) array that the
fidelities following each message read (`dense`).
"""
from __future__ import annotations

from functools import cached_property

import numpy as np

__all__ = ["SomaSteps", "SomaTable"]


class SomaTable:
    """The rows of one chip's soma cycles per core: `idle` cycles for every neuron, plus
    `active` cycles for every neuron of the populations wholly updated at the step. With
    up to `TABLE_POPULATIONS` populations on the chip, one row per combination of them,
    made once (a step's kind is its combination's bits); with more, a row per step."""

    TABLE_POPULATIONS = 10

    def __init__(self, neurons_per_core: np.ndarray, k_per_core: np.ndarray, idle: int,
                 active: int):
        self.base, self.k = idle * neurons_per_core, k_per_core  # (C,), (Q, C)
        self.active = active
        Q = len(k_per_core)
        self.bits = None
        if Q <= self.TABLE_POPULATIONS:
            self.bits = np.int64(1) << np.arange(Q, dtype=np.int64)
            combos = (np.arange(2 ** Q)[:, None] >> np.arange(Q)) & 1
            self.rows = self.base + active * (combos @ k_per_core)

    def steps(self, whole: np.ndarray, add_t: np.ndarray, add_c: np.ndarray,
              add_v: np.ndarray) -> SomaSteps:
        """whole (T, Q): which populations are wholly updated at each step; the additions
        (step, core, cycles) of the rest."""
        w = whole.astype(np.int64)
        if self.bits is not None:
            return SomaSteps(self.rows, w @ self.bits, add_t, add_c, add_v)
        return SomaSteps(self.base + self.active * (w @ self.k), np.arange(len(w)), add_t,
                         add_c, add_v)


class SomaSteps:
    """Step t's soma cycles per core: rows[kind[t]] plus the additions at step t."""

    def __init__(self, rows: np.ndarray, kind: np.ndarray, add_t: np.ndarray,
                 add_c: np.ndarray, add_v: np.ndarray):
        self.rows, self.kind = rows, kind  # (K, C), (T,) in [0, K)
        self.add_t, self.add_c, self.add_v = add_t, add_c, add_v

    @classmethod
    def of_dense(cls, cycles: np.ndarray) -> SomaSteps:
        """Every step its own row (the closed-form estimate's expected soma cycles)."""
        none = np.zeros(0, np.int64)
        return cls(cycles, np.arange(len(cycles)), none, none, none.astype(cycles.dtype))

    @cached_property
    def dense(self) -> np.ndarray:
        """(T, C) the soma cycles of every core in every step."""
        out = self.rows[self.kind]
        np.add.at(out, (self.add_t, self.add_c), self.add_v)
        return out

    def at(self, steps: np.ndarray) -> np.ndarray:
        """(len(steps), C) the rows of `steps` (ascending, distinct)."""
        out = self.rows[self.kind[steps]]
        pos = np.searchsorted(steps, self.add_t)
        hit = pos < len(steps)
        hit[hit] = steps[pos[hit]] == self.add_t[hit]
        np.add.at(out, (pos[hit], self.add_c[hit]), self.add_v[hit])
        return out

    def step_max(self) -> np.ndarray:
        """(T,) the busiest core's soma cycles in each step."""
        most = self.rows.max(axis=1, initial=0)[self.kind]
        steps = np.unique(self.add_t)
        if len(steps):
            most[steps] = self.at(steps).max(axis=1, initial=0)
        return most

    def per_core(self) -> np.ndarray:
        """(C,) each core's soma cycles summed over the steps."""
        out = np.bincount(self.kind, minlength=len(self.rows)) @ self.rows
        np.add.at(out, self.add_c, self.add_v)
        return out
