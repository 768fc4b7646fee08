"""Supervised LIF networks trained by surrogate-gradient BPTT (Perez-Nieves & Goodman 2021).

input -> hidden LIF layers -> a non-spiking leaky readout. `SurrogateNetwork` owns the
weights and the Adam state and runs the kernels of `_bptt_kernels` (or their NumPy
reference) over ranges of samples or weight columns on a thread pool; every range writes
its own outputs in a fixed order, so results do not depend on the thread count.

One training step: `forward` (event-driven: an input spike adds one weight row), `backward`
(dense: the surrogate gradient everywhere; sparse: only at the active entries
|V - 1| < window, the paper's algorithm), `adam_step`. The loss, the activity regularisers
and Adam are shared NumPy code (float64 where it matters). docs/equations.md,
"Surrogate-gradient network", states every equation.
"""
from __future__ import annotations

import itertools
import math
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from ._backend import kernels
from ._bptt_reference import power_table
from .models import hidden_names
from .numerics import flush_inplace
from .spec import NetworkSpec
from .spiking_data import SpikeSet
from .trace import TraceBuilder, grad_stream, optimizer_stream

__all__ = [
    "Events",
    "LayerRecord",
    "Record",
    "StepCounts",
    "SurrogateNetwork",
    "SurrogateParams",
    "events_from_raster",
    "spikeset_events",
]

F32 = np.float32
LOSSES = ("max", "sum")
INITS = ("normal", "uniform")


@dataclass(frozen=True)
class SurrogateParams:
    """Every constant of the network and its training (defaults: the paper's F-MNIST)."""

    n_in: int
    hidden: tuple[int, ...]
    n_out: int
    steps: int = 100
    dt_ms: float = 1.0
    tau_mem_ms: float = 10.0
    tau_out_ms: float = 10.0
    window: float | None = 0.2  # None: dense backward
    loss: str = "max"
    reg_upper_strength: float = 0.06
    reg_upper_target: float = 1.0  # spikes per neuron per sample
    reg_upper_power: float = 1.0
    reg_lower_strength: float = 100.0
    reg_lower_target: float = 1e-3
    reg_lower_power: float = 2.0
    lr: float = 2e-4
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_eps: float = 1e-8
    init: str = "normal"
    init_gain: float = 20.0

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if self.init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {self.init!r}")
        if not self.hidden or min(self.hidden) < 1 or self.n_in < 1 or self.n_out < 1:
            raise ValueError("need n_in, n_out >= 1 and at least one hidden layer of >= 1 neuron")
        if self.steps < 2:
            raise ValueError(f"need at least 2 steps, got {self.steps}")
        if self.window is not None and not self.window > 0:
            raise ValueError(f"the sparse window must be > 0, got {self.window}")

    @property
    def beta(self) -> float:
        """Membrane decay per step, exp(-dt / tau_mem)."""
        return math.exp(-self.dt_ms / self.tau_mem_ms)

    @property
    def beta_out(self) -> float:
        """Readout decay per step, exp(-dt / tau_out)."""
        return math.exp(-self.dt_ms / self.tau_out_ms)

    @property
    def sizes(self) -> tuple[int, ...]:
        """Layer sizes, input to readout."""
        return (self.n_in, *self.hidden, self.n_out)

    @property
    def backward(self) -> str:
        return "dense" if self.window is None else "sparse"


@dataclass(frozen=True)
class Events:
    """Entries of B samples x T steps in compressed rows over (b, k): the entries of sample b
    at step k are idx[off[b*T + k] : off[b*T + k + 1]], ascending."""

    off: np.ndarray  # int64 (B*T + 1,)
    idx: np.ndarray  # int32
    steps: int

    @property
    def batch(self) -> int:
        return (len(self.off) - 1) // self.steps

    def counts(self) -> np.ndarray:
        """Entries per (b, k), int64 (B, T)."""
        return np.diff(self.off).reshape(self.batch, self.steps)


def events_from_raster(raster: np.ndarray) -> Events:
    """Events of a binary raster (B, T, N)."""
    B, T, N = raster.shape
    flat = raster.reshape(B * T, N)
    off = np.zeros(B * T + 1, np.int64)
    np.cumsum(np.count_nonzero(flat, axis=1), out=off[1:])
    return Events(off, np.nonzero(flat)[1].astype(np.int32), T)


