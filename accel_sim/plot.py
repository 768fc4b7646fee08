"""Figures of a run's hardware cost (matplotlib, imported lazily, Agg backend)."""
from __future__ import annotations

import math
import sys
import textwrap
from pathlib import Path

from snn_frontend.files import atomic_write

from .registry import COMPONENTS
from .tables import _phases

__all__ = ["COMPONENT_COLOURS", "format_uj", "new_figure", "plot_continual", "save_png",
           "plot_energy_breakdown", "plot_latency", "plot_mesh", "plot_training"]

# Fixed colour per component class, so figures of different runs compare at a glance.
COMPONENT_COLOURS = {kind: c.color for kind, c in COMPONENTS.items()}
_EXTRA_COLOURS = ("#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
_STATIC_HATCH = "////"


def _lighter(colour: str, amount: float = 0.55) -> tuple[float, float, float]:
    from matplotlib.colors import to_rgb
    r, g, b = to_rgb(colour)
    return (r + (1 - r) * amount, g + (1 - g) * amount, b + (1 - b) * amount)


def new_figure(**kwargs):
    """A matplotlib Figure on the Agg canvas, without pyplot (headless-safe). If pyplot is
    already loaded (a notebook), its backend is left alone: switching would close the
    user's figures."""
    import matplotlib
    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(**kwargs)
    FigureCanvasAgg(fig)
    return fig


def save_png(fig, path, **savefig) -> Path:
    """Write the figure as PNG atomically (temp file + rename); returns the path."""
    path = Path(path)
    with atomic_write(path) as fh:
        fig.savefig(fh, format="png", **savefig)
    return path


def _classes(phases: list[tuple[str, dict]]) -> list[str]:
    """The component classes with energy in some phase (a zero one has no bar to name)."""
    seen = {c for _, ph in phases
            for c, e in ((ph.get("energy_pj") or {}).get("by_component") or {}).items()
            if float(e.get("dynamic", 0.0)) > 0 or float(e.get("static", 0.0)) > 0}
    known = [c for c in COMPONENT_COLOURS if c in seen]
    return known + sorted(seen - set(known))


def format_uj(value: float) -> str:
    """Energy in µJ with three significant digits and no exponent (1,234 / 12.3 / 0.0123)."""
    if value <= 0:
        return "0 µJ"
    digits = max(0, 2 - math.floor(math.log10(value)))
    return f"{value:,.{digits}f} µJ"


def plot_energy_breakdown(hardware: dict, path, model: str | None = None) -> Path:
    """One stacked bar per phase: energy per sample (µJ) by component class.

    Each class has a fixed colour; its dynamic part is solid and its static part
    a lighter, hatched shade stacked right above it. The total is written on top
    of each bar. Saved as PNG at 150 dpi (atomically); returns the path.
    """
    from matplotlib.patches import Patch

    phases = _phases(hardware)
    if not phases:
        raise ValueError("hardware.phases is empty: nothing to plot")
    classes = _classes(phases)
    extra = iter(_EXTRA_COLOURS * (1 + len(classes) // len(_EXTRA_COLOURS)))
    colours = {c: COMPONENT_COLOURS.get(c) or next(extra) for c in classes}

    fig = new_figure(figsize=(max(5.5, 2.2 + 1.6 * len(phases)), 5.0))
    ax = fig.add_subplot()
    x = list(range(len(phases)))
    width = 0.55
    totals = []
    for i, (phase, ph) in enumerate(phases):
        samples = int(ph.get("samples", 0))
        if samples <= 0:
            raise ValueError(f"hardware.phases.{phase}.samples must be positive, got {samples}")
        by_component = (ph.get("energy_pj") or {}).get("by_component") or {}
        bottom = 0.0
        for c in classes:
            parts = by_component.get(c) or {}
            dyn = float(parts.get("dynamic", 0.0)) / samples * 1e-6   # pJ -> µJ
            sta = float(parts.get("static", 0.0)) / samples * 1e-6
            if dyn > 0:
                ax.bar(i, dyn, width, bottom=bottom, color=colours[c],
                       edgecolor="white", linewidth=0.6)
                bottom += dyn
            if sta > 0:
                ax.bar(i, sta, width, bottom=bottom, color=_lighter(colours[c]),
                       edgecolor=colours[c], linewidth=0.6, hatch=_STATIC_HATCH)
                bottom += sta
        totals.append(bottom)

    highs = list(totals)
    for i, (_, ph) in enumerate(phases):  # a sampled replay's 95 % interval
        iv = (ph.get("interval") or {}).get("energy_per_sample_pj")
        if iv:
            lo, hi = (v * 1e-6 for v in iv)
            ax.errorbar(i, totals[i], yerr=[[max(totals[i] - lo, 0)], [max(hi - totals[i], 0)]],
                        fmt="none", ecolor="black", elinewidth=1, capsize=4)
            highs[i] = max(hi, totals[i])
    top = max(highs) if max(highs) > 0 else 1.0
    for i, t in enumerate(totals):
        ax.text(i, highs[i] + 0.015 * top, format_uj(t), ha="center", va="bottom", fontsize=9,
                fontweight="bold")
    ax.set_ylim(0, top * 1.12)
    ax.set_xticks(x, [f"{p}\n({int(ph.get('samples', 0)):,} samples)" for p, ph in phases])
    ax.set_xlim(-0.6, len(phases) - 0.4)
    ax.set_ylabel("energy per sample (µJ)")
    ax.yaxis.grid(True, linewidth=0.5, alpha=0.5)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)

    # Legend order matches the stacks (top of the bar first).
    handles = [Patch(facecolor=colours[c], label=c) for c in reversed(classes)]
    handles += [Patch(facecolor="0.35", label="dynamic (solid)"),
                Patch(facecolor=_lighter("#555555"), edgecolor="0.35", hatch=_STATIC_HATCH,
                      label="static (hatched)")]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False,
              fontsize=9)

    chip = hardware.get("chip", "?")
    table = hardware.get("energy_table", "?")
    tech = hardware.get("technology")
    fidelity = hardware.get("fidelity", "?")
    sub = f"table {table}" + (f" ({tech})" if tech else "") + f", fidelity {fidelity}"
    if any(ph.get("interval") for _, ph in phases):
        sub += "; bars: 95 % interval of a sampled replay"
    ax.set_title("\n".join(textwrap.wrap(
        "Energy per sample" + (f" of {model}" if model else "") + f" on chip '{chip}'", 52)
        + textwrap.wrap(sub, 64)), fontsize=10)
    fig.tight_layout()

    return save_png(fig, path, dpi=150, bbox_inches="tight")


def plot_continual(tasks: list[dict], path) -> Path:
    """Accuracy on the newest task and on the earlier tasks after each task (continual.png)."""
    fig = new_figure(figsize=(6.4, 3.6), dpi=150)
    ax = fig.add_subplot(1, 1, 1)
    x = [r["task"] for r in tasks]
    ax.plot(x, [100 * r["newest"] for r in tasks], "o-", label="newest task")
    ex = [(r["task"], 100 * r["earlier"]) for r in tasks if r["earlier"] is not None]
    if ex:
        ax.plot([a for a, _ in ex], [b for _, b in ex], "s--", label="earlier tasks")
    ax.plot(x, [100 * r["all_learned"] for r in tasks], ":", color="grey", label="all learned")
    ax.set_xticks(x, [str(r["class"]) for r in tasks])
    ax.set_xlabel("after learning class (one task per class, in this order)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 100)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="lower left", frameon=False)
    ax.set_title("class-incremental learning")
    fig.tight_layout()
    return save_png(fig, path)


def plot_training(history: list[dict], path, model: str | None = None) -> Path:
    """training.png: the loss and the train / test accuracy after every epoch (supervised
    networks; `history` is stats.json's accuracy.history)."""
    from matplotlib.ticker import MaxNLocator

    fig = new_figure(figsize=(8.0, 3.6), dpi=150)
    ep = [h["epoch"] for h in history]
    ax = fig.add_subplot(1, 2, 1)
    ax.plot(ep, [h["train_loss"] for h in history], "-", color=COMPONENT_COLOURS["core"])
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss (incl. regularisers)")
    ax.grid(alpha=0.3)
    ax = fig.add_subplot(1, 2, 2)
    ax.plot(ep, [100 * h["train_accuracy"] for h in history], "-", label="train")
    ax.plot(ep, [100 * h["test_accuracy"] for h in history], "-", label="test")
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(frameon=False)
    for a in fig.axes:
        a.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.suptitle(f"Training{f' of {model}' if model else ''}: loss and accuracy after each of "
                 f"{len(history)} epochs", fontsize=10)
    fig.tight_layout()
    return save_png(fig, path)



def _core_grid(per_tile: int) -> tuple[int, int]:
    """Columns and rows of the cells that show a tile's cores."""
    cols = math.ceil(math.sqrt(per_tile))
    return cols, math.ceil(per_tile / cols)


def _mesh_image(values, width: int, height: int, per_tile: int):
    """Per-core values laid out on the mesh: tile (x, y), its cores in a small grid."""
    import numpy as np

    cols, rows = _core_grid(per_tile)
    img = np.full((height * rows, width * cols), np.nan)
    for i, v in enumerate(values):
        tile, k = divmod(i, per_tile)
        x, y = tile % width, tile // width
        img[y * rows + k // cols, x * cols + k % cols] = v
    return img


def plot_mesh(hardware: dict, path) -> Path | None:
    """mesh.png: per phase, the energy per sample of every core on the mesh (tiles
    outlined, their cores inside) and every core's utilisation (busy / latency cycles)
    with each link drawn between its tiles, coloured by its utilisation; the hottest
    core and the busiest link named. None when the phases carry no per-instance results."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    from .tables import hottest

    phases = [(p, ph) for p, ph in _phases(hardware) if ph.get("per_instance")]
    if not phases:
        return None
    inst = phases[0][1]["instances"]
    width, height = inst["mesh"]
    per_tile = inst["cores_per_tile"]
    cols, rows = _core_grid(per_tile)
    fig = new_figure(figsize=(10.5, 0.6 + 3.6 * len(phases)))
    axes = fig.subplots(len(phases), 2, squeeze=False)
    for (phase, ph), (ax_e, ax_u) in zip(phases, axes):
        per = ph["per_instance"]
        n = max(int(ph.get("samples", 0)), 1)
        energy = [e["energy_pj"]["total"] / n * 1e-6 for e in per["cores"]]
        util = [e["utilisation"] * 100 for e in per["cores"]]
        core, link = hottest(per)
        for ax, vals, cmap, label, vmin in ((ax_e, energy, "viridis", "µJ per sample", None),
                                            (ax_u, util, "magma", "% of cycles busy", 0)):
            im = ax.imshow(_mesh_image(vals, width, height, per_tile), origin="lower",
                           cmap=cmap, extent=(-0.5, width - 0.5, -0.5, height - 0.5),
                           interpolation="nearest", aspect="equal", vmin=vmin)
            fig.colorbar(im, ax=ax, label=label, shrink=0.85)
            for x in range(width + 1):
                ax.axvline(x - 0.5, color="white", lw=1.2)
            for y in range(height + 1):
                ax.axhline(y - 0.5, color="white", lw=1.2)
            ax.set_xticks(range(width))
            ax.set_yticks(range(height))
            ax.set_xlabel("tile x")
            ax.set_ylabel("tile y")
        if per["links"]:
            norm = Normalize(0, max(e["utilisation"] for e in per["links"]) * 100 or 1)
            sm = ScalarMappable(norm=norm, cmap="cool")
            for e in per["links"]:
                (x0, y0), (x1, y1) = (tuple(map(int, end.split(","))) for end in
                                      e["name"][5:-1].split(">"))
                dx, dy = (x1 - x0) * 0.6, (y1 - y0) * 0.6
                off = 0.1 * (1 if (x1 - x0) + (y1 - y0) > 0 else -1)  # each way on its side
                ox, oy = (0.0, off) if y0 == y1 else (off, 0.0)
                ax_u.annotate("", (x0 + ox + 0.5 * (x1 - x0) + dx / 2, y0 + oy + 0.5 * (y1 - y0) + dy / 2),
                              (x0 + ox + 0.5 * (x1 - x0) - dx / 2, y0 + oy + 0.5 * (y1 - y0) - dy / 2),
                              arrowprops={"arrowstyle": "-|>", "lw": 2.0,
                                          "color": sm.to_rgba(e["utilisation"] * 100)})
            fig.colorbar(sm, ax=ax_u, label="link % busy (arrows)", shrink=0.7,
                         location="bottom", pad=0.22)
        ax_e.set_title(f"{phase}: energy per core; hottest {core['name']} at tile "
                       f"({core['x']}, {core['y']}), {format_uj(core['energy_pj']['total'] / n * 1e-6)}",
                       fontsize=9)
        ax_u.set_title(f"{phase}: utilisation" + (
            f"; busiest {link['name']} ({link['utilisation'] * 100:.2g} %)" if link else ""),
            fontsize=9)
    fig.suptitle(f"chip '{hardware.get('chip', '?')}': {width}x{height} tiles of {per_tile} "
                 f"core(s), fidelity {hardware.get('fidelity', '?')}", fontsize=10)
    fig.tight_layout()
    return save_png(fig, path, dpi=120, bbox_inches="tight")


def plot_latency(hardware: dict, path) -> Path | None:
    """latency.png: the cycles of every step of each phase's first presentation, at the
    run's fidelity (beside energy_breakdown.png). None without per-step cycles."""
    import numpy as np

    phases = [(p, ph) for p, ph in _phases(hardware) if ph.get("first_step_cycles")]
    if not phases:
        return None
    fig = new_figure(figsize=(7.0, 3.8))
    ax = fig.add_subplot()
    for k, (phase, ph) in enumerate(phases):
        steps = np.asarray(ph["first_step_cycles"], float)
        colour = f"C{k}"
        ax.plot(np.arange(len(steps)), steps, lw=0.6, alpha=0.35, color=colour)
        window = min(25, len(steps))  # the trend: a running mean over `window` steps
        mean = np.convolve(steps, np.ones(window) / window, mode="valid")
        ax.plot(np.arange(len(mean)) + (window - 1) / 2, mean, lw=1.8, color=colour,
                label=f"{phase} ({int(steps.sum()):,} cycles, {len(steps)} steps)")
    ax.set_xlabel("time step of the first presentation (thin: each step; thick: mean of 25)")
    ax.set_ylabel("cycles")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(frameon=False, fontsize=8)
    ax.set_title(f"Cycles per step on chip '{hardware.get('chip', '?')}', fidelity "
                 f"{hardware.get('fidelity', '?')}", fontsize=10)
    fig.tight_layout()
    return save_png(fig, path, dpi=130, bbox_inches="tight")
