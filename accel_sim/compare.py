"""Compare two finished runs: ratios B/A of memory, energy, latency and accuracy.

`accel-sim compare RUN_A RUN_B` writes compare.json and compare.md (into RUN_B
unless --out is given) and prints the table. A ratio below 1 means B is
smaller; the "A/B" column is the saving factor the papers quote (7.5x memory...).
"""
from __future__ import annotations

from pathlib import Path

from .errors import RunError
from .registry import PHASES
from .report import write_json, write_text
from .run.rundir import read_stats

__all__ = ["compare_runs", "format_compare"]


def _ratio(b, a):
    if a is None or b is None:
        return None
    if a == 0:
        return None if b == 0 else float("inf")
    return b / a


def _row(name: str, a, b) -> dict:
    r = _ratio(b, a)
    inv = _ratio(a, b)
    return {"quantity": name, "a": a, "b": b, "b_over_a": r, "a_over_b": inv}


def compare_runs(run_a: str | Path, run_b: str | Path) -> dict:
    sa, sb = (read_stats(Path(r)) for r in (run_a, run_b))
    rows = [_row("memory.total_bytes", sa["memory"]["total_bytes"], sb["memory"]["total_bytes"]),
            _row("memory.weight_bytes", sum(sa["memory"]["weight_bytes"].values()),
                 sum(sb["memory"]["weight_bytes"].values()))]
    acc_a, acc_b = sa.get("accuracy", {}), sb.get("accuracy", {})
    for key in ("test", "newest_mean", "earlier_mean"):
        if acc_a.get(key) is not None and acc_b.get(key) is not None:
            rows.append(_row(f"accuracy.{key}", acc_a[key], acc_b[key]))
    ha = (sa.get("hardware") or {}).get("phases", {})
    hb = (sb.get("hardware") or {}).get("phases", {})
    skipped = [f"{phase}: only in {'A' if phase in ha else 'B'} (its rows are not compared)"
               for phase in PHASES if (phase in ha) != (phase in hb)]
    for phase in PHASES:
        if phase not in ha or phase not in hb:
            continue
        pa, pb = ha[phase], hb[phase]
        rows.append(_row(f"{phase}.energy_per_sample_pj", pa["energy_per_sample_pj"],
                         pb["energy_per_sample_pj"]))
        for part in ("dynamic", "static"):
            rows.append(_row(f"{phase}.energy_pj.{part}_per_sample",
                             pa["energy_pj"][part] / max(pa["samples"], 1),
                             pb["energy_pj"][part] / max(pb["samples"], 1)))
        for comp in pa["energy_pj"]["by_component"]:
            rows.append(_row(f"{phase}.{comp}.energy_per_sample_pj",
                             pa["energy_pj"]["by_component"][comp]["total"] / max(pa["samples"], 1),
                             pb["energy_pj"]["by_component"][comp]["total"] / max(pb["samples"], 1)))
        rows.append(_row(f"{phase}.latency_per_sample_s", pa["latency_per_sample_s"],
                         pb["latency_per_sample_s"]))
    fa, fb = sa.get("frontend", {}), sb.get("frontend", {})
    for phase in ("train", "infer"):
        if phase in fa and phase in fb:
            for key in ("synaptic_events", "neuron_updates", "weight_updates", "exc_spikes"):
                a, b = fa[phase]["per_sample"].get(key), fb[phase]["per_sample"].get(key)
                if a is not None and b is not None:
                    rows.append(_row(f"{phase}.frontend.{key}_per_sample", a, b))
    def who(stats):
        hw = stats.get("hardware") or {}
        return {"model": (stats.get("model") or {}).get("network"), "chip": hw.get("chip"),
                "energy_table": hw.get("energy_table")}

    return {"run_a": str(run_a), "run_b": str(run_b), "a": who(sa), "b": who(sb), "rows": rows,
            "not_compared": skipped}


def _fmt(x) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.4g}"
    return str(x)


def format_compare(result: dict) -> str:
    def who(x: dict) -> str:
        parts = [f"{k} {v}" for k, v in x.items() if v]
        return f" ({', '.join(parts)})" if parts else ""

    lines = [f"A = {result['run_a']}{who(result.get('a', {}))}",
             f"B = {result['run_b']}{who(result.get('b', {}))}",
             *[f"not compared: {s}" for s in result.get("not_compared", [])], "",
             "| quantity | A | B | B/A | A/B |", "| --- | ---: | ---: | ---: | ---: |"]
    for r in result["rows"]:
        lines.append(f"| {r['quantity']} | {_fmt(r['a'])} | {_fmt(r['b'])} | "
                     f"{_fmt(r['b_over_a'])} | {_fmt(r['a_over_b'])} |")
    return "\n".join(lines) + "\n"


def write_compare(run_a, run_b, out: str | Path | None = None) -> tuple[Path, str]:
    result = compare_runs(run_a, run_b)
    dest = Path(out) if out else Path(run_b)
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunError(f"cannot create {dest}: {exc.strerror or exc}") from None
    text = format_compare(result)
    write_json(dest / "compare.json", result)
    write_text(dest / "compare.md", text)
    return dest, text
