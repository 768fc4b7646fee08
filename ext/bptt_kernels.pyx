# cython: language_level=3
"""Compiled surrogate-gradient kernels (snn_frontend._bptt_kernels).

Mirror of snn_frontend/_bptt_reference.py, step for step, so results are bit-identical
(float32 throughout, no fused multiply-add: built with -ffp-contract=off). Each function
releases the GIL and works on a range of samples or weight columns, so the wrapper
(snn_frontend/surrogate.py) runs ranges on threads; each step of the reference is one
`cdef inline` helper over raw pointers. Decaying state (membranes, the readout, the
backward recursions, the powers of beta) is flushed to zero below FLUSH_BELOW.
"""
from libc.math cimport fabsf, sqrt
from libc.stdint cimport int32_t, int64_t, uint8_t
from libc.stdlib cimport free, malloc
from libc.string cimport memset

from numerics cimport flush, flushf

cdef extern from *:
    ctypedef float* fptr "float * __restrict__"


# ----------------------------------------------------------------------------- helpers


cdef extern from *:
    """
    static const float BPTT_ONE = 1.0f;      /* float32 constants: no double promotion */
    static const float BPTT_HUNDRED = 100.0f;
    """
    const float ONE "BPTT_ONE"
    const float HUNDRED "BPTT_HUNDRED"


cdef inline float surrogate(float v) noexcept nogil:
    """1 / (100 |v - 1| + 1)^2, every operation in float32 (as NumPy does)."""
    cdef float x = HUNDRED * fabsf(v - ONE) + ONE
    return ONE / (x * x)


cdef inline void clear(Py_ssize_t n, fptr x) noexcept nogil:
    cdef Py_ssize_t j
    for j in range(n):
        x[j] = 0.0


cdef inline void add_rows(Py_ssize_t n, fptr acc, const float* W, const int64_t* off,
                          const int32_t* idx, Py_ssize_t e) noexcept nogil:
    """acc += W[idx[m]] for the events m of slot e (acc cleared first)."""
    cdef Py_ssize_t m, j
    cdef const float* w
    clear(n, acc)
    for m in range(off[e], off[e + 1]):
        w = W + <Py_ssize_t>idx[m] * n
        for j in range(n):
            acc[j] += w[j]


cdef inline int64_t lif_step(Py_ssize_t n, fptr v, const float* h, uint8_t* s,
                             float beta) noexcept nogil:
    """v = flush((beta v + h) - s); s = v > 1 (the previous step's spikes are the reset);
    returns how many spiked (a vectorised count: most steps have none)."""
    cdef Py_ssize_t j
    cdef float x
    cdef int64_t count = 0
    for j in range(n):
        x = flushf((beta * v[j] + h[j]) - <float>s[j])
        v[j] = x
        s[j] = x > ONE
        count += s[j]
    return count


cdef inline int64_t list_spikes(Py_ssize_t n, const uint8_t* s, int64_t count,
                                int32_t* out) noexcept nogil:
    """Append the `count` spiking neurons (ascending) to out; returns count."""
    cdef Py_ssize_t j
    cdef int64_t m = 0
    if count == 0:
        return 0
    for j in range(n):
        if s[j]:
            out[m] = <int32_t>j
            m += 1
    return m


cdef inline int64_t count_active(Py_ssize_t n, const float* v, float window) noexcept nogil:
    """How many neurons have |v - 1| < window (a vectorised count)."""
    cdef Py_ssize_t j
    cdef int64_t c = 0
    for j in range(n):
        c += fabsf(v[j] - ONE) < window
    return c


cdef inline int64_t list_active(Py_ssize_t n, const float* v, float window, int32_t* idx,
                                float* sg) noexcept nogil:
    """Append the neurons with |v - 1| < window (ascending) and the surrogate there."""
    cdef Py_ssize_t j
    cdef int64_t m = 0
    if count_active(n, v, window) == 0:
        return 0
    for j in range(n):
        if fabsf(v[j] - ONE) < window:
            idx[m] = <int32_t>j
            sg[m] = surrogate(v[j])
            m += 1
    return m


cdef inline void copy(Py_ssize_t n, const float* x, fptr y) noexcept nogil:
    cdef Py_ssize_t j
    for j in range(n):
        y[j] = x[j]


cdef inline void leak_step(Py_ssize_t n, fptr o, const float* a, float beta, float gain,
                           fptr o_out) noexcept nogil:
    """o = flush(beta o + gain a); record o."""
    cdef Py_ssize_t j
    for j in range(n):
        o[j] = flushf(beta * o[j] + gain * a[j])
        o_out[j] = o[j]


