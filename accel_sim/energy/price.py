"""Price a phase: dynamic = sum(count x pJ), static = power x simulated time, less what
units in low-power states saved (SRAM banks in retention or off: registry.DURATIONS).

Dynamic and static energy are kept apart, per component class and per action;
pricing is pure (counts and cycles in, numbers out), so a finished run can be
re-priced with another table without re-simulating.
"""
from __future__ import annotations

from ..registry import COMPONENTS, DURATIONS
from .table import ResolvedTable

__all__ = ["price_instances", "price_phase"]

CLASSES = tuple(COMPONENTS)


def _actions(counts: dict[str, int]) -> dict[str, int]:
    """The counts of actions (priced per action), without the durations."""
    return {k: n for k, n in counts.items() if k not in DURATIONS}


def _saved_pj(counts: dict[str, int], comp: str, table: ResolvedTable,
              clock_mhz: float) -> float:
    """Static energy the class's units saved in low-power states (registry.DURATIONS)."""
    return sum(n * table.saved_pj_per_cycle(k, clock_mhz) for k, n in counts.items()
               if n and k in DURATIONS and k.startswith(f"{comp}."))


def price_phase(counts: dict[str, int], latency_cycles: int, clock_mhz: float,
                table: ResolvedTable, *, samples: int, presentations: int,
                time_steps: int) -> dict:
    """`counts` maps "class.action" -> n. Returns the stats.json `hardware.phases.<p>` dict."""
    latency_s = latency_cycles / (clock_mhz * 1e6)
    pj_per_action, dyn = {}, {c: 0.0 for c in CLASSES}
    for key, n in _actions(counts).items():
        comp, action = key.split(".", 1)
        e = table.pj[comp, action]
        pj_per_action[key] = e
        dyn[comp] += n * e
    for key in counts.keys() & DURATIONS.keys():  # minus the static energy a unit saves
        pj_per_action[key] = -table.saved_pj_per_cycle(key, clock_mhz) if counts[key] else 0.0
    static = {c: table.static_mw.get(c, 0.0) * 1e-3 * latency_s * 1e12
              - _saved_pj(counts, c, table, clock_mhz) for c in CLASSES}
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
    x simulated time (a core carries its SRAM's, less what its banks saved in low-power
    states). Instances add up to the phase: every action's counts are split without
    remainder (`unattributed` holds what is not)."""
    latency_s = latency_cycles / (clock_mhz * 1e6)
    C, tiles = inst["cores"], inst["tiles"]
    width, per_tile = inst["mesh"][0], inst["cores_per_tile"]

    def static_pj(cls: str, share: int) -> float:
        return table.static_mw.get(cls, 0.0) * 1e-3 * latency_s * 1e12 / share

    def entry(name, kind, counts, static, busy=None, tile=None):
        dyn = sum(n * table.pj[key.split(".", 1)[0], key.split(".", 1)[1]]
                  for key, n in _actions(counts).items())
        out = {"name": name, "kind": kind, "counts": counts,
               "energy_pj": {"dynamic": dyn, "static": static, "total": dyn + static}}
        if tile is not None:
            x, y = inst["tile_xy"][tile] if "tile_xy" in inst else (tile % width, tile // width)
            out.update(tile=tile, x=x, y=y)
        if busy is not None:
            out.update(busy_cycles=int(busy),
                       utilisation=busy / latency_cycles if latency_cycles else 0.0)
        return out

    def core(i: int) -> dict:
        counts = {a: v[i] for a, v in inst["core"].items() if v[i]}
        static = (static_pj("core", C) + static_pj("sram", C)
                  - _saved_pj(counts, "sram", table, clock_mhz))
        return entry(f"core[{i}]", "core", counts, static, inst["core_busy_cycles"][i],
                     i // per_tile)

    cores = [core(i) for i in range(C)]
    routers = [entry(f"router[{t}]", "router",
                     {a: v[t] for a, v in inst["router"].items() if v[t]},
                     static_pj("router", tiles), tile=t) for t in range(tiles)]
    flits = inst["link_flits"]  # per link (a single number in results before systems)
    flits = flits if isinstance(flits, list) else [flits] * len(inst["links"])
    links = [{"name": name, "kind": "link", "messages": n, "busy_cycles": n * f,
              "utilisation": n * f / latency_cycles if latency_cycles else 0.0}
             for name, n, f in zip(inst["links"], inst["link_messages"], flits)]
    others = [entry("dram[0]", "dram", inst["dram"], static_pj("dram", 1),
                    inst["dram_busy_cycles"]),
              entry("chip", "chip", inst["chip"], static_pj("chip", 1))]
    if inst["unattributed"]:
        others.append(entry("unattributed", "unattributed", inst["unattributed"], 0.0))
    return {"cores": cores, "routers": routers, "links": links, "others": others}
