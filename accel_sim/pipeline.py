"""One run, end to end: load data -> train (STDP) -> label -> infer -> run directory.

`run_experiment(cfg, out_dir)` is the library entry point behind `accel-sim run`.
Training writes a checkpoint every `run.checkpoint_every` samples (weights,
thresholds, network state, counts, position; class-incremental runs: after every
task, with the accuracies so far); `resume_experiment(run_dir)`
continues from it and ends with the same weights as an uninterrupted run,
because the input spikes of every presentation come from a counter-based RNG
keyed by (seed, sample, attempt) and the whole state is in the checkpoint.
"""
from __future__ import annotations

import json
import os
import platform
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from tqdm import tqdm

from snn_frontend.counts import FrontendCounts
from snn_frontend.datasets import Dataset, class_tasks, load_dataset, select, split_validation
from snn_frontend.labelling import assign_labels, predict
from snn_frontend.network import DiehlCookNetwork
from snn_frontend.state import DCState
from snn_frontend.trace import TraceBuilder

from .config import Config, dump_config, load_config
from .errors import RunError
from .machine import cpu_model
from .memory import network_memory
from .report import format_summary, format_tasks, read_json, write_json, write_text

__all__ = ["run_experiment", "resume_experiment", "reprice", "default_run_dir", "load_data",
           "RunData", "write_outputs"]

_PHASE_UID = {"train": 1, "label": 2, "infer": 3}
CHECKPOINT = "checkpoint.npz"


def _uid(phase: str, epoch: int, index: int) -> int:
    return (_PHASE_UID[phase] << 48) | (epoch << 32) | index


@dataclass
class RunData:
    train: Dataset
    label: Dataset
    test: Dataset
    n_classes: int

    @property
    def n_in(self) -> int:
        return self.train.n_pixels


def load_data(cfg: Config) -> RunData:
    d = cfg.data
    train_full = load_dataset(d.dataset, "train", d.root)
    if d.evaluate_on == "validation":
        train_full, test_full = split_validation(train_full, d.validation_samples)
    else:
        test_full = load_dataset(d.dataset, "test", d.root)
    order = "class_incremental" if d.protocol == "class_incremental" else "dataset"
    train = select(train_full, n=d.train_samples, classes=d.classes, order=order)
    label = train if d.label_samples is None else select(train, n=d.label_samples)
    test = select(test_full, n=d.test_samples, classes=d.classes, order=order)
    n_classes = int(max(train_full.labels.max(), test_full.labels.max())) + 1
    return RunData(train, label, test, n_classes)


def default_run_dir(cfg: Config, root: str | os.PathLike = "runs") -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path(root) / f"{cfg.name}-{stamp}"


def _progress_enabled(cfg: Config, progress: bool | None) -> bool:
    if progress is not None:
        return progress
    if cfg.run.progress is not None:
        return cfg.run.progress
    return sys.stderr.isatty()


