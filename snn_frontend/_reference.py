"""NumPy reference kernels: the specification the compiled kernels are held to.

Every operation here is written in the same order, with the same float64
arithmetic, as `ext/dc_kernels.pyx`, so both give bit-identical spikes,
weights and state (tests/test_kernels.py). Slow but always importable.

One time step of `present` (see docs/equations.md for the equations):
  1. excitatory and inhibitory membranes integrate (linearly implicit Euler,
     stable at any dt), conductances decay (flushed to zero below
     numerics.FLUSH_BELOW, as every decaying variable), refractory/lockout counters tick,
     theta decays (learning only);
  2. threshold and reset; theta += theta_plus on a spike (learning only);
  3. Poisson input spikes are drawn (counter-based splitmix64, integer compare);
  4. STDP traces decay (learning only);
  5. spikes are delivered: input -> exc conductance (one weight row per input
     spike, then depression of that row), exc -> its inhibitory partner (then
     potentiation of the neuron's weight column), inh -> every other exc.
     With input delays (p.delay_slots = R > 0) the input part is 5a-5d instead: the
     conductances due now arrive from a ring, each input spike's weights go to g_e
     (delay 0) or the ring slot of step t + d, the traces go to R-step histories, and
     the spikes of R - 1 steps ago are depressed with x_post1 of each arrival step; a
     post spike potentiates with each synapse's trace at arrival (docs/equations.md,
     "Input delays").
"""
from __future__ import annotations

import numpy as np

from .numerics import flush
from .params import RNG_GAMMA, DCParams
from .state import DCState, PresentBuffers

__all__ = ["present", "normalise_columns", "poisson_thresholds", "input_spikes",
           "check_delays"]

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


_QKEY = 0xD1B54A32D192ED03  # separates the stochastic-rounding stream from the input stream


def quantise_state(x, p: DCParams):
    """Fixed-point neuron state: round to nearest on the 2**-frac grid, clamp to the
    signed range (no-op for a float state)."""
    if p.state_scale == 0.0:
        return x
    return np.minimum(np.maximum(np.floor(x * p.state_scale + 0.5) / p.state_scale,
                                 p.state_lo), p.state_hi)


def quantise(x: np.ndarray, p: DCParams, key: int = 0, step: int = 0, i=None, j=None,
             rounding: int | None = None) -> np.ndarray:
    """Fixed-point weights: clamp to [0, quant_max], round to the 2**-frac grid.

    Stochastic rounding adds u ~ U[0, 1) drawn from mix64(key ^ QKEY + ctr), ctr =
    ((step*n_in + i)*N + j + 1)*GAMMA, before the floor (i, j: the weights' indices).
    """
    if p.quant_scale == 0.0:
        return flush(x)
    mode = p.rounding if rounding is None else rounding
    x = np.minimum(np.maximum(x, 0.0), p.quant_max)
    y = x * p.quant_scale
    if mode == 0:
        y = np.floor(y)
    elif mode == 1:
        y = np.floor(y + 0.5)
    else:
        with np.errstate(over="ignore"):
            ctr = ((np.uint64(step) * np.uint64(p.n_in) + np.asarray(i, np.uint64))
                   * np.uint64(p.n_exc) + np.asarray(j, np.uint64) + np.uint64(1)) * np.uint64(RNG_GAMMA)
            z = _mix64((np.uint64(key) ^ np.uint64(_QKEY)) + ctr)
        u = (z >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)
        y = np.floor(y + u)
    return np.minimum(y / p.quant_scale, p.quant_max)


def normalise_columns(W: np.ndarray, total: float, quant_scale: float = 0.0,
                      quant_max: float = 0.0) -> None:
    """Scale each column of W (float32, n_in x n_exc) so that it sums to `total`
    (fixed-point weights: then rounded to nearest on their grid)."""
    s = np.zeros(W.shape[1])
    for i in range(W.shape[0]):  # sequential float64 accumulation, as the kernel
        s += W[i]
    f = np.ones_like(s)
    np.divide(total, s, out=f, where=s > 0)
    if quant_scale == 0.0:
        W[...] = flush(W * f)
    else:
        x = np.minimum(np.maximum(W * f, 0.0), quant_max)
        W[...] = np.minimum(np.floor(x * quant_scale + 0.5) / quant_scale, quant_max)