def spikeset_events(data: SpikeSet, indices: np.ndarray) -> Events:
    """Events of the samples `indices` of a SpikeSet (its events are sorted by step, input)."""
    idx = np.asarray(indices, np.int64)
    starts, ends = data.offsets[idx], data.offsets[idx + 1]
    counts = ends - starts
    rows = np.repeat(np.arange(len(idx)), counts)
    pos = np.arange(counts.sum()) + np.repeat(starts - (np.cumsum(counts) - counts), counts)
    slot = rows * data.steps + data.times[pos].astype(np.int64)
    off = np.zeros(len(idx) * data.steps + 1, np.int64)
    np.cumsum(np.bincount(slot, minlength=len(idx) * data.steps), out=off[1:])
    return Events(off, data.units[pos].astype(np.int32), data.steps)


@dataclass
class LayerRecord:
    """What the forward keeps of one hidden layer: its input events and spikes, and what
    the backward needs: every membrane (dense) or the active entries and the surrogate
    there (sparse; none at inference)."""

    inputs: Events
    spikes: Events
    size: int
    V: np.ndarray | None = None  # float32 (B, T, N): a dense backward's
    active: Events | None = None  # entries with |V - 1| < window: a sparse backward's
    active_sg: np.ndarray | None = None  # float32, the surrogate derivative at each


@dataclass
class Record:
    """One forward pass over a batch."""

    layers: list[LayerRecord]
    O: np.ndarray  # readout, float32 (B, T, C)
    synops: list[int]  # synaptic additions per projection (input->h1, ..., hL->readout)

    @property
    def active(self) -> list[Events] | None:
        """The active entries of every hidden layer (None unless the forward kept them)."""
        if any(layer.active is None for layer in self.layers):
            return None
        return [layer.active for layer in self.layers]


@dataclass
class StepCounts:
    """What one backward pass did, per projection (index 0: input -> hidden 1; last: the
    readout): the kernels' own operation counts."""

    surrogate: list[int] = field(default_factory=list)  # surrogate evaluations per hidden layer
    active: list[int] = field(default_factory=list)  # entries the backward touched per layer
    weight_macs: list[int] = field(default_factory=list)  # dW multiply-adds (adds, dense)
    input_macs: list[int] = field(default_factory=list)  # dL/dS_in multiply-adds
    seconds: list[float] = field(default_factory=list, compare=False)  # wall time per projection


def _pieces(n: np.ndarray, bufs: list[np.ndarray], ranges, T: int) -> list[np.ndarray]:
    """The filled part of each sample range's buffer (its entries, counted in n)."""
    return [buf[:int(n[lo * T:hi * T].sum())] for buf, (lo, hi) in zip(bufs, ranges)]


def _gather(n: np.ndarray, bufs: list[np.ndarray], ranges, T: int) -> Events:
    """Events from the per-(b, k) counts and the sample ranges' entry lists, in order."""
    off = np.zeros(len(n) + 1, np.int64)
    np.cumsum(n, out=off[1:])
    return Events(off, np.concatenate(_pieces(n, bufs, ranges, T)), T)


