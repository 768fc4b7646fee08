"""A sweep's results: one row per point from its run directory, `results.csv`, the Pareto
fronts, `pareto.png` and `summary.md`."""
from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable
from pathlib import Path

from ..report import write_text

__all__ = [
    "INFER_ENERGY",
    "INFER_LATENCY",
    "pareto_front",
    "plot_pareto",
    "point_row",
    "write_csv",
    "write_summary",
]

INFER_ENERGY = "infer.energy_per_sample_pj"
INFER_LATENCY = "infer.latency_per_sample_s"


def point_row(point, status: str, error: str, wall_s: float, stats: dict | None,
              run_dir: str) -> dict:
    """The results.csv row of a point: its swept values, then its figures (per sample)."""
    row = {"point": point.id, "index": point.index, **point.values, "status": status,
           "error": error, "wall_s": round(wall_s, 3), "run_dir": run_dir}
    if not stats:
        return row
    acc = stats.get("accuracy", {})
    row["accuracy"] = acc.get("test")
    mem = stats.get("memory", {})
    row["memory_bytes"] = mem.get("total_bytes")
    hw = stats.get("hardware") or {}
    mapping = hw.get("mapping", {})
    row["cores_used"] = mapping.get("cores_used")
    row["sram_spill_bytes"] = mapping.get("spilled_bytes_total")
    for phase, ph in hw.get("phases", {}).items():
        row[f"{phase}.energy_per_sample_pj"] = ph["energy_per_sample_pj"]
        row[f"{phase}.latency_per_sample_s"] = ph["latency_per_sample_s"]
        row[f"{phase}.edp_pj_s"] = ph["edp_pj_s"]
        if "interval" in ph:  # a sampled replay's 95 % interval (run.chip_sample)
            for key in ("energy_per_sample_pj", "latency_per_sample_s"):
                row[f"{phase}.{key}.lo"], row[f"{phase}.{key}.hi"] = ph["interval"][key]
        n = max(ph["samples"], 1)
        for comp, e in ph["energy_pj"]["by_component"].items():
            row[f"{phase}.{comp}_pj"] = e["total"] / n
    return row


def _columns(rows: list[dict]) -> list[str]:
    cols: list[str] = []
    for r in rows:
        cols += [k for k in r if k not in cols]
    return cols


def write_csv(rows: list[dict], path: Path) -> None:
    """results.csv, rows in point order (written atomically: a kill leaves the last one)."""
    rows = sorted(rows, key=lambda r: r["index"])
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=_columns(rows), lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    write_text(path, buf.getvalue())


def _ok(rows: Iterable[dict], *keys: str) -> list[dict]:
    return [r for r in rows if r["status"] == "ok"
            and all(isinstance(r.get(k), (int, float)) and math.isfinite(r[k]) for k in keys)]


def pareto_front(rows: list[dict], minimise: tuple[str, ...] = (),
                 maximise: tuple[str, ...] = ()) -> list[dict]:
    """The points no other point beats on every objective (and strictly on one)."""
    rows = _ok(rows, *minimise, *maximise)

    def key(r):
        return tuple(r[k] for k in minimise) + tuple(-r[k] for k in maximise)

    front = []
    for r in rows:
        kr = key(r)
        dominated = any(all(a <= b for a, b in zip(key(o), kr)) and key(o) != kr
                        for o in rows)
        if not dominated:
            front.append(r)
    return sorted(front, key=key)


def accuracy_varies(rows: list[dict]) -> bool:
    values = {r.get("accuracy") for r in _ok(rows, "accuracy")}
    return len(values) > 1


_MARKERS = "osD^vPX*<>"


def _styles(points: list[dict], swept: list[str]) -> tuple[dict, dict, list]:
    """A colour per value of the first swept key and a marker per value of the second
    (point index -> (colour, marker)); legend handles saying which is which."""
    from matplotlib.lines import Line2D

    def values(key):
        return sorted({str(r.get(key)) for r in points}, key=lambda v: (len(v), v))

    colour_key = swept[0] if swept else None
    marker_key = swept[1] if len(swept) > 1 else None
    colours = {v: f"C{k % 10}" for k, v in enumerate(values(colour_key))} if colour_key else {}
    markers = ({v: _MARKERS[k % len(_MARKERS)] for k, v in enumerate(values(marker_key))}
               if marker_key else {})
    style = {r["index"]: (colours.get(str(r.get(colour_key)), "C0"),
                          markers.get(str(r.get(marker_key)), "o")) for r in points}
    handles = [Line2D([], [], ls="", marker="o", color=c, label=f"{colour_key} = {v}")
               for v, c in colours.items()]
    handles += [Line2D([], [], ls="", marker=m, color="0.35", label=f"{marker_key} = {v}")
                for v, m in markers.items()]
    return style, {"colour": colour_key, "marker": marker_key}, handles


