"""`accel-sim search`: SpikeDyn's memory- and energy-constrained model search.

    candidates (a grid over network size, model, weight format, ...)
    -> memory and energy of every candidate from the analytical model (docs/analytical.md):
       one short calibration run per family of candidates (the candidates that differ only
       in network size), its rates carried over to every size
    -> the candidates within the budgets (memory, energy per inference, per training sample)
    -> each feasible candidate trained briefly and priced on the chip (a sweep: a process
       pool or a Dask cluster, resumable)
    -> the Pareto set (accuracy vs memory vs energy per inference) and the selected model:
       the most accurate feasible one (ties: the lower energy)

A search file is a sweep file (`base`, `set`, `grid`, `zip`, `points`, docs in the README)
plus:

    budgets: {memory_kb: 3000, infer_energy_uj: null, train_energy_uj: null}
    calibrate_samples: 50          # frontend samples per phase for the analytical rates
    train: {data.train_samples: 1000, data.test_samples: 1000}   # the brief training
"""
from __future__ import annotations

import copy
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from snn_frontend.spec import NetworkSpec
from snn_frontend.trace import stdp_event_streams

from . import registry
from .config import config_to_dict
from .errors import RunError
from .estimate import PhaseActivity, calibrate, estimate
from .report import write_text
from .sweep import run_sweep
from .sweep.results import pareto_front, write_csv
from .sweep.spec import FRONTEND_FREE, SweepFile, expand, load_sweep, stable_hash, without_keys

__all__ = ["SearchFile", "SearchOutcome", "run_search", "scale_activity"]


class Budgets(BaseModel):
    model_config = ConfigDict(extra="forbid")

    memory_kb: float | None = Field(None, gt=0)  # weights + neuron state, 1 KB = 1000 B
    infer_energy_uj: float | None = Field(None, gt=0)  # per inference
    train_energy_uj: float | None = Field(None, gt=0)  # per training sample


class SearchFile(SweepFile):
    budgets: Budgets = Field(default_factory=Budgets)
    calibrate_samples: int = Field(50, ge=1)
    train: dict[str, Any] = Field(default_factory=dict)  # overrides of the brief training


@dataclass
class SearchOutcome:
    out: Path
    rows: list[dict]
    selected: dict | None
    calibrations: int


def load_search(path: str | Path, overrides: Iterable[str] = ()) -> tuple[SearchFile, str]:
    return load_sweep(path, SearchFile, "search", overrides)


# --------------------------------------------------------------- the analytical model
def scale_activity(act: PhaseActivity, ref: NetworkSpec, spec: NetworkSpec) -> PhaseActivity:
    """The reference's activity carried to another size of the same family: each neuron
    fires as often as in the reference (a population's events scale with its size, the
    inputs' do not); spikes of a burst stay together, so bursts grow with the layer."""
    out = copy.deepcopy(act)
    size = {q.name: q.size for q in spec.populations}
    ref_size = {q.name: q.size for q in ref.populations}
    ratio = {q: size[q] / ref_size[q] for q in size if q in ref_size}
    for pr in spec.projections:  # write-back columns follow the target population
        rows, cols = stdp_event_streams(pr.name)
        ratio[cols] = ratio.get(pr.dst, 1.0)
        ratio[rows] = ratio.get(pr.src, 1.0)
    for stream, k in ratio.items():
        if k == 1.0 or stream not in act.rates:
            continue
        out.rates[stream] = act.rates[stream] * k
        if stream in act.profile:
            out.profile[stream] = (np.asarray(act.profile[stream]) * k).tolist()
        out.neurons.pop(stream, None)  # other neurons: uniform
    out.active = {}  # from the rates (the measured counts were the reference's)
    return out


def _family(cfg) -> str:
    """Candidates of one family share everything but the network's size (the keys the
    network family names) and what does not change the frontend."""
    size = registry.family_of(cfg).size_keys
    return stable_hash(without_keys(config_to_dict(cfg), FRONTEND_FREE + size))


