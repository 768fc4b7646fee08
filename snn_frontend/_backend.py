"""Pick the compiled kernels or their NumPy reference, once per process and kernel family.

Families: "dc" (the Diehl & Cook kernels, `_dc_kernels` / `_reference`), "bptt" (the
surrogate-gradient kernels, `_bptt_kernels` / `_bptt_reference`), "nir" (imported
networks' populations, `_nir_kernels` / `_nir_reference`), "event" (the chip's `event`
fidelity, `accel_sim.chip._event_kernels` / `accel_sim.chip.event`), "des" (the `simpy`
fidelity's calendar of arrivals, `accel_sim.chip._des_kernels` / `accel_sim.chip.arrivals`)
and "steps" (the cores' load per step every fidelity reads, `accel_sim.chip._step_kernels`
/ `accel_sim.chip.steps`).
Modules are imported when first asked for.

`ACCEL_SIM_BACKEND=numpy` forces the reference; `cython` requires the compiled
module (ImportError otherwise); unset or `auto` uses the compiled module when it
was built and warns once when it falls back.
"""
from __future__ import annotations

import importlib
import logging
import os
from functools import cache
from types import ModuleType

__all__ = ["BACKENDS", "kernels"]

BACKENDS = ("cython", "numpy")
#: kernel family -> (compiled module, its NumPy reference)
FAMILIES = {"dc": ("snn_frontend._dc_kernels", "snn_frontend._reference"),
            "bptt": ("snn_frontend._bptt_kernels", "snn_frontend._bptt_reference"),
            "nir": ("snn_frontend._nir_kernels", "snn_frontend._nir_reference"),
            "event": ("accel_sim.chip._event_kernels", "accel_sim.chip.event"),
            "des": ("accel_sim.chip._des_kernels", "accel_sim.chip.arrivals"),
            "steps": ("accel_sim.chip._step_kernels", "accel_sim.chip.steps")}
_log = logging.getLogger("snn_frontend")


@cache
def _compiled(family: str) -> tuple[ModuleType | None, str]:
    """The compiled kernel module of a family, or None and why not (imported once)."""
    try:
        return importlib.import_module(FAMILIES[family][0]), ""
    except ImportError as exc:
        return None, str(exc)


@cache
def _warn_fallback(reason: str) -> None:
    _log.warning("compiled kernels not available (%s); using the slow NumPy reference", reason)


def kernels(backend: str | None = None, family: str = "dc") -> tuple[str, ModuleType]:
    """Return (name, module) of the kernel implementation of `family` to use.

    `backend` is "auto", "cython" or "numpy"; None reads ACCEL_SIM_BACKEND.
    """
    choice = (backend or os.environ.get("ACCEL_SIM_BACKEND") or "auto").lower()
    if choice not in ("auto", "cython", "numpy"):
        raise ValueError(f"unknown backend {choice!r}; choose 'auto', 'cython' or 'numpy'")
    if choice == "numpy":
        return "numpy", importlib.import_module(FAMILIES[family][1])
    module, reason = _compiled(family)
    if module is None:
        if choice == "cython":
            raise ImportError(
                f"the compiled kernels ({FAMILIES[family][0]}) are not built ({reason}); "
                "reinstall with a C compiler (pip install -e .) or use backend 'numpy'")
        _warn_fallback(reason)
        return "numpy", importlib.import_module(FAMILIES[family][1])
    return "cython", module