def commit_gain(spikes: np.ndarray, p: DCParams) -> np.ndarray:
    """Factor on each neuron's buffered changes at write-back: 0 below commit_min_spikes
    (spurious), else min(spikes / commit_rate_ref, commit_rate_max) (adaptive rate) or 1."""
    g = np.ones(len(spikes))
    if p.commit_rate_ref > 0:
        g = np.minimum(spikes / p.commit_rate_ref, p.commit_rate_max)
    return np.where(spikes < p.commit_min_spikes, 0.0, g)


def check_delays(p: DCParams, delays) -> None:
    """The delay matrix a presentation needs: uint8 n_in x N, every delay < p.delay_slots
    (None exactly when p.delay_slots is 0)."""
    if not p.delay_slots:
        if delays is not None:
            raise ValueError("input delays given but p.delay_slots is 0")
        return
    if delays is None or delays.dtype != np.uint8 or delays.shape != (p.n_in, p.n_exc):
        raise ValueError(f"input delays must be a uint8 {p.n_in}x{p.n_exc} array")
    if delays.size and int(delays.max()) >= p.delay_slots:
        raise ValueError(f"an input delay of {int(delays.max())} steps does not fit "
                         f"{p.delay_slots} ring slots")


def delay_arrive(st: DCState, pos: int) -> None:
    """Delays, step 5a: the input conductances due at this step join g_e; the slot empties."""
    st.ge_e += st.in_ring[pos]
    st.in_ring[pos] = 0.0


def delay_send(st: DCState, w_row: np.ndarray, d_row: np.ndarray, pos: int, R: int) -> None:
    """Delays, step 5b: one input spike's weights, each to g_e now (delay 0) or to the ring
    slot of step t + d (the weight at emission, as Brian 1's DelayConnection)."""
    now = d_row == 0
    st.ge_e[now] += w_row[now]
    later = np.flatnonzero(~now)
    st.in_ring[(pos + d_row[later].astype(np.int64)) % R, later] += w_row[later]


def delay_record(st: DCState, spk_in: np.ndarray, pos: int, learn: bool) -> None:
    """Delays, step 5c: this step's trace values go to the histories, its input spikes (while
    learning) to the list whose depression falls due R - 1 steps later."""
    st.pre_hist[pos] = st.pre
    st.post1_hist[pos] = st.post1
    st.emit_cnt[pos] = len(spk_in) if learn else 0
    st.emit_idx[pos, :st.emit_cnt[pos]] = spk_in[:st.emit_cnt[pos]]


def post1_at_arrival(st: DCState, d_row: np.ndarray, slot: int, R: int) -> np.ndarray:
    """x_post1 of every excitatory neuron at the step input spike (emitted at ring slot
    `slot`) reached it: post1_hist[(slot + d_ij) mod R][j]."""
    return st.post1_hist[(slot + d_row.astype(np.int64)) % R, np.arange(len(d_row))]


def pre_at_arrival(st: DCState, d_col: np.ndarray, pos: int, R: int) -> np.ndarray:
    """The per-synapse presynaptic trace of column j now: x_pre of input i d_ij steps ago,
    pre_hist[(pos - d_ij) mod R][i] (the trace of the spikes that have arrived)."""
    return st.pre_hist[(pos - d_col.astype(np.int64)) % R, np.arange(len(d_col))]


