"""Tables of a run's hardware cost: tidy energy rows, energy.csv and a summary.

Everything here presents numbers already computed by the chip model
(`stats["hardware"]`); nothing is re-derived except the static energy per cycle
of a component class, static_mw * 1e-3 W / clock_hz * 1e12 pJ/J, shown next to
its static energy so a static row reads like an action row (count = cycles).
"""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from .registry import DURATIONS
from .registry import PHASES as PHASE_ORDER
from .report import _line, write_text

__all__ = ["CSV_FIELDS", "PHASE_ORDER", "energy_rows", "format_hardware_summary", "hottest",
           "instance_rows", "write_energy_csv", "write_instance_csv"]

CSV_FIELDS = ("phase", "component", "action", "count", "pj_per_action", "energy_pj")

_TOP_ACTIONS = 5


def _phases(hardware: dict) -> list[tuple[str, dict]]:
    """(name, phase dict) in the order train, label, infer; unknown phases after, by name."""
    phases = hardware.get("phases") or {}
    known = [p for p in PHASE_ORDER if p in phases]
    extra = sorted(p for p in phases if p not in PHASE_ORDER)
    return [(p, phases[p]) for p in known + extra]


def _static_pj_per_cycle(static_mw: float, clock_mhz: float) -> float:
    """mW -> pJ per clock cycle: static_mw * 1e-3 W * (1 / clock_hz) s * 1e12 pJ/J."""
    clock_hz = float(clock_mhz) * 1e6
    if clock_hz <= 0:
        raise ValueError(f"hardware.clock_mhz must be positive, got {clock_mhz!r}")
    return float(static_mw) * 1e-3 / clock_hz * 1e12


def energy_rows(hardware: dict) -> list[dict[str, Any]]:
    """Tidy rows `phase, component, action, count, pj_per_action, energy_pj`.

    One row per (phase, "class.action") count with energy_pj = count * pj_per_action
    (a duration's pj_per_action is minus the static energy a unit saves per cycle in its
    low-power state: registry.DURATIONS), and one row per (phase, component class) with
    action "static": count = the phase's latency_cycles, pj_per_action = the class's
    static energy per cycle, energy_pj = that x count (by_component[class]["static"]
    with the savings added back): the rows add up to the phase's total. Sorted by
    phase (train, label, infer), then component, then action (plain string order).
    """
    clock_mhz = hardware.get("clock_mhz")
    rows: list[dict[str, Any]] = []
    for phase, ph in _phases(hardware):
        counts = ph.get("counts") or {}
        pj = ph.get("pj_per_action") or {}
        phase_rows = []
        for key, count in counts.items():
            component, sep, action = key.partition(".")
            if not sep or not component or not action:
                raise ValueError(f"hardware.phases.{phase}.counts: key {key!r} "
                                 "is not 'class.action'")
            if key not in pj:
                raise ValueError(f"hardware.phases.{phase}.pj_per_action has no {key!r}")
            e = float(pj[key])
            phase_rows.append({"phase": phase, "component": component, "action": action,
                               "count": int(count), "pj_per_action": e,
                               "energy_pj": int(count) * e})
        by_component = (ph.get("energy_pj") or {}).get("by_component") or {}
        static_mw = ph.get("static_mw") or {}
        cycles = int(ph.get("latency_cycles", 0))
        for component in by_component:  # static power x time, before what units in
            saved = sum(r["energy_pj"] for r in phase_rows  # low-power states saved
                        if f"{r['component']}.{r['action']}" in DURATIONS
                        and r["component"] == component)
            phase_rows.append({
                "phase": phase, "component": component, "action": "static", "count": cycles,
                "pj_per_action": _static_pj_per_cycle(static_mw.get(component, 0.0), clock_mhz),
                "energy_pj": float(by_component[component].get("static", 0.0)) - saved})
        phase_rows.sort(key=lambda r: (r["component"], r["action"]))
        rows.extend(phase_rows)
    return rows


def write_energy_csv(hardware: dict, path) -> Path:
    """Write `energy_rows(hardware)` as CSV (header CSV_FIELDS), atomically."""
    path = Path(path)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(CSV_FIELDS), lineterminator="\n")
    writer.writeheader()
    writer.writerows(energy_rows(hardware))
    write_text(path, buf.getvalue())   # temp file + os.replace; OSError -> RunError
    return path


