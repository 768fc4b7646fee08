# cython: language_level=3
"""Compiled Diehl & Cook kernels (snn_frontend._dc_kernels).

Mirror of snn_frontend/_reference.py, step for step, so results are bit-identical
(no fused multiply-add: built with -ffp-contract=off). The whole presentation runs
without the GIL. Each step of the reference is one `cdef inline` helper over raw
(restrict) pointers with its constants as arguments, written branch-free so that the
compiler vectorises it; spiking neurons are found by a vectorised threshold pass that
counts them, and only those are listed and reset. An input spike touches one weight
row, an excitatory spike one weight column, inhibition is O(N) per step ("total minus
self"), and the Poisson input is drawn in place by a counter-based RNG. Decaying state
is flushed to zero below numerics.FLUSH_BELOW (no subnormal arithmetic). Input delays
(p.delay_slots > 0) take their own step-5 helpers (delay_*, *_at_arrival); without them
the input delivery is the direct add_row path.
"""
import numpy as np
from libc.math cimport floor
from libc.stdint cimport int32_t, uint8_t, uint64_t
from libc.stdlib cimport calloc, free, malloc

from numerics cimport FLUSH_BELOW, flush

cdef extern from *:
    # restrict-qualified pointers: the arrays of one step never overlap, which lets the
    # compiler vectorise the per-neuron loops without run-time alias checks
    ctypedef double* dptr "double * __restrict__"
    ctypedef float* fptr "float * __restrict__"
    ctypedef int32_t* iptr "int32_t * __restrict__"

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
    int delay_slots


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
    c.delay_slots = p.delay_slots
    return c


# ------------------------------------------------------------------ number formats
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


cdef inline void qstate_all(int n, dptr x, Params* c) noexcept nogil:
    """Fixed-point state: every entry of x onto its grid."""
    cdef int j
    for j in range(n):
        x[j] = qstate(x[j], c)


# ------------------------------------------------------------- step 1: integrate
cdef inline void integrate_exc(int n, dptr v, dptr ge, dptr gi, iptr refrac, iptr lockout,
                               double a, double v_rest, double e_exc, double e_inh,
                               double decay_ge, double decay_gi) noexcept nogil:
    """Linearly implicit Euler (a refractory neuron keeps its v), conductances decay
    (flushed), refractory and lockout counters tick."""
    cdef int j
    cdef double g_e, g_i, x
    for j in range(n):
        g_e = ge[j]
        g_i = gi[j]
        x = (v[j] + a * (v_rest + g_e * e_exc + g_i * e_inh)) / (1.0 + a * (1.0 + g_e + g_i))
        v[j] = v[j] if refrac[j] > 0 else x
        refrac[j] = refrac[j] - 1 if refrac[j] > 0 else 0
        ge[j] = flush(g_e * decay_ge)
        gi[j] = flush(g_i * decay_gi)
        lockout[j] = lockout[j] - 1 if lockout[j] > 0 else 0


cdef inline void integrate_inh(int n, dptr v, dptr ge, iptr refrac, double a, double v_rest,
                               double e_exc, double decay_ge) noexcept nogil:
    """The inhibitory population's step 1 (excitatory input only, no lockout)."""
    cdef int j
    cdef double g_e, x
    for j in range(n):
        g_e = ge[j]
        x = (v[j] + a * (v_rest + g_e * e_exc)) / (1.0 + a * (1.0 + g_e))
        v[j] = v[j] if refrac[j] > 0 else x
        refrac[j] = refrac[j] - 1 if refrac[j] > 0 else 0
        ge[j] = flush(g_e * decay_ge)


cdef inline void decay(int n, dptr x, double factor) noexcept nogil:
    """x <- flush(x * factor): theta and the STDP traces."""
    cdef int j
    for j in range(n):
        x[j] = flush(x[j] * factor)


# ------------------------------------------------------ step 2: threshold and reset
cdef inline int crossed_exc(int n, const double* v, const double* theta, const int32_t* refrac,
                            const int32_t* lockout, double theta_offset, double v_thresh,
                            iptr fired) noexcept nogil:
    """Mark the neurons that spike (not refractory, not locked out, v > theta - offset +
    v_thresh); returns how many. One vectorised pass; resets follow for the few marked."""
    cdef int j, s, count = 0
    for j in range(n):
        s = (refrac[j] == 0) & (lockout[j] == 0) & (v[j] > (theta[j] - theta_offset + v_thresh))
        fired[j] = s
        count += s
    return count


