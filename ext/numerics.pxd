# cython: language_level=3
"""Numerical helpers shared by every compiled kernel (mirrored by snn_frontend/numerics.py).

No kernel does subnormal arithmetic: state that decays toward zero is flushed to exactly
zero once its magnitude falls below FLUSH_BELOW (1e-30), far below anything that can change
a spike. On Intel cores every operation on a subnormal costs about a hundred cycles.
"""
from libc.math cimport fabs

cdef extern from *:
    """
    static const double ACCEL_SIM_FLUSH_BELOW = 1e-30;
    """
    const double FLUSH_BELOW "ACCEL_SIM_FLUSH_BELOW"


cdef inline double flush(double x) noexcept nogil:
    """x, or exactly 0.0 when 0 < abs(x) < FLUSH_BELOW (a NaN is kept)."""
    return 0.0 if fabs(x) < FLUSH_BELOW else x