def _analytical(points, sf: SearchFile, show: bool) -> tuple[list[dict], int]:
    """Memory and estimated energy of every candidate; one calibration per family."""
    refs: dict[str, tuple] = {}
    rows = []
    for p in points:
        row = {"point": p.id, "index": p.index, **p.values}
        if p.config is None:
            rows.append(dict(row, feasible=False, reason=f"infeasible chip: {p.infeasible}"))
            continue
        fam = _family(p.config)
        if fam not in refs:
            if show:
                print(f"accel-sim: calibrating the family of candidate {p.index} "
                      f"({p.label()}) on {sf.calibrate_samples} samples", file=sys.stderr)
            spec, act, _ = calibrate(p.config, sf.calibrate_samples)
            refs[fam] = (spec, act)
        ref_spec, ref_act = refs[fam]
        spec = registry.family_of(p.config).spec_for_size(p.config, ref_spec)
        act = {ph: scale_activity(a, ref_spec, spec) for ph, a in ref_act.items()}
        est = estimate(p.config, spec, act)
        ph = est["phases"]
        row.update(memory_kb=est["memory_bytes"] / 1000,
                   est_infer_energy_uj=ph["infer"]["energy_per_sample_pj"] * 1e-6
                   if "infer" in ph else None,
                   est_train_energy_uj=ph["train"]["energy_per_sample_pj"] * 1e-6
                   if "train" in ph else None)
        row["reason"] = _over_budget(row, sf.budgets)
        row["feasible"] = not row["reason"]
        rows.append(row)
    return rows, len(refs)


def _over_budget(row: dict, b: Budgets) -> str:
    over = []
    for key, limit, unit in (("memory_kb", b.memory_kb, "KB"),
                             ("est_infer_energy_uj", b.infer_energy_uj, "µJ per inference"),
                             ("est_train_energy_uj", b.train_energy_uj,
                              "µJ per training sample")):
        if limit is not None and row.get(key) is not None and row[key] > limit:
            over.append(f"{row[key]:.4g} > {limit:.4g} {unit}")
    return "; ".join(over)


# ------------------------------------------------------------------------ the search
def run_search(path: str | os.PathLike, out: str | os.PathLike | None = None, *,
               executor: str = "local", workers: int | None = None,
               scheduler: str | None = None, progress: bool | None = None,
               overrides: Iterable[str] = ()) -> SearchOutcome:
    """SpikeDyn's search (or its continuation); `overrides` (`KEY=VALUE`) set config keys
    of every candidate."""
    sf, text = load_search(path, overrides)
    points = expand(sf, path)
    out = Path(out) if out is not None else Path("searches") / Path(path).stem
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunError(f"cannot create search directory {out}: {exc.strerror or exc}") from None
    given = out / "search.yaml"
    if given.is_file() and given.read_text(encoding="utf-8") != text:
        raise RunError(f"{out} holds another search (its search.yaml differs)")
    write_text(given, text)
    show = progress if progress is not None else os.isatty(2)
    rows, calibrations = _analytical(points, sf, show)
    feasible = [r for r in rows if r["feasible"]]
    if feasible:
        base = str(Path(path).resolve().parent / sf.base)
        sweep = {"version": 1, "base": base, "set": {**sf.set, **sf.train},
                 "points": [{k: r[k] for k in points[r["index"]].values} for r in feasible]}
        sweep_path = out / "train.yaml"
        write_text(sweep_path, json.dumps(sweep, indent=2) + "\n")
        trained = run_sweep(sweep_path, out / "trained", executor=executor, workers=workers,
                            scheduler=scheduler, progress=progress)
        by_id = {t["point"]: t for t in trained.rows}  # a point's id hashes its values
        for r in feasible:
            t = by_id.get(r["point"], {})
            r.update(status=t.get("status", "missing"), error=t.get("error", ""),
                     accuracy=t.get("accuracy"),
                     infer_energy_uj=_uj(t.get("infer.energy_per_sample_pj")),
                     train_energy_uj=_uj(t.get("train.energy_per_sample_pj")),
                     run_dir=t.get("run_dir", ""))
    trained_ok = [r for r in feasible if r.get("status") == "ok" and r.get("accuracy") is not None]
    front = pareto_front([dict(r, status="ok") for r in trained_ok],
                         minimise=("memory_kb", "infer_energy_uj"), maximise=("accuracy",))
    front_ids = {r["point"] for r in front}
    selected = max(trained_ok, key=lambda r: (r["accuracy"], -(r["infer_energy_uj"] or 0)),
                   default=None)
    for r in rows:
        r["pareto"] = r["point"] in front_ids
        r["selected"] = selected is not None and r["point"] == selected["point"]
        r.setdefault("status", "not trained")
    write_csv(rows, out / "results.csv")
    plot_search(rows, sf.budgets, out / "search.png")
    _summary(rows, points, sf.budgets, selected, out / "summary.md", Path(path).name)
    return SearchOutcome(out, sorted(rows, key=lambda r: r["index"]), selected, calibrations)


def _uj(pj):
    return pj * 1e-6 if isinstance(pj, (int, float)) else None


