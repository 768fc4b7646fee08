"""Numerical rules every kernel follows, in NumPy (the compiled side: `ext/numerics.pxd`).

**No subnormal arithmetic.** A state variable that decays toward zero (a conductance, an
STDP trace, a leaky weight) is set to exactly zero once its magnitude falls below
`FLUSH_BELOW`. Without this, silent neurons' traces sink through the subnormal range
(down to 5e-324) during long rests, and every operation on a subnormal costs about a
hundred cycles on Intel cores (docs/equations.md, "Flush to zero"). The threshold is far
below anything that can change a spike: a conductance of 1e-30 moves a membrane by
about 1e-30 mV.

`flush` is applied at exactly the points where the compiled kernels call their `flush`,
so both stay bit-identical; `subnormals` is what the tests check every kernel's state with.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

__all__ = ["FLUSH_BELOW", "flush", "flush_inplace", "subnormal_count", "subnormals"]

#: magnitude below which decaying state is set to exactly 0 (ext/numerics.pxd: same value)
FLUSH_BELOW = 1e-30


def flush(x):
    """x with every entry of magnitude below FLUSH_BELOW set to 0.0 (NaN is kept)."""
    return np.where(np.abs(x) < FLUSH_BELOW, 0.0, x)


def flush_inplace(x: np.ndarray) -> None:
    """Flush a float array in place."""
    x[np.abs(x) < FLUSH_BELOW] = 0


def subnormal_count(x: np.ndarray) -> int:
    """Number of subnormal entries (0 < |x| < finfo.tiny) of a float array; 0 for integers."""
    x = np.asarray(x)
    if x.dtype.kind != "f":
        return 0
    a = np.abs(x)
    return int(np.count_nonzero((a > 0) & (a < np.finfo(x.dtype).tiny)))


def subnormals(arrays: Mapping[str, np.ndarray]) -> dict[str, int]:
    """{name: subnormal count} of the arrays that hold any (empty when none does)."""
    counts = {name: subnormal_count(a) for name, a in arrays.items()}
    return {name: n for name, n in counts.items() if n}