cdef inline int crossed_inh(int n, const double* v, const int32_t* refrac, double v_thresh,
                            iptr fired) noexcept nogil:
    """The inhibitory population's threshold (no adaptation, no lockout)."""
    cdef int j, s, count = 0
    for j in range(n):
        s = (refrac[j] == 0) & (v[j] > v_thresh)
        fired[j] = s
        count += s
    return count


cdef inline void list_fired(int n, int count, const int32_t* fired, int32_t* out) noexcept nogil:
    """The `count` marked indices, ascending."""
    cdef int j = 0, k = 0
    while k < count:
        out[k] = j
        k += fired[j]
        j += 1


cdef inline void reset(int count, const int32_t* spk, double* v, int32_t* refrac, double v_reset,
                       int refrac_steps) noexcept nogil:
    """v <- v_reset and the refractory counter starts, for each spiking neuron."""
    cdef int k
    for k in range(count):
        v[spk[k]] = v_reset
        refrac[spk[k]] = refrac_steps


# ---------------------------------------------------------------- step 3: input
cdef inline int draw_inputs(int n_active, const int32_t* active, const uint64_t* thr,
                            uint64_t key, uint64_t base, iptr hit, int32_t* out) noexcept nogil:
    """Input i spikes at this step iff (mix64(key + (base + i + 1)*GAMMA) >> 32) < thr_i,
    base = t*n_in: one vectorised pass of draws, then the spiking inputs in order."""
    cdef int a, k = 0, count = 0
    cdef uint64_t z
    for a in range(n_active):
        z = mix64(key + (base + <uint64_t>active[a] + 1) * GAMMA)
        hit[a] = (z >> 32) < thr[a]
        count += hit[a]
    for a in range(n_active):
        out[k] = active[a]
        k += hit[a]
    return count


# ---------------------------------------------------- step 5: delivery, plasticity
cdef inline void add_row(int n, dptr g, const float* w) noexcept nogil:
    """g += w (one weight row, float32 into float64)."""
    cdef int j
    for j in range(n):
        g[j] = g[j] + w[j]


cdef inline void depress_row(int n, fptr w, const double* post1, double nu_pre) noexcept nogil:
    """Float weights: w <- flush(max(w - nu_pre*x_post1, 0)) on an input spike."""
    cdef int j
    cdef double x
    for j in range(n):
        x = <double>w[j] - nu_pre * post1[j]
        x = x if x > 0.0 else 0.0
        w[j] = <float>flush(x)


cdef inline void depress_row_fixed(int n, float* w, const double* post1, Params* c,
                                   uint64_t qkey, long t, long i) noexcept nogil:
    """Fixed-point weights: the same change, rounded on the weight grid."""
    cdef int j
    cdef double x
    for j in range(n):
        x = <double>w[j] - c.nu_pre * post1[j]
        x = x if x > 0.0 else 0.0
        w[j] = <float>quantise(x, c, qkey, t, i, j)


cdef inline void buffer_depression(int n, dptr dw, const double* post1, double nu_pre) noexcept nogil:
    """Timestep-based updates: the row's depression goes to the buffer."""
    cdef int j
    for j in range(n):
        dw[j] = dw[j] - nu_pre * post1[j]


cdef inline void potentiate_col(int n_in, int stride, float* w, const double* pre, double nu_post,
                                double gain, Params* c, uint64_t qkey, long t,
                                long j) noexcept nogil:
    """On a spike of neuron j: w[i, j] <- min(w + nu_post*x_pre[i]*x_post2[j], w_max),
    in the weight format (w points at column j, rows `stride` apart)."""
    cdef int i
    cdef double x
    for i in range(n_in):
        x = <double>w[i * stride] + nu_post * pre[i] * gain
        x = x if x < c.w_max else c.w_max
        w[i * stride] = <float>quantise(x, c, qkey, t, i, j)


cdef inline void buffer_potentiation(int n_in, int stride, double* dw, const double* pre,
                                     double nu_post, double gain) noexcept nogil:
    """Timestep-based updates: the column's potentiation goes to the buffer."""
    cdef int i
    for i in range(n_in):
        dw[i * stride] = dw[i * stride] + nu_post * pre[i] * gain


