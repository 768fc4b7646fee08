"""Mutable state of the D&C network and the per-presentation output buffers."""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import ClassVar

import numpy as np

from .params import DCParams

__all__ = ["DCState", "PresentBuffers"]


@dataclass
class DCState:
    """Neuron, conductance and trace state (float64; counters int32).

    Weights and the adaptive threshold `theta` are learned; everything else is
    dynamical state that `reset()` returns to rest.
    """

    v_e: np.ndarray
    ge_e: np.ndarray
    gi_e: np.ndarray
    theta: np.ndarray
    refrac_e: np.ndarray
    lockout_e: np.ndarray
    v_i: np.ndarray
    ge_i: np.ndarray
    refrac_i: np.ndarray
    pre: np.ndarray
    post1: np.ndarray
    post2: np.ndarray
    dw: np.ndarray  # pending weight changes (n_in x N) of timestep-based updates, else empty
    dirty_row: np.ndarray  # rows with pending changes
    dirty_col: np.ndarray  # columns with pending changes
    win_count: np.ndarray  # spikes of each neuron in the current update window
    # input delays (p.delay_slots = R > 0; else empty): rings indexed by step mod R
    in_ring: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))  # R x N pending g_e
    pre_hist: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))  # R x n_in x_pre
    post1_hist: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))  # R x N x_post1
    emit_cnt: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))  # R
    emit_idx: np.ndarray = field(  # R x n_in: inputs that spiked (learning), depression due
        default_factory=lambda: np.zeros((0, 0), np.int32))
    ring_pos: np.ndarray = field(default_factory=lambda: np.zeros(1, np.int32))  # step mod R

    #: the input-delay fields (absent from a checkpoint of a network without delays)
    DELAY_FIELDS: ClassVar[tuple[str, ...]] = ("in_ring", "pre_hist", "post1_hist", "emit_cnt",
                                               "emit_idx", "ring_pos")

    @classmethod
    def initial(cls, p: DCParams, theta_init_mv: float) -> "DCState":
        n, m = p.n_exc, p.n_in
        f = np.zeros
        buffered = p.update_every > 0
        R = p.delay_slots
        st = cls(
            v_e=f(n), ge_e=f(n), gi_e=f(n), theta=np.full(n, float(theta_init_mv)),
            refrac_e=f(n, np.int32), lockout_e=f(n, np.int32),
            v_i=f(n), ge_i=f(n), refrac_i=f(n, np.int32),
            pre=f(m), post1=f(n), post2=f(n),
            dw=f((m, n) if buffered else (1, 1)), dirty_row=f(m, np.int32),
            dirty_col=f(n, np.int32), win_count=f(n, np.int32),
            in_ring=f((R, n)), pre_hist=f((R, m)), post1_hist=f((R, n)),
            emit_cnt=f(R, np.int32), emit_idx=f((R, m), np.int32), ring_pos=f(1, np.int32),
        )
        st.reset(p)
        return st

    def reset(self, p: DCParams) -> None:
        """Return every dynamical variable to rest (theta is kept). Input delays: the
        pending input conductances, the trace histories and the depressions still due are
        dropped, as the membranes are reset (the rest a reset stands for)."""
        self.v_e.fill(p.v_rest_e)
        self.v_i.fill(p.v_rest_i)
        for a in (self.ge_e, self.gi_e, self.ge_i, self.pre, self.post1, self.post2,
                  self.refrac_e, self.lockout_e, self.refrac_i, self.dw, self.dirty_row,
                  self.dirty_col, self.win_count, self.in_ring, self.pre_hist,
                  self.post1_hist, self.emit_cnt, self.emit_idx, self.ring_pos):
            a.fill(0)

    def arrays(self) -> dict[str, np.ndarray]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def copy(self) -> "DCState":
        return DCState(**{k: v.copy() for k, v in self.arrays().items()})

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> "DCState":
        """From `arrays()` (the delay fields may be absent: a network without delays)."""
        return cls(**{f.name: np.array(arrays[f.name]) for f in fields(cls)
                      if f.name in arrays or f.name not in cls.DELAY_FIELDS})


class PresentBuffers:
    """Output buffers of one presentation, sized to exact worst-case bounds.

    Per step: number of input / excitatory / inhibitory spikes (`*_cnt`), and
    the spiking indices in step order (`*_idx`). `response` holds the
    excitatory spike count of each neuron during the input phase.
    """

    def __init__(self, p: DCParams):
        steps = p.steps_per_attempt
        self.in_cnt = np.zeros(steps, np.int32)
        self.exc_cnt = np.zeros(steps, np.int32)
        self.inh_cnt = np.zeros(steps, np.int32)
        self.in_idx = np.zeros(p.steps_present * p.n_in, np.int32)
        self.exc_idx = np.zeros(steps * p.n_exc, np.int32)
        self.inh_idx = np.zeros(steps * p.n_exc, np.int32)
        self.response = np.zeros(p.n_exc, np.int32)
        # weight rows / columns written per step (the learning events the chip prices)
        self.row_cnt = np.zeros(steps, np.int32)
        self.col_cnt = np.zeros(steps, np.int32)
        self.row_idx = np.zeros(steps * p.n_in, np.int32)
        self.col_idx = np.zeros(steps * p.n_exc, np.int32)
