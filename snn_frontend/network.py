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
from functools import partial
from dataclasses import dataclass
from typing import Callable

import numpy as np

from . import _reference
from ._backend import kernels
from .counts import FrontendCounts
from .numerics import flush, flush_inplace
from .params import DCParams, sample_key
from .models import dc_family_spec
from .spec import NetworkSpec
from .state import DCState, PresentBuffers
from .trace import TraceBuilder, stdp_event_streams

__all__ = ["DiehlCookNetwork", "PresentationPlan", "Plasticity"]


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


@dataclass(frozen=True)
class Plasticity:
    """Mechanisms applied between presentations (docs/equations.md, "Variants")."""

    w_lateral: float = 0.0  # direct lateral inhibition strength (params.lateral)
    adaptive_potentiation: tuple[float, float, float] | None = None  # (target, min, max)
    adaptive_inhibition: tuple[float, float, float] | None = None  # (target, min, max)
    weight_decay_rate: float = 0.0
    asp_leak_rate: float = 0.0

    @classmethod
    def from_config(cls, cfg) -> "Plasticity":
        lr = cfg.learning
        return cls(
            w_lateral=cfg.network.w_lateral,
            adaptive_potentiation=((lr.potentiation_target_spikes, lr.potentiation_gain_min,
                                    lr.potentiation_gain_max) if lr.adaptive_potentiation else None),
            adaptive_inhibition=((lr.inhibition_target_spikes, lr.inhibition_gain_min,
                                  lr.inhibition_gain_max) if lr.adaptive_inhibition else None),
            weight_decay_rate=lr.weight_decay_rate if lr.weight_decay else 0.0,
            asp_leak_rate=lr.asp_leak_rate if lr.asp_leak else 0.0,
        )