cdef inline void readout_back_step(Py_ssize_t n, fptr r, const float* d, float beta, float gain,
                                   fptr g_out) noexcept nogil:
    """r = flush(d + beta r); g = gain r."""
    cdef Py_ssize_t j
    for j in range(n):
        r[j] = flushf(d[j] + beta * r[j])
        g_out[j] = gain * r[j]


cdef inline void lif_back_step(Py_ssize_t n, fptr g, const float* ds, const float* reg,
                               const float* v, float beta, fptr g_out) noexcept nogil:
    """g = flush((ds + reg) s(v) + beta g); record g."""
    cdef Py_ssize_t j
    for j in range(n):
        g[j] = flushf((ds[j] + reg[j]) * surrogate(v[j]) + beta * g[j])
        g_out[j] = g[j]


cdef inline void axpy(Py_ssize_t n, fptr y, const float* x, float a) noexcept nogil:
    """y += x a."""
    cdef Py_ssize_t j
    for j in range(n):
        y[j] += x[j] * a


cdef inline void add_slice(Py_ssize_t n, fptr y, const float* x) noexcept nogil:
    cdef Py_ssize_t j
    for j in range(n):
        y[j] += x[j]


cdef inline void add_at(Py_ssize_t n, const int32_t* idx, float x, float* row) noexcept nogil:
    """row[idx[m]] += x for the n indices."""
    cdef Py_ssize_t m
    for m in range(n):
        row[idx[m]] += x


cdef inline Py_ssize_t list_times(Py_ssize_t b, Py_ssize_t T, const int64_t* off,
                                  Py_ssize_t* times) noexcept nogil:
    """The steps of sample b that hold entries, ascending; returns how many."""
    cdef Py_ssize_t t, n = 0
    for t in range(T):
        if off[b * T + t + 1] > off[b * T + t]:
            times[n] = t
            n += 1
    return n


cdef inline void by_neuron(Py_ssize_t b, Py_ssize_t T, Py_ssize_t N, const int64_t* off,
                           const int32_t* idx, Py_ssize_t* start, Py_ssize_t* fill,
                           Py_ssize_t* order, Py_ssize_t* step_of) noexcept nogil:
    """Sample b's active entries grouped by neuron, each group in time order: entry
    positions in `order[start[j]:start[j+1]]` and their steps in `step_of`."""
    cdef Py_ssize_t j, k, n, q, base = off[b * T]
    for j in range(N + 1):
        start[j] = 0
    for n in range(off[b * T], off[(b + 1) * T]):
        start[idx[n] + 1] += 1
    for j in range(N):
        start[j + 1] += start[j]
        fill[j] = start[j]
    for k in range(T):
        for n in range(off[b * T + k], off[b * T + k + 1]):
            q = fill[idx[n]]
            order[q] = n
            step_of[q] = k
            fill[idx[n]] += 1


cdef inline Py_ssize_t largest_gap(const int64_t* off, Py_ssize_t lo, Py_ssize_t hi,
                                   Py_ssize_t stride) noexcept nogil:
    """max of off[s + stride] - off[s] over s = lo, lo + stride, ... < hi."""
    cdef Py_ssize_t s = lo, gap = 0
    while s < hi:
        if off[s + stride] - off[s] > gap:
            gap = off[s + stride] - off[s]
        s += stride
    return gap


# ----------------------------------------------------------------------------- forward


cdef struct Neurons:
    # one sample's hidden layer while it runs: input current, membrane, spikes
    float* h
    float* v
    uint8_t* s
    int64_t spikes  # of the last step


cdef int neurons_alloc(Neurons* n, Py_ssize_t size) except -1:
    n.h = <float*>malloc(size * sizeof(float))
    n.v = <float*>malloc(size * sizeof(float))
    n.s = <uint8_t*>malloc(size * sizeof(uint8_t))
    if n.h == NULL or n.v == NULL or n.s == NULL:
        neurons_free(n)
        raise MemoryError()
    return 0


cdef void neurons_free(Neurons* n) noexcept:
    free(n.h); free(n.v); free(n.s)


cdef inline void neurons_rest(Neurons* n, Py_ssize_t size) noexcept nogil:
    """V = 0 and no spike: the state before step 1 of a sample."""
    clear(size, n.v)
    memset(n.s, 0, size)


