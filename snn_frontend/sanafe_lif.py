"""SANA-FE's leaky integrate-and-fire neuron (its `leaky_integrate_fire` soma model, the
`loihi_lif` unit of its Loihi architecture), step for step, so that a network run here
gives SANA-FE's spikes and the neurons it counts as updated.

One step of a neuron (SANA-FE 2.2, `LoihiLifModel::update`), with state v in double
precision and every parameter as SANA-FE's binding stores it (float32):

    updated = |v| > 0  or  input arrived  or  |bias| > 0
    v = v * leak_decay                     (not at the first step)
    v = trunc(v * 64) / 64                 (toward zero: Loihi's 6 fractional bits)
    v = v + bias + I                       (I: the weights of the synapses that fired)
    fired = v > threshold;  then v = reset (reset_mode hard), v - threshold (soft) or v (none)
    updated = updated or fired

"Input arrived" means a synapse of a spiking neuron reached the neuron (a zero weight
too: SANA-FE connects every pair of a dense layer and every kernel tap of a conv). A
spike at step t reaches its targets at step t + 1 (every projection, every layer).

`run_sanafe_lif` runs a `NetworkSpec` with its weights and these neurons, and returns the
`SpikeTrace` with each population's updated neurons as its `<population>:active` stream
(what SANA-FE's soma charges its update energy and time for); docs/api.md shows it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Mapping

import numpy as np
import scipy.sparse as sp

from .spec import NetworkSpec, Projection, SpecError
from .trace import SpikeTrace, active_stream

__all__ = ["SanafeLif", "sanafe_step", "run_sanafe_lif", "synapse_matrix"]

_F32 = np.float32


@dataclass(frozen=True)
class SanafeLif:
    """One population's parameters: scalars or one value per neuron (stored float32, as
    SANA-FE's Python binding stores them)."""

    threshold: object
    reset: object = 0.0
    leak_decay: object = 1.0
    bias: object = 0.0
    reset_mode: Literal["hard", "soft", "none"] = "hard"

    def arrays(self, name: str, size: int) -> dict[str, np.ndarray]:
        """Each parameter as (size,) float64 holding its float32 value."""
        if self.reset_mode not in ("hard", "soft", "none"):
            raise SpecError(f"population {name!r}: reset_mode {self.reset_mode!r} is not "
                            "hard, soft or none")
        out = {}
        for key in ("threshold", "reset", "leak_decay", "bias"):
            a = np.asarray(getattr(self, key), np.float64).ravel()
            if a.size not in (1, size):
                raise SpecError(f"population {name!r}: {key} has {a.size} values for "
                                f"{size} neurons")
            out[key] = np.broadcast_to(a.astype(_F32).astype(np.float64), (size,)).copy()
        return out


def sanafe_step(v: np.ndarray, current: np.ndarray, arrived: np.ndarray, first: bool,
                p: Mapping[str, np.ndarray], reset_mode: str) -> tuple[np.ndarray, np.ndarray]:
    """Advance the membranes v (float64, (n,) or (batch, n), in place) by one step;
    returns (fired, updated)."""
    updated = (np.abs(v) > 0) | arrived | (np.abs(p["bias"]) > 0)
    if not first:
        v *= p["leak_decay"]
    np.trunc(v * 64.0, out=v)
    v /= 64.0
    v += p["bias"]
    v += current
    fired = v > p["threshold"]
    if reset_mode == "hard":
        np.copyto(v, np.broadcast_to(p["reset"], v.shape), where=fired)
    elif reset_mode == "soft":
        np.subtract(v, p["threshold"], out=v, where=fired)
    return fired, updated | fired


