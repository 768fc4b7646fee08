"""The machine a run or benchmark ran on: speed depends on the CPU model.

Intel and AMD cores differ by orders of magnitude on some operations (subnormal
arithmetic costs ~100 cycles on Intel), so every `run.json` and benchmark JSON records
the CPU model next to its timings.
"""
from __future__ import annotations

import os
import platform
import resource
import sys

__all__ = ["cpu_model", "machine_info", "peak_rss_mib"]


def cpu_model(cpuinfo: str = "/proc/cpuinfo") -> str:
    """The CPU's model name (from `cpuinfo` on Linux, else `platform.processor()`)."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def machine_info() -> dict:
    """{cpu_model, cpu_count, machine, platform}: where a timing was taken."""
    return {"cpu_model": cpu_model(), "cpu_count": os.cpu_count(),
            "machine": platform.machine(), "platform": platform.platform()}


def peak_rss_mib() -> dict:
    """{this_process, largest_child}: the peak resident memory (MiB) of this process and of
    the largest child process it has waited for (the chip replay's finished workers; a
    forked helper counts the memory it shared with this process)."""
    unit = 1 / 2**20 if sys.platform == "darwin" else 1 / 2**10  # ru_maxrss: bytes | KiB
    return {"this_process": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * unit, 1),
            "largest_child": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * unit,
                                   1)}
