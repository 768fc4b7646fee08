"""Price a phase: dynamic = sum(count x pJ), static = power x simulated time.

Dynamic and static energy are kept apart, per component class and per action;
pricing is pure (counts and cycles in, numbers out), so a finished run can be
re-priced with another table without re-simulating.
"""
from __future__ import annotations

from ..registry import COMPONENTS
from .table import ResolvedTable

__all__ = ["price_instances", "price_phase"]

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


def price_instances(inst: dict, latency_cycles: float, clock_mhz: float,
                    table: ResolvedTable) -> dict:
    """Energy, busy cycles and utilisation of each instance (chip/instances.py totals):
    dynamic = its counts x pJ; static = its class's static power / the class's instances
    x simulated time (a core carries its SRAM's). Instances add up to the phase: every
    action's counts are split without remainder (`unattributed` holds what is not)."""
    latency_s = latency_cycles / (clock_mhz * 1e6)
    C, tiles = inst["cores"], inst["tiles"]
    width, per_tile = inst["mesh"][0], inst["cores_per_tile"]

    def static_pj(cls: str, share: int) -> float:
        return table.static_mw.get(cls, 0.0) * 1e-3 * latency_s * 1e12 / share

    def entry(name, kind, counts, static, busy=None, tile=None):
        dyn = sum(n * table.pj[key.split(".", 1)[0], key.split(".", 1)[1]]
                  for key, n in counts.items())
        out = {"name": name, "kind": kind, "counts": counts,
               "energy_pj": {"dynamic": dyn, "static": static, "total": dyn + static}}
        if tile is not None:
            out.update(tile=tile, x=tile % width, y=tile // width)
        if busy is not None:
            out.update(busy_cycles=int(busy),
                       utilisation=busy / latency_cycles if latency_cycles else 0.0)
        return out

    cores = [entry(f"core[{i}]", "core", {a: v[i] for a, v in inst["core"].items() if v[i]},
                   static_pj("core", C) + static_pj("sram", C), inst["core_busy_cycles"][i],
                   i // per_tile) for i in range(C)]
    routers = [entry(f"router[{t}]", "router",
                     {a: v[t] for a, v in inst["router"].items() if v[t]},
                     static_pj("router", tiles), tile=t) for t in range(tiles)]
    flits = inst["link_flits"]
    links = [{"name": name, "kind": "link", "messages": n, "busy_cycles": n * flits,
              "utilisation": n * flits / latency_cycles if latency_cycles else 0.0}
             for name, n in zip(inst["links"], inst["link_messages"])]
    others = [entry("dram[0]", "dram", inst["dram"], static_pj("dram", 1),
                    inst["dram_busy_cycles"]),
              entry("chip", "chip", inst["chip"], static_pj("chip", 1))]
    if inst["unattributed"]:
        others.append(entry("unattributed", "unattributed", inst["unattributed"], 0.0))
    return {"cores": cores, "routers": routers, "links": links, "others": others}