class _Run:
    def __init__(self, cfg: Config, out_dir: Path, progress: bool | None):
        self.cfg = cfg
        self.out = Path(out_dir)
        self.show = _progress_enabled(cfg, progress)
        self.timing: dict[str, float] = {}
        self.counts: dict[str, FrontendCounts] = {}
        self.resumed = False

    # --------------------------------------------------------------- stages
    def execute(self, checkpoint: dict | None = None) -> dict:
        cfg = self.cfg
        started = datetime.now(timezone.utc).isoformat()
        t0 = time.perf_counter()
        data = load_data(cfg)
        self.timing["load"] = time.perf_counter() - t0
        net = DiehlCookNetwork.from_config(cfg, data.n_in)
        if cfg.network.init_model:
            self._load_model(net, cfg.network.init_model)
        fmt = cfg.network.state_format
        self.spec = net.spec(cfg.network.weights.storage_bits,
                             fmt.bits if fmt.kind == "fixed" else None, model=cfg.network.model)
        self._write_run_json(net, data, started, None)
        meta = {"model": cfg.network.model, "seed": cfg.seed}
        stats: dict = {"accuracy": {}, "frontend": {}}
        self.chip = self._make_chip(net) if cfg.hardware is not None else None
        self.chip_results: dict = {}

        if cfg.data.protocol == "class_incremental":
            assignments = self._continual(net, data, meta, stats, checkpoint)
        else:
            assignments = self._iid(net, data, meta, stats, checkpoint)
        for phase, c in self.counts.items():
            stats["frontend"][phase] = dict(c.as_dict(), per_sample=c.per_sample())
        stats["memory"] = network_memory(self.spec, cfg.network.state_format.storage_bits)
        if self.chip is not None:
            stats["hardware"] = self._price(self.chip_results)
            self.timing["simulate"] = sum(r.wall_s for r in self.chip_results.values())
        theta = net.state.theta
        stats["model"] = {
            "n_input": data.n_in, "n_excitatory": cfg.network.n_excitatory,
            "n_classes": data.n_classes,
            "assigned_neurons": int((assignments >= 0).sum()) if assignments is not None else 0,
            "theta_mv": {"min": float(theta.min()), "mean": float(theta.mean()),
                         "max": float(theta.max())},
        }
        self._save_model(net, assignments)
        write_json(self.out / "stats.json", stats)
        run = self._write_run_json(net, data, started, datetime.now(timezone.utc).isoformat())
        write_outputs(self.out, stats, run)
        return stats

    def _iid(self, net, data: RunData, meta: dict, stats: dict, checkpoint) -> np.ndarray | None:
        """The D&C protocol: train, label on the labelling set, test."""
        phases, assignments = self.cfg.run.phases, None
        if "train" in phases:
            self._train(net, data, meta, checkpoint)
        if "label" in phases:
            resp = self._infer("label", net, data.label, meta)
            assignments = assign_labels(resp, data.label.labels, data.n_classes)
            pred = predict(resp, assignments, data.n_classes)
            stats["accuracy"]["label_set"] = float((pred == data.label.labels).mean())
        if "infer" in phases:
            resp = self._infer("infer", net, data.test, meta)
            if assignments is not None:
                pred = predict(resp, assignments, data.n_classes)
                stats["accuracy"]["test"] = float((pred == data.test.labels).mean())
                stats["accuracy"]["n_test"] = len(data.test)
        return assignments

    def _train(self, net: DiehlCookNetwork, data: RunData, meta: dict, ckpt: dict | None) -> None:
        cfg, n = self.cfg, len(data.train)
        total = cfg.learning.epochs * n
        counts = FrontendCounts()
        replay = self._chip_phase("train")
        trace = self._builder(net, "train", meta, replay, learn=True)
        phases = {"train": (counts, trace, replay)}
        start, elapsed = 0, 0.0
        if ckpt is not None:
            start, elapsed = self._restore(net, ckpt, phases)
        t0 = time.perf_counter()
        every = cfg.run.checkpoint_every
        orders: dict[int, np.ndarray] = {}
        with tqdm(total=total, initial=start, desc="train", unit="sample",
                  disable=not self.show, dynamic_ncols=True) as bar:
            for g in range(start, total):
                epoch, k = divmod(g, n)
                if epoch not in orders:
                    orders = {epoch: (np.random.default_rng([cfg.seed, 1, epoch]).permutation(n)
                                      if cfg.data.shuffle else np.arange(n))}
                idx = int(orders[epoch][k])
                net.train_sample(data.train.images[idx], _uid("train", epoch, idx), sample=g,
                                 counts=counts, trace=trace)
                bar.update(1)
                if every and (g + 1) % every == 0 and g + 1 < total:
                    self._checkpoint(net, g + 1, elapsed + time.perf_counter() - t0, phases)
        if trace is not None:
            trace.close()
        elapsed += time.perf_counter() - t0
        self._checkpoint(net, total, elapsed, phases)
        self.timing["train"] = elapsed - (replay.result.wall_s if replay else 0.0)
        self.counts["train"] = counts
        if replay is not None:
            self.chip_results["train"] = replay.finish()

    def _infer(self, phase: str, net: DiehlCookNetwork, ds: Dataset, meta: dict) -> np.ndarray:
        cfg = self.cfg
        counts = FrontendCounts()
        replay = self._chip_phase(phase)
        trace = self._builder(net, phase, meta, replay, learn=False)
        t0 = time.perf_counter()
        with tqdm(total=len(ds), desc=phase, unit="sample", disable=not self.show,
                  dynamic_ncols=True) as bar:
            resp = net.infer(ds.images, _uid(phase, 0, 0), threads=cfg.run.threads,
                             counts=counts, trace=trace, on_sample=bar.update)
        if trace is not None:
            trace.close()
        self.timing[phase] = time.perf_counter() - t0 - (replay.result.wall_s if replay else 0.0)
        self.counts[phase] = counts
        if replay is not None:
            self.chip_results[phase] = replay.finish()
        return resp

    # ------------------------------------------------------------ continual
    def _continual(self, net: DiehlCookNetwork, data: RunData, meta: dict, stats: dict,
                   ckpt: dict | None):
        """Class-incremental learning: train task by task (one class each, equal samples, no
        re-feeding); after each task, label on the learned tasks' training samples and test
        on the learned classes: accuracy on the newest task and on the earlier ones. With
        checkpoints on, a checkpoint follows every task."""
        cfg = self.cfg
        tasks = class_tasks(data.train)
        counts = {ph: FrontendCounts() for ph in ("train", "label", "infer")}
        replays = {ph: self._chip_phase(ph) for ph in counts}
        traces = {ph: self._builder(net, ph, meta, replays[ph], learn=ph == "train")
                  for ph in counts}
        phases = {ph: (counts[ph], traces[ph], replays[ph]) for ph in counts}
        timing = dict.fromkeys(counts, 0.0)
        rows, first, assign = [], 0, None
        if ckpt is not None:
            first, _ = self._restore(net, ckpt, phases)
            rows = json.loads(str(ckpt["rows_json"]))
            timing = json.loads(str(ckpt["timing_json"]))
            assign = np.asarray(json.loads(str(ckpt["assign_json"])), np.int64)
        g = sum(sl.stop - sl.start for _, sl in tasks[:first])
        with tqdm(total=len(data.train), initial=g, desc="tasks", unit="sample",
                  disable=not self.show, dynamic_ncols=True) as bar:
            for k, (cls, sl) in enumerate(tasks[first:], start=first):
                t0 = time.perf_counter()
                for idx in range(sl.start, sl.stop):
                    net.train_sample(data.train.images[idx], _uid("train", 0, idx), sample=g,
                                     counts=counts["train"], trace=traces["train"])
                    g += 1
                    bar.update(1)
                timing["train"] += time.perf_counter() - t0
                learned = [c for c, _ in tasks[: k + 1]]
                lab = np.concatenate([np.arange(s.start, s.stop) for _, s in tasks[: k + 1]])
                t0 = time.perf_counter()
                resp = net.infer(data.train.images[lab], _uid("label", k, 0), threads=cfg.run.threads,
                                 counts=counts["label"], trace=traces["label"])
                assign = assign_labels(resp, data.train.labels[lab], data.n_classes)
                timing["label"] += time.perf_counter() - t0
                test = np.flatnonzero(np.isin(data.test.labels, learned))
                t0 = time.perf_counter()
                resp = net.infer(data.test.images[test], _uid("infer", k, 0), threads=cfg.run.threads,
                                 counts=counts["infer"], trace=traces["infer"])
                timing["infer"] += time.perf_counter() - t0
                labels = data.test.labels[test]
                ok = predict(resp, assign, data.n_classes) == labels
                rows.append({"task": k, "class": int(cls), "samples": int(sl.stop - sl.start),
                             "newest": float(ok[labels == cls].mean()),
                             "earlier": float(ok[labels != cls].mean()) if k else None,
                             "all_learned": float(ok.mean()), "n_test": int(len(test))})
                if cfg.run.checkpoint_every:
                    self._checkpoint(net, k + 1, 0.0, phases,
                                     dict(rows_json=rows, timing_json=timing,
                                          assign_json=assign.tolist()))
        for ph in counts:
            if traces[ph] is not None:
                traces[ph].close()
            wall = replays[ph].result.wall_s if replays[ph] is not None else 0.0
            self.timing[ph] = timing[ph] - wall
            self.counts[ph] = counts[ph]
            if replays[ph] is not None:
                self.chip_results[ph] = replays[ph].finish()
        earlier = [r["earlier"] for r in rows if r["earlier"] is not None]
        stats["accuracy"].update(
            tasks=rows, test=rows[-1]["all_learned"], n_test=rows[-1]["n_test"],
            newest_mean=float(np.mean([r["newest"] for r in rows])),
            earlier_mean=float(np.mean(earlier)) if earlier else None)
        return assign

    # ------------------------------------------------------------------ chip
    def _make_chip(self, net: DiehlCookNetwork):
        from .chip import Chip
        from .chip.mapping import load_placement

        hw = self.cfg.hardware
        placement = load_placement(hw.placement_file) if hw.placement_file else None
        return Chip(hw, self.spec, self.cfg.run.fidelity, placement)

    def _chip_phase(self, phase: str):
        return None if self.chip is None else self.chip.phase(phase)

    def _builder(self, net, phase: str, meta: dict, replay, *, learn: bool) -> TraceBuilder | None:
        save = phase in self.cfg.run.trace_phases
        if not save and replay is None:
            return None
        return TraceBuilder(dict(meta, **net.trace_meta(self.spec, learn=learn), phase=phase),
                            net.events() if learn else (),
                            out_dir=self.out / f"trace_{phase}" if save else None,
                            on_part=replay.consume if replay is not None else None,
                            part_size=512)

    def _price(self, results: dict) -> dict:
        from .energy import EnergyTable, message_model_warning, price_phase

        hw = self.cfg.hardware
        table = EnergyTable(self.cfg.energy).resolve(hw)
        phases = {name: price_phase(r.counts, r.cycles, hw.clock_mhz, table, samples=r.samples,
                                    presentations=r.presentations, time_steps=r.time_steps)
                  for name, r in results.items()}
        return {"chip": hw.name, "energy_table": table.name, "technology": table.technology,
                "basis": table.basis, "fidelity": self.cfg.run.fidelity,
                "clock_mhz": hw.clock_mhz,
                "mapping": self.chip.mapping.report(self._state_bits(), hw.formats.trace_bits),
                "warnings": [w for w in [message_model_warning(self.cfg.energy, hw)] if w],
                "phases": phases}

    def _state_bits(self) -> int:
        """The chip stores neuron state in its own format unless the network's is fixed."""
        fmt = self.cfg.network.state_format
        return fmt.bits if fmt.kind == "fixed" else self.cfg.hardware.formats.state_bits

    # ---------------------------------------------------------- checkpoints
    def _checkpoint(self, net, position: int, elapsed: float, phases: dict,
                    extra: dict | None = None) -> None:
        """Save the network and, per phase, its counts, trace parts and chip replay state
        (`phases`: name -> (counts, trace builder or None, replay or None))."""
        arrays = {f"state_{k}": v for k, v in net.state.arrays().items()}
        arrays.update(weights=net.weights, position=np.int64(position),
                      last_activity=net.last_activity, elapsed_s=np.float64(elapsed))
        arrays.update({k: np.array(json.dumps(v)) for k, v in (extra or {}).items()})
        path = self.out / CHECKPOINT
        tmp = path.with_name(path.name + ".tmp")
        try:
            for ph, (counts, trace, replay) in phases.items():
                arrays[f"counts_json_{ph}"] = np.array(json.dumps(counts.as_dict()))
                if trace is not None:  # parts up to here belong to the checkpoint
                    trace.flush()
                    arrays[f"trace_parts_{ph}"] = np.int64(trace.parts_written)
                if replay is not None:
                    arrays[f"chip_json_{ph}"] = np.array(json.dumps(replay.snapshot()))
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)
            os.replace(tmp, path)
        except OSError as exc:
            raise RunError(f"cannot write checkpoint {path}: {exc.strerror or exc}") from None

    def _restore(self, net, ckpt: dict, phases: dict) -> tuple[int, float]:
        """Undo everything done after the checkpoint; returns (position, elapsed seconds)."""
        net.weights[...] = ckpt["weights"]
        net.state = DCState.from_arrays({k[len("state_"):]: v for k, v in ckpt.items()
                                         if k.startswith("state_")})
        net.last_activity[:] = ckpt["last_activity"]
        for ph, (counts, trace, replay) in phases.items():
            for k, v in json.loads(str(ckpt[f"counts_json_{ph}"])).items():
                setattr(counts, k, v)
            if trace is not None:  # drop parts written after the checkpoint
                trace.truncate_parts(int(ckpt.get(f"trace_parts_{ph}", 0)))
            if replay is not None and f"chip_json_{ph}" in ckpt:
                replay.restore(json.loads(str(ckpt[f"chip_json_{ph}"])))
        self.resumed = True
        return int(ckpt["position"]), float(ckpt["elapsed_s"])

    # ---------------------------------------------------------------- files
    def _load_model(self, net: DiehlCookNetwork, path: str) -> None:
        try:
            with np.load(path, allow_pickle=False) as z:
                w, theta = z["weights"], z["theta"]
        except (OSError, KeyError, ValueError) as exc:
            raise RunError(f"network.init_model: cannot read {path}: {exc}") from None
        if w.shape != net.weights.shape or theta.shape != net.state.theta.shape:
            raise RunError(f"network.init_model: {path} holds a {w.shape[0]}x{w.shape[1]} "
                           f"network, this config needs {net.weights.shape[0]}x"
                           f"{net.weights.shape[1]}")
        net.weights[...] = w
        net.state.theta[:] = theta

    def _save_model(self, net, assignments) -> None:
        path = self.out / "model.npz"
        try:
            with open(path, "wb") as fh:
                np.savez(fh, weights=net.weights, theta=net.state.theta,
                         assignments=assignments if assignments is not None else np.zeros(0))
        except OSError as exc:
            raise RunError(f"cannot write {path}: {exc.strerror or exc}") from None

    def _write_run_json(self, net, data: RunData, started: str, ended: str | None) -> dict:
        import numpy
        import pydantic

        from . import __version__

        run = {
            "name": self.cfg.name, "seed": self.cfg.seed, "backend": net.backend,
            "threads": self.cfg.run.threads or os.cpu_count(),
            "versions": {"neuro_accel_sim": __version__, "python": platform.python_version(),
                         "numpy": numpy.__version__, "pydantic": pydantic.__version__},
            "platform": platform.platform(), "cpu_model": cpu_model(), "command": sys.argv,
            "start_time": started, "end_time": ended, "resumed": self.resumed,
            "timing_s": self.timing,
            "samples": {"train": len(data.train) * self.cfg.learning.epochs
                        if "train" in self.cfg.run.phases else 0,
                        "label": len(data.label) if "label" in self.cfg.run.phases else 0,
                        "infer": len(data.test) if "infer" in self.cfg.run.phases else 0},
        }
        write_json(self.out / "run.json", run)
        return run


