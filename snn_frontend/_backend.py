"""Pick the compiled kernels or the NumPy reference, once per process.

`ACCEL_SIM_BACKEND=numpy` forces the reference; `cython` requires the compiled
module (ImportError otherwise); unset or `auto` uses the compiled module when it
was built and warns once when it falls back.
"""
from __future__ import annotations

import logging
import os
from functools import lru_cache
from types import ModuleType

from . import _reference

__all__ = ["kernels", "BACKENDS"]

BACKENDS = ("cython", "numpy")
_log = logging.getLogger("snn_frontend")


@lru_cache(maxsize=None)
def _compiled() -> tuple[ModuleType | None, str]:
    """The compiled kernel module, or None and why not (imported once per process)."""
    try:
        from . import _dc_kernels
    except ImportError as exc:
        return None, str(exc)
    return _dc_kernels, ""


@lru_cache(maxsize=None)
def _warn_fallback(reason: str) -> None:
    _log.warning("compiled kernels not available (%s); using the slow NumPy reference", reason)


def kernels(backend: str | None = None) -> tuple[str, ModuleType]:
    """Return (name, module) of the kernel implementation to use.

    `backend` is "auto", "cython" or "numpy"; None reads ACCEL_SIM_BACKEND.
    """
    choice = (backend or os.environ.get("ACCEL_SIM_BACKEND") or "auto").lower()
    if choice not in ("auto", "cython", "numpy"):
        raise ValueError(f"unknown backend {choice!r}; choose 'auto', 'cython' or 'numpy'")
    if choice == "numpy":
        return "numpy", _reference
    module, reason = _compiled()
    if module is None:
        if choice == "cython":
            raise ImportError(
                f"the compiled kernels (snn_frontend._dc_kernels) are not built ({reason}); "
                "reinstall with a C compiler (pip install -e .) or use backend 'numpy'")
        _warn_fallback(reason)
        return "numpy", _reference
    return "cython", module