cdef inline long long advance(Neurons* n, Py_ssize_t size, const float* W, const int64_t* off,
                              const int32_t* idx, Py_ssize_t slot, float beta) noexcept nogil:
    """One step: the input events of `slot` (the previous step) add their weight rows, then
    the LIF update; returns the synaptic additions."""
    add_rows(size, n.h, W, off, idx, slot)
    n.spikes = lif_step(size, n.v, n.h, n.s, beta)
    return (off[slot + 1] - off[slot]) * size


def hidden_forward(const int64_t[::1] ev_off, const int32_t[::1] ev_idx, const float[:, ::1] W,
                   double beta, float[:, :, ::1] V, int64_t[::1] spk_n, int32_t[::1] spk_idx,
                   Py_ssize_t b0, Py_ssize_t b1):
    """See _bptt_reference.hidden_forward."""
    cdef Py_ssize_t T = V.shape[1], N = V.shape[2], b, k
    cdef long long adds = 0
    cdef int64_t pos = 0
    cdef Neurons n
    neurons_alloc(&n, N)
    with nogil:
        for b in range(b0, b1):
            neurons_rest(&n, N)
            clear(N, &V[b, 0, 0])
            spk_n[b * T] = 0
            for k in range(1, T):
                adds += advance(&n, N, &W[0, 0], &ev_off[0], &ev_idx[0], b * T + k - 1,
                                <float>beta)
                copy(N, n.v, &V[b, k, 0])
                spk_n[b * T + k] = list_spikes(N, n.s, n.spikes, &spk_idx[0] + pos)
                pos += spk_n[b * T + k]
    neurons_free(&n)
    return adds


def hidden_forward_active(const int64_t[::1] ev_off, const int32_t[::1] ev_idx,
                          const float[:, ::1] W, double beta, double window, Py_ssize_t steps,
                          int64_t[::1] spk_n, int32_t[::1] spk_idx, int64_t[::1] act_n,
                          int32_t[::1] act_idx, float[::1] act_sg, Py_ssize_t b0,
                          Py_ssize_t b1):
    """See _bptt_reference.hidden_forward_active."""
    cdef Py_ssize_t T = steps, N = W.shape[1], b, k
    cdef long long adds = 0
    cdef int64_t pos = 0, apos = 0
    cdef Neurons n
    neurons_alloc(&n, N)
    with nogil:
        for b in range(b0, b1):
            neurons_rest(&n, N)
            spk_n[b * T] = 0
            act_n[b * T] = 0
            for k in range(1, T):
                adds += advance(&n, N, &W[0, 0], &ev_off[0], &ev_idx[0], b * T + k - 1,
                                <float>beta)
                spk_n[b * T + k] = list_spikes(N, n.s, n.spikes, &spk_idx[0] + pos)
                pos += spk_n[b * T + k]
                act_n[b * T + k] = list_active(N, n.v, <float>window, &act_idx[0] + apos,
                                               &act_sg[0] + apos)
                apos += act_n[b * T + k]
    neurons_free(&n)
    return adds


def readout_forward(const int64_t[::1] ev_off, const int32_t[::1] ev_idx, const float[:, ::1] W,
                    double beta_out, float[:, :, ::1] O, Py_ssize_t b0, Py_ssize_t b1):
    """See _bptt_reference.readout_forward."""
    cdef Py_ssize_t T = O.shape[1], C = O.shape[2], b, k
    cdef long long adds = 0
    cdef float b32 = <float>beta_out
    cdef float gain = ONE - b32
    cdef float* a = <float*>malloc(C * sizeof(float))
    cdef float* o = <float*>malloc(C * sizeof(float))
    if a == NULL or o == NULL:
        free(a); free(o)
        raise MemoryError()
    with nogil:
        for b in range(b0, b1):
            clear(C, &O[b, 0, 0])
            clear(C, o)
            for k in range(1, T):
                add_rows(C, a, &W[0, 0], &ev_off[0], &ev_idx[0], b * T + k - 1)
                adds += (ev_off[b * T + k] - ev_off[b * T + k - 1]) * C
                leak_step(C, o, a, b32, gain, &O[b, k, 0])
    free(a); free(o)
    return adds


def readout_delta(const float[:, :, ::1] dO, double beta_out, float[:, :, ::1] G,
                  Py_ssize_t b0, Py_ssize_t b1):
    """See _bptt_reference.readout_delta."""
    cdef Py_ssize_t T = dO.shape[1], C = dO.shape[2], b, k
    cdef float b32 = <float>beta_out
    cdef float gain = ONE - b32
    cdef float* r = <float*>malloc(C * sizeof(float))
    if r == NULL:
        raise MemoryError()
    with nogil:
        for b in range(b0, b1):
            clear(C, r)
            for k in range(T - 1, 0, -1):
                readout_back_step(C, r, &dO[b, k, 0], b32, gain, &G[b, k, 0])
            clear(C, &G[b, 0, 0])
    free(r)