def write_outputs(out: Path, stats: dict, run: dict) -> None:
    """summary.txt, and with a chip energy.csv and energy_breakdown.png, from stats."""
    text = format_summary(stats, run)
    tasks = stats.get("accuracy", {}).get("tasks")
    if tasks:
        from .plot import plot_continual

        text += format_tasks(tasks)
        plot_continual(tasks, out / "continual.png")
    hw = stats.get("hardware")
    if hw and hw.get("phases"):
        from .plot import plot_energy_breakdown
        from .tables import format_hardware_summary, write_energy_csv

        text += format_hardware_summary(hw)
        write_energy_csv(hw, out / "energy.csv")
        try:
            plot_energy_breakdown(hw, out / "energy_breakdown.png")
        except OSError as exc:
            raise RunError(f"cannot write {out / 'energy_breakdown.png'}: {exc}") from None
    write_text(out / "summary.txt", text)


def reprice(run_dir: str | os.PathLike, energy: str | None = None) -> Path:
    """Regenerate a run's reports; with `energy` (a table name or file), re-price the
    recorded counts and cycles with that table into RUN_DIR/reprice-<table>/ (no
    re-simulation). Returns the directory written."""
    from .energy import EnergyTable, price_phase

    out = Path(run_dir)
    stats = read_json(out / "stats.json")
    run = read_json(out / "run.json")
    if energy is None:
        write_outputs(out, stats, run)
        return out
    hw = stats.get("hardware")
    if not hw:
        raise RunError(f"{out} has no hardware results to re-price (run it with a chip)")
    cfg = load_config(out / "config.resolved.yaml", [f"energy={energy}"])
    table = EnergyTable(cfg.energy).resolve(cfg.hardware)
    from .energy import message_model_warning

    warning = message_model_warning(cfg.energy, cfg.hardware)
    new = dict(hw, energy_table=table.name, technology=table.technology, basis=table.basis,
               warnings=[warning] if warning else [],
               phases={name: price_phase(ph["counts"], ph["latency_cycles"], hw["clock_mhz"], table,
                                         samples=ph["samples"], presentations=ph["presentations"],
                                         time_steps=ph["time_steps"])
                       for name, ph in hw["phases"].items()})
    dest = out / f"reprice-{table.name}"
    try:
        dest.mkdir(exist_ok=True)
    except OSError as exc:
        raise RunError(f"cannot create {dest}: {exc.strerror or exc}") from None
    stats = dict(stats, hardware=new)
    write_json(dest / "stats.json", stats)
    write_outputs(dest, stats, run)
    return dest