class DiehlCookNetwork:
    def __init__(self, params: DCParams, plan: PresentationPlan, weights: np.ndarray,
                 theta: np.ndarray, *, norm_total: float | None, state_reset: bool = True,
                 backend: str | None = None, plasticity: Plasticity = Plasticity(),
                 idle_rest_steps: int = 0, input_delays: np.ndarray | None = None):
        if weights.shape != (params.n_in, params.n_exc):
            raise ValueError(f"weights must be {params.n_in}x{params.n_exc}, got {weights.shape}")
        self.params = params
        # input -> exc delays in steps (uint8 n_in x N, each < params.delay_slots), or None
        self.input_delays = None
        if params.delay_slots:
            if input_delays is None:
                raise ValueError("params.delay_slots > 0 needs the input delays")
            self.set_input_delays(input_delays)
        elif input_delays is not None:
            raise ValueError("input delays given but params.delay_slots is 0")
        self.plan = plan
        self.weights = np.ascontiguousarray(weights, dtype=np.float32)
        self.state = DCState.initial(params, 0.0)
        self.state.theta[:] = _reference.quantise_state(np.asarray(theta, np.float64), params)
        self.norm_total = norm_total
        self.state_reset = state_reset
        self.backend, self._k = kernels(backend)
        self._buf = PresentBuffers(params)
        self.plasticity = plasticity
        # rest steps per presentation that a state reset stands for (not integrated; counted,
        # and theta decays through them)
        self.idle_rest_steps = int(idle_rest_steps) if state_reset else 0
        # activity of the last training presentation (max spikes of a neuron, total spikes),
        # which drives the adaptive potentiation and inhibition of the next one
        self.last_activity = np.array([-1.0, -1.0])
        if params.quant_scale:
            self.weights[...] = _reference.quantise(self.weights.astype(np.float64), params,
                                                    rounding=1)

    @classmethod
    def from_config(cls, cfg, n_in: int, backend: str | None = None) -> "DiehlCookNetwork":
        p = DCParams.from_config(cfg, n_in)
        syn, lr = cfg.network.synapse, cfg.learning
        rng = np.random.default_rng(cfg.seed)
        w = rng.uniform(syn.w_init_min, syn.w_init_max, size=(n_in, p.n_exc)).astype(np.float32)
        # input delays U[0, input_delay_max_ms) truncated to whole steps: uniform integers
        # 0 .. R-1, drawn after the weights (which stay those of a run without delays)
        delays = (rng.integers(0, p.delay_slots, size=(n_in, p.n_exc), dtype=np.uint8)
                  if p.delay_slots else None)
        theta = np.full(p.n_exc, cfg.network.exc.theta_init_mv)
        norm = None
        if lr.normalise:
            norm = lr.norm_total if lr.norm_total is not None else 78.0 * n_in / 784.0
        return cls(p, PresentationPlan.from_config(cfg), w, theta, norm_total=norm,
                   state_reset=cfg.network.state_reset, backend=backend or cfg.run.backend,
                   plasticity=Plasticity.from_config(cfg),
                   idle_rest_steps=round(cfg.encoding.rest_ms / cfg.encoding.dt_ms),
                   input_delays=delays)

    def set_input_delays(self, delays: np.ndarray) -> None:
        """Replace the input delays (a trained model's): uint8 n_in x N, each below
        params.delay_slots (ValueError otherwise)."""
        p = self.params
        d = np.asarray(delays)
        if d.shape != (p.n_in, p.n_exc):
            raise ValueError(f"input delays must be {p.n_in}x{p.n_exc}, got {d.shape}")
        if d.size and (d.min() < 0 or d.max() >= p.delay_slots):
            raise ValueError(f"input delays must be whole steps 0..{p.delay_slots - 1} "
                             f"(got {d.min()}..{d.max()})")
        self.input_delays = np.ascontiguousarray(d, dtype=np.uint8)

    # ------------------------------------------------------------------ graph
    def spec(self, weight_bits: int, state_bits: int | None = None, **info) -> NetworkSpec:
        """This network as a graph (D&C, or direct lateral inhibition for FSpiNN/SpikeDyn)."""
        p = self.params
        if p.delay_slots:  # as data only: the chip counts the same synaptic events
            info = {**info, "max_delay_steps": {"input->exc": p.delay_slots - 1}}
        return dc_family_spec(p.n_in, p.n_exc, bool(p.lateral), weight_bits, state_bits, info)

    def trace_meta(self, spec: NetworkSpec, *, learn: bool) -> dict:
        """What the chip needs to replay this network's trace, besides the spikes."""
        p = self.params
        return {"spec": spec.to_dict(), "learn": learn, "dt_ms": p.dt_ms,
                "steps_present": p.steps_present, "steps_rest": p.steps_rest,
                "idle_rest_steps": self.idle_rest_steps, "state_reset": self.state_reset,
                "learning": {"input->exc": {"rule": "stdp",
                                            "pre_updates": bool(p.depress_on_pre)}}}

    @staticmethod
    def events() -> tuple[str, str]:
        """The learning event streams a training trace holds (weight rows and columns
        written back on the plastic input->exc projection)."""
        return stdp_event_streams("input->exc")

    # ------------------------------------------------------------- adaptation
    def gains(self) -> tuple[float, float]:
        """(lateral inhibition strength, potentiation gain) for the next training presentation."""
        pl, (m, total) = self.plasticity, self.last_activity
        w_lat, pot = pl.w_lateral, 1.0
        if m >= 0 and pl.adaptive_potentiation is not None:
            target, lo, hi = pl.adaptive_potentiation
            pot = min(hi, max(lo, target / max(m, 1.0)))
        if total >= 0 and pl.adaptive_inhibition is not None:
            target, lo, hi = pl.adaptive_inhibition
            w_lat *= min(hi, max(lo, total / target))
        return w_lat, pot

    def _between_presentations(self, buf, totals) -> int:
        """Weight decay and ASP leak after a training presentation; returns passes made."""
        pl, W, passes = self.plasticity, self.weights, 0
        if pl.weight_decay_rate:
            W[...] = W * (1.0 - pl.weight_decay_rate)
            passes += 1
        if pl.asp_leak_rate:  # synapses of uncorrelated (input silent or neuron silent) pairs leak
            active = np.zeros(self.params.n_in, bool)
            active[buf.in_idx[:totals[0]]] = True
            keep = np.outer(active, buf.response > 0)
            W[...] = np.where(keep, W, W * (1.0 - pl.asp_leak_rate))
            passes += 1
        if passes and self.params.quant_scale:
            W[...] = _reference.quantise(W.astype(np.float64), self.params, rounding=1)
        elif passes:  # leaked weights decay toward zero: no subnormals
            flush_inplace(W)
        return passes

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
                self._k.normalise_columns(self.weights, self.norm_total, p.quant_scale, p.quant_max)
            if self.state_reset:
                st.reset(p)
            w_lat, pot = self.gains()
            totals = self._k.present(p, self.weights, st, image, sample_key(plan.seed, uid, attempt),
                                     plan.rate_scale(attempt), True, buf, w_lat, pot,
                                     self.input_delays)
            if self.idle_rest_steps:  # the rest a reset stands for: theta decays through it
                st.theta[:] = _reference.quantise_state(
                    flush(st.theta * p.decay_theta ** self.idle_rest_steps), p)
            self.last_activity[:] = (buf.response.max(), buf.response.sum())
            decays = self._between_presentations(buf, totals)
            self._record(counts, trace, sample, attempt, normalised, totals, learn=True,
                         decays=decays)
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
                work = partial(self._infer_chunk, images=images, uid_base=uid_base,
                               responses=responses, record=trace is not None, on_sample=on_sample)
                if pool is None or k == 1:
                    results = [work(c) for c in chunks]
                else:
                    results = list(pool.map(work, chunks))
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
                                   plan.rate_scale(attempt), False, buf,
                                   self.plasticity.w_lateral, 1.0, self.input_delays)
                self._count(local, totals, learn=False, normalised=False)
                if record:
                    records.append(_snapshot(s, attempt, False, p, buf, totals, ()))
                if buf.response.sum() >= plan.retry_min_spikes:
                    break
            responses[s] = buf.response
            local.samples += 1
            if on_sample is not None:
                on_sample(1)
        return local, records

    # ---------------------------------------------------------------- helpers
    def _count(self, counts, totals, *, learn, normalised, decays=0, buf=None):
        p = self.params
        idle = self.idle_rest_steps
        writes = None
        if learn and buf is not None:
            T = p.steps_per_attempt
            writes = (int(buf.row_cnt[:T].sum()), int(buf.col_cnt[:T].sum()))
        counts.add_presentation(n_in=p.n_in, n_exc=p.n_exc, steps=p.steps_per_attempt,
                                idle_rest_steps=idle, spikes=totals, learn=learn,
                                normalised=normalised, lateral=bool(p.lateral),
                                depression=bool(p.depress_on_pre), writes=writes, decays=decays)


    def _record(self, counts, trace, sample, attempt, normalised, totals, *, learn, decays=0):
        if counts is not None:
            self._count(counts, totals, learn=learn, normalised=normalised, decays=decays,
                        buf=self._buf)
        if trace is not None:
            trace.add(*_snapshot(sample, attempt, normalised, self.params, self._buf, totals,
                                 trace.events), decays=decays)



def _snapshot(sample, attempt, normalised, p: DCParams, buf: PresentBuffers, totals,
              events: tuple[str, ...]):
    """One presentation for the trace: the spikes of each population and, when `events`
    names the (row, column) streams, the weight rows and columns written back."""
    n_in, n_exc, n_inh = totals
    steps = p.steps_per_attempt
    counts = {"input": buf.in_cnt[:steps].copy(), "exc": buf.exc_cnt[:steps].copy()}
    indices = {"input": buf.in_idx[:n_in].copy(), "exc": buf.exc_idx[:n_exc].copy()}
    if not p.lateral:
        counts["inh"] = buf.inh_cnt[:steps].copy()
        indices["inh"] = buf.inh_idx[:n_inh].copy()
    if events:
        row, col = events
        rows, cols = int(buf.row_cnt[:steps].sum()), int(buf.col_cnt[:steps].sum())
        counts.update({row: buf.row_cnt[:steps].copy(), col: buf.col_cnt[:steps].copy()})
        indices.update({row: buf.row_idx[:rows].copy(), col: buf.col_idx[:cols].copy()})
    return (sample, attempt, normalised, steps, counts, indices)
