# cython: language_level=3
"""Compiled Diehl & Cook kernels (snn_frontend._dc_kernels).

Mirror of snn_frontend/_reference.py, operation for operation, so results are
bit-identical (no fused multiply-add: built with -ffp-contract=off). The whole
presentation runs without the GIL: an input spike touches one weight row, an
excitatory spike one weight column, inhibition is O(N) per step ("total minus
self"), and the Poisson input is drawn in place by a counter-based RNG. Decaying
state is flushed to zero below numerics.FLUSH_BELOW (no subnormal arithmetic).
"""
import numpy as np
from libc.math cimport floor
from libc.stdint cimport int32_t, uint8_t, uint64_t
from libc.stdlib cimport calloc, free, malloc

from numerics cimport FLUSH_BELOW, flush

cdef uint64_t GAMMA = 0x9E3779B97F4A7C15ULL
cdef uint64_t QKEY = 0xD1B54A32D192ED03ULL

#: the flush threshold compiled in (tests hold it equal to snn_frontend.numerics.FLUSH_BELOW)
flush_below = FLUSH_BELOW


cdef struct Params:
    int n_in, n_exc, steps_present, steps_total
    double v_rest_e, v_reset_e, v_thresh_e, theta_offset, e_exc_e, e_inh_e, a_e
    int refrac_steps_e, lockout_steps_e
    double theta_plus, decay_theta
    double v_rest_i, v_reset_i, v_thresh_i, e_exc_i, a_i
    int refrac_steps_i
    double decay_ge, decay_gi, w_ei, w_ie
    double decay_pre, decay_post1, decay_post2, nu_pre, nu_post, w_max
    int lateral, depress_on_pre, update_every, rounding, commit_min_spikes
    double quant_scale, quant_max, commit_rate_ref, commit_rate_max
    double state_scale, state_lo, state_hi


cdef inline uint64_t mix64(uint64_t z) noexcept nogil:
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL
    return z ^ (z >> 31)


cdef Params _params(p):
    cdef Params c
    c.n_in = p.n_in
    c.n_exc = p.n_exc
    c.steps_present = p.steps_present
    c.steps_total = p.steps_present + p.steps_rest
    c.v_rest_e = p.v_rest_e
    c.v_reset_e = p.v_reset_e
    c.v_thresh_e = p.v_thresh_e
    c.theta_offset = p.theta_offset
    c.e_exc_e = p.e_exc_e
    c.e_inh_e = p.e_inh_e
    c.a_e = p.a_e
    c.refrac_steps_e = p.refrac_steps_e
    c.lockout_steps_e = p.lockout_steps_e
    c.theta_plus = p.theta_plus
    c.decay_theta = p.decay_theta
    c.v_rest_i = p.v_rest_i
    c.v_reset_i = p.v_reset_i
    c.v_thresh_i = p.v_thresh_i
    c.e_exc_i = p.e_exc_i
    c.a_i = p.a_i
    c.refrac_steps_i = p.refrac_steps_i
    c.decay_ge = p.decay_ge
    c.decay_gi = p.decay_gi
    c.w_ei = p.w_ei
    c.w_ie = p.w_ie
    c.decay_pre = p.decay_pre
    c.decay_post1 = p.decay_post1
    c.decay_post2 = p.decay_post2
    c.nu_pre = p.nu_pre
    c.nu_post = p.nu_post
    c.w_max = p.w_max
    c.lateral = p.lateral
    c.depress_on_pre = p.depress_on_pre
    c.update_every = p.update_every
    c.rounding = p.rounding
    c.commit_min_spikes = p.commit_min_spikes
    c.commit_rate_ref = p.commit_rate_ref
    c.commit_rate_max = p.commit_rate_max
    c.state_scale = p.state_scale
    c.state_lo = p.state_lo
    c.state_hi = p.state_hi
    c.quant_scale = p.quant_scale
    c.quant_max = p.quant_max
    return c