def plot_pareto(rows: list[dict], path: Path, energy_key: str = INFER_ENERGY,
                latency_key: str = INFER_LATENCY, swept: list[str] = ()) -> Path | None:
    """Energy per inference vs latency per inference (and accuracy vs energy when accuracy
    varies). Every point is drawn and labelled with its index (results.csv); its colour
    is its value of the first swept key, its marker its value of the second, and the
    label adds the values of any further swept keys. Points that fall on each other are
    drawn side by side and labelled together. The Pareto front is joined. None: nothing
    to draw."""
    pts = _ok(rows, energy_key, latency_key)
    if not pts:
        return None
    from matplotlib.lines import Line2D
    from matplotlib.transforms import offset_copy


    from ..plot import new_figure, save_png

    swept = list(swept)
    style, keys, handles = _styles(pts, swept)
    rest = [k for k in swept if k not in keys.values()]
    with_acc = accuracy_varies(rows)
    fig = new_figure(figsize=(12 if with_acc else 7.5, 5.0))
    axes = fig.subplots(1, 2 if with_acc else 1, squeeze=False)[0]
    panels = [(axes[0], latency_key, 1e6, "latency per inference (µs)", energy_key, 1e-6,
               "energy per inference (µJ)", pareto_front(rows, (energy_key, latency_key)))]
    if with_acc:
        panels.append((axes[1], energy_key, 1e-6, "energy per inference (µJ)", "accuracy",
                       100.0, "test accuracy (%)",
                       pareto_front(rows, (energy_key,), ("accuracy",))))
    for ax, xk, xs, xl, yk, ys, yl, front in panels:
        ax.plot([r[xk] * xs for r in front], [r[yk] * ys for r in front], "-", color="0.75",
                lw=2.5, zorder=1)
        spots: dict[tuple, list[dict]] = {}
        for r in _ok(pts, xk, yk):
            spots.setdefault((f"{r[xk] * xs:.6g}", f"{r[yk] * ys:.6g}"), []).append(r)
        for group in spots.values():
            x, y = group[0][xk] * xs, group[0][yk] * ys
            for k, r in enumerate(group):  # side by side, 7 points apart
                dx = 7.0 * (k - (len(group) - 1) / 2)
                colour, marker = style[r["index"]]
                ax.plot([x], [y], ls="", marker=marker, color=colour, ms=7, mec="black",
                        mew=0.6 if r in front else 0.0, zorder=3,
                        transform=offset_copy(ax.transData, fig=fig, x=dx, units="points"))
            if rest:  # one line per point: its index and its further values
                label = "\n".join(f"{r['index']}: " + ", ".join(
                    f"{k.rsplit('.', 1)[-1]} {r.get(k)}" for k in rest) for r in group)
            else:
                label = ", ".join(str(r["index"]) for r in group)
            ax.annotate(label, (x, y), textcoords="offset points", va="center",
                        xytext=(6 + 3.5 * len(group), 0), fontsize=7)
        ax.set_xlabel(xl)
        ax.set_ylabel(yl)
        ax.grid(alpha=0.3)
    front_handle = Line2D([], [], color="0.75", lw=2.5, marker="o", mfc="white", mec="black",
                          label="Pareto front (outlined)")
    axes[-1].legend(handles=handles + [front_handle], fontsize=8, loc="upper left",
                    bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.suptitle(f"{len(pts)} points, labelled by index (results.csv)", fontsize=10)
    fig.tight_layout()
    return save_png(fig, path, dpi=130, bbox_inches="tight")


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "" if v is None else str(v)


def write_summary(rows: list[dict], swept: list[str], path: Path, header: str) -> None:
    """summary.md: counts, the Pareto set, every point sorted by energy per inference, and
    the failures with their error lines."""
    ok = _ok(rows, INFER_ENERGY)
    lines = [f"# {header}", "",
             (f"{len(rows)} points: {sum(r['status'] == 'ok' for r in rows)} ok, "
              f"{sum(r['status'] == 'failed' for r in rows)} failed, "
              f"{sum(r['status'] == 'infeasible' for r in rows)} infeasible."), ""]
    cols = ["index", *swept, "accuracy", INFER_ENERGY, INFER_LATENCY, "infer.edp_pj_s",
            "sram_spill_bytes"]

    def table(rs):
        out = ["| " + " | ".join(cols) + " |", "|" + " --- |" * len(cols)]
        out += ["| " + " | ".join(_fmt(r.get(c)) for c in cols) + " |" for r in rs]
        return out

    front = pareto_front(rows, (INFER_ENERGY, INFER_LATENCY))
    if front:
        lines += ["## Pareto front: energy vs latency per inference", "", *table(front), ""]
    if accuracy_varies(rows):
        lines += ["## Pareto front: accuracy vs energy per inference", "",
                  *table(pareto_front(rows, (INFER_ENERGY,), ("accuracy",))), ""]
    if ok:
        lines += ["## All points, by energy per inference", "",
                  *table(sorted(ok, key=lambda r: r[INFER_ENERGY])), ""]
    bad = [r for r in rows if r["status"] != "ok"]
    if bad:
        lines += ["## Not run or failed", ""]
        lines += [f"- point {r['index']} ({', '.join(f'{k}={r.get(k)}' for k in swept)}): "
                  f"{r['status']}: {r['error']}" for r in sorted(bad, key=lambda r: r['index'])]
        lines.append("")
    write_text(path, "\n".join(lines))