def instance_rows(hardware: dict) -> list[dict]:
    """per_core.csv: one row per phase and instance (core, router, link, DRAM channel,
    chip, unattributed): where it sits, its busy cycles and utilisation, its energy per
    sample and, per action, its count (`count.<kind.action>`)."""
    rows = []
    for phase, ph in _phases(hardware):
        per = ph.get("per_instance")
        if not per:
            continue
        n = max(int(ph.get("samples", 0)), 1)
        for group in ("cores", "routers", "links", "others"):
            for e in per[group]:
                row = {"phase": phase, "instance": e["name"], "kind": e["kind"],
                       "tile": e.get("tile", ""), "x": e.get("x", ""), "y": e.get("y", ""),
                       "busy_cycles": e.get("busy_cycles", ""),
                       "utilisation": e.get("utilisation", ""),
                       "messages": e.get("messages", "")}
                energy = e.get("energy_pj")
                for k in ("dynamic", "static", "total"):
                    row[f"{k}_pj_per_sample"] = energy[k] / n if energy else ""
                for action, c in (e.get("counts") or {}).items():
                    row[f"count.{action}"] = c
                rows.append(row)
    return rows


def write_instance_csv(hardware: dict, path) -> Path | None:
    """Write `instance_rows(hardware)` as CSV, atomically; None when there are none."""
    rows = instance_rows(hardware)
    if not rows:
        return None
    fields: list[str] = []
    for r in rows:
        fields += [k for k in r if k not in fields]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n", restval=0)
    writer.writeheader()
    writer.writerows(rows)
    write_text(Path(path), buf.getvalue())
    return Path(path)


# --------------------------------------------------------------------- summary

_PHASE_KEYS = (
    ("samples", "samples presented"),
    ("presentations", "incl. re-presentations"),
    ("time_steps", "simulated time steps"),
    ("latency_cycles", "clock cycles"),
    ("latency_s", "seconds at the chip clock"),
    ("latency_per_sample_s", "seconds per sample"),
    ("energy_per_sample_pj", "pJ per sample"),
    ("edp_pj_s", "energy-delay product, pJ s"),
)


def _share(part: float, whole: float) -> float:
    return 100.0 * part / whole if whole else 0.0


def _num(v: float, width: int) -> str:
    return f"{v:>{width}.6g}"


def _component_table(phase: str, ph: dict, rows: list[dict]) -> list[str]:
    energy = ph.get("energy_pj") or {}
    total = float(energy.get("total", 0.0))
    by_component = energy.get("by_component") or {}
    out = [f"# {phase}: energy by component, {ph.get('samples', '?')} samples",
           (f"#   {'component':<12}{'dynamic pJ':>14}{'static pJ':>14}{'total pJ':>14}"
            f"{'share %':>10}")]
    ranked = sorted(by_component.items(),
                    key=lambda kv: (-float(kv[1].get("total", 0.0)), kv[0]))
    for name, c in ranked:
        t = float(c.get("total", 0.0))
        out.append(f"#   {name:<12}{_num(float(c.get('dynamic', 0.0)), 14)}"
                   f"{_num(float(c.get('static', 0.0)), 14)}{_num(t, 14)}"
                   f"{_share(t, total):>10.1f}")
    if ranked:
        name, c = ranked[0]
        out.append(f"#   dominant component: {name} "
                   f"({_share(float(c.get('total', 0.0)), total):.1f} % of {phase} energy)")
    top = sorted((r for r in rows if r["phase"] == phase and r["action"] != "static"
                  and r["energy_pj"] > 0),
                 key=lambda r: (-r["energy_pj"], r["component"], r["action"]))[:_TOP_ACTIONS]
    if top:
        out.append(f"#   {'top dynamic actions':<24}{'count':>14}{'pJ/action':>12}{'energy pJ':>14}"
                   f"{'share %':>10}")
        for r in top:
            name = f"{r['component']}.{r['action']}"
            out.append(f"#   {name:<24}{r['count']:>14}{_num(r['pj_per_action'], 12)}"
                       f"{_num(r['energy_pj'], 14)}{_share(r['energy_pj'], total):>10.1f}")
    return out


def hottest(per_instance: dict) -> tuple[dict, dict | None]:
    """The core with the most energy and the link with the highest utilisation (None
    without links)."""
    core = max(per_instance["cores"], key=lambda e: e["energy_pj"]["total"])
    link = max(per_instance["links"], key=lambda e: e["utilisation"], default=None)
    return core, link


