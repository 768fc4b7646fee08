"""Numeric parameters of the Diehl & Cook network, resolved for one time step.

`DCParams` is what the kernels read: every time constant is already turned into
a per-step factor, every duration into a whole number of steps. It is built
from the config section values (`from_config`) and is backend independent: the
compiled kernel and the NumPy reference read exactly the same numbers, so they
produce bit-identical results.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["DCParams", "RNG_GAMMA", "MAX_DELAY_STEPS", "mix64", "sample_key", "delay_slots"]

#: splitmix64 increment (golden ratio); the encoder's counter-based RNG uses it.
RNG_GAMMA = 0x9E3779B97F4A7C15
_MASK64 = (1 << 64) - 1


def mix64(x: int) -> int:
    """splitmix64 finaliser on a Python int (the kernels inline the same mix)."""
    z = x & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def sample_key(seed: int, uid: int, attempt: int) -> int:
    """RNG key of one presentation: a hash of (seed, sample uid, attempt).

    Input spikes of step t and input i are drawn from mix64(key + (t*n_in + i + 1)*GAMMA),
    so every presentation is reproducible on its own, whatever thread runs it.
    """
    return mix64(mix64(seed & _MASK64) ^ mix64((uid * 1_000_003 + attempt) & _MASK64))


def _steps(ms: float, dt_ms: float) -> int:
    return int(round(ms / dt_ms))


#: the longest input delay in steps a uint8 delay matrix holds (R <= 256 slots)
MAX_DELAY_STEPS = 255


def delay_slots(max_ms: float, dt_ms: float) -> int:
    """Ring length R of input delays U[0, max_ms) truncated to whole steps (Brian 1's
    int(delay/dt)): delays 0 .. R-1 steps, R = max_ms / dt_ms (0: no delays). The config
    checks that max_ms is a whole number of steps and R - 1 <= MAX_DELAY_STEPS."""
    return int(round(max_ms / dt_ms)) if max_ms > 0 else 0


def _quant(net) -> tuple[float, float]:
    """(2**frac_bits, largest value) of fixed-point weights; (0, 0) for float32."""
    f = net.weights
    if f.kind != "fixed":
        return 0.0, 0.0
    return float(2 ** f.frac_bits), (2 ** f.bits - 1) / 2 ** f.frac_bits


def _state_quant(net) -> tuple[float, float, float]:
    """(2**frac_bits, lowest, highest value) of a fixed-point neuron state; zeros for float."""
    f = net.state_format
    if f.kind != "fixed":
        return 0.0, 0.0, 0.0
    half = 2 ** (f.bits - 1)
    return float(2 ** f.frac_bits), -half / 2 ** f.frac_bits, (half - 1) / 2 ** f.frac_bits


@dataclass(frozen=True)
class DCParams:
    """Per-step constants of the D&C network (see docs/equations.md)."""

    n_in: int
    n_exc: int
    dt_ms: float
    steps_present: int
    steps_rest: int  # 0 when the state is reset between presentations
    # excitatory (conductance LIF, adaptive threshold)
    v_rest_e: float
    v_reset_e: float
    v_thresh_e: float
    theta_offset: float
    e_exc_e: float
    e_inh_e: float
    a_e: float  # dt / tau_m
    refrac_steps_e: int
    lockout_steps_e: int
    theta_plus: float
    decay_theta: float
    # inhibitory
    v_rest_i: float
    v_reset_i: float
    v_thresh_i: float
    e_exc_i: float
    a_i: float
    refrac_steps_i: int
    # synapses
    decay_ge: float
    decay_gi: float
    w_ei: float
    w_ie: float
    # STDP
    decay_pre: float
    decay_post1: float
    decay_post2: float
    nu_pre: float
    nu_post: float
    w_max: float
    # variants (defaults: Diehl & Cook). See docs/equations.md, "Variants".
    lateral: int = 0  # 1: direct lateral inhibition, no inhibitory population
    depress_on_pre: int = 1  # 0: potentiation-only STDP (no row depression on input spikes)
    update_every: int = 0  # 0: write weights at once; k: accumulate, write every k steps
    quant_scale: float = 0.0  # 2**frac_bits of fixed-point weights; 0: float32 weights
    quant_max: float = 0.0  # largest representable weight
    rounding: int = 1  # 0 truncate, 1 nearest, 2 stochastic
    commit_min_spikes: int = 0  # timestep updates: drop a neuron's changes below this many spikes
    # timestep updates: scale a neuron's committed changes by min(spikes in window / ref, max)
    commit_rate_ref: float = 0.0  # 0: off
    commit_rate_max: float = 1.0
    # fixed-point neuron state (v, theta): round to nearest on the 1/state_scale grid, clamp
    state_scale: float = 0.0  # 0: float64 state
    state_lo: float = 0.0
    state_hi: float = 0.0
    # input -> exc delays (network.input_delay_max_ms): the ring length R = the number of
    # distinct delays (0 .. R-1 steps); 0: no delays (the kernels' direct path)
    delay_slots: int = 0

    @classmethod
    def from_config(cls, cfg, n_in: int) -> "DCParams":
        """Build from a validated `accel_sim.config.Config`."""
        enc, net, lr = cfg.encoding, cfg.network, cfg.learning
        dt = enc.dt_ms
        ex, ih, syn = net.exc, net.inh, net.synapse
        return cls(
            n_in=n_in,
            n_exc=net.n_excitatory,
            dt_ms=dt,
            steps_present=_steps(enc.present_ms, dt),
            steps_rest=0 if net.state_reset else _steps(enc.rest_ms, dt),
            v_rest_e=ex.v_rest_mv,
            v_reset_e=ex.v_reset_mv,
            v_thresh_e=ex.v_thresh_mv,
            theta_offset=ex.theta_offset_mv,
            e_exc_e=syn.e_exc_mv,
            e_inh_e=ex.e_inh_mv,
            a_e=dt / ex.tau_ms,
            refrac_steps_e=_steps(ex.refractory_ms, dt),
            lockout_steps_e=_steps(ex.lockout_ms, dt),
            theta_plus=ex.theta_plus_mv,
            decay_theta=math.exp(-dt / ex.tau_theta_ms),
            v_rest_i=ih.v_rest_mv,
            v_reset_i=ih.v_reset_mv,
            v_thresh_i=ih.v_thresh_mv,
            e_exc_i=syn.e_exc_mv,
            a_i=dt / ih.tau_ms,
            refrac_steps_i=_steps(ih.refractory_ms, dt),
            decay_ge=math.exp(-dt / syn.tau_ge_ms),
            decay_gi=math.exp(-dt / syn.tau_gi_ms),
            w_ei=syn.w_exc_inh,
            w_ie=syn.w_inh_exc,
            decay_pre=math.exp(-dt / lr.tau_pre_ms),
            decay_post1=math.exp(-dt / lr.tau_post1_ms),
            decay_post2=math.exp(-dt / lr.tau_post2_ms),
            nu_pre=lr.nu_pre,
            nu_post=lr.nu_post,
            w_max=min(lr.w_max, _quant(net)[1]) if _quant(net)[0] else lr.w_max,
            lateral=int(net.inhibition == "lateral"),
            depress_on_pre=int(lr.depression_on_pre),
            update_every=lr.update_every_steps if lr.timestep_updates else 0,
            quant_scale=_quant(net)[0],
            quant_max=_quant(net)[1],
            rounding={"truncate": 0, "nearest": 1, "stochastic": 2}[net.weights.rounding],
            commit_min_spikes=(lr.spurious_min_spikes
                               if lr.timestep_updates and lr.spurious_update_reduction else 0),
            commit_rate_ref=(lr.rate_ref_spikes
                             if lr.timestep_updates and lr.adaptive_rates else 0.0),
            commit_rate_max=lr.rate_gain_max,
            state_scale=_state_quant(net)[0],
            state_lo=_state_quant(net)[1],
            state_hi=_state_quant(net)[2],
            delay_slots=delay_slots(net.input_delay_max_ms, dt),
        )

    @property
    def steps_per_attempt(self) -> int:
        return self.steps_present + self.steps_rest

    @property
    def n_inh(self) -> int:
        """Inhibitory neurons: N with a population, 0 with direct lateral inhibition."""
        return 0 if self.lateral else self.n_exc
