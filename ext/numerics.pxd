# cython: language_level=3
"""Numerical helpers shared by every compiled kernel (mirrored by snn_frontend/numerics.py).

No kernel does subnormal arithmetic: state that decays toward zero is flushed to exactly
zero once its magnitude falls below FLUSH_BELOW (1e-30), far below anything that can change
a spike. On Intel cores every operation on a subnormal costs about a hundred cycles.
"""
from libc.math cimport fabs, fabsf

cdef extern from *:
    """
    static const double ACCEL_SIM_FLUSH_BELOW = 1e-30;
    """
    const double FLUSH_BELOW "ACCEL_SIM_FLUSH_BELOW"


cdef inline double flush(double x) noexcept nogil:
    """x, or exactly 0.0 when 0 < abs(x) < FLUSH_BELOW (a NaN is kept)."""
    return 0.0 if fabs(x) < FLUSH_BELOW else x


cdef inline float flushf(float x) noexcept nogil:
    """The float32 flush: x, or exactly 0.0f when abs(x) < FLUSH_BELOW rounded to float32
    (NumPy compares a float32 array with the Python float FLUSH_BELOW in float32)."""
    return 0.0 if fabsf(x) < <float>FLUSH_BELOW else x