cdef inline double quantise(double x, Params* c, uint64_t qkey, long t, long i, long j) noexcept nogil:
    """Fixed-point weight: clamp to [0, quant_max], round to the 2**-frac grid (see _reference)."""
    cdef double y, u
    cdef uint64_t z
    if c.quant_scale == 0.0:
        return flush(x)
    if x < 0.0:
        x = 0.0
    if x > c.quant_max:
        x = c.quant_max
    y = x * c.quant_scale
    if c.rounding == 0:
        y = floor(y)
    elif c.rounding == 1:
        y = floor(y + 0.5)
    else:
        z = mix64(qkey + ((<uint64_t>t * <uint64_t>c.n_in + <uint64_t>i) * <uint64_t>c.n_exc
                          + <uint64_t>j + 1) * GAMMA)
        u = <double>(z >> 11) * (1.0 / 9007199254740992.0)
        y = floor(y + u)
    y = y / c.quant_scale
    return y if y < c.quant_max else c.quant_max


cdef inline double qstate(double x, Params* c) noexcept nogil:
    """Fixed-point neuron state: nearest on the 1/state_scale grid, clamped (see
    _reference.quantise_state); only called when state_scale > 0."""
    x = floor(x * c.state_scale + 0.5) / c.state_scale
    x = x if x > c.state_lo else c.state_lo
    return x if x < c.state_hi else c.state_hi


cdef inline double commit_gain(int spikes, Params* c) noexcept nogil:
    """Factor on a neuron's buffered changes at write-back: 0 below commit_min_spikes
    (spurious), else min(spikes / commit_rate_ref, commit_rate_max) (adaptive rate) or 1."""
    if spikes < c.commit_min_spikes:
        return 0.0
    if c.commit_rate_ref > 0.0:
        return min(spikes / c.commit_rate_ref, c.commit_rate_max)
    return 1.0


cdef inline float commit(float w, double dw, Params* c, uint64_t qkey, long t, long i,
                         long j) noexcept nogil:
    """Write back a buffered weight change: clamp to [0, w_max], round to the weight format."""
    cdef double x = <double>w + dw
    x = x if x > 0.0 else 0.0
    x = x if x < c.w_max else c.w_max
    return <float>quantise(x, c, qkey, t, i, j)


cdef inline long record(int32_t[::1] cnt, int32_t[::1] idx, long t, long offset,
                        int32_t* src, int count) noexcept nogil:
    """Store one step's `count` indices after `offset`; returns the new offset."""
    cdef int k
    cnt[t] = count
    for k in range(count):
        idx[offset + k] = src[k]
    return offset + count


def normalise_columns(float[:, ::1] W, double total, double quant_scale=0.0,
                      double quant_max=0.0):
    """Scale each column of W so that it sums to `total` (float64 accumulation);
    fixed-point weights are then rounded to nearest on their grid."""
    cdef Py_ssize_t n_in = W.shape[0], n = W.shape[1], i, j
    cdef double[::1] s = np.zeros(n)
    cdef double x
    with nogil:
        for i in range(n_in):
            for j in range(n):
                s[j] += W[i, j]
        for j in range(n):
            s[j] = total / s[j] if s[j] > 0 else 1.0
        if quant_scale == 0.0:
            for i in range(n_in):
                for j in range(n):
                    W[i, j] = <float>flush(<double>W[i, j] * s[j])
        else:
            for i in range(n_in):
                for j in range(n):
                    x = <double>W[i, j] * s[j]
                    x = x if x > 0.0 else 0.0
                    x = x if x < quant_max else quant_max
                    x = floor(x * quant_scale + 0.5) / quant_scale
                    W[i, j] = <float>(x if x < quant_max else quant_max)