def present(p: DCParams, W: np.ndarray, st: DCState, image: np.ndarray, key: int,
            rate_scale: float, learn: bool, buf: PresentBuffers, w_lat: float = 0.0,
            pot_gain: float = 1.0, delays: np.ndarray | None = None) -> tuple[int, int, int]:
    """Run one presentation (input phase, then rest steps if any) in place.

    `w_lat`: direct lateral inhibition strength (p.lateral); `pot_gain` multiplies
    nu_post (adaptive potentiation); `delays`: the input -> exc delays in steps (uint8
    n_in x N) when p.delay_slots > 0. Returns (input spikes, excitatory spikes,
    inhibitory spikes) and fills `buf`, including the weight rows/columns written.
    """
    check_delays(p, delays)
    n_in, T = p.n_in, p.steps_per_attempt
    R = p.delay_slots
    buffered = p.update_every > 0
    nu_post = p.nu_post * pot_gain
    active, thr = poisson_thresholds(image, rate_scale)
    buf.response.fill(0)
    tot = {"in": 0, "exc": 0, "inh": 0, "row": 0, "col": 0}
    cols = np.arange(p.n_exc)
    rows = np.arange(n_in)
    for t in range(T):
        # 1. integrate excitatory neurons
        ref = st.refrac_e > 0
        st.refrac_e[ref] -= 1
        ge, gi = st.ge_e, st.gi_e
        v_new = (st.v_e + p.a_e * (p.v_rest_e + ge * p.e_exc_e + gi * p.e_inh_e)) / (
            1.0 + p.a_e * (1.0 + ge + gi))
        st.v_e[~ref] = quantise_state(v_new[~ref], p)
        st.ge_e[:] = flush(ge * p.decay_ge)
        st.gi_e[:] = flush(gi * p.decay_gi)
        lo = st.lockout_e > 0
        st.lockout_e[lo] -= 1
        if learn:
            st.theta[:] = quantise_state(flush(st.theta * p.decay_theta), p)
        # 2. excitatory threshold and reset
        thresh = st.theta - p.theta_offset + p.v_thresh_e
        spk_e = np.flatnonzero((st.refrac_e == 0) & (st.lockout_e == 0) & (st.v_e > thresh))
        st.v_e[spk_e] = quantise_state(p.v_reset_e, p)
        st.refrac_e[spk_e] = p.refrac_steps_e
        st.lockout_e[spk_e] = p.lockout_steps_e
        if learn:
            st.theta[spk_e] = quantise_state(st.theta[spk_e] + p.theta_plus, p)
        # 1-2. inhibitory neurons (none with direct lateral inhibition)
        if p.lateral:
            spk_i = np.zeros(0, np.int64)
        else:
            ref = st.refrac_i > 0
            st.refrac_i[ref] -= 1
            v_new = (st.v_i + p.a_i * (p.v_rest_i + st.ge_i * p.e_exc_i)) / (
                1.0 + p.a_i * (1.0 + st.ge_i))
            st.v_i[~ref] = quantise_state(v_new[~ref], p)
            st.ge_i[:] = flush(st.ge_i * p.decay_ge)
            spk_i = np.flatnonzero((st.refrac_i == 0) & (st.v_i > p.v_thresh_i))
            st.v_i[spk_i] = quantise_state(p.v_reset_i, p)
            st.refrac_i[spk_i] = p.refrac_steps_i
        # 3. input spikes
        if t < p.steps_present:
            spk_in = input_spikes(key, t, n_in, active, thr)
            buf.response[spk_e] += 1
        else:
            spk_in = active[:0]
        # 4. traces
        if learn:
            st.pre[:] = flush(st.pre * p.decay_pre)
            st.post1[:] = flush(st.post1 * p.decay_post1)
            st.post2[:] = flush(st.post2 * p.decay_post2)
        # 5. delivery and plasticity
        rows_w, cols_w = [], []
        if not R:  # an input spike adds its row at once, then depresses it
            for i in spk_in:
                st.ge_e += W[i]
                if learn:
                    st.pre[i] = 1.0
                    if p.depress_on_pre:
                        _depress(p, W, st, i, st.post1, buffered, key, t, cols, rows_w)
        else:  # input delays (docs/equations.md, "Input delays")
            pos = int(st.ring_pos[0])
            delay_arrive(st, pos)
            for i in spk_in:
                delay_send(st, W[i], delays[i], pos, R)
                if learn:
                    st.pre[i] = 1.0
            # without learning the traces are frozen and nothing falls due, and a slot is
            # rewritten R steps later: only the last R steps' records remain, so only those
            # are written (the same state as writing at every step)
            if learn or t >= T - R:
                delay_record(st, spk_in, pos, learn)
            if learn and p.depress_on_pre:  # the spikes of R - 1 steps ago have all arrived
                due = (pos + 1) % R
                for i in st.emit_idx[due, :st.emit_cnt[due]]:
                    _depress(p, W, st, i, post1_at_arrival(st, delays[i], due, R), buffered,
                             key, t, cols, rows_w)
        for j in spk_e:
            if not p.lateral:
                st.ge_i[j] += p.w_ei
            if learn:
                pre = st.pre if not R else pre_at_arrival(st, delays[:, j], pos, R)
                if buffered:
                    st.dw[:, j] += nu_post * pre * st.post2[j]
                    st.dirty_col[j] = 1
                    st.win_count[j] += 1
                else:
                    W[:, j] = quantise(np.minimum(W[:, j] + nu_post * pre * st.post2[j],
                                                  p.w_max), p, key, t, rows, j)
                    cols_w.append(j)
                st.post1[j] = 1.0
                st.post2[j] = 1.0
        src = spk_e if p.lateral else spk_i
        strength = w_lat if p.lateral else p.w_ie
        if len(src):  # every other excitatory neuron: (spikes - self) x strength
            self_spk = np.zeros(p.n_exc, np.int64)
            self_spk[src] = 1
            st.gi_e += (len(src) - self_spk) * strength
        # timestep-based updates: write the pending changes back every update_every steps
        if learn and buffered and ((t + 1) % p.update_every == 0 or t == T - 1):
            # a neuron below commit_min_spikes in the window: all its changes are spurious
            spurious = st.win_count < p.commit_min_spikes
            st.dw *= commit_gain(st.win_count, p)
            for i in np.flatnonzero(st.dirty_row):
                W[i] = quantise(np.minimum(np.maximum(W[i] + st.dw[i], 0.0), p.w_max), p, key,
                                t, i, cols)
                st.dw[i] = 0.0
                rows_w.append(i)
            for j in np.flatnonzero((st.dirty_col > 0) & ~spurious):
                W[:, j] = quantise(np.minimum(np.maximum(W[:, j] + st.dw[:, j], 0.0),
                                              p.w_max), p, key, t, rows, j)
                cols_w.append(j)
                st.dw[:, j] = 0.0
            st.dirty_row.fill(0)
            st.dirty_col.fill(0)
            st.win_count.fill(0)
        # record
        for name, arr, cnt, idx in (("in", spk_in, buf.in_cnt, buf.in_idx),
                                    ("exc", spk_e, buf.exc_cnt, buf.exc_idx),
                                    ("inh", spk_i, buf.inh_cnt, buf.inh_idx),
                                    ("row", rows_w, buf.row_cnt, buf.row_idx),
                                    ("col", cols_w, buf.col_cnt, buf.col_idx)):
            cnt[t] = len(arr)
            idx[tot[name]:tot[name] + len(arr)] = arr
            tot[name] += len(arr)
        if R:
            st.ring_pos[0] = (pos + 1) % R
    return tot["in"], tot["exc"], tot["inh"]


def _depress(p: DCParams, W: np.ndarray, st: DCState, i: int, post1: np.ndarray,
             buffered: bool, key: int, t: int, cols: np.ndarray, rows_w: list) -> None:
    """Row depression of input i with the post traces `post1` (now, or at each synapse's
    arrival): W[i] -= nu_pre * post1 (written at once, or buffered)."""
    if buffered:
        st.dw[i] -= p.nu_pre * post1
        st.dirty_row[i] = 1
    else:
        W[i] = quantise(np.maximum(W[i] - p.nu_pre * post1, 0.0), p, key, t, i, cols)
        rows_w.append(i)
