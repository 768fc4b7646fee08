"""The Diehl & Cook 2015 network: a thin stateful wrapper over the kernels.

`DiehlCookNetwork` owns the weights, the adaptive thresholds and the training
state; `train_sample` presents one image with STDP on (re-presenting it at a
higher rate while the excitatory layer stays nearly silent), `infer` presents
many images with plasticity off, on several threads (the kernels run without
the GIL and every presentation starts from the rest state, so the result does
not depend on the thread count).
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ._backend import kernels
from .counts import FrontendCounts
from .params import DCParams, sample_key
from .state import DCState, PresentBuffers
from .trace import TraceBuilder

__all__ = ["DiehlCookNetwork", "PresentationPlan"]


@dataclass(frozen=True)
class PresentationPlan:
    """How images become presentations: rates, retries and the RNG seed."""

    dt_ms: float
    max_rate_hz: float
    retry_rate_step_hz: float
    retry_min_spikes: int
    max_retries: int
    seed: int

    def rate_scale(self, attempt: int) -> float:
        """Spike probability per step per unit pixel value at this attempt."""
        return (self.max_rate_hz + attempt * self.retry_rate_step_hz) / 255.0 * (self.dt_ms / 1000.0)

    @classmethod
    def from_config(cls, cfg) -> "PresentationPlan":
        e = cfg.encoding
        return cls(e.dt_ms, e.max_rate_hz, e.retry_rate_step_hz, e.retry_min_spikes, e.max_retries,
                   cfg.seed)


class DiehlCookNetwork:
    def __init__(self, params: DCParams, plan: PresentationPlan, weights: np.ndarray,
                 theta: np.ndarray, *, norm_total: float | None, state_reset: bool = True,
                 backend: str | None = None):
        if weights.shape != (params.n_in, params.n_exc):
            raise ValueError(f"weights must be {params.n_in}x{params.n_exc}, got {weights.shape}")
        self.params = params
        self.plan = plan
        self.weights = np.ascontiguousarray(weights, dtype=np.float32)
        self.state = DCState.initial(params, 0.0)
        self.state.theta[:] = theta
        self.norm_total = norm_total
        self.state_reset = state_reset
        self.backend, self._k = kernels(backend)
        self._buf = PresentBuffers(params)

    @classmethod
    def from_config(cls, cfg, n_in: int, backend: str | None = None) -> "DiehlCookNetwork":
        p = DCParams.from_config(cfg, n_in)
        syn, lr = cfg.network.synapse, cfg.learning
        rng = np.random.default_rng(cfg.seed)
        w = rng.uniform(syn.w_init_min, syn.w_init_max, size=(n_in, p.n_exc)).astype(np.float32)
        theta = np.full(p.n_exc, cfg.network.exc.theta_init_mv)
        norm = None
        if lr.normalise:
            norm = lr.norm_total if lr.norm_total is not None else 78.0 * n_in / 784.0
        return cls(p, PresentationPlan.from_config(cfg), w, theta, norm_total=norm,
                   state_reset=cfg.network.state_reset, backend=backend or cfg.run.backend)

    # ------------------------------------------------------------------ train
    def train_sample(self, image: np.ndarray, uid: int, *, sample: int = 0,
                     counts: FrontendCounts | None = None,
                     trace: TraceBuilder | None = None) -> int:
        """Present one image with learning on; returns the number of attempts."""
        p, plan, st, buf = self.params, self.plan, self.state, self._buf
        image = np.ascontiguousarray(image, dtype=np.uint8).reshape(-1)
        for attempt in range(plan.max_retries + 1):
            normalised = self.norm_total is not None
            if normalised:
                self._k.normalise_columns(self.weights, self.norm_total)
            if self.state_reset:
                st.reset(p)
            totals = self._k.present(p, self.weights, st, image, sample_key(plan.seed, uid, attempt),
                                     plan.rate_scale(attempt), True, buf)
            if self._idle_rest_steps:  # the rest a reset stands for: theta decays through it
                st.theta *= p.decay_theta ** self._idle_rest_steps
            self._record(counts, trace, sample, attempt, normalised, totals, learn=True)
            if buf.response.sum() >= plan.retry_min_spikes:
                break
        if counts is not None:
            counts.samples += 1
        return attempt + 1

    # ------------------------------------------------------------------ infer
    def infer(self, images: np.ndarray, uid_base: int, *, threads: int = 0,
              counts: FrontendCounts | None = None, trace: TraceBuilder | None = None,
              on_sample: Callable[[int], None] | None = None,
              block_size: int = 1024) -> np.ndarray:
        """Spike counts (samples x neurons) of every image with plasticity off."""
        images = np.ascontiguousarray(images, dtype=np.uint8).reshape(len(images), -1)
        n = len(images)
        threads = threads or os.cpu_count() or 1
        if not self.state_reset:
            threads = 1  # state carries from sample to sample: sequential by definition
        # at most one spike per step: uint16 holds any count of a <= 32.7 s presentation
        dtype = np.uint16 if self.params.steps_present < 2**16 else np.int32
        responses = np.zeros((n, self.params.n_exc), dtype)
        # blocks of samples keep the recorded trace bounded: each block is split over the
        # threads, then its presentations go to the trace in sample order (deterministic)
        block = max(threads, block_size)
        pool = ThreadPoolExecutor(threads) if threads > 1 else None
        try:
            for start in range(0, n, block):
                stop = min(n, start + block)
                k = max(1, min(threads, stop - start))
                bounds = np.linspace(start, stop, k + 1).astype(int)
                chunks = [range(bounds[i], bounds[i + 1]) for i in range(k)]
                args = (images, uid_base, responses, trace is not None, on_sample)
                if pool is None or k == 1:
                    results = [self._infer_chunk(c, *args) for c in chunks]
                else:
                    results = list(pool.map(lambda c: self._infer_chunk(c, *args), chunks))
                for local_counts, records in results:
                    if counts is not None:
                        counts.merge(local_counts)
                    if trace is not None:
                        for rec in records:
                            trace.add(*rec)
        finally:
            if pool is not None:
                pool.shutdown()
        return responses

    def _infer_chunk(self, chunk, images, uid_base, responses, record, on_sample):
        p, plan, k = self.params, self.plan, self._k
        if self.state_reset:
            st = DCState.initial(p, 0.0)
            st.theta = self.state.theta  # shared, read-only with learning off
        else:
            st = self.state
        buf = PresentBuffers(p)
        local = FrontendCounts()
        records: list = []
        for s in chunk:
            for attempt in range(plan.max_retries + 1):
                if self.state_reset:
                    st.reset(p)
                totals = k.present(p, self.weights, st, images[s],
                                   sample_key(plan.seed, uid_base + s, attempt),
                                   plan.rate_scale(attempt), False, buf)
                self._count(local, totals, learn=False, normalised=False)
                if record:
                    records.append(_snapshot(s, attempt, False, p, buf, totals))
                if buf.response.sum() >= plan.retry_min_spikes:
                    break
            responses[s] = buf.response
            local.samples += 1
            if on_sample is not None:
                on_sample(1)
        return local, records

    # ---------------------------------------------------------------- helpers
    def _count(self, counts, totals, *, learn, normalised):
        p = self.params
        idle = 0 if p.steps_rest else self._idle_rest_steps
        counts.add_presentation(n_in=p.n_in, n_exc=p.n_exc, steps=p.steps_per_attempt,
                                idle_rest_steps=idle, spikes=totals, learn=learn,
                                normalised=normalised)

    _idle_rest_steps = 0  # set by the caller when a rest period is replaced by a reset

    def _record(self, counts, trace, sample, attempt, normalised, totals, *, learn):
        if counts is not None:
            self._count(counts, totals, learn=learn, normalised=normalised)
        if trace is not None:
            trace.add(*_snapshot(sample, attempt, normalised, self.params, self._buf, totals))

    def set_idle_rest_steps(self, steps: int) -> None:
        """Rest steps per presentation that a state reset replaces (for the counts)."""
        self._idle_rest_steps = int(steps)


def _snapshot(sample, attempt, normalised, p: DCParams, buf: PresentBuffers, totals):
    n_in, n_exc, n_inh = totals
    steps = p.steps_per_attempt
    return (sample, attempt, normalised, steps,
            {"input": buf.in_cnt[:steps].copy(), "exc": buf.exc_cnt[:steps].copy(),
             "inh": buf.inh_cnt[:steps].copy()},
            {"input": buf.in_idx[:n_in].copy(), "exc": buf.exc_idx[:n_exc].copy(),
             "inh": buf.inh_idx[:n_inh].copy()})