def present(p, float[:, ::1] W, st, const uint8_t[::1] image, uint64_t key,
            double rate_scale, bint learn, buf, double w_lat=0.0, double pot_gain=1.0):
    """One presentation (input phase + rest steps) in place; see _reference.present."""
    cdef Params c = _params(p)
    cdef double[::1] v_e = st.v_e, ge_e = st.ge_e, gi_e = st.gi_e, theta = st.theta
    cdef int32_t[::1] refrac_e = st.refrac_e, lockout_e = st.lockout_e
    cdef double[::1] v_i = st.v_i, ge_i = st.ge_i
    cdef int32_t[::1] refrac_i = st.refrac_i
    cdef double[::1] pre = st.pre, post1 = st.post1, post2 = st.post2
    cdef int32_t[::1] in_cnt = buf.in_cnt, exc_cnt = buf.exc_cnt, inh_cnt = buf.inh_cnt
    cdef int32_t[::1] in_idx = buf.in_idx, exc_idx = buf.exc_idx, inh_idx = buf.inh_idx
    cdef int32_t[::1] response = buf.response
    cdef int32_t[::1] row_cnt = buf.row_cnt, col_cnt = buf.col_cnt
    cdef int32_t[::1] row_idx = buf.row_idx, col_idx = buf.col_idx
    cdef double[:, ::1] dw = st.dw
    cdef int32_t[::1] dirty_row = st.dirty_row, dirty_col = st.dirty_col
    cdef int32_t[::1] win_count = st.win_count
    cdef bint buffered = c.update_every > 0
    cdef bint qs = c.state_scale > 0.0
    if buffered and (dw.shape[0] != c.n_in or dw.shape[1] != c.n_exc):
        raise ValueError("state.dw must be n_in x n_exc for timestep-based updates")
    cdef double nu_post = c.nu_post * pot_gain
    cdef uint64_t qkey = key ^ QKEY
    cdef long n_row_tot = 0, n_col_tot = 0, nr, nc
    if W.shape[0] != c.n_in or W.shape[1] != c.n_exc or image.shape[0] != c.n_in:
        raise ValueError("weight or image shape does not match the parameters")
    if in_cnt.shape[0] < c.steps_total or exc_idx.shape[0] < c.steps_total * c.n_exc:
        raise ValueError("output buffers too small for these parameters")

    cdef int n_in = c.n_in, n = c.n_exc
    cdef int32_t* active = <int32_t*>malloc(n_in * sizeof(int32_t))
    cdef uint64_t* thr = <uint64_t*>malloc(n_in * sizeof(uint64_t))
    cdef int32_t* spk_e = <int32_t*>malloc(n * sizeof(int32_t))
    cdef int32_t* spk_i = <int32_t*>malloc(n * sizeof(int32_t))
    cdef int32_t* spk_in = <int32_t*>malloc(n_in * sizeof(int32_t))
    cdef int32_t* is_i = <int32_t*>calloc(n, sizeof(int32_t))
    cdef int32_t* rows_w = <int32_t*>malloc(n_in * sizeof(int32_t))
    cdef int32_t* cols_w = <int32_t*>malloc(n * sizeof(int32_t))
    cdef double* cgain = <double*>malloc(n * sizeof(double))
    if (not active or not thr or not spk_e or not spk_i or not spk_in or not is_i
            or not rows_w or not cols_w or not cgain):
        free(active); free(thr); free(spk_e); free(spk_i); free(spk_in); free(is_i)
        free(rows_w); free(cols_w); free(cgain)
        raise MemoryError()

    cdef int n_active = 0, t, i, j, k, a, ne, ni, nin
    cdef long n_in_tot = 0, n_exc_tot = 0, n_inh_tot = 0
    cdef double v, ge, gi, x, col_gain
    cdef uint64_t ctr, z
    with nogil:
        for i in range(n_in):
            if image[i] != 0:
                active[n_active] = i
                thr[n_active] = <uint64_t>(<double>image[i] * rate_scale * 4294967296.0)
                n_active += 1
        for j in range(n):
            response[j] = 0
        for t in range(c.steps_total):
            # 1. integrate (branch-free so the compiler vectorises it; a refractory neuron
            #    keeps its v), decay conductances, tick counters, decay theta
            for j in range(n):
                ge = ge_e[j]
                gi = gi_e[j]
                v = (v_e[j] + c.a_e * (c.v_rest_e + ge * c.e_exc_e + gi * c.e_inh_e)) / (
                    1.0 + c.a_e * (1.0 + ge + gi))
                v_e[j] = v_e[j] if refrac_e[j] > 0 else v
                refrac_e[j] = refrac_e[j] - 1 if refrac_e[j] > 0 else 0
                ge_e[j] = flush(ge * c.decay_ge)
                gi_e[j] = flush(gi * c.decay_gi)
                lockout_e[j] = lockout_e[j] - 1 if lockout_e[j] > 0 else 0
            if qs:  # fixed-point state (a refractory neuron's v is on the grid already)
                for j in range(n):
                    v_e[j] = qstate(v_e[j], &c)
            if learn:
                for j in range(n):
                    theta[j] = flush(theta[j] * c.decay_theta)
                if qs:
                    for j in range(n):
                        theta[j] = qstate(theta[j], &c)
            if not c.lateral:
                for j in range(n):
                    ge = ge_i[j]
                    v = (v_i[j] + c.a_i * (c.v_rest_i + ge * c.e_exc_i)) / (1.0 + c.a_i * (1.0 + ge))
                    v_i[j] = v_i[j] if refrac_i[j] > 0 else v
                    refrac_i[j] = refrac_i[j] - 1 if refrac_i[j] > 0 else 0
                    ge_i[j] = flush(ge * c.decay_ge)
                if qs:
                    for j in range(n):
                        v_i[j] = qstate(v_i[j], &c)
            # 2. threshold and reset
            ne = 0
            for j in range(n):
                if refrac_e[j] == 0 and lockout_e[j] == 0 and v_e[j] > (theta[j] - c.theta_offset + c.v_thresh_e):
                    v_e[j] = qstate(c.v_reset_e, &c) if qs else c.v_reset_e
                    refrac_e[j] = c.refrac_steps_e
                    lockout_e[j] = c.lockout_steps_e
                    if learn:
                        theta[j] = theta[j] + c.theta_plus
                        if qs:
                            theta[j] = qstate(theta[j], &c)
                    spk_e[ne] = j
                    ne += 1
            ni = 0
            for j in range(n if not c.lateral else 0):
                if refrac_i[j] == 0 and v_i[j] > c.v_thresh_i:
                    v_i[j] = qstate(c.v_reset_i, &c) if qs else c.v_reset_i
                    refrac_i[j] = c.refrac_steps_i
                    spk_i[ni] = j
                    ni += 1
            # 3. input spikes (counter-based RNG, integer compare)
            nin = 0
            if t < c.steps_present:
                for a in range(n_active):
                    i = active[a]
                    ctr = (<uint64_t>t * <uint64_t>n_in + <uint64_t>i + 1) * GAMMA
                    z = mix64(key + ctr)
                    if (z >> 32) < thr[a]:
                        spk_in[nin] = i
                        nin += 1
                for k in range(ne):
                    response[spk_e[k]] += 1
            # 4. traces
            if learn:
                for i in range(n_in):
                    pre[i] = flush(pre[i] * c.decay_pre)
                for j in range(n):
                    post1[j] = flush(post1[j] * c.decay_post1)
                    post2[j] = flush(post2[j] * c.decay_post2)
            # 5. delivery and plasticity
            nr = 0
            nc = 0
            for k in range(nin):
                i = spk_in[k]
                for j in range(n):
                    ge_e[j] = ge_e[j] + W[i, j]
                if learn:
                    pre[i] = 1.0
                    if c.depress_on_pre:
                        if buffered:
                            for j in range(n):
                                dw[i, j] = dw[i, j] - c.nu_pre * post1[j]
                            dirty_row[i] = 1
                        else:
                            for j in range(n):
                                x = <double>W[i, j] - c.nu_pre * post1[j]
                                x = x if x > 0.0 else 0.0
                                W[i, j] = <float>quantise(x, &c, qkey, t, i, j)
                            rows_w[nr] = i
                            nr += 1
            for k in range(ne):
                j = spk_e[k]
                if not c.lateral:
                    ge_i[j] = ge_i[j] + c.w_ei
                if learn:
                    col_gain = post2[j]
                    if buffered:
                        for i in range(n_in):
                            dw[i, j] = dw[i, j] + nu_post * pre[i] * col_gain
                        dirty_col[j] = 1
                        win_count[j] += 1
                    else:
                        for i in range(n_in):
                            x = <double>W[i, j] + nu_post * pre[i] * col_gain
                            x = x if x < c.w_max else c.w_max
                            W[i, j] = <float>quantise(x, &c, qkey, t, i, j)
                        cols_w[nc] = j
                        nc += 1
                    post1[j] = 1.0
                    post2[j] = 1.0
            if c.lateral:  # direct lateral inhibition: each spike inhibits every other neuron
                if ne > 0:
                    for k in range(ne):
                        is_i[spk_e[k]] = 1
                    for j in range(n):
                        gi_e[j] = gi_e[j] + <double>(ne - is_i[j]) * w_lat
                    for k in range(ne):
                        is_i[spk_e[k]] = 0
            elif ni > 0:  # every other excitatory neuron: (ni - self) spikes of weight w_ie
                for k in range(ni):
                    is_i[spk_i[k]] = 1
                for j in range(n):
                    gi_e[j] = gi_e[j] + <double>(ni - is_i[j]) * c.w_ie
                for k in range(ni):
                    is_i[spk_i[k]] = 0
            # timestep-based updates: write pending changes back every update_every steps
            if learn and buffered and ((t + 1) % c.update_every == 0 or t == c.steps_total - 1):
                # a neuron below commit_min_spikes in the window: all its changes (its share
                # of the rows too) are spurious and dropped
                for j in range(n):
                    cgain[j] = commit_gain(win_count[j], &c)
                for i in range(n_in):
                    if dirty_row[i]:
                        for j in range(n):
                            W[i, j] = commit(W[i, j], dw[i, j] * cgain[j], &c, qkey, t, i, j)
                            dw[i, j] = 0.0
                        rows_w[nr] = i
                        nr += 1
                for j in range(n):
                    if dirty_col[j]:
                        if win_count[j] >= c.commit_min_spikes:
                            for i in range(n_in):
                                W[i, j] = commit(W[i, j], dw[i, j] * cgain[j], &c, qkey, t, i, j)
                                dw[i, j] = 0.0
                            cols_w[nc] = j
                            nc += 1
                        else:  # spurious: dropped
                            for i in range(n_in):
                                dw[i, j] = 0.0
                for i in range(n_in):
                    dirty_row[i] = 0
                for j in range(n):
                    dirty_col[j] = 0
                    win_count[j] = 0
            # record: per step counts and the indices, in step order
            n_in_tot = record(in_cnt, in_idx, t, n_in_tot, spk_in, nin)
            n_exc_tot = record(exc_cnt, exc_idx, t, n_exc_tot, spk_e, ne)
            n_inh_tot = record(inh_cnt, inh_idx, t, n_inh_tot, spk_i, ni)
            n_row_tot = record(row_cnt, row_idx, t, n_row_tot, rows_w, nr)
            n_col_tot = record(col_cnt, col_idx, t, n_col_tot, cols_w, nc)
    free(active); free(thr); free(spk_e); free(spk_i); free(spk_in); free(is_i)
    free(rows_w); free(cols_w); free(cgain)
    return n_in_tot, n_exc_tot, n_inh_tot