# ------------------------------------------- step 5 with input delays (p.delay_slots > 0)
cdef inline void delay_arrive(int n, dptr g, dptr slot) noexcept nogil:
    """5a: the input conductances due at this step join g_e; the ring slot empties."""
    cdef int j
    for j in range(n):
        g[j] = g[j] + slot[j]
        slot[j] = 0.0


cdef inline void delay_send(int n, double** dest, const float* w, const uint8_t* d) noexcept nogil:
    """5b: one input spike's weights, each to g_e now (dest[0], delay 0) or to the ring
    slot of step t + d (dest[d]); the weight at emission."""
    cdef int j
    for j in range(n):
        dest[d[j]][j] = dest[d[j]][j] + w[j]


cdef inline int delay_record(int n_in, int n, const double* pre, const double* post1,
                             dptr pre_hist, dptr post1_hist, const int32_t* spk_in, int count,
                             iptr emit_idx) noexcept nogil:
    """5c: this step's traces to the histories, its input spikes (`count`: 0 without
    learning) to the list whose depression falls due R - 1 steps later; returns count."""
    cdef int i, j, k
    for i in range(n_in):
        pre_hist[i] = pre[i]
    for j in range(n):
        post1_hist[j] = post1[j]
    for k in range(count):
        emit_idx[k] = spk_in[k]
    return count


cdef inline void post1_at_arrival(int n, const double* post1_hist, int R, int slot,
                                  const uint8_t* d, dptr out) noexcept nogil:
    """x_post1 of each excitatory j at the step the input spike emitted at ring slot `slot`
    reached it: post1_hist[(slot + d_j) mod R][j]."""
    cdef int j, s
    for j in range(n):
        s = slot + d[j]
        s = s - R if s >= R else s
        out[j] = post1_hist[s * n + j]


cdef inline void pre_at_arrival(int n_in, int stride, const double* pre_hist, int R, int pos,
                                const uint8_t* d, dptr out) noexcept nogil:
    """The per-synapse presynaptic trace of one column: x_pre of input i d_i steps ago,
    pre_hist[(pos - d_i) mod R][i] (d points at the column, rows `stride` apart)."""
    cdef int i, s
    for i in range(n_in):
        s = pos - d[i * stride]
        s = s + R if s < 0 else s
        out[i] = pre_hist[s * n_in + i]


cdef inline void inhibit_all_but_self(int n, dptr gi, int count, const int32_t* src,
                                      iptr is_src, double w) noexcept nogil:
    """g_i[k] += (count - [k spiked]) * w: every other neuron, O(N)."""
    cdef int k, j
    for k in range(count):
        is_src[src[k]] = 1
    for j in range(n):
        gi[j] = gi[j] + <double>(count - is_src[j]) * w
    for k in range(count):
        is_src[src[k]] = 0


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


