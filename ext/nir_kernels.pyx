# cython: language_level=3
"""Compiled NIR population kernels (snn_frontend._nir_kernels).

Mirror of snn_frontend/_nir_reference.py, step for step, so results are bit-identical
(float32 throughout, no fused multiply-add: built with -ffp-contract=off). Each function
releases the GIL and works on a range of samples; each step of the reference is one
`cdef inline` helper over one sample's row. State is flushed to zero below FLUSH_BELOW.
"""
from libc.stdint cimport int32_t, int64_t, uint8_t

from numerics cimport flushf


cdef inline void add_row(Py_ssize_t n, float* acc, const float* w) noexcept nogil:
    cdef Py_ssize_t k
    for k in range(n):
        acc[k] += w[k]


cdef inline float leak(float v, float I, float decay, float gain, float v_leak) noexcept nogil:
    """(v_leak + (v - v_leak) decay) + gain I, in float32 (as NumPy does)."""
    return (v_leak + (v - v_leak) * decay) + gain * I


def set_bias(float[:, ::1] I, const float[::1] bias, Py_ssize_t b0, Py_ssize_t b1):
    """See _nir_reference.set_bias."""
    cdef Py_ssize_t b, k, n = I.shape[1]
    with nogil:
        for b in range(b0, b1):
            for k in range(n):
                I[b, k] = bias[k]


def add_spiking_rows(float[:, ::1] I, const uint8_t[:, ::1] S, const float[:, ::1] W,
                     Py_ssize_t b0, Py_ssize_t b1):
    """See _nir_reference.add_spiking_rows."""
    cdef Py_ssize_t b, j, n = W.shape[1], m = S.shape[1]
    cdef long long adds = 0
    with nogil:
        for b in range(b0, b1):
            for j in range(m):
                if S[b, j]:
                    add_row(n, &I[b, 0], &W[j, 0])
                    adds += n
    return adds


cdef inline void scatter_row(float* acc, const int32_t* post, const float* w,
                             int64_t e0, int64_t e1) noexcept nogil:
    cdef int64_t e
    for e in range(e0, e1):
        acc[post[e]] += w[e]


def add_spiking_csr(float[:, ::1] I, const uint8_t[:, ::1] S, const int64_t[::1] ptr,
                    const int32_t[::1] post, const float[::1] w, Py_ssize_t b0, Py_ssize_t b1):
    """See _nir_reference.add_spiking_csr."""
    cdef Py_ssize_t b, j, m = S.shape[1]
    cdef long long adds = 0
    if post.shape[0] == 0:  # no synapse lands in the map
        return 0
    with nogil:
        for b in range(b0, b1):
            for j in range(m):
                if S[b, j]:
                    scatter_row(&I[b, 0], &post[0], &w[0], ptr[j], ptr[j + 1])
                    adds += ptr[j + 1] - ptr[j]
    return adds


def cuba_current(float[:, ::1] i, float[:, ::1] I, const float[::1] syn_decay,
                 const float[::1] w_in, Py_ssize_t b0, Py_ssize_t b1):
    """See _nir_reference.cuba_current."""
    cdef Py_ssize_t b, k, n = I.shape[1]
    cdef float drive
    with nogil:
        for b in range(b0, b1):
            for k in range(n):
                drive = i[b, k]
                i[b, k] = flushf(i[b, k] * syn_decay[k] + w_in[k] * I[b, k])
                I[b, k] = drive


def leaky_zero(float[:, ::1] v, const float[:, ::1] I, const float[::1] decay,
               const float[::1] gain, const float[::1] v_leak, const float[::1] v_th,
               const float[::1] v_reset, uint8_t[:, ::1] S, Py_ssize_t b0, Py_ssize_t b1):
    """See _nir_reference.leaky_zero."""
    cdef Py_ssize_t b, k, n = v.shape[1]
    cdef float x
    with nogil:
        for b in range(b0, b1):
            for k in range(n):
                x = flushf(leak(v[b, k], I[b, k], decay[k], gain[k], v_leak[k]))
                S[b, k] = x > v_th[k]
                v[b, k] = v_reset[k] if S[b, k] else x


def leaky_subtract(float[:, ::1] v, const float[:, ::1] I, const float[::1] decay,
                   const float[::1] gain, const float[::1] v_leak, const float[::1] v_th,
                   uint8_t[:, ::1] S, Py_ssize_t b0, Py_ssize_t b1):
    """See _nir_reference.leaky_subtract."""
    cdef Py_ssize_t b, k, n = v.shape[1]
    cdef float x
    with nogil:
        for b in range(b0, b1):
            for k in range(n):
                x = leak(v[b, k], I[b, k], decay[k], gain[k], v_leak[k])
                if S[b, k]:
                    x = x - v_th[k]
                v[b, k] = flushf(x)
                S[b, k] = v[b, k] > v_th[k]


def leaky_silent(float[:, ::1] v, const float[:, ::1] I, const float[::1] decay,
                 const float[::1] gain, const float[::1] v_leak, Py_ssize_t b0, Py_ssize_t b1):
    """See _nir_reference.leaky_silent."""
    cdef Py_ssize_t b, k, n = v.shape[1]
    with nogil:
        for b in range(b0, b1):
            for k in range(n):
                v[b, k] = flushf(leak(v[b, k], I[b, k], decay[k], gain[k], v_leak[k]))