def hidden_delta(const float[:, :, ::1] V, const float[:, :, ::1] dS, const float[:, ::1] reg,
                 double beta, float[:, :, ::1] G, Py_ssize_t b0, Py_ssize_t b1):
    """See _bptt_reference.hidden_delta."""
    cdef Py_ssize_t T = V.shape[1], N = V.shape[2], b, k
    cdef float b32 = <float>beta
    cdef float* g = <float*>malloc(N * sizeof(float))
    if g == NULL:
        raise MemoryError()
    with nogil:
        for b in range(b0, b1):
            clear(N, g)
            for k in range(T - 1, 0, -1):
                lif_back_step(N, g, &dS[b, k, 0], &reg[b, 0], &V[b, k, 0], b32, &G[b, k, 0])
            clear(N, &G[b, 0, 0])
    free(g)


def weight_grad(const int64_t[::1] ev_off, const int32_t[::1] ev_idx, const float[:, :, ::1] G,
                float[:, ::1] dW, Py_ssize_t j0, Py_ssize_t j1):
    """See _bptt_reference.weight_grad."""
    cdef Py_ssize_t B = G.shape[0], T = G.shape[1], b, k, m
    cdef long long adds = 0
    with nogil:
        for b in range(B):
            for k in range(1, T):
                for m in range(ev_off[b * T + k - 1], ev_off[b * T + k]):
                    add_slice(j1 - j0, &dW[ev_idx[m], j0], &G[b, k, j0])
                    adds += j1 - j0
    return adds


def input_grad(const float[:, :, ::1] G, const float[:, ::1] WT, float[:, :, ::1] dS_in,
               Py_ssize_t b0, Py_ssize_t b1):
    """See _bptt_reference.input_grad."""
    cdef Py_ssize_t T = G.shape[1], N = G.shape[2], n_in = WT.shape[1], b, k, j
    cdef float* acc
    with nogil:
        for b in range(b0, b1):
            for k in range(1, T):
                acc = &dS_in[b, k - 1, 0]
                clear(n_in, acc)
                for j in range(N):
                    axpy(n_in, acc, &WT[j, 0], G[b, k, j])
            clear(n_in, &dS_in[b, T - 1, 0])
    return (b1 - b0) * (T - 1) * N * n_in


def input_grad_at(const float[:, :, ::1] G, const float[:, ::1] W, const int64_t[::1] act_off,
                  const int32_t[::1] act_idx, float[::1] out, Py_ssize_t b0, Py_ssize_t b1):
    """See _bptt_reference.input_grad_at."""
    cdef Py_ssize_t T = G.shape[1], C = G.shape[2], b, k, n, c
    cdef long long macs = 0
    cdef float acc
    cdef const float* w
    cdef const float* g
    with nogil:
        for b in range(b0, b1):
            for k in range(1, T):
                for n in range(act_off[b * T + k], act_off[b * T + k + 1]):
                    acc = 0.0
                    if k + 1 < T:
                        w = &W[act_idx[n], 0]
                        g = &G[b, k + 1, 0]
                        for c in range(C):
                            acc = acc + w[c] * g[c]
                        macs += C
                    out[n] = acc
    return macs


# ----------------------------------------------------------------------------- sparse backward


def sparse_weight_grad(const int64_t[::1] ev_off, const int32_t[::1] ev_idx,
                       const int64_t[::1] act_off, const int32_t[::1] act_idx,
                       const float[::1] delta, const float[::1] powers, float[:, ::1] dWT,
                       Py_ssize_t steps, Py_ssize_t j0, Py_ssize_t j1):
    """See _bptt_reference.sparse_weight_grad."""
    cdef Py_ssize_t T = steps, B = (act_off.shape[0] - 1) // steps
    cdef Py_ssize_t b, k, t, n, j, q, n_times
    cdef long long macs = 0
    cdef float* row
    cdef Py_ssize_t* times = <Py_ssize_t*>malloc(T * sizeof(Py_ssize_t))
    if times == NULL:
        raise MemoryError()
    with nogil:
        for b in range(B):
            n_times = list_times(b, T, &ev_off[0], times)  # the steps with input events
            for k in range(1, T):
                for n in range(act_off[b * T + k], act_off[b * T + k + 1]):
                    j = act_idx[n]
                    if j < j0 or j >= j1:
                        continue
                    row = &dWT[j, 0]  # the active neuron's fan-in: stays in L1
                    for q in range(n_times):
                        t = times[q]
                        if t >= k:
                            break
                        add_at(ev_off[b * T + t + 1] - ev_off[b * T + t],
                               &ev_idx[ev_off[b * T + t]], powers[k - 1 - t] * delta[n], row)
                    macs += ev_off[b * T + k] - ev_off[b * T]
    free(times)
    return macs


