"""NumPy reference of the NIR population kernels (ext/nir_kernels.pyx mirrors it step for
step; float32 throughout, state flushed to zero below FLUSH_BELOW).

One step of one population over samples [b0, b1) is: set_bias (I = bias), then per
incoming projection add_spiking_rows (dense: I += the weight rows of the sources spiking,
in index order) or add_spiking_csr (a conv or pool: each spiking source's synapses, in
their order, add their weight to their target), for a CubaLIF cuba_current (the membrane's drive is the synaptic current
before this step's input), then one neuron update: leaky_zero, leaky_subtract or
leaky_silent (an IF is the leaky update with decay 1 and v_leak 0: the same numbers).
"""
from __future__ import annotations

import numpy as np

from .numerics import FLUSH_BELOW

__all__ = [
    "add_spiking_csr",
    "add_spiking_rows",
    "cuba_current",
    "leaky_silent",
    "leaky_subtract",
    "leaky_zero",
    "set_bias",
]

F32 = np.float32


def _flush(x: np.ndarray) -> np.ndarray:
    return np.where(np.abs(x) < F32(FLUSH_BELOW), F32(0), x).astype(F32)


def set_bias(I, bias, b0, b1) -> None:
    I[b0:b1] = bias


def add_spiking_rows(I, S, W, b0, b1) -> int:
    """I[b] += W[j] for every j with S[b, j], ascending; returns the additions made."""
    adds = 0
    for b in range(b0, b1):
        for j in np.flatnonzero(S[b]):
            I[b] += W[j]
            adds += W.shape[1]
    return adds


def add_spiking_csr(I, S, ptr, post, w, b0, b1) -> int:
    """I[b, post[e]] += w[e] for the synapses e of every j with S[b, j] (rows ptr[j] to
    ptr[j + 1]), j ascending, e in order; returns the additions made."""
    adds = 0
    for b in range(b0, b1):
        for j in np.flatnonzero(S[b]):
            for e in range(ptr[j], ptr[j + 1]):
                I[b, post[e]] += w[e]
            adds += int(ptr[j + 1] - ptr[j])
    return adds


def cuba_current(i, I, syn_decay, w_in, b0, b1) -> None:
    """The drive of the membrane is the current before this step: I <- i; then
    i <- flush(i syn_decay + w_in I)."""
    for b in range(b0, b1):
        drive = i[b].copy()
        i[b] = _flush(i[b] * syn_decay + w_in * I[b])
        I[b] = drive


def _leak(v, I, decay, gain, v_leak):
    return (v_leak + (v - v_leak) * decay) + gain * I


def leaky_zero(v, I, decay, gain, v_leak, v_th, v_reset, S, b0, b1) -> None:
    """v = flush(v_leak + (v - v_leak) decay + gain I); S = v > v_th; v = v_reset there."""
    for b in range(b0, b1):
        x = _flush(_leak(v[b], I[b], decay, gain, v_leak))
        S[b] = x > v_th
        v[b] = np.where(S[b], v_reset, x)


def leaky_subtract(v, I, decay, gain, v_leak, v_th, S, b0, b1) -> None:
    """v = flush((v_leak + (v - v_leak) decay + gain I) - v_th S); S = v > v_th (S holds
    the previous step's spikes on entry: the subtraction owed)."""
    for b in range(b0, b1):
        x = _leak(v[b], I[b], decay, gain, v_leak)
        x = np.where(S[b], x - v_th, x).astype(F32)
        v[b] = _flush(x)
        S[b] = v[b] > v_th


def leaky_silent(v, I, decay, gain, v_leak, b0, b1) -> None:
    """A leaky integrator without spikes (LI): v = flush(v_leak + (v - v_leak) decay + gain I)."""
    for b in range(b0, b1):
        v[b] = _flush(_leak(v[b], I[b], decay, gain, v_leak))
