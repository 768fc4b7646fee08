"""NumPy reference kernels: the specification the compiled kernels are held to.

Every operation here is written in the same order, with the same float64
arithmetic, as `ext/dc_kernels.pyx`, so both give bit-identical spikes,
weights and state (tests/test_kernel_parity.py). Slow but always importable.

One time step of `present` (see docs/equations.md for the equations):
  1. excitatory and inhibitory membranes integrate (linearly implicit Euler,
     stable at any dt), conductances decay, refractory/lockout counters tick,
     theta decays (learning only);
  2. threshold and reset; theta += theta_plus on a spike (learning only);
  3. Poisson input spikes are drawn (counter-based splitmix64, integer compare);
  4. STDP traces decay (learning only);
  5. spikes are delivered: input -> exc conductance (one weight row per input
     spike, then depression of that row), exc -> its inhibitory partner (then
     potentiation of the neuron's weight column), inh -> every other exc.
"""
from __future__ import annotations

import numpy as np

from .params import RNG_GAMMA, DCParams
from .state import DCState, PresentBuffers

__all__ = ["present", "normalise_columns", "poisson_thresholds", "input_spikes"]

_TWO32 = 4294967296.0


def _mix64(z: np.ndarray) -> np.ndarray:
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def poisson_thresholds(image: np.ndarray, rate_scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Active inputs and their 32-bit spike thresholds: P(spike per step) = thr / 2**32."""
    active = np.flatnonzero(image).astype(np.int64)
    thr = (image[active].astype(np.float64) * rate_scale * _TWO32).astype(np.uint64)
    return active, thr


def input_spikes(key: int, step: int, n_in: int, active: np.ndarray, thr: np.ndarray) -> np.ndarray:
    """Indices (ascending) of the inputs that spike at `step`."""
    with np.errstate(over="ignore"):
        ctr = (np.uint64(step * n_in) + active.astype(np.uint64) + np.uint64(1)) * np.uint64(RNG_GAMMA)
        z = _mix64(np.uint64(key) + ctr)
    return active[(z >> np.uint64(32)) < thr]


def normalise_columns(W: np.ndarray, total: float, colsum: np.ndarray | None = None) -> None:
    """Scale each column of W (float32, n_in x n_exc) so that it sums to `total`."""
    s = np.zeros(W.shape[1])
    for i in range(W.shape[0]):  # sequential float64 accumulation, as the kernel
        s += W[i]
    f = np.ones_like(s)
    np.divide(total, s, out=f, where=s > 0)
    W *= f


def present(p: DCParams, W: np.ndarray, st: DCState, image: np.ndarray, key: int,
            rate_scale: float, learn: bool, buf: PresentBuffers) -> tuple[int, int, int]:
    """Run one presentation (input phase, then rest steps if any) in place.

    Returns (input spikes, excitatory spikes, inhibitory spikes) and fills `buf`.
    """
    n_in = p.n_in
    active, thr = poisson_thresholds(image, rate_scale)
    buf.response.fill(0)
    n_in_tot = n_exc_tot = n_inh_tot = 0
    thresh_base = None
    for t in range(p.steps_per_attempt):
        # 1. integrate excitatory neurons
        ref = st.refrac_e > 0
        st.refrac_e[ref] -= 1
        ge, gi = st.ge_e, st.gi_e
        v_new = (st.v_e + p.a_e * (p.v_rest_e + ge * p.e_exc_e + gi * p.e_inh_e)) / (
            1.0 + p.a_e * (1.0 + ge + gi))
        st.v_e[~ref] = v_new[~ref]
        st.ge_e *= p.decay_ge
        st.gi_e *= p.decay_gi
        lo = st.lockout_e > 0
        st.lockout_e[lo] -= 1
        if learn:
            st.theta *= p.decay_theta
        # 2. excitatory threshold and reset
        thresh_base = st.theta - p.theta_offset + p.v_thresh_e
        spk_e = np.flatnonzero((st.refrac_e == 0) & (st.lockout_e == 0) & (st.v_e > thresh_base))
        st.v_e[spk_e] = p.v_reset_e
        st.refrac_e[spk_e] = p.refrac_steps_e
        st.lockout_e[spk_e] = p.lockout_steps_e
        if learn:
            st.theta[spk_e] += p.theta_plus
        # 1-2. inhibitory neurons
        ref = st.refrac_i > 0
        st.refrac_i[ref] -= 1
        v_new = (st.v_i + p.a_i * (p.v_rest_i + st.ge_i * p.e_exc_i)) / (1.0 + p.a_i * (1.0 + st.ge_i))
        st.v_i[~ref] = v_new[~ref]
        st.ge_i *= p.decay_ge
        spk_i = np.flatnonzero((st.refrac_i == 0) & (st.v_i > p.v_thresh_i))
        st.v_i[spk_i] = p.v_reset_i
        st.refrac_i[spk_i] = p.refrac_steps_i
        # 3. input spikes
        if t < p.steps_present:
            spk_in = input_spikes(key, t, n_in, active, thr)
            buf.response[spk_e] += 1
        else:
            spk_in = active[:0]
        # 4. traces
        if learn:
            st.pre *= p.decay_pre
            st.post1 *= p.decay_post1
            st.post2 *= p.decay_post2
        # 5. delivery and plasticity
        for i in spk_in:
            st.ge_e += W[i]
            if learn:
                st.pre[i] = 1.0
                W[i] = np.maximum(W[i] - p.nu_pre * st.post1, 0.0)
        for j in spk_e:
            st.ge_i[j] += p.w_ei
            if learn:
                W[:, j] = np.minimum(W[:, j] + p.nu_post * st.pre * st.post2[j], p.w_max)
                st.post1[j] = 1.0
                st.post2[j] = 1.0
        if len(spk_i):
            self_spk = np.zeros(p.n_exc, np.int64)
            self_spk[spk_i] = 1
            st.gi_e += (len(spk_i) - self_spk) * p.w_ie
        # record
        buf.in_cnt[t], buf.exc_cnt[t], buf.inh_cnt[t] = len(spk_in), len(spk_e), len(spk_i)
        buf.in_idx[n_in_tot:n_in_tot + len(spk_in)] = spk_in
        buf.exc_idx[n_exc_tot:n_exc_tot + len(spk_e)] = spk_e
        buf.inh_idx[n_inh_tot:n_inh_tot + len(spk_i)] = spk_i
        n_in_tot += len(spk_in)
        n_exc_tot += len(spk_e)
        n_inh_tot += len(spk_i)
    return n_in_tot, n_exc_tot, n_inh_tot
