"""Price a phase: dynamic = sum(count x pJ), static = power x simulated time.

Dynamic and static energy are kept apart, per component class and per action;
pricing is pure (counts and cycles in, numbers out), so a finished run can be
re-priced with another table without re-simulating.
"""
from __future__ import annotations

from ..registry import COMPONENTS
from .table import ResolvedTable

__all__ = ["price_phase"]

CLASSES = tuple(COMPONENTS)


def price_phase(counts: dict[str, int], latency_cycles: int, clock_mhz: float,
                table: ResolvedTable, *, samples: int, presentations: int,
                time_steps: int) -> dict:
    """`counts` maps "class.action" -> n. Returns the stats.json `hardware.phases.<p>` dict."""
    latency_s = latency_cycles / (clock_mhz * 1e6)
    pj_per_action, dyn = {}, {c: 0.0 for c in CLASSES}
    for key, n in counts.items():
        comp, action = key.split(".", 1)
        e = table.pj[comp, action]
        pj_per_action[key] = e
        dyn[comp] += n * e
    static = {c: table.static_mw.get(c, 0.0) * 1e-3 * latency_s * 1e12 for c in CLASSES}
    by_comp = {c: {"dynamic": dyn[c], "static": static[c], "total": dyn[c] + static[c]}
               for c in CLASSES}
    total_dyn, total_static = sum(dyn.values()), sum(static.values())
    total = total_dyn + total_static
    n = max(samples, 1)
    return {
        "samples": samples, "presentations": presentations, "time_steps": time_steps,
        "latency_cycles": int(latency_cycles), "latency_s": latency_s,
        "energy_pj": {"total": total, "dynamic": total_dyn, "static": total_static,
                      "by_component": by_comp},
        "energy_per_sample_pj": total / n, "latency_per_sample_s": latency_s / n,
        "edp_pj_s": (total / n) * (latency_s / n),
        "counts": dict(sorted(counts.items())), "pj_per_action": dict(sorted(pj_per_action.items())),
        "static_mw": {c: table.static_mw.get(c, 0.0) for c in CLASSES},
    }