def plot_search(rows: list[dict], budgets: Budgets, path: Path) -> Path:
    """Left: every candidate's memory vs estimated energy per inference, the budgets drawn,
    infeasible ones grey. Right: the trained ones' accuracy vs memory, the Pareto set
    joined, the selected model starred."""

    from .plot import new_figure, save_png

    fig = new_figure(figsize=(11, 4.5))
    a, b = fig.subplots(1, 2)
    est = [r for r in rows if r.get("memory_kb") is not None
           and r.get("est_infer_energy_uj") is not None]
    for ok, colour, label in ((True, "C0", "within the budgets"), (False, "0.65", "over")):
        pts = [r for r in est if r["feasible"] == ok]
        a.scatter([r["memory_kb"] for r in pts], [r["est_infer_energy_uj"] for r in pts],
                  color=colour, s=22, label=label)
        for r in pts:
            a.annotate(str(r["index"]), (r["memory_kb"], r["est_infer_energy_uj"]),
                       textcoords="offset points", xytext=(3, 3), fontsize=7)
    if budgets.memory_kb:
        a.axvline(budgets.memory_kb, color="C3", ls="--", lw=1, label="memory budget")
    if budgets.infer_energy_uj:
        a.axhline(budgets.infer_energy_uj, color="C1", ls="--", lw=1, label="energy budget")
    a.set_xlabel("memory: weights + neuron state (KB)")
    a.set_ylabel("estimated energy per inference (µJ)")
    a.set_title("analytical model", fontsize=10)
    a.legend(fontsize=8)
    trained = [r for r in rows if r.get("accuracy") not in (None, "")]
    b.scatter([r["memory_kb"] for r in trained], [r["accuracy"] * 100 for r in trained],
              color="0.6", s=22, label="trained")
    front = sorted((r for r in trained if r["pareto"]), key=lambda r: r["memory_kb"])
    b.plot([r["memory_kb"] for r in front], [r["accuracy"] * 100 for r in front], "o-",
           color="C3", ms=6, label="Pareto set (accuracy, memory, energy)")
    for r in trained:
        b.annotate(str(r["index"]), (r["memory_kb"], r["accuracy"] * 100),
                   textcoords="offset points", xytext=(3, 3), fontsize=7)
        if r["selected"]:
            b.scatter([r["memory_kb"]], [r["accuracy"] * 100], marker="*", s=220, color="C2",
                      zorder=5, label="selected")
    b.set_xlabel("memory (KB)")
    b.set_ylabel("test accuracy after the brief training (%)")
    b.set_title("feasible candidates, trained", fontsize=10)
    b.legend(fontsize=8)
    for ax in (a, b):
        ax.grid(alpha=0.3)
    return save_png(fig, path, dpi=130, bbox_inches="tight")


def _summary(rows, points, budgets: Budgets, selected, path: Path, name: str) -> None:
    keys = list(dict.fromkeys(k for p in points for k in p.values))
    cols = ["index", *keys, "memory_kb", "est_infer_energy_uj", "est_train_energy_uj",
            "feasible", "accuracy", "infer_energy_uj", "train_energy_uj", "pareto", "selected"]

    def fmt(v):
        return f"{v:.4g}" if isinstance(v, float) else ("" if v is None else str(v))

    lines = [f"# Model search {name}", "",
             "Budgets: " + (", ".join(f"{k} {v:g}" for k, v in budgets.model_dump().items()
                                      if v is not None) or "none"), "",
             (f"{len(rows)} candidates, {sum(r['feasible'] for r in rows)} within the budgets "
              f"(analytical), {sum(r.get('status') == 'ok' for r in rows)} trained."), ""]
    if selected:
        lines += [f"**Selected:** candidate {selected['index']} ("
                  + ", ".join(f"{k}={selected[k]}" for k in keys if k in selected)
                  + f"): accuracy {selected['accuracy']:.4f}, {selected['memory_kb']:.1f} KB, "
                  f"{fmt(selected['infer_energy_uj'])} µJ per inference.", ""]
    lines += ["| " + " | ".join(cols) + " |", "|" + " --- |" * len(cols)]
    lines += ["| " + " | ".join(fmt(r.get(c)) for c in cols) + " |"
              for r in sorted(rows, key=lambda r: r["index"])]
    over = [r for r in rows if not r["feasible"]]
    if over:
        lines += ["", "## Over the budgets", ""]
        lines += [f"- candidate {r['index']}: {r['reason']}" for r in over]
    write_text(path, "\n".join(lines) + "\n")