cdef inline void write_back(float[:, ::1] W, double[:, ::1] dw, int32_t[::1] dirty_row,
                            int32_t[::1] dirty_col, int32_t[::1] win_count, double* cgain,
                            Params* c, uint64_t qkey, long t, int32_t* rows_w, int* nr,
                            int32_t* cols_w, int* nc) noexcept nogil:
    """Timestep-based updates: write the buffered changes back, each neuron's scaled by its
    commit gain; a neuron below commit_min_spikes in the window has all its changes (its
    share of the rows too) dropped as spurious. Lists the rows and columns written."""
    cdef int i, j, n_in = c.n_in, n = c.n_exc
    for j in range(n):
        cgain[j] = commit_gain(win_count[j], c)
    for i in range(n_in):
        if dirty_row[i]:
            for j in range(n):
                W[i, j] = commit(W[i, j], dw[i, j] * cgain[j], c, qkey, t, i, j)
                dw[i, j] = 0.0
            rows_w[nr[0]] = i
            nr[0] += 1
    for j in range(n):
        if dirty_col[j]:
            if win_count[j] >= c.commit_min_spikes:
                for i in range(n_in):
                    W[i, j] = commit(W[i, j], dw[i, j] * cgain[j], c, qkey, t, i, j)
                    dw[i, j] = 0.0
                cols_w[nc[0]] = j
                nc[0] += 1
            else:  # spurious: dropped
                for i in range(n_in):
                    dw[i, j] = 0.0
    for i in range(n_in):
        dirty_row[i] = 0
    for j in range(n):
        dirty_col[j] = 0
        win_count[j] = 0


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
            double rate_scale, bint learn, buf, double w_lat=0.0, double pot_gain=1.0,
            const uint8_t[:, ::1] delays=None):
    """One presentation (input phase + rest steps) in place; see _reference.present."""
    cdef Params c = _params(p)
    cdef int R = c.delay_slots
    if R == 0 and delays is not None:
        raise ValueError("input delays given but p.delay_slots is 0")
    if R and (delays is None or delays.shape[0] != c.n_in or delays.shape[1] != c.n_exc):
        raise ValueError(f"input delays must be a uint8 {c.n_in}x{c.n_exc} array")
    if R and not _delays_fit(delays, R):
        raise ValueError(f"an input delay of {int(np.max(delays))} steps does not fit {R} ring "
                         "slots")
    cdef double[:, ::1] in_ring = st.in_ring, pre_hist = st.pre_hist, post1_hist = st.post1_hist
    cdef int32_t[::1] emit_cnt = st.emit_cnt, ring_pos = st.ring_pos
    cdef int32_t[:, ::1] emit_idx = st.emit_idx
    if R and (in_ring.shape[0] != R or in_ring.shape[1] != c.n_exc or pre_hist.shape[0] != R
              or pre_hist.shape[1] != c.n_in or post1_hist.shape[0] != R
              or post1_hist.shape[1] != c.n_exc or emit_cnt.shape[0] != R
              or emit_idx.shape[0] != R or emit_idx.shape[1] != c.n_in
              or ring_pos.shape[0] != 1 or not 0 <= ring_pos[0] < R):
        raise ValueError("the state's delay rings do not match p.delay_slots")
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
    cdef bint fixed_w = c.quant_scale > 0.0
    if buffered and (dw.shape[0] != c.n_in or dw.shape[1] != c.n_exc):
        raise ValueError("state.dw must be n_in x n_exc for timestep-based updates")
    cdef double nu_post = c.nu_post * pot_gain
    cdef double v_reset_e = qstate(c.v_reset_e, &c) if qs else c.v_reset_e
    cdef double v_reset_i = qstate(c.v_reset_i, &c) if qs else c.v_reset_i
    cdef uint64_t qkey = key ^ QKEY
    cdef long n_row_tot = 0, n_col_tot = 0
    if W.shape[0] != c.n_in or W.shape[1] != c.n_exc or image.shape[0] != c.n_in:
        raise ValueError("weight or image shape does not match the parameters")
    if in_cnt.shape[0] < c.steps_total or exc_idx.shape[0] < c.steps_total * c.n_exc:
        raise ValueError("output buffers too small for these parameters")

    cdef int n_in = c.n_in, n = c.n_exc
    cdef int32_t* active = <int32_t*>malloc(n_in * sizeof(int32_t))
    cdef uint64_t* thr = <uint64_t*>malloc(n_in * sizeof(uint64_t))
    cdef int32_t* hit = <int32_t*>malloc(n_in * sizeof(int32_t))
    cdef int32_t* fired_e = <int32_t*>malloc(n * sizeof(int32_t))
    cdef int32_t* fired_i = <int32_t*>malloc(n * sizeof(int32_t))
    cdef int32_t* spk_e = <int32_t*>malloc(n * sizeof(int32_t))
    cdef int32_t* spk_i = <int32_t*>malloc(n * sizeof(int32_t))
    cdef int32_t* spk_in = <int32_t*>malloc(n_in * sizeof(int32_t))
    cdef int32_t* is_src = <int32_t*>calloc(n, sizeof(int32_t))
    cdef int32_t* rows_w = <int32_t*>malloc(n_in * sizeof(int32_t))
    cdef int32_t* cols_w = <int32_t*>malloc(n * sizeof(int32_t))
    cdef double* cgain = <double*>malloc(n * sizeof(double))
    # input delays: the destination of each delay (g_e, then ring slots) and the traces at
    # arrival of one row / column
    cdef double** dest = <double**>malloc((R if R else 1) * sizeof(double*))
    cdef double* post1_arr = <double*>malloc(n * sizeof(double))
    cdef double* pre_arr = <double*>malloc(n_in * sizeof(double))
    if (not active or not thr or not hit or not fired_e or not fired_i or not spk_e
            or not spk_i or not spk_in or not is_src or not rows_w or not cols_w or not cgain
            or not dest or not post1_arr or not pre_arr):
        free(active); free(thr); free(hit); free(fired_e); free(fired_i); free(spk_e)
        free(spk_i); free(spk_in); free(is_src); free(rows_w); free(cols_w); free(cgain)
        free(dest); free(post1_arr); free(pre_arr)
        raise MemoryError()

    cdef int n_active = 0, t, i, j, k, ne, ni, nin, nr, nc, pos = 0, due, slot
    cdef const double* pre_src
    cdef long n_in_tot = 0, n_exc_tot = 0, n_inh_tot = 0
    with nogil:
        for i in range(n_in):
            if image[i] != 0:
                active[n_active] = i
                thr[n_active] = <uint64_t>(<double>image[i] * rate_scale * 4294967296.0)
                n_active += 1
        for j in range(n):
            response[j] = 0
        for t in range(c.steps_total):
            # 1. integrate; theta decays while learning (a refractory neuron's v and the
            #    fixed-point grid: qstate leaves an on-grid value unchanged)
            integrate_exc(n, &v_e[0], &ge_e[0], &gi_e[0], &refrac_e[0], &lockout_e[0], c.a_e,
                          c.v_rest_e, c.e_exc_e, c.e_inh_e, c.decay_ge, c.decay_gi)
            if qs:
                qstate_all(n, &v_e[0], &c)
            if learn:
                decay(n, &theta[0], c.decay_theta)
                if qs:
                    qstate_all(n, &theta[0], &c)
            if not c.lateral:
                integrate_inh(n, &v_i[0], &ge_i[0], &refrac_i[0], c.a_i, c.v_rest_i, c.e_exc_i,
                              c.decay_ge)
                if qs:
                    qstate_all(n, &v_i[0], &c)
            # 2. threshold and reset; theta += theta_plus on a spike while learning
            ne = crossed_exc(n, &v_e[0], &theta[0], &refrac_e[0], &lockout_e[0], c.theta_offset,
                             c.v_thresh_e, fired_e)
            if ne:
                list_fired(n, ne, fired_e, spk_e)
                reset(ne, spk_e, &v_e[0], &refrac_e[0], v_reset_e, c.refrac_steps_e)
                for k in range(ne):
                    j = spk_e[k]
                    lockout_e[j] = c.lockout_steps_e
                    if learn:
                        theta[j] = theta[j] + c.theta_plus
                        if qs:
                            theta[j] = qstate(theta[j], &c)
            ni = 0
            if not c.lateral:
                ni = crossed_inh(n, &v_i[0], &refrac_i[0], c.v_thresh_i, fired_i)
                if ni:
                    list_fired(n, ni, fired_i, spk_i)
                    reset(ni, spk_i, &v_i[0], &refrac_i[0], v_reset_i, c.refrac_steps_i)
            # 3. input spikes (counter-based RNG, integer compare)
            nin = 0
            if t < c.steps_present:
                nin = draw_inputs(n_active, active, thr, key, <uint64_t>t * <uint64_t>n_in, hit,
                                  spk_in)
                for k in range(ne):
                    response[spk_e[k]] += 1
            # 4. traces
            if learn:
                decay(n_in, &pre[0], c.decay_pre)
                decay(n, &post1[0], c.decay_post1)
                decay(n, &post2[0], c.decay_post2)
            # 5. delivery and plasticity: an input spike adds its row, then depresses it
            nr = 0
            nc = 0
            if R == 0:
                for k in range(nin):
                    i = spk_in[k]
                    add_row(n, &ge_e[0], &W[i, 0])
                    if learn:
                        pre[i] = 1.0
                        if c.depress_on_pre:
                            if buffered:
                                buffer_depression(n, &dw[i, 0], &post1[0], c.nu_pre)
                                dirty_row[i] = 1
                            else:
                                if fixed_w:
                                    depress_row_fixed(n, &W[i, 0], &post1[0], &c, qkey, t, i)
                                else:
                                    depress_row(n, &W[i, 0], &post1[0], c.nu_pre)
                                rows_w[nr] = i
                                nr += 1
            else:
                # input delays (docs/equations.md, "Input delays"): 5a arrivals, 5b each
                # spike's weights to g_e or the ring, 5c histories, 5d the depression of the
                # spikes of R - 1 steps ago (all arrived), with x_post1 at each arrival
                pos = ring_pos[0]
                delay_arrive(n, &ge_e[0], &in_ring[pos, 0])
                dest[0] = &ge_e[0]
                for k in range(1, R):
                    slot = pos + k
                    slot = slot - R if slot >= R else slot
                    dest[k] = &in_ring[slot, 0]
                for k in range(nin):
                    i = spk_in[k]
                    delay_send(n, dest, &W[i, 0], &delays[i, 0])
                    if learn:
                        pre[i] = 1.0
                if learn or t >= c.steps_total - R:  # (see _reference: the same state)
                    emit_cnt[pos] = delay_record(n_in, n, &pre[0], &post1[0],
                                                 &pre_hist[pos, 0], &post1_hist[pos, 0], spk_in,
                                                 nin if learn else 0, &emit_idx[pos, 0])
                if learn and c.depress_on_pre:
                    due = pos + 1
                    due = due - R if due >= R else due
                    for k in range(emit_cnt[due]):
                        i = emit_idx[due, k]
                        post1_at_arrival(n, &post1_hist[0, 0], R, due, &delays[i, 0], post1_arr)
                        if buffered:
                            buffer_depression(n, &dw[i, 0], post1_arr, c.nu_pre)
                            dirty_row[i] = 1
                        else:
                            if fixed_w:
                                depress_row_fixed(n, &W[i, 0], post1_arr, &c, qkey, t, i)
                            else:
                                depress_row(n, &W[i, 0], post1_arr, c.nu_pre)
                            rows_w[nr] = i
                            nr += 1
            # an excitatory spike drives its inhibitory partner, then potentiates its column
            # (with delays: by the per-synapse trace of the spikes that have arrived)
            pre_src = &pre[0]
            for k in range(ne):
                j = spk_e[k]
                if not c.lateral:
                    ge_i[j] = ge_i[j] + c.w_ei
                if learn:
                    if R:
                        pre_at_arrival(n_in, n, &pre_hist[0, 0], R, pos, &delays[0, j], pre_arr)
                        pre_src = pre_arr
                    if buffered:
                        buffer_potentiation(n_in, n, &dw[0, j], pre_src, nu_post, post2[j])
                        dirty_col[j] = 1
                        win_count[j] += 1
                    else:
                        potentiate_col(n_in, n, &W[0, j], pre_src, nu_post, post2[j], &c, qkey,
                                       t, j)
                        cols_w[nc] = j
                        nc += 1
                    post1[j] = 1.0
                    post2[j] = 1.0
            # inhibition of every other excitatory neuron: by the excitatory spikes directly
            # (lateral), else by the inhibitory population's
            if c.lateral:
                if ne:
                    inhibit_all_but_self(n, &gi_e[0], ne, spk_e, is_src, w_lat)
            elif ni:
                inhibit_all_but_self(n, &gi_e[0], ni, spk_i, is_src, c.w_ie)
            # timestep-based updates: write pending changes back every update_every steps
            if learn and buffered and ((t + 1) % c.update_every == 0 or t == c.steps_total - 1):
                write_back(W, dw, dirty_row, dirty_col, win_count, cgain, &c, qkey, t, rows_w,
                           &nr, cols_w, &nc)
            # record: per step counts and the indices, in step order
            n_in_tot = record(in_cnt, in_idx, t, n_in_tot, spk_in, nin)
            n_exc_tot = record(exc_cnt, exc_idx, t, n_exc_tot, spk_e, ne)
            n_inh_tot = record(inh_cnt, inh_idx, t, n_inh_tot, spk_i, ni)
            n_row_tot = record(row_cnt, row_idx, t, n_row_tot, rows_w, nr)
            n_col_tot = record(col_cnt, col_idx, t, n_col_tot, cols_w, nc)
            if R:
                ring_pos[0] = pos + 1 if pos + 1 < R else 0
    free(active); free(thr); free(hit); free(fired_e); free(fired_i); free(spk_e)
    free(spk_i); free(spk_in); free(is_src); free(rows_w); free(cols_w); free(cgain)
    free(dest); free(post1_arr); free(pre_arr)
    return n_in_tot, n_exc_tot, n_inh_tot


cdef bint _delays_fit(const uint8_t[:, ::1] d, int R) noexcept:
    """Whether every delay is below R (one vectorised pass; the kernel indexes its rings
    with them)."""
    cdef const uint8_t* q = &d[0, 0]
    cdef Py_ssize_t k, total = d.shape[0] * d.shape[1]
    cdef uint8_t bad = 0, top = <uint8_t>(R - 1)
    with nogil:
        for k in range(total):
            bad |= q[k] > top
    return bad == 0