def _ranges(n: int, parts: int) -> list[tuple[int, int]]:
    """[0, n) in up to `parts` contiguous, nearly equal, non-empty ranges."""
    parts = max(1, min(parts, n))
    cuts = [n * p // parts for p in range(parts + 1)]
    return [(a, b) for a, b in itertools.pairwise(cuts) if b > a]


class SurrogateNetwork:
    """Weights, Adam state and the kernels of one surrogate-gradient network."""

    def __init__(self, params: SurrogateParams, weights: list[np.ndarray], *,
                 backend: str | None = None, threads: int = 0):
        self.p = params
        if len(weights) != len(params.sizes) - 1:
            raise ValueError(f"need {len(params.sizes) - 1} weight matrices, got {len(weights)}")
        for w, (a, b) in zip(weights, itertools.pairwise(params.sizes)):
            if w.shape != (a, b):
                raise ValueError(f"weight matrix of shape {w.shape}, expected {(a, b)}")
        self.W = [np.ascontiguousarray(w, F32) for w in weights]
        self.m = [np.zeros(w.shape) for w in self.W]  # Adam moments, float64
        self.v = [np.zeros(w.shape) for w in self.W]
        self.t = 0  # Adam steps taken
        self.backend, self.k = kernels(backend, "bptt")
        self.threads = threads or os.cpu_count() or 1
        self._pool = ThreadPoolExecutor(self.threads) if self.threads > 1 else None
        self._work: dict[str, np.ndarray] = {}
        self._powers = power_table(params.beta, params.steps)  # beta^m, shared by both backends

    @classmethod
    def initialise(cls, params: SurrogateParams, seed: int, **kw) -> SurrogateNetwork:
        """Fresh weights: N(0, gain (1 - beta) / sqrt(fan_in)) ("normal", the paper's F-MNIST)
        or U(-1/sqrt(fan_in), 1/sqrt(fan_in)) ("uniform", its N-MNIST and SHD)."""
        rng = np.random.default_rng(seed)
        weights = []
        for a, b in itertools.pairwise(params.sizes):
            if params.init == "normal":
                sigma = params.init_gain * (1.0 - params.beta) / math.sqrt(a)
                weights.append(rng.normal(0.0, sigma, (a, b)).astype(F32))
            else:
                bound = 1.0 / math.sqrt(a)
                weights.append(rng.uniform(-bound, bound, (a, b)).astype(F32))
        return cls(params, weights, **kw)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    # ------------------------------------------------------------------ threading

    def _run(self, fn, n: int, *args) -> int:
        """fn(*args, lo, hi) over ranges of [0, n) on the pool; the sum of what it returns."""
        ranges = _ranges(n, self.threads)
        if self._pool is None or len(ranges) == 1:
            return sum(int(fn(*args, lo, hi) or 0) for lo, hi in ranges)
        return sum(int(f.result() or 0) for f in
                   [self._pool.submit(fn, *args, lo, hi) for lo, hi in ranges])

    # ------------------------------------------------------------------ forward

    def _buf(self, name: str, shape: tuple[int, ...], dtype) -> np.ndarray:
        """A work array reused from batch to batch (no page faults on every step)."""
        a = self._work.get(name)
        if a is None or a.shape != shape or a.dtype != dtype:
            a = self._work[name] = np.empty(shape, dtype)
        return a

    def forward(self, inputs: Events, *, train: bool = True) -> Record:
        """Run the batch through every layer. Training keeps what the backward needs: every
        membrane (dense) or only the active entries (sparse); inference keeps neither.
        The record's arrays are reused by the next forward: use or copy them before."""
        p, B, T = self.p, inputs.batch, inputs.steps
        if T != p.steps:
            raise ValueError(f"input has {T} steps, the network {p.steps}")
        dense = train and p.window is None
        window = p.window if train and not dense else 0.0
        ranges = _ranges(B, self.threads)
        layers, synops, x = [], [], inputs
        for li, W in enumerate(self.W[:-1]):
            N = W.shape[1]
            spk_n = np.empty(B * T, np.int64)
            # per sample range, room for every entry: only the pages written are touched
            spk = [self._buf(f"spk{li}.{r}", ((hi - lo) * T * N,), np.int32)
                   for r, (lo, hi) in enumerate(ranges)]
            layer = LayerRecord(x, None, N)  # type: ignore[arg-type]
            if dense:
                layer.V = self._buf(f"V{li}", (B, T, N), F32)
                args = [(x.off, x.idx, W, p.beta, layer.V, spk_n, spk[r], lo, hi)
                        for r, (lo, hi) in enumerate(ranges)]
                synops.append(self._map(self.k.hidden_forward, args))
            else:
                act_n = np.empty(B * T, np.int64)
                act = [self._buf(f"act{li}.{r}", ((hi - lo) * T * N,), np.int32)
                       for r, (lo, hi) in enumerate(ranges)]
                sg = [self._buf(f"sg{li}.{r}", ((hi - lo) * T * N,), F32)
                      for r, (lo, hi) in enumerate(ranges)]
                args = [(x.off, x.idx, W, p.beta, window, T, spk_n, spk[r], act_n, act[r],
                         sg[r], lo, hi) for r, (lo, hi) in enumerate(ranges)]
                synops.append(self._map(self.k.hidden_forward_active, args))
                if train:
                    layer.active = _gather(act_n, act, ranges, T)
                    layer.active_sg = np.concatenate(
                        [g[:len(a)] for g, a in zip(sg, _pieces(act_n, act, ranges, T))])
            layer.spikes = _gather(spk_n, spk, ranges, T)
            layers.append(layer)
            x = layer.spikes
        O = self._buf("O", (B, T, p.n_out), F32)
        synops.append(self._run(self.k.readout_forward, B, x.off, x.idx, self.W[-1],
                                p.beta_out, O))
        return Record(layers, O, synops)

    def _map(self, fn, args: list[tuple]) -> int:
        """fn(*a) for each argument tuple on the pool; the sum of what it returns."""
        if self._pool is None or len(args) == 1:
            return sum(int(fn(*a) or 0) for a in args)
        return sum(int(f.result() or 0) for f in [self._pool.submit(fn, *a) for a in args])

    def predict(self, O: np.ndarray) -> np.ndarray:
        """Class per sample: argmax of the readout's max (or sum) over time."""
        return np.argmax(O.max(axis=1) if self.p.loss == "max" else O.sum(axis=1), axis=1)

    # ------------------------------------------------------------------ loss

    def loss_grad(self, rec: Record, labels: np.ndarray) -> tuple[float, float, np.ndarray,
                                                                  list[np.ndarray]]:
        """(classification loss, regulariser loss, dL/dO float32 (B, T, C), dL/dS of the
        regularisers per hidden layer, float32 (B, N), the same at every step)."""
        p, O = self.p, rec.O
        B = O.shape[0]
        if p.loss == "max":
            t_star = O.argmax(axis=1)  # first maximum, (B, C)
            z = np.take_along_axis(O, t_star[:, None, :], axis=1)[:, 0, :].astype(np.float64)
        else:
            z = O.sum(axis=1, dtype=np.float64)
        z = z - z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        nll = -logp[np.arange(B), labels].mean()
        dz = np.exp(logp)
        dz[np.arange(B), labels] -= 1.0
        dz /= B
        dO = np.zeros(O.shape, F32)
        if p.loss == "max":
            np.put_along_axis(dO, t_star[:, None, :], dz[:, None, :].astype(F32), axis=1)
        else:
            dO[:, 1:, :] = dz[:, None, :].astype(F32)
        reg_loss, reg_grads = 0.0, []
        for layer in rec.layers:
            loss, grad = self._regulariser(layer.spikes, layer.size)
            reg_loss += loss
            reg_grads.append(grad)
        return float(nll), reg_loss, dO, reg_grads

    def _regulariser(self, spikes: Events, N: int) -> tuple[float, np.ndarray]:
        """The paper's upper and lower activity penalties on one layer's spike counts:
        (batch-mean loss, dL/dS per (b, j), float32)."""
        p, B = self.p, spikes.batch
        rows = np.repeat(np.arange(B), spikes.counts().sum(axis=1))
        counts = np.bincount(rows * N + spikes.idx, minlength=B * N).reshape(B, N).astype(
            np.float64)
        over = np.maximum(counts.mean(axis=1) - p.reg_upper_target, 0.0)  # (B,)
        under = np.maximum(p.reg_lower_target - counts, 0.0)  # (B, N)
        loss = (p.reg_upper_strength * over ** p.reg_upper_power
                + p.reg_lower_strength / N * (under ** p.reg_lower_power).sum(axis=1)).mean()
        d_over = np.where(over > 0, p.reg_upper_strength * p.reg_upper_power
                          * over ** (p.reg_upper_power - 1.0) / N, 0.0)
        d_under = np.where(under > 0, -p.reg_lower_strength / N * p.reg_lower_power
                           * under ** (p.reg_lower_power - 1.0), 0.0)
        return float(loss), ((d_over[:, None] + d_under) / B).astype(F32)

    # ------------------------------------------------------------------ backward

    def backward(self, rec: Record, labels: np.ndarray) -> tuple[float, list[np.ndarray],
                                                                StepCounts]:
        """(loss incl. regularisers, dL/dW per projection, operation counts), dense or sparse
        by params.window."""
        nll, reg_loss, dO, reg = self.loss_grad(rec, labels)
        if self.p.window is None:
            grads, counts = self._backward_dense(rec, dO, reg)
        else:
            grads, counts = self._backward_sparse(rec, dO, reg)
        for g in grads:
            flush_inplace(g)
        return nll + reg_loss, grads, counts

    def _backward_dense(self, rec, dO, reg):
        p, k = self.p, self.k
        B, T, _ = dO.shape
        counts = StepCounts()
        grads: list[np.ndarray] = [None] * len(self.W)  # type: ignore[list-item]
        t0 = time.perf_counter()
        G = np.empty_like(dO)
        self._run(k.readout_delta, B, dO, p.beta_out, G)
        top = rec.layers[-1]
        grads[-1] = np.zeros_like(self.W[-1])
        readout_macs = self._run(k.weight_grad, p.n_out, top.spikes.off, top.spikes.idx, G,
                                 grads[-1])
        dS = np.empty(top.V.shape, F32)
        in_macs = [self._run(k.input_grad, B, G, np.ascontiguousarray(self.W[-1].T), dS)]
        w_macs = [readout_macs]
        counts.seconds.insert(0, time.perf_counter() - t0)
        for li in range(len(rec.layers) - 1, -1, -1):
            t0 = time.perf_counter()
            layer, W = rec.layers[li], self.W[li]
            G = np.empty(layer.V.shape, F32)
            self._run(k.hidden_delta, B, layer.V, dS, reg[li], p.beta, G)
            grads[li] = np.zeros_like(W)
            w_macs.insert(0, self._run(k.weight_grad, W.shape[1], layer.inputs.off,
                                       layer.inputs.idx, G, grads[li]))
            counts.surrogate.insert(0, B * (T - 1) * W.shape[1])
            counts.active.insert(0, B * (T - 1) * W.shape[1])
            if li > 0:
                dS = np.empty(rec.layers[li - 1].V.shape, F32)
                in_macs.insert(0, self._run(k.input_grad, B, G, np.ascontiguousarray(W.T), dS))
            counts.seconds.insert(0, time.perf_counter() - t0)
        counts.weight_macs = w_macs
        counts.input_macs = [0] + in_macs  # the input layer's spikes need no gradient
        return grads, counts

    def _backward_sparse(self, rec, dO, reg):
        p, k = self.p, self.k
        B, T, _ = dO.shape
        counts = StepCounts()
        grads: list[np.ndarray] = [None] * len(self.W)  # type: ignore[list-item]
        if rec.active is None:
            raise ValueError("a sparse backward needs a training forward of a sparse network")
        active = [(layer.active, layer.active_sg) for layer in rec.layers]
        t0 = time.perf_counter()
        G = np.empty_like(dO)
        self._run(k.readout_delta, B, dO, p.beta_out, G)
        top = rec.layers[-1]
        grads[-1] = np.zeros_like(self.W[-1])
        w_macs = [self._run(k.weight_grad, p.n_out, top.spikes.off, top.spikes.idx, G,
                            grads[-1])]
        act, _ = active[-1]
        dS = np.empty(len(act.idx), F32)
        in_macs = [self._run(k.input_grad_at, B, G, self.W[-1], act.off, act.idx, dS)]
        counts.seconds.insert(0, time.perf_counter() - t0)
        for li in range(len(rec.layers) - 1, -1, -1):
            t0 = time.perf_counter()
            layer, W = rec.layers[li], self.W[li]
            act, sg = active[li]
            rows = np.repeat(np.arange(B), act.counts().sum(axis=1))
            delta = (dS + reg[li][rows, act.idx]) * sg
            dWT = np.zeros((W.shape[1], W.shape[0]), F32)  # transposed: a neuron's fan-in
            w_macs.insert(0, self._run(k.sparse_weight_grad, W.shape[1], layer.inputs.off,
                                       layer.inputs.idx, act.off, act.idx, delta,
                                       self._powers, dWT, T))
            grads[li] = np.ascontiguousarray(dWT.T)
            counts.surrogate.insert(0, len(act.idx))
            counts.active.insert(0, len(act.idx))
            if li > 0:
                prev, _ = active[li - 1]
                dS = np.zeros(len(prev.idx), F32)
                in_macs.insert(0, self._run(k.sparse_input_grad, B, act.off, act.idx, delta,
                                            prev.off, prev.idx, W, self._powers, dS, T))
            counts.seconds.insert(0, time.perf_counter() - t0)
        counts.weight_macs = w_macs
        counts.input_macs = [0] + in_macs
        return grads, counts

    # ------------------------------------------------------------------ the trace

    def trace_meta(self, spec: NetworkSpec, *, learn: bool, batch: int) -> dict:
        """What the chip needs to replay this network's trace, besides the spikes."""
        learning = {pr.name: {"rule": "bptt", "backward": self.p.backward, "batch": batch}
                    for pr in spec.projections}
        return {"spec": spec.to_dict(), "learn": learn, "dt_ms": self.p.dt_ms,
                "state_reset": True, "learning": learning}

    def events(self, spec: NetworkSpec, learn: bool) -> tuple[str, ...]:
        """The learning event streams of a training trace: each hidden layer's gradient set
        (sparse backward) and one optimiser step per projection."""
        if not learn:
            return ()
        grads = tuple(grad_stream(n) for n in hidden_names(len(self.p.hidden))) \
            if self.p.window is not None else ()
        return grads + tuple(optimizer_stream(pr.name) for pr in spec.projections)

    def record_batch(self, tb: TraceBuilder, spec: NetworkSpec, first_sample: int,
                     rec: Record, *, learn: bool) -> None:
        """Every sample of a batch as one presentation of the trace: the spikes of each
        population, the gradient sets (training, sparse), and after the batch's last sample
        one optimiser step per projection (training)."""
        B, T = rec.O.shape[0], rec.O.shape[1]
        names = hidden_names(len(rec.layers))
        streams = {"input": rec.layers[0].inputs}
        streams.update({n: layer.spikes for n, layer in zip(names, rec.layers)})
        if learn and rec.active is not None:
            streams.update({grad_stream(n): a for n, a in zip(names, rec.active)})
        for b in range(B):
            counts = {n: np.diff(ev.off[b * T:(b + 1) * T + 1]) for n, ev in streams.items()}
            indices = {n: ev.idx[ev.off[b * T]:ev.off[(b + 1) * T]] for n, ev in streams.items()}
            counts["readout"], indices["readout"] = np.zeros(T, np.int64), np.zeros(0, np.int64)
            if learn:
                step = np.zeros(T, np.int64)
                step[-1] = b == B - 1
                for pr in spec.projections:
                    counts[optimizer_stream(pr.name)] = step
                    indices[optimizer_stream(pr.name)] = np.zeros(int(step[-1]), np.int64)
            tb.add(first_sample + b, 0, False, T, counts, indices)

    # ------------------------------------------------------------------ optimiser

    def adam_step(self, grads: list[np.ndarray]) -> None:
        """Adam (PyTorch's form) on every weight matrix, over row ranges on the threads;
        moments in float64, flushed."""
        p = self.p
        self.t += 1
        c1 = 1.0 - p.adam_beta1 ** self.t
        c2 = 1.0 - p.adam_beta2 ** self.t
        for W, m, v, g in zip(self.W, self.m, self.v, grads):
            self._run(self.k.adam, W.shape[0], W, m, v, g, p.lr, p.adam_beta1, p.adam_beta2,
                      p.adam_eps, c1, c2)

    def train_step(self, inputs: Events, labels: np.ndarray) -> tuple[float, Record, StepCounts]:
        """Forward, backward and one Adam step on a batch: (loss, forward record, counts)."""
        rec = self.forward(inputs)
        loss, grads, counts = self.backward(rec, labels)
        self.adam_step(grads)
        return loss, rec, counts
