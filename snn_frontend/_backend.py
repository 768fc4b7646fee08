"""Pick the compiled kernels or the NumPy reference, once per process.

`ACCEL_SIM_BACKEND=numpy` forces the reference; `cython` requires the compiled
module (ImportError otherwise); unset or `auto` uses the compiled module when it
was built and warns once when it falls back.
"""
from __future__ import annotations

import logging
import os
from types import ModuleType

from . import _reference

__all__ = ["kernels", "BACKENDS"]

BACKENDS = ("cython", "numpy")
_log = logging.getLogger("snn_frontend")


def kernels(backend: str | None = None) -> tuple[str, ModuleType]:
    """Return (name, module) of the kernel implementation to use.

    `backend` is "auto", "cython" or "numpy"; None reads ACCEL_SIM_BACKEND.
    """
    choice = (backend or os.environ.get("ACCEL_SIM_BACKEND") or "auto").lower()
    if choice not in ("auto", "cython", "numpy"):
        raise ValueError(f"unknown backend {choice!r}; choose 'auto', 'cython' or 'numpy'")
    if choice == "numpy":
        return "numpy", _reference
    try:
        from . import _dc_kernels
    except ImportError as exc:
        if choice == "cython":
            raise ImportError(
                "the compiled kernels (snn_frontend._dc_kernels) are not built; reinstall with a "
                "C compiler (pip install --force-reinstall --no-cache-dir .) or use backend 'numpy'"
            ) from exc
        _log.warning("compiled kernels not available (%s); using the slow NumPy reference", exc)
        return "numpy", _reference
    return "cython", _dc_kernels