def _prepare_dir(out_dir: Path, cfg: Config) -> None:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunError(f"cannot create run directory {out_dir}: {exc.strerror or exc}") from None
    write_text(out_dir / "config.resolved.yaml", dump_config(cfg))


def run_experiment(cfg: Config, out_dir: str | os.PathLike, *, progress: bool | None = None) -> dict:
    """Run every configured phase and write the run directory; returns stats."""
    out = Path(out_dir)
    if (out / "stats.json").exists() or (out / CHECKPOINT).exists():
        raise RunError(f"{out} already holds a run; choose another --out or use --resume {out}")
    _prepare_dir(out, cfg)
    return _Run(cfg, out, progress).execute()


def resume_experiment(run_dir: str | os.PathLike, *, progress: bool | None = None) -> dict:
    """Continue a killed run from its last checkpoint (same result as uninterrupted)."""
    out = Path(run_dir)
    cfg_path = out / "config.resolved.yaml"
    if not cfg_path.is_file():
        raise RunError(f"{out} is not a run directory (no config.resolved.yaml)")
    cfg = load_config(cfg_path)
    ckpt_path = out / CHECKPOINT
    ckpt = None
    if ckpt_path.is_file():
        try:
            with np.load(ckpt_path, allow_pickle=False) as z:
                ckpt = {k: z[k] for k in z.files}
        except (OSError, ValueError) as exc:
            raise RunError(f"checkpoint {ckpt_path} is unreadable: {exc}") from None
    return _Run(cfg, out, progress).execute(ckpt)