def sparse_input_grad(const int64_t[::1] act_off, const int32_t[::1] act_idx,
                      const float[::1] delta, const int64_t[::1] in_off,
                      const int32_t[::1] in_idx, const float[:, ::1] W, const float[::1] powers,
                      float[::1] dS_in, Py_ssize_t steps, Py_ssize_t b0, Py_ssize_t b1):
    """See _bptt_reference.sparse_input_grad."""
    cdef Py_ssize_t T = steps, N = W.shape[1], b, k, j, n, m, nt, n_times, o, last, t
    cdef long long macs = 0
    cdef float d
    # per sample: the times with previous-layer active entries, and each neuron's active
    # entries in time order (counting sort by neuron)
    cdef Py_ssize_t* times = <Py_ssize_t*>malloc(T * sizeof(Py_ssize_t))
    cdef Py_ssize_t* start = <Py_ssize_t*>malloc((N + 1) * sizeof(Py_ssize_t))
    cdef Py_ssize_t* fill = <Py_ssize_t*>malloc(N * sizeof(Py_ssize_t))
    cdef Py_ssize_t cap = largest_gap(&act_off[0], b0 * T, b1 * T, T) + 1  # entries of a sample
    cdef Py_ssize_t* order = <Py_ssize_t*>malloc(cap * sizeof(Py_ssize_t))
    cdef Py_ssize_t* step_of = <Py_ssize_t*>malloc(cap * sizeof(Py_ssize_t))
    if times == NULL or start == NULL or fill == NULL or order == NULL or step_of == NULL:
        free(times); free(start); free(fill); free(order); free(step_of)
        raise MemoryError()
    with nogil:
        for b in range(b0, b1):
            n_times = list_times(b, T, &in_off[0], times)
            by_neuron(b, T, N, &act_off[0], &act_idx[0], start, fill, order, step_of)
            for j in range(N):
                if start[j + 1] == start[j]:
                    continue
                d = 0.0
                last = T - 1
                o = start[j + 1] - 1
                nt = n_times - 1
                while nt >= 0 and times[nt] >= step_of[o]:
                    nt -= 1
                while nt >= 0:
                    t = times[nt]
                    if o >= start[j] and step_of[o] - 1 >= t:
                        k = step_of[o]
                        d = flushf(delta[order[o]] + d * powers[last - (k - 1)])
                        last = k - 1
                        o -= 1
                        continue
                    d = flushf(d * powers[last - t])
                    last = t
                    for m in range(in_off[b * T + t], in_off[b * T + t + 1]):
                        dS_in[m] += W[in_idx[m], j] * d
                    macs += in_off[b * T + t + 1] - in_off[b * T + t]
                    nt -= 1
    free(times); free(start); free(fill); free(order); free(step_of)
    return macs


# ----------------------------------------------------------------------------- optimiser


cdef inline void adam_row(Py_ssize_t n, fptr w, double* m, double* v, const float* g,
                          double lr, double beta1, double beta2, double eps, double c1,
                          double c2) noexcept nogil:
    """One row of Adam: the moments (float64, flushed), then the weight step in float32."""
    cdef Py_ssize_t j
    cdef double x
    for j in range(n):
        x = <double>g[j]
        m[j] = flush(m[j] * beta1 + (1.0 - beta1) * x)
        v[j] = flush(v[j] * beta2 + (1.0 - beta2) * x * x)
        w[j] = w[j] - <float>(lr * (m[j] / c1) / (sqrt(v[j] / c2) + eps))


def adam(float[:, ::1] W, double[:, ::1] m, double[:, ::1] v, const float[:, ::1] g, double lr,
         double beta1, double beta2, double eps, double c1, double c2, Py_ssize_t r0,
         Py_ssize_t r1):
    """See _bptt_reference.adam."""
    cdef Py_ssize_t n = W.shape[1], r
    with nogil:
        for r in range(r0, r1):
            adam_row(n, &W[r, 0], &m[r, 0], &v[r, 0], &g[r, 0], lr, beta1, beta2, eps, c1, c2)

