"""`accel-sim papers`: every claim of the reproduced papers next to this simulator's number.

Each claim reads the stats of one or two runs of the shipped configs (`configs/`,
installed as `accel_sim.presets`). `papers` runs the configs it has no finished run of
into one folder (`<out>/<config name>`), reuses the finished ones (a run whose resolved
config is another one is an error: the table would mix protocols; keys that change only
how a run executes, `config.EXECUTION_ONLY`, may differ), and writes
`<out>/papers.md`: per claim the paper, what it claims, its number, ours, and the commands
that reproduce ours. `--quick` runs every config as its network family's smoke run
(`NetworkFamily.quick_overrides`: a few hundred samples, minutes each) in another
folder; its numbers show that everything runs, not what the papers measured.
The papers' numbers are from `../shared/reference/seeds.md` (sections 2.2, 3.1, 5).
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import registry
from .config import EXECUTION_ONLY, config_to_dict, load_config, load_resolved
from .config.loader import shipped_config
from .errors import RunError
from .report import write_text
from .run import run_experiment
from .run.rundir import RESOLVED, finished
from .sweep.spec import without_keys

__all__ = ["CLAIMS", "Claim", "papers"]


@dataclass(frozen=True)
class Claim:
    paper: str
    claim: str
    paper_value: str
    configs: tuple[str, ...]  # shipped configs (below configs/) of the runs it reads
    ours: Callable[..., str]  # their stats.json, in order -> our number


def _accuracy(s: dict) -> str:
    return f"{100 * s['accuracy']['test']:.2f} %"


def _energy(s: dict, phase: str) -> float:
    return s["hardware"]["phases"][phase]["energy_per_sample_pj"]


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x"


def _points(a: float, b: float) -> str:
    return f"{100 * (b - a):+.1f} points"


def _change(a: float, b: float) -> str:
    return f"{100 * (b / a - 1):+.0f} %"


def _memory_saving(a: dict, b: dict) -> str:
    return _ratio(a["memory"]["total_bytes"], b["memory"]["total_bytes"])


def _energy_saving(phase: str) -> Callable[[dict, dict], str]:
    return lambda a, b: _ratio(_energy(a, phase), _energy(b, phase))


def _accuracy_change(a: dict, b: dict) -> str:
    return _points(a["accuracy"]["test"], b["accuracy"]["test"])


_DC, _FS = "mnist_dc400.yaml", "papers/fspinn_mnist400.yaml"
_DC49, _FS49 = "papers/dc_mnist4900.yaml", "papers/fspinn_mnist4900.yaml"
_ASP, _SD = "papers/asp_ci400.yaml", "papers/spikedyn_ci400.yaml"
_DENSE, _SPARSE = "papers/ssgd_fmnist200_dense.yaml", "papers/ssgd_fmnist200_sparse.yaml"
_DC_PAPER = "Diehl & Cook 2015"
_FS_PAPER = "FSpiNN (Putra & Shafique 2020), vs D&C"
_SD_PAPER = "SpikeDyn (Putra & Shafique 2021), vs ASP, class-incremental MNIST"
_SSGD_PAPER = "Sparse Spiking Gradient Descent (Perez-Nieves & Goodman 2021), Fashion-MNIST"

#: the claims, in the order of papers.md
CLAIMS: tuple[Claim, ...] = (
    Claim(_DC_PAPER, "test accuracy, N=100", "82.9 %", ("mnist_dc100.yaml",), _accuracy),
    Claim(_DC_PAPER, "test accuracy, N=400", "87.0 %", (_DC,), _accuracy),
    Claim(_DC_PAPER, "test accuracy, N=1,600 (on loihi_like, whose SRAM holds it)", "91.9 %",
          ("mnist_dc1600.yaml",), _accuracy),
    Claim(_DC_PAPER, "test accuracy, N=6,400 (on loihi_board: 16 loihi_like chips)", "95.0 %",
          ("mnist_dc6400.yaml",), _accuracy),
    Claim(_FS_PAPER, "memory saving, N=4,900 (both on loihi_board)", "7.5x", (_DC49, _FS49),
          _memory_saving),
    Claim(_FS_PAPER, "training energy saving, N=4,900 (ours: on loihi_board; 20,000 samples)",
          "3.5x (GPU)", (_DC49, _FS49), _energy_saving("train")),
    Claim(_FS_PAPER, "inference energy saving, N=4,900 (ours: on loihi_board)", "1.8x (GPU)",
          (_DC49, _FS49), _energy_saving("infer")),
    Claim(_FS_PAPER, "accuracy change, N=4,900", "no loss", (_DC49, _FS49), _accuracy_change),
    Claim(_FS_PAPER, "memory saving (ours at N=400)", "7.5x (N=4,900)", (_DC, _FS),
          _memory_saving),
    Claim(_FS_PAPER, "training energy saving (ours: N=400 on the chip)", "3.5x (N=4,900, GPU)",
          (_DC, _FS), _energy_saving("train")),
    Claim(_FS_PAPER, "inference energy saving (ours: N=400 on the chip)", "1.8x (N=4,900, GPU)",
          (_DC, _FS), _energy_saving("infer")),
    Claim(_FS_PAPER, "accuracy change", "no loss (N=4,900)", (_DC, _FS), _accuracy_change),
    Claim(_SD_PAPER, "newest-task accuracy, N=400", "+21 points", (_ASP, _SD),
          lambda a, b: _points(a["accuracy"]["newest_mean"], b["accuracy"]["newest_mean"])),
    Claim(_SD_PAPER, "earlier-task accuracy, N=400", "+8 points", (_ASP, _SD),
          lambda a, b: _points(a["accuracy"]["earlier_mean"], b["accuracy"]["earlier_mean"])),
    Claim(_SD_PAPER, "training energy, N=400", "-51 %", (_ASP, _SD),
          lambda a, b: _change(_energy(a, "train"), _energy(b, "train"))),
    Claim(_SD_PAPER, "inference energy, N=400", "-37 %", (_ASP, _SD),
          lambda a, b: _change(_energy(a, "infer"), _energy(b, "infer"))),
    Claim(_SSGD_PAPER, "test accuracy dense / sparse backward, 200 neurons",
          "81.85 / 82.81 %", (_DENSE, _SPARSE),
          lambda a, b: f"{100 * a['accuracy']['test']:.2f} / {100 * b['accuracy']['test']:.2f} %"),
    Claim(_SSGD_PAPER, "memory kept for the backward, dense / sparse", "1.4x (layer 2 peak)",
          (_DENSE, _SPARSE), lambda a, b: _ratio(
              a["frontend"]["train"]["per_sample"]["backward_kept_bytes_per_batch"],
              b["frontend"]["train"]["per_sample"]["backward_kept_bytes_per_batch"])),
    Claim(_SSGD_PAPER, "training energy dense / sparse (ours: on the chip)",
          "not reported (GPU time: 6x faster backward)", (_DENSE, _SPARSE),
          lambda a, b: _ratio(_energy(a, "train"), _energy(b, "train"))),
)


def papers(out: str | Path, *, quick: bool = False, only: str | None = None,
           progress: bool | None = None, claims: tuple[Claim, ...] = CLAIMS) -> Path:
    """Run (or reuse) the runs of every claim (whose paper or claim contains `only`),
    and write `<out>/papers.md`; returns its path."""
    chosen = [c for c in claims if only is None or only.lower() in f"{c.paper} {c.claim}".lower()]
    if not chosen:
        raise RunError(f"no claim matches {only!r} (papers: "
                       f"{', '.join(sorted({c.paper for c in claims}))})")
    out = Path(out)
    stats, commands = {}, {}
    for name in dict.fromkeys(n for c in chosen for n in c.configs):
        stats[name], commands[name] = _run(name, out, quick, progress)
    title = "# Paper claims" + (" (--quick: smoke runs, not the papers' protocols)"
                                if quick else "")
    lines = [title, "", "| paper | claim | paper's number | ours | runs |",
             "| --- | --- | --- | --- | --- |"]
    for c in chosen:
        ours = c.ours(*(stats[n] for n in c.configs))
        runs = ", ".join(f"`{Path(n).stem}`" for n in c.configs)
        lines.append(f"| {c.paper} | {c.claim} | {c.paper_value} | **{ours}** | {runs} |")
    lines += ["", "Runs (reused when finished):", "", "```sh",
              *(commands[n] for n in commands), "```", "",
              f"Written by `accel-sim papers{' --quick' if quick else ''} --out {out}`."]
    path = out / "papers.md"
    write_text(path, "\n".join(lines) + "\n")
    return path


def _results_of(cfg) -> dict:
    """The config without the keys that change how a run executes but not its results
    (threads, the replay's workers, progress, checkpoints, saved traces)."""
    return without_keys(config_to_dict(cfg), EXECUTION_ONLY)


def _run(name: str, out: Path, quick: bool, progress: bool | None) -> tuple[dict, str]:
    """The stats of the run of shipped config `name` in `out` (run now when missing), and
    the command that makes it."""
    path = shipped_config(name)
    cfg = load_config(path)
    sets = registry.family_of(cfg.network.model).quick_overrides(cfg) if quick else []
    if sets:
        cfg = load_config(path, sets)
    run_dir = out / Path(name).stem
    command = " ".join(["accel-sim run", f"configs/{name}", *(f"--set '{s}'" for s in sets),
                        f"--out {run_dir}"])
    if finished(run_dir):
        if _results_of(load_resolved(run_dir / RESOLVED)) != _results_of(cfg):
            raise RunError(f"{run_dir} is a finished run of another config than {command!r}: "
                           "move it away or give papers another --out")
    else:
        run_experiment(cfg, run_dir, progress=progress)
    return json.loads((run_dir / "stats.json").read_text()), command