def synapse_matrix(spec: NetworkSpec, pr: Projection, weights) -> sp.csr_matrix:
    """(n_src, n_dst) float64 matrix of a projection's synapses, every synapse stored (zero
    weights too). `weights`: dense (n_src, n_dst); sparse: one per pair; conv: the kernel
    (out, in / groups, *kernel); pools and one_to_one take none."""
    n_src, n_dst = spec.population(pr.src).size, spec.population(pr.dst).size
    kind = pr.connectivity
    if kind == "dense":
        W = np.asarray(weights, _F32)
        if W.shape != (n_src, n_dst):
            raise SpecError(f"projection {pr.name}: weights {W.shape}, expected "
                            f"({n_src}, {n_dst})")
        pre, post = np.divmod(np.arange(n_src * n_dst), n_dst)
        w = W.ravel()
    elif kind == "one_to_one":
        pre = post = np.arange(n_src)
        w = np.ones(n_src, _F32)
    elif kind in ("sparse", "conv2d", "conv1d", "sumpool2d", "avgpool2d"):
        pre, post = pr.connections
        if kind == "sparse":
            w = np.asarray(weights, _F32).ravel()
            if w.size != len(pre):
                raise SpecError(f"projection {pr.name}: {w.size} weights for {len(pre)} pairs")
        elif kind.startswith("conv"):
            k = np.asarray(weights, _F32)
            want = pr.n_kernel_weights(spec.population(pr.src).shape[0],
                                       spec.population(pr.dst).shape[0])
            if k.size != want:
                raise SpecError(f"projection {pr.name}: a kernel of {k.size} weights, "
                                f"expected {want} (out, in / groups, *kernel)")
            w = k.ravel()[pr.kernel_index]
        else:
            w = np.full(len(pre), 1.0 if kind == "sumpool2d" else 1.0 / np.prod(pr.kernel), _F32)
    else:
        raise SpecError(f"projection {pr.name}: {kind} has no SANA-FE equivalent here "
                        "(dense, sparse, one_to_one, conv and pool do)")
    M = sp.csr_matrix((w.astype(np.float64), (pre, post)), shape=(n_src, n_dst))
    M.sum_duplicates()
    return M


def run_sanafe_lif(spec: NetworkSpec, weights: Mapping[str, object],
                   neurons: Mapping[str, SanafeLif], steps: int,
                   inputs: Mapping[str, np.ndarray] | None = None, *, dt_ms: float = 1.0
                   ) -> tuple[SpikeTrace, dict[str, np.ndarray]]:
    """Run the network for `steps` with SANA-FE's neurons on every on-chip population
    (`neurons`: population -> SanafeLif) and the input populations' spike rasters
    (`inputs`: population -> (steps, n) bool). `weights`: projection name ("src->dst") ->
    its weights (see `synapse_matrix`). Returns the trace (spikes and `:active` streams)
    and the spikes of every population, (steps, n) bool."""
    inputs = dict(inputs or {})
    chip = [q for q in spec.populations if q.on_chip]
    missing = sorted({q.name for q in chip} - set(neurons))
    if missing:
        raise SpecError(f"no SanafeLif for population(s) {', '.join(missing)}")
    for q in spec.populations:
        if not q.on_chip and q.name not in inputs:
            inputs[q.name] = np.zeros((steps, q.size), bool)
    for name, r in inputs.items():
        if np.shape(r) != (steps, spec.population(name).size):
            raise SpecError(f"input {name!r}: raster {np.shape(r)}, expected "
                            f"({steps}, {spec.population(name).size})")
    mats = {}
    for pr in spec.projections:
        M = synapse_matrix(spec, pr, weights.get(pr.name))
        pattern = M.copy()
        pattern.data[:] = 1.0
        mats[pr.name] = (M, pattern)
    params = {q.name: neurons[q.name].arrays(q.name, q.size) for q in chip}
    spikes = {q.name: np.zeros((steps, q.size), bool) for q in chip}
    spikes.update({k: np.asarray(v, bool) for k, v in inputs.items()})
    active = {q.name: np.zeros((steps, q.size), bool) for q in chip}
    v = {q.name: np.zeros(q.size) for q in chip}
    for t in range(steps):
        cur = {q.name: np.zeros(q.size) for q in chip}
        hit = {q.name: np.zeros(q.size, bool) for q in chip}
        if t:
            for pr in spec.projections:
                s = spikes[pr.src][t - 1]
                if s.any():
                    M, pattern = mats[pr.name]
                    cur[pr.dst] += s.astype(np.float64) @ M
                    hit[pr.dst] |= (s.astype(np.float64) @ pattern) > 0
        for q in chip:
            fired, updated = sanafe_step(v[q.name], cur[q.name], hit[q.name], t == 0,
                                         params[q.name], neurons[q.name].reset_mode)
            spikes[q.name][t] = fired
            active[q.name][t] = updated
    trace = SpikeTrace.from_rasters(spec, spikes, dt_ms=dt_ms,
                                    streams={active_stream(n): a for n, a in active.items()})
    return trace, spikes