def _instance_lines(phase: str, ph: dict) -> list[str]:
    """The hottest core and the busiest link of a phase (per_core.csv has every one)."""
    per = ph.get("per_instance")
    if not per:
        return []
    core, link = hottest(per)
    n = max(int(ph.get("samples", 0)), 1)
    out = [_line(f"hardware.{phase}.hottest_core", core["name"],
                 f"tile ({core['x']}, {core['y']}): {core['energy_pj']['total'] / n:.4g} pJ "
                 f"per sample, {core['utilisation'] * 100:.1f} % busy")]
    if link is not None:
        out.append(_line(f"hardware.{phase}.busiest_link", link["name"],
                         f"{link['utilisation'] * 100:.2f} % busy, {link['messages']} messages"))
    return out


def _sampled_lines(phase: str, ph: dict) -> list[str]:
    """A sampled replay's design and the interval of each estimated figure."""
    sm, iv = ph.get("sampled"), ph.get("interval")
    if not sm or not iv:
        return []
    pct = f"{iv['level'] * 100:g} %"
    out = [_line(f"hardware.{phase}.sampled.presentations", sm["presentations"],
                 f"of {sm['of']} replayed at {sm['fidelity']}, all at {sm['auxiliary']}"),
           _line(f"hardware.{phase}.sampled.ratio", float(sm["ratio"]),
                 f"{sm['fidelity']} / {sm['auxiliary']} cycles over the sample")]
    for key, unit in (("latency_cycles", "cycles"), ("latency_per_sample_s", "s"),
                      ("energy_pj", "pJ"), ("energy_per_sample_pj", "pJ")):
        lo, hi = iv[key]
        out += [_line(f"hardware.{phase}.{key}.lo", float(lo), f"{pct} interval, {unit}"),
                _line(f"hardware.{phase}.{key}.hi", float(hi), f"{pct} interval, {unit}")]
    return out


def format_hardware_summary(hardware: dict) -> str:
    """gem5-style `hardware.*   value   # meaning` lines, then per phase a table of
    energy by component (total descending, dominant named) and the top dynamic
    actions (static energy is already in the component table)."""
    out = ["---------- Begin Hardware Statistics ----------",
           _line("hardware.chip", hardware.get("chip", ""), "chip configuration"),
           _line("hardware.energy_table", hardware.get("energy_table", ""),
                 str(hardware.get("technology", ""))),
           _line("hardware.basis", hardware.get("basis", ""), "basis of the energy numbers"),
           _line("hardware.fidelity", hardware.get("fidelity", ""), "timing model"),
           _line("hardware.clock_mhz", float(hardware.get("clock_mhz", 0.0)), "MHz")]
    out += [f"# warning: {w}" for w in hardware.get("warnings", [])]
    m = hardware.get("mapping")
    if m:  # the memory report of the mapping
        util = m["sram_utilisation"]
        out += [_line("hardware.mapping.cores_used", m["cores_used"], "cores holding neurons"),
                _line("hardware.mapping.weight_bytes_total", float(m["weight_bytes_total"]),
                      "weights, all cores"),
                _line("hardware.mapping.state_bytes_per_core_max",
                      float(max(m["state_bytes_per_core"])), "neuron state"),
                _line("hardware.mapping.trace_bytes_per_core_max",
                      float(max(m["trace_bytes_per_core"])), "STDP traces"),
                _line("hardware.mapping.sram_utilisation_max", float(max(util)),
                      "weights resident / SRAM size"),
                _line("hardware.mapping.spilled_bytes_total", float(m["spilled_bytes_total"]),
                      "weights in DRAM")]
    rows = energy_rows(hardware)
    phases = _phases(hardware)
    for phase, ph in phases:
        energy = ph.get("energy_pj") or {}
        for k in ("total", "dynamic", "static"):
            if k in energy:
                out.append(_line(f"hardware.{phase}.energy_pj.{k}", float(energy[k]),
                                 f"{k} energy, pJ"))
        for k, meaning in _PHASE_KEYS:
            if k in ph:
                v = ph[k]
                out.append(_line(f"hardware.{phase}.{k}",
                                 float(v) if isinstance(v, float) else v, meaning))
        out += _sampled_lines(phase, ph) + _instance_lines(phase, ph)
    for phase, ph in phases:
        out.append("")
        out.extend(_component_table(phase, ph, rows))
    out.append("---------- End Hardware Statistics   ----------")
    return "\n".join(out) + "\n"
